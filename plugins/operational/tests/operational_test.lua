-- The operational plugin's rules, end to end through the crm API (run by `rapport test`).

test("emails and phones take one form, whatever was typed", function()
  crm.set_config("plugin.operational.default_country", "IR")
  local c = crm.create("contact", {last_name = "Rahimi", email = "  Sara.Rahimi@Example.COM ",
                                   phone = "0912 345 6789", mobile = "۰۹۱۲-۳۴۵-۶۷۸۹"})
  assert_eq(c.email, "sara.rahimi@example.com")
  assert_eq(c.phone, "+989123456789")
  assert_eq(c.mobile, "+989123456789")
  local d = crm.create("contact", {last_name = "Doe", phone = "+1 (415) 555-0100 ext 12"})
  assert_eq(d.phone, "+14155550100")
  local e = crm.create("contact", {last_name = "Roe", phone = "0044 20 7946 0958"})
  assert_eq(e.phone, "+442079460958")
  assert_error(function() crm.create("contact", {last_name = "X", phone = "call me"}) end,
               "contact.phone: \"call me\" is not a phone number")
  -- A lookup by the typed form finds the stored one after the same normalising.
  assert_eq(crm.count("contact", {phone = "+989123456789"}), 1)
  local a = crm.create("account", {name = "Acme", domain = "ACME.example"})
  assert_eq(a.domain, "acme.example")
  -- Longer than the hook's buffers: read whole all the same.
  local f = crm.create("contact", {last_name = "Long", email = string.rep(" ", 300) .. "Long@Example.COM",
                                   phone = "+1 415 555 0100 ext " .. string.rep("9", 300)})
  assert_eq(f.email, "long@example.com")
  assert_eq(f.phone, "+14155550100")
end)

test("a deal starts at the first stage and records its stage changes", function()
  local d = crm.create("deal", {name = "Big one", amount = "1200.50"})
  assert_eq(d.pipeline, "default")
  assert_eq(d.stage, "new")
  assert_eq(d.probability, 10)
  assert_eq(d.amount, "1200.50")
  crm.clock.advance("1h")
  d = crm.update("deal", d.id, {stage = "proposal"})
  assert_eq(d.probability, 50)
  assert_eq(d.stage_changed_at, "2026-01-01T01:00:00.000Z")
  assert_error(function() crm.update("deal", d.id, {stage = "dreaming"}) end,
               "stage \"dreaming\" is not in pipeline \"default\" %(stages: new, qualified")
  assert_error(function() crm.update("deal", d.id, {stage = "lost"}) end,
               "a lost deal needs its close_reason")
  d = crm.update("deal", d.id, {stage = "lost", close_reason = "price"})
  assert_eq(d.closed_at, "2026-01-01T01:00:00.000Z")
  assert_eq(d.probability, 0)
  -- Reopened: no longer closed.
  d = crm.update("deal", d.id, {stage = "negotiation"})
  assert_eq(d.closed_at, nil)
  assert_eq(d.close_reason, nil)
  d = crm.update("deal", d.id, {stage = "won"})
  assert_eq(d.closed_at, "2026-01-01T01:00:00.000Z")
end)

