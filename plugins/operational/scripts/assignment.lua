-- Assignment: a new lead or ticket without an owner gets one, from the people listed in
-- rules.assignment.users (a JSON list of user ids), either in turn ("round_robin", the
-- default) or to whoever has the fewest open ones ("least_loaded"), as rules.assignment.mode
-- says. Nobody listed: nothing happens. Switch off with rules.assignment.enabled false.

local open = {
  lead = {status = {not_in = {"converted", "unqualified"}}},
  ticket = {status = {not_in = {"resolved", "closed"}}},
}

local function pick(entity)
  if crm.config("rules.assignment.enabled", true) == false then return nil end
  local users = crm.config("rules.assignment.users", {})
  if type(users) ~= "table" or #users == 0 then return nil end
  if crm.config("rules.assignment.mode", "round_robin") == "least_loaded" then
    local best, best_n
    for _, u in ipairs(users) do
      local where = {owner = u}
      for k, v in pairs(open[entity]) do where[k] = v end
      local n = crm.count(entity, where)
      if not best_n or n < best_n then best, best_n = u, n end
    end
    return best
  end
  -- In turn: the next after the owner of the newest record that has one of them.
  local last = crm.find(entity, {where = {owner = {["in"] = users}}, order = "-id", limit = 1})[1]
  for i, u in ipairs(users) do
    if last and last.owner == u then return users[i % #users + 1] end
  end
  return users[1]
end

for entity in pairs(open) do
  crm.before(entity .. ".create", function(r)
    if r.owner == nil or r.owner == "" then r.owner = pick(entity) end
  end)
end
