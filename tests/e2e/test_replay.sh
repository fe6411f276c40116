#!/usr/bin/env bash
# End-to-end: `rapport replay SCRIPT` over a history recorded through the CLI — what the rule
# would have created and changed, its before-hook changing and vetoing recorded writes, its jobs
# and their due times, its errors with their events; windows (--from, --to, --entity, --event),
# --trace, --against; identical reports twice; the live database untouched (also when the
# replay is killed); a script that does not load; a bad date; mail queued, never sent.
set -u
RAPPORT=${RAPPORT:-build/rapport}
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
bg_pid= listen_pid=
trap '[ -n "$bg_pid" ] && kill -9 $bg_pid 2>/dev/null; [ -n "$listen_pid" ] && kill $listen_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_PLUGINS_BUILTIN=0
export RAPPORT_DB="$tmp/live.db"
export RAPPORT_SCRIPTS="$tmp/none"
export TMPDIR="$tmp/t"
mkdir -p "$RAPPORT_SCRIPTS" "$TMPDIR"
# jq-free JSON probes: py EXPR FILE evaluates EXPR with r = the report.
py() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($1)" "$2"; }
state() { (cd "$tmp" && ls live.db* && sha256sum live.db*) 2>&1 | sha256sum; }

# ---- a recorded history ----
"$RAPPORT" init >/dev/null
"$RAPPORT" define thing '{"fields":{"name":{"type":"text","required":true},"vip":{"type":"boolean"},"note":{"type":"text"}}}' >/dev/null
"$RAPPORT" define task '{"fields":{"title":{"type":"text"},"thing":{"type":"ref","ref":"thing"}}}' >/dev/null
"$RAPPORT" create thing '{"name":"a"}' >/dev/null      # event 3
sleep 0.05
"$RAPPORT" create thing '{"name":"bad"}' >/dev/null    # event 4
sleep 0.05
"$RAPPORT" update thing 1 '{"note":"x"}' >/dev/null    # event 5
sleep 0.05
"$RAPPORT" create thing '{"name":"c"}' >/dev/null      # event 6
sleep 0.05
"$RAPPORT" update thing 2 '{"note":"y"}' >/dev/null    # event 7: the vetoed record
at() { "$RAPPORT" events tail -n 20 | python3 -c "import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e['seq'] == $1: print(e['at'])"; }
at3=$(at 3) at5=$(at 5) at6=$(at 6)

cat > "$tmp/rule.lua" <<'EOF'
crm.before("thing.create", function(t)
  if t.name == "bad" then error("no bad things") end
  t.vip = true
end)
crm.on("thing.created", function(ev)
  crm.create("task", {title = "call " .. ev.id, thing = ev.id})
  crm.after("1d", "follow_up", {thing = ev.id})
end)
crm.on("thing.updated", function(ev)
  error("boom on update")
end)
crm.job("follow_up", function(p)
  crm.update("thing", p.thing, {note = "followed"})
end)
EOF
printf 'crm.before("thing.create", function(t) t.vip = true end)\n' > "$tmp/old.lua"

before=$(state)
# ---- the whole history ----
"$RAPPORT" replay "$tmp/rule.lua" --json > "$tmp/r1.json"; st=$?
check '[ $st = 0 ]' "replay failed ($st): $(cat "$tmp/r1.json")"
out=$(py '[(c["entity"], c["id"], c["fields"], c["by"]["seq"]) for c in r["created"]]' "$tmp/r1.json")
check '[ "$out" = "[('"'"'task'"'"', '"'"'new#1'"'"', {'"'"'thing'"'"': 1, '"'"'title'"'"': '"'"'call 1'"'"'}, 3), ('"'"'task'"'"', '"'"'new#2'"'"', {'"'"'thing'"'"': 3, '"'"'title'"'"': '"'"'call 2'"'"'}, 6)]" ]' \
    "the tasks the handler would have created: $out"
