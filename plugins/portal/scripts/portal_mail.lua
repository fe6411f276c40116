-- The sign-in link's mail, sent through the collaborative plugin's outbox (its SMTP settings,
-- its retries). login.c queues this job with the text made and the token in it; the job's
-- payload is gone once it ran.
crm.job("portal.send_link", function(p)
  crm.collaborative.send_email{to = p.to, subject = p.subject, body = p.body,
                               related = p.related, purpose = "service"}
end)
