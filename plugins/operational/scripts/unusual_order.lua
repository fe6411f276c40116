-- Unusual orders: an order paid for far above what that customer usually spends (more than
-- rules.unusual_order.factor times the average of their earlier orders, 3 by default, with at
-- least rules.unusual_order.min_orders earlier ones, 3) is flagged, and its owner gets a task:
-- it may be a sales opportunity. Switch off with rules.unusual_order.enabled false.

local function amount(d) return tonumber(d or "0") or 0 end

crm.on("order.status_changed", function(ev)
  if ev.changes.to ~= "paid" or crm.config("rules.unusual_order.enabled", true) == false then
    return
  end
  local o = crm.get("order", ev.id)
  if not o or o.unusual then return end
  local who = o.contact and {contact = o.contact} or (o.account and {account = o.account})
  if not who then return end
  who.id = {ne = o.id}
  who.status = {ne = "cancelled"}
  local sum, n, after = 0, 0, nil
  repeat
    local page, nxt = crm.find("order", {where = who, fields = {"total"}, limit = 500,
                                         after = after})
    for _, e in ipairs(page) do sum, n = sum + amount(e.total), n + 1 end
    after = nxt
  until not after
  local factor = crm.config("rules.unusual_order.factor", 3)
  if n < crm.config("rules.unusual_order.min_orders", 3) or sum <= 0 then return end
  local usual = sum / n
  if amount(o.total) <= factor * usual then return end
  crm.update("order", o.id, {unusual = true})
  crm.create("activity", {
    kind = "task", owner = o.owner, related_entity = "order", related_id = o.id,
    subject = ("Sales opportunity: order %d is %.1f× this customer's usual %.2f %s")
              :format(o.id, amount(o.total) / usual, usual, o.currency or ""),
    due_at = crm.time(crm.now_ms() + crm.delay_ms("1d"))})
end, {name = "rules.unusual_order"})