out=$(py '[(h["by"]["seq"], h.get("changed"), h.get("vetoed")) for h in r["hooks"]]' "$tmp/r1.json")
check 'grep -qF "(3, {'"'"'vip'"'"': [None, True]}, None)" <<<"$out"' "the hook's change of event 3: $out"
check 'grep -qF "(4, None, '"'"'RP-E1401: $tmp/rule.lua:2: no bad things'"'"')" <<<"$out"' "the veto of event 4: $out"
# Thing 2 never was in this history: its update is not applied to thing 3, which took its id.
check 'grep -qF "(7, None, None)" <<<"$out" && grep -q "thing 2 is not in the replay: its create was vetoed" "$tmp/r1.json"' "the update of the vetoed record: $out"
due=$(python3 -c "import datetime,sys; d=datetime.datetime.strptime(sys.argv[1], '%Y-%m-%dT%H:%M:%S.%fZ')+datetime.timedelta(days=1); print(d.strftime('%Y-%m-%dT%H:%M:%S.')+'%03dZ' % (d.microsecond//1000))" "$at3")
out=$(py '[(j["name"], j["payload"], j["due"], j["status"], j["by"]["seq"]) for j in r["jobs"]]' "$tmp/r1.json")
check 'grep -qF "('"'"'follow_up'"'"', {'"'"'thing'"'"': 1}, '"'"'$due'"'"', '"'"'pending'"'"', 3)" <<<"$out"' "the job and its due time ($due): $out"
out=$(py '[(e["by"]["seq"], e["by"]["type"], e["by"]["entity"], e["by"]["id"], e["error"]) for e in r["errors"]]' "$tmp/r1.json")
check '[ "$out" = "[(5, '"'"'thing.updated'"'"', '"'"'thing'"'"', 1, '"'"'$tmp/rule.lua:10: boom on update'"'"')]" ]' "the handler's error with its event: $out"
out=$(py 'r["changed"], r["messages"], r["window"]["events"]' "$tmp/r1.json")
check '[ "$out" = "[] [] 5" ]' "nothing else within the history: $out"
# Twice: the same bytes.
"$RAPPORT" replay "$tmp/rule.lua" --json > "$tmp/r2.json"
check 'cmp -s "$tmp/r1.json" "$tmp/r2.json"' "two replays differ: $(diff "$tmp/r1.json" "$tmp/r2.json")"
"$RAPPORT" replay "$tmp/rule.lua" > "$tmp/h1.txt"; "$RAPPORT" replay "$tmp/rule.lua" > "$tmp/h2.txt"
check 'cmp -s "$tmp/h1.txt" "$tmp/h2.txt" && grep -q "^  #4 thing.created thing 2: vetoed: RP-E1401" "$tmp/h1.txt"' "the text report: $(cat "$tmp/h1.txt")"

# The clock run on to a later end: the job runs and its change is reported.
"$RAPPORT" replay "$tmp/rule.lua" --to 2099-01-01 --json > "$tmp/r3.json"
out=$(py '[(c["entity"], c["id"], c["changes"], c["by"]) for c in r["changed"]], [j["status"] for j in r["jobs"]]' "$tmp/r3.json")
check 'grep -qF "[('"'"'thing'"'"', 1, {'"'"'note'"'"': ['"'"'x'"'"', '"'"'followed'"'"']}, {'"'"'at'"'"': '"'"'$due'"'"', '"'"'job'"'"': '"'"'follow_up'"'"'}), ('"'"'thing'"'"', 3" <<<"$out" && grep -qF "['"'"'ran'"'"', '"'"'ran'"'"']" <<<"$out"' "the job run on the virtual clock: $out"

# ---- windows ----
"$RAPPORT" replay "$tmp/rule.lua" --from "$at5" --json > "$tmp/w.json"
out=$(py 'r["window"]["first_seq"], r["window"]["events"], [(c["id"], c["fields"]) for c in r["created"]], [h["by"]["seq"] for h in r["hooks"]]' "$tmp/w.json")
check '[ "$out" = "5 3 [('"'"'new#1'"'"', {'"'"'thing'"'"': 3, '"'"'title'"'"': '"'"'call 3'"'"'})] [6]" ]' "--from: $out"
"$RAPPORT" replay "$tmp/rule.lua" --to "$at5" --json > "$tmp/w.json"
out=$(py 'r["window"]["last_seq"], r["window"]["events"], len(r["created"]), r["errors"]' "$tmp/w.json")
check '[ "$out" = "4 2 1 []" ]' "--to: $out"
"$RAPPORT" replay "$tmp/rule.lua" --entity task --json > "$tmp/w.json"
out=$(py 'r["window"]["events"], r["window"]["skipped"], r["created"], r["hooks"]' "$tmp/w.json")
check '[ "$out" = "0 6 [] []" ]' "--entity task feeds no thing event: $out"
expect 1 'no such entity' -- replay "$tmp/rule.lua" --entity nothing

