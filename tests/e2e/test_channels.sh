#!/usr/bin/env bash
# End-to-end: the collaborative plugin's SMS, phone and social channels (channels.c, sms.c, sms_in.c, calls.c) against a
# local gateway written in Python below, which records every request and answers as Twilio or a
# JSON gateway would, as the test scripts it (ok, 503, 429, 400, an answer without an id, an
# answer that echoes the credentials). Checked: consent (do-not-contact, STOP, marketing to an
# unknown number) refuses and records the refusal; `sms send --now` sends at once, a temporary
# failure is retried by `rapport serve` with backoff and a permanent one is not; both request
# shapes and their credentials; receipts, inbound SMS with STOP/START, call events and reviews
# through signed public routes (unsigned, forged, stale and tampered requests refused, a channel
# without a secret refuses everything); the default rules (a missed call opens a call-back task,
# a low review a ticket) once each; and that the gateway password appears nowhere.
set -u
RAPPORT=${RAPPORT:-build/rapport}
PYTHON=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
gw_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
    [ -n "$gw_pid" ] && kill -9 "$gw_pid" 2>/dev/null
    [ -n "${KEEP:-}" ] && cp -r "$tmp" /tmp/channels_e2e
    rm -rf "$tmp"
}
trap cleanup EXIT
export RAPPORT_DB="$tmp/crm.db"
# The gateway is on loopback: no proxy from the environment may stand in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# wait_for CONDITION: up to 20 s (sanitizer builds are slow) for a shell expression to hold.
wait_for() { for _ in $(seq 400); do eval "$1" && return 0; sleep 0.05; done; return 1; }
# fld ENTITY ID FIELD: one field of a record ("nil" when it has none).
fld() { "$RAPPORT" eval "local r = crm.get('$1', $2); return r and r['$3']" 2>/dev/null; }
# gw_requests: how many requests the gateway has had.
gw_requests() { if [ -f "$tmp/gw/log" ]; then wc -l < "$tmp/gw/log"; else echo 0; fi; }
# answers WORD…: what the gateway answers next, in turn (then "ok").
answers() { printf '%s\n' "$@" >> "$tmp/gw/queue"; }

SECRET_SMS="sms-shared-secret-0123456789"
SECRET_PHONE="phone-shared-secret-0123456789"
SECRET_SOCIAL="social-shared-secret-0123456789"
PASSWORD="gw-Pa55word-do-not-show"

# signed PATH SECRET CONTENT-TYPE BODY [TIMESTAMP [SIGNED-BODY]]: POSTs BODY to a public route
# of the plugin, signed as the engine signs its webhooks (HMAC-SHA256 of "<ts>.<body>"), and
# sets $code and $body. SIGNED-BODY, when given, is what the signature covers instead.
signed() {
    local p=$1 secret=$2 ct=$3 b=$4 ts=${5:-$(date +%s)} sb=${6-$4}
    printf '%s' "$b" > "$tmp/req"
    local sig
    sig="sha256=$(printf '%s.%s' "$ts" "$sb" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)"
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Content-Type: $ct" \
        -H "X-Rapport-Timestamp: $ts" -H "X-Rapport-Signature: $sig" --data-binary @"$tmp/req" \
        "$U/api/v1/plugins/collaborative/$p")
    body=$(cat "$tmp/body")
}
# sid_of: the id the last answer gave.
id_of_answer() { sed -n 's/.*"id":\([0-9]*\).*/\1/p' <<<"$body"; }

# ---- the gateway ------------------------------------------------------------------------------
mkdir -p "$tmp/gw"
cat > "$tmp/gw.py" <<'EOF'
import base64, http.server, json, os, sys
d = sys.argv[1]

def next_answer():
    q = os.path.join(d, "queue")
    lines = open(q).read().split("\n") if os.path.exists(q) else []
    lines = [l for l in lines if l]
    if not lines:
        return "ok"
    with open(q, "w") as f:
        f.write("".join(l + "\n" for l in lines[1:]))
    return lines[0]

