-- Retention tasks: when the churn analysis finds a customer newly at risk (the event
-- contact.churn_risk), their owner gets a task to win them back. Off by default: switch on
-- with rules.churn_retention.enabled true; rules.churn_retention.due is when the task is due
-- ("2d" by default).

crm.on("contact.churn_risk", function(ev)
  if crm.config("rules.churn_retention.enabled", false) ~= true then return end
  local c = crm.get("contact", ev.id)
  if not c then return end
  local why = ev.changes.reason or "at risk"
  local name = ((c.first_name and c.first_name .. " ") or "") .. (c.last_name or "")
  crm.create("activity", {
    kind = "task", owner = c.owner, related_entity = "contact", related_id = c.id,
    subject = ("Retention: %s may be slipping away (%s)"):format(name, why),
    due_at = crm.time(crm.now_ms() + crm.delay_ms(crm.config("rules.churn_retention.due", "2d")))})
end, {name = "rules.churn_retention"})
