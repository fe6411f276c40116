-- The analytical plugin through the crm API (run by `rapport test`): purchases and the
-- customers they name, the order rule, RFM with its tie rule and segments, Pareto, cohorts
-- and the forecast, each checked against figures worked by hand.

local function buy(customer, at, amount, ref)
  return crm.create("purchase", {customer = customer, at = at, amount = amount, ref = ref})
end

test("a purchase names its customer by id, by #id or by external id", function()
  local ada = crm.create("contact", {last_name = "Lovelace", external_id = "A-1"})
  assert_eq(buy(ada.id, "2026-01-02", "10.00").customer, ada.id)
  assert_eq(buy("#" .. ada.id, "2026-01-02", "1.00").customer, ada.id)
  assert_eq(buy("A-1", "2026-01-03", "2.50").customer, ada.id)
  -- An unknown key becomes a minimal contact, once, even twice in one batch.
  local ids = crm.create_many("purchase", {
    {customer = " NEW-7 ", at = "2026-01-04", amount = "3.00"},
    {customer = "NEW-7", at = "2026-01-05", amount = "4.00"}})
  local rows = {crm.get("purchase", ids[1]), crm.get("purchase", ids[2])}
  assert_eq(rows[1].customer, rows[2].customer)
  local c = crm.get("contact", rows[1].customer)
  assert_eq(c.external_id, "NEW-7")
  assert_eq(c.last_name, "Customer NEW-7")
  assert_eq(c.source, "purchase")
  assert_eq(crm.count("contact", {external_id = "NEW-7"}), 1)
  assert_error(function() buy("", "2026-01-04", "1.00") end, "is not a contact id or an external id")
  assert_error(function() buy("#999999", "2026-01-04", "1.00") end, "there is no contact with id 999999")
  assert_error(function() buy("#12x", "2026-01-04", "1.00") end, '"#12x" is not a contact id')
  assert_error(function() buy("A-1", "2026-01-04", "1.001") end, "at most 2 decimal places")
  -- A refused purchase made no contact.
  assert_error(function() buy("GHOST", "not a date", "1.00") end, "purchase.at")
  assert_eq(crm.count("contact", {external_id = "GHOST"}), 0)
end)

