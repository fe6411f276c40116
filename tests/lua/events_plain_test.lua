-- Every event a script is handed is plain data: strings, numbers, booleans and tables without
-- metatables, so a rule may walk it, keep it, forward it and encode it. Run by `rapport test`.

local function check_plain(v, path, seen)
  local t = type(v)
  if t == 'string' or t == 'number' or t == 'boolean' then return end
  assert_eq(t, 'table', path .. ' is a ' .. t)
  assert_eq(getmetatable(v), nil, path .. ' has a metatable')
  assert_true(not seen[v], path .. ' is reached twice (a shared or cyclic table)')
  seen[v] = true
  for k, x in pairs(v) do
    local kt = type(k)
    assert_true(kt == 'string' or kt == 'number', path .. ' has a ' .. kt .. ' key')
    check_plain(x, path .. '.' .. tostring(k), seen)
  end
end

local function define_pet()
  crm.schema.define('pet', {fields = {
    name = {type = 'text', required = true},
    stage = {type = 'enum', values = {'new', 'adopted'}, default = 'new'},
    weight = {type = 'decimal', scale = 1},
    born = {type = 'date'},
    tags = {type = 'json'},
  }})
end

test('handler events are plain data and round-trip through crm.json', function()
  define_pet()
  local got = {}
  crm.on('pet.*', function(ev) got[#got + 1] = ev end, {name = 'keep'})
  local p = crm.create('pet', {name = 'Rex', weight = '12.5', born = '2020-02-03',
                               tags = {colours = {'black', 'white'}, chipped = true}})
  crm.update('pet', p.id, {stage = 'adopted', weight = crm.null})
  crm.delete('pet', p.id)
  crm.clock.advance('1s')
  assert_eq(#got, 3, 'created, updated, deleted')
  for i, ev in ipairs(got) do
    check_plain(ev, 'event ' .. i, {})
    local back = crm.json.decode(crm.json.encode(ev))
    assert_eq(back, ev, 'event ' .. i .. ' after encode and decode')
    assert_eq(type(ev.changes), 'table', 'event ' .. i .. ' changes')
  end
  assert_eq(got[1].type, 'pet.created')
  assert_eq(got[1].changes.name[2], 'Rex')
  assert_eq(got[1].changes.name[1], nil, 'a created field had no old value')
  assert_eq(got[1].changes.tags[2].colours[2], 'white')
  assert_eq(got[2].changes.stage, {'new', 'adopted'})
  assert_eq(got[2].changes.weight[1], '12.5')
  assert_eq(got[2].changes.weight[2], nil, 'set to null')
end)

test('a handler event is the event crm.history returns', function()
  define_pet()
  local got
  crm.on('pet.updated', function(ev) got = ev end, {name = 'keep'})
  local p = crm.create('pet', {name = 'Rex'})
  crm.update('pet', p.id, {name = 'Max'})
  crm.clock.advance('1s')
  local h
  for _, ev in ipairs(crm.history('pet', p.id)) do
    if ev.type == 'pet.updated' then h = ev end
  end
  check_plain(h, 'history event', {})
  assert_eq(h, got, 'the history event and the handler event')
  assert_eq(got.id, p.id, 'the record id, also as id')
end)

test('an event forwarded by a rule is stored whole', function()
  define_pet()
  crm.on('pet.created', function(ev) crm.emit('pet.seen', {original = ev}) end, {name = 'fwd'})
  local seen
  crm.on('pet.seen', function(ev) seen = ev end, {name = 'see'})
  crm.create('pet', {name = 'Rex'})
  crm.clock.advance('1s')
  check_plain(seen, 'forwarded', {})
  assert_eq(seen.changes.original.type, 'pet.created')
  assert_eq(seen.changes.original.changes.name[2], 'Rex')
end)

test('crm.events reads the log as plain events, filtered and paged', function()
  define_pet()
  local got = {}
  crm.on('pet.*', function(ev) got[#got + 1] = ev end, {name = 'keep'})
  local first = crm.create('pet', {name = 'Rex'})
  for i = 1, 5 do crm.create('pet', {name = 'P' .. i}) end
  crm.update('pet', first.id, {name = 'Max'})
  crm.emit('pet.fed', {grams = 200}, {entity = 'pet', id = first.id})
  crm.clock.advance('1s')
  local evs, next = crm.events({type = 'pet.*'})
  assert_eq(next, nil, 'the whole log was read')
  assert_eq(#evs, 8)
  for i, ev in ipairs(evs) do
    check_plain(ev, 'crm.events ' .. i, {})
    assert_eq(ev, got[i], 'crm.events ' .. i .. ' is what the handler got')
  end
  local upd = crm.events({type = 'pet.updated'})
  assert_eq(#upd, 1)
  assert_eq(upd[1].changes.name, {'Rex', 'Max'})
  -- paging: two at a time, each event once, `next` carried on
  local seen, after, calls = {}, 0, 0
  repeat
    local page
    page, after = crm.events({type = 'pet.created', after = after, limit = 2})
    calls = calls + 1
    for _, ev in ipairs(page) do seen[#seen + 1] = ev.changes.name[2] end
  until after == nil or calls > 10
  assert_eq(seen, {'Rex', 'P1', 'P2', 'P3', 'P4', 'P5'})
  assert_eq(#crm.events({entity = 'nothing'}), 0)
  assert_error(function() crm.events({limit = 5000}) end, 'limit must be a whole number')
  assert_error(function() crm.events({since = 1}) end, 'unknown option since')
end)
