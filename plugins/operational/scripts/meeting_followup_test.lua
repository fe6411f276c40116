-- Tests of meeting_followup.lua.

local function meeting(fields)
  local m = {kind = "meeting", subject = "Demo", owner = "ana", related_entity = "deal",
             related_id = 7, due_at = "2026-01-01T10:00:00Z", ends_at = "2026-01-01T11:00:00Z"}
  for k, v in pairs(fields or {}) do m[k] = v end
  return crm.create("activity", m)
end

test("a meeting that ends without a next step gets a follow-up task", function()
  local m = meeting()
  crm.clock.advance("10h59m")
  assert_eq(crm.count("activity", {kind = "task"}), 0)
  crm.clock.advance("2m")
  local t = crm.find("activity", {where = {kind = "task"}})
  assert_eq(#t, 1)
  assert_eq(t[1].subject, "Follow up: Demo")
  assert_eq(t[1].owner, "ana")
  assert_eq(t[1].related_id, 7)
  assert_eq(t[1].due_at, "2026-01-02T11:00:00.000Z")
end)

test("a next step written before the end, or a meeting moved later, changes that", function()
  local a = meeting({subject = "A"})
  local b = meeting({subject = "B"})
  crm.clock.advance("10h")
  crm.update("activity", a.id, {next_step = "send the quote"})
  crm.update("activity", b.id, {ends_at = "2026-01-01T15:00:00Z"})
  crm.clock.advance("2h")
  assert_eq(crm.count("activity", {kind = "task"}), 0)
  crm.clock.advance("3h")
  assert_eq(crm.count("activity", {kind = "task", subject = "Follow up: B"}), 1)
  assert_eq(crm.count("activity", {kind = "task", subject = "Follow up: A"}), 0)
end)
