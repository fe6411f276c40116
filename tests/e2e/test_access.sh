#!/usr/bin/env bash
# End-to-end: roles enforced by the store on every path. A sales role reads its team's
# contacts, changes only its own, never sees the hidden email, never writes the read-only
# source, and may not delete; the same rules hold through the HTTP API, `--as` on the command
# line (get, find, count, search, explain, events, export, import) and Lua run for the user.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
sales='{"entities": {"contact": {"read": "team", "create": true, "update": "own", "delete": "none"}}, "fields": {"contact.email": "hidden", "contact.source": "read_only"}}'
expect 0 'role sales set' -- roles set sales "$sales"
expect 0 'role reader set' -- roles set reader '{"entities": {"*": {"read": "all"}}}'
expect 1 'entities.contact.read must be' -- roles set bad '{"entities": {"contact": {"read": "most"}}}'
expect 1 'not a permission' -- roles set bad '{"entities": {"contact": {"fly": "all"}}}'
expect 1 'is not entity.field' -- roles set bad '{"fields": {"email": "hidden"}}'
expect 1 'is not defined' -- roles show bad
expect 0 '"read": "team"' -- roles show sales
for u in sam:sales:north tim:sales:north zoe:sales:south rita:reader:north; do
    IFS=: read -r name role team <<<"$u"
    "$RAPPORT" users add "$name" --role "$role" --team "$team" --password-stdin <<<"password of $name" >/dev/null
done
"$RAPPORT" users add ana --role admin --password-stdin <<<"password of ana" >/dev/null
mk() { "$RAPPORT" create contact "{\"first_name\": \"$1\", \"last_name\": \"Owned\", \"email\": \"$2\", \"owner\": \"$3\", \"source\": \"fair\"}" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2; }
sam_c=$(mk Sammy zzsecret-sam@example.com sam)
tim_c=$(mk Timmy zzsecret-tim@example.com tim)
zoe_c=$(mk Zoey zzsecret-zoe@example.com zoe)
"$RAPPORT" create deal '{"name": "Big", "amount": "10.00", "currency": "EUR"}' >/dev/null

# ---- the command line, --as -------------------------------------------------------------
out=$("$RAPPORT" --as sam find contact)
check 'grep -q Sammy <<<"$out" && grep -q Timmy <<<"$out" && ! grep -q Zoey <<<"$out"' "find --as sam is not the team's contacts: $out"
check '! grep -q zzsecret <<<"$out" && ! grep -q "\"email\"" <<<"$out"' "find --as sam shows the hidden email: $out"
check '[ "$("$RAPPORT" --as sam count contact)" = 2 ] && [ "$("$RAPPORT" --as zoe count contact)" = 1 ]' "count --as does not count the scope"
expect 1 'missing: contact.read' -- --as sam get contact "$zoe_c"
expect 0 'Timmy' -- --as sam get contact "$tim_c"
expect 1 'hidden' -- --as sam find contact --where '{"email": {"contains": "zz"}}'
expect 1 'hidden' -- --as sam find contact --order email
# A malformed value for a hidden field is refused as hidden, not as malformed (which would tell
# the field exists and its type), in a list, a count and an aggregate alike.
expect 1 'hidden' -- --as sam find contact --where '{"email": 5}'
out=$("$RAPPORT" --as sam find contact --where '{"email": {"gt": []}}' 2>&1)
check 'grep -q hidden <<<"$out" && ! grep -qi "email address\|not a valid\|must be" <<<"$out"' "a bad value on a hidden field: $out"
expect 1 'hidden' -- --as sam count contact --where '{"email": {"gt": []}}'
expect 1 'missing: deal.read' -- --as sam find deal
expect 1 'missing: contact.update' -- --as sam update contact "$tim_c" '{"title": "Boss"}'
expect 0 '' -- --as sam update contact "$sam_c" '{"title": "Boss"}'
expect 1 'contact.source is read-only' -- --as sam update contact "$sam_c" '{"source": "web"}'
expect 1 'contact.email is hidden' -- --as sam update contact "$sam_c" '{"email": "new@example.com"}'
expect 1 'missing: contact.delete' -- --as sam delete contact "$sam_c"
expect 1 'missing: contact.create' -- --as rita create contact '{"first_name": "R", "last_name": "R"}'
expect 0 'zzsecret-zoe' -- --as rita get contact "$zoe_c"
expect 1 'there is no user' -- --as nobody find contact
out=$("$RAPPORT" --as sam search zzsecret)
check '! grep -q "\"id\"" <<<"$out"' "search --as sam matched through the hidden email: $out"
out=$("$RAPPORT" --as sam search timmy)
check 'grep -q "\"id\":$tim_c" <<<"$out" && ! grep -q zzsecret <<<"$out"' "search --as sam: no hit, or a snippet with the hidden email: $out"
out=$("$RAPPORT" --as zoe search timmy)
check '! grep -q "\"id\":$tim_c" <<<"$out"' "search --as zoe finds another team's contact: $out"
expect 1 'hidden' -- --as sam explain contact "$sam_c" email
# crm.events reads the log as the user: the team's contacts only, never a hidden field, no deal.
out=$("$RAPPORT" --as sam eval 'local evs = crm.events({limit = 1000}); return crm.json.encode(evs)')
check 'grep -q "Sammy" <<<"$out" && grep -q "Timmy" <<<"$out" && ! grep -q "Zoey" <<<"$out"' "crm.events --as sam is not the team's events: $out"
check '! grep -q zzsecret <<<"$out" && ! grep -q "\"email\"" <<<"$out" && ! grep -q "deal.created" <<<"$out"' "crm.events --as sam shows a hidden field or a deal: $out"
out=$("$RAPPORT" eval 'local evs = crm.events({limit = 1000}); return crm.json.encode(evs)')
check 'grep -q "Zoey" <<<"$out" && grep -q zzsecret <<<"$out" && grep -q "deal.created" <<<"$out"' "crm.events as the installation misses events: $out"
expect 0 'Boss' -- --as sam explain contact "$sam_c" title
out=$("$RAPPORT" --as sam events tail -n 100)
check 'grep -q "contact.created" <<<"$out" && ! grep -q zzsecret <<<"$out" && ! grep -q "deal.created" <<<"$out"' "events --as sam: wrong view: $out"

