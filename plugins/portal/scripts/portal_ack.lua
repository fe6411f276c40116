-- The acknowledgement of a ticket a customer opened in the portal: a mail to them, in their
-- language (contact.language "fa": Persian, else English), through the collaborative plugin's
-- outbox (its SMTP settings and retries), linked to the ticket so staff see it on its timeline.
-- Only a ticket whose event came from the portal (origin "portal", a record session's write):
-- staff's tickets and a mail's are not acknowledged here.
--
--   plugin.portal.acknowledge   false switches the rule off (default true)
--   plugin.portal.messages      {"en": {"ack.subject": "…", "ack.body": "…"}, "fa": {…}}: the
--                               administrator's words in place of these; {n}, {subject}, {name}
--                               and {due} are filled in
--
-- A handler may see an event twice: one acknowledgement per ticket, whatever happens.

local texts = {
  en = {
    subject = "We received your request #{n}: {subject}",
    body = "Hello {name},\n\nThank you for writing to us. Your request #{n} ({subject}) is with "
        .. "our team, and we will answer by {due}.\n\nYou can read and answer it in the customer "
        .. "portal.\n",
    due = "as soon as we can",
  },
  fa = {
    subject = "درخواست شما با شمارهٔ {n} دریافت شد: {subject}",
    body = "{name} گرامی،\n\nاز پیام شما سپاسگزاریم. درخواست شمارهٔ {n} ({subject}) به دست تیم ما "
        .. "رسید و تا {due} پاسخ می‌دهیم.\n\nمی‌توانید آن را در پرتال مشتریان بخوانید و پاسخ دهید.\n",
    due = "در نخستین فرصت",
  },
}

-- The administrator's text for @key in @lang (plugin.portal.messages), else ours.
local function text(lang, key)
  local m = crm.config("plugin.portal.messages", {})
  local own = type(m) == "table" and type(m[lang]) == "table" and m[lang]["ack." .. key]
  if type(own) == "string" and own ~= "" then return own end
  return texts[lang][key]
end

local function fill(s, values)
  return (s:gsub("{(%w+)}", function(k) return values[k] or ("{" .. k .. "}") end))
end

crm.on("ticket.created", function(ev)
  if ev.origin ~= "portal" then return end
  if crm.config("plugin.portal.acknowledge", true) == false then return end
  local t = crm.get("ticket", ev.id)
  if not t or not t.contact then return end
  local c = crm.get("contact", t.contact)
  if not c or not c.email or c.email == "" then return end
  local lang = (c.language or ""):lower():sub(1, 2) == "fa" and "fa" or "en"
  local values = {n = tostring(t.id), subject = t.subject or "",
                  name = (c.first_name and c.first_name ~= "") and c.first_name
                         or (c.last_name or ""),
                  due = t.first_response_due and t.first_response_due:sub(1, 16):gsub("T", " ")
                        .. " UTC" or text(lang, "due")}
  local subject = fill(text(lang, "subject"), values)
  -- Once per ticket: a second run of the handler finds the first one's mail.
  if crm.count("interaction", {author = "rapport:portal_ack", subject = subject,
                               to_addr = c.email}) > 0 then
    return
  end
  crm.collaborative.send_email{to = c.email, subject = subject, body = fill(text(lang, "body"), values),
                               related = {"ticket", t.id}, purpose = "service",
                               language = lang, author = "rapport:portal_ack"}
end, {name = "portal.acknowledge"})