test("a paid order records its purchase once; a cancelled one its reversal", function()
  local c = crm.create("contact", {last_name = "Buyer"})
  local o = crm.create("order", {contact = c.id})
  crm.create("order_line", {order = o.id, unit_price = "40.00", quantity = 2})
  crm.update("order", o.id, {status = "paid"})
  crm.clock.advance("1s")
  local p = crm.find("purchase", {where = {ref = "order:" .. o.id}})
  assert_eq(#p, 1)
  assert_eq(p[1].amount, "80.00")
  assert_eq(p[1].customer, c.id)
  assert_eq(p[1].source, "order")
  crm.update("order", o.id, {status = "cancelled"})
  crm.clock.advance("1s")
  local sum = crm.aggregate("purchase", {where = {ref = "order:" .. o.id},
                                         measures = {"count", "sum:amount"}})[1]
  assert_eq(sum.count, 2)
  assert_eq(sum.sum_amount, "0.00")
  -- Shipped and delivered: still one purchase.
  local o2 = crm.create("order", {contact = c.id})
  crm.create("order_line", {order = o2.id, unit_price = "5.00"})
  for _, s in ipairs({"paid", "shipped", "delivered"}) do
    crm.update("order", o2.id, {status = s})
    crm.clock.advance("1s")
  end
  assert_eq(crm.count("purchase", {ref = "order:" .. o2.id}), 1)
  -- Switched off, an order records nothing.
  crm.set_config("rules.order_purchases.enabled", false)
  local o3 = crm.create("order", {contact = c.id})
  crm.create("order_line", {order = o3.id, unit_price = "5.00"})
  crm.update("order", o3.id, {status = "paid"})
  crm.clock.advance("1s")
  assert_eq(crm.count("purchase", {ref = "order:" .. o3.id}), 0)
end)

-- Ten customers, one purchase each on days 1..10 of January; amounts 10 ×5, 20, 30, 40, 50, 60.
local function ten()
  local ids = {}
  local amounts = {"10", "10", "10", "10", "10", "20", "30", "40", "50", "60"}
  for i = 1, 10 do
    local c = crm.create("contact", {last_name = "C" .. i})
    ids[i] = c.id
    buy(c.id, ("2026-01-%02d"):format(i), amounts[i])
  end
  return ids
end

test("RFM: quintiles keep ties together, recency reversed, segments stored", function()
  local ids = ten()
  local changed = {}
  crm.on("contact.segment_changed", function(ev) changed[#changed + 1] = ev end)
  local r = crm.analytical.rfm({as_of = "2026-01-11"})
  assert_eq(r.customers, 10)
  assert_eq(r.stored, true)
  -- R by position among ten distinct recencies (worst first); F all tied at 1; M: the five
  -- 10s share the lowest score, not 1,1,2,2,3 as ranks would give.
  local want = {"111", "111", "211", "211", "311", "313", "414", "414", "515", "515"}
  local seg = {"Lost", "Lost", "Hibernating", "Hibernating", "About to Sleep", "About to Sleep",
               "Promising", "Promising", "New", "New"}
  for i = 1, 10 do
    local c = crm.get("contact", ids[i])
    assert_eq(c.rfm_score, want[i])
    assert_eq(c.rfm_segment, seg[i])
    assert_eq(c.rfm_frequency, 1)
    assert_eq(c.last_purchase_at, ("2026-01-%02dT00:00:00.000Z"):format(i))
  end
  assert_eq(crm.get("contact", ids[10]).rfm_monetary, "60.00")
  crm.clock.advance("1s")
  assert_eq(#changed, 10)
  assert_eq(changed[1].changes.to, "Lost")
  assert_eq(changed[1].changes.from, nil)
  -- The report: one row a segment, in the table's order.
  local rows = {}
  for _, row in ipairs(r.rows) do rows[row[1]] = row end
  assert_eq(rows["New"][2], 2)
  assert_eq(rows["Champions"][2], 0)
  -- Run again: nothing changed, nothing written, no event.
  local again = crm.analytical.rfm({as_of = "2026-01-11"})
  assert_eq(again.contacts_changed, 0)
  assert_eq(again.segment_changes, 0)
  -- A dry run computes without storing.
  local dry = crm.analytical.rfm({as_of = "2026-03-01", dry_run = true})
  assert_eq(dry.stored, false)
  assert_eq(crm.get("contact", ids[1]).rfm_score, "111")
end)

test("RFM frequency counts distinct orders, a purchase without ref alone", function()
  local c = crm.create("contact", {last_name = "Multi"})
  buy(c.id, "2026-01-01", "5", "inv-1")
  buy(c.id, "2026-01-01", "5", "inv-1")
  buy(c.id, "2026-01-02", "5", "inv-2")
  buy(c.id, "2026-01-03", "5")
  buy(c.id, "2026-01-04", "-5", "inv-2")   -- a return on an invoice already counted
  local r = crm.analytical.rfm({as_of = "2026-01-10", customers = true})
  assert_eq(r.list[1].frequency, 3)
  assert_eq(r.list[1].monetary, "15.00")
  assert_eq(r.list[1].recency_days, 6)
end)

test("the segment table covers every code and can be replaced", function()
  ten()
  local default = crm.analytical.segments()
  assert_eq(#default, 11)
  assert_eq(default[1].name, "Champions")
  crm.set_config("plugin.analytical.rfm_segments", {{name = "Only", r = {1, 4}, f = {1, 5}, m = {1, 5}}})
  assert_error(function() crm.analytical.rfm({as_of = "2026-01-11"}) end,
               "leaves code 511 without a segment")
  crm.set_config("plugin.analytical.rfm_segments", {
    {name = "Recent", r = {4, 5}, f = {1, 5}, m = {1, 5}},
    {name = "Earlier", r = {1, 3}, f = {1, 5}, m = {1, 5}}})
  local r = crm.analytical.rfm({as_of = "2026-01-11"})
  assert_eq(#r.rows, 2)
  assert_eq(r.rows[1][1], "Recent")
  assert_eq(r.rows[1][2], 4)
end)

test("Pareto: the top 20 % share, the Gini and key customers", function()
  local v = {"100", "50", "25", "15", "10"}
  local ids = {}
  for i = 1, 5 do
    local c = crm.create("contact", {first_name = "K", last_name = tostring(i)})
    ids[i] = c.id
    buy(c.id, "2026-01-05", v[i])
  end
  local r = crm.analytical.pareto({as_of = "2026-02-01", cut = "20,40", top = 2})
  assert_eq(r.customers, 5)
  assert_eq(r.revenue, 200.0)
  assert_eq(r.shares["top_20%"], 0.5)
  assert_eq(r.shares["top_40%"], 0.75)
  -- Gini by hand: ascending 10, 15, 25, 50, 100: (−4·10 − 2·15 + 0 + 2·50 + 4·100) / (5·200).
  assert_eq(r.gini, 0.43)
  assert_eq(#r.rows, 2)
  assert_eq(r.rows[1][2], ids[1])
  assert_eq(r.rows[1][3], "K 1")
  assert_eq(r.rows[2][6], 0.75)
  assert_eq(r.chart.kind, "curve")
  assert_eq(r.chart.x[#r.chart.x], 1.0)
  assert_eq(r.chart.y[#r.chart.y], 1.0)
  assert_error(function() crm.analytical.pareto({cut = "120"}) end, "cut must be percentages")
  assert_error(function() crm.analytical.pareto({asof = "2026-02-01"}) end,
               'pareto has no option "asof"')
end)

test("cohorts: customers by first month, retention in later months", function()
  local a = crm.create("contact", {last_name = "A"}).id
  local b = crm.create("contact", {last_name = "B"}).id
  local c = crm.create("contact", {last_name = "C"}).id
  buy(a, "2026-01-05", "10"); buy(a, "2026-02-05", "10"); buy(a, "2026-03-05", "5")
  buy(b, "2026-01-20", "10"); buy(b, "2026-03-01", "7")
  buy(c, "2026-02-10", "10"); buy(c, "2026-02-11", "10")
  local r = crm.analytical.cohorts({by = "month"})
  assert_eq(r.columns, {"cohort", "customers", "0", "1", "2"})
  assert_eq(r.rows[1], {"2026-01", 2, 1.0, 0.5, 1.0})
  assert_eq(r.rows[2][1], "2026-02")
  assert_eq(r.rows[2][2], 1)
  assert_eq(r.rows[2][3], 1.0)
  assert_eq(r.rows[2][4], nil)
  local rev = crm.analytical.cohorts({by = "month", revenue = true})
  assert_eq(rev.rows[1], {"2026-01", 2, 20.0, 10.0, 12.0})
  assert_eq(rev.rows[2][3], 20.0)
  assert_error(function() crm.analytical.cohorts({by = "fortnight"}) end, "by must be day")
end)

test("the forecast weighs open deals by their stage and shows what was won", function()
  crm.create("deal", {name = "A", amount = "1000.00", owner = "ana", expected_close = "2026-02-10",
                      stage = "proposal"})                         -- 50 %
  crm.create("deal", {name = "B", amount = "333.33", owner = "ana", expected_close = "2026-02-20",
                      stage = "qualified"})                        -- 25 %
  crm.create("deal", {name = "C", amount = "200.00", owner = "bo", expected_close = "2026-03-01",
                      stage = "negotiation"})                      -- 75 %
  local w = crm.create("deal", {name = "W", amount = "70.00", owner = "ana"})
  crm.update("deal", w.id, {stage = "won"})
  local r = crm.analytical.forecast()
  -- 2026-01 (won now, on the virtual clock), then 2026-02 ana, 2026-03 bo.
  assert_eq(r.rows[1], {"2026-01", "ana", 0, "0.00", "0.00", "70.00"})
  assert_eq(r.rows[2], {"2026-02", "ana", 2, "1333.33", "583.33", "0.00"})
  assert_eq(r.rows[3], {"2026-03", "bo", 1, "200.00", "150.00", "0.00"})
  assert_eq(r.forecast, "733.33")
  assert_eq(r.won, "70.00")
  assert_eq(r.chart.categories, {"2026-01", "2026-02", "2026-03"})
end)

test("historic CLV: purchases less costs, at the time value of money", function()
  crm.set_config("plugin.analytical.cost_per_ticket", 5)
  local c = crm.create("contact", {last_name = "Val", acquisition_cost = "10.00"})
  buy(c.id, "2024-01-01", "100.00")
  crm.create("ticket", {subject = "help", contact = c.id})   -- now: 2026-01-01, the reference day
  local r = crm.analytical.clv({as_of = "2026-01-01", rate = 0.1, dry_run = true})
  -- By hand: 731 days before the reference day at 10 % a year, 100 is worth
  -- 100 × 1.1^(731/365.25) = 121.0158; the acquisition cost on the same day 12.1016; the
  -- ticket 5 on the day itself: 103.9142.
  assert_eq(r.rows[1][8], "103.91")
  assert_eq(r.stored, false)
  -- At a rate of 0 the value is plain arithmetic.
  r = crm.analytical.clv({as_of = "2026-01-01", rate = 0})
  assert_eq(r.rows[1][8], "85.00")
  assert_eq(crm.get("contact", c.id).clv_historic, "85.00")
  -- One customer is too few for a model: said, and the historic value still stored.
  assert_eq(r.model_error ~= nil, true)
  assert_error(function() crm.analytical.clv({rate = -1}) end, "rate must be")
  assert_error(function() crm.analytical.clv({horizon = "3x"}) end, "horizon must be")
  assert_error(function() crm.analytical.clv({model = "magic"}) end, "model must be bgnbd")
end)

-- Forty customers: some buy every week until the end, some stopped early.
local function crowd()
  local ids = {}
  for i = 1, 40 do
    local c = crm.create("contact", {last_name = "P" .. i, owner = "ana"})
    ids[i] = c.id
    local stop = (i % 4 == 0) and 4 or 40
    for w = 0, stop, (i % 3) + 1 do
      buy(c.id, crm.time(crm.time_ms("2025-01-01") + w * 7 * 86400000):sub(1, 10),
          tostring(10 + i % 7) .. ".00")
    end
  end
  return ids
end

test("predicted CLV and churn risk: stored, an event for each newly at risk", function()
  local ids = crowd()
  local events = {}
  crm.on("contact.churn_risk", function(ev) events[#events + 1] = ev end)
  local r = crm.analytical.clv({as_of = "2025-10-15", top = 3})
  assert_eq(r.model, "bgnbd")
  assert_eq(r.customers, 40)
  assert_eq(r.model_error, nil)
  assert_eq(#r.rows, 3)
  -- Those who stopped after four weeks are the ones at risk, and only they.
  local quitter, regular = crm.get("contact", ids[4]), crm.get("contact", ids[1])
  assert_eq(quitter.churn_risk, true)
  assert_eq(regular.churn_risk, false)
  assert_eq(quitter.p_alive < regular.p_alive, true)
  assert_eq(tonumber(regular.clv_predicted) > tonumber(quitter.clv_predicted), true)
  assert_eq(r.at_risk, 10)
  crm.clock.advance("1s")
  assert_eq(#events, 10)
  -- Again: nobody is newly at risk.
  local again = crm.analytical.churn({as_of = "2025-10-15"})
  assert_eq(again.newly_at_risk, 0)
  assert_eq(#again.rows, 10)
end)

test("the retention rule opens a task for each customer newly at risk, when switched on", function()
  local ids = crowd()
  crm.analytical.churn({as_of = "2025-10-15"})
  crm.clock.advance("1s")
  assert_eq(crm.count("activity"), 0)             -- off by default
  crm.set_config("rules.churn_retention.enabled", true)
  for _, id in ipairs(ids) do crm.update("contact", id, {churn_risk = false}) end
  crm.analytical.churn({as_of = "2025-10-15"})
  crm.clock.advance("1s")
  assert_eq(crm.count("activity", {kind = "task"}), 10)
  local t = crm.find("activity", {where = {related_id = ids[4]}})[1]
  assert_eq(t.owner, "ana")
  assert_eq(t.subject:find("Retention: P4 may be slipping away", 1, true) ~= nil, true)
  assert_eq(t.due_at, "2026-01-03T00:00:01.000Z")
end)

test("fit: BG/NBD, Pareto/NBD and Gamma-Gamma on a calibration window", function()
  crowd()
  local f = crm.analytical.fit({model = "bgnbd", calibration_end = "2025-10-15"})
  assert_eq(f.converged, true)
  assert_eq(f.customers, 40)
  assert_eq(f.params.r > 0 and f.params.alpha > 0, true)
  local p = crm.analytical.fit({model = "paretonbd", calibration_end = "2025-10-15"})
  assert_eq(p.model, "paretonbd")
  local g = crm.analytical.fit({model = "gammagamma", calibration_end = "2025-10-15"})
  assert_eq(g.customers, 40)
  assert_error(function() crm.analytical.fit({model = "bgnbd", unit = "month"}) end,
               "unit must be week or day")
  assert_error(function() crm.analytical.fit({model = "bgnbd", calibration_end = "1990-01-01"}) end,
               "no customer to fit")
end)