class Gateway(http.server.BaseHTTPRequestHandler):
    n = 0
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Gateway.n += 1
        k = Gateway.n
        with open(os.path.join(d, "%d.head" % k), "w") as f:
            f.write("POST %s\n" % self.path)
            for a, b in self.headers.items():
                f.write("%s: %s\n" % (a, b))
        with open(os.path.join(d, "%d.body" % k), "wb") as f:
            f.write(body)
        what = next_answer()
        twilio = "twilio" in self.path
        status, extra, doc = 200, {}, {}
        if what == "ok":
            status = 201 if twilio else 200
            doc = {"sid": "SM%d" % k, "status": "queued"} if twilio else {"message": {"id": "gw-%d" % k}}
        elif what == "noid":
            doc = {"status": "queued"}
        elif what == "429":
            status, extra, doc = 429, {"Retry-After": "1"}, {"message": "slow down"}
        elif what == "leak":
            auth = self.headers.get("Authorization", "")
            creds = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else auth
            status, doc = 401, {"message": "bad credentials " + creds}
        else:
            status = int(what)
            doc = {"code": 21211, "message": "The 'To' number is not a valid phone number."} \
                if status == 400 else {"message": "busy"}
        out = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        for a, b in extra.items():
            self.send_header(a, b)
        self.end_headers()
        self.wfile.write(out)
        with open(os.path.join(d, "log"), "a") as f:
            f.write("%d %s %s\n" % (k, self.path, what))

server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
server.serve_forever()
EOF
"$PYTHON" "$tmp/gw.py" "$tmp/gw" 2>>"$tmp/gw.log" &
gw_pid=$!
disown "$gw_pid" # killed at the end without a word from the shell
wait_for '[ -s "$tmp/gw/port" ]' || { bad "the gateway did not start: $(cat "$tmp/gw.log")"; finish; exit 1; }
GW="http://127.0.0.1:$(cat "$tmp/gw/port")"

# ---- a database with people to write to -------------------------------------------------------
"$RAPPORT" init >/dev/null
expect 0 "collaborative" -- plugins
"$RAPPORT" config set plugin.operational.default_country '"US"' >/dev/null
sms_conf() { # sms_conf SHAPE PATH [EXTRA-JSON]
    "$RAPPORT" config set plugin.collaborative.sms "{\"url\": \"$GW/$2\", \"shape\": \"$1\",
        \"user\": \"AC0001\", \"password\": \"$PASSWORD\", \"from\": \"+15550001111\",
        \"secret\": \"$SECRET_SMS\", \"retry_base_ms\": 300, \"timeout_ms\": 3000${3:+, $3}}" >/dev/null
}
new_contact() { "$RAPPORT" eval "return crm.create('contact', $1).id" 2>&1; }
ada=$(new_contact '{first_name = "Ada", last_name = "Lovelace", phone = "(415) 555-0100", social_handle = "@ada", email = "ada@example.com"}')
bob=$(new_contact '{first_name = "Bob", last_name = "Boole", mobile = "+1 415 555 0101", do_not_contact = true}')
cy=$(new_contact '{first_name = "Cy", last_name = "Cerf", phone = "415.555.0102", sms_opt_out = true}')
dee=$(new_contact '{first_name = "Dee", last_name = "Dijkstra", phone = "+14155550103"}')
check '[ "$(fld contact "$ada" phone)" = "+14155550100" ]' "the phone was not normalised: $(fld contact "$ada" phone)"

