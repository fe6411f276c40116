#!/usr/bin/env bash
# End-to-end: a customer signing in to the portal, driven with curl against `rapport serve` and
# a real SMTP server (aiosmtpd). A link asked for an unknown address, for a contact without
# access and for one with access answers the same 202, and only the last mails a link; the link
# signs in once (the cookie's flags, GET /api/v1/auth/me says contact:N), and expires; the
# session reads that contact's orders and tickets only; writes need the CSRF token; a password
# set, then signed in with; wrong passwords limited (429); `rapport sessions revoke-record` and
# `portal revoke` end sessions; staff passwords never sign in here, a portal cookie never acts
# as staff; the portal's events hold no token nor password.
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
"$RAPPORT" users add ana --role admin --password-stdin <<<"ana staff password" >/dev/null
ids=$("$RAPPORT" eval '
local a = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local b = crm.create("contact", {first_name = "Bob", last_name = "Other", email = "bob@example.org"})
local n = crm.create("contact", {first_name = "Nima", last_name = "NoAccess", email = "nima@example.org", language = "fa"})
local oa = crm.create("order", {contact = a.id})
local ob = crm.create("order", {contact = b.id})
local ta = crm.create("ticket", {subject = "mine", contact = a.id})
local tb = crm.create("ticket", {subject = "theirs", contact = b.id})
local lb = crm.create("order_line", {order = ob.id, description = "their tea", unit_price = "2.00"})
local ib = crm.create("invoice", {order = ob.id})
return table.concat({a.id, b.id, n.id, oa.id, ob.id, ta.id, tb.id, lb.id, ib.id}, " ")')
read -r A B N OA OB TA TB LB IB <<<"$ids"
check '[ -n "${TB:-}" ]' "the seed failed: $ids"
# The portal's acknowledgement of a ticket (scripts/portal_ack.lua) is test_portal_thread's: off
# here, where every mail counted is a link.
"$RAPPORT" config set plugin.portal.acknowledge false >/dev/null
expect 0 "contact $A: portal access granted" -- portal grant "$A"
expect 0 "true" -- eval "return crm.portal.grant($B)"
expect 2 'usage: rapport portal grant CONTACT_ID' -- portal grant nobody
expect 1 'no contact with id 999' -- portal grant 999
expect 0 '"portal_access": false' -- get contact "$N"

smtp_start

RAPPORT_HTTP_SESSION_MAX_S=600 portal_serve

csrf_of() { grep -o '"csrf":"[0-9a-f]*"' <<<"$1" | cut -d'"' -f4; }

# ---- a link: the same answer for every address, a mail only for access --------------------
c "$tmp/x" POST $P/login/link '{"email": "nobody@example.org"}'
unknown="$code $body"
c "$tmp/x" POST $P/login/link '{"email": "nima@example.org"}'
noaccess="$code $body"
c "$tmp/x" POST $P/login/link '{"email": "Sara@Example.org"}'
known="$code $body"
check '[ "$unknown" = "$known" ] && [ "$noaccess" = "$known" ]' "the answers differ: [$unknown] [$noaccess] [$known]"
check 'grep -q "^202 " <<<"$known"' "a link request is not 202: $known"
check 'wait_mail 1' "no mail reached the SMTP server"
sleep 0.5
check '[ "$(delivered)" = 1 ]' "not exactly one mail (unknown and no-access addresses get none): $(delivered)"
mail=$(newest_mail)
check 'grep -qi "^To: sara@example.org" "$mail"' "the mail is not to Sara: $(head -20 "$mail")"
tok1=$(token_in "$mail")
check '[ ${#tok1} = 43 ]' "no token in the mail: $(cat "$mail")"
c "$tmp/x" POST $P/login/link '{"email": "not an address"}'
is 422 'email' "a malformed address"

# ---- the link signs in once ------------------------------------------------------------------
c "$tmp/sara" POST $P/login/token "{\"token\": \"$tok1\"}"
is 200 "\"principal\":\"contact:$A\"" "signing in with the link"
csrf=$(csrf_of "$body")
check '[ ${#csrf} = 64 ]' "no CSRF token in the sign-in's answer: $body"
cookie=$(grep -i '^set-cookie: rp_session=rps_' <<<"$head")
for flag in HttpOnly SameSite=Strict 'Path=/' 'Max-Age=600'; do
    check 'grep -qF "; $flag" <<<"$cookie"' "the cookie lacks $flag: $cookie"
done
c "$tmp/other" POST $P/login/token "{\"token\": \"$tok1\"}"
is 401 'does not hold' "the link a second time"
check '! grep -qi "set-cookie: rp_session=rps_" <<<"$head"' "a used link set a cookie"
c "$tmp/sara" GET /api/v1/auth/me
is 200 "\"principal\":\"contact:$A\"" "me with the portal cookie"
check 'grep -qF "\"role\":\"portal\"" <<<"$body" && grep -qF "\"kind\":\"record\"" <<<"$body"' "me is not a record with role portal: $body"
check '! grep -qF "\"user\"" <<<"$body"' "a portal session says it is a user: $body"
c "$tmp/sara" GET $P/me
is 200 '"first_name":"Sara"' "the portal's me"

# ---- the session sees this contact's orders and tickets only ----------------------------------
c "$tmp/sara" GET /api/v1/order
got=$(grep -o '"id":[0-9]*,"created_at"' <<<"$body" | cut -d: -f2 | cut -d, -f1 | tr '\n' ' ')
check '[ "$code" = 200 ] && [ "$got" = "$OA " ]' "orders seen: wanted $OA only, got [$got] ($code): $body"
c "$tmp/sara" GET /api/v1/ticket
got=$(grep -o '"id":[0-9]*,"created_at"' <<<"$body" | cut -d: -f2 | cut -d, -f1 | tr '\n' ' ')
check '[ "$code" = 200 ] && [ "$got" = "$TA " ]' "tickets seen: wanted $TA only, got [$got] ($code): $body"
c "$tmp/sara" GET /api/v1/order/$OB
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "another's order by id: $code $body"
c "$tmp/sara" GET /api/v1/ticket/$TB
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "another's ticket by id: $code $body"
c "$tmp/sara" GET /api/v1/contact/$B
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "another contact by id: $code $body"
# What the portal's pages ask for, with another customer's ids: an invoice, an order's lines.
c "$tmp/sara" GET /api/v1/invoice/$IB
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "another's invoice by id: $code $body"
c "$tmp/sara" GET /api/v1/order_line/$LB
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "another's order line by id: $code $body"
c "$tmp/sara" GET "/api/v1/order_line?where=%7B%22order%22%3A$OB%7D"
is 200 '"data":[]' "another's order's lines by filter"
c "$tmp/sara" GET "/api/v1/invoice?where=%7B%22order%22%3A$OB%7D"
is 200 '"data":[]' "another's order's invoices by filter"
c "$tmp/sara" GET /api/v1/deal
is 403 '' "an entity the portal role does not read"
# Writes need the CSRF token; with it, the role decides.
c "$tmp/sara" POST /api/v1/ticket "{\"subject\": \"help\", \"contact\": $A}"
is 403 'X-CSRF-Token' "a write without the CSRF token"
c "$tmp/sara" POST /api/v1/ticket "{\"subject\": \"help\", \"contact\": $A}" -H "X-CSRF-Token: $csrf"
is 201 "\"created_by\":\"record:contact:$A\"" "a ticket opened with the CSRF token"
# Its event says where it came from: the session's role, so rules can tell the portal's.
NEWT=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
expect 0 'portal' -- eval "return crm.history('ticket', $NEWT)[1].origin"
# Closing a ticket (the portal's button): its own, yes; another's, not even by id.
c "$tmp/sara" PATCH /api/v1/ticket/$TB '{"status": "closed"}' -H "X-CSRF-Token: $csrf"
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "closing another's ticket: $code $body"
expect 0 '"status": "new"' -- get ticket "$TB"
c "$tmp/sara" POST $P/tickets/$TA/close '{}' -H "X-CSRF-Token: $csrf"
is 200 '"status":"closed"' "closing one's own ticket"
c "$tmp/sara" PATCH /api/v1/ticket/$TA '{"first_response_due": "2030-01-01T00:00:00Z"}' -H "X-CSRF-Token: $csrf"
check '[ "$code" != 200 ]' "the customer moved the promised response time: $code $body"
c "$tmp/sara" PATCH /api/v1/contact/$A '{"portal_access": false}' -H "X-CSRF-Token: $csrf"
check '[ "$code" != 200 ]' "the customer switched their own access: $code $body"
# A portal cookie never acts as staff: no user, no staff routes.
c "$tmp/sara" GET /api/v1/user
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "a portal cookie reached the users: $code $body"

# ---- a password, then signing in with it -----------------------------------------------------
c "$tmp/sara" POST $P/password '{"password": "short"}' -H "X-CSRF-Token: $csrf"
is 422 'at least 10 characters' "a short password"
c "$tmp/sara" POST $P/password '{"password": "sara portal password"}'
is 403 'X-CSRF-Token' "a password without the CSRF token"
c "$tmp/sara" POST $P/password '{"password": "sara portal password"}' -H "X-CSRF-Token: $csrf"
is 202 'accepted' "setting a password"
csrf=$(csrf_of "$body") # the session was opened again (see below)
for _ in $(seq 100); do "$RAPPORT" events tail -n 20 2>/dev/null | grep -q portal.password_changed && break; sleep 0.05; done
# password_login JAR EMAIL PASSWORD: the ticket's round trip; sets $code and $body of the end.
password_login() {
    c "$1" POST $P/login/password "{\"email\": \"$2\", \"password\": \"$3\"}"
    [ "$code" = 202 ] || return 0
    local t; t=$(grep -o '"ticket":"[^"]*"' <<<"$body" | cut -d'"' -f4)
    for _ in $(seq 100); do
        c "$1" POST $P/login/finish "{\"ticket\": \"$t\"}"
        [ "$code" = 202 ] || return 0
        sleep 0.05
    done
}
password_login "$tmp/sara2" sara@example.org "sara portal password"
is 200 "\"principal\":\"contact:$A\"" "signing in with the password"
c "$tmp/sara2" GET /api/v1/auth/me
is 200 "\"principal\":\"contact:$A\"" "the password's session"
# A new password ends the customer's other sessions (one opened with the old password, or a
# link someone else followed); the session that set it goes on under a new cookie and token.
cp "$tmp/sara" "$tmp/sara-before"
c "$tmp/sara" POST $P/password '{"password": "sara second password"}' -H "X-CSRF-Token: $csrf"
is 202 'accepted' "changing the password"
old_csrf=$csrf
csrf=$(csrf_of "$body")
check '[ ${#csrf} = 64 ] && [ "$csrf" != "$old_csrf" ]' "the answer gives the session's new CSRF token: $body"
# A request the page sent with the old cookie while the change was on its way is refused, and
# its answer leaves the cookie alone: removing it could land after the new one and sign the
# browser out (what the portal's browser test once met).
c "$tmp/sara-before" GET /api/v1/auth/me
is 401 'ended' "the old cookie after the password changed"
check '! grep -qi "^set-cookie: rp_session" <<<"$head"' "a refused old cookie's answer sets a cookie: $head"
c "$tmp/sara2" GET /api/v1/auth/me
is 401 '' "the other session after the password changed"
c "$tmp/sara" GET /api/v1/auth/me
is 200 "\"principal\":\"contact:$A\"" "the session that changed it goes on"
c "$tmp/sara" POST /api/v1/ticket "{\"subject\": \"after\", \"contact\": $A}" -H "X-CSRF-Token: $csrf"
is 201 '' "a write with the new CSRF token"
for _ in $(seq 100); do
    [ "$("$RAPPORT" events tail -n 50 2>/dev/null | grep -c portal.password_changed)" -ge 2 ] && break
    sleep 0.05
done
password_login "$tmp/sara2" sara@example.org "sara portal password"
is 401 'wrong' "the old password after the change"
password_login "$tmp/sara2" sara@example.org "sara second password"
is 200 "\"principal\":\"contact:$A\"" "the new password"
# A staff user's password never signs in here, nor a portal password at the staff sign-in.
password_login "$tmp/y" ana "ana staff password"
is 422 'email' "a staff user name at the portal"
password_login "$tmp/y" ana@example.org "ana staff password"
is 401 'wrong' "a staff password at the portal"
c "$tmp/y" POST /api/v1/auth/session '{"user": "sara@example.org", "password": "sara portal password"}'
check '[ "$code" != 201 ]' "a portal password signed in as staff: $code $body"
# Wrong passwords are limited per address (5 by default): then 429, even with the right one.
for i in 1 2 3 4 5; do password_login "$tmp/y" sara@example.org "wrong password $i"; done
is 401 'wrong' "a wrong password"
password_login "$tmp/y" sara@example.org "sara portal password"
is 429 'too many' "the address after five wrong passwords"

# ---- revoked: by the command line, by taking access away -------------------------------------
check '"$RAPPORT" sessions list | grep -q "\"principal\": *\"contact:$A\""' "sessions list shows no record session: $("$RAPPORT" sessions list 2>&1)"
expect 0 "2 sessions of record contact:$A revoked" -- sessions revoke-record "contact:$A"
c "$tmp/sara" GET /api/v1/order
is 401 'ended' "a revoked session"
c "$tmp/sara2" GET /api/v1/order
is 401 'ended' "the second revoked session"
expect 2 'ENTITY:ID' -- sessions revoke-record nobody
# Signing out.
c "$tmp/x" POST $P/login/link '{"email": "bob@example.org"}'
check 'wait_mail 2' "no second mail"
tokb=$(token_in "$(newest_mail)")
c "$tmp/bob" POST $P/login/token "{\"token\": \"$tokb\"}"
is 200 "\"principal\":\"contact:$B\"" "Bob signs in"
csrfb=$(csrf_of "$body")
c "$tmp/bob" POST $P/logout ''
is 403 'X-CSRF-Token' "signing out without the CSRF token"
c "$tmp/bob" POST $P/logout '' -H "X-CSRF-Token: $csrfb"
check '[ "$code" = 204 ] && grep -qi "set-cookie: rp_session=; .*Max-Age=0" <<<"$head"' "signing out: $code $head"
c "$tmp/bob" GET /api/v1/auth/me
is 401 '' "after signing out"
# A link that was not used in time does not hold; nor one whose access was taken away.
"$RAPPORT" config set plugin.portal.link_ttl '"1s"' >/dev/null
c "$tmp/x" POST $P/login/link '{"email": "bob@example.org"}'
check 'wait_mail 3' "no third mail"
tokb=$(token_in "$(newest_mail)")
check 'grep -q "for 1 minutes" "$(newest_mail)"' "the mail does not say how long the link lasts"
sleep 1.2
c "$tmp/bob" POST $P/login/token "{\"token\": \"$tokb\"}"
is 401 'does not hold' "an expired link"
"$RAPPORT" config unset plugin.portal.link_ttl >/dev/null
c "$tmp/x" POST $P/login/link '{"email": "bob@example.org"}'
check 'wait_mail 4' "no fourth mail"
tokb=$(token_in "$(newest_mail)")
c "$tmp/bob" POST $P/login/token "{\"token\": \"$tokb\"}"
is 200 "\"principal\":\"contact:$B\"" "Bob signs in again"
c "$tmp/x" POST $P/login/link '{"email": "bob@example.org"}'
check 'wait_mail 5' "no fifth mail"
tokb=$(token_in "$(newest_mail)")
expect 0 "contact $B: portal access revoked" -- portal revoke "$B"
c "$tmp/bob" GET /api/v1/order
is 401 'ended' "a session after access was taken away"
c "$tmp/bob2" POST $P/login/token "{\"token\": \"$tokb\"}"
is 401 'does not hold' "a link after access was taken away"
c "$tmp/x" POST $P/login/link '{"email": "bob@example.org"}'
sleep 0.5
check '[ "$(delivered)" = 5 ]' "a link was mailed after access was taken away: $(delivered)"
# Five link requests for an address in the window (plugin.portal.link_requests): then 429.
c "$tmp/x" POST $P/login/link '{"email": "bob@example.org"}'
is 429 'too many' "a sixth link request for the address"
c "$tmp/x" POST $P/login/link '{"email": "Nobody.Else@example.org"}'
is 202 'accepted' "another address from the same client"

# ---- the look: GET brand, public; a logo or colour the page could not use is left out ------
c "$tmp/x" GET $P/brand
is 200 '{"name":null,"logo":null,"color":null,"messages":null}' "the look unset"
"$RAPPORT" config set plugin.portal.brand_name '"Acme <Tea>"' >/dev/null
"$RAPPORT" config set plugin.portal.brand_color '"#0a7f5c"' >/dev/null
"$RAPPORT" config set plugin.portal.brand_logo '"/portal/logo.svg"' >/dev/null
"$RAPPORT" config set plugin.portal.messages '{"fa": {"tab.help": "پرسش‌ها"}}' >/dev/null
c "$tmp/x" GET $P/brand
is 200 '{"name":"Acme <Tea>","logo":"/portal/logo.svg","color":"#0a7f5c","messages":{"fa":{"tab.help":"پرسش‌ها"}}}' "the look set"
"$RAPPORT" config set plugin.portal.brand_color '"red; background: url(x)"' >/dev/null
"$RAPPORT" config set plugin.portal.brand_logo '"javascript:alert(1)"' >/dev/null
"$RAPPORT" config set plugin.portal.messages '{"fa": {"tab.help": 7}}' >/dev/null
c "$tmp/x" GET $P/brand
is 200 '"logo":null,"color":null,"messages":null' "an unusable colour, logo and catalogue"
check 'grep -q "plugin.portal.brand_color: .* is not #rgb" "$tmp/serve.log"' "no warning for the colour"
check 'grep -q "plugin.portal.messages.fa.tab.help: not a text" "$tmp/serve.log"' "no warning for the catalogue"
c "$tmp/x" GET /portal/i18n/fa.json
is 200 '"tab.orders"' "the Persian catalogue is served"

# ---- erased: the password's hash goes with the person ----------------------------------------
secrets() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM rp_plugin_secrets WHERE plugin = ? AND name = ?", ("portal", sys.argv[2])).fetchone()[0])' "$RAPPORT_DB" "$1"; }
check '[ "$(secrets "password:contact:$A")" = 1 ]' "Sara's password hash is not kept where expected"
expect 0 '' -- erase contact "$A" --reason "asked"
check '[ "$(secrets "password:contact:$A")" = 0 ]' "erasing the contact left the password's hash"

# ---- the log: the portal's events, never a token or a password -------------------------------
events=$("$RAPPORT" events tail -n 400 2>&1)
for t in portal.link_sent portal.signed_in portal.signed_out portal.password_changed; do
    check 'grep -q "$t" <<<"$events"' "no $t event"
done
check '! grep -qF "sara portal password" <<<"$events"' "a password is in the event log"
check '! grep -qF -- "$tok1" <<<"$(grep "\"portal\." <<<"$events")"' "a token is in the portal's events"
check '! grep -q "argon2" <<<"$events"' "a password's hash is in the event log"
check '! grep -qF "sara portal password" "$RAPPORT_DB"' "the password is stored as it was typed"
c "$tmp/x" GET /api/v1/contact/$A -H "Authorization: Bearer $(token_of ana)"
check '! grep -q "argon2\|password" <<<"$body"' "the password's hash is readable through the API: $body"

# ---- the link's mail: the customer's text, but the token nowhere in the store or the log --------
mail1=$(ls -tr "$tmp/mbox/new"/* | head -1)
check 'grep -q "Sign in to the customer portal with this link" "$mail1"' "the mail's text changed: $(cat "$mail1")"
check '! grep -q "not kept" "$mail1"' "the customer got the note instead of the link: $(cat "$mail1")"
toks=()
for f in "$tmp/mbox/new"/*; do t=$(token_in "$f"); [ -n "$t" ] && toks+=("$t"); done
check '[ ${#toks[@]} = 5 ]' "not five tokens in the five mails: ${toks[*]}"
links=$("$RAPPORT" eval 'local r = crm.find("interaction", {where = {channel = "email", subject = "Your sign-in link to the customer portal"}, limit = 50})
local ids = {} for _, i in ipairs(r.data or r) do ids[#ids + 1] = i.id end return table.concat(ids, " ")')
read -r -a links <<<"$links"
check '[ ${#links[@]} -ge 3 ]' "the link mails are not interactions: ${links[*]}"
for i in "${links[@]}"; do
    got=$("$RAPPORT" get interaction "$i" 2>&1)
    check 'grep -qF "[a one-time sign-in link, not kept]" <<<"$got" && grep -q "\"sent\"" <<<"$got"' "interaction $i is not a sent mail with the note: $got"
    for t in "${toks[@]}"; do
        check '! grep -qF -- "$t" <<<"$got"' "a token is in interaction $i"
    done
done
left=$(sqlite3 "$RAPPORT_DB" "SELECT count(*) FROM rp_plugin_secrets WHERE plugin = 'collaborative'")
check '[ "$left" = 0 ]' "$left secrets of sent mails were left behind"
events=$("$RAPPORT" events tail -n 100000 2>&1)
kill $serve_pid; wait $serve_pid 2>/dev/null; serve_pid=
dump=$(sqlite3 "$RAPPORT_DB" .dump)
sqlite3 "$RAPPORT_DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
for t in "${toks[@]}"; do
    check '! grep -qF -- "$t" <<<"$events"' "a token is in the event log"
    check '! grep -qF -- "$t" <<<"$dump"' "a token is in the database's dump"
    for f in "$RAPPORT_DB" "$RAPPORT_DB-wal"; do
        check '! { [ -f "$f" ] && grep -qaF -- "$t" "$f"; }' "a token is in the bytes of $f"
    done
done

finish
