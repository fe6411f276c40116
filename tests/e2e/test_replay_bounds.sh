#!/usr/bin/env bash
# End-to-end: what `rapport replay` refuses and where it stops — not under --as (it reads the
# whole history); a script that is a folder, a device or too long; a job that reschedules
# itself at once, a cron over a far --to, a handler fanning out, a report too large (each
# stopped with the job or the event named); a stale folder of a dead replay that is a link or not ours (left alone).
set -u
RAPPORT=${RAPPORT:-build/rapport}
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_PLUGINS_BUILTIN=0
export RAPPORT_DB="$tmp/live.db"
export RAPPORT_SCRIPTS="$tmp/none"
export TMPDIR="$tmp/t"
mkdir -p "$RAPPORT_SCRIPTS" "$TMPDIR"
py() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($1)" "$2"; }

"$RAPPORT" init >/dev/null
"$RAPPORT" define thing '{"fields":{"name":{"type":"text"},"note":{"type":"text"}}}' >/dev/null
"$RAPPORT" define blob '{"fields":{"data":{"type":"text"}}}' >/dev/null
"$RAPPORT" create thing '{"name":"a"}' >/dev/null      # event 3
"$RAPPORT" create thing '{"name":"b"}' >/dev/null      # event 4
printf 'crm.on("thing.created", function(ev) end)\n' > "$tmp/ok.lua"

# ---- --as: refused, before anything is read ----
expect 2 'replay reads the whole recorded history (every record, field and setting): not with --as sam' -- --as sam replay "$tmp/ok.lua"

# ---- the script: a regular file the parser takes in one call ----
expect 1 'not a script file (a folder, a device or a pipe)' -- replay /dev/zero
expect 1 'not a script file (a folder, a device or a pipe)' -- replay "$tmp"
python3 -c 'import sys; open(sys.argv[1], "w").write("-- " + "x" * (1 << 20) + "\n")' "$tmp/big.lua"
expect 1 'a script is at most 1048576 bytes' -- replay "$tmp/big.lua"
# The same rule for `rapport run`, whose file is read by the Lua room.
expect 1 'is not a script file (a folder or a device)' -- run /dev/zero
expect 1 'longer than 1048576 bytes' -- run "$tmp/big.lua"

# ---- jobs: a chain that never ends, a cron over years ----
cat > "$tmp/tick.lua" <<'EOF2'
crm.on("thing.created", function(ev) crm.after("0ms", "tick", {n = 1}) end)
crm.job("tick", function(p) crm.after("0ms", "tick", {n = p.n + 1}) end)
EOF2
out=$(timeout 60 "$RAPPORT" replay "$tmp/tick.lua" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "job tick would be run 1001 of the jobs caused by event #3, at .*: over replay.max_job_runs_per_event" <<<"$out"' "a job rescheduling itself ($st): $out"
out=$(RAPPORT_REPLAY_MAX_JOB_RUNS_PER_EVENT=10 timeout 60 "$RAPPORT" replay "$tmp/tick.lua" 2>&1)
check 'grep -q "job tick would be run 11 of the jobs caused by event #3" <<<"$out"' "the setting of the per-event cap: $out"
printf 'crm.job("beat", function() end)\ncrm.every("* * * * *", "beat")\n' > "$tmp/cron.lua"
out=$(RAPPORT_REPLAY_MAX_JOB_RUNS=50 timeout 60 "$RAPPORT" replay "$tmp/cron.lua" --to 2099-01-01 2>&1); st=$?
check '[ $st = 1 ] && grep -q "would be job run 51 of this replay, at .*: over replay.max_job_runs; replay a narrower window" <<<"$out"' "a cron over a far --to ($st): $out"
# Under the caps a cron runs as before: a day of a cron every hour is 24 runs.
printf 'crm.job("beat", function() end)\ncrm.every("0 * * * *", "beat")\n' > "$tmp/hourly.lua"
RAPPORT_REPLAY_MAX_JOB_RUNS=30 "$RAPPORT" replay "$tmp/hourly.lua" --to "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" --json > "$tmp/h.json"; st=$?
check '[ $st = 0 ] && [ "$(py "len(r[\"jobs\"]) >= 23" "$tmp/h.json")" = True ]' "an hourly cron over a day ($st): $(head -c 300 "$tmp/h.json")"

# ---- the report: held in memory, so capped ----
cat > "$tmp/fat.lua" <<'EOF2'
crm.on("thing.created", function(ev)
  for i = 1, 40 do crm.create("blob", {data = string.rep("x", 60000)}) end
end)
EOF2
out=$(RAPPORT_REPLAY_MAX_REPORT_MB=1 "$RAPPORT" replay "$tmp/fat.lua" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "the report passed 1 MB at event #3 (replay.max_report_mb): replay a narrower window" <<<"$out"' "the report cap ($st): $(head -c 300 <<<"$out")"

# ---- a handler that fans out (writes what it handles, several times): stopped at a cap ----
printf 'crm.on("thing.created", function(ev)\n  for i = 1, 3 do crm.create("thing", {name = "x"}) end\nend)\n' > "$tmp/fan.lua"
out=$(RAPPORT_REPLAY_MAX_EVENTS_PER_EVENT=200 timeout 60 "$RAPPORT" replay "$tmp/fan.lua" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "event #3 caused more than 200 events in the replay (replay.max_events_per_event)" <<<"$out"' "a fanning-out handler ($st): $(head -c 300 <<<"$out")"

# ---- the sweep of dead replays' folders: links and others' folders are left alone ----
mkdir -p "$tmp/victim" && echo keep > "$tmp/victim/copy.db"
ln -s "$tmp/victim" "$TMPDIR/rapport-replay-999999-link"
mkdir -m 0755 "$TMPDIR/rapport-replay-999998-open" && echo keep > "$TMPDIR/rapport-replay-999998-open/copy.db"
mkdir -m 0700 "$TMPDIR/rapport-replay-999997-dead" && echo x > "$TMPDIR/rapport-replay-999997-dead/copy.db"
ln -s "$tmp/victim/copy.db" "$TMPDIR/rapport-replay-999997-dead/copy.db-wal"
"$RAPPORT" replay "$tmp/ok.lua" >/dev/null
check '[ "$(cat "$tmp/victim/copy.db")" = keep ] && [ -L "$TMPDIR/rapport-replay-999999-link" ]' "the sweep followed a link"
check '[ -e "$TMPDIR/rapport-replay-999998-open/copy.db" ]' "the sweep removed a folder not made private by a replay"
check '[ ! -e "$TMPDIR/rapport-replay-999997-dead" ]' "the sweep left a dead replay's folder: $(ls -la "$TMPDIR")"
finish
