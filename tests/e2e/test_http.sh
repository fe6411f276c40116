#!/usr/bin/env bash
# End-to-end: `rapport serve --listen` on a free loopback port, driven with curl: tokens,
# CRUD of a built-in and a custom entity, cursors, If-Match, bulk, search, events, explain,
# OpenAPI, every error status the API promises, the slowdown after failed tokens, a half-sent
# request that does not stop the server, and a clean stop on SIGTERM.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$tmp/serve.log" /tmp/http_serve.log; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
"$RAPPORT" define pet '{"fields": {"name": {"type": "text", "required": true, "searchable": true}, "legs": {"type": "integer"}}}' >/dev/null
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null
tok=$(token_of ana)
short=$("$RAPPORT" tokens create --user ana --expires 1s 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*' | head -1)
gone=$(token_of ana)
check '[ -n "$tok" ] && [ -n "$short" ] && [ -n "$gone" ]' "tokens create printed no token"

# Five failures from one client within the window before it is slowed (a good token or
# sign-in in between does not wipe them): a revoked and an expired token below, two wrong
# tokens and a wrong password at the end.
RAPPORT_HTTP_AUTH_FAILURES=5 RAPPORT_HTTP_MAX_BODY_BYTES=65536 RAPPORT_HTTP_REQUEST_TIMEOUT_MS=1000 \
    "$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
check '[ -n "$port" ]' "serve did not say where it listens: $(cat "$tmp/serve.log")"
U=http://127.0.0.1:$port


# Health and the OpenAPI document need no token; the document knows the custom entity.
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/health"); body=$(cat "$tmp/body")
is 200 '"status":"ok"' "health"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/openapi.json"); body=$(cat "$tmp/body")
is 200 '"/api/v1/pet/{id}"' "openapi has the custom entity's paths"
check 'grep -qF "\"openapi\":\"3.0.3\"" <<<"$body" && grep -qF "\"legs\":{\"type\":\"integer\"" <<<"$body"' "openapi lacks the version or the field types"
check 'grep -qF "\"/api/v1/auth/login\"" <<<"$body"' "openapi lacks the sign-in"
# The document is valid JSON that a tool can read (python's json, when there is python).
if command -v python3 >/dev/null; then
    check 'python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"paths\"][\"/api/v1/pet/{id}\"][\"patch\"]" <<<"$body"' "openapi does not parse"
fi

# Authentication.
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/api/v1/contact"); body=$(cat "$tmp/body")
is 401 'Authorization: Bearer' "no token"
check 'grep -qF "application/problem+json" <(curl -s -i "$U/api/v1/contact")' "401 is not problem+json"
"$RAPPORT" tokens revoke 3 >/dev/null
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $gone" "$U/api/v1/contact"); body=$(cat "$tmp/body")
is 401 'revoked' "a revoked token"
sleep 1.1
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $short" "$U/api/v1/contact"); body=$(cat "$tmp/body")
is 401 'expired' "an expired token"

# Create, read, list with a filter and field selection (built-in entity, rules on).
req POST /api/v1/contact '{"first_name": "Ada", "last_name": "Lovelace", "email": "ADA@Example.com"}'
is 201 '"email":"ada@example.com"' "create a contact (email normalised by the plugin)"
check 'grep -qF "\"created_by\":\"user:ana\"" <<<"$body"' "the record does not say who made it: $body"
id=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
check 'curl -s -i -X POST -H "Authorization: Bearer $tok" -H "Content-Type: application/json" -d "{\"first_name\":\"X\",\"last_name\":\"Y\"}" "$U/api/v1/contact" | grep -qi "^location: /api/v1/contact/[0-9]"' "create has no Location"
req GET "/api/v1/contact/$id"
is 200 '"last_name":"Lovelace"' "get a contact"
check 'curl -s -i -H "Authorization: Bearer $tok" "$U/api/v1/contact/$id" | grep -qi "^etag: \"1\""' "get has no ETag"
req GET "/api/v1/contact/$id?fields=last_name,shoe"
is 400 '"field":"shoe"' "get one with an unknown field in fields="
req GET "/api/v1/contact/$id?fields=last_name"
is 200 '"last_name":"Lovelace"' "get one with fields="
check '! grep -q first_name <<<"$body"' "fields= did not select: $body"
req GET "/api/v1/contact?email=ada@example.com&fields=email,first_name"
is 200 '{"data":[{"id":'"$id"',"version":1,"email":"ada@example.com","first_name":"Ada"}],"next":null}' "a filtered list with fields"

# The custom entity, and a cursor over three pages.
for n in Rex Tom Kit Bo Max; do req POST /api/v1/pet "{\"name\": \"$n\", \"legs\": 4}"; done
is 201 '"name":"Max"' "create a pet"
req GET "/api/v1/pet?limit=2&order=name"
is 200 '"name":"Bo"' "the first page"
cursor=$(grep -o '"next":"[^"]*"' <<<"$body" | cut -d'"' -f4)
check '[ -n "$cursor" ]' "no cursor on a full page: $body"
req GET "/api/v1/pet?limit=2&order=name&after=$cursor"
is 200 '"name":"Max"' "the second page"
check 'grep -qF "\"name\":\"Rex\"" <<<"$body" && ! grep -qF "\"name\":\"Kit\"" <<<"$body"' "the second page repeats or skips: $body"
cursor=$(grep -o '"next":"[^"]*"' <<<"$body" | cut -d'"' -f4)
req GET "/api/v1/pet?limit=2&order=name&after=$cursor"
is 200 '"next":null' "the last page"
check 'grep -qF "\"name\":\"Tom\"" <<<"$body"' "the last page lacks Tom: $body"
req GET "/api/v1/pet?legs=4&limit=10"
is 200 '"name":"Rex"' "an integer filter from the query string"
req GET '/api/v1/pet?where=%7B%22name%22%3A%7B%22starts_with%22%3A%22T%22%7D%7D'
is 200 '"name":"Tom"' "a where= JSON filter"
check '! grep -qF "\"name\":\"Rex\"" <<<"$body"' "where= did not filter: $body"

# An entity defined by another process while serve runs is served at once, and in OpenAPI.
"$RAPPORT" define gadget '{"fields": {"label": {"type": "text", "required": true}}}' >/dev/null
req POST /api/v1/gadget '{"label": "new"}'
is 201 '"label":"new"' "an entity defined while serving"
"$RAPPORT" add-field gadget weight '{"type": "integer"}' >/dev/null
req PATCH /api/v1/gadget/1 '{"weight": 3}'
is 200 '"weight":3' "a field added while serving"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/openapi.json"); body=$(cat "$tmp/body")
is 200 '"weight":{"type":"integer"' "openapi has the field added while serving"

# Update with If-Match; a stale version is 412 and changes nothing.
req PATCH "/api/v1/contact/$id" '{"title": "Countess"}' -H 'If-Match: "1"'
is 200 '"version":2' "a PATCH with the current version"
req PATCH "/api/v1/contact/$id" '{"title": "Nobody"}' -H 'If-Match: "1"'
is 412 'version 1 was read' "a PATCH with a stale version"
req GET "/api/v1/contact/$id"
is 200 '"title":"Countess"' "the stale write stored nothing"
req PATCH "/api/v1/contact/$id" '{"title": "x"}' -H 'If-Match: soon'
is 400 'If-Match' "a malformed If-Match"

# DELETE with If-Match: a stale version is 412 and deletes nothing; HEAD answers as GET.
req POST /api/v1/pet '{"name": "Vers", "legs": 1}'
vid=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
req PATCH "/api/v1/pet/$vid" '{"legs": 2}'
req DELETE "/api/v1/pet/$vid" '' -H 'If-Match: "1"'
is 412 'now at version 2' "a DELETE with a stale version"
req DELETE "/api/v1/pet/$vid" '' -H 'If-Match: W/"2"'
is 412 'weak' "a DELETE with a weak tag"
req DELETE "/api/v1/pet/$vid" '' -H 'If-Match: "2"'
is 204 '' "a DELETE with the current version"
check '[ "$(curl -s -o /dev/null -w "%{http_code}" -I "$U/health")" = 200 ]' "HEAD /health is not 200"
check '[ "$(curl -s -o /dev/null -w "%{http_code}" -I -H "Authorization: Bearer $tok" "$U/api/v1/pet/1")" = 200 ]' "HEAD of a record is not 200"

# History and explain.
req GET "/api/v1/contact/$id/events"
is 200 '"type":"contact.updated"' "the record's events"
req GET "/api/v1/contact/$id/explain/title"
is 200 '"new":"Countess"' "explain a field"
check 'grep -qF "\"actor\":\"user:ana\"" <<<"$body"' "explain does not name the API user: $body"

# Delete and restore; search finds live records only.
req GET '/api/v1/search?q=lovel'
is 200 "\"id\":$id" "search finds the contact"
req DELETE "/api/v1/contact/$id"
is 204 '' "delete"
req GET '/api/v1/search?q=lovel'
is 200 '"data":[]' "search does not find a deleted record"
req POST "/api/v1/contact/$id/restore"
is 200 '"deleted_at":null' "restore"

# Bulk: all or nothing, and the failing record is pointed at.
before=$(count pet)
req POST /api/v1/pet/bulk '{"create": [{"name": "A"}, {"legs": 3}]}'
is 422 '"field":"/create/1/name"' "a bulk create with a bad record"
check '[ "$(count pet)" = "$before" ]' "a refused bulk stored something"
req POST /api/v1/pet/bulk '{"create": [{"name": "A"}], "delete": [1]}'
is 422 '"field":"delete"' "a bulk body with an unknown key"
req POST /api/v1/pet/bulk '{"create": {"name": "A"}}'
is 422 '"field":"create"' "a bulk create that is not an array"
req POST /api/v1/pet/bulk '{"create": [{"name": "A"}, {"name": "B"}], "update": [{"id": 1, "legs": 3}]}'
is 200 '"updated":1' "a bulk create and update"
check '[ "$(count pet)" = "$((before + 2))" ]' "the bulk create did not store both"

# Writes arriving together share one commit; a refused one among them stores nothing and
# the others are stored (each request has its own savepoint in the group).
before=$(count pet)
args=()
for i in 1 2 3 4 5 6; do
    [ $i -gt 1 ] && args+=(--next)
    body="{\"name\": \"Par$i\", \"legs\": $i}"
    [ $i = 4 ] && body='{"name": "Bad", "legs": "many"}'
    args+=(-s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d "$body" "$U/api/v1/pet")
done
codes=$(curl -s -Z --parallel-immediate --parallel-max 6 "${args[@]}" 2>/dev/null | sort | tr '\n' ' ')
check '[ "$codes" = "201 201 201 201 201 422 " ]' "parallel creates answered $codes"
check '[ "$(count pet)" = "$((before + 5))" ]' "parallel creates: $(count pet) pets, wanted $((before + 5))"

# serve copies its WAL into the database as it goes (a checkpoint on a worker), so the main
# file grows while it runs rather than only at its exit.
size0=$(stat -c %s "$RAPPORT_DB")
recs=$(for i in $(seq 400); do printf '{"name": "Bulk %d", "legs": 2},' "$i"; done)
req POST /api/v1/pet/bulk "{\"create\": [${recs%,}]}"
is 200 '"updated":0' "a bulk of 400"
for _ in $(seq 40); do [ "$(stat -c %s "$RAPPORT_DB")" -gt "$size0" ] && break; sleep 0.05; done
check '[ "$(stat -c %s "$RAPPORT_DB")" -gt "$size0" ]' "serve does not checkpoint its WAL: the database stays at $size0 bytes"

# Every promised error status, each storing nothing; the server keeps serving.
before=$(count contact)
req POST /api/v1/contact '{"first_name": "A",'
is 400 'line 1, column' "malformed JSON names line and column"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: text/plain' -d '{}' "$U/api/v1/contact"); body=$(cat "$tmp/body")
is 415 'application/json' "a wrong content type"
req POST /api/v1/contact '{"first_name": "A", "last_name": "B", "shoe": 42}'
is 422 '"field":"shoe"' "an unknown field"
req POST /api/v1/contact '{"first_name": "A", "last_name": "B", "email": "nope"}'
is 422 '"field":"email"' "a malformed email"
req POST /api/v1/contact '{"first_name": "A", "last_name": "B", "id": 9}'
is 422 '"field":"id"' "a system field"
head -c 70000 /dev/zero | tr '\0' a > "$tmp/big"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' --data-binary @"$tmp/big" "$U/api/v1/contact"); body=$(cat "$tmp/body")
is 413 'http.max_body_bytes' "a body over the limit, as a problem document"
code409=$("$RAPPORT" add-field pet tag '{"type": "text", "unique": true}' >/dev/null 2>&1; req POST /api/v1/pet '{"name": "T1", "tag": "same"}'; req POST /api/v1/pet '{"name": "T2", "tag": "same"}'; echo "$code $body")
check 'grep -q "^409 .*\"field\":\"tag\".*RP-E1207" <<<"$code409"' "a duplicate unique value: $code409"
req GET /api/v1/contact/999999
is 404 'RP-E1202' "a missing record"
req GET /api/v1/nothing
is 404 'no entity' "an unknown entity"
req GET /api/v1/contact/abc
is 404 'not a record id' "a path that is not an id"
req PUT "/api/v1/contact/$id" '{}'
is 405 'allowed: GET, PATCH, DELETE' "a method that is not allowed"
req GET '/api/v1/contact?limit=0'
is 400 '"field":"limit"' "a bad limit"
req GET '/api/v1/contact?shoe=1'
is 400 '"field":"shoe"' "a filter on an unknown field"
req GET '/api/v1/contact?order=-shoe'
is 400 'shoe' "an order by an unknown field"
req GET '/api/v1/contact?after=garbage'
is 400 'RP-E1303' "a foreign cursor"
req GET '/api/v1/search'
is 400 '"field":"q"' "search without q"
req GET '/api/v1/search?q=%zz'
is 400 'not well formed' "a malformed % escape"
req POST /api/v1/pet '{"name": "Rex2", "legs": "four"}'
is 422 '"field":"legs"' "a value of the wrong type"
check '[ "$(count contact)" = "$before" ]' "a refused request stored something"

# A half-sent request is dropped after the request timeout; others are served meanwhile.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /api/v1/contact HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"fir' >&3
req GET /health
is 200 '"ok"' "served while another request hangs half-sent"
# ... and after the request timeout (1 s here) the server drops it.
timeout 5 cat <&3 >/dev/null; st=$?
check '[ $st != 124 ]' "a half-sent request was not dropped after the request timeout"
exec 3>&-

# Keep-alive and pipelining: two requests on one connection, both answered.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
answers=$(timeout 5 cat <&3 | grep -o 'HTTP/1.1 200' | wc -l)
exec 3>&-
check '[ "$answers" = 2 ]' "two pipelined requests got $answers answers"

# Sign-in with a password: a token for the user's role, the password checked off the loop.
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"user": "ana", "password": "a long password", "expires": "1h"}' "$U/api/v1/auth/login"); body=$(cat "$tmp/body")
is 201 '"token":"rpt_' "sign in with the right password"
t2=$(grep -o 'rpt_[A-Za-z0-9_-]*' <<<"$body")
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $t2" "$U/api/v1/pet?limit=1"); body=$(cat "$tmp/body")
is 200 '"data":[' "the signed-in token works"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"user": "ana", "pass": "x"}' "$U/api/v1/auth/login"); body=$(cat "$tmp/body")
is 422 '"field":"pass"' "sign-in with an unknown key"
check '"$RAPPORT" events tail -n 50 | grep -q "\"type\":\"auth.login\".*\"actor\":\"user:ana\""' "sign-in is not in the event log"