# ---- sending: refusals and errors before anything goes out ------------------------------------
expect 1 "SMS is not set up" -- sms send --to +14155550100 --body hi
sms_conf twilio twilio/2010-04-01/Accounts/AC0001/Messages.json
expect 2 "usage: rapport sms send" -- sms send --to +14155550100
expect 2 "usage: rapport sms send" -- sms frob --to +14155550100 --body hi
expect 1 'to: "call me" is not a phone number' -- sms send --to "call me" --body hi
expect 1 "body: the text to send is required" -- sms send --to +14155550100 --body "  "
expect 1 'purpose: "service" or "marketing"' -- sms send --to +14155550100 --body hi --purpose spam
expect 1 "related: \"entity:id\"" -- sms send --to +14155550100 --body hi --related nowhere
expect 1 "no contact with id 999" -- sms send --to +14155550100 --body hi --related contact:999
long=$(head -c 1601 /dev/zero | tr '\0' x)
expect 1 "body: at most 1600 characters" -- sms send --to +14155550100 --body "$long"
expect 1 "marked do not contact" -- sms send --to "(415) 555-0101" --body "hello Bob"
expect 1 "opted out of SMS" -- sms send --to 4155550102 --body "your order shipped"
expect 1 "marketing is sent only to a known contact's number" -- sms send --to +14155559999 --body "sale!" --purpose marketing
check '[ "$(gw_requests)" = 0 ]' "a refused SMS reached the gateway"
check '[ "$(count interaction --where "{\"status\": \"refused\"}")" = 3 ]' "refusals not recorded: $(count interaction --where '{"status": "refused"}')"
refused=$("$RAPPORT" eval 'return crm.find("interaction", {where = {status = "refused", contact = '"$cy"'}})[1].error' 2>&1)
check 'grep -qF "opted out of SMS" <<<"$refused"' "the refusal's reason is not stored: $refused"

# ---- sending at once (--now), Twilio's shape --------------------------------------------------
out=$("$RAPPORT" sms send --to "415-555-0100" --body "Your table is ready, Ada & co." --related "contact:$ada" --now 2>&1)
check 'grep -q "sent (gateway id SM1)" <<<"$out"' "sms send --now: $out"
sms1=$(sed -n 's/^sms \([0-9]*\) .*/\1/p' <<<"$out")
check '[ "$(fld interaction "$sms1" status)" = sent ] && [ "$(fld interaction "$sms1" external_id)" = SM1 ] && [ "$(fld interaction "$sms1" contact)" = "$ada" ] && [ "$(fld interaction "$sms1" to_addr)" = "+14155550100" ]' "the sent SMS: $("$RAPPORT" get interaction "$sms1" 2>&1)"
check '[ "$(fld interaction "$sms1" sent_at)" != nil ]' "no sent_at"
check 'grep -q "^POST /twilio/2010-04-01/Accounts/AC0001/Messages.json" "$tmp/gw/1.head"' "the request went elsewhere: $(head -1 "$tmp/gw/1.head")"
check '[ "$(cat "$tmp/gw/1.body")" = "To=%2B14155550100&From=%2B15550001111&Body=Your%20table%20is%20ready%2C%20Ada%20%26%20co." ]' "Twilio form: $(cat "$tmp/gw/1.body")"
basic="Basic $(printf 'AC0001:%s' "$PASSWORD" | base64 -w0)"
check 'grep -qF "Authorization: $basic" "$tmp/gw/1.head" && grep -qi "^Content-Type: application/x-www-form-urlencoded" "$tmp/gw/1.head"' "Twilio auth or type: $(cat "$tmp/gw/1.head")"

# A permanent refusal from the gateway: failed, with its words, not tried again.
answers 400
out=$("$RAPPORT" sms send --to +14155550103 --body "about your ticket" --now 2>&1); st=$?
check '[ $st = 1 ] && grep -qF "is failed:" <<<"$out" && grep -qF "HTTP 400: The '"'"'To'"'"' number is not a valid phone number." <<<"$out"' "a 400: $st $out"
sms_bad=$(sed -n 's/.*sms \([0-9]*\) is failed.*/\1/p' <<<"$out")

# A gateway that echoes the credentials: the stored error names no password.
answers leak
out=$("$RAPPORT" sms send --to +14155550103 --body "about your ticket" --now 2>&1)
check 'grep -qF "HTTP 401: bad credentials AC0001:[secret]" <<<"$out" && ! grep -qF "$PASSWORD" <<<"$out"' "the echoed password is not hidden: $out"