test("deal.stage_changed reaches a handler with where from and to", function()
  local seen = {}
  crm.on("deal.stage_changed", function(ev)
    seen[#seen + 1] = ev.changes.from .. ">" .. ev.changes.to
  end, {name = "watch_stages"})
  local d = crm.create("deal", {name = "D"})
  crm.update("deal", d.id, {stage = "qualified"})
  crm.update("deal", d.id, {amount = "10.00"}) -- not a stage change
  crm.update("deal", d.id, {stage = "won"})
  crm.clock.advance("1s")
  assert_eq(table.concat(seen, " "), "new>qualified qualified>won")
end)

test("pipelines come from the settings", function()
  crm.set_config("plugin.operational.pipelines", {
    renewals = {{name = "due", probability = 60, kind = "open"},
                {name = "renewed", probability = 100, kind = "won"}}})
  local d = crm.create("deal", {name = "Renewal", pipeline = "renewals"})
  assert_eq(d.stage, "due")
  assert_eq(d.probability, 60)
  assert_error(function() crm.create("deal", {name = "X", pipeline = "nope"}) end,
               "no pipeline named \"nope\" %(pipelines: renewals%)")
end)

test("a lead converts once, into a contact, an account and a deal, atomically", function()
  local lead = crm.create("lead", {first_name = "Ada", last_name = "Lovelace",
                                   email = "ada@engines.example", company = "Analytical Engines",
                                   source = "web", owner = "u1"})
  local r = crm.operational.convert_lead(lead.id, {deal = {name = "Engine", amount = "5000"}})
  assert_eq(r.contact.last_name, "Lovelace")
  assert_eq(r.contact.email, "ada@engines.example")
  assert_eq(r.contact.lead, lead.id)
  assert_eq(r.account.name, "Analytical Engines")
  assert_eq(r.contact.account, r.account.id)
  assert_eq(r.deal.name, "Engine")
  assert_eq(r.deal.amount, "5000.00")
  assert_eq(r.deal.stage, "new")
  assert_eq(r.deal.contact, r.contact.id)
  local l = crm.get("lead", lead.id)
  assert_eq(l.status, "converted")
  assert_eq(l.converted_contact, r.contact.id)
  assert_eq(l.converted_deal, r.deal.id)
  assert_error(function() crm.operational.convert_lead(lead.id) end, "already converted")
  assert_error(function() crm.update("lead", lead.id, {status = "new"}) end,
               "its status stays \"converted\"")
  -- A second lead of the same company joins the existing account.
  local l2 = crm.create("lead", {last_name = "Babbage", company = "Analytical Engines"})
  local r2 = crm.operational.convert_lead(l2.id)
  assert_eq(r2.account.id, r.account.id)
  assert_eq(r2.deal, nil)
  assert_eq(crm.count("account"), 1)
end)

test("a conversion that fails stores nothing", function()
  local lead = crm.create("lead", {last_name = "Hopper", company = "Navy"})
  -- A deal the hooks refuse (no such pipeline) undoes the account and the contact too.
  assert_error(function()
    crm.operational.convert_lead(lead.id, {deal = {name = "X", pipeline = "none"}})
  end, "no pipeline named")
  assert_eq(crm.count("account"), 0)
  assert_eq(crm.count("contact"), 0)
  assert_eq(crm.get("lead", lead.id).status, "new")
end)

test("a ticket gets its SLA deadlines, moves them, and breaches on time", function()
  local breaches = {}
  crm.on("ticket.sla_breached", function(ev)
    breaches[#breaches + 1] = ev.record_id .. ":" .. ev.changes.milestone
  end, {name = "watch_breaches"})
  local t = crm.create("ticket", {subject = "Printer on fire", priority = "high"})
  assert_eq(t.status, "new")
  assert_eq(t.first_response_due, "2026-01-01T04:00:00.000Z")
  assert_eq(t.resolution_due, "2026-01-01T16:00:00.000Z")
  -- Made urgent: the deadlines move, counted from when it opened.
  crm.clock.advance("10m")
  t = crm.update("ticket", t.id, {priority = "urgent"})
  assert_eq(t.first_response_due, "2026-01-01T01:00:00.000Z")
  assert_eq(t.resolution_due, "2026-01-01T04:00:00.000Z")
  crm.clock.advance("49m")
  assert_eq(#breaches, 0)
  crm.clock.advance("2m")
  assert_eq(table.concat(breaches, " "), t.id .. ":first_response")
  assert_eq(crm.get("ticket", t.id).sla_breached, true)
  -- Answered and resolved in time for the resolution target: no second breach.
  crm.update("ticket", t.id, {status = "open"})
  crm.update("ticket", t.id, {status = "resolved"})
  crm.clock.advance("5h")
  assert_eq(#breaches, 1)
  local r = crm.get("ticket", t.id)
  assert_eq(r.resolution_breached, false)
  assert_eq(r.first_response_at ~= nil, true)
end)

test("a ticket answered in time never breaches; the default policy covers every priority", function()
  local n = 0
  crm.on("ticket.sla_breached", function() n = n + 1 end, {name = "count_breaches"})
  local low = crm.create("ticket", {subject = "Question", priority = "low"})
  assert_eq(low.first_response_due, "2026-01-02T00:00:00.000Z")
  assert_eq(low.resolution_due, "2026-01-05T00:00:00.000Z")
  local normal = crm.create("ticket", {subject = "Other"})
  assert_eq(normal.first_response_due, "2026-01-01T08:00:00.000Z")
  crm.clock.advance("1h")
  crm.update("ticket", low.id, {status = "open"})
  crm.update("ticket", normal.id, {status = "pending"})
  crm.clock.advance("30h")
  crm.update("ticket", normal.id, {status = "closed"})
  crm.update("ticket", low.id, {status = "resolved"})
  crm.clock.advance("10d")
  assert_eq(n, 0)
end)

test("order totals are exact and follow their lines", function()
  local p = crm.create("product", {sku = "W-1", name = "Widget", price = "19.99"})
  local o = crm.create("order", {})
  assert_eq(o.status, "placed")
  assert_eq(o.total, "0.00")
  crm.create("order_line", {order = o.id, product = p.id, quantity = 3})
  local l2 = crm.create("order_line", {order = o.id, description = "Shipping", unit_price = "4.10"})
  assert_eq(crm.get("order", o.id).total, "64.07")
  crm.create("order_line", {order = o.id, unit_price = "0.10", quantity = "0.333"})
  assert_eq(crm.get("order", o.id).total, "64.10") -- 0.0333 rounds to 0.03
  crm.update("order_line", l2.id, {unit_price = "5.00"})
  assert_eq(crm.get("order", o.id).total, "65.00")
  crm.delete("order_line", l2.id)
  assert_eq(crm.get("order", o.id).total, "60.00")
  crm.restore("order_line", l2.id)
  assert_eq(crm.get("order", o.id).total, "65.00")
  assert_error(function() crm.create("order_line", {order = o.id}) end,
               "a line needs a unit_price or a product")
end)

test("an order moves from placed to delivered, and says so", function()
  local moves = {}
  crm.on("order.status_changed", function(ev)
    moves[#moves + 1] = ev.changes.to
  end, {name = "watch_orders"})
  local o = crm.create("order", {})
  assert_error(function() crm.update("order", o.id, {status = "delivered"}) end,
               "cannot go from placed to delivered")
  crm.update("order", o.id, {status = "paid"})
  crm.update("order", o.id, {status = "shipped"})
  crm.update("order", o.id, {status = "delivered"})
  assert_error(function() crm.update("order", o.id, {status = "cancelled"}) end,
               "cannot go from delivered to cancelled")
  crm.clock.advance("1s")
  assert_eq(table.concat(moves, " "), "paid shipped delivered")
end)

test("invoices are numbered without gaps, even when one is refused", function()
  local o = crm.create("order", {})
  crm.create("order_line", {order = o.id, unit_price = "100.00"})
  local i1 = crm.create("invoice", {order = o.id})
  assert_eq(i1.number, "INV-000001")
  assert_eq(i1.total, "100.00")
  -- A refused invoice (a before-hook vetoes it) takes no number.
  crm.before("invoice.create", function(r) if r.currency == "XXX" then error("no XXX") end end)
  assert_error(function() crm.create("invoice", {order = o.id, currency = "XXX"}) end, "no XXX")
  local i2 = crm.create("invoice", {order = o.id})
  assert_eq(i2.number, "INV-000002")
  assert_error(function() crm.update("invoice", i2.id, {number = "INV-999"}) end,
               "its number never changes")
  crm.delete("invoice", i2.id)
  assert_eq(crm.create("invoice", {order = o.id}).number, "INV-000003")
end)

test("consent: an opt-in needs its source, an opt-out is honoured until a new opt-in", function()
  local c = crm.create("contact", {last_name = "Lee"})
  local list = crm.create("mailing_list", {name = "News"})
  assert_error(function() crm.create("list_member", {list = list.id, contact = c.id}) end,
               "consent needs its source")
  local m = crm.create("list_member", {list = list.id, contact = c.id, source = "signup form"})
  assert_eq(m.opted_in_at, "2026-01-01T00:00:00.000Z")
  assert_eq(crm.operational.can_contact(c.id, list.id).ok, true)
  assert_error(function() crm.create("list_member", {list = list.id, contact = c.id,
                                                     source = "again"}) end, "already on list")
  crm.clock.advance("1d")
  crm.update("list_member", m.id, {opted_out_at = crm.now(), opt_out_source = "unsubscribe link"})
  local r = crm.operational.can_contact(c.id, list.id)
  assert_eq(r.ok, false)
  assert_eq(r.why, "contact " .. c.id .. " opted out of list " .. list.id
                   .. " at 2026-01-02T00:00:00.000Z")
  assert_error(function() crm.update("list_member", m.id, {opted_out_at = crm.null}) end,
               "coming back needs a new opt%-in")
  crm.update("list_member", m.id, {opted_out_at = crm.null, opted_in_at = crm.now(),
                                   source = "re-subscribed at the fair"})
  assert_eq(crm.operational.can_contact(c.id, list.id).ok, true)
  crm.update("contact", c.id, {do_not_contact = true})
  assert_eq(crm.operational.can_contact(c.id).ok, false)
end)

test("likely duplicates: same email, same phone, or close names at the same account", function()
  crm.set_config("plugin.operational.default_country", "US")
  local acme = crm.create("account", {name = "Acme"}).id
  local a = crm.create("contact", {first_name = "Jon", last_name = "Smith", email = "JON@acme.example"})
  local b = crm.create("contact", {first_name = "Jonathan", last_name = "Smith", email = "jon@acme.example"})
  local c = crm.create("contact", {last_name = "Phone", phone = "(415) 555-0100"})
  local d = crm.create("contact", {last_name = "Other", phone = "+1 415 555 0100"})
  local e = crm.create("contact", {first_name = "Zoë", last_name = "Núñez", account = acme})
  local f = crm.create("contact", {first_name = "Zoe", last_name = "Nunes", account = acme})
  crm.create("contact", {first_name = "Zoe", last_name = "Nunes"})   -- no account: not her
  crm.create("contact", {last_name = "Alone", email = "alone@example.com"})
  local groups = crm.operational.duplicates("contact")
  assert_eq(groups, {
    {ids = {a.id, b.id}, reasons = {"email"}},
    {ids = {c.id, d.id}, reasons = {"phone"}},
    {ids = {e.id, f.id}, reasons = {"name"}},
  })
  assert_eq(crm.operational.duplicates("contact", d.id), {{ids = {c.id, d.id}, reasons = {"phone"}}})
  assert_eq(crm.operational.duplicates("account"), {})
  assert_error(function() crm.operational.duplicates("deal") end, "contact, account or lead")
end)

test("duplicates: the exact groups and reasons, whatever was typed", function()
  crm.set_config("plugin.operational.default_country", "US")
  local acme = crm.create("account", {name = "Acme", domain = "acme.example"}).id
  local acme2 = crm.create("account", {name = "Acme Inc", domain = " ACME.example"}).id
  local globex = crm.create("account", {name = "Globex"}).id
  local globex2 = crm.create("account", {name = "GLOBEX!"}).id
  local function c(fields) return crm.create("contact", fields).id end
  -- The same email in another case and with spaces; a deleted third is not counted.
  local m1 = c({last_name = "Wong", email = " Mia.Wong@Example.com "})
  local gone = c({last_name = "Gone", email = "mia.wong@example.com"})
  local m2 = c({last_name = "Other", email = "mia.wong@example.COM"})
  crm.delete("contact", gone)
  -- One phone in three forms, and an email that chains a fourth record to them.
  local p1 = c({last_name = "P1", phone = "(415) 555-0199"})
  local p2 = c({last_name = "P2", phone = "+1 415-555-0199", email = "chain@example.com"})
  local p3 = c({last_name = "P3", phone = "415.555.0199"})
  local p4 = c({last_name = "P4", email = "CHAIN@example.com"})
  -- The same folded name at the same account; at another account, or none, it is someone else.
  local n1 = c({first_name = "Ana María", last_name = "López", account = acme})
  local n2 = c({first_name = "ana maria", last_name = "LOPEZ", account = acme})
  c({first_name = "Ana Maria", last_name = "Lopez", account = globex})
  c({first_name = "Ana Maria", last_name = "Lopez"})
  -- One letter apart at the same account; names under three letters never count.
  local k1 = c({first_name = "Karl", last_name = "Meyer", account = globex})
  local k2 = c({first_name = "Carl", last_name = "Meyer", account = globex})
  c({last_name = "Li", account = acme})
  c({last_name = "Li", account = acme})
  c({first_name = "Karl", last_name = "Meyer", account = acme2})
  assert_eq(crm.operational.duplicates("contact"), {
    {ids = {m1, m2}, reasons = {"email"}},
    {ids = {p1, p2, p3, p4}, reasons = {"email", "phone"}},
    {ids = {n1, n2}, reasons = {"name"}},
    {ids = {k1, k2}, reasons = {"name"}},
  })
  assert_eq(crm.operational.duplicates("contact", p4), {{ids = {p1, p2, p3, p4}, reasons = {"email", "phone"}}})
  assert_eq(crm.operational.duplicates("contact", gone), {})
  assert_eq(crm.operational.duplicates("account"), {
    {ids = {acme, acme2}, reasons = {"domain"}},
    {ids = {globex, globex2}, reasons = {"name"}},
  })
end)

test("a merge keeps one record, fills it, re-points references, and is explainable", function()
  local keep = crm.create("contact", {last_name = "Smith", email = "jon@acme.example"})
  local dup = crm.create("contact", {first_name = "Jon", last_name = "Smith",
                                     email = "jon@acme.example", title = "CTO"})
  local deal = crm.create("deal", {name = "D", contact = dup.id})
  local t = crm.create("ticket", {subject = "T", contact = dup.id})
  local merged_events = {}
  crm.on("contact.merged", function(ev) merged_events[#merged_events + 1] = ev.changes end,
         {name = "watch_merges"})
  local k = crm.operational.merge("contact", keep.id, {dup.id})
  assert_eq(k.first_name, "Jon")
  assert_eq(k.title, "CTO")
  assert_eq(crm.get("deal", deal.id).contact, keep.id)
  assert_eq(crm.get("ticket", t.id).contact, keep.id)
  local gone = crm.get("contact", dup.id)
  assert_true(gone.deleted_at ~= nil)
  assert_eq(gone.merged_into, keep.id)
  crm.clock.advance("1s")
  assert_eq(#merged_events, 1)
  assert_eq(merged_events[1].into, keep.id)
  assert_eq(merged_events[1].merged, {dup.id})
  assert_eq(merged_events[1].filled, {first_name = dup.id, title = dup.id})
  assert_eq(merged_events[1].repointed, {["deal.contact"] = 1, ["ticket.contact"] = 1})
  assert_eq(#crm.explain("contact", keep.id, "title") > 0, true)
  -- Nothing lost: the merged record is still there, deleted, and can be restored.
  assert_eq(crm.count("contact"), 1)
  assert_error(function() crm.operational.merge("contact", keep.id, {dup.id}) end,
               "deleted already")
  assert_error(function() crm.operational.merge("contact", keep.id, {keep.id}) end,
               "ids other than")
end)

test("with business hours, SLA targets count only those hours", function()
  -- 2026-01-01 is a Thursday; the clock starts at midnight UTC.
  crm.set_config("plugin.operational.business_hours", {days = {1, 2, 3, 4, 5},
                                                      start = "09:00", ["end"] = "17:00"})
  local high = crm.create("ticket", {subject = "High", priority = "high"})
  assert_eq(high.first_response_due, "2026-01-01T13:00:00.000Z")   -- 4 h from 09:00 Thursday
  assert_eq(high.resolution_due, "2026-01-02T17:00:00.000Z")       -- 16 h: Thursday and Friday
  local low = crm.create("ticket", {subject = "Low", priority = "low"})
  assert_eq(low.first_response_due, "2026-01-05T17:00:00.000Z")    -- 24 h: over the weekend
  -- In a zone: Tehran is UTC+3:30, so 09:00 there is 05:30 UTC.
  crm.set_config("plugin.operational.business_hours", {start = "09:00", ["end"] = "17:00",
                                                      tz = "Asia/Tehran"})
  local t = crm.create("ticket", {subject = "Tehran", priority = "urgent"})
  assert_eq(t.first_response_due, "2026-01-01T06:30:00.000Z")
  crm.set_config("plugin.operational.business_hours", {start = "17:00", ["end"] = "09:00"})
  assert_error(function() crm.create("ticket", {subject = "x"}) end, "end after start")
  crm.set_config("plugin.operational.business_hours", {start = "09:00", ["end"] = "17:00",
                                                      tz = "Mars/Olympus"})
  assert_error(function() crm.create("ticket", {subject = "x"}) end, "no time zone")
end)

test("a bulk create counts every line of an order and numbers every invoice", function()
  local o = crm.create("order", {})
  crm.create_many("order_line", {{order = o.id, unit_price = "10.00"},
                                 {order = o.id, unit_price = "2.50", quantity = 2},
                                 {order = o.id, unit_price = "0.99"}})
  assert_eq(crm.get("order", o.id).total, "15.99")
  local ids = crm.create_many("invoice", {{order = o.id}, {order = o.id}, {order = o.id}})
  assert_eq(crm.get("invoice", ids[1]).number, "INV-000001")
  assert_eq(crm.get("invoice", ids[3]).number, "INV-000003")
  assert_eq(crm.get("invoice", ids[2]).total, "15.99")
  assert_error(function() crm.update("order", o.id, {status = "shipped"}) end,
               "cannot go from placed to shipped")
end)

test("a merge keeps the stricter consent, one membership per list, and the activities", function()
  local list = crm.create("mailing_list", {name = "News"})
  local other_list = crm.create("mailing_list", {name = "Offers"})
  local keep = crm.create("contact", {last_name = "Keep", email = "k@example.com"})
  local dup = crm.create("contact", {last_name = "Keep", do_not_contact = true})
  crm.create("list_member", {list = list.id, contact = keep.id, source = "form"})
  local m = crm.create("list_member", {list = list.id, contact = dup.id, source = "fair"})
  crm.update("list_member", m.id, {opted_out_at = crm.now(), opt_out_source = "unsubscribe"})
  crm.create("list_member", {list = other_list.id, contact = dup.id, source = "fair"})
  local call = crm.create("activity", {kind = "call", subject = "Call", related_entity = "contact",
                                       related_id = dup.id})
  -- A record deleted earlier that points at the duplicate does not stop the merge.
  local old_deal = crm.create("deal", {name = "Old", contact = dup.id})
  crm.delete("deal", old_deal.id)
  local k = crm.operational.merge("contact", keep.id, {dup.id})
  assert_eq(k.do_not_contact, true)
  assert_eq(crm.count("list_member", {contact = keep.id, list = list.id}), 1)
  assert_eq(crm.count("list_member", {contact = keep.id, list = other_list.id}), 1)
  assert_eq(crm.operational.can_contact(keep.id, list.id).ok, false)
  assert_eq(crm.get("activity", call.id).related_id, keep.id)
  assert_eq(crm.get("deal", old_deal.id).contact, dup.id)   -- history stays as it was
end)