# Export: the scope, without the hidden field.
"$RAPPORT" --as sam export contact --format csv -o "$tmp/out.csv" 2>/dev/null
check '[ -f "$tmp/out.csv" ] && ! grep -q zzsecret "$tmp/out.csv" && ! head -1 "$tmp/out.csv" | tr , "\n" | grep -qx email && grep -q Timmy "$tmp/out.csv" && ! grep -q Zoey "$tmp/out.csv"' "export --as sam: $(cat "$tmp/out.csv" 2>/dev/null)"
# Import: a file that writes the hidden field goes in not at all.
before=$(count contact)
printf 'first_name,last_name,email\nNew,One,new1@example.com\nNew,Two,new2@example.com\n' > "$tmp/in.csv"
expect 1 'contact.email is hidden' -- --as sam import contact "$tmp/in.csv"
check '[ "$(count contact)" = "$before" ]' "a refused import stored something"
printf 'first_name,last_name\nNew,One\n' > "$tmp/in2.csv"
expect 0 '1 created' -- --as sam import contact "$tmp/in2.csv"
expect 1 'missing: contact.create' -- --as rita import contact "$tmp/in2.csv"

# Lua run for a user sees and does what the user may.
cat > "$tmp/s.lua" <<'EOF'
local rows = crm.find("contact", {order = "id"})
local emails = 0
for _, r in ipairs(rows) do if r.email then emails = emails + 1 end end
local ok, err = pcall(crm.update, "contact", tonumber(arg[1]), {title = "Hacked"})
return #rows, emails, ok, tostring(err):match("missing: contact.update") ~= nil
EOF
out=$("$RAPPORT" --as sam eval "local h = crm.history('contact', $sam_c); return #h, crm.json.encode(h):find('zzsecret') == nil" 2>&1)
check '[ "$(echo $out)" = "2 true" ]' "crm.history --as sam: wanted its 2 events without the email, got: $out"
expect 1 'hidden' -- --as sam eval "return crm.explain('contact', $sam_c, 'email')"
out=$("$RAPPORT" --as zoe run "$tmp/s.lua" "$tim_c" 2>&1)
check '[ "$(echo $out)" = "1 0 false true" ]' "Lua --as zoe: wanted 1 0 false true, got: $out"
out=$("$RAPPORT" run "$tmp/s.lua" "$tim_c" 2>&1)
check 'grep -q "^true" <<<"$(echo "$out" | sed -n 3p)"' "Lua without --as should be unrestricted: $out"