# A temporary failure: still queued, a retry waits as the message's one job.
answers 503
out=$("$RAPPORT" sms send --to +14155550103 --body "retry me" --now 2>&1)
sms_retry=$(sed -n 's/.*sms \([0-9]*\) is queued.*/\1/p' <<<"$out")
check '[ -n "$sms_retry" ] && grep -qF "attempt 1 of 5: $GW answered HTTP 503: busy; next in 1 s" <<<"$out"' "a 503: $out"
check '"$RAPPORT" jobs list 2>&1 | grep -qF "\"sms:$sms_retry\""' "no retry job: $("$RAPPORT" jobs list 2>&1)"

# Queued for serve (no --now), through Lua too: the job's key is the message's.
out=$("$RAPPORT" sms send --to +14155550103 --body "see you at 5" 2>&1)
sms_q=$(sed -n 's/^sms \([0-9]*\) queued.*/\1/p' <<<"$out")
check '[ -n "$sms_q" ] && "$RAPPORT" jobs list 2>&1 | grep -qF "\"sms:$sms_q\""' "queued: $out / $("$RAPPORT" jobs list 2>&1)"
out=$("$RAPPORT" eval "return crm.collaborative.send_sms{to = '+14155550100', body = 'from Lua', related = {'contact', $dee}}" 2>&1)
sms_lua=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' <<<"$out")
check 'grep -qF "\"status\":\"queued\"" <<<"$out" && [ "$(fld interaction "$sms_lua" contact)" = "$dee" ]' "send_sms from Lua: $out"
out=$("$RAPPORT" eval "return crm.collaborative.send_sms{to = '4155550102', body = 'x'}" 2>&1)
check 'grep -qF "opted out of SMS" <<<"$out"' "send_sms from Lua to an opted-out number: $out"
check '[ "$(gw_requests)" = 4 ]' "queued messages were sent before serve ran: $(gw_requests) requests"

# ---- serve: the jobs, then the public routes --------------------------------------------------
answers 429 ok ok ok
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log" 400)
[ -n "$port" ] || { bad "serve did not start: $(cat "$tmp/serve.log")"; finish; exit 1; }
U="http://127.0.0.1:$port"
wait_for '[ "$(fld interaction "$sms_retry" status)" = sent ] && [ "$(fld interaction "$sms_q" status)" = sent ] && [ "$(fld interaction "$sms_lua" status)" = sent ]' \
    || bad "serve did not send the queued messages: retry=$(fld interaction "$sms_retry" status) q=$(fld interaction "$sms_q" status) lua=$(fld interaction "$sms_lua" status) $(cat "$tmp/gw/log") $(grep -i sms "$tmp/serve.log")"
check '[ "$(gw_requests)" = 8 ]' "the gateway had $(gw_requests) requests, wanted 8 (one 429 retried once): $(cat "$tmp/gw/log")"
# Whichever met the 429 went out once more: 1 + 1 + 1 sends, one retry, and the 503's first.
attempts=0
for i in "$sms_retry" "$sms_q" "$sms_lua"; do attempts=$((attempts + $(fld interaction "$i" attempts))); done
check '[ "$attempts" = 5 ]' "attempts: $(for i in "$sms_retry" "$sms_q" "$sms_lua"; do fld interaction "$i" attempts; done | paste -sd' ')"
check '[ "$(fld interaction "$sms_bad" status)" = failed ] && [ "$(fld interaction "$sms_bad" attempts)" = 1 ]' "the 400 was retried"
check '! "$RAPPORT" jobs list 2>&1 | grep -qF "sms:"' "SMS jobs left: $("$RAPPORT" jobs list 2>&1)"

