-- Tests of the loyalty plugin, each on a fresh database with the plugin loaded and the clock at
-- 2026-01-01T00:00Z:  rapport --plugins <build folder> test examples/loyalty/scripts
-- Points are awarded by a durable event handler, which runs when the engine next runs what is
-- due: crm.clock.advance() does that in a test, `rapport serve` in production.

local function customer(name)
  return crm.create("loyalty_customer", {name = name}).id
end

local function buy(member, amount)
  local p = crm.create("loyalty_purchase", {member = member, amount = amount})
  crm.clock.advance("1s")
  return p
end

test("a purchase earns a point per whole currency unit", function()
  local ada = customer("Ada Lovelace")
  assert_eq(crm.loyalty.balance(ada), 0, "no account yet")
  buy(ada, "120.99")
  buy(ada, "0.50")
  buy(ada, 30)
  assert_eq(crm.loyalty.balance(ada), 150)
  local acct = crm.find("loyalty_account", {where = {member = ada}})[1]
  assert_eq(acct.points, 150)
  assert_eq(acct.tier, "bronze")
  assert_eq(crm.count("loyalty_award", {expired = false}), 2, "half a unit earns nothing")
end)

test("the tier follows the balance", function()
  local grace = customer("Grace Hopper")
  buy(grace, "499")
  assert_eq(crm.find("loyalty_account", {where = {member = grace}})[1].tier, "bronze")
  buy(grace, "1")
  assert_eq(crm.find("loyalty_account", {where = {member = grace}})[1].tier, "silver")
  buy(grace, "1500")
  assert_eq(crm.find("loyalty_account", {where = {member = grace}})[1].tier, "gold")
end)

test("points expire 365 days after they were earned, each award on its own", function()
  local ada = customer("Ada Lovelace")
  buy(ada, "100")                       -- 2026-01-01
  crm.clock.advance("200d")
  buy(ada, "40")                        -- 2026-07-20
  assert_eq(crm.loyalty.balance(ada), 140)
  crm.clock.advance("165d")             -- 2027-01-01: the first award is 365 days old
  assert_eq(crm.loyalty.balance(ada), 140, "not before the nightly run after the expiry")
  crm.clock.advance("1d")
  assert_eq(crm.loyalty.balance(ada), 40, "the first award expired, the second did not")
  assert_eq(crm.count("loyalty_award", {expired = true}), 1)
  local acct = crm.find("loyalty_account", {where = {member = ada}})[1]
  local last = crm.history("loyalty_account", acct.id)
  assert_true(#last >= 3, "every change of the balance is in the event log")
  crm.clock.advance("200d")
  assert_eq(crm.loyalty.balance(ada), 0)
  assert_eq(crm.count("loyalty_award", {expired = false}), 0)
end)

test("a deal won or an order delivered earns its amount, once", function()
  -- Stand-ins for the entities the sales plugins bring, with their usual field names.
  crm.schema.define("deal", {fields = {
    member = {type = "ref", ref = "loyalty_customer"},
    amount = {type = "decimal"},
    stage = {type = "enum", values = {"open", "won", "lost"}, default = "open"},
  }})
  crm.schema.define("order", {fields = {
    member = {type = "ref", ref = "loyalty_customer"},
    total = {type = "decimal"},
    status = {type = "enum", values = {"new", "delivered"}, default = "new"},
  }})
  local ada = customer("Ada Lovelace")
  local deal = crm.create("deal", {member = ada, amount = "1200.50"})
  local order = crm.create("order", {member = ada, total = "75"})
  crm.clock.advance("1s")
  assert_eq(crm.loyalty.balance(ada), 0, "nothing is won or delivered yet")
  crm.update("deal", deal.id, {stage = "won"})
  crm.update("order", order.id, {status = "delivered"})
  crm.clock.advance("1s")
  assert_eq(crm.loyalty.balance(ada), 1275)
  crm.update("deal", deal.id, {stage = "lost"})
  crm.update("deal", deal.id, {stage = "won"})
  crm.clock.advance("1s")
  assert_eq(crm.loyalty.balance(ada), 1275, "a deal won twice earns once")
end)

test("a purchase of nothing, or less, is refused", function()
  local ada = customer("Ada Lovelace")
  assert_error(function() crm.create("loyalty_purchase", {member = ada, amount = "0"}) end,
               "amount must be above zero")
  assert_error(function() crm.create("loyalty_purchase", {member = ada, amount = -5}) end,
               "amount must be above zero")
  local p = buy(ada, "10")
  assert_error(function() crm.update("loyalty_purchase", p.id, {amount = "-10"}) end,
               "amount must be above zero")
  assert_eq(crm.count("loyalty_purchase"), 1)
  assert_eq(crm.loyalty.balance(ada), 10)
end)

test("crm.loyalty.balance says what is wrong with its argument", function()
  assert_error(function() crm.loyalty.balance() end, "needs one member id")
  assert_error(function() crm.loyalty.balance("ada") end, "needs one member id")
  assert_error(function() crm.loyalty.balance(1.5) end, "needs one member id")
  assert_error(function() crm.loyalty.balance(42) end, "no loyalty_customer with id 42")
end)