# ---- --against: the difference two versions make ----
out=$("$RAPPORT" replay "$tmp/rule.lua" --against "$tmp/old.lua" 2>&1)
check 'grep -q "^  + #4 thing.created thing 2: vetoed" <<<"$out" && grep -q "^  - #4 thing.created thing 2: a hook changed the write" <<<"$out" && grep -q "^  + task new#1 " <<<"$out" && ! grep -q "^  [-+] #3" <<<"$out"' "--against: $out"
"$RAPPORT" replay "$tmp/rule.lua" --against "$tmp/old.lua" --json > "$tmp/d.json"
out=$(py 'len(r["only_new"]["created"]), len(r["only_old"]["created"]), len(r["only_new"]["errors"]), r["only_old"]["hooks"][0]["by"]["seq"]' "$tmp/d.json")
check '[ "$out" = "2 0 1 4" ]' "--against --json: $out"
out=$("$RAPPORT" replay "$tmp/rule.lua" --against "$tmp/rule.lua" 2>&1)
check 'grep -q "^no difference$" <<<"$out"' "a script against itself: $out"

# ---- one event, traced ----
out=$("$RAPPORT" replay "$tmp/rule.lua" --event 3 --trace 2>&1)
check 'grep -q "^event #3 thing.created thing 1 at $at3 by " <<<"$out" && grep -q "^  hook thing.create {\"name\":\"a\"}" <<<"$out" && grep -q "^  hook changed the write: {\"vip\":\[null,true\]}" <<<"$out" && grep -q "^  handler thing.created <- thing.created thing 1" <<<"$out" && grep -q "^  created task new#1: {\"thing\":1,\"title\":\"call 1\"}" <<<"$out"' "--event 3 --trace: $out"
out=$("$RAPPORT" replay "$tmp/rule.lua" --event 5 --trace 2>&1)
check 'grep -q "^  error in handler rule.lua:thing.updated: $tmp/rule.lua:10: boom on update" <<<"$out" && grep -q "events #5 to #5: 1 events fed" <<<"$out"' "--event 5 --trace: $out"
expect 1 '--event 99: no such event' -- replay "$tmp/rule.lua" --event 99

# ---- what cannot run says so ----
printf 'crm.on("thing.created", function(ev)\n  this is not lua\nend)\n' > "$tmp/broken.lua"
expect 1 "broken.lua:2:" -- replay "$tmp/broken.lua"
expect 2 '--from: RP-E1204: "2026-13-01" is not an ISO-8601 date-time' -- replay "$tmp/rule.lua" --from 2026-13-01
expect 2 '--to must be after --from' -- replay "$tmp/rule.lua" --from 2026-02-01 --to 2026-01-01
expect 1 'cannot read the script' -- replay "$tmp/nothing.lua"
# A handler that loops is stopped by the sandbox's limit and reported with its event.
printf 'crm.on("thing.updated", function(ev) while true do end end)\n' > "$tmp/loop.lua"
RAPPORT_LUA_MAX_CPU_MS=100 "$RAPPORT" replay "$tmp/loop.lua" --json > "$tmp/l.json"
out=$(py '[(e["by"]["seq"], "RP-E1701" in e["error"]) for e in r["errors"]]' "$tmp/l.json")
check '[ "$out" = "[(5, True), (7, True)]" ]' "a looping handler: $out"

# A job of the script that fails: the error names the event whose handler scheduled it.
cat > "$tmp/jobfail.lua" <<'EOF2'
crm.on("thing.created", function(ev) crm.after("1h", "bad_job", {id = ev.id}) end)
crm.job("bad_job", function(p) error("job broke " .. p.id) end)
EOF2
"$RAPPORT" replay "$tmp/jobfail.lua" --to 2099-01-01 --json > "$tmp/jf.json"
out=$(py '[(e["by"]["seq"], e["job"], e["error"]) for e in r["errors"]], [j["status"] for j in r["jobs"]]' "$tmp/jf.json")
check 'grep -qF "[(3, '"'"'bad_job'"'"', '"'"'$tmp/jobfail.lua:2: job broke 1'"'"'), (4, " <<<"$out" && grep -qF "['"'"'failed'"'"', '"'"'failed'"'"', '"'"'failed'"'"']" <<<"$out"' "a failing job: $out"

