#!/usr/bin/env bash
# End-to-end: `rapport test --coverage` — the lines of a script its tests ran, against every
# line that holds code (a function never called counts too), the missed ranges, the lcov
# tracefile genhtml renders, and the sandbox's limits still stopping a runaway loop meanwhile.
set -u
export RAPPORT_PLUGINS_BUILTIN=0 # only this test's script: the plugins' own are theirs to test
RAPPORT=${RAPPORT:-build/rapport}
RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT") # the test runs in $tmp
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
export RAPPORT_SCRIPTS="$tmp/none"
mkdir -p "$RAPPORT_SCRIPTS" "$tmp/r"
. "$(dirname "$0")/lib.sh"

# Lines 3-6: a function never called (line 3 holds no code: the closure is made at its `end`);
# line 10: a branch the test never takes; line 15: a loop only the last test runs.
cat > "$tmp/r/rules.lua" <<'LUA'
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
  if r.title == "loop" then
    while true do r.prio = "x" end
  end
  return r
end)
LUA
cat > "$tmp/r/rules_test.lua" <<'LUA'
test("a plain ticket is low", function()
  local t = crm.create("ticket", {title = "hello"})
  assert_eq(t.prio, "low")
end)
LUA

cd "$tmp"
out=$("$RAPPORT" test "$tmp/r" --coverage 2>&1); st=$?
check '[ $st = 0 ] && grep -q "^1 passed, 0 failed$" <<<"$out"' "coverage run: $st $out"
check 'grep -qx "  $tmp/r/rules.lua  8/12  66.7%  missed 4-5, 10, 15" <<<"$out"' \
      "the summary line of rules.lua: $out"
check 'grep -qx "  total  8/12  66.7% in 1 file" <<<"$out"' "the total: $out"
check '! grep -q "rules_test.lua" <<<"$out" coverage.lcov' "test files are not reported: $out"
check 'grep -qx "lcov tracefile: coverage.lcov" <<<"$out" && [ -s "$tmp/coverage.lcov" ]' \
      "the default tracefile: $out"
want="TN:
SF:$tmp/r/rules.lua
DA:1,2
DA:4,0
DA:5,0
DA:6,2
DA:8,4
DA:9,1
DA:10,0
DA:12,1
DA:14,1
DA:15,0
DA:17,1
DA:18,4
LF:12
LH:8
end_of_record"
real_tmp=$(cd "$tmp" && pwd -P)
want=${want//$tmp/$real_tmp}
check '[ "$(cat "$tmp/coverage.lcov")" = "$want" ]' "the tracefile: $(cat "$tmp/coverage.lcov")"

# --lcov FILE; genhtml renders it and its pages name the script.
out=$("$RAPPORT" test "$tmp/r/rules_test.lua" --coverage --lcov "$tmp/out.lcov" 2>&1); st=$?
check '[ $st = 0 ] && grep -qx "lcov tracefile: $tmp/out.lcov" <<<"$out" && cmp -s "$tmp/out.lcov" "$tmp/coverage.lcov"' \
      "--lcov FILE: $out"
if command -v genhtml >/dev/null; then
    gh=$(genhtml -q -o "$tmp/html" "$tmp/out.lcov" 2>&1); st=$?
    page=$(find "$tmp/html" -name rules.lua.gcov.html)
    check '[ $st = 0 ] && [ -n "$page" ] && grep -q "never_called" "$page" && grep -rlq "rules.lua" "$tmp/html"' \
          "genhtml: $st $gh"
else
    bad "genhtml is missing: install lcov (debian-packages.txt)"
fi

# Lines run inside a coroutine count too (a coroutine inherits its creator's hook).
mkdir -p "$tmp/co"
cat > "$tmp/co/co.lua" <<'LUA'
crm.schema.define("thing", {fields = {n = {type = "integer"}}})
crm.before("thing.create", function(r)
  local co = coroutine.wrap(function()
    coroutine.yield(1)
    coroutine.yield(2)
  end)
  r.n = co() + co()
  return r
end)
LUA
echo 'test("co", function() assert_eq(crm.create("thing", {}).n, 3) end)' > "$tmp/co/co_test.lua"
# A chunk named like a file that is not there is said, and the rest is still reported.
printf 'local f = load("return 1", "@nowhere.lua")\nf()\n' > "$tmp/co/named.lua"
out=$(cd "$tmp/co" && "$RAPPORT" test "$tmp/co" --coverage --lcov "$tmp/co.lcov" 2>&1); st=$?
check '[ $st = 0 ] && grep -qx "  $tmp/co/co.lua  9/9  100.0%" <<<"$out"' "coverage inside a coroutine: $out"
check 'grep -qx "  nowhere.lua  not measured: cannot read nowhere.lua again: No such file or directory" <<<"$out" && grep -qx "  total  11/11  100.0% in 2 files" <<<"$out"' \
      "a chunk named like a missing file: $out"

# Without --coverage, no report and no tracefile.
rm -f "$tmp/coverage.lcov"
out=$("$RAPPORT" test "$tmp/r" 2>&1)
check '! grep -q coverage <<<"$out" && [ ! -e "$tmp/coverage.lcov" ]' "no coverage asked: $out"
expect 2 "--lcov FILE goes with --coverage" -- test "$tmp/r" --lcov x.lcov
expect 2 "--lcov needs a file name" -- test "$tmp/r" --coverage --lcov

# The limits hold under the line hook: a rule that loops is stopped by its CPU budget (the
# ticker's one-shot count hook) and by an exact instruction budget (a count hook every 1,000).
cat >> "$tmp/r/rules_test.lua" <<'LUA'
test("a loop is stopped", function()
  crm.create("ticket", {title = "loop"})
end)
LUA
out=$(RAPPORT_LUA_MAX_CPU_MS=200 "$RAPPORT" test "$tmp/r" --coverage 2>&1); st=$?
check '[ $st = 1 ] && grep -Eq "rules.lua:15: RP-E1701: script rules.lua stopped: over its (CPU budget of 200 ms|wall-time limit)" <<<"$out" && grep -q "^1 passed, 1 failed$" <<<"$out"' \
      "CPU budget under --coverage: $out"
check 'grep -qx "  $tmp/r/rules.lua  9/12  75.0%  missed 4-5, 10" <<<"$out"' \
      "the loop's lines are counted: $out"
out=$(RAPPORT_LUA_MAX_INSTRUCTIONS=100000 "$RAPPORT" test "$tmp/r" --coverage 2>&1); st=$?
check '[ $st = 1 ] && grep -q "rules.lua:15: RP-E1701: script rules.lua stopped: over its instruction budget of 100000 instructions" <<<"$out"' \
      "instruction budget under --coverage: $out"

finish
