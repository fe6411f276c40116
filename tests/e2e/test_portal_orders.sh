#!/usr/bin/env bash
# End-to-end: a portal customer's order tracking and search, the portal's routes in the OpenAPI
# document, and the unusual-order rule on a portal customer's order, against `rapport serve`
# with two customers A and B signed in through mailed links (aiosmtpd).
#  - history: GET /api/v1/order/ID/events in A's session gives placed → paid → shipped, each
#    with its time and origin, and never the hidden fields (owner, unusual) in any payload;
#    B's order's events are refused;
#  - tracking: carrier, tracking_number, tracking_url (type url: a bad address refused, naming
#    the field) readable in A's session;
#  - search: GET plugins/portal/search finds A's ticket (with ي for ی), order (by number, status
#    and tracking number) and the published articles, never B's ticket or order by any
#    parameter, nor an unpublished article; a limited staff role gets its own scope; bad input
#    is named;
#  - OpenAPI: /openapi.json is valid JSON listing the portal's routes (public ones without
#    security), the record view of collaborative, and routes a plugin did not document;
#  - the rule: a customer cannot place an order in the portal (403, nothing stored), so an
#    order placed for them by staff is flagged unusual exactly as any other, and the flag never
#    shows in their session.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
smtp_pid=
trap '[ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; [ -n "$smtp_pid" ] && kill $smtp_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"


