#!/usr/bin/env bash
# End-to-end: the browser's side of `rapport serve`, driven with curl. Sessions: the cookie's
# flags, CSRF refusals, a role the session cannot exceed, idle and absolute expiry, sign-out,
# `rapport sessions revoke|revoke-user`, wrong passwords limited as the token sign-in is.
# Embedded files: types, ETag and 304, traversal attempts. Security headers on every answer.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
# KEEP=FILE keeps the servers' logs (a sanitizer's report goes there).
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "${KEEP:-}" ] && cat "$tmp"/serve*.log > "$KEEP"; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
"$RAPPORT" define pet '{"fields": {"name": {"type": "text", "required": true}}}' >/dev/null
"$RAPPORT" roles set reader '{"entities": {"*": {"read": "all"}}}' >/dev/null
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null
"$RAPPORT" users add rita --role reader --password-stdin <<<"rita password 1" >/dev/null
tok=$(token_of ana)
check '[ -n "$tok" ]' "tokens create printed no token"

RAPPORT_HTTP_AUTH_FAILURES=3 RAPPORT_HTTP_SESSION_IDLE_S=2 RAPPORT_HTTP_SESSION_MAX_S=5 \
    "$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
check '[ -n "$port" ]' "serve did not say where it listens: $(cat "$tmp/serve.log")"
U=http://127.0.0.1:$port

has() { if grep -qiF -- "$1" <<<"$head"; then ok; else bad "$2: no \"$1\" in: $head"; fi; }
csrf_of() { grep -o '"csrf":"[0-9a-f]*"' <<<"$1" | cut -d'"' -f4; }

# ---- sign-in into a session ----
c "$tmp/ana" POST /api/v1/auth/session '{"user": "ana", "password": "a long password"}'
is 201 '"user":"ana"' "session sign-in"
csrf=$(csrf_of "$body")
check '[ ${#csrf} = 64 ]' "the sign-in's answer lacks the CSRF token: $body"
has 'set-cookie: rp_session=rps_' "the session cookie"
cookie=$(grep -i '^set-cookie: rp_session=' <<<"$head")
for flag in HttpOnly SameSite=Strict 'Path=/' 'Max-Age=5'; do
    check 'grep -qF "; $flag" <<<"$cookie"' "the cookie lacks $flag: $cookie"
done
check '! grep -qi "secure$\|secure;" <<<"$cookie"' "the cookie says Secure without http.cookie_secure: $cookie"
check '! grep -qF "rps_" <<<"$body"' "the session's secret is in the body: $body"
c "$tmp/ana" POST /api/v1/auth/session '{"user": "ana", "password": "x", "expires": "1h"}'
is 422 'is not known (user, password)' "a session's length is not the client's to say"

# The cookie stands for the user as a token does; GET needs no CSRF token.
c "$tmp/ana" GET /api/v1/auth/me
is 200 '"via":"session"' "me with the cookie"
check '[ "$(csrf_of "$body")" = "$csrf" ]' "me gives another CSRF token: $body"
c "$tmp/ana" GET /api/v1/pet
is 200 '"data":[]' "a list with the cookie"

# Every write with the cookie carries the session's CSRF token.
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}'
is 403 'X-CSRF-Token' "a write without the CSRF token"
check 'grep -qF "\"field\":\"X-CSRF-Token\"" <<<"$body"' "the refusal names no field: $body"
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}' -H "X-CSRF-Token: $(printf '0%.0s' {1..64})"
is 403 'CSRF' "a write with a wrong CSRF token"
# Another site's page, even holding the token somehow: its Origin is refused, and "null" too.
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}' -H "X-CSRF-Token: $csrf" -H "Origin: https://evil.example"
is 403 'another site' "a write from another Origin"
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}' -H "X-CSRF-Token: $csrf" -H "Origin: null"
is 403 'another site' "a write from Origin null"
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}' -H "X-CSRF-Token: $csrf" -H "Origin: http://127.0.0.1:$port.evil.example"
is 403 'another site' "a write from a look-alike Origin"
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}' -H "X-CSRF-Token: $csrf" -H "Origin: http://127.0.0.1:$port"
is 201 '"created_by":"user:ana"' "a write from this server's own Origin"
c "$tmp/ana" DELETE /api/v1/pet/1 '' -H "X-CSRF-Token: $csrf"
c "$tmp/ana" POST /api/v1/pet '{"name": "Rex"}' -H "X-CSRF-Token: $csrf"
is 201 '"created_by":"user:ana"' "a write with the CSRF token acts as the user"
# Any answer, a 201 or a refusal, is measured and keeps the connection for the next request
# (h2o closed it after every answer but a 200 while the length was left to it).
has 'connection: keep-alive' "a 201 keeps the connection"
has 'content-length:' "a 201 says its length"
c "$tmp/ana" POST /api/v1/pet '{"no_such_field": 5}' -H "X-CSRF-Token: $csrf"
is 422 'no_such_field' "a write naming no field of pet"
has 'connection: keep-alive' "a 422 keeps the connection"
reused=$(curl -sv -o /dev/null -H 'Content-Type: application/json' -d '{}' "$U/api/v1/pet" \
         --next -o /dev/null "$U/health" 2>&1 | grep -c 'Re-using existing connection')