# Business rules run as the engine whoever writes: a clerk who reads only their own order
# lines still gets the order's total from every line.
"$RAPPORT" roles set clerk '{"entities": {"order_line": {"read": "own", "create": true, "update": "own"}, "order": {"read": "all", "update": "all"}}}' >/dev/null
"$RAPPORT" users add cleo --role clerk --password-stdin <<<"password of cleo" >/dev/null
order=$("$RAPPORT" create order '{"status": "placed"}' | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
"$RAPPORT" create order_line "{\"order\": $order, \"unit_price\": \"10.00\", \"quantity\": \"1\"}" >/dev/null
expect 0 '' -- --as cleo create order_line "{\"order\": $order, \"unit_price\": \"5.00\", \"quantity\": \"1\"}"
expect 0 '"total": "15.00"' -- get order "$order"

# A user hands records only to whom their update scope reaches: own, themselves.
expect 1 'may not give contact records to tim' -- --as sam create contact '{"first_name": "P", "last_name": "Planted", "owner": "tim"}'
expect 1 'may not give contact records to zoe' -- --as sam update contact "$sam_c" '{"owner": "zoe"}'
expect 0 '"owner":"sam"' -- --as sam create contact '{"first_name": "P", "last_name": "Mine", "owner": "sam"}'

# A setting whose name says it holds a secret is logged as changed, never shown.
"$RAPPORT" config set plugin.crmsync.api_key '"sk-live-12345"' >/dev/null
check '! "$RAPPORT" events tail -n 20 | grep -q sk-live && "$RAPPORT" events tail -n 20 | grep -q "\[secret\]"' "a secret setting's value is in the event log"
expect 0 'sk-live-12345' -- config get plugin.crmsync.api_key

# A user may not register rules: they would run as the engine.
expect 1 'cannot register rules' -- --as sam eval 'crm.before("contact.create", function(r) return r end)'
expect 1 'cannot register rules' -- --as sam eval 'crm.on("contact.*", function(e) end)'
expect 1 'cannot register rules' -- --as sam eval 'crm.job("mine", function(j) end)'
# An owner that is not a name is still a hand-off; clearing one needs scope all.
expect 1 'may not give contact records to 123' -- --as sam update contact "$sam_c" '{"owner": 123}'
expect 1 'may not clear the owner' -- --as sam update contact "$sam_c" '{"owner": null}'
expect 0 '' -- --as sam update contact "$sam_c" '{"owner": "sam", "title": "Same owner"}'

# Plugin functions and commands run for a user act as that user.
out=$("$RAPPORT" --as zoe eval 'return crm.operational.duplicates("contact")' 2>&1)
check '! grep -q "\"ids\":\[[^]]*'"$sam_c"'" <<<"$out"' "a plugin function run --as zoe reached sam's contacts: $out"
expect 1 'outside its scope' -- --as zoe merge contact "$zoe_c" "$tim_c"
# A dry run for a user shows no hidden field, even of a change a rule made.
out=$("$RAPPORT" --as sam eval "local _, r = crm.dry_run(function() crm.update('contact', $sam_c, {title = 'Dry'}) end); return crm.json.encode(r)" 2>&1)
check 'grep -q "Dry" <<<"$out" && ! grep -q zzsecret <<<"$out"' "dry run --as sam: $out"

# ---- the HTTP API ------------------------------------------------------------------------
sam_t=$(token_of sam); rita_t=$(token_of rita)
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
U=http://127.0.0.1:$port
api() { # api TOKEN METHOD PATH [BODY]: sets $code and $body
    local args=(-s -o "$tmp/body" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1")
    [ -n "${4-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    code=$(curl "${args[@]}" "$U$3"); body=$(cat "$tmp/body")
}
is() {
    if [ "$code" != "$1" ]; then bad "$3: status $code, wanted $1: $body"
    elif [ -n "$2" ] && ! grep -qF -- "$2" <<<"$body"; then bad "$3: lacks $2: $body"
    else ok; fi
}
api "$sam_t" GET /api/v1/contact
is 200 'Timmy' "list as sam"
check '! grep -q Zoey <<<"$body" && ! grep -q zzsecret <<<"$body"' "list as sam shows another team or the hidden email: $body"
api "$sam_t" GET "/api/v1/contact/$zoe_c"
is 403 'missing: contact.read' "get another team's contact"
check 'grep -qF "\"code\":\"RP-E1904\"" <<<"$body"' "403 without its code: $body"
api "$sam_t" GET "/api/v1/contact/$tim_c"
is 200 'Timmy' "get a team mate's contact"
check '! grep -q zzsecret <<<"$body"' "get shows the hidden email: $body"
api "$sam_t" PATCH "/api/v1/contact/$tim_c" '{"title": "X"}'
is 403 'missing: contact.update' "patch a team mate's contact"
api "$sam_t" PATCH "/api/v1/contact/$sam_c" '{"source": "x"}'
is 403 '"field":"source"' "patch a read-only field"
api "$sam_t" POST /api/v1/contact '{"first_name": "A", "last_name": "B", "email": "a@b.co"}'
is 403 '"field":"email"' "create with a hidden field"
api "$sam_t" DELETE "/api/v1/contact/$sam_c"
is 403 'missing: contact.delete' "delete without the permission"
api "$sam_t" GET '/api/v1/contact?email=zzsecret-sam@example.com'
is 403 'hidden' "filter on a hidden field"
api "$sam_t" GET '/api/v1/contact?fields=email'
is 403 'hidden' "select a hidden field"
api "$sam_t" GET "/api/v1/contact/$sam_c?fields=first_name,email"
is 403 'hidden' "select a hidden field of one record"
api "$sam_t" GET '/api/v1/search?q=zzsecret'
is 200 '"data":[]' "search through a hidden field"
api "$sam_t" GET "/api/v1/contact/$sam_c/events"
is 200 'contact.created' "events of an own contact"
check '! grep -q zzsecret <<<"$body"' "events show the hidden email: $body"
api "$sam_t" GET "/api/v1/contact/$sam_c/explain/email"
is 403 'hidden' "explain a hidden field"
api "$sam_t" GET /api/v1/deal
is 403 'missing: deal.read' "an entity without a grant"
# What a write answers is what the writer may see: no hidden default.
api "$sam_t" POST /api/v1/contact '{"first_name": "New", "last_name": "Lead"}'
is 201 '"first_name":"New"' "create as sam"
check '! grep -q "\"email\"" <<<"$body"' "the create answer shows the hidden email field: $body"
# A write that takes the record out of the writer's read scope still answers with it.
"$RAPPORT" roles set mover '{"entities": {"contact": {"read": "own", "update": "all"}}}' >/dev/null
"$RAPPORT" users add max --role mover --password-stdin <<<"password of max" >/dev/null
max_t=$(token_of max)
mc=$("$RAPPORT" create contact '{"first_name": "Hand", "last_name": "Off", "owner": "max"}' | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
api "$max_t" PATCH "/api/v1/contact/$mc" '{"owner": "rita"}'
is 200 '"owner":"rita"' "hand a record to someone else"
api "$max_t" GET "/api/v1/contact/$mc"
is 403 'missing: contact.read' "then it is not theirs to read"
# A write the role allows is not a way to read what it does not: only id and version.
api "$max_t" PATCH "/api/v1/contact/$zoe_c" '{}'
is 200 "{\"id\":$zoe_c,\"version\":" "a PATCH of a record one may update but not read"
check '! grep -q zzsecret <<<"$body" && ! grep -q Zoey <<<"$body"' "the PATCH answer shows the record: $body"
api "$rita_t" GET "/api/v1/contact/$zoe_c"
is 200 'zzsecret-zoe' "a reader sees every contact whole"
api "$rita_t" POST /api/v1/contact '{"first_name": "A", "last_name": "B"}'
is 403 'missing: contact.create' "a reader may not create"
check '"$RAPPORT" events tail -n 300 | grep -q "\"type\":\"access.denied\""' "refusals are not in the event log"

kill -TERM $serve_pid; wait $serve_pid; serve_pid=
finish
