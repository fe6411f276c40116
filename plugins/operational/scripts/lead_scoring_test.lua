-- Tests of lead_scoring.lua.

test("a lead is scored from its profile", function()
  local bare = crm.create("lead", {last_name = "Bare"})
  assert_eq(bare.score, 0)
  local rich = crm.create("lead", {last_name = "Rich", email = "r@example.com", phone = "+15550100",
                                   company = "Acme", title = "CTO", source = "referral"})
  assert_eq(rich.score, 10 + 10 + 10 + 5 + 25)
end)

test("the score follows the lead's progress and its activities", function()
  local l = crm.create("lead", {last_name = "Lee", email = "lee@example.com", source = "web"})
  assert_eq(l.score, 20)
  l = crm.update("lead", l.id, {status = "qualified"})
  assert_eq(l.score, 50)
  for i = 1, 7 do
    crm.create("activity", {kind = "call", subject = "Call " .. i, related_entity = "lead",
                            related_id = l.id})
  end
  crm.clock.advance("1s")
  assert_eq(crm.get("lead", l.id).score, 75)   -- activities count up to 25
end)

test("admins change the weights or switch the rule off, without touching C", function()
  crm.set_config("rules.lead_scoring.weights", {email = 40, source = {web = 0}})
  assert_eq(crm.create("lead", {last_name = "W", email = "w@example.com", source = "web"}).score, 40)
  crm.set_config("rules.lead_scoring.enabled", false)
  assert_eq(crm.create("lead", {last_name = "Off", email = "o@example.com", score = 3}).score, 3)
end)