check '[ "$reused" = 1 ]' "a refused POST then a GET on one connection: reused $reused times"
check '[ "$("$RAPPORT" count pet)" = 1 ]' "the refused writes stored something"
c "$tmp/ana" DELETE /api/v1/auth/session
is 403 'CSRF' "signing out without the CSRF token"

# A bearer token is unaffected, cookie or not: no CSRF token needed, the token's user acts.
req POST /api/v1/pet '{"name": "Tok"}'
is 201 '"created_by":"user:ana"' "a bearer write needs no CSRF token"
req GET /api/v1/auth/me
is 200 '"via":"token"' "me with a token"
check '! grep -qF csrf <<<"$body"' "a token's me shows a CSRF token: $body"

# A session can do no more than its user's role.
c "$tmp/rita" POST /api/v1/auth/session '{"user": "rita", "password": "rita password 1"}'
is 201 '"role":"reader"' "rita signs in"
rcsrf=$(csrf_of "$body")
c "$tmp/rita" GET /api/v1/pet
is 200 '"name":"Rex"' "rita reads"
c "$tmp/rita" POST /api/v1/pet '{"name": "Nope"}' -H "X-CSRF-Token: $rcsrf"
is 403 '' "rita's session cannot create what her role cannot"
check '[ "$("$RAPPORT" count pet)" = 2 ]' "rita's refused write stored something"

# Signing out ends the session on the server: the old cookie is refused, even replayed.
cp "$tmp/rita" "$tmp/rita.old"
c "$tmp/rita" DELETE /api/v1/auth/session '' -H "X-CSRF-Token: $rcsrf"
is 204 '' "rita signs out"
has 'max-age=0' "the sign-out drops the cookie"
c "$tmp/rita.old" GET /api/v1/pet
is 401 'ended' "the cookie after sign-out"
c "$tmp/rita" GET /api/v1/auth/me
is 401 '' "no cookie after sign-out"
c "$tmp/rita" DELETE /api/v1/auth/session
is 401 '' "signing out twice"

# Idle: a session unused for http.session_idle_s (2) ends.
c "$tmp/idle" POST /api/v1/auth/session '{"user": "ana", "password": "a long password"}'
is 201 '' "a session to leave idle"
sleep 2.6
c "$tmp/idle" GET /api/v1/auth/me
is 401 'idle too long' "an idle session"
# Absolute: one used every second still ends after http.session_max_s (5).
# (The browser drops the cookie at its Max-Age; the server refuses it by itself, too.)
c "$tmp/max" POST /api/v1/auth/session '{"user": "ana", "password": "a long password"}'
is 201 '' "a session to keep busy"
maxc=$(grep -io 'rp_session=rps_[A-Za-z0-9_-]*' <<<"$head")
for _ in 1 2 3 4; do
    sleep 1
    c "$tmp/none" GET /api/v1/auth/me '' -H "Cookie: $maxc"
    is 200 '' "a busy session within its length"
done
sleep 1.3
c "$tmp/none" GET /api/v1/auth/me '' -H "Cookie: $maxc"
is 401 'expired' "a session past http.session_max_s"

# Wrong passwords are limited as the token sign-in's are: three, then 429 (even for the right
# one), and an unknown cookie counts as a guess.
c "$tmp/x" POST /api/v1/auth/session '{"user": "ana", "password": "wrong one"}'
is 401 'wrong user name or password' "a wrong password"
c "$tmp/x" POST /api/v1/auth/session '{"user": "ana", "password": "wrong two"}'
is 401 '' "a second wrong password"
c "$tmp/x" GET /api/v1/pet '' -H 'Cookie: rp_session=rps_guessed'
is 401 'unknown session' "a guessed cookie"
c "$tmp/x" POST /api/v1/auth/session '{"user": "ana", "password": "a long password"}'
is 429 'too many failed sign-ins' "the right password after the limit"
has 'retry-after:' "429 says when to try again"