# The JSON shape: its body, a Bearer token, the id where id_field says.
sms_conf json json/v1/messages '"id_field": "message.id"'
out=$("$RAPPORT" sms send --to +14155550100 --body "json shape" 2>&1)
sms_json=$(sed -n 's/^sms \([0-9]*\) queued.*/\1/p' <<<"$out")
wait_for '[ "$(fld interaction "$sms_json" status)" = sent ]' || bad "the JSON send: $(fld interaction "$sms_json" error)"
n=$(gw_requests)
check '[ "$(fld interaction "$sms_json" external_id)" = "gw-$n" ]' "JSON id: $(fld interaction "$sms_json" external_id)"
check '[ "$(cat "$tmp/gw/$n.body")" = "{\"to\":\"+14155550100\",\"from\":\"+15550001111\",\"text\":\"json shape\",\"reference\":\"$sms_json\"}" ]' "JSON body: $(cat "$tmp/gw/$n.body")"
check 'grep -qF "Authorization: Bearer $PASSWORD" "$tmp/gw/$n.head" && grep -qi "^Content-Type: application/json" "$tmp/gw/$n.head"' "JSON auth: $(cat "$tmp/gw/$n.head")"
# An answer without the id: sent, and the error says receipts cannot be matched.
answers noid
out=$("$RAPPORT" sms send --to +14155550100 --body "no id" --now 2>&1)
check 'grep -qF "sent (gateway id none)" <<<"$out"' "an answer without an id: $out"
sms_conf twilio twilio/Messages.json

# ---- signatures -------------------------------------------------------------------------------
R="$U/api/v1/plugins/collaborative"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data '{"id": "x", "status": "delivered"}' "$R/sms/status"); body=$(cat "$tmp/body")
is 401 "not signed" "an unsigned receipt"
signed sms/status "wrong-secret-0123456789" application/json '{"id": "SM1", "status": "delivered"}'
is 401 "does not match" "a receipt signed with another secret"
signed sms/status "$SECRET_SMS" application/json '{"id": "SM1", "status": "delivered"}' "$(( $(date +%s) - 400 ))"
is 401 "more than 5 minutes" "a stale receipt"
signed sms/status "$SECRET_SMS" application/json '{"id": "SM1", "status": "delivered"}' "" '{"id": "SM1", "status": "failed"}'
is 401 "does not match" "a tampered receipt"
signed sms/status "$SECRET_SMS" application/json '{"id": "SM1", "status": "delivered"}' "12ab"
is 401 "Unix seconds" "a timestamp that is not a number"
signed phone/call "$SECRET_PHONE" application/json '{"id": "c1", "from": "+14155550100", "to": "+15550001111", "direction": "in"}'
is 403 "plugin.collaborative.phone.secret is not set" "a call before the phone secret is set"
check '[ "$(fld interaction "$sms1" status)" = sent ]' "a refused receipt changed the message"
check '[ "$(count interaction --where "{\"channel\": \"phone\"}")" = 0 ]' "a refused call was stored"

# ---- receipts ---------------------------------------------------------------------------------
signed sms/status "$SECRET_SMS" application/x-www-form-urlencoded "MessageSid=SM1&MessageStatus=delivered&AccountSid=AC0001"
is 200 '"status":"delivered"' "a Twilio receipt"
check '[ "$(fld interaction "$sms1" status)" = delivered ]' "the receipt did not land"
signed sms/status "$SECRET_SMS" application/x-www-form-urlencoded "MessageSid=SM1&MessageStatus=sent"
is 200 '"status":"delivered"' "a late 'sent' after 'delivered'"
signed sms/status "$SECRET_SMS" application/json "{\"id\": \"gw-$n\", \"status\": \"undelivered\", \"error\": \"handset off\"}"
is 200 '"status":"failed"' "a JSON receipt"
check 'grep -qF "handset off" <<<"$(fld interaction "$sms_json" error)"' "the carrier's reason: $(fld interaction "$sms_json" error)"
signed sms/status "$SECRET_SMS" application/json '{"id": "nope", "status": "delivered"}'
is 404 'no SMS was sent with the gateway' "a receipt for an unknown id"
signed sms/status "$SECRET_SMS" application/x-www-form-urlencoded "MessageSid=SM1&MessageStatus=exploded"
is 422 'MessageStatus: \"exploded\" is not a status' "a receipt with an unknown status"
signed sms/status "$SECRET_SMS" application/x-www-form-urlencoded "MessageStatus=delivered"
is 422 'MessageSid: required' "a receipt without an id"
signed sms/status "$SECRET_SMS" application/x-www-form-urlencoded "MessageSid=SM1&MessageSid=SM2&MessageStatus=sent"
is 422 'MessageSid: given twice' "a form field given twice"
signed sms/status "$SECRET_SMS" application/x-www-form-urlencoded "MessageSid=SM%0&MessageStatus=sent"
is 422 'bad %-escape' "a broken escape"
signed sms/status "$SECRET_SMS" application/json '{"id": "SM1", "id": "SM2", "status": "sent"}'
is 422 'not a JSON object' "duplicate JSON keys"

