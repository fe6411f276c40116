#!/usr/bin/env bash
# run.sh TEST.js — one browser test: a scratch database with a user (ana, admin) and a reader
# (rita), `rapport serve` on a free loopback port, then TEST.js driving Debian's headless
# chromium through playwright-core against it (RP_URL). Exits 77 (ctest's SKIP_RETURN_CODE)
# only when node or chromium is not installed; a missing playwright-core is a failure that says
# to run `npm ci` here (`make test` does it).
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
test_js=$here/${1:?usage: run.sh TEST.js}
chromium=${RP_CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null; then
    echo "SKIP: node is not installed (Debian: apt-get install nodejs); the browser tests need it"
    exit 77
fi
if [ ! -x "$chromium" ]; then
    echo "SKIP: $chromium is not installed (Debian: apt-get install chromium); the browser tests need it"
    exit 77
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
    echo "FAIL: playwright-core is not installed in $here: run \`npm ci\` there (make test does)" >&2
    exit 1
fi
tmp=$(mktemp -d)
serve_pid=
# KEEP=FILE keeps the server's log (a sanitizer's report goes there).
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$tmp/serve.log" "$KEEP"; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
"$RAPPORT" init >/dev/null || exit 1
"$RAPPORT" define pet '{"fields": {"name": {"type": "text", "required": true}}}' >/dev/null || exit 1
"$RAPPORT" roles set reader '{"entities": {"*": {"read": "all"}}}' >/dev/null 2>&1 || exit 1
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null || exit 1
"$RAPPORT" users add rita --role reader --password-stdin <<<"rita password 1" >/dev/null || exit 1
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=
for _ in $(seq 200); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/serve.log" 2>/dev/null | cut -d: -f2)
    [ -n "$port" ] && break
    sleep 0.05
done
if [ -z "$port" ]; then
    echo "FAIL: rapport serve did not start: $(cat "$tmp/serve.log")" >&2
    exit 1
fi
RP_URL=http://127.0.0.1:$port RP_CHROMIUM=$chromium RP_TMP=$tmp node "$test_js"
rc=$?
kill $serve_pid 2>/dev/null
wait $serve_pid 2>/dev/null
serve_pid=
exit $rc
