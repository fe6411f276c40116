#!/usr/bin/env bash
# End-to-end: a customer's account pages, driven with curl with real portal sessions (signed in
# by the mailed link, caught by aiosmtpd). Sara edits her details through PATCH
# /api/v1/contact/ID with If-Match (saved, origin portal); a bad phone is refused naming the
# field and stores nothing; her email, consent flags and portal access are read-only there.
# Consent through /api/v1/plugins/portal/consent: email and SMS off and on, a public list
# joined and left (time, source "portal", one event each), a private list refused as unknown.
# Bob cannot touch Sara's contact, memberships or data by any id; staff with a limited role
# cannot use the customer's routes. "Download my data" (GET /api/v1/contact/ID/subject) gives
# her own records only, as an attachment. "Forget me" opens one task and one event however
# often it is asked. The privacy policy comes from the setting, per language, sanitised.
set -u
RAPPORT=${RAPPORT:-build/rapport}
KEEPDB=${KEEPDB:-}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
smtp_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "$smtp_pid" ] && kill $smtp_pid 2>/dev/null; [ -n "$KEEPDB" ] && cp "$tmp/crm.db" "$KEEPDB"; [ -n "${KEEP:-}" ] && cp "$tmp/serve.log" "$KEEP"; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"


mail_init
ids=$("$RAPPORT" eval '
local a = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org", phone = "+49 30 1234567"})
local b = crm.create("contact", {first_name = "Bob", last_name = "Other", email = "bob@example.org"})
local oa = crm.create("order", {contact = a.id})
local ob = crm.create("order", {contact = b.id})
crm.create("order_line", {order = ob.id, description = "bobs secret tea", unit_price = "2.00"})
local pub = crm.create("mailing_list", {name = "Newsletter", public = true})
local priv = crm.create("mailing_list", {name = "VIP private"})
local mb = crm.create("list_member", {list = pub.id, contact = b.id, source = "import"})
return table.concat({a.id, b.id, oa.id, ob.id, pub.id, priv.id, mb.id}, " ")')
read -r A B OA OB PUB PRIV MB <<<"$ids"
check '[ -n "${MB:-}" ]' "the seed failed: $ids"
"$RAPPORT" portal grant "$A" >/dev/null
"$RAPPORT" portal grant "$B" >/dev/null
expect 0 '"public": false' -- get mailing_list "$PRIV"
"$RAPPORT" roles set clerk '{"entities": {"contact": {"read": "all"}}}' >/dev/null 2>&1
"$RAPPORT" users add kim --role clerk --password-stdin <<<"kim staff password" >/dev/null
"$RAPPORT" roles set shipper '{"entities": {"order": {"read": "all"}}}' >/dev/null 2>&1
"$RAPPORT" users add sam --role shipper --password-stdin <<<"sam staff password" >/dev/null

smtp_start
portal_serve

etag() { grep -i '^etag:' <<<"$head" | cut -d' ' -f2; }
sara=$tmp/sara bob=$tmp/bob
portal_sign_in "$sara" sara@example.org > "$tmp/csrf" && mv "$tmp/csrf" "$sara".csrf
portal_sign_in "$bob" bob@example.org > "$tmp/csrf" && mv "$tmp/csrf" "$bob".csrf

# ---- details: edited through the JSON API, validated, origin portal ----------------------------
c "$sara" GET /api/v1/contact/"$A"
is 200 '"first_name":"Sara"' "Sara reads her contact"
v=$(etag)
check '[ -n "$v" ]' "no ETag on her contact: $head"
c "$sara" PATCH /api/v1/contact/"$A" '{"first_name": "Sarah", "city": "Berlin", "mobile": "+49 170 5550000", "language": "fa"}' -H "If-Match: $v"
is 200 '"city":"Berlin"' "Sara edits her details"
expect 0 '"first_name": "Sarah"' -- get contact "$A"
expect 0 '"language": "fa"' -- get contact "$A"
ev=$("$RAPPORT" eval "for _, e in ipairs(crm.events({entity = 'contact', limit = 1000})) do if e.record_id == $A and e.changes.city then return e.origin .. ' ' .. e.actor end end" 2>&1)
check '[ "${ev%% *}" = portal ]' "the update's event does not say origin portal: $ev"
c "$sara" PATCH /api/v1/contact/"$A" '{"city": "Hamburg"}' -H "If-Match: $v"
is 412 '' "a stale If-Match"
c "$sara" GET /api/v1/contact/"$A"
v=$(etag)
c "$sara" PATCH /api/v1/contact/"$A" '{"city": "Hamburg", "phone": "call me maybe"}' -H "If-Match: $v"
is 422 'phone' "a bad phone is refused"
check 'grep -q "\"detail\":\"contact.phone: " <<<"$body"' "the refusal does not name the field phone: $body"
c "$sara" PATCH /api/v1/contact/"$A" '{"language": "<script>"}' -H "If-Match: $v"
is 422 'language' "a language that is no tag"
expect 0 '"city": "Berlin"' -- get contact "$A"
for f in '"email": "evil@example.org"' '"email_opt_out": true' '"sms_opt_out": true' '"portal_access": false' '"sms_opt_out_at": null' '"account": 1' '"do_not_contact": false'; do
    c "$sara" PATCH /api/v1/contact/"$A" "{$f}" -H "If-Match: $v"
    check '[ "$code" = 403 ] || [ "$code" = 422 ]' "a read-only field ($f) was not refused: $code $body"
done
expect 0 '"email": "sara@example.org"' -- get contact "$A"
# A field added while the server runs is not the customer's to write (the role's writable list).
"$RAPPORT" add-field contact shoe_size '{"type": "integer"}' >/dev/null
c "$sara" PATCH /api/v1/contact/"$A" '{"shoe_size": 40}' -H "If-Match: $v"
is 403 'contact.shoe_size is read-only for role portal' "a field added later written by the customer"
c "$sara" GET /api/v1/schema?entity=contact
check 'python3 -c "import json,sys; f=json.loads(sys.argv[1])[\"data\"][\"contact\"][\"fields\"]; sys.exit(not (f[\"shoe_size\"][\"read_only\"] and not f[\"city\"][\"read_only\"]))" "$body"' \
    "the schema does not mark shoe_size read-only (city writable) for the customer: ${body:0:300}"
c "$bob" PATCH /api/v1/contact/"$A" '{"city": "Nowhere"}'
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "Bob edits Sara: $code $body"
expect 0 '"city": "Berlin"' -- get contact "$A"

# ---- consent -----------------------------------------------------------------------------------
c "$sara" GET $P/consent
is 200 '"email_opt_out":false' "Sara's consent"
check 'grep -q "\"name\":\"Newsletter\"" <<<"$body" && ! grep -q "VIP" <<<"$body"' "only public lists are offered: $body"
c "$sara" POST $P/consent '{"email_opt_out": true, "sms_opt_out": true}'
is 200 '"email_opt_out":true' "opting out of email and SMS"
expect 0 '"sms_opt_out": true' -- get contact "$A"
expect 0 '"email_opt_out": true' -- get contact "$A"
check '[ "$("$RAPPORT" eval "return #crm.events({type = \"portal.consent_changed\"})" 2>&1)" = 2 ]' "not two consent events: $("$RAPPORT" eval "return crm.events({type = \"portal.consent_changed\"})" 2>&1)"
c "$sara" POST $P/consent '{"email_opt_out": true}'
is 200 '' "the same again"
check '[ "$("$RAPPORT" eval "return #crm.events({type = \"portal.consent_changed\"})")" = 2 ]' "an unchanged consent made an event"
c "$sara" POST $P/consent '{"email_opt_out": false, "sms_opt_out": false}'
is 200 '"sms_opt_out":false' "opting in again"
expect 0 '"sms_opt_out_at": null' -- get contact "$A"
c "$sara" POST $P/consent "{\"lists\": [{\"list\": $PUB, \"subscribed\": true}]}"
is 200 '"subscribed":true' "joining the public list"
m=$("$RAPPORT" find list_member --where "{\"contact\": $A}" 2>&1)
check 'grep -q "\"source\":\"portal\"" <<<"$m" && grep -q "\"opted_in_at\":\"20" <<<"$m"' "the membership lacks its source or time: $m"
c "$sara" POST $P/consent "{\"lists\": [{\"list\": $PUB, \"subscribed\": false}]}"
is 200 '"opt_out_source":"portal"' "leaving the list"
m=$("$RAPPORT" find list_member --where "{\"contact\": $A}" 2>&1)
check 'grep -q "\"opt_out_source\":\"portal\"" <<<"$m" && grep -q "\"opted_out_at\":\"20" <<<"$m"' "the opt-out lacks its source or time: $m"
c "$sara" POST $P/consent "{\"lists\": [{\"list\": $PUB, \"subscribed\": true}]}"
is 200 '"subscribed":true' "back on the list with a new opt-in"
n=$("$RAPPORT" eval "return #crm.events({type = \"portal.consent_changed\"})")
check '[ "$n" = 7 ]' "not seven consent events after seven changes: $n"
ev=$("$RAPPORT" eval "local e = crm.events({type = \"portal.consent_changed\"}) return e[#e].changes" 2>&1)
check 'grep -q "portal" <<<"$ev"' "the consent event lacks its source: $ev"
before=$(count list_member)
c "$sara" POST $P/consent "{\"lists\": [{\"list\": $PRIV, \"subscribed\": true}]}"
is 422 "lists[0].list" "a private list is refused"
c "$sara" POST $P/consent "{\"email_opt_out\": true, \"lists\": [{\"list\": 9999, \"subscribed\": true}]}"
is 422 "lists[0].list" "an unknown list is refused"
expect 0 '"email_opt_out": false' -- get contact "$A"
c "$sara" POST $P/consent '{"email_opt_out": "yes"}'
is 422 'email_opt_out' "a consent that is not a boolean"
c "$sara" POST $P/consent '{"contact": 2, "email_opt_out": true}'
is 422 'contact' "a body naming another contact"
c "$sara" POST $P/consent "{\"lists\": [{\"list\": $PUB, \"subscribed\": true, \"contact\": $B}]}"
is 422 'lists[0]' "a list change naming a contact"
check '[ "$(count list_member)" = "$before" ]' "a refused change stored a membership"
c "$sara" POST /api/v1/list_member "{\"list\": $PRIV, \"contact\": $A, \"source\": \"x\"}"
check '[ "$code" = 403 ]' "the role writes list_member directly: $code $body"
c "$sara" PATCH /api/v1/list_member/"$MB" '{"opted_out_at": "2026-01-01T00:00:00Z", "opt_out_source": "x"}'
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "Sara touches Bob's membership: $code $body"
c "$sara" GET $P/consent/"$B"
is 404 'no such path' "consent takes no id"
c "$bob" GET $P/consent
check 'grep -q "\"source\":\"import\"" <<<"$body" && ! grep -q "portal" <<<"$body"' "Bob's consent is not his own: $body"
expect 0 '"opt_out_source": null' -- get list_member "$MB"
c "$tmp/x" GET $P/consent
is 401 '' "consent without a session"
kt=$(token_of kim)
tok=$kt req GET $P/consent
is 403 'customer' "staff have no consent of their own"

# ---- download my data --------------------------------------------------------------------------
c "$sara" GET /api/v1/contact/"$A"/subject
is 200 '"entity":"contact"' "Sara downloads her data"
check 'grep -qi "^content-disposition: attachment; filename=\"contact-$A.json\"" <<<"$head"' "no attachment header: $head"
check 'grep -qi "^content-type: application/json" <<<"$head"' "not JSON: $head"
check 'grep -qi "^cache-control: no-store" <<<"$head"' "the download may be kept by a cache: $head"
check 'grep -q "Berlin" <<<"$body" && grep -q "\"id\":$OA" <<<"$body"' "her details or order are missing: ${body:0:400}"
check '! grep -q "bob\|Bob\|secret tea" <<<"$body"' "Bob's data in Sara's download"
check 'grep -q "\"list_member\":\[" <<<"$body" && grep -q "list_member.updated" <<<"$body"' "her memberships are not in her download: ${body:0:600}"
check '! grep -q "\"owner\"" <<<"$body"' "a field hidden from her role in the download"
c "$sara" GET /api/v1/contact/"$B"/subject
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "Sara downloads Bob's data: $code ${body:0:200}"
check '! grep -q "bob@" <<<"$body"' "Bob's address in a refusal"
c "$sara" GET /api/v1/order/"$OB"/subject
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "Sara downloads Bob's order: $code ${body:0:200}"
c "$sara" POST /api/v1/contact/"$A"/subject
is 405 '' "subject is read only"
tok=$(token_of sam) req GET /api/v1/contact/"$A"/subject
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "a staff role without contacts downloads Sara's data: $code ${body:0:200}"
tok=$kt req GET /api/v1/contact/"$A"/subject
is 200 'Berlin' "staff who read contacts export her data (an access request by mail)"

# ---- forget me ---------------------------------------------------------------------------------
c "$sara" POST $P/forget
is 202 '"status":"requested"' "Sara asks to be forgotten"
task=$(grep -o '"task":[0-9]*' <<<"$body" | cut -d: -f2)
c "$sara" POST $P/forget
is 200 "\"task\":$task" "a second request answers the open task"
n=$("$RAPPORT" count activity --where "{\"related_id\": $A, \"kind\": \"task\"}")
check '[ "$n" = 1 ]' "not one task: $n"
expect 0 "rapport erase contact $A" -- get activity "$task"
n=$("$RAPPORT" eval "return #crm.events({type = \"portal.forget_requested\"})")
check '[ "$n" = 1 ]' "not one forget event: $n"
c "$bob" POST $P/forget
is 202 '' "Bob asks too"
n=$("$RAPPORT" count activity --where '{"kind": "task"}')
check '[ "$n" = 2 ]' "Bob's request is not his own task: $n"
"$RAPPORT" update activity "$task" '{"done": true}' >/dev/null
c "$sara" POST $P/forget
is 202 '' "once the task is done, a new request opens a new one"
tok=$kt req POST $P/forget
is 403 '' "staff cannot ask to forget"

# ---- the privacy policy ------------------------------------------------------------------------
c "$tmp/anon" GET $P/privacy
is 200 '"html":null' "no policy set"
"$RAPPORT" config set plugin.portal.privacy_policy '"# Privacy\n\nWe keep **little**.<script>alert(1)</script> [x](javascript:alert(2))"' >/dev/null
c "$tmp/anon" GET $P/privacy
is 200 '<strong>little</strong>' "the policy from the setting, rendered"
check '! grep -qi "<script\|javascript:" <<<"$body"' "the policy is not sanitised: $body"
"$RAPPORT" config set plugin.portal.privacy_policy '{"en": "English policy", "fa": "سیاست حریم خصوصی"}' >/dev/null
c "$tmp/anon" GET "$P/privacy?lang=fa"
is 200 '"language":"fa"' "the Persian policy"
check 'grep -q "سیاست" <<<"$body"' "the Persian text: $body"
c "$tmp/anon" GET "$P/privacy?lang=de"
is 200 'English policy' "a language without a policy gets the English one"

# A stopping server ends cleanly (under the sanitizers, its leaks are reported here).
kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null
check '! grep -q "Sanitizer\|runtime error" "$tmp/serve.log"' "the server's log: $(grep -A20 "Sanitizer\|runtime error" "$tmp/serve.log" | head -40)"
serve_pid=

finish
