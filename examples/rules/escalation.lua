-- Escalate a ticket that nobody answered within its deadline: the deadline is a durable job
-- keyed by the ticket, moved when the priority changes, cancelled when the ticket is answered.
-- (An example of a rule in Lua; the real ticket entity comes with the operational plugin.)

if not crm.schema.get().ticket then
  crm.schema.define("ticket", {fields = {
    subject  = {type = "text", required = true, searchable = true},
    priority = {type = "enum", values = {"low", "normal", "high", "urgent"}, default = "normal"},
    status   = {type = "enum", values = {"open", "answered", "closed"}, default = "open"},
    escalated = {type = "boolean", default = false},
  }})
end

local deadline = {urgent = "1h", high = "4h", normal = "8h", low = "24h"}

local function key(id) return "escalate:ticket:" .. id end

crm.job("ticket.escalate", function(p)
  local t = crm.get("ticket", p.id)
  if t and t.status == "open" then
    crm.update("ticket", t.id, {priority = "urgent", escalated = true})
    crm.emit("ticket.escalated", {subject = t.subject}, {entity = "ticket", id = t.id})
  end
end)

crm.on("ticket.created", function(ev)
  local t = crm.get("ticket", ev.id)
  crm.after(deadline[t.priority], "ticket.escalate", {id = t.id}, {key = key(t.id)})
end)

crm.on("ticket.updated", function(ev)
  local status = ev.changes.status
  if status and status[2] ~= "open" then
    crm.cancel(key(ev.id))
  elseif ev.changes.priority and not ev.changes.escalated then
    -- A new priority moves the deadline: same key, new time.
    crm.after(deadline[ev.changes.priority[2]], "ticket.escalate", {id = ev.id}, {key = key(ev.id)})
  end
end)

-- Subjects are trimmed, and a ticket cannot be created already answered.
crm.before("ticket.create", function(t)
  t.subject = t.subject and t.subject:match("^%s*(.-)%s*$")
  if t.status and t.status ~= "open" then
    error("a new ticket is open; got status " .. t.status)
  end
end)