# ---- inbound SMS ------------------------------------------------------------------------------
signed sms/inbound "$SECRET_SMS" application/x-www-form-urlencoded "From=%2B14155550100&To=%2B15550001111&Body=Running+late%2C+sorry&MessageSid=SMin1"
is 201 "\"contact\":$ada" "an inbound SMS"
in1=$(id_of_answer)
check '[ "$(fld interaction "$in1" direction)" = in ] && [ "$(fld interaction "$in1" status)" = received ] && [ "$(fld interaction "$in1" body)" = "Running late, sorry" ]' "the inbound SMS: $("$RAPPORT" get interaction "$in1" 2>&1)"
signed sms/inbound "$SECRET_SMS" application/x-www-form-urlencoded "From=%2B14155550100&To=%2B15550001111&Body=Running+late%2C+sorry&MessageSid=SMin1"
is 200 '"duplicate":true' "the same SMS again"
check '[ "$(count interaction --where "{\"external_id\": \"SMin1\"}")" = 1 ]' "a repeated SMS was stored twice"
signed sms/inbound "$SECRET_SMS" application/json '{"from": "+1 415 555 0100", "text": "  Stop \n", "id": "in-2"}'
is 201 "" "STOP"
check '[ "$(fld contact "$ada" sms_opt_out)" = true ] && [ "$(fld contact "$ada" sms_opt_out_at)" != nil ]' "STOP did not opt Ada out"
wait_for '"$RAPPORT" events tail -n 30 2>/dev/null | grep -q "contact.sms_opted_out"' || bad "no contact.sms_opted_out event: $("$RAPPORT" events tail -n 10 2>&1)"
expect 1 "opted out of SMS" -- sms send --to +14155550100 --body "service message after STOP"
signed sms/inbound "$SECRET_SMS" application/json '{"from": "+14155550100", "text": "unstop", "id": "in-3"}'
is 201 "" "UNSTOP"
check '[ "$(fld contact "$ada" sms_opt_out)" = false ]' "UNSTOP did not opt Ada back in"
# A number no contact has: stored without one; its STOP still holds for later sends.
signed sms/inbound "$SECRET_SMS" application/json '{"from": "+14155557777", "to": "+15550001111", "text": "QUIT", "id": "in-4"}'
is 201 "" "STOP from an unknown number"
check '! grep -q contact <<<"$body"' "an unknown number was matched: $body"
expect 1 "+14155557777 opted out of SMS (it sent STOP)" -- sms send --to 4155557777 --body "hello?"
signed sms/inbound "$SECRET_SMS" application/json '{"to": "+15550001111", "text": "hi", "id": "in-5"}'
is 422 "from: required" "an inbound SMS without its sender"
signed sms/inbound "$SECRET_SMS" application/json '{"from": "+14155550100", "text": "hi"}'
is 422 "id: required" "an inbound SMS without its id"
signed sms/inbound "$SECRET_SMS" application/json '["from"]'
is 422 "not a JSON object" "an inbound SMS that is not an object"
signed sms/inbound "$SECRET_SMS" application/x-www-form-urlencoded "From=%2B14155550100&Body=a%00b&MessageSid=x"
is 422 "NUL" "an encoded NUL"
# create_lead: an unknown number that writes in becomes a lead.
sms_conf twilio twilio/Messages.json '"create_lead": true'
signed sms/inbound "$SECRET_SMS" application/json '{"from": "+14155558888", "text": "Do you deliver?", "id": "in-6"}'
is 201 "" "an SMS from a stranger with create_lead"
check '[ "$(count lead --where "{\"phone\": \"+14155558888\"}")" = 1 ]' "no lead for the stranger"

