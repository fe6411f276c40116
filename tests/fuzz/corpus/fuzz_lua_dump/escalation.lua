-- Escalate an incident that nobody answered within its deadline: the deadline is a durable job
-- keyed by the incident, moved when the priority changes, cancelled when the incident is answered.
-- (An example of a rule in Lua on an entity an admin defines; tickets have their SLAs in the
-- operational plugin.)

if not crm.schema.get().incident then
  crm.schema.define("incident", {fields = {
    subject  = {type = "text", required = true, searchable = true},
    priority = {type = "enum", values = {"low", "normal", "high", "urgent"}, default = "normal"},
    status   = {type = "enum", values = {"open", "answered", "closed"}, default = "open"},
    escalated = {type = "boolean", default = false},
  }})
end

local deadline = {urgent = "1h", high = "4h", normal = "8h", low = "24h"}

local function key(id) return "escalate:incident:" .. id end

crm.job("incident.escalate", function(p)
  local t = crm.get("incident", p.id)
  if t and t.status == "open" then
    crm.update("incident", t.id, {priority = "urgent", escalated = true})
    crm.emit("incident.escalated", {subject = t.subject}, {entity = "incident", id = t.id})
  end
end)

crm.on("incident.created", function(ev)
  local t = crm.get("incident", ev.id)
  crm.after(deadline[t.priority], "incident.escalate", {id = t.id}, {key = key(t.id)})
end)

crm.on("incident.updated", function(ev)
  local status = ev.changes.status
  if status and status[2] ~= "open" then
    crm.cancel(key(ev.id))
  elseif ev.changes.priority and not ev.changes.escalated then
    -- A new priority moves the deadline: same key, new time.
    crm.after(deadline[ev.changes.priority[2]], "incident.escalate", {id = ev.id}, {key = key(ev.id)})
  end
end)

-- Subjects are trimmed (in one pass: "^%s*(.-)%s*$" backtracks over a long run of spaces),
-- and an incident cannot be created already answered.
local function trim(s)
  local first = s:find("%S")
  if not first then return "" end
  return s:sub(first, #s - s:reverse():find("%S") + 1)
end
crm.before("incident.create", function(t)
  t.subject = t.subject and trim(t.subject)
  if t.status and t.status ~= "open" then
    error("a new incident is open; got status " .. t.status)
  end
end)
