#!/usr/bin/env bash
# End-to-end: GET /api/v1/schema, the registry as the caller may use it (the console's records
# pages read it). An admin sees every entity with its fields (type, ref target, enum values,
# required, unique) and may do everything; a user whose role reads contacts and accounts only
# sees those two, without the field the role hides and with the read-only one marked; may says
# create/update yes, delete no. A field added with `rapport add-field` appears on the next
# request, the server still running. ?entity= names one entity; an unknown one, one the role
# cannot read, an unknown parameter and a POST are refused saying what is wrong; no token, 401.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >"$tmp/out" 2>&1
"$RAPPORT" define gadget '{"fields": {"name": {"type": "text", "required": true, "unique": true},
  "size": {"type": "enum", "values": ["s", "m", "l"]}, "buyer": {"type": "ref", "ref": "contact"}}}' \
    >>"$tmp/out" 2>&1
"$RAPPORT" roles set clerk '{"entities": {"contact": {"read": "all", "create": true, "update": "all"},
  "account": {"read": "all"}}, "fields": {"contact.email": "hidden", "contact.phone": "read_only"}}' \
    >>"$tmp/out" 2>&1
"$RAPPORT" users add kim --role clerk --password-stdin <<<"kim staff password" >>"$tmp/out" 2>&1
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >>"$tmp/out" 2>&1
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
check '[ -n "$port" ]' "rapport serve did not start: $(cat "$tmp/serve.log")"
U=http://127.0.0.1:$port
admin=$(token_of ana)
kim=$(token_of kim)

# jq-less: python reads the answer and prints what a check compares.
py() { python3 -c "import json, sys; d = json.load(open('$tmp/body')); print($1)"; }

tok=$admin
req GET /api/v1/schema
is 200 '"gadget"' 'the admin reads the schema'
check '[ "$(py "d[\"role\"]")" = admin ]' "the answer names the role: $body"
check '[ "$(py "sorted(d[\"data\"][\"gadget\"][\"may\"].items())")" = "[('"'"'create'"'"', True), ('"'"'delete'"'"', True), ('"'"'read'"'"', True), ('"'"'update'"'"', True)]" ]' \
    "the admin may do everything with gadgets: $body"
check '[ "$(py "d[\"data\"][\"gadget\"][\"fields\"][\"size\"][\"values\"]")" = "['"'"'s'"'"', '"'"'m'"'"', '"'"'l'"'"']" ]' \
    "an enum field gives its values: $body"
check '[ "$(py "d[\"data\"][\"gadget\"][\"fields\"][\"buyer\"][\"ref\"]")" = contact ]' \
    "a ref field names its target"
check '[ "$(py "d[\"data\"][\"gadget\"][\"fields\"][\"name\"][\"required\"] and d[\"data\"][\"gadget\"][\"fields\"][\"name\"][\"unique\"]")" = True ]' \
    "required and unique are given"
check '[ "$(py "d[\"data\"][\"contact\"][\"fields\"][\"email\"][\"read_only\"]")" = False ]' \
    "nothing is read-only for the admin"
check '[ "$(py "\"updated_by\" in d[\"data\"][\"gadget\"][\"system\"]")" = True ]' \
    "the system fields are listed"

tok=$kim
req GET /api/v1/schema
is 200 '"contact"' 'a clerk reads the schema'
check '[ "$(py "sorted(d[\"data\"])")" = "['"'"'account'"'"', '"'"'contact'"'"']" ]' \
    "the clerk sees only the entities its role reads: $body"
check '[ "$(py "\"email\" in d[\"data\"][\"contact\"][\"fields\"]")" = False ]' \
    "a hidden field is absent"
check '! grep -q "\"email\"" "$tmp/body"' "the hidden field's name appears nowhere: $body"
check '[ "$(py "d[\"data\"][\"contact\"][\"fields\"][\"phone\"][\"read_only\"]")" = True ]' \
    "a read-only field is marked read_only"
check '[ "$(py "d[\"data\"][\"contact\"][\"fields\"][\"last_name\"][\"read_only\"]")" = False ]' \
    "a writable field is not"
check '[ "$(py "[d[\"data\"][\"contact\"][\"may\"][k] for k in (\"read\", \"create\", \"update\", \"delete\")]")" = "[True, True, True, False]" ]' \
    "may follows the role's grants: $body"
check '[ "$(py "d[\"data\"][\"account\"][\"may\"][\"create\"]")" = False ]' \
    "a read-only entity may not be created"

# A field added while the server runs appears on the next request.
"$RAPPORT" add-field contact loyalty_tier '{"type": "enum", "values": ["gold", "silver"]}' \
    >"$tmp/out" 2>&1
check '[ $? -eq 0 ]' "add-field failed: $(cat "$tmp/out")"
req GET '/api/v1/schema?entity=contact'
is 200 '"loyalty_tier"' 'a field added with add-field appears at once'
check '[ "$(py "list(d[\"data\"])")" = "['"'"'contact'"'"']" ]' "?entity= gives that entity alone"

req GET '/api/v1/schema?entity=gadget'
is 404 '"field":"entity"' 'an entity the role cannot read is refused, naming the parameter'
check 'grep -q "no entity \\\\\"gadget\\\\\" you may read" "$tmp/body"' "the refusal says which: $body"
req GET '/api/v1/schema?entity=nothing'
is 404 'no entity' 'an unknown entity is refused'
req GET '/api/v1/schema?colour=red'
is 400 '"field":"colour"' 'an unknown parameter is refused, named'
req POST /api/v1/schema '{}'
is 405 'allowed: GET' 'only GET'
tok=
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U/api/v1/schema")
check '[ "$code" = 401 ]' "no token: $code"

tok=$admin
req GET /openapi.json
check 'py "d[\"paths\"][\"/api/v1/schema\"][\"get\"][\"summary\"]" | grep -q read_only' \
    "the route is in the OpenAPI document"

finish