# ---- phone ------------------------------------------------------------------------------------
"$RAPPORT" config set plugin.collaborative.phone "{\"secret\": \"$SECRET_PHONE\"}" >/dev/null
"$RAPPORT" config set plugin.collaborative.social "{\"secret\": \"$SECRET_SOCIAL\"}" >/dev/null
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-1", "from": "(415) 555-0103", "to": "+15550001111", "direction": "in", "status": "missed"}'
is 201 "\"contact\":$dee" "a missed call"
call1=$(id_of_answer)
check '[ "$(fld interaction "$call1" status)" = missed ] && [ "$(fld interaction "$call1" channel)" = phone ] && [ "$(fld interaction "$call1" from_addr)" = "+14155550103" ]' "the missed call: $("$RAPPORT" get interaction "$call1" 2>&1)"
wait_for '[ "$(count activity --where "{\"subject\": \"Call back Dee Dijkstra\"}")" = 1 ]' || bad "no call-back task: $(grep -i lua "$tmp/serve.log" | tail -3)"
due=$("$RAPPORT" eval "return crm.find('activity', {where = {subject = 'Call back Dee Dijkstra'}})[1].due_at" 2>&1)
made=$("$RAPPORT" eval "return crm.find('activity', {where = {subject = 'Call back Dee Dijkstra'}})[1].created_at" 2>&1)
hours=$("$RAPPORT" eval "return (crm.time_ms('$due') - crm.time_ms('$made') + 1800000) // 3600000" 2>&1)
check '[ "$hours" = 4 ]' "the call-back is due $hours hours later ($made → $due)"
related=$("$RAPPORT" eval "local a = crm.find('activity', {where = {subject = 'Call back Dee Dijkstra'}})[1]; return a.related_entity .. ':' .. a.related_id .. ':' .. a.kind" 2>&1)
check '[ "$related" = "contact:$dee:task" ]' "the task is on $related"
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-1", "from": "(415) 555-0103", "to": "+15550001111", "direction": "in", "status": "missed"}'
is 200 '"duplicate":true' "the same call again"
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-2", "from": "+14155550103", "to": "+15550001111", "direction": "in", "status": "voicemail", "recording": "https://pbx.example.com/r/2.mp3"}'
is 201 "" "a voicemail"
sleep 1
check '[ "$(count activity --where "{\"subject\": \"Call back Dee Dijkstra\"}")" = 1 ]' "a second missed call opened a second call-back task"
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-3", "from": "+15550001111", "to": "4155550100", "direction": "out", "duration": 200}'
is 201 "\"contact\":$ada" "a call out, matched by its callee"
call3=$(id_of_answer)
check '[ "$(fld interaction "$call3" status)" = logged ] && [ "$(fld interaction "$call3" duration)" = 200 ] && [ "$(fld interaction "$call3" subject)" = "Outgoing call (3 min 20 s)" ]' "the call out: $("$RAPPORT" get interaction "$call3" 2>&1)"
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-4", "from": "+14155550100", "to": "+15550001111", "direction": "sideways"}'
is 422 'direction: \"in\" or \"out\"' "a call with a bad direction"
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-4", "from": "+14155550100", "to": "+15550001111", "direction": "in", "duration": -3}'
is 422 "duration: whole seconds" "a negative duration"
signed phone/call "$SECRET_PHONE" application/json '{"id": "call-4", "from": "+14155550100", "to": "+15550001111", "direction": "in", "recording": "file:///etc/passwd"}'
is 422 "recording: an http:// or https:// URL" "a recording that is not a web address"
signed phone/call "$SECRET_PHONE" application/x-www-form-urlencoded "id=call-5"
is 422 "takes a JSON object, not a form" "a call as a form"
signed phone/call "$SECRET_SMS" application/json '{"id": "call-6", "from": "+14155550100", "to": "+15550001111", "direction": "in"}'
is 401 "does not match" "a call signed with the SMS secret"

