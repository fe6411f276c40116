#!/usr/bin/env bash
# `rapport replay` beside the floor measured in the same run.
#
# A history of N events is recorded through the engine: N/2 records created, then each updated
# once, by one `rapport eval` Lua loop committing every 1,000 (bare core, an entity of the
# bench's own). A rule script (a before-hook that changes every create, a handler that writes a
# record for every update, a crm.after job per tenth update) is then replayed over the whole
# history: `rapport replay` copies the file, unwinds it to the window's start (every event
# undone), and writes every recorded event again with the rule loaded, on the virtual clock,
# running the rule's jobs as they fall due.
#
# The floor: the same writes with the same rule loaded, done live by the same kind of Lua loop
# on a fresh file (the hook runs in every create; the handler's writes and jobs are what the
# replay adds on top, so the floor is the writes the replay cannot avoid). The replay's extra
# work — copying, undoing, one write per event with its own clock step, the report — is the
# ratio. Also printed: the replay's peak resident memory.
#
# Usage: bash bench/bench_replay.sh [N]   (events, default 100,000; RAPPORT=path/to/rapport,
#        default build-release/rapport; BENCH_KEEP=1 keeps the folder)
set -euo pipefail

RAPPORT=${RAPPORT:-build-release/rapport}
n=${1:-${BENCH_N:-100000}}
die() { echo "bench_replay: $*" >&2; exit 1; }
[ -x "$RAPPORT" ] || die "no rapport binary at $RAPPORT (RAPPORT=path/to/rapport)"
RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT")
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 100 ] || die "usage: bench_replay.sh [events >= 100]"
half=$((n / 2))

tmp=$(mktemp -d)
[ -n "${BENCH_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
export RAPPORT_PLUGINS_BUILTIN=0
unset RAPPORT_SCRIPTS RAPPORT_PLUGIN_PATH
mkdir -p "$tmp/rules"

now_s() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

# The history, as a user's writes make it (the entity is the bench's own).
schema='crm.schema.declare("item", {fields = {name = {type = "text", searchable = true},
  n = {type = "integer"}, flag = {type = "boolean"}, note = {type = "text"}}})
crm.schema.declare("mark", {fields = {item = {type = "integer"}, what = {type = "text"}}})'
writes="local half = $half
for b = 0, half - 1, 1000 do
  crm.transaction(function()
    for i = b + 1, math.min(b + 1000, half) do crm.create('item', {name = 'item ' .. i, n = i}) end
  end)
end
for b = 0, half - 1, 1000 do
  crm.transaction(function()
    for i = b + 1, math.min(b + 1000, half) do crm.update('item', i, {n = i * 2}) end
  end)
end"
cat > "$tmp/rules/rule.lua" <<'EOF'
crm.before("item.create", function(rec) rec.flag = (rec.n or 0) % 2 == 0 return rec end)
crm.on("item.updated", function(ev)
  crm.create("mark", {item = ev.id, what = "updated"})
  -- only for the recorded updates of n: the job's own update (note) must not schedule again
  if ev.changes.n and ev.id % 10 == 0 then crm.after("1h", "item.check", {id = ev.id}) end
end, {name = "marker"})
crm.job("item.check", function(p) crm.update("item", p.id, {note = "checked"}) end)
EOF

export RAPPORT_DB="$tmp/history.db"
"$RAPPORT" init >/dev/null
"$RAPPORT" eval "$schema" >/dev/null
t0=$(now_s)
"$RAPPORT" eval "$writes" >/dev/null
t1=$(now_s)
record=$(calc "$t1 - $t0")

# The floor: the same writes with the rule's hook loaded, live, on a fresh file.
export RAPPORT_DB="$tmp/floor.db"
"$RAPPORT" init >/dev/null
"$RAPPORT" eval "$schema" >/dev/null
t0=$(now_s)
RAPPORT_SCRIPTS="$tmp/rules" "$RAPPORT" eval "$writes" >/dev/null
t1=$(now_s)
floor=$(calc "$t1 - $t0")

# The replay over the whole history (the jobs an hour after the last update fall in the window).
export RAPPORT_DB="$tmp/history.db"
before=$(sha256sum "$RAPPORT_DB" | cut -d' ' -f1)
t0=$(now_s)
# Peak resident memory of the replay (kB), from the kernel's accounting of the finished child.
python3 -c 'import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    rc = subprocess.run(sys.argv[3:], stdout=out).returncode
open(sys.argv[2], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)' "$tmp/report.json" "$tmp/rss" "$RAPPORT" replay "$tmp/rules/rule.lua" --to 2999-01-01 --json
t1=$(now_s)
replay=$(calc "$t1 - $t0")
after=$(sha256sum "$RAPPORT_DB" | cut -d' ' -f1)
[ "$before" = "$after" ] || die "the replay changed the live database"
created=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r.get("created", [])))' "$tmp/report.json")
[ "$created" -ge "$half" ] || die "the report shows $created records created, expected at least $half"

printf 'replay: %d events in %.2f s (%.0f events/s, peak %d MB; %d records created by the rule), floor (the same writes live with the rule hook) %.2f s, ratio floor/replay %.2f; recording the history took %.2f s\n' \
    "$n" "$replay" "$(calc "$n / $replay")" "$(( $(cat "$tmp/rss") / 1024 ))" "$created" \
    "$floor" "$(calc "$floor / $replay")" "$record"
