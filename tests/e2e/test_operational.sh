#!/usr/bin/env bash
# End-to-end: the operational plugin's commands as a user types them — demo-data, convert-lead,
# duplicates, merge — reached by their own names, and the engine acting on the demo data.
set -u
RAPPORT=${RAPPORT:-build/rapport}
tmp=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
serve_pid=
export RAPPORT_DB="$tmp/crm.db"
. "$(dirname "$0")/lib.sh"

"$RAPPORT" init >/dev/null
expect 0 "operational 0.2.0" -- plugins
expect 0 "demo data:" -- demo-data
for pair in account:20 contact:60 lead:30 deal:25 activity:40 ticket:16 order:20 product:10; do
    e=${pair%%:*} n=${pair#*:}
    check '[ "$(count "$e")" = "$n" ]' "demo-data made $(count "$e") ${e}s, wanted $n"
done
check '[ "$(count deal --where "{\"stage\": \"won\"}")" -gt 0 ] && [ "$(count deal --where "{\"stage\": \"lost\"}")" -gt 0 ]' "demo deals: no won or lost ones"
check '[ "$(count invoice)" -gt 0 ] && [ "$(count order --where "{\"status\": \"delivered\"}")" -gt 0 ]' "demo orders: none delivered or invoiced"
expect 1 "fills an empty database" -- demo-data
expect 2 "usage: rapport demo-data" -- demo-data --size huge
# The same command through its plugin's name.
expect 1 "fills an empty database" -- operational demo-data

# A ticket whose first answer is overdue breaches as soon as the engine runs, and goes up.
"$RAPPORT" config set rules.sla_escalation.supervisor '"boss"' >/dev/null
"$RAPPORT" serve --poll-ms 50 > "$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
    [ "$(count ticket --where '{"escalated_to": "boss"}')" -ge 4 ] && break
    sleep 0.1
done
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=
check '[ "$(count ticket --where "{\"sla_breached\": true}")" = 4 ]' "breached tickets: $(count ticket --where '{"sla_breached": true}')"
check '[ "$(count ticket --where "{\"escalated_to\": \"boss\"}")" = 4 ]' "escalated tickets: $(cat "$tmp/serve.log")"

# Lead conversion from the command line, once.
id=$("$RAPPORT" eval 'return crm.create("lead", {last_name = "Hopper", company = "Navy"}).id')
expect 0 '"name":"Navy"' -- convert-lead "$id" --deal "Pilot" --amount 1000
expect 1 "already converted" -- convert-lead "$id"
expect 2 "usage: rapport convert-lead" -- convert-lead
expect 1 "no lead with id 999999" -- convert-lead 999999

# Duplicates and merge.
"$RAPPORT" create contact '[{"last_name": "Twin", "email": "twin@example.com"}, {"first_name": "T", "last_name": "Twin", "email": "TWIN@example.com", "title": "CEO"}]' >/dev/null
out=$("$RAPPORT" duplicates contact 2>&1)
check 'grep -q "\"reasons\":\[\"email\"\]" <<<"$out"' "duplicates: $out"
ids=$("$RAPPORT" find contact --where '{"last_name": "Twin"}' --order id --fields id 2>/dev/null | sed 's/.*"id":\([0-9]*\).*/\1/' | paste -sd' ')
set -- $ids
expect 0 '"title":"CEO"' -- merge contact "$1" "$2"
check '[ "$(count contact --where "{\"last_name\": \"Twin\"}")" = 1 ]' "merge left both twins"
expect 1 "deleted already" -- merge contact "$1" "$2"
expect 2 "usage: rapport merge" -- merge contact
expect 0 "contact.merged" -- events tail -n 5

finish