# ---- social -----------------------------------------------------------------------------------
signed social/post "$SECRET_SOCIAL" application/json '{"id": "r-1", "platform": "trustpilot", "handle": "@ada", "text": "Cold soup, rude waiter.", "rating": 1, "kind": "review", "link": "https://trustpilot.example/r/1"}'
is 201 "\"contact\":$ada" "a review by handle"
rev=$(id_of_answer)
check '[ "$(fld interaction "$rev" rating)" = 1 ] && [ "$(fld interaction "$rev" handle)" = "@ada" ] && [ "$(fld interaction "$rev" subject)" = "Review on trustpilot (1/5)" ]' "the review: $("$RAPPORT" get interaction "$rev" 2>&1)"
wait_for '[ "$(count ticket --where "{\"subject\": \"Low rating (1/5) on trustpilot\"}")" = 1 ]' || bad "no ticket for the low rating: $(grep -i lua "$tmp/serve.log" | tail -3)"
t=$("$RAPPORT" eval "local t = crm.find('ticket', {where = {subject = 'Low rating (1/5) on trustpilot'}})[1]; return t.priority .. '|' .. t.contact .. '|' .. t.description" 2>&1)
check '[ "$t" = "high|$ada|Cold soup, rude waiter." ]' "the ticket: $t"
signed social/post "$SECRET_SOCIAL" application/json '{"id": "r-1", "platform": "trustpilot", "handle": "@ada", "text": "Cold soup, rude waiter.", "rating": 1, "kind": "review"}'
is 200 '"duplicate":true' "the same review again"
signed social/post "$SECRET_SOCIAL" application/json '{"id": "r-1", "platform": "google", "email": "ADA@example.com", "text": "Lovely!", "rating": 5, "kind": "review"}'
is 201 "\"contact\":$ada" "the same id on another platform, by email"
signed social/post "$SECRET_SOCIAL" application/json '{"id": "p-1", "platform": "x", "handle": "@someone", "text": "anyone tried it?"}'
is 201 "" "a post by a stranger"
check '! grep -q contact <<<"$body"' "a stranger's post was matched: $body"
signed social/post "$SECRET_SOCIAL" application/json '{"id": "r-2", "platform": "google", "rating": 7, "kind": "review"}'
is 422 "rating: a whole number from 1 to 5" "a rating of 7"
signed social/post "$SECRET_SOCIAL" application/json '{"id": "c-1", "platform": "x", "text": "meh", "rating": 2, "kind": "comment"}'
is 422 "rating: only a review has one" "a comment with a rating"
signed social/post "$SECRET_SOCIAL" application/json '{"id": "c-1", "platform": "x", "text": "meh", "kind": "story"}'
is 422 'kind: \"post\", \"review\" or \"comment\"' "an unknown kind"
signed social/post "$SECRET_SOCIAL" application/json '{"platform": "x", "text": "meh"}'
is 422 "id: required" "a post without an id"
sleep 1
check '[ "$(count ticket --where "{\"subject\": {\"starts_with\": \"Low rating\"}}")" = 1 ]' "tickets for low ratings: $(count ticket --where '{"subject": {"starts_with": "Low rating"}}')"

# ---- the end: no secret anywhere, serve stops cleanly -----------------------------------------
kill -TERM "$serve_pid"
wait "$serve_pid"; st=$?
serve_pid=
check '[ $st = 0 ]' "serve did not stop cleanly (exit $st): $(tail -5 "$tmp/serve.log")"
check '! grep -qF "$PASSWORD" "$tmp/serve.log"' "the serve log shows the gateway password"
check '! "$RAPPORT" find interaction 2>/dev/null | grep -qF "$PASSWORD"' "an interaction holds the gateway password"
check '! grep -qF "$SECRET_SMS" "$tmp/serve.log" && ! grep -qF "$SECRET_PHONE" "$tmp/serve.log"' "the serve log shows a secret"
finish
