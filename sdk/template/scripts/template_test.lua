-- Tests of the template plugin, run on a fresh database with the plugin loaded:
--   rapport --plugins <build folder> test scripts

test("the plugin defines template_note", function()
  local note = crm.create("template_note", {text = "call back Ada"})
  assert_eq(note.pinned, false, "a note is not pinned unless asked")
  assert_error(function() crm.create("template_note", {pinned = true}) end, "required")
end)

test("crm.template.notes counts the notes", function()
  assert_eq(crm.template.notes(), 0)
  crm.create("template_note", {text = "one"})
  crm.create("template_note", {text = "two", pinned = true})
  assert_eq(crm.template.notes(), 2)
  assert_eq(crm.template.notes(true), 1)
  assert_eq(crm.template.notes(false), 1)
end)

test("crm.template.notes refuses what it does not understand", function()
  assert_error(function() crm.template.notes("pinned") end, "takes one boolean %(pinned%) or nothing")
end)