mail_init
ids=$("$RAPPORT" eval '
local a = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org", portal_access = true})
local b = crm.create("contact", {first_name = "Bob", last_name = "Other", email = "bob@example.org", portal_access = true})
local oa = crm.create("order", {contact = a.id, owner = "ownerzz"})
local ob = crm.create("order", {contact = b.id, owner = "ownerzz", tracking_number = "TRKB77"})
crm.update("order", ob.id, {status = "paid"})
crm.update("order", ob.id, {status = "shipped"})
local ta = crm.create("ticket", {subject = "یخچال سارا", description = "the fridge hums", contact = a.id})
local tb = crm.create("ticket", {subject = "یخچال باب theirzz", description = "fridge hums too", contact = b.id})
crm.create("article", {title = "نگهداری یخچال", body = "برای یخچال", language = "fa", published = true})
crm.create("article", {title = "Fridge care", body = "Defrost the fridge", language = "en", published = true})
crm.create("article", {title = "Fridge draft secretzz", body = "unpublished fridge", language = "en", published = false})
return table.concat({a.id, b.id, oa.id, ob.id, ta.id, tb.id}, " ")')
read -r A B OA OB TA TB <<<"$ids"
check '[ -n "${TB:-}" ]' "the seed failed: $ids"

smtp_start
portal_serve

portal_sign_in "$tmp/a" sara@example.org > "$tmp/csrf" && mv "$tmp/csrf" "$tmp/a".csrf
portal_sign_in "$tmp/b" bob@example.org > "$tmp/csrf" && mv "$tmp/csrf" "$tmp/b".csrf

# ---- the order moves on, with tracking ----------------------------------------------------
expect 1 'tracking_url' -- update order "$OA" '{"tracking_url": "not a url"}'
"$RAPPORT" update order "$OA" '{"status": "paid", "unusual": true}' >/dev/null
"$RAPPORT" update order "$OA" '{"status": "shipped", "carrier": "Post Express", "tracking_number": "TRKA42", "tracking_url": "https://track.example/TRKA42"}' >/dev/null
c "$tmp/a" GET /api/v1/order/$OA
is 200 '"tracking_url":"https://track.example/TRKA42"' "A reads the tracking URL"
check 'grep -qF "\"carrier\":\"Post Express\"" <<<"$body" && grep -qF "\"tracking_number\":\"TRKA42\"" <<<"$body"' "A misses the carrier or number: $body"
check '! grep -q "\"owner\"\|\"unusual\"" <<<"$body"' "A sees the order's hidden fields: $body"

# ---- its history ------------------------------------------------------------------------------
c "$tmp/a" GET "/api/v1/order/$OA/events?limit=1000"
is 200 '"order.status_changed"' "A reads the order's events"
hist=$(python3 -c 'import json, sys
d = json.load(sys.stdin)["data"]
s = []
for e in d:
    c = e["changes"]
    if e["type"] == "order.created": s.append(("placed", e["at"], e["origin"]))
    elif e["type"] == "order.status_changed": s.append((c["to"], e["at"], e["origin"]))
print(" ".join("%s@%s@%s" % x for x in s))' <<<"$body")
check '[[ "$hist" =~ ^placed@2[0-9-]+T[0-9:.]+Z@script\ paid@2[0-9-]+T[0-9:.]+Z@cli\ shipped@2[0-9-]+T[0-9:.]+Z@cli$ ]]' "the history is not placed, paid, shipped with times and origins: $hist"
check '! grep -q "ownerzz\|\"owner\"\|\"unusual\"" <<<"$body"' "a hidden field is in the events' payloads: $body"
c "$tmp/a" GET "/api/v1/order/$OB/events"
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "A reads B's order's events: $code $body"
check '! grep -q "TRKB77" <<<"$body"' "B's tracking number in A's answer: $body"

# ---- search -----------------------------------------------------------------------------------
# ي (Arabic yeh) finds ی (Persian yeh): A's ticket and the Persian article, never B's ticket.
q=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("يخچال"))')
c "$tmp/a" GET "$P/search?q=$q&lang=fa"
is 200 "\"href\":\"#ticket/$TA\"" "A searches with ي"
check 'grep -qF "\"title\":\"نگهداری یخچال\"" <<<"$body" && grep -qF "\"href\":\"#article/" <<<"$body"' "A's search misses the Persian article: $body"
check '! grep -q "theirzz\|#ticket/$TB\"" <<<"$body"' "A's search finds B's ticket: $body"
c "$tmp/a" GET "$P/search?q=fridge&lang=en"
is 200 "\"href\":\"#ticket/$TA\"" "A searches a ticket's description"
check 'grep -qF "\"title\":\"Fridge care\"" <<<"$body" && ! grep -q "secretzz\|theirzz\|#ticket/$TB\"" <<<"$body"' "fridge as A: $body"
for q in "$OA" "%23$OA" shipped TRKA42; do
    c "$tmp/a" GET "$P/search?q=$q"
    is 200 "\"href\":\"#order/$OA\"" "A finds the order by $q"
done
c "$tmp/a" GET "$P/search?q=shipped"
check '! grep -qF "#order/$OB\"" <<<"$body"' "A's status search lists B's order: $body"
for q in "$OB" TRKB77 theirzz; do
    c "$tmp/a" GET "$P/search?q=$q"
    check '[ "$code" = 200 ] && ! grep -q "#order/$OB\"\|#ticket/$TB\"\|\"tracking_number\":\"TRKB77" <<<"$body"' "A finds B's records by $q: $body"
done
# Parameters a customer might add change nothing of the scope.
c "$tmp/a" GET "$P/search?q=theirzz&entity=ticket&contact=$B&as=contact:$B"
check '[ "$code" = 200 ] && ! grep -q "#ticket/$TB\"" <<<"$body"' "A finds B's ticket with extra parameters: $body"
c "$tmp/b" GET "$P/search?q=fridge"
check 'grep -qF "#ticket/$TB\"" <<<"$body" && ! grep -qF "#ticket/$TA\"" <<<"$body"' "B's search: $body"
c "$tmp/a" GET "$P/search"
is 422 'q: give the words' "a search without q"
c "$tmp/a" GET "$P/search?q=%zz"
is 400 'query string' "a broken escape"
c "$tmp/a" GET "$P/search?q=fridge&lang=x%3Cy"
is 422 'lang: ' "a bad language"
c "$tmp/a" GET "$P/search?q=$(printf 'a%.0s' $(seq 300))"
is 422 'q: at most 256 bytes' "a long q"
code=$(curl -s -o /dev/null -w '%{http_code}' "$U$P/search?q=fridge")
check '[ "$code" = 401 ]' "search without signing in: $code"
# A staff user with a limited role (agent: its own tickets) searches in that role's scope.
expect 0 'role agent set' -- roles set agent '{"entities": {"ticket": {"read": "own"}, "order": {"read": "own"}}}'
"$RAPPORT" users add kim --role agent --password-stdin <<<"kim staff password" >/dev/null
tok=$(token_of kim)
req GET "$P/search?q=fridge"
check '[ "$code" = 200 ] && ! grep -q "#ticket/" <<<"$body"' "a limited staff role finds tickets it may not read: $code $body"

# ---- the OpenAPI document ---------------------------------------------------------------------
doc=$(curl -s "$U/openapi.json")
out=$(python3 -c 'import json, sys
d = json.load(sys.stdin)
p = d["paths"]
pre = "/api/v1/plugins/portal/"
for path, m in [("login/link", "post"), ("login/token", "post"), ("login/password", "post"),
                ("login/finish", "post"), ("brand", "get"), ("articles", "get"),
                ("articles/{slug}", "get"), ("articles/{slug}/helpful", "post"),
                ("privacy", "get")]:
    op = p[pre + path][m]
    assert op["security"] == [], path + " is public but asks for security"
    assert op["summary"] and "does not document" not in op["summary"], path
for path, m in [("password", "post"), ("logout", "post"), ("me", "get"), ("search", "get"),
                ("consent", "get"), ("consent", "post"), ("forget", "post")]:
    op = p[pre + path][m]
    assert "security" not in op, path + " is a signed-in route"
    assert "does not document" not in op["summary"], path
assert any(x["name"] == "q" and x["required"] for x in p[pre + "search"]["get"]["parameters"])
assert any(x["name"] == "slug" and x["in"] == "path" for x in p[pre + "articles/{slug}"]["get"]["parameters"])
# The built-in plugins document every route they serve (collaborative, analytical, portal).
undoc = [(k, m) for k, v in p.items() for m, o in v.items()
         if isinstance(o, dict) and "does not document" in o.get("summary", "")]
assert not undoc, "routes left undocumented: %r" % undoc
assert p["/api/v1/plugins/collaborative/thread/{entity}/{id}"]["post"]["summary"]
assert p["/api/v1/plugins/analytical/rfm"]["get"]["parameters"]
assert "/api/v1/{entity}/{id}/timeline" in p
assert p["/api/v1/order/{id}"]["get"]
assert "tracking_url" in d["components"]["schemas"]["order"]["properties"]
assert d["components"]["schemas"]["order"]["properties"]["tracking_url"]["format"] == "uri"
# Every operation is whole: a summary, responses, and each {name} of its path declared.
import re
for path, ops in p.items():
    names = set(re.findall(r"{([a-z_]+)}", path))
    for m, op in ops.items():
        if m == "parameters": continue
        assert m in ("get", "post", "put", "patch", "delete", "head"), path + " " + m
        assert op.get("summary") and op.get("responses"), path + " " + m
        have = {x["name"] for x in op.get("parameters", []) + ops.get("parameters", []) if x.get("in") == "path"}
        assert names <= have, "%s %s: %s not declared" % (m, path, names - have)
print("ok")' <<<"$doc" 2>&1)
check '[ "$out" = ok ]' "the OpenAPI document: $out"

# ---- the unusual-order rule on a portal customer's order ----------------------------------------
before=$(count order)
c "$tmp/a" POST /api/v1/order "{\"contact\": $A, \"total\": \"1.00\"}"
is 403 'may not create order' "a customer placing an order in the portal"
check '[ "$(count order)" = "$before" ]' "a refused portal order was stored"
# So orders reach a portal customer through staff (or a shop's import): the rule treats them as
# any other. Three usual orders, then one far above.
big=$("$RAPPORT" eval "
local function order(total)
  local o = crm.create('order', {contact = $A, owner = 'ownerzz'})
  crm.create('order_line', {order = o.id, unit_price = total})
  crm.update('order', o.id, {status = 'paid'})
  return o.id
end
for _, t in ipairs({'20.00', '30.00', '25.00'}) do order(t) end
return order('900.00')")
for _ in $(seq 100); do
    [ "$("$RAPPORT" eval "return crm.get('order', $big).unusual")" = true ] && break
    sleep 0.1
done
expect 0 '"unusual": true' -- get order "$big"
check '[ "$(count activity --where "{\"related_id\": $big}")" = 1 ]' "no task for the unusual order"
c "$tmp/a" GET /api/v1/order/$big
check '[ "$code" = 200 ] && ! grep -q "\"unusual\"" <<<"$body"' "A sees the unusual flag: $body"
c "$tmp/a" GET "/api/v1/order/$big/events"
check '[ "$code" = 200 ] && grep -q "\"to\":\"paid\"" <<<"$body" && ! grep -q "unusual\|ownerzz" <<<"$body"' "the flag in A's events (or the rule's update of it): $body"

finish
