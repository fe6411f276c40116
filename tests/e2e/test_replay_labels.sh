#!/usr/bin/env bash
# End-to-end: how `rapport replay` names things — records the script created as "new#N" (never
# a recorded record's id), references to them likewise, the trace's events as the recorded
# history numbers them; and what it does not blame on the script: recorded custom events
# emitted again, a recorded write applied at its recorded time (no clock artefact in a hook's
# diff); the schema changes the script makes as it loads, in their own section; math.random
# seeded the same every run.
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
"$RAPPORT" define thing '{"fields":{"name":{"type":"text"},"parent":{"type":"ref","ref":"thing"}}}' >/dev/null
"$RAPPORT" create thing '{"name":"a"}' >/dev/null            # event 2, thing 1
"$RAPPORT" create thing '{"name":"b"}' >/dev/null            # event 3, thing 2
"$RAPPORT" eval 'crm.emit("thing.poked", {x = 1})' >/dev/null  # event 4
"$RAPPORT" delete thing 1 >/dev/null                          # event 5
# Event 5 recorded a millisecond before event 4 (two writers' clocks): the replayed delete
# must still carry its own time, not the clock's later one.
python3 - "$RAPPORT_DB" <<'EOF2'
import sqlite3, sys, json, datetime
c = sqlite3.connect(sys.argv[1])
at4 = c.execute("select at from rp_events where seq = 4").fetchone()[0]
at5 = at4 - 1
d = datetime.datetime.fromtimestamp(at5 / 1000, datetime.timezone.utc)
text = d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (at5 % 1000)
ch = json.loads(c.execute("select changes from rp_events where seq = 5").fetchone()[0])
ch["deleted_at"][1] = text
c.execute("update rp_events set at = ?, changes = ? where seq = 5", (at5, json.dumps(ch)))
c.execute("update thing set deleted_at = ? where id = 1", (text,))
c.commit()
EOF2

# ---- an empty script did nothing ----
: > "$tmp/empty.lua"
"$RAPPORT" replay "$tmp/empty.lua" --json > "$tmp/e.json"; st=$?
out=$(py 'r["emitted"], r["hooks"], r["created"], r["schema"], r["window"]["events"]' "$tmp/e.json")
check '[ $st = 0 ] && [ "$out" = "[] [] [] [] 4" ]' "an empty script is blamed for something ($st): $out"

# ---- the script's own records: new#N, in creation order, refs too ----
cat > "$tmp/kids.lua" <<'EOF2'
crm.on("thing.created", function(ev)
  if ev.changes.parent then return end
  local kid = crm.create("thing", {name = "kid", parent = ev.id})
  crm.create("thing", {name = "grandkid", parent = kid.id})
end)
crm.on("thing.deleted", function(ev) error("deleted " .. ev.id) end)
EOF2
"$RAPPORT" replay "$tmp/kids.lua" --json > "$tmp/k.json"
out=$(py '[(c["id"], c["fields"]["name"], c["fields"]["parent"], c["by"]["seq"]) for c in r["created"]]' "$tmp/k.json")
check '[ "$out" = "[('"'"'new#1'"'"', '"'"'kid'"'"', 1, 2), ('"'"'new#2'"'"', '"'"'grandkid'"'"', '"'"'new#1'"'"', 2), ('"'"'new#3'"'"', '"'"'kid'"'"', 2, 3), ('"'"'new#4'"'"', '"'"'grandkid'"'"', '"'"'new#3'"'"', 3)]" ]' "the script's records: $out"
"$RAPPORT" replay "$tmp/kids.lua" --json > "$tmp/k2.json"
check 'cmp -s "$tmp/k.json" "$tmp/k2.json"' "two replays label differently"
out=$("$RAPPORT" replay "$tmp/kids.lua" 2>&1)
check 'grep -q "^  thing new#2 .*: {\"name\":\"grandkid\",\"parent\":\"new#1\"}" <<<"$out"' "the text report's labels: $out"
# The trace names the recorded event a handler failed on, not the copy's sequence number.
out=$("$RAPPORT" replay "$tmp/kids.lua" --trace 2>&1)
check 'grep -q "dead-lettered subscriber=kids.lua:thing.deleted event=#5 type=thing.deleted" <<<"$out" && ! grep -q "seq=" <<<"$out"' "the trace's event numbers: $out"
check 'grep -q "^  handler thing.created <- thing.created thing new#1$" <<<"$out" && grep -q "^  handler thing.created <- thing.created thing 2$" <<<"$out" && ! grep -q "<- thing.created thing [3-9]$" <<<"$out"' "the trace's handler lines name records as the report does: $out"

# ---- schema changes at load: their own section ----
printf 'crm.schema.drop_field("thing", "name")\n' > "$tmp/drop.lua"
"$RAPPORT" replay "$tmp/drop.lua" --json > "$tmp/s.json"
out=$(py '[(s["type"], s["payload"]["field"], s["by"]) for s in r["schema"]]' "$tmp/s.json")
check '[ "$out" = "[('"'"'schema.field_dropped'"'"', '"'"'name'"'"', None)]" ]' "the schema change at load: $out"
out=$("$RAPPORT" replay "$tmp/drop.lua" 2>&1)
check 'grep -q "^  schema.field_dropped (by loading the script): " <<<"$out"' "the schema section in text: $out"

# ---- math.random: the same numbers every replay ----
printf 'crm.on("thing.created", function(ev) crm.emit("dice", {n = math.random(1e9)}) end)\n' > "$tmp/dice.lua"
"$RAPPORT" replay "$tmp/dice.lua" --json > "$tmp/d1.json"
"$RAPPORT" replay "$tmp/dice.lua" --json > "$tmp/d2.json"
out=$(py '[e["payload"]["n"] for e in r["emitted"]]' "$tmp/d1.json")
check 'cmp -s "$tmp/d1.json" "$tmp/d2.json" && [ "$(py "len(set([e[\"payload\"][\"n\"] for e in r[\"emitted\"]]))" "$tmp/d1.json")" = 2 ]' "math.random differs between replays: $out / $(py '[e["payload"]["n"] for e in r["emitted"]]' "$tmp/d2.json")"
finish
