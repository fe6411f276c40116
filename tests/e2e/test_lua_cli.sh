#!/usr/bin/env bash
# End-to-end: Lua through the binary — eval and run, `rapport test`, and `serve` running
# script handlers, reloading an edited script and keeping the old one when an edit is broken.
set -u
# The bare core (no built-in plugins): these tests define their own entities, such as a
# "contact" of their own; the built-in plugins' entities are driven by their own tests.
export RAPPORT_PLUGINS_BUILTIN=0
RAPPORT=${RAPPORT:-build/rapport}
SRC=${RP_SOURCE:-.}
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
export RAPPORT_SCRIPTS="$tmp/none"   # no default rules: this test brings its own
mkdir -p "$RAPPORT_SCRIPTS"
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

"$RAPPORT" init >/dev/null
out=$("$RAPPORT" eval '1 + 1, "text", nil, {a = 1, b = {true}}' 2>&1)
check '[ "$out" = "$(printf "2\ntext\nnil\n{\"a\":1,\"b\":[true]}")" ]' "eval printed: $out"
out=$("$RAPPORT" eval 'local x = nil; return x.field' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "^rapport: eval:1: attempt to index a nil value" <<<"$out"' "eval error: $st $out"
out=$("$RAPPORT" eval --sandbox 'return io.open("/etc/passwd")' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "eval:1: attempt to index a nil value (global .io.)" <<<"$out"' "sandboxed eval reached io: $out"
out=$("$RAPPORT" eval 'return io ~= nil' 2>&1)
check '[ "$out" = true ]' "eval as the local user should have io: $out"
out=$("$RAPPORT" eval --sandbox 'while true do end' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "eval:1: RP-E1701: script eval stopped: over its CPU budget of 1000 ms" <<<"$out"' "runaway loop: $out"
out=$(RAPPORT_LUA_MAX_CPU_MS=50 "$RAPPORT" eval --sandbox 'local t = {} for i = 1, 1e9 do t[i % 10] = i end' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "eval:1: RP-E1701: script eval stopped: over its CPU budget of 50 ms" <<<"$out"' "CPU budget from the environment: $out"
"$RAPPORT" eval 'crm.schema.define("note", {fields = {body = {type = "text", required = true}}})' >/dev/null
"$RAPPORT" eval 'crm.schema.define("audit", {fields = {what = {type = "text"}}})' >/dev/null
out=$("$RAPPORT" eval 'crm.create("note", {body = "hi"}).body' 2>&1)
check '[ "$out" = hi ]' "crm.create through eval: $out"
out=$("$RAPPORT" eval 'crm.create("note", {})' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "eval:1: RP-E1205: note.body is required" <<<"$out"' "bad create: $out"
printf 'local n = 0\nfor i, a in ipairs(arg) do n = n + #a end\nreturn #arg, n, arg[0]\n' > "$tmp/args.lua"
out=$("$RAPPORT" run "$tmp/args.lua" one three 2>&1)
check '[ "$out" = "$(printf "2\n8\n$tmp/args.lua")" ]' "run with arguments: $out"
printf 'x = 1\nerror("broken on purpose")\n' > "$tmp/broken.lua"
out=$("$RAPPORT" run "$tmp/broken.lua" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "broken.lua:2: broken on purpose" <<<"$out"' "run error: $out"

# rapport test: the example rules pass; a failing test is reported with file:line and exit 1.
# A test that never ends is stopped, named, and the run goes on to the next.
cat > "$tmp/loop_test.lua" <<'LUA'
test("loops", function() while true do end end)
test("loops in a coroutine", function() coroutine.wrap(function() while true do end end)() end)
test("after", function() assert_eq(1, 1) end)
LUA
out=$(RAPPORT_TEST_MAX_CPU_MS=200 "$RAPPORT" test "$tmp/loop_test.lua" 2>&1); st=$?
# On a loaded machine the wall-time limit (3x the CPU budget) can come first: either stops it.
check '[ $st = 1 ] && grep -Eq "loop_test.lua:1: RP-E1701: script loop_test.lua stopped: over its (CPU budget of 200 ms|wall-time limit of 600 ms)" <<<"$out" && grep -q "^1 passed, 2 failed$" <<<"$out"' "runaway test: $out"
out=$("$RAPPORT" test "$SRC/examples/rules" 2>&1); st=$?
check '[ $st = 0 ] && [ "$(tail -n 1 <<<"$out")" = "4 passed, 0 failed" ]' "example rules: $out"
mkdir -p "$tmp/t"
cat > "$tmp/t/mixed_test.lua" <<'LUA'
test("passes", function() assert_eq(crm.now(), "2026-01-01T00:00:00.000Z") end)
test("fails", function()
  assert_eq({a = 1}, {a = 2}, "tables differ")
end)
LUA
out=$("$RAPPORT" test "$tmp/t" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "mixed_test.lua:3: tables differ: expected {\"a\":2}, got {\"a\":1}" <<<"$out" && [ "$(tail -n 1 <<<"$out")" = "1 passed, 1 failed" ]' "failing test: $out"

# serve runs a script's handler; an edit is picked up; a broken edit keeps the old version.
mkdir -p "$tmp/rules"
cat > "$tmp/rules/audit.lua" <<'LUA'
crm.on("note.created", function(ev) crm.create("audit", {what = "v1:" .. ev.id}) end)
LUA
"$RAPPORT" --scripts "$tmp/rules" serve --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
for _ in $(seq 150); do grep -q "serving" "$tmp/serve.log" && break; sleep 0.1; done
check 'grep -q "script loaded file=$tmp/rules/audit.lua" "$tmp/serve.log"' "script not loaded: $(cat "$tmp/serve.log")"
"$RAPPORT" eval 'crm.create("note", {body = "first"})' >/dev/null
for _ in $(seq 150); do [ "$("$RAPPORT" count audit --where '{"what": {"starts_with": "v1:"}}')" = 1 ] && break; sleep 0.1; done
check '[ "$("$RAPPORT" count audit)" = 1 ]' "the handler did not run"
sleep 1.1  # a new mtime second, so the edit is seen as one
sed -i 's/v1:/v2:/' "$tmp/rules/audit.lua"
for _ in $(seq 150); do grep -q "script reloaded" "$tmp/serve.log" && break; sleep 0.1; done
check 'grep -q "script reloaded file=$tmp/rules/audit.lua" "$tmp/serve.log"' "edit not reloaded: $(cat "$tmp/serve.log")"
sleep 1.1
printf 'crm.on("note.created", function(ev)\n  this is not lua\nend)\n' > "$tmp/rules/audit.lua"
for _ in $(seq 150); do grep -q "script failed to load" "$tmp/serve.log" && break; sleep 0.1; done
check 'grep -q "script failed to load file=$tmp/rules/audit.lua error=.*audit.lua:2:" "$tmp/serve.log"' "broken edit not reported with file:line: $(cat "$tmp/serve.log")"
"$RAPPORT" eval 'crm.create("note", {body = "second"})' >/dev/null
for _ in $(seq 150); do [ "$("$RAPPORT" count audit --where '{"what": {"starts_with": "v2:"}}')" = 1 ] && break; sleep 0.1; done
check '[ "$("$RAPPORT" count audit --where "{\"what\": {\"starts_with\": \"v2:\"}}")" = 1 ]' "the previous version stopped running after a broken edit"
rm "$tmp/rules/audit.lua"
for _ in $(seq 150); do grep -q "script removed" "$tmp/serve.log" && break; sleep 0.1; done
check 'grep -q "script removed file=$tmp/rules/audit.lua" "$tmp/serve.log"' "a deleted script was not unloaded: $(cat "$tmp/serve.log")"
before=$("$RAPPORT" count audit)
"$RAPPORT" eval 'crm.create("note", {body = "third"})' >/dev/null
sleep 1
check '[ "$("$RAPPORT" count audit)" = "$before" ]' "a deleted script's handler still ran"
kill -TERM $serve_pid; wait $serve_pid; st=$?; serve_pid=
check '[ $st = 0 ]' "serve exited $st"

# A script that does not load stops one-shot commands (its rules would not run), unless told.
mkdir -p "$tmp/broken_rules"
printf 'crm.before("note.create", function(n)\n  this is not lua\nend)\n' > "$tmp/broken_rules/rule.lua"
out=$("$RAPPORT" --scripts "$tmp/broken_rules" create note '{"body": "x"}' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "script failed to load file=$tmp/broken_rules/rule.lua error=.*rule.lua:2:" <<<"$out" && grep -q -- "--skip-broken" <<<"$out"' "a broken rule let a write through: $out"
out=$("$RAPPORT" --skip-broken --scripts "$tmp/broken_rules" create note '{"body": "x"}' 2>&1); st=$?
check '[ $st = 0 ]' "--skip-broken did not go on: $out"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