# ---- embedded files ----
c "$tmp/f" GET /console/
is 200 '<form id="signin"' "the console's index"
has 'content-type: text/html; charset=utf-8' "index.html's type"
has 'cache-control: no-cache' "an asset is revalidated"
etag=$(grep -i '^etag:' <<<"$head" | cut -d' ' -f2)
check '[ -n "$etag" ]' "no ETag on an asset"
c "$tmp/f" GET /console/ '' -H "If-None-Match: $etag"
is 304 '' "If-None-Match with the ETag"
check '[ -z "$body" ]' "a 304 has a body: $body"
c "$tmp/f" GET /console/ '' -H 'If-None-Match: "0000"'
is 200 '' "If-None-Match with another ETag"
c "$tmp/f" GET /console/console.js
is 200 'Rapport.signIn' "the console's script"
has 'content-type: text/javascript' "a script's type"
c "$tmp/f" GET /shared/base.css
is 200 ':root' "the shared styles"
has 'content-type: text/css' "a style sheet's type"
c "$tmp/f" GET /portal/
is 200 'Customer portal' "the portal's placeholder"
# Text files go gzipped to a client that takes gzip, with their own ETag; the same bytes.
c "$tmp/f" GET /portal/pages.js '' -H 'Accept-Encoding: gzip, deflate'
has 'content-encoding: gzip' "a script gzipped for a client that takes it"
has 'vary: accept-encoding' "a gzipped file says it varies"
gzetag=$(grep -i '^etag:' <<<"$head" | cut -d' ' -f2)
check '[[ "$gzetag" == *-gz\" ]]' "the gzipped file's ETag: $gzetag"
curl -s -H 'Accept-Encoding: gzip' "$U/portal/pages.js" | gunzip > "$tmp/pages.gz.js"
curl -s "$U/portal/pages.js" > "$tmp/pages.js"
check 'cmp -s "$tmp/pages.js" "$tmp/pages.gz.js" && [ -s "$tmp/pages.js" ]' "gunzipped is not the file"
check '[ "$(curl -s -H "Accept-Encoding: gzip" "$U/portal/pages.js" | wc -c)" -lt "$(wc -c < "$tmp/pages.js")" ]' "gzip did not shrink the file"
c "$tmp/f" GET /portal/pages.js '' -H "Accept-Encoding: gzip" -H "If-None-Match: $gzetag"
is 304 '' "If-None-Match with the gzipped file's ETag"
c "$tmp/f" GET /portal/pages.js '' -H 'Accept-Encoding: gzip;q=0, identity'
check '! grep -qi "content-encoding" <<<"$head" && grep -q "Pages" <<<"$body"' "gzip;q=0 still got gzip: $head"
c "$tmp/f" GET /portal/pages.js
check '! grep -qi "content-encoding" <<<"$head"' "gzip sent to a client that did not ask: $head"
c "$tmp/f" GET /console
is 301 '' "the prefix without its slash"
has 'location: /console/' "the redirect's target"
c "$tmp/f" HEAD /shared/api.js '' -I
is 200 '' "HEAD of an asset"
c "$tmp/f" POST /console/ '{}'
is 405 '' "a write to an asset"
for p in /console/../../etc/passwd /console/%2e%2e/%2e%2e/etc/passwd /console/..%2f..%2fetc%2fpasswd \
         /console/%2e%2e%2f%2e%2e%2fetc%2fpasswd /console//index.html /console/./index.html \
         /console/nope.html /console/README.md /shared/ /README.md /console/index.html%00 \
         '/console/%5c..%5c..%5cetc%5cpasswd'; do
    c "$tmp/f" GET "$p" '' --path-as-is
    is 404 '' "$p"
    check '! grep -q "root:" <<<"$body"' "$p showed a file of the system"
done

# ---- security headers on every answer ----
csp="content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
for what in "GET /health" "GET /openapi.json" "GET /console/" "GET /nowhere" "GET /api/v1/pet" \
            "POST /api/v1/pet" "GET /shared/api.js" "PUT /api/v1/auth/session"; do
    c "$tmp/h" ${what}
    has "$csp" "$what: the CSP"
    has 'x-frame-options: DENY' "$what: frame denial"
    has 'referrer-policy: no-referrer' "$what: referrer"
    has 'x-content-type-options: nosniff' "$what: nosniff"
