#!/usr/bin/env bash
# End-to-end: outgoing webhooks from `rapport serve` to local receivers that answer as scripted
# (tests/e2e/webhook_receiver.c): signatures checked with openssl, retries after 5xx and after
# a receiver that never answers, a 4xx dead at once and replayed, the last try dead-lettered,
# the delivery log, hidden fields left out for a restricted owner, events the owner may not see
# never sent, pause and resume, the API answering while a receiver hangs, and the CLI's errors.
# Destinations inside (loopback, link-local, …) are refused when added and again when connected
# to, unless webhooks.allow_networks allows them; the receivers here are on 127.0.0.1, so the
# test allows 127.0.0.1/32 and takes it back at the end. A password in a URL is never shown.
set -u
RAPPORT=${RAPPORT:-build/rapport}
RECEIVER=${RP_WEBHOOK_RECEIVER:-build/tests/webhook_receiver}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
pids=()
cleanup() {
    [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && cp -r "$tmp" /tmp/webhooks_e2e
    rm -rf "$tmp"
}
trap cleanup EXIT
export RAPPORT_DB="$tmp/crm.db"

# wait_for CONDITION: up to 20 s (sanitizer builds are slow) for a shell expression to hold.
wait_for() { for _ in $(seq 400); do eval "$1" && return 0; sleep 0.05; done; return 1; }
# requests DIR: how many requests a receiver has had.
requests() { if [ -f "$1/log" ]; then wc -l < "$1/log"; else echo 0; fi; }
# hdr FILE NAME: a header's value in a request head.
hdr() { grep -i "^$2:" "$1" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# signed DIR N SECRET: request N's signature is the HMAC-SHA256 of "<timestamp>.<body>".
signed() {
    local ts sig want
    ts=$(hdr "$1/$2.head" X-Rapport-Timestamp)
    sig=$(hdr "$1/$2.head" X-Rapport-Signature)
    want="sha256=$({ printf '%s.' "$ts"; cat "$1/$2.body"; } | openssl dgst -sha256 -hmac "$3" -r | cut -d' ' -f1)"
    [ -n "$ts" ] && [ "$sig" = "$want" ]
}
# receiver NAME SCRIPT: starts a receiver in $tmp/NAME; its URL goes to $url.
receiver() {
    local dir=$tmp/$1
    mkdir -p "$dir"
    "$RECEIVER" "$dir" "$2" 2>>"$tmp/receivers.log" &
    pids+=($!)
    disown $! # killed at the end without a word from the shell
    wait_for '[ -s "$dir/port" ]' || bad "receiver $1 did not start"
    url="http://127.0.0.1:$(cat "$dir/port")/hooks/$1?token=path-secret"
}
# log_row ID N: line N of webhook ID's delivery log.
log_row() { "$RAPPORT" webhooks deliveries "$1" | sed -n "${2}p"; }

"$RAPPORT" init >/dev/null
# Load the built-in plugin once, so the entities it defines are there before any webhook.
"$RAPPORT" eval 'return 1' >/dev/null
"$RAPPORT" config set roles.agent '{"entities": {"*": {"read": "all"}}, "fields": {"contact.email": "hidden"}}' >/dev/null
"$RAPPORT" config set roles.dealer '{"entities": {"deal": {"read": "all"}}}' >/dev/null
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null
"$RAPPORT" users add bo --role agent --password-stdin <<<"a long password" >/dev/null
"$RAPPORT" users add cy --role dealer --password-stdin <<<"a long password" >/dev/null

# The command line refuses what cannot work, naming it.
expect 2 'not an http:// or https:// URL' -- webhooks add ftp://example.com/x --events '*' --user ana
expect 2 'names no host' -- webhooks add http:///x --events '*' --user ana
expect 2 "holds 'C' at position 1" -- webhooks add http://example.com --events 'Contact.*' --user ana
expect 2 'needs a URL, --events TYPES' -- webhooks add http://example.com --user ana
expect 1 'no user "nobody"' -- webhooks add http://example.com --events '*' --user nobody
expect 1 '16 to 256 characters' -- webhooks add http://example.com --events '*' --user ana --secret short
expect 1 'no webhook 99' -- webhooks remove 99
expect 2 'is not an id' -- webhooks pause x
expect 2 'unknown subcommand' -- webhooks frob

# Destinations inside are refused when added, whatever the notation, naming the address, what
# it is and the setting that would allow it.
expect 1 'RP-E2002: webhooks do not deliver to 127.0.0.1 (a loopback address) unless the setting webhooks.allow_networks allows it (rapport config set webhooks.allow_networks 127.0.0.1/32)' \
    -- webhooks add http://127.0.0.1:9/hook --events '*' --user ana
for u in http://2130706433:9/ http://0177.0.0.1:9/ http://0x7f000001:9/ http://127.1:9/ http://0x7f.1:9/; do
    expect 1 'webhooks do not deliver to 127.0.0.1 (a loopback address)' -- webhooks add "$u" --events '*' --user ana
done
expect 1 'to 169.254.169.254 (a link-local address)' -- webhooks add http://169.254.169.254/latest/meta-data/ --events '*' --user ana
expect 1 'to ::ffff:127.0.0.1 (a loopback address, as IPv4-mapped 127.0.0.1)' -- webhooks add 'http://[::ffff:127.0.0.1]:9/' --events '*' --user ana
expect 1 'to ::1 (a loopback address)' -- webhooks add 'http://[::1]:9/' --events '*' --user ana
expect 1 'to 10.0.0.1 (a private address)' -- webhooks add http://10.0.0.1/ --events '*' --user ana
expect 1 'the webhook host localhost leads only where webhooks do not deliver' -- webhooks add http://localhost:9/ --events '*' --user ana
# An allow list that does not parse is refused when set, naming the entry.
expect 1 '"10.0.0.0/33" has a prefix length that is not 0 to 32' -- config set webhooks.allow_networks 10.0.0.0/33
expect 1 '"127.1" is an IPv4 address in a short or numeric form' -- config set webhooks.allow_networks 127.1
expect 1 '"[::1]" is bracketed' -- config set webhooks.allow_networks '[::1]'
check '! "$RAPPORT" config get webhooks.allow_networks >/dev/null 2>&1' "a refused allow list was stored"
check '[ -z "$("$RAPPORT" webhooks list)" ]' "a refused webhook was stored"
expect 0 'set webhooks.allow_networks' -- config set webhooks.allow_networks 127.0.0.1/32
# ::1 is not in the list: an address is allowed by its range, not by being "loopback".
expect 1 'to ::1 (a loopback address)' -- webhooks add 'http://[::1]:9/' --events '*' --user ana

# A: fails twice with 500, then takes it (the secret is given).
receiver a "500,500,200"; url_a=$url
secret_a="given-secret-0123456789"
out=$("$RAPPORT" webhooks add "$url_a" --events contact.created --user ana --secret "$secret_a")
check 'grep -qF "webhook 1 added" <<<"$out" && ! grep -qF "$secret_a" <<<"$out"' "add with --secret: $out"
# B: 404, dead at once; 200 once replayed.
receiver b "404,200"; url_b=$url
out=$("$RAPPORT" webhooks add "$url_b" --events contact.created --user ana 2>&1)
secret_b=$(sed -n 's/^secret: //p' <<<"$out")
check '[[ "$secret_b" == whsec_* ]] && grep -qF "shown this once" <<<"$out"' "a generated secret is not printed once: $out"
# C: never answers the first time; the second attempt is taken.
receiver c "hang,200"; url_c=$url
"$RAPPORT" webhooks add "$url_c" --events contact.created --user ana >/dev/null 2>&1
# D: always 503: dead after the last of 3 attempts.
receiver d "503"; url_d=$url
"$RAPPORT" webhooks add "$url_d" --events contact.created --user ana >/dev/null 2>&1
# E: owned by bo, whose role hides contact.email.
receiver e "200"; url_e=$url
secret_e=$("$RAPPORT" webhooks add "$url_e" --events 'contact.*,deal.won' --user bo 2>/dev/null | sed -n 's/^secret: //p')
# F: owned by cy, who reads deals only: contact events are not sent.
receiver f "200"; url_f=$url
"$RAPPORT" webhooks add "$url_f" --events '*' --user cy >/dev/null 2>&1
# G: a user and password in its URL (sent as Basic auth), shown nowhere.
receiver g "200"; url_g=${url/http:\/\//http://hookuser:hookpass-0123@}
out=$("$RAPPORT" webhooks add "$url_g" --events contact.created --user ana 2>&1)
check 'grep -qF "webhook 7 added: http://***@127.0.0.1:" <<<"$out" && ! grep -qF hookpass <<<"$out"' "add shows the URL's password: $out"

list=$("$RAPPORT" webhooks list)
check '[ "$(wc -l <<<"$list")" = 7 ]' "webhooks list: $list"
check 'grep -qF "\"id\":7,\"url\":\"http://***@127.0.0.1:$(cat "$tmp/g/port")/hooks/g?token=path-secret\"" <<<"$list" && ! grep -qF hookpass <<<"$list" && ! grep -qF hookuser <<<"$list"' "webhooks list shows the URL's user or password: $list"
check 'grep -qF "\"id\":5,\"url\":\"$url_e\",\"events\":\"contact.*,deal.won\",\"user\":\"bo\",\"active\":true" <<<"$list"' "list lacks webhook 5 as made: $list"
check '! grep -qF "$secret_a" <<<"$list" && ! grep -qF "$secret_b" <<<"$list" && ! grep -q "\"secret\"" <<<"$list"' "webhooks list shows a secret"
check '"$RAPPORT" events tail -n 20 | grep -q "\"type\":\"webhook.added\".*\"url\":\"http://127.0.0.1:[0-9]*\"" && ! "$RAPPORT" events tail -n 20 | grep -qF path-secret && ! "$RAPPORT" events tail -n 20 | grep -qF hookpass' "webhook.added carries more of the URL than its origin"

# A proxy from the environment (a closed port here) is not used: it would connect in the
# receiver's stead, past the checks of where webhooks may go.
http_proxy=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 no_proxy= NO_PROXY= \
RAPPORT_WEBHOOKS_TIMEOUT_MS=1500 RAPPORT_WEBHOOKS_RETRY_BASE_MS=200 RAPPORT_WEBHOOKS_MAX_ATTEMPTS=3 \
    "$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
wait_for 'grep -q "listening on 127.0.0.1:" "$tmp/serve.log"' || bad "serve did not start: $(cat "$tmp/serve.log")"
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/serve.log" | cut -d: -f2)

"$RAPPORT" create contact '{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}' >/dev/null
seq=$("$RAPPORT" events tail -n 1 | grep -o '"seq":[0-9]*' | cut -d: -f2)
uid=$("$RAPPORT" events tail -n 1 | grep -o '"uid":"[^"]*"' | cut -d'"' -f4)

# While C's receiver holds its request, the API still answers.
wait_for '[ "$(requests "$tmp/c")" -ge 1 ]' || bad "C got no request"
if [ "$(requests "$tmp/c")" = 1 ]; then
    check 'curl -s --max-time 1 "http://127.0.0.1:$port/health" | grep -q "\"status\":\"ok\""' "the API did not answer while a webhook receiver hung"
fi

wait_for '[ "$(requests "$tmp/a")" -ge 3 ] && [ "$(requests "$tmp/c")" -ge 2 ] && [ "$(requests "$tmp/d")" -ge 3 ] && [ "$(requests "$tmp/e")" -ge 1 ] && [ "$(requests "$tmp/b")" -ge 1 ]' \
    || bad "not every receiver was reached: a=$(requests "$tmp/a") b=$(requests "$tmp/b") c=$(requests "$tmp/c") d=$(requests "$tmp/d") e=$(requests "$tmp/e"); $(cat "$tmp/serve.log")"
wait_for '"$RAPPORT" webhooks list | grep -q "\"id\":4,.*\"dead\":1"' || bad "D's event did not go dead"

# A: three attempts of one delivery, each signed, the same delivery id, then delivered.
check '[ "$(cut -d" " -f2 "$tmp/a/log" | tr "\n" ,)" = "500,500,200," ]' "A was asked $(cat "$tmp/a/log")"
for n in 1 2 3; do
    check 'signed "$tmp/a" $n "$secret_a"' "A's request $n is not signed with its secret: $(cat "$tmp/a/$n.head")"
    check '[ "$(hdr "$tmp/a/$n.head" X-Rapport-Delivery)" = "$uid" ]' "A's request $n has another delivery id"
done
check '! signed "$tmp/a" 3 "another-secret-0123"' "the signature check passes with a wrong secret"
check '[ "$(hdr "$tmp/a/3.head" X-Rapport-Event)" = contact.created ] && [ "$(hdr "$tmp/a/3.head" Content-Type)" = application/json ]' "A's headers: $(cat "$tmp/a/3.head")"
check 'grep -q "^POST /hooks/a?token=path-secret HTTP/1.1" "$tmp/a/3.head"' "A was not POSTed to its URL"
check 'grep -qF "\"type\":\"contact.created\"" "$tmp/a/3.body" && grep -qF "\"seq\":$seq," "$tmp/a/3.body" && grep -qF "\"email\":[null,\"ada@example.com\"]" "$tmp/a/3.body"' "A's body: $(cat "$tmp/a/3.body")"
check 'log_row 1 1 | grep -q "\"seq\":$seq,\"event\":\"$uid\",\"type\":\"contact.created\",\"attempt\":1,\"status\":500,\"error\":\"HTTP 500: scripted failure\".*\"outcome\":\"retry\""' "A's log row 1: $(log_row 1 1)"
check 'log_row 1 2 | grep -q "\"attempt\":2,\"status\":500,.*\"outcome\":\"retry\""' "A's log row 2: $(log_row 1 2)"
check 'log_row 1 3 | grep -q "\"attempt\":3,\"status\":200,\"error\":null,.*\"outcome\":\"delivered\""' "A's log row 3: $(log_row 1 3)"
check '[ "$("$RAPPORT" webhooks deliveries 1 | wc -l)" = 3 ]' "A's log has other rows: $("$RAPPORT" webhooks deliveries 1)"

# B: a 404 is not retried: dead at once, listed, replayed, then delivered.
check '[ "$(requests "$tmp/b")" = 1 ] && signed "$tmp/b" 1 "$secret_b"' "B: $(cat "$tmp/b/log")"
check 'log_row 2 1 | grep -q "\"attempt\":1,\"status\":404,.*\"outcome\":\"dead\""' "B's log: $(log_row 2 1)"
dead=$("$RAPPORT" webhooks dead 2)
check 'grep -q "\"subscriber\":\"webhook:2\",\"seq\":$seq,\"type\":\"contact.created\",\"error\":\"HTTP 404: scripted failure\"" <<<"$dead" && grep -q "\"webhook\":2" <<<"$dead"' "webhooks dead 2: $dead"
dead_id=$(grep -o '"id":[0-9]*' <<<"$dead" | head -1 | cut -d: -f2)
expect 0 "queued" -- webhooks replay "$dead_id"
wait_for '[ "$(requests "$tmp/b")" -ge 2 ]' || bad "the replayed dead letter was not delivered again"
wait_for 'log_row 2 2 | grep -q "\"outcome\":\"delivered\""' || bad "B's replay is not logged: $(log_row 2 2)"
check '[ "$(hdr "$tmp/b/2.head" X-Rapport-Delivery)" = "$uid" ] && signed "$tmp/b" 2 "$secret_b"' "B's replay is another delivery or unsigned"
check '[ -z "$("$RAPPORT" webhooks dead 2)" ]' "the replayed dead letter is still dead"

# C: the attempt that got no answer timed out and was retried.
check 'log_row 3 1 | grep -q "\"attempt\":1,\"status\":null,\"error\":\"no answer within 1500 ms (webhooks.timeout_ms)\".*\"outcome\":\"retry\""' "C's log row 1: $(log_row 3 1)"
wait_for 'log_row 3 2 | grep -q "\"attempt\":2,\"status\":200,.*\"outcome\":\"delivered\""' || bad "C's log row 2: $(log_row 3 2)"

# D: 503 three times, the last try dead-lettered; also seen as the subscriber's dead letter.
check '[ "$(requests "$tmp/d")" = 3 ]' "D was asked $(requests "$tmp/d") times"
check 'log_row 4 3 | grep -q "\"attempt\":3,\"status\":503,.*\"outcome\":\"dead\""' "D's last log row: $(log_row 4 3)"
check '"$RAPPORT" events dead webhook:4 | grep -q "\"seq\":$seq,.*\"attempts\":3"' "events dead lacks D's letter"
check 'grep -q " error webhook webhook 4 dead-lettered event $seq (contact.created) after attempt 3: HTTP 503" "$tmp/serve.log"' "no dead-letter log line: $(grep webhook "$tmp/serve.log")"

# G: delivered with its credentials as Basic auth, though they are shown nowhere.
wait_for '[ "$(requests "$tmp/g")" -ge 1 ]' || bad "G got no request"
check '[ "$(hdr "$tmp/g/1.head" Authorization)" = "Basic $(printf %s hookuser:hookpass-0123 | base64)" ]' "G's request lacks its Basic auth: $(cat "$tmp/g/1.head" 2>/dev/null)"

# E: the hidden field is not in what bo's webhook receives.
check 'signed "$tmp/e" 1 "$secret_e"' "E's request is not signed with its generated secret"
check 'grep -qF "\"first_name\":[null,\"Ada\"]" "$tmp/e/1.body" && ! grep -q "email\"" "$tmp/e/1.body" && ! grep -qF "ada@example.com" "$tmp/e/1.body"' "E's body shows the hidden field: $(cat "$tmp/e/1.body")"

# F: cy may not see contacts: nothing sent, and the event is behind it.
wait_for '"$RAPPORT" webhooks list | grep -q "\"id\":6,.*\"checkpoint\":\([0-9]*\)" && [ "$("$RAPPORT" webhooks list | grep "\"id\":6," | grep -o "\"checkpoint\":[0-9]*" | cut -d: -f2)" -ge "$seq" ]' \
    || bad "F did not pass over the contact event: $("$RAPPORT" webhooks list)"
check '[ "$(requests "$tmp/f")" = 0 ]' "F was sent what its owner may not see: $(cat "$tmp/f/1.body" 2>/dev/null)"

# Pause E: a new contact reaches A (whose script now answers 200) but not E; resumed, E gets it.
expect 0 "paused" -- webhooks pause 5
"$RAPPORT" create contact '{"first_name": "Grace", "last_name": "Hopper"}' >/dev/null
wait_for '[ "$(requests "$tmp/a")" -ge 4 ]' || bad "A did not get the second contact"
check '[ "$(requests "$tmp/e")" = 1 ]' "a paused webhook delivered"
expect 0 "resumed" -- webhooks resume 5
wait_for '[ "$(requests "$tmp/e")" -ge 2 ]' || bad "the resumed webhook did not deliver what it missed"
check 'grep -qF "Grace" "$tmp/e/2.body"' "E's second body: $(cat "$tmp/e/2.body" 2>/dev/null)"

# Remove F: gone from the list, its log kept.
expect 0 "removed" -- webhooks remove 6
check '! "$RAPPORT" webhooks list | grep -q "\"id\":6,"' "a removed webhook is still listed"
check '[ "$("$RAPPORT" webhooks deliveries -n 2 | wc -l)" = 2 ]' "deliveries -n 2 printed another number of rows"

# Checked again at each connection. H is added while 127.0.0.1 is allowed; I names localhost
# and is let in at its adding by the environment's allow list, as a name that resolved outside
# then and inside now would be. With the allow list taken back, serve refuses to connect to
# either: their events go dead at once with the reason, and their receivers hear nothing.
receiver h "200"; url_h=$url
receiver i "200"; url_i="http://localhost:$(cat "$tmp/i/port")/hooks/i"
expect 0 "webhook 8 added" -- webhooks add "$url_h" --events contact.created --user ana
RAPPORT_WEBHOOKS_ALLOW_NETWORKS=localhost expect 0 "webhook 9 added" -- webhooks add "$url_i" --events contact.created --user ana
expect 0 'unset webhooks.allow_networks' -- config unset webhooks.allow_networks
wait_for 'grep -q "info webhook webhooks.allow_networks is now empty" "$tmp/serve.log"' || bad "serve did not take the allow list back: $(grep webhook "$tmp/serve.log")"
"$RAPPORT" create contact '{"first_name": "Hedy", "last_name": "Lamarr"}' >/dev/null
seq=$("$RAPPORT" events tail -n 1 | grep -o '"seq":[0-9]*' | cut -d: -f2)
refused='refused to connect to 127.0.0.1 (a loopback address): webhooks deliver there only when the setting webhooks.allow_networks allows it'
wait_for 'log_row 8 1 | grep -q "\"outcome\":\"dead\""' || bad "H's refused delivery is not dead: $(log_row 8 1)"
check 'log_row 8 1 | grep -qF "\"seq\":$seq," && log_row 8 1 | grep -qF "\"attempt\":1,\"status\":null,\"error\":\"$refused\""' "H's log: $(log_row 8 1)"
check '"$RAPPORT" webhooks dead 8 | grep -qF "\"error\":\"$refused\""' "H's dead letter: $("$RAPPORT" webhooks dead 8)"
wait_for 'log_row 9 1 | grep -q "\"outcome\":\"dead\""' || bad "I's refused delivery is not dead: $(log_row 9 1)"
check 'log_row 9 1 | grep -q "\"attempt\":1,\"status\":null,\"error\":\"refused to connect to \(127.0.0.1\|::1\) (a loopback address)"' "I's log: $(log_row 9 1)"
check 'grep -q " error webhook webhook 8 dead-lettered event $seq (contact.created) after attempt 1: refused to connect to 127.0.0.1" "$tmp/serve.log"' "no log line for H's refusal: $(grep webhook "$tmp/serve.log")"
sleep 0.5 # no retry comes
check '[ "$("$RAPPORT" webhooks deliveries 8 | wc -l)" = 1 ] && [ "$("$RAPPORT" webhooks deliveries 9 | wc -l)" = 1 ]' "a refused delivery was tried again"
check '[ "$(requests "$tmp/h")" = 0 ] && [ "$(requests "$tmp/i")" = 0 ]' "a refused receiver was reached: h=$(requests "$tmp/h") i=$(requests "$tmp/i")"
# G, added while allowed and still pointing inside, is refused the same way now.
wait_for '"$RAPPORT" webhooks deliveries 7 | grep -q "\"seq\":$seq,.*\"error\":\"$refused\".*\"outcome\":\"dead\""' || bad "G's delivery after the allow list went: $("$RAPPORT" webhooks deliveries 7)"

# No secret in the log; a clean stop.
check '! grep -qF "$secret_a" "$tmp/serve.log" && ! grep -qF "$secret_b" "$tmp/serve.log" && ! grep -qF path-secret "$tmp/serve.log" && ! grep -qF hookpass "$tmp/serve.log"' "the serve log shows a secret"
kill -TERM "$serve_pid"
wait "$serve_pid"; st=$?
serve_pid=
check '[ $st = 0 ]' "serve did not stop cleanly on SIGTERM (exit $st): $(tail -5 "$tmp/serve.log")"

finish
