crm.schema.define("ticket", {fields = {title = {type = "text"}, prio = {type = "text"}}})

local function never_called(x)
  local y = x * 2
  return y
end

crm.before("ticket.create", function(r)
  if r.title == "urgent" then
    r.prio = "high"
  else
    r.prio = "low"
  end
  return r
end)
