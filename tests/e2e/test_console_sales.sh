#!/usr/bin/env bash
# End-to-end: what the console's sales pages read besides the records, against `rapport serve`:
#  - GET /api/v1/plugins/operational/pipelines: the default pipeline's stages (name,
#    probability, kind) for a fresh install, the setting's pipelines once set; anything after
#    the path is 404 naming it; no token is 401; a user with a role that reads no deal still
#    gets the stages (they are not records) but the deals themselves are refused (403);
#    documented in /openapi.json (its summary);
#  - Chart.js carried in the binary: /shared/vendor/chart.min.js (Debian's libjs-chart.js) as
#    JavaScript with an ETag and its licence beside it; the pages' files are served.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null
"$RAPPORT" roles set nodeals '{"entities": {"contact": {"read": "all"}}}' >/dev/null 2>&1
"$RAPPORT" users add sam --role nodeals --password-stdin <<<"sam password 12" >/dev/null
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
check '[ -n "$port" ]' "serve did not say where it listens: $(cat "$tmp/serve.log")"
U=http://127.0.0.1:$port
P=/api/v1/plugins/operational/pipelines

tok=$(token_of ana)
req GET $P
is 200 '"default":[{"name":"new","probability":10,"kind":"open"}' "the default pipeline"
check 'grep -qF "{\"name\":\"won\",\"probability\":100,\"kind\":\"won\"}" <<<"$body"' \
      "the default pipeline has its won stage: $body"
"$RAPPORT" config set plugin.operational.pipelines \
    '{"renewals": [{"name": "due", "probability": 60, "kind": "open"}, {"name": "renewed", "probability": 100, "kind": "won"}]}' >/dev/null
req GET $P
is 200 '{"renewals":[{"name":"due","probability":60,"kind":"open"},{"name":"renewed"' \
   "the pipelines setting is what the route gives"
req GET $P/extra
is 404 'nothing follows the path (got \"/extra\")' "a path below the route is refused, named"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U$P")
check '[ "$code" = 401 ]' "the route without a token: $code"

tok=$(token_of sam)
req GET $P
is 200 '"renewals"' "a role that reads no deal still gets the stages"
req GET '/api/v1/deal?pipeline=renewals'
is 403 'may not read deal' "but its deals are refused"

code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/openapi.json")
check 'python3 -c "import json,sys; assert json.load(open(sys.argv[1]))[\"paths\"][\"$P\"][\"get\"][\"summary\"].startswith(\"The deal pipelines\")" "$tmp/body"' \
      "the OpenAPI document lists $P"

code=$(curl -s -D "$tmp/head" -o "$tmp/chart.js" -w '%{http_code}' "$U/shared/vendor/chart.min.js")
check '[ "$code" = 200 ] && grep -qi "^content-type: text/javascript" "$tmp/head" && grep -qi "^etag:" "$tmp/head"' \
      "Chart.js is served as JavaScript with an ETag: $code $(cat "$tmp/head")"
check 'head -c 200 "$tmp/chart.js" | grep -qF "Chart.js v3"' "the file is Chart.js 3"
check 'cmp -s "$tmp/chart.js" /usr/share/javascript/chart.js/chart.min.js' \
      "the carried file is Debian's chart.min.js"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/shared/vendor/chart.js.LICENSE.txt")
check '[ "$code" = 200 ] && grep -qF "Permission is hereby granted" "$tmp/body"' \
      "Chart.js's licence is served beside it ($code)"
for f in pipeline.js customer.js analytics.js pipeline.css customer.css analytics.css; do
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/console/$f")
    check '[ "$code" = 200 ] && [ -s "$tmp/body" ]' "/console/$f: $code"
done
check 'curl -s "$U/console/" | grep -qF "<script src=\"/console/pipeline.js\" defer></script>"' \
      "the console loads the pipeline page"
finish
