-- The collaborative plugin through the crm API (run by `rapport test`): interactions stored
-- once per channel and external id, linked to a contact's account too; the timeline merged
-- from every source and paged without repeats; notes, mentions and followers.

local C = crm.collaborative

test("an interaction seen twice is stored once, and shows on the contact's account", function()
  local acc = crm.create("account", {name = "Acme"})
  local sara = crm.create("contact", {last_name = "Ahmadi", account = acc.id})
  local first = C.log({channel = "phone", direction = "in", external_id = "call-1",
                       subject = "Missed order"}, {{"contact", sara.id}})
  assert_eq(first.duplicate, false)
  local again = C.log({channel = "phone", direction = "in", external_id = "call-1"},
                      {{"contact", sara.id}})
  assert_eq(again.duplicate, true)
  assert_eq(again.id, first.id)
  -- The same id on another channel is another message.
  assert_eq(C.log({channel = "sms", direction = "in", external_id = "call-1"},
                  {{"contact", sara.id}}).duplicate, false)
  assert_eq(crm.count("interaction"), 2)
  local items = C.timeline("account", acc.id, {kinds = {"interaction"}}).data
  assert_eq(#items, 2)
  assert_eq(items[1].channel, "sms")
  assert_error(function() C.log({channel = "fax", direction = "in"}, {}) end, "channel")
  assert_error(function() C.log({channel = "sms", direction = "in"}, {{"contact", 999}}) end,
               "no contact")
end)

test("a timeline pages newest first without repeating or losing an item", function()
  local c = crm.create("contact", {last_name = "Pager"})
  for i = 1, 7 do
    C.log({channel = "chat", direction = "in", body = "m" .. i, at = "2026-01-01T10:00:00Z"},
          {{"contact", c.id}})
  end
  crm.update("contact", c.id, {title = "CEO"})
  local seen, before, pages = {}, nil, 0
  repeat
    local page = C.timeline("contact", c.id, {limit = 3, before = before})
    for _, it in ipairs(page.data) do
      local key = it.kind .. ":" .. it.id
      assert_true(not seen[key], "repeated " .. key)
      seen[key] = true
    end
    before, pages = page.next, pages + 1
  until before == nil
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  assert_eq(n, 9) -- seven messages, the creation and the title change
  assert_eq(pages, 3)
  -- crm.timeline is the same function, where every script looks for it.
  assert_eq(#crm.timeline("contact", c.id, {limit = 3}).data, 3)
  assert_error(function() C.timeline("contact", c.id, {limit = 0}) end, "limit")
  assert_error(function() C.timeline("contact", c.id, {before = "nonsense"}) end, "cursor")
end)

test("notes notify the users they mention and the record's followers", function()
  local c = crm.create("contact", {last_name = "Noted"})
  -- No user named nobody: a mention of nobody notifies no one, an address is not a mention.
  local id = C.note("contact", c.id, "ask @nobody, or write to someone@example.com")
  assert_true(id > 0)
  assert_eq(crm.count("notification"), 0)
  assert_error(function() C.note("contact", c.id, "") end, "text")
  assert_error(function() C.follow("contact", c.id, "ghost") end, "no user")
end)

test("a template is filled in the recipient's language, escaped in HTML, right to left in Persian", function()
  crm.set_config("mail.from", "Support <support@example.com>")
  crm.create("mail_template", {name = "shipped", language = "en", subject = "Order {{id}} shipped",
                               body = "Hi {{contact.first_name}}", html = "<p>Hi {{contact.first_name}}</p>"})
  crm.create("mail_template", {name = "shipped", language = "fa", subject = "سفارش {{id}} ارسال شد",
                               body = "سلام {{contact.first_name}}", html = "<p>سلام {{contact.first_name}}</p>"})
  local en = crm.create("contact", {first_name = "<b>Bo</b>", last_name = "B", email = "bo@example.org"})
  local fa = crm.create("contact", {first_name = "سارا", last_name = "A", email = "sara@example.org",
                                    language = "fa"})
  local order = crm.create("order", {contact = fa.id})
  local sent = C.send_email{to = "sara@example.org", template = "shipped", record = "order:" .. order.id}
  local it = crm.get("interaction", sent.id)
  assert_eq(it.subject, "سفارش " .. order.id .. " ارسال شد")
  assert_eq(it.language, "fa")
  assert_eq(it.html, '<div dir="rtl" lang="fa"><p>سلام سارا</p></div>')
  local e = crm.get("interaction", C.send_email{to = "bo@example.org", template = "shipped"}.id)
  assert_eq(e.body, "Hi <b>Bo</b>")                 -- text as it is
  assert_eq(e.html, "<p>Hi &lt;b&gt;Bo&lt;/b&gt;</p>") -- HTML escaped
  -- A language without a version falls back to the default; a typo is refused.
  crm.update("contact", en.id, {language = "de"})
  assert_eq(crm.get("interaction", C.send_email{to = "bo@example.org", template = "shipped"}.id).language, "en")
  crm.create("mail_template", {name = "typo", subject = "{{contact.frist_name}}", body = "x"})
  assert_error(function() C.send_email{to = "bo@example.org", template = "typo"} end, "names no field")
  assert_error(function() C.send_email{to = "bo@example.org", template = "nope"} end, "no mail template")
end)
