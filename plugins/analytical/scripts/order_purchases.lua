-- Purchases from orders: an order that is paid (or delivered) records its purchase for the
-- order's contact, once; a cancelled order that had recorded one records the reversal (a
-- negative purchase), so the customer's net revenue is what they kept. Each purchase carries
-- ref "order:<id>" and source "order". Switch off with rules.order_purchases.enabled false.

local function recorded(ref)
  local r = crm.aggregate("purchase", {where = {ref = ref, source = "order"},
                                       measures = {"count", "sum:amount"}})[1]
  return r.count, r.sum_amount
end

crm.on("order.status_changed", function(ev)
  if crm.config("rules.order_purchases.enabled", true) == false then return end
  local to = ev.changes.to
  if to ~= "paid" and to ~= "delivered" and to ~= "cancelled" then return end
  local o = crm.get("order", ev.id)
  if not o or not o.contact then return end
  local ref = "order:" .. o.id
  local n, net = recorded(ref)
  if to == "cancelled" then
    if n == 0 or net == nil or net == "0.00" then return end
    local back = net:sub(1, 1) == "-" and net:sub(2) or "-" .. net
    crm.create("purchase", {customer = o.contact, at = o.status_changed_at or crm.now(),
                            amount = back, ref = ref, source = "order"})
  elseif n == 0 then
    crm.create("purchase", {customer = o.contact, at = o.status_changed_at or crm.now(),
                            amount = o.total, ref = ref, source = "order"})
  end
end, {name = "rules.order_purchases"})
