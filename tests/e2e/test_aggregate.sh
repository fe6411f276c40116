#!/usr/bin/env bash
# End-to-end: grouped aggregates on every path — `rapport aggregate` (table, --json, --csv),
# crm.aggregate in Lua, GET /api/v1/<entity>/aggregate — with the same answers, the same
# errors, and the same role checks: a sales user aggregates only the team's records and can
# neither measure, group by nor filter on a field hidden from the role.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
"$RAPPORT" define sale '{"fields": {"customer": {"type": "text"}, "owner": {"type": "text"}, "at": {"type": "datetime"}, "amount": {"type": "decimal", "scale": 2}, "margin": {"type": "decimal", "scale": 2}}}' >/dev/null
mk() { "$RAPPORT" create sale "{\"customer\": \"$1\", \"owner\": \"$2\", \"at\": \"$3\", \"amount\": \"$4\", \"margin\": \"1.00\"}" >/dev/null; }
mk ann sam 2026-01-01T02:30:00Z 10.10
mk ann sam 2026-01-20T12:00:00Z 5.05
mk ann zoe 2026-04-02T09:00:00Z -3.00
mk bob tim 2025-12-31T23:00:00Z 0.01
mk bob zoe 2026-02-15T00:00:00Z 0.02
"$RAPPORT" roles set sales '{"entities": {"sale": {"read": "team"}}, "fields": {"sale.margin": "hidden"}}' >/dev/null 2>&1
for u in sam:north tim:north zoe:south; do
    IFS=: read -r name team <<<"$u"
    "$RAPPORT" users add "$name" --role sales --team "$team" --password-stdin <<<"password of $name" >/dev/null
done

# ---- the command line ------------------------------------------------------------------
out=$("$RAPPORT" aggregate sale --group-by customer --measures count,sum:amount,avg:amount)
check 'grep -Eq "^customer +count +sum_amount +avg_amount" <<<"$out"' "no table header: $out"
check 'grep -Eq "^ann +3 +12.15 +4.05" <<<"$out" && grep -Eq "^bob +2 +0.03 +0.02" <<<"$out"' "table rows wrong: $out"
out=$("$RAPPORT" aggregate sale --group-by at:month --measures sum:amount --csv)
check '[ "$(head -1 <<<"$out")" = "at_month,sum_amount" ] && grep -qx "2026-01,15.15" <<<"$out" && grep -qx "2025-12,0.01" <<<"$out"' "csv wrong: $out"
out=$("$RAPPORT" aggregate sale --group-by at:month --zone Asia/Tokyo --json)
check 'grep -qx "{\"at_month\":\"2026-01\",\"count\":3}" <<<"$out"' "--zone Tokyo does not move New Year's Eve into January: $out"
expect 0 '{"customer":"bob","count":2}' -- aggregate sale --group-by customer --order -count --limit 1 --offset 1 --json
expect 1 'unknown bucket "fortnight"' -- aggregate sale --group-by at:fortnight
expect 1 'unknown measure "median:amount"' -- aggregate sale --measures median:amount
expect 1 'customer is not a number, so it has no sum' -- aggregate sale --measures sum:customer
expect 1 'unknown field "nope" on sale' -- aggregate sale --group-by nope
expect 1 'is not a time zone name' -- aggregate sale --group-by at:day --zone ../../etc/passwd
expect 2 'choose one of --json and --csv' -- aggregate sale --json --csv
expect 2 'needs one entity' -- aggregate
# --as: the team's records only; the hidden field is refused however it is named.
out=$("$RAPPORT" --as sam aggregate sale --group-by owner --json)
check 'grep -q "\"owner\":\"sam\",\"count\":2" <<<"$out" && grep -q "\"owner\":\"tim\",\"count\":1" <<<"$out" && ! grep -q zoe <<<"$out"' "--as sam aggregates beyond the team: $out"
expect 1 'hidden field' -- --as sam aggregate sale --measures sum:margin
expect 1 'hidden field' -- --as sam aggregate sale --group-by margin
expect 1 'hidden field' -- --as sam aggregate sale --where '{"margin": {"gt": "0"}}'

# ---- Lua -------------------------------------------------------------------------------
out=$("$RAPPORT" eval 'local r = crm.aggregate("sale", {group_by = "customer", measures = {"count", "sum:amount"}, order = "-sum_amount"}); return r[1].customer, r[1].sum_amount, #r' 2>&1)
check 'grep -q "ann" <<<"$out" && grep -q "12.15" <<<"$out" && grep -q "2" <<<"$out"' "crm.aggregate: $out"
expect 1 'hidden field' -- --as sam eval 'return crm.aggregate("sale", {measures = "max:margin"})'
out=$("$RAPPORT" --as zoe eval 'return crm.json.encode(crm.aggregate("sale"))' 2>&1)
check 'grep -q "\"count\":2" <<<"$out"' "crm.aggregate --as zoe is not zoe's two: $out"
expect 1 'limit must be 1 to 100000' -- eval 'return crm.aggregate("sale", {limit = 0})'
expect 1 'group_by must be a string or an array' -- eval 'return crm.aggregate("sale", {group_by = 3})'

# ---- HTTP ------------------------------------------------------------------------------
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
U=http://127.0.0.1:$port
tok=$("$RAPPORT" tokens create --user sam 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*' | head -1)
req GET '/api/v1/sale/aggregate?group_by=customer&measures=count,sum:amount'
is 200 '{"customer":"ann","count":2,"sum_amount":"15.15"}' "GET aggregate as sam"
check '! grep -q "\"count\":3" <<<"$body"' "GET aggregate as sam counts zoe's sale: $body"
req GET '/api/v1/sale/aggregate?group_by=at:month&customer=bob'
is 200 '"at_month":"2025-12"' "GET aggregate with a field=value filter"
req GET '/api/v1/sale/aggregate?measures=sum:margin'
is 403 'hidden field' "GET aggregate of a hidden field"
req GET '/api/v1/sale/aggregate?group_by=margin'
is 403 'hidden field' "GET aggregate grouped by a hidden field"
req GET '/api/v1/sale/aggregate?group_by=at:fortnight'
is 400 'unknown bucket' "GET aggregate with a bad bucket"
req GET '/api/v1/sale/aggregate?zone=Mars/Base&group_by=at:day'
is 400 'unknown time zone' "GET aggregate with an unknown zone"
req POST '/api/v1/sale/aggregate' '{}'
is 405 '' "POST aggregate"
req GET '/openapi.json'
is 200 '/api/v1/sale/aggregate' "OpenAPI lists the aggregate route"
kill -TERM $serve_pid; wait $serve_pid; serve_pid=
# A label holding escape sequences is shown escaped in the table, never sent to the terminal.
"$RAPPORT" eval 'crm.create("sale", {customer = "x\27]0;PWNED\7\27[2J\194\155", amount = "1.00"})' >/dev/null
out=$("$RAPPORT" aggregate sale --group-by customer 2>&1)
check '! LC_ALL=C grep -q $'"'"'[\x1b\x07]\|\xc2[\x80-\x9f]'"'"' <<<"$out" && grep -qF "x\027]0;PWNED\007\027[2J\194\155" <<<"$out"' "a control character reached the terminal: $(cat -v <<<"$out")"

finish
