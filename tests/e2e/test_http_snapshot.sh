#!/usr/bin/env bash
# End-to-end: a read request runs in one read snapshot (its token, role, schema check and record
# take the read lock once), and the server remembers a checked token while the file is
# unchanged; yet what another process changed just before is in force for the very next
# request: a token revoked, a role narrowed, a user disabled, a field added, and a token's
# expiry. Each change comes after reads that the remembered check answered. A refusal inside
# a snapshot still writes its security event, and /health answers from memory.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
"$RAPPORT" define pet '{"fields": {"name": {"type": "text", "required": true}}}' >/dev/null
"$RAPPORT" create pet '{"name": "Rex"}' >/dev/null
"$RAPPORT" roles set reader '{"entities": {"pet": {"read": "all"}}}' >"$tmp/out" 2>&1
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null
"$RAPPORT" users add bob --role reader --password-stdin <<<"a long password" >/dev/null
"$RAPPORT" users add cy --role reader --password-stdin <<<"a long password" >/dev/null
ana=$(token_of ana)
bob=$(token_of bob)
cy=$(token_of cy)
check '[ -n "$ana" ] && [ -n "$bob" ] && [ -n "$cy" ]' "tokens create printed no token"

"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
check '[ -n "$port" ]' "serve did not say where it listens: $(cat "$tmp/serve.log")"
U=http://127.0.0.1:$port

# /health: the status and version only, made without the database.
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/health"); body=$(cat "$tmp/body")
is 200 '{"status":"ok","version":"' "health"
check '! grep -q last_event <<<"$body"' "health still reads the event log: $body"

# A token revoked by another process is refused on the very next request.
tok=$ana
for i in 1 2 3; do req GET /api/v1/pet/1; is 200 '"name":"Rex"' "ana reads the pet ($i)"; done
id=$("$RAPPORT" tokens list --user ana | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
"$RAPPORT" tokens revoke "$id" >/dev/null
req GET /api/v1/pet/1; is 401 'the token was revoked' "a revoked token still reads"

# A role narrowed by another process restricts the very next request, and the refusal, made
# inside the read snapshot, is still written to the event log.
tok=$bob
for i in 1 2 3; do req GET /api/v1/pet/1; is 200 '"name":"Rex"' "bob reads the pet ($i)"; done
"$RAPPORT" roles set reader '{"entities": {"pet": {"read": "none"}}}' >"$tmp/out" 2>&1
req GET /api/v1/pet/1; is 403 '' "a narrowed role still reads"
check '"$RAPPORT" events tail -n 50 | grep "\"type\":\"access.denied\"" | grep -q "GET /api/v1/pet/1"' \
    "the refusal inside a read is not in the event log"
"$RAPPORT" roles set reader '{"entities": {"pet": {"read": "all"}}}' >"$tmp/out" 2>&1
req GET /api/v1/pet/1; is 200 '"name":"Rex"' "a widened role is not in force at once"

# A remembered token still stops at its expiry, though nothing in the file changed.
tok=$("$RAPPORT" tokens create --user bob --expires 2s 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*' | head -1)
for i in 1 2 3; do req GET /api/v1/pet/1; is 200 '"name":"Rex"' "a short token reads ($i)"; done
sleep 2.2
req GET /api/v1/pet/1; is 401 'the token has expired' "a remembered token outlives its expiry"

# A user disabled by another process is refused on the very next request.
tok=$cy
for i in 1 2 3; do req GET /api/v1/pet/1; is 200 '"name":"Rex"' "cy reads the pet ($i)"; done
"$RAPPORT" users disable cy >/dev/null
req GET /api/v1/pet/1; is 401 'disabled' "a disabled user still reads"

# A field another process adds is served by the next read; a write after reads still works.
tok=$bob
"$RAPPORT" add-field pet legs '{"type": "integer"}' >/dev/null
"$RAPPORT" update pet 1 '{"legs": 4}' >/dev/null
req GET /api/v1/pet/1; is 200 '"legs":4' "a field added by another process is not served"
tok=$(token_of ana)
req POST /api/v1/pet '{"name": "Tom", "legs": 3}'; is 201 '"name":"Tom"' "a write after reads"
req GET /api/v1/pet/2; is 200 '"legs":3' "the write is not read back"

kill -TERM "$serve_pid"; wait "$serve_pid" 2>/dev/null; serve_pid=
finish
