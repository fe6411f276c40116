#!/usr/bin/env bash
# End-to-end: the right to be forgotten. A contact with personal fields, updated a few times,
# with orders, lines, a ticket, an interaction and a custom event naming its email, is exported
# as one document (also as a restricted user), then erased: nothing personal is left in the
# record, its events, the search index, the file or its write-ahead log, while the history
# keeps its shape. A second erase changes nothing, a user may not erase, and a kill -9 in the
# middle of a big erasure leaves all or nothing.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
bg_pid=
trap '[ -n "$bg_pid" ] && kill -9 $bg_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
r() { "$RAPPORT" "$@" 2>&1; }
idof() { grep -o '"id":[0-9]*' | head -1 | cut -d: -f2; }
q() { sqlite3 "$RAPPORT_DB" "$1"; }

"$RAPPORT" init >/dev/null
c=$(r create contact '{"first_name": "Parvaneh", "last_name": "Quolmorad", "email": "pq.first@example.org", "phone": "+98 912 555 0101", "mobile": "+98 935 555 0102", "birthday": "1988-03-21", "address": "7 Nightingale Lane", "city": "Yazdabad", "country": "IR", "title": "Glassblower", "source": "fair"}' | idof)
expect 0 'personal' -- schema contact
check '"$RAPPORT" eval "return crm.schema.get(\"contact\").fields.email.personal" | grep -qx true' \
    "crm.schema.get does not show the personal flag"
other=$(r create contact '{"first_name": "Keeper", "last_name": "Untouchedson", "email": "keeper@example.net", "city": "Stayton"}' | idof)
r update contact "$c" '{"email": "pq.second@example.org"}' >/dev/null
r update contact "$c" '{"email": "pq.third@example.org", "address": "9 Quince Court"}' >/dev/null
r update contact "$c" '{"title": "Master glassblower"}' >/dev/null
o1=$(r create order "{\"contact\": $c}" | idof)
o2=$(r create order "{\"contact\": $c}" | idof)
r create order_line "{\"order\": $o1, \"description\": \"vase\", \"quantity\": \"2.000\", \"unit_price\": \"5.00\", \"total\": \"10.00\"}" >/dev/null
r create order_line "{\"order\": $o2, \"description\": \"bowl\", \"quantity\": \"1.000\", \"unit_price\": \"7.00\", \"total\": \"7.00\"}" >/dev/null
t=$(r create ticket "{\"subject\": \"Cracked vase\", \"contact\": $c, \"description\": \"Parvaneh Quolmorad writes: call pq.third@example.org\"}" | idof)
i=$(r eval "return crm.create('interaction', {channel = 'email', direction = 'in', contact = $c, subject = 'About my vase', body = 'Regards, Parvaneh Quolmorad', from_addr = 'pq.third@example.org'}).id")
att=$(r create attachment "{\"interaction\": $i, \"filename\": \"pq-passport-scan.pdf\", \"content_type\": \"application/pdf\", \"size\": 14, \"data\": \"UGFzc3BvcnQgb2YgUFE=\"}" | idof)
r eval 'crm.emit("newsletter.signup", {email = "pq.second@example.org", list = "news", note = "from pq.second@example.org at the fair"})' >/dev/null
check '[ -n "$c" ] && [ -n "$o1" ] && [ -n "$t" ] && [ -n "$i" ] && [ -n "$att" ]' "setup failed: c=$c o1=$o1 t=$t i=$i att=$att"

