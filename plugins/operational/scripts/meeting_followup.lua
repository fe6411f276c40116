-- Meeting follow-up: when a meeting ends and nobody wrote its next step, its owner gets a task
-- to follow up, due a day later, on the same record. The check is a durable job at the
-- meeting's end, moved when the end moves, cancelled once a next step is written. Switch off
-- with rules.meeting_followup.enabled false; rules.meeting_followup.due sets the delay ("1d").

local function key(id) return "rules.meeting_followup:" .. id end

-- Checks the meeting at its end (or now, if it ended already).
local function watch(m)
  local wait = math.max(0, crm.time_ms(m.ends_at) - crm.now_ms())
  crm.after(wait .. "ms", "rules.meeting_followup", {id = m.id}, {key = key(m.id)})
end

crm.job("rules.meeting_followup", function(p)
  if crm.config("rules.meeting_followup.enabled", true) == false then return end
  local m = crm.get("activity", p.id)
  if not m or m.deleted_at or m.kind ~= "meeting" or not m.ends_at then return end
  if m.next_step and m.next_step ~= "" then return end
  if crm.time_ms(m.ends_at) > crm.now_ms() then return watch(m) end   -- moved later
  local subject = "Follow up: " .. m.subject
  local marker = "After meeting " .. m.id
  if crm.count("activity", {kind = "task", description = marker}) > 0 then
    return                                                             -- a retried job
  end
  crm.create("activity", {
    kind = "task", subject = subject, owner = m.owner, description = marker,
    related_entity = m.related_entity, related_id = m.related_id,
    due_at = crm.time(crm.now_ms() + crm.delay_ms(crm.config("rules.meeting_followup.due", "1d")))})
end)

crm.on("activity.*", function(ev)
  if ev.type ~= "activity.created" and ev.type ~= "activity.updated" then return end
  local m = crm.get("activity", ev.id)
  if not m or m.kind ~= "meeting" or not m.ends_at then return end
  if m.next_step and m.next_step ~= "" then
    crm.cancel(key(m.id))
  else
    watch(m)
  end
end, {name = "rules.meeting_followup"})