# ---- the live database is never written ----
check '[ "$(state)" = "$before" ]' "the live database or its log changed"
# Killed mid-replay: the live file is as it was, and the next replay clears the dead one's copy.
printf 'crm.on("thing.*", function(ev) local x = 0; for i = 1, 5e7 do x = x + i end end)\n' > "$tmp/slow.lua"
"$RAPPORT" replay "$tmp/slow.lua" >/dev/null 2>&1 & bg_pid=$!
for _ in $(seq 100); do ls "$TMPDIR" | grep -q rapport-replay && break; sleep 0.02; done
sleep 0.2
kill -9 $bg_pid 2>/dev/null; wait $bg_pid 2>/dev/null; bg_pid=
check 'ls "$TMPDIR" | grep -q "^rapport-replay-"' "no private folder was made (or the replay ended too soon)"
check '[ "$(stat -c %a "$TMPDIR"/rapport-replay-* | head -1)" = 700 ]' "the private folder is not private"
check '[ "$(state)" = "$before" ]' "the live database changed when the replay was killed"
"$RAPPORT" replay "$tmp/old.lua" >/dev/null
check '[ -z "$(ls "$TMPDIR")" ]' "the killed replay's copy was left: $(ls "$TMPDIR")"

# While another connection has the database open (its log and shared memory beside it), the
# copy is SQLite's online backup: the file and its log stay as they were.
python3 -c 'import sqlite3,sys,time
c = sqlite3.connect(sys.argv[1]); c.execute("select count(*) from rp_events").fetchall()
open(sys.argv[2], "w").close(); time.sleep(30)' "$RAPPORT_DB" "$tmp/open.flag" & bg_pid=$!
for _ in $(seq 100); do [ -e "$tmp/open.flag" ] && break; sleep 0.05; done
walstate() { (cd "$tmp" && ls live.db live.db-wal && sha256sum live.db live.db-wal) 2>&1 | sha256sum; }
inuse=$(walstate)
"$RAPPORT" replay "$tmp/rule.lua" --json > "$tmp/r4.json"
check '[ -e "$tmp/live.db-wal" ] && [ "$(walstate)" = "$inuse" ]' "the live file or its log changed while in use"
check 'cmp -s "$tmp/r1.json" "$tmp/r4.json"' "the report differs when the database is in use: $(diff "$tmp/r1.json" "$tmp/r4.json")"
kill $bg_pid 2>/dev/null; wait $bg_pid 2>/dev/null; bg_pid=

# Events removed from the log: what cannot be reconstructed is said.
cp "$tmp/live.db" "$tmp/gap.db"
python3 -c 'import sqlite3,sys; c = sqlite3.connect(sys.argv[1]); c.execute("delete from rp_events where seq = 4"); c.commit()' "$tmp/gap.db"
RAPPORT_DB="$tmp/gap.db" "$RAPPORT" replay "$tmp/rule.lua" --json > "$tmp/g.json"
out=$(py 'r["notes"]' "$tmp/g.json")
check 'grep -q "1 events after the window.s start are missing from the log (removed)" <<<"$out"' "a gap in the log is not noted: $out"

# ---- mail the script would have sent: listed, never sent ----
if [ -n "$(RAPPORT_PLUGINS_BUILTIN=1 "$RAPPORT" plugins 2>/dev/null | grep -w collaborative)" ]; then
    export RAPPORT_PLUGINS_BUILTIN=1 RAPPORT_DB="$tmp/mail.db"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 -c 'import socket,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5); s.settimeout(60)
open(sys.argv[2], "w").close()
while True:
    try: c, _ = s.accept()
    except socket.timeout: break
    open(sys.argv[2], "a").write("connection\n"); c.close()' "$port" "$tmp/listener.log" & listen_pid=$!
    "$RAPPORT" init >/dev/null
    "$RAPPORT" config set mail.smtp.url "\"smtp://127.0.0.1:$port\"" >/dev/null
    "$RAPPORT" config set mail.from '"Support <support@example.com>"' >/dev/null
    "$RAPPORT" create contact '{"first_name":"Sara","last_name":"A","email":"sara@example.org"}' >/dev/null
    cat > "$tmp/mail.lua" <<'EOF'
