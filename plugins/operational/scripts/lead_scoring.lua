-- Lead scoring: a lead's score (0..100) from its profile and from the activities logged on it,
-- kept up to date on every write. Switch off with `rapport config set
-- rules.lead_scoring.enabled false`; change the weights with rules.lead_scoring.weights, a JSON
-- object shaped like `defaults` below (any key left out keeps its default).

local defaults = {
  email = 10, phone = 10, company = 10, title = 5,          -- profile: a field that is filled
  source = {referral = 25, event = 20, web = 10, ads = 5},  -- where the lead came from
  status = {contacted = 10, qualified = 30},                -- how far it got
  activity = 5, activity_max = 25,                          -- each logged call/meeting/task
}

local function enabled() return crm.config("rules.lead_scoring.enabled", true) ~= false end

local function weights()
  local w = crm.config("rules.lead_scoring.weights", {})
  local out = {}
  for k, v in pairs(defaults) do
    if type(v) == "table" then
      out[k] = {}
      for kk, vv in pairs(v) do out[k][kk] = vv end
      for kk, vv in pairs(type(w[k]) == "table" and w[k] or {}) do out[k][kk] = vv end
    else
      out[k] = w[k] ~= nil and w[k] or v
    end
  end
  return out
end

-- The score of a lead whose fields are `l`, with `n` activities logged on it.
local function score(l, n)
  local w, s = weights(), 0
  for _, f in ipairs({"email", "phone", "company", "title"}) do
    if l[f] ~= nil and l[f] ~= "" then s = s + w[f] end
  end
  s = s + (w.source[l.source or ""] or 0) + (w.status[l.status or ""] or 0)
  s = s + math.min((n or 0) * w.activity, w.activity_max)
  return math.max(0, math.min(100, math.floor(s)))
end

local function activities(id)
  return crm.count("activity", {related_entity = "lead", related_id = id})
end

crm.before("lead.create", function(r)
  if enabled() then r.score = score(r, 0) end
end)

crm.before("lead.update", function(patch, old)
  if not enabled() or patch.score ~= nil then return end   -- a score set by hand stands
  local merged = {}
  for k, v in pairs(old) do merged[k] = v end
  for k, v in pairs(patch) do merged[k] = v end
  local s = score(merged, activities(old.id))
  if s ~= old.score then patch.score = s end
end)

-- An activity logged on a lead moves its score.
crm.on("activity.created", function(ev)
  if not enabled() then return end
  local a = crm.get("activity", ev.id)
  if not a or a.related_entity ~= "lead" or not a.related_id then return end
  local l = crm.get("lead", a.related_id)
  if not l or l.status == "converted" then return end
  local s = score(l, activities(l.id))
  if s ~= l.score then crm.update("lead", l.id, {score = s}) end
end, {name = "rules.lead_scoring"})