done
c "$tmp/h" GET /api/v1/pet '' -H "Authorization: Bearer $tok"
has 'cache-control: no-store' "an API answer is never kept"
c "$tmp/h" GET /openapi.json
check 'grep -qF "\"/api/v1/auth/session\"" <<<"$body" && grep -qF "\"/api/v1/auth/me\"" <<<"$body"' "the OpenAPI document lacks the session routes"

kill $serve_pid
wait $serve_pid 2>/dev/null
serve_pid=

# ---- revoking from the command line, on a server with the default idle time: the first
# server's 2 s ended a session while the commands below started (a sanitizer build, with the
# suite beside it) ----
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve1b.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve1b.log")
check '[ -n "$port" ]' "serve did not start again: $(cat "$tmp/serve1b.log")"
U=http://127.0.0.1:$port
c "$tmp/s1" POST /api/v1/auth/session '{"user": "rita", "password": "rita password 1"}'
id1=$(grep -o '"session_id":[0-9]*' <<<"$body" | cut -d: -f2)
c "$tmp/s2" POST /api/v1/auth/session '{"user": "rita", "password": "rita password 1"}'
c "$tmp/s3" POST /api/v1/auth/session '{"user": "rita", "password": "rita password 1"}'
expect 0 "\"id\":$id1," -- sessions list
expect 0 "session $id1 revoked" -- sessions revoke "$id1"
expect 1 "no live session with id $id1" -- sessions revoke "$id1"
c "$tmp/s1" GET /api/v1/auth/me
is 401 'ended' "a revoked session"
c "$tmp/s2" GET /api/v1/auth/me
is 200 '' "another session of the user lives on"
expect 0 "2 sessions of user rita revoked" -- sessions revoke-user rita
c "$tmp/s3" GET /api/v1/auth/me
is 401 'ended' "a session revoked with its user's"
expect 2 "sessions revoke ID" -- sessions revoke x
check '"$RAPPORT" events tail -n 200 | grep -q "\"type\":\"session.revoked\""' "no session.revoked event"
check '! "$RAPPORT" events tail -n 200 | grep -qF "rps_"' "a session secret is in the event log"

kill $serve_pid
wait $serve_pid 2>/dev/null
serve_pid=

# ---- a plugin's files: the fixture plugin "good" serves /good/, and asks for /console/ too,
# which stays the engine's (said in the log) ----
FIX=${RP_TEST_PLUGINS:?RP_TEST_PLUGINS must name the built fixture plugins}
mkdir "$tmp/plugins"
ln -s "$FIX/good.so" "$tmp/plugins/good.so"
RAPPORT_HTTP_COOKIE_SECURE=1 \
    "$RAPPORT" --plugins "$tmp/plugins" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve2.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve2.log")
check '[ -n "$port" ]' "serve with the plugin did not start: $(cat "$tmp/serve2.log")"
U=http://127.0.0.1:$port
c "$tmp/p" GET /good/
is 200 'the good page' "the plugin's index"
has "$csp" "a plugin's page: the CSP"
has 'etag: "' "a plugin's page: the ETag"
c "$tmp/p" GET /good/app/good.js
is 200 "document.title" "the plugin's script"
has 'content-type: text/javascript' "the plugin's script's type"
c "$tmp/p" GET /good/nope.js
is 404 '' "a file the plugin does not have"
c "$tmp/p" GET /good/app/../index.html '' --path-as-is
is 404 '' "a climb inside the plugin's files"
c "$tmp/p" GET /console/
is 200 '<form id="signin"' "/console/ stays the engine's"
# (This server has http.cookie_secure: its cookies are for HTTPS only.)
c "$tmp/p" POST /api/v1/auth/session '{"user": "ana", "password": "a long password"}'
is 201 '' "a sign-in with http.cookie_secure"
has '; HttpOnly; SameSite=Strict; Secure' "the cookie says Secure with http.cookie_secure"
check 'grep -q "plugin good: its files are not served: asset prefix /console/ is already served" "$tmp/serve2.log"' \
    "the refused bundle is not in the log: $(cat "$tmp/serve2.log")"
kill $serve_pid
wait $serve_pid 2>/dev/null
serve_pid=
finish
