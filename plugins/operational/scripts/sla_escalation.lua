-- SLA escalation: when a ticket breaches its SLA (ticket.sla_breached, from the operational
-- plugin), it goes to a supervisor: the one rules.sla_escalation.supervisors names for the
-- ticket's owner ({"owner": "supervisor"}), else rules.sla_escalation.supervisor. The ticket
-- records who it went to, and the supervisor gets a task due at once. Switch off with
-- rules.sla_escalation.enabled false.

crm.on("ticket.sla_breached", function(ev)
  if crm.config("rules.sla_escalation.enabled", true) == false then return end
  local t = crm.get("ticket", ev.id)
  if not t or t.status == "resolved" or t.status == "closed" then return end
  local map = crm.config("rules.sla_escalation.supervisors", {})
  local boss = (t.owner and type(map) == "table" and map[t.owner])
               or crm.config("rules.sla_escalation.supervisor")
  if not boss then
    crm.log.warn("ticket " .. t.id .. " breached its " .. ev.changes.milestone
                 .. " target and has no supervisor to go to (set rules.sla_escalation.supervisor)")
    return
  end
  local subject = "SLA breached (" .. ev.changes.milestone:gsub("_", " ") .. "): " .. t.subject
  -- Safe to run again: one task per ticket and milestone.
  if crm.count("activity", {related_entity = "ticket", related_id = t.id, subject = subject}) > 0 then
    return
  end
  crm.update("ticket", t.id, {escalated_to = boss})
  crm.create("activity", {kind = "task", subject = subject, owner = boss, due_at = crm.now(),
                          related_entity = "ticket", related_id = t.id})
end, {name = "rules.sla_escalation"})
