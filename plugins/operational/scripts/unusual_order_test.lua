-- Tests of unusual_order.lua.

local function order(contact, total)
  local o = crm.create("order", {contact = contact, owner = "ana"})
  crm.create("order_line", {order = o.id, unit_price = total})
  crm.update("order", o.id, {status = "paid"})
  return o.id
end

test("an order far above the customer's usual is flagged for its owner", function()
  local c = crm.create("contact", {last_name = "Buyer"}).id
  for _, t in ipairs({"100.00", "120.00", "80.00"}) do order(c, t) end
  local normal = order(c, "250.00")
  crm.clock.advance("1s")
  assert_eq(crm.get("order", normal).unusual, false)
  local big = order(c, "2000.00")
  crm.clock.advance("1s")
  assert_eq(crm.get("order", big).unusual, true)
  local t = crm.find("activity", {where = {related_entity = "order", related_id = big}})
  assert_eq(#t, 1)
  assert_eq(t[1].owner, "ana")
  assert_eq(t[1].subject, "Sales opportunity: order " .. big
                          .. " is 14.5× this customer's usual 137.50 USD")
end)

test("a new customer's first orders are never unusual", function()
  local c = crm.create("contact", {last_name = "New"}).id
  order(c, "10.00")
  local second = order(c, "5000.00")
  crm.clock.advance("1s")
  assert_eq(crm.get("order", second).unusual, false)
  assert_eq(crm.count("activity"), 0)
end)
