#!/usr/bin/env bash
# End-to-end: the portal attacked from outside, with curl against `rapport serve` and real
# portal sessions (signed in by the mailed link, caught by aiosmtpd). Each part is a hole once
# found and closed:
#  - wrong passwords sent all at once are each counted when they arrive, not when their slow
#    check ends, so a burst gets no more tries than the limit;
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
smtp_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "$smtp_pid" ] && kill $smtp_pid 2>/dev/null; [ -n "${KEEP:-}" ] && cat "$tmp"/serve*.log > "$KEEP"; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"


mail_init
ids=$("$RAPPORT" eval '
local a = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local b = crm.create("contact", {first_name = "Babak", last_name = "Other", email = "babak@example.org"})
crm.portal.grant(a.id)
crm.portal.grant(b.id)
local ta = crm.create("ticket", {subject = "kettle", contact = a.id})
local tb = crm.create("ticket", {subject = "toaster", contact = b.id})
local ob = crm.create("order", {contact = b.id})
return table.concat({a.id, b.id, ta.id, tb.id, ob.id}, " ")')
read -r A B TA TB OB <<<"$ids"
check '[ -n "${TA:-}" ]' "the seed failed: $ids"

smtp_start
portal_serve

csa=$(portal_sign_in "$tmp/a" sara@example.org)
csb=$(portal_sign_in "$tmp/b" babak@example.org)
check '[ ${#csa} = 64 ] && [ ${#csb} = 64 ]' "the customers did not sign in: [$csa] [$csb]"
XA=(-H "X-CSRF-Token: $csa")
XB=(-H "X-CSRF-Token: $csb")

# ---- a ticket's status ----------------------------------------------------------------------
field() { "$RAPPORT" eval "return tostring(crm.get('ticket', $1).$2)"; }
c "$tmp/a" PATCH /api/v1/ticket/$TA '{"status": "open"}' "${XA[@]}"
is 403 'ticket.status is read-only for role portal' "Sara sets her ticket open"
c "$tmp/a" PATCH /api/v1/ticket/$TA '{"status": "resolved"}' "${XA[@]}"
is 403 'read-only' "Sara sets her ticket resolved"
check '[ "$(field $TA status)" = new ] && [ "$(field $TA first_response_at)" = nil ]' "a refused status was stored: $(field $TA status) $(field $TA first_response_at)"
before=$(count ticket)
c "$tmp/a" POST /api/v1/ticket '{"subject": "answered already", "status": "open"}' "${XA[@]}"
is 403 'read-only' "Sara opens a ticket as open"
check '[ "$(count ticket)" = "$before" ]' "a refused ticket was stored"
c "$tmp/a" POST /api/v1/ticket '{"subject": "plain"}' "${XA[@]}"
is 201 '"status":"new"' "Sara opens a ticket"
c "$tmp/b" POST $P/tickets/$TA/close '{}' "${XB[@]}"
is 404 "no ticket $TA" "Babak closes Sara's ticket"
c "$tmp/a" POST $P/tickets/$TA/close '{}'
is 403 'X-CSRF-Token' "a close without the CSRF token"
check '[ "$(field $TA status)" = new ]' "Sara's ticket was closed by another"
c "$tmp/a" POST $P/tickets/$TA/close '{}' "${XA[@]}"
is 200 '"status":"closed"' "Sara closes her ticket"
c "$tmp/a" POST $P/tickets/$TA/close '{}' "${XA[@]}"
is 200 '"status":"closed"' "Sara closes her ticket again"
check '[ "$(field $TA status)" = closed ] && [ "$(field $TA resolved_at)" != nil ]' "the ticket is not closed: $(field $TA status)"
expect 0 '"ticket":'"$TA" -- events tail -n 20
c "$tmp/a" POST $P/tickets/x/close '{}' "${XA[@]}"
is 404 'tickets/<id>/close' "a close of no id"

# ---- another's record, a missing record --------------------------------------------------------
for p in "ticket/$TB" "order/$OB" "contact/$B" "contact/$B/subject" "ticket/$TB/timeline" "ticket/$TB/explain/subject"; do
    c "$tmp/a" GET "/api/v1/$p"
    theirs="$code $(sed "s/ $TB\b\| $OB\b\| $B\b/ N/g" <<<"$body")"
    missing=$(sed -E "s#^([a-z]+)/[0-9]+#\1/99999#" <<<"$p")
    c "$tmp/a" GET "/api/v1/$missing"
    none="$code $(sed "s/ 99999\b/ N/g" <<<"$body")"
    check '[ "$theirs" = "$none" ]' "GET $p as Sara differs from a missing record: [$theirs] [$none]"
done
c "$tmp/a" GET /api/v1/ticket/$TB
is 404 "no ticket with id $TB" "Babak's ticket as Sara"
c "$tmp/a" PATCH /api/v1/ticket/$TB '{"subject": "mine now"}' "${XA[@]}"
is 404 "no ticket with id $TB" "Sara changes Babak's ticket"
c "$tmp/a" PATCH /api/v1/ticket/99999 '{"subject": "mine now"}' "${XA[@]}"
is 404 "no ticket with id 99999" "Sara changes a missing ticket"
expect 0 '"subject": "toaster"' -- get ticket "$TB"
c "$tmp/a" GET /api/v1/deal
is 403 'may not read deal' "an entity the portal does not read is still refused as such"

# ---- the bounce state ------------------------------------------------------------------------
"$RAPPORT" update contact "$A" '{"email_bouncing": true, "email_bounced_at": "2026-01-01T00:00:00Z"}' >/dev/null
c "$tmp/a" PATCH /api/v1/contact/$A '{"email_bouncing": false}' "${XA[@]}"
is 403 'contact.email_bouncing is read-only for role portal' "Sara clears her bounce"
c "$tmp/a" PATCH /api/v1/contact/$A '{"email_bounced_at": null}' "${XA[@]}"
is 403 'contact.email_bounced_at is read-only' "Sara clears her bounce's date"
expect 0 '"email_bouncing": true' -- get contact "$A"
c "$tmp/a" GET /api/v1/contact/$A
is 200 '"email_bouncing":true' "Sara still reads her bounce state"
"$RAPPORT" update contact "$A" '{"email_bouncing": false, "email_bounced_at": null}' >/dev/null
"$RAPPORT" update contact "$B" '{"social_handle": "@babak"}' >/dev/null
c "$tmp/a" PATCH /api/v1/contact/$A '{"social_handle": "@babak"}' "${XA[@]}"
is 403 'contact.social_handle is read-only for role portal' "Sara takes Babak's handle"
expect 0 'nil' -- eval "return tostring(crm.get('contact', $A).social_handle)"

# ---- the analytical plugin's fields ----------------------------------------------------------
if "$RAPPORT" plugins 2>/dev/null | grep -q analytical; then
    for f in '"external_id": "B-2"' '"rfm_segment": "champions"' '"clv_predicted": "99999.00"' \
             '"churn_risk": true' '"acquisition_cost": "0.00"' '"analyzed_at": null'; do
        c "$tmp/a" PATCH /api/v1/contact/$A "{$f}" "${XA[@]}"
        is 403 'is read-only for role portal' "Sara writes {$f}"
    done
    check '[ "$("$RAPPORT" eval "return tostring(crm.get('"'"'contact'"'"', $A).rfm_segment)")" = nil ]' "Sara's segment was stored"
    c "$tmp/a" GET /api/v1/contact/$A
    is 200 '"rfm_segment":null' "Sara reads her contact"
else
    echo "skip: the analytical plugin is not built"
fi

# ---- a shared number ----------------------------------------------------------------------------
SECRET_SMS="sms-shared-secret-0123456789"
SECRET_PHONE="phone-shared-secret-0123456789"
"$RAPPORT" config set plugin.operational.default_country '"US"' >/dev/null
"$RAPPORT" config set plugin.collaborative.sms "{\"secret\": \"$SECRET_SMS\"}" >/dev/null
"$RAPPORT" config set plugin.collaborative.phone "{\"secret\": \"$SECRET_PHONE\"}" >/dev/null
signed() { # PATH SECRET BODY: POSTs BODY to the collaborative plugin's public route, signed
    local ts sig
    ts=$(date +%s)
    sig="sha256=$(printf '%s.%s' "$ts" "$3" | openssl dgst -sha256 -hmac "$2" -r | cut -d' ' -f1)"
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Content-Type: application/json" \
        -H "X-Rapport-Timestamp: $ts" -H "X-Rapport-Signature: $sig" --data-binary "$3" \
        "$U/api/v1/plugins/collaborative/$1")
    body=$(cat "$tmp/body")
}
"$RAPPORT" update contact "$B" '{"mobile": "+14155550199"}' >/dev/null
c "$tmp/a" PATCH /api/v1/contact/$A '{"mobile": "+1 415 555 0199"}' "${XA[@]}"
is 200 '"mobile":"+14155550199"' "Sara gives Babak's number as hers"
signed sms/inbound "$SECRET_SMS" '{"from": "+14155550199", "text": "my card ends 4242", "id": "in-4242"}'
is 201 '' "Babak's SMS"
signed phone/call "$SECRET_PHONE" '{"id": "call-77", "from": "+14155550199", "to": "+15550001111", "direction": "in", "status": "voicemail", "recording": "https://rec.example/77.mp3"}'
is 201 '' "Babak's call"
c "$tmp/a" GET "/api/v1/interaction?limit=100"
check '! grep -q "4242\|rec.example" <<<"$body"' "Sara reads Babak's SMS or call: $body"
out=$("$RAPPORT" eval "local t = {} for _, i in ipairs(crm.find('interaction', {where = {external_id = {['in'] = {'in-4242', 'call-77'}}}})) do t[#t + 1] = i.visibility .. ':' .. #crm.find('interaction_link', {where = {interaction = i.id, target = {['in'] = {'contact:$A', 'contact:$B'}}}}) end table.sort(t) return table.concat(t, ' ')")
check '[ "$out" = "internal:2 internal:2" ]' "the shared number's SMS and call: wanted internal and linked to both [internal:2 internal:2], got [$out]"
signed sms/inbound "$SECRET_SMS" '{"from": "+14155550100", "text": "only mine", "id": "in-own"}'
expect 0 'public' -- eval "return crm.find('interaction', {where = {external_id = 'in-own'}})[1].visibility"
"$RAPPORT" update contact "$A" '{"mobile": null}' >/dev/null

# ---- another site's form --------------------------------------------------------------------
tb0=$(token_for babak@example.org)
c "$tmp/e" POST $P/login/link '{"email": "babak@example.org"}'
for _ in $(seq 200); do tb=$(token_for babak@example.org); [ -n "$tb" ] && [ "$tb" != "${tb0:-}" ] && break; sleep 0.05; done
rm -f "$tmp/e"
code=$(curl -s -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' -c "$tmp/e" -H 'Content-Type: text/plain' \
       -H 'Origin: https://evil.example' --data-binary "{\"token\": \"$tb\"}" "$U$P/login/token")
body=$(cat "$tmp/body")
is 403 'Origin' "another site's form signs its visitor in with a link token"
check '! grep -qi "set-cookie" "$tmp/head"' "another site's sign-in set a cookie: $(cat "$tmp/head")"
c "$tmp/e" POST $P/login/token "{\"token\": \"$tb\"}" -H "Origin: $U"
is 200 '"principal":"contact:'"$B"'"' "the owner signs in with the token the other site tried"
"$RAPPORT" create article '{"title": "Reset", "slug": "reset", "body": "x", "published": true}' >/dev/null
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: text/plain' -H 'Origin: null' \
       --data-binary '{"yes": true}' "$U$P/articles/reset/helpful")
body=$(cat "$tmp/body")
is 403 'Origin' "a sandboxed frame votes"
expect 0 '"helpful_yes": 0' -- get article "$("$RAPPORT" eval "return crm.find('article', {where = {slug = 'reset'}})[1].id")"

# ---- a burst of wrong passwords --------------------------------------------------------------
# Sara has a password; 30 wrong ones at once for her address: the limit (5) holds for the burst
# as it does one at a time, and then even the right one is refused.
c "$tmp/a" POST $P/password '{"password": "correct horse battery"}' "${XA[@]}"
is 202 'accepted' "Sara sets a password"
sleep 1
out=$(python3 - "$port" <<'PY'
import sys, json, threading, http.client
codes = []
def go(i):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
    c.request("POST", "/api/v1/plugins/portal/login/password",
              json.dumps({"email": "sara@example.org", "password": "wrong guess %d" % i}),
              {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); codes.append(r.status)
ts = [threading.Thread(target=go, args=(i,)) for i in range(30)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(1 for x in codes if x == 202), sum(1 for x in codes if x == 429))
PY
)
check '[ "$out" = "5 25" ]' "30 wrong passwords at once: wanted 5 checked and 25 refused, got [checked refused] [$out]"
c "$tmp/x" POST $P/login/password '{"email": "sara@example.org", "password": "correct horse battery"}'
is 429 'too many' "the right password after the burst"

# ---- the password checks filled up -----------------------------------------------------------
# 8 clients × 4 addresses × 5 wrong passwords = 160 checks, each within every limit; then Babak
# signs in with his password from another client.
c "$tmp/b" POST $P/password '{"password": "babak has a long one"}' "${XB[@]}"
is 202 'accepted' "Babak sets a password"
sleep 1
out=$(python3 - "$port" <<'PY'
import sys, json, threading, http.client
codes = []
def go(client, n):
    for a in range(4):
        for i in range(5):
            c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60,
                                           source_address=("127.0.0.%d" % client, 0))
            c.request("POST", "/api/v1/plugins/portal/login/password",
                      json.dumps({"email": "x%d-%d@example.org" % (client, a), "password": "guess %d" % i}),
                      {"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); codes.append(r.status)
ts = [threading.Thread(target=go, args=(k, 20)) for k in range(2, 10)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(1 for x in codes if x == 202))
PY
)
check '[ "$out" -ge 120 ]' "the flood was refused early: $out accepted"
flood=$out
# Right behind the flood, its checks still queued (each ≈ 150 ms of argon2id, two at a time:
# ≈ 9 s for 120 on a quiet machine), Babak's turn comes after about one check per flooding
# client, not after the flood: checks take turns by client. A 503 (every slot busy) is tried
# again as the portal's page does.
out=$(python3 - "$port" <<'PY'
import sys, json, time, http.client
def post(path, body):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30,
                                   source_address=("127.0.0.20", 0))
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); return r.status, json.loads(r.read() or b"{}")
t0 = time.monotonic()
for _ in range(50):
    st, b = post("/api/v1/plugins/portal/login/password", {"email": "babak@example.org", "password": "babak has a long one"})
    if st != 503:
        break
    time.sleep(0.2)
if st != 202:
    print(st, b); sys.exit()
for _ in range(100):
    st, r = post("/api/v1/plugins/portal/login/finish", {"ticket": b["ticket"]})
    if st != 202:
        break
    time.sleep(0.05)
print(st, r.get("principal"), "%.1f" % (time.monotonic() - t0))
PY
)
check '[ "${out% *}" = "200 contact:$B" ]' "Babak's password behind the flood: wanted [200 contact:$B], got [$out]"
check 'awk -v s="${out##* }" "BEGIN { exit !(s < 5) }"' "Babak did not wait for the flood: ${out##* } s"
echo "MEASURE Babak signed in ${out##* } s after a flood of $flood checks was queued"

# ---- the limiter's table flooded --------------------------------------------------------------
# Babak's address reaches its limit (5 wrong passwords from 127.0.0.30); then 40 link requests
# from 127.0.0.31 and .32 for addresses whose keys land where his does (FNV-1a, 1024 slots).
out=$(python3 - "$port" <<'PY'
import sys, json, time, http.client
def post(src, path, body):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30,
                                   source_address=(src, 0))
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); return r.status, json.loads(r.read() or b"{}")
def fnv(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h
home = fnv("password-address:babak@example.org") % 1024
crafted, n = [], 0
while len(crafted) < 40:
    a = "z%d@example.org" % n
    n += 1
    if fnv("link-address:" + a) % 1024 == home:
        crafted.append(a)
def password(src, body):
    for _ in range(100):  # 503 while the flood above still holds every slot
        st, b = post(src, "/api/v1/plugins/portal/login/password", body)
        if st != 503:
            return st, b
        time.sleep(0.2)
    return st, b
codes = []
for i in range(5):
    st, b = password("127.0.0.30", {"email": "babak@example.org", "password": "wrong %d" % i})
    codes.append(st)
    for _ in range(100):
        st, r = post("127.0.0.30", "/api/v1/plugins/portal/login/finish", {"ticket": b["ticket"]})
        if st != 202: break
        time.sleep(0.05)
st, b = password("127.0.0.30", {"email": "babak@example.org", "password": "wrong again"})
limited = st
for i, a in enumerate(crafted):
    post("127.0.0.31" if i < 20 else "127.0.0.32", "/api/v1/plugins/portal/login/link", {"email": a})
st, b = password("127.0.0.33", {"email": "babak@example.org", "password": "babak has a long one"})
print(codes.count(202), limited, st)
PY
)
check '[ "$out" = "5 429 429" ]' "after the flood of the limiter's table: wanted [5 checked, 429 at the limit, 429 after], got [$out]"

finish