crm.on("contact.created", function(ev)
  local c = crm.get("contact", ev.id)
  crm.collaborative.send_email{to = c.email, subject = "Welcome", body = "Hi", related = "contact:" .. ev.id}
end)
EOF
    for _ in $(seq 100); do [ -e "$tmp/listener.log" ] && break; sleep 0.02; done
    "$RAPPORT" replay "$tmp/mail.lua" --to 2099-01-01 --json > "$tmp/m1.json"
    "$RAPPORT" replay "$tmp/mail.lua" --to 2099-01-01 --json > "$tmp/m2.json"
    out=$(py '[(m["name"], m["status"], m["by"]["type"]) for m in r["messages"]], [c["entity"] for c in r["created"]]' "$tmp/m1.json")
    check 'grep -qF "[('"'"'collaborative.mail_send'"'"', '"'"'not run'"'"', '"'"'contact.created'"'"')]" <<<"$out" && grep -q interaction <<<"$out"' "the mail as a message: $out"
    check 'cmp -s "$tmp/m1.json" "$tmp/m2.json"' "two replays with mail differ: $(diff "$tmp/m1.json" "$tmp/m2.json")"
    sleep 0.3
    check '[ ! -s "$tmp/listener.log" ]' "the replay connected to the mail server: $(cat "$tmp/listener.log")"
    check '[ "$("$RAPPORT" count interaction)" = 0 ]' "the live database got an interaction"
    # Offline: a poll of a mailbox (its password stored) from a replayed handler, or inside a
    # dry run, never connects (it would log in and mark live mail seen): it is refused, said.
    "$RAPPORT" config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"imap://127.0.0.1:$port/INBOX\", \"user\": \"ana\", \"password\": \"pw\"}]" >/dev/null
    printf 'crm.on("contact.created", function(ev) crm.collaborative.poll_mail("support") end)\n' > "$tmp/poll.lua"
    "$RAPPORT" replay "$tmp/poll.lua" --json > "$tmp/p.json"
    out=$(py '[(e["by"]["seq"], e["error"]) for e in r["errors"]]' "$tmp/p.json")
    check 'grep -q "crm.collaborative.poll_mail: offline (a replay, a schema diff or a dry run)" <<<"$out"' "the poll in a replay is not refused in the report: $out"
    out=$("$RAPPORT" eval 'return crm.dry_run(function() return crm.collaborative.poll_mail("support") end)' 2>&1)
    check 'grep -q "poll_mail: offline" <<<"$out"' "the poll in a dry run is not refused: $out"
    out=$("$RAPPORT" eval 'local n = 0; crm.dry_run(function() n = 1 end); return n' 2>&1)
    check '[ "$out" = 1 ]' "a dry run without a poll: $out"
    # schema diff runs scripts' top-level code in a rolled-back transaction: offline too.
    mkdir -p "$tmp/sd" && printf 'crm.collaborative.poll_mail("support")\n' > "$tmp/sd/poll.lua"
    out=$("$RAPPORT" --scripts "$tmp/sd" schema diff 2>&1)
    check 'grep -q "poll_mail: offline" <<<"$out"' "the poll in schema diff is not refused: $out"
    sleep 0.3
    check '[ ! -s "$tmp/listener.log" ]' "a replay, a dry run or schema diff connected to the mail server: $(cat "$tmp/listener.log")"
    # The live engine still polls (the listener gets the connection): offline is not sticky.
    "$RAPPORT" eval 'crm.dry_run(function() end); return crm.collaborative.poll_mail("support")' >/dev/null 2>&1
    sleep 0.3
    check '[ -s "$tmp/listener.log" ]' "the live poll after a dry run did not connect"
else
    echo "note: the collaborative plugin is not built; the mail part is skipped"
fi
# A script's error text (which may hold a stored value) is shown escaped in the text report and
# in --trace: no control character reaches the terminal.
cat > "$tmp/esc.lua" <<'EOF3'
crm.on("*.created", function(ev) error("bad\27]0;PWNED\7\27[2J\r\nfake") end, {name = "esc"})
EOF3
out=$("$RAPPORT" replay "$tmp/esc.lua" 2>&1)
check '! LC_ALL=C grep -q $'"'"'[\x1b\x07\r]'"'"' <<<"$out" && grep -qF "bad\027]0;PWNED\007\027[2J" <<<"$out"' "the report sent a control character: $(cat -v <<<"$out")"
out=$("$RAPPORT" replay "$tmp/esc.lua" --event 3 --trace 2>&1)
check '! LC_ALL=C grep -q $'"'"'[\x1b\x07\r]'"'"' <<<"$out"' "the trace sent a control character: $(cat -v <<<"$out")"

finish
