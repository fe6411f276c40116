-- Tests of assignment.lua.

test("new leads go to each person in turn; an owner given stays", function()
  crm.set_config("rules.assignment.users", {"ana", "ben", "cy"})
  local owners = {}
  for i = 1, 5 do owners[i] = crm.create("lead", {last_name = "L" .. i}).owner end
  assert_eq(table.concat(owners, " "), "ana ben cy ana ben")
  assert_eq(crm.create("lead", {last_name = "Mine", owner = "zoe"}).owner, "zoe")
  assert_eq(crm.create("ticket", {subject = "T"}).owner, "ana")
end)

test("least loaded: to whoever has the fewest open tickets", function()
  crm.set_config("rules.assignment.users", {"ana", "ben"})
  crm.set_config("rules.assignment.mode", "least_loaded")
  crm.create("ticket", {subject = "1", owner = "ana"})
  crm.create("ticket", {subject = "2", owner = "ana"})
  local t = crm.create("ticket", {subject = "3"})
  assert_eq(t.owner, "ben")
  crm.update("ticket", crm.find("ticket", {where = {owner = "ana"}})[1].id, {status = "closed"})
  crm.create("ticket", {subject = "4", owner = "ben"})
  assert_eq(crm.create("ticket", {subject = "5"}).owner, "ana")
end)

test("nobody to assign to, or switched off: no owner", function()
  assert_eq(crm.create("lead", {last_name = "Nobody"}).owner, nil)
  crm.set_config("rules.assignment.users", {"ana"})
  crm.set_config("rules.assignment.enabled", false)
  assert_eq(crm.create("lead", {last_name = "Off"}).owner, nil)
end)
