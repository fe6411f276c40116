#!/usr/bin/env bash
# End-to-end: `make demo`'s script builds a living CRM, makes an admin token, prints curl lines
# that work, and leaves `rapport serve` answering on the address it names.
set -u
RAPPORT=${RAPPORT:-build/rapport}
RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
demo_pid=
trap '[ -n "$demo_pid" ] && kill $demo_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp"
RAPPORT="$RAPPORT" RAPPORT_DEMO_DB="$tmp/demo.db" RAPPORT_DEMO_LISTEN=127.0.0.1:0 \
    bash "$here/../../examples/demo.sh" > out.txt 2>&1 &
demo_pid=$!
port=$(listened_port out.txt 600) # the demo fills its database first
check '[ -n "$port" ]' "the demo did not start serving: $(tail -20 out.txt)"
tok=$(grep -o 'rpt_[A-Za-z0-9_-]*' out.txt | head -1)
check '[ -n "$tok" ]' "the demo printed no token"
# The printed curl lines, run as printed (with the port serve took).
line=$(grep -m1 "curl -s -H \"Authorization: Bearer $tok\" '" out.txt | sed "s/127.0.0.1:0/127.0.0.1:$port/")
out=$(eval "$line")
check 'grep -q "\"stage\":\"won\"" <<<"$out"' "the first curl line: $out"
out=$(curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/v1/contact?limit=1")
check 'grep -q "\"next\":\"" <<<"$out"' "the demo has contacts to page through: $out"
check 'grep -q "repl" out.txt' "the demo does not say how to open the REPL"
kill -TERM $demo_pid; wait $demo_pid; st=$?; demo_pid=
check '[ $st = 0 ]' "the demo's serve exited $st on SIGTERM"
finish
