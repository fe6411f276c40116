-- The sign-in link's mail, sent through the collaborative plugin's outbox (its SMTP settings,
-- its retries). login.c queues this job with the text made, {{secret}} where the link goes and
-- the link beside it: the mail is kept with a note in its place, the link only until it is
-- sent (and no longer than it works). The job's payload is gone once it ran.
crm.job("portal.send_link", function(p)
  crm.collaborative.send_email{to = p.to, subject = p.subject, body = p.body,
                               secret = p.secret, secret_ttl = p.ttl_s .. "s",
                               secret_note = "[a one-time sign-in link, not kept]",
                               related = p.related, purpose = "service"}
end)