# Failed tokens from one client: 401 until the limit, then 429 with Retry-After, and logged.
for _ in 1 2; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer rpt_wrong" "$U/api/v1/contact")
    # A good token in between does not wipe the failures.
    curl -s -o /dev/null -H "Authorization: Bearer $tok" "$U/api/v1/pet?limit=1"
done
check '[ "$code" = 401 ]' "the fourth failure was $code"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"user": "ana", "password": "wrong"}' "$U/api/v1/auth/login"); body=$(cat "$tmp/body")
is 401 'wrong user name or password' "sign-in with a wrong password (the fifth failure)"
# Once slowed, further bad tokens are refused too (no counting past the limit).
for _ in 1 2 3; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer rpt_wrong2" "$U/api/v1/contact")
done
check '[ "$code" = 429 ]' "bad tokens after the slowdown answered $code"
hdrs=$(curl -s -i -H "Authorization: Bearer $tok" "$U/api/v1/contact")
check 'grep -q "^HTTP/1.1 429" <<<"$hdrs" && grep -qi "^retry-after: [0-9]" <<<"$hdrs"' "no 429 with Retry-After after repeated failures: $hdrs"
check '"$RAPPORT" events tail -n 50 | grep -q "\"type\":\"auth.refused\""' "refusals are not in the event log"
check '"$RAPPORT" events tail -n 50 | grep -q "\"type\":\"auth.throttled\""' "the slowdown is not in the event log"
check '"$RAPPORT" events tail -n 5000 | grep -q "\"type\":\"token.used\""' "token use is not in the event log"
check '"$RAPPORT" tokens list | grep -q "\"last_used_at\":\"2"' "tokens list has no last use"

# A port that is taken fails serve with a clear message.
out=$("$RAPPORT" serve --listen "127.0.0.1:$port" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "cannot listen on 127.0.0.1:$port" <<<"$out"' "a taken port: exit $st: $out"
expect 2 'HOST:PORT' -- serve --listen nowhere

# SIGTERM stops the server cleanly.
kill -TERM $serve_pid
wait $serve_pid; st=$?
serve_pid=
check '[ $st = 0 ]' "serve exited $st on SIGTERM"
check 'grep -q " info sched stopped" "$tmp/serve.log"' "no stop line: $(tail -3 "$tmp/serve.log")"

finish