# ---- export-subject: the record, what refers to it (two levels) and all their events ----
doc=$(r export-subject contact "$c")
check 'python3 -c "
import json, sys
d = json.loads(sys.argv[1]); rel = d[\"related\"]
assert d[\"record\"][\"email\"] == \"pq.third@example.org\"
assert sorted(o[\"id\"] for o in rel[\"order\"]) == sorted([$o1, $o2]), rel.get(\"order\")
assert sorted(l[\"description\"] for l in rel[\"order_line\"]) == [\"bowl\", \"vase\"]
assert [x[\"id\"] for x in rel[\"ticket\"]] == [$t] and [x[\"id\"] for x in rel[\"interaction\"]] == [$i]
types = [(e[\"entity\"], e[\"type\"]) for e in d[\"events\"]]
assert types.count((\"contact\", \"contact.updated\")) == 3, types
assert (\"order_line\", \"order_line.created\") in types and (\"ticket\", \"ticket.created\") in types
seqs = [e[\"seq\"] for e in d[\"events\"]]
assert seqs == sorted(seqs), seqs
" "$doc"' "export-subject lacks something: $doc"
q "SELECT 1" >/dev/null
r roles set clerk '{"entities": {"contact": {"read": "all"}, "ticket": {"read": "all"}, "order": {"read": "none"}}, "fields": {"contact.email": "hidden"}}' >/dev/null
r roles set mine '{"entities": {"contact": {"read": "own"}}}' >/dev/null
"$RAPPORT" users add clara --role clerk --password-stdin <<<"password of clara" >/dev/null
"$RAPPORT" users add mo --role mine --password-stdin <<<"password of mo" >/dev/null
doc=$(r --as clara export-subject contact "$c")
check 'python3 -c "
import json, sys
d = json.loads(sys.argv[1]); rel = d[\"related\"]
assert \"email\" not in d[\"record\"] and d[\"record\"][\"last_name\"] == \"Quolmorad\"
assert \"order\" not in rel and \"order_line\" not in rel, rel.keys()
assert [x[\"id\"] for x in rel[\"ticket\"]] == [$t]
assert all(\"email\" not in e[\"changes\"] for e in d[\"events\"] if e[\"entity\"] == \"contact\")
assert all(e[\"entity\"] in (\"contact\", \"ticket\") for e in d[\"events\"])
" "$doc"' "export-subject --as clara ignores her scopes: $doc"
expect 1 'contact.read' -- --as mo export-subject contact "$c"

# ---- erase ----------------------------------------------------------------------------------
events_before=$(q "SELECT count(*) FROM rp_events")
types_before=$(q "SELECT group_concat(type, ',') FROM (SELECT type FROM rp_events ORDER BY seq)")
expect 1 'may not erase personal data' -- --as clara erase contact "$c"
check '[ "$(q "SELECT email FROM contact WHERE id = $c")" = pq.third@example.org ]' "a refused erase changed the record"
expect 1 'no personal field' -- erase order "$o1"
expect 1 'not found' -- erase contact 999999
expect 2 'usage: rapport erase' -- erase contact
expect 0 "erased contact $c" -- erase contact "$c" --reason "request #17"
rec=$(r get contact "$c")
check 'python3 -c "
import json, sys
r = json.loads(sys.argv[1])
for f in (\"first_name\", \"last_name\", \"email\", \"phone\", \"mobile\", \"birthday\", \"address\", \"city\"):
    assert r[f] is None, f
assert r[\"title\"] == \"Master glassblower\" and r[\"country\"] == \"IR\" and r[\"source\"] == \"fair\"
" "$rec"' "the record after erase: $rec"
# One event for the contact, one for the attachment the collaborative plugin's hook erased.
check '[ "$(q "SELECT count(*) FROM rp_events")" = $((events_before + 2)) ]' "events: $(q "SELECT count(*) FROM rp_events"), wanted $((events_before + 2))"
types_after=$(q "SELECT group_concat(type, ',') FROM (SELECT type FROM rp_events ORDER BY seq)")
check '[ "$types_after" = "$types_before,attachment.erased,contact.erased" ]' "event types changed by the erasure: ${types_after#"$types_before"}"
check '[ "$(q "SELECT coalesce(filename, data, \"gone\") FROM attachment WHERE id = $att")" = gone ] && [ "$(q "SELECT content_type FROM attachment WHERE id = $att")" = application/pdf ]' "the attachment keeps its file or lost its type"
erased=$(q "SELECT changes FROM rp_events WHERE type = 'contact.erased'")
check 'grep -q "\"reason\":\"request #17\"" <<<"$erased" && grep -q "\"ticket\":\[$t\]" <<<"$erased" && grep -q "\"interaction\":\[$i\]" <<<"$erased"' "contact.erased: $erased"
check '[ "$(q "SELECT actor FROM rp_events WHERE type = '"'contact.erased'"'")" != "" ]' "contact.erased has no actor"
# The history keeps its shape: the keys stay, their values are null.
check '[ "$(q "SELECT changes FROM rp_events WHERE entity = '"'contact'"' AND record_id = $c AND type = '"'contact.updated'"' ORDER BY seq LIMIT 1")" = "{\"email\":[null,null]}" ]' "first update after erase: $(q "SELECT changes FROM rp_events WHERE entity = 'contact' AND record_id = $c AND type = 'contact.updated' ORDER BY seq LIMIT 1")"
check 'q "SELECT changes FROM rp_events WHERE type = '"'newsletter.signup'"'" | grep -qF "from [erased] at the fair"' "the custom event still names the email: $(q "SELECT changes FROM rp_events WHERE type = 'newsletter.signup'")"
check '[ "$(q "SELECT description FROM ticket WHERE id = $t")" = "" ] && [ "$(q "SELECT subject FROM ticket WHERE id = $t")" = "Cracked vase" ]' "the ticket's personal text stays"
check '[ "$(q "SELECT coalesce(body, from_addr, \"gone\") FROM interaction WHERE id = $i")" = gone ]' "the interaction's body or address stays"
check '[ "$(q "SELECT description FROM order_line WHERE \"order\" = $o1")" = vase ]' "an order line lost its description"
check '[ -z "$(r search Quolmorad)" ] && [ -z "$(r search pq.third)" ] && [ -z "$(r search Parvaneh)" ]' "search still finds the erased: $(r search Quolmorad)"
check 'r search Untouchedson | grep -q "\"id\":$other"' "search lost the other contact"
check '! r export contact | grep -q -e Quolmorad -e pq.third -e Nightingale' "export still shows the erased values"
check 'r export contact | grep -q keeper@example.net' "export lost the other contact"
q "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
dump=$(q .dump)
for w in Parvaneh Quolmorad pq.first pq.second pq.third Nightingale Quince Yazdabad 1988-03-21 9125550101 9355550102 pq-passport UGFzc3BvcnQgb2YgUFE; do
    check '! grep -qF "$w" <<<"$dump"' "the database dump still holds \"$w\""
    check '! cat "$RAPPORT_DB"* | grep -qaF "$w"' "the database file (or its -wal) still holds \"$w\""
    check '! cat "$RAPPORT_DB"* | grep -qaiF "$(tr "[:upper:]" "[:lower:]" <<<"$w")"' "the file still holds the folded \"$w\""
done
check 'grep -qF keeper@example.net <<<"$dump" && grep -qF Untouchedson <<<"$dump"' "the other contact was erased too"
# A second erase finds nothing left and writes nothing.
expect 0 'no personal data left to erase' -- erase contact "$c"
check '[ "$(q "SELECT count(*) FROM rp_events")" = $((events_before + 2)) ]' "a second erase appended an event"
# From Lua: the installation's scripts may; the result says what was done.
check '[ "$(r eval "return crm.erase(\"contact\", $other, \"test\").erased")" = true ]' "crm.erase did not erase"
check '[ "$(q "SELECT last_name FROM contact WHERE id = $other")" = "" ]' "crm.erase left the last name"

# ---- an installation made before the flag: the plugins declare it at their next start ------
q "UPDATE rp_fields SET spec = json_remove(spec, '\$.personal') WHERE entity IN ('contact', 'interaction')"
check '! r schema contact | grep -q personal' "the flags were not taken away"
r eval 'return 1' >/dev/null
check 'r schema contact | grep -E "^  email " | grep -q personal && r schema contact | grep -E "^  social_handle " | grep -q personal && r schema interaction | grep -E "^  body " | grep -q personal' "an older installation does not gain the personal flags: $(r schema contact)"
check '[ "$(q "SELECT count(*) FROM rp_events WHERE type = '"'schema.field_changed'"'")" -ge 10 ]' "no schema.field_changed events for the gained flags"

# ---- a kill -9 in the middle of a big erasure: all or nothing ----------------------------
export RAPPORT_DB="$tmp/big.db"
"$RAPPORT" init >/dev/null
python3 -c "
import json
for i in range(20000): print(json.dumps({'last_name': 'Filler%d' % i, 'email': 'f%d@example.com' % i}))" >"$tmp/c.jsonl"
"$RAPPORT" import contact "$tmp/c.jsonl" --format jsonl --quiet >/dev/null
big=$(r create contact '{"first_name": "Crash", "last_name": "Vanishwick", "email": "crash.v@example.org"}' | idof)
r update contact "$big" '{"address": "1 Fallen Road"}' >/dev/null
# Many events about the record, copied in directly: what years of changes would leave.
q "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
   INSERT INTO rp_events(uid, type, entity, record_id, actor, origin, at, changes, cause, depth)
   SELECT uid || i, type, entity, record_id, actor, origin, at, changes, cause, depth
   FROM n, (SELECT * FROM rp_events WHERE type = 'contact.updated' AND record_id = $big)"
n_before=$(q "SELECT count(*) FROM rp_events")
"$RAPPORT" erase contact "$big" >/dev/null 2>&1 &
bg_pid=$!
sleep 1
kill -9 "$bg_pid" 2>/dev/null
wait "$bg_pid" 2>/dev/null
bg_pid=
check '[ "$(q "PRAGMA integrity_check")" = ok ]' "the database is damaged after kill -9"
n_after=$(q "SELECT count(*) FROM rp_events")
left=$(q "SELECT count(*) FROM rp_events WHERE changes LIKE '%Fallen Road%'")
email=$(q "SELECT coalesce(email, '') FROM contact WHERE id = $big")
if [ "$n_after" = "$n_before" ]; then
    check '[ "$left" = 300001 ] && [ "$email" = crash.v@example.org ]' "killed erase left a part: $left events still hold the address, email \"$email\""
else
    check '[ "$n_after" = $((n_before + 1)) ] && [ "$left" = 0 ] && [ -z "$email" ]' "killed erase left a part: $n_after events, $left with the address, email \"$email\""
fi
check '[ "$n_after" = "$n_before" ]' "the erase ended before the kill (so this tested nothing): make the record's history bigger"
# And run to its end, it takes everything.
expect 0 "contact $big" -- erase contact "$big"
check '[ "$(q "SELECT count(*) FROM rp_events WHERE changes LIKE '"'%Fallen Road%'"' OR changes LIKE '"'%crash.v%'"'")" = 0 ]' "the big erase left values"
check '[ -z "$(r search Vanishwick)" ] && [ -n "$(r search Filler12345)" ]' "search after the big erase"
finish
