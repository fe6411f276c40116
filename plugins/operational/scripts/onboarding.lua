-- Onboarding: when a deal is won, its owner gets the onboarding tasks, linked to the deal.
-- rules.onboarding.tasks lists them as [{"subject": "…", "due": "2d"}, …]; switch off with
-- rules.onboarding.enabled false.

local defaults = {
  {subject = "Welcome call", due = "1d"},
  {subject = "Send the onboarding pack", due = "2d"},
  {subject = "Kick-off meeting", due = "7d"},
}

crm.on("deal.stage_changed", function(ev)
  if ev.changes.kind ~= "won" or crm.config("rules.onboarding.enabled", true) == false then
    return
  end
  local deal = crm.get("deal", ev.id)
  if not deal then return end
  -- Safe to run again, and once per deal even if it is won twice.
  if crm.count("activity", {related_entity = "deal", related_id = deal.id,
                            subject = {starts_with = "Onboarding: "}}) > 0 then
    return
  end
  local start = crm.now_ms()
  for _, t in ipairs(crm.config("rules.onboarding.tasks", defaults)) do
    crm.create("activity", {
      kind = "task", subject = "Onboarding: " .. t.subject .. " — " .. deal.name,
      owner = deal.owner, related_entity = "deal", related_id = deal.id,
      due_at = crm.time(start + crm.delay_ms(t.due or "1d"))})
  end
end, {name = "rules.onboarding"})
