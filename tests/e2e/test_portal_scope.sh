#!/usr/bin/env bash
# End-to-end: the portal role, as a customer would try to break it. Two customers A and B
# with accounts, orders, order lines, invoices, tickets and interactions (public and staff's
# internal ones); acting as A's contact (`--as contact:ID`), every door — find, get, count,
# search, aggregate, export, crm.events, crm.history, Lua, the timeline — shows A's records
# only; B's are missing by id, as a record that is not there; hidden fields cannot be
# filtered or sorted on; A cannot open a ticket for B, re-point its ticket to B, read internal
# notes, or move its contact into B's account; a deleted or missing contact cannot act at all.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
# Any run with the plugins loaded offers the portal role (operational and collaborative).
"$RAPPORT" plugins >/dev/null
expect 0 '"principal": "contact"' -- roles show portal
expect 0 '"visibility": "public"' -- roles show portal

ids=$("$RAPPORT" eval '
local out = {}
for _, n in ipairs({"a", "b"}) do
  local acc = crm.create("account", {name = "Acct" .. n})
  local c = crm.create("contact", {last_name = "Cust" .. n, email = n .. "@example.com", account = acc.id})
  local o = crm.create("order", {contact = c.id, account = acc.id})
  local ol = crm.create("order_line", {order = o.id, description = "linezz" .. n, quantity = "1", unit_price = "7.00"})
  local inv = crm.create("invoice", {order = o.id})
  local t = crm.create("ticket", {subject = "helpzz" .. n, contact = c.id})
  local pub = crm.collaborative.log({channel = "email", direction = "in", contact = c.id,
      subject = "publiczz" .. n, body = "hello"}, {{"ticket", t.id}, {"contact", c.id}})
  local int = crm.collaborative.log({channel = "note", direction = "internal", visibility = "internal",
      contact = c.id, body = "internalzz" .. n}, {{"ticket", t.id}, {"contact", c.id}})
  out[#out + 1] = table.concat({acc.id, c.id, o.id, ol.id, inv.id, t.id, pub.id, int.id}, " ")
end
return out[1] .. " " .. out[2]')
read -r A_acc A_c A_o A_ol A_inv A_t A_pub A_int B_acc B_c B_o B_ol B_inv B_t B_pub B_int <<<"$ids"
check '[ -n "${B_int:-}" ]' "the seed failed: $ids"
A="contact:$A_c"

# ---- reads: find, count, get, by every entity -------------------------------------------
for pair in "account:$A_acc:$B_acc" "contact:$A_c:$B_c" "order:$A_o:$B_o" "order_line:$A_ol:$B_ol" \
            "invoice:$A_inv:$B_inv" "ticket:$A_t:$B_t" "interaction:$A_pub:$B_pub"; do
    IFS=: read -r ent mine theirs <<<"$pair"
    out=$("$RAPPORT" --as "$A" find "$ent" 2>&1)
    got=$(grep -o '^{"id":[0-9]*' <<<"$out" | cut -d: -f2 | tr '\n' ' ')
    check '[ "$got" = "$mine " ]' "find $ent as A: wanted only $mine, got [$got]: $out"
    check '[ "$("$RAPPORT" --as "$A" count "$ent")" = 1 ]' "count $ent as A is not 1"
    expect 0 "\"id\": $mine" -- --as "$A" get "$ent" "$mine"
    expect 1 "no $ent with id $theirs" -- --as "$A" get "$ent" "$theirs"
    # A filter narrows the scope, never widens it.
    check '[ "$("$RAPPORT" --as "$A" count "$ent" --where "{\"id\": $theirs}")" = 0 ]' "count $ent by B's id as A is not 0"
done
expect 1 'may not read deal' -- --as "$A" find deal
expect 1 'may not read lead' -- --as "$A" count lead
# Staff's internal note on A's own ticket is not A's to read.
expect 1 "no interaction with id $A_int" -- --as "$A" get interaction "$A_int"
check '[ "$("$RAPPORT" --as "$A" count interaction --where "{\"visibility\": \"internal\"}")" = 0 ]' "A counts internal interactions"
# The links of A's public interaction (its ticket, contact, account), not those of the notes.
out=$("$RAPPORT" --as "$A" find interaction_link 2>&1)
got=$(grep -o '"interaction":[0-9]*' <<<"$out" | sort -u | tr '\n' ' ')
check '[ "$got" = "\"interaction\":$A_pub " ] && [ "$(grep -c "\"target\"" <<<"$out")" = 3 ]' "A reads links of interactions it may not read: $out"
# Hidden fields: not shown, not filtered on, not sorted on.
out=$("$RAPPORT" --as "$A" get ticket "$A_t")
check '! grep -q "\"owner\"" <<<"$out"' "A sees the ticket's hidden owner: $out"
expect 1 'hidden' -- --as "$A" find order --where '{"unusual": false}'
expect 1 'hidden' -- --as "$A" find ticket --order owner
expect 1 'hidden' -- --as "$A" aggregate order --group-by owner

# ---- search, aggregate, export ----------------------------------------------------------
out=$("$RAPPORT" --as "$A" search helpzzb 2>&1)
check '! grep -q "\"id\"" <<<"$out"' "search as A finds B's ticket: $out"
out=$("$RAPPORT" --as "$A" search internalzza 2>&1)
check '! grep -q "\"id\"" <<<"$out"' "search as A finds the internal note: $out"
out=$("$RAPPORT" --as "$A" search helpzza 2>&1)
check 'grep -q "\"entity\":\"ticket\",\"id\":$A_t" <<<"$out"' "search as A misses A's ticket: $out"
out=$("$RAPPORT" --as "$A" aggregate invoice --measures count,sum:total --json 2>&1)
check 'grep -q "\"count\": *1" <<<"$out" && grep -q "7.00\|\"sum:total\": *7" <<<"$out"' "aggregate as A counts more than A's invoice: $out"
"$RAPPORT" --as "$A" export invoice --format csv -o "$tmp/inv.csv" 2>/dev/null
check '[ "$(tail -n +2 "$tmp/inv.csv" | wc -l)" = 1 ] && grep -q "^$A_inv," "$tmp/inv.csv"' "export as A: $(cat "$tmp/inv.csv" 2>/dev/null)"

# ---- the event log and Lua --------------------------------------------------------------
out=$("$RAPPORT" --as "$A" eval 'local t = {}
for _, e in ipairs(crm.events({limit = 1000})) do t[#t + 1] = e.entity .. ":" .. e.record_id end
return table.concat(t, " ")' 2>&1)
for id in "ticket:$B_t" "order:$B_o" "invoice:$B_inv" "contact:$B_c" "interaction:$A_int" "interaction:$B_pub"; do
    check '! grep -qw "$id" <<<"$out"' "crm.events as A shows $id: $out"
done
check 'grep -qw "ticket:$A_t" <<<"$out" && grep -qw "invoice:$A_inv" <<<"$out"' "crm.events as A misses A's: $out"
out=$("$RAPPORT" --as "$A" eval "return #crm.history('ticket', $B_t), #crm.history('interaction', $A_int), #crm.history('ticket', $A_t) > 0" 2>&1)
check '[ "$(echo $out)" = "0 0 true" ]' "crm.history as A: wanted 0 0 true, got: $out"
out=$("$RAPPORT" --as "$A" eval "return crm.get('order', $B_o)" 2>&1)
check '[ "$out" = nil ]' "crm.get of B's order as A: wanted nil, as for a missing one, got: $out"
expect 1 "no ticket with id $B_t" -- --as "$A" explain ticket "$B_t" subject
expect 0 'helpzza' -- --as "$A" explain ticket "$A_t" subject
expect 1 'hidden' -- --as "$A" explain ticket "$A_t" owner
out=$("$RAPPORT" --as "$A" events tail -n 1000 2>&1)
check 'grep -q "\"record_id\":$A_t,.*\"entity\":\"ticket\"\|\"entity\":\"ticket\".*\"record_id\":$A_t" <<<"$out" && ! grep -q "zzb\|internalzz" <<<"$out"' "events tail as A: $out"
out=$("$RAPPORT" --as "$A" eval 'local n = 0 for _ in ipairs(crm.find("order_line", {})) do n = n + 1 end return n' 2>&1)
check '[ "$out" = 1 ]' "crm.find as A: $out"
expect 1 'may not change settings' -- --as "$A" eval 'crm.set_config("roles.portal", nil)'

# ---- writes -----------------------------------------------------------------------------
before=$(count ticket)
expect 1 'would not be linked' -- --as "$A" create ticket "{\"subject\": \"for b\", \"contact\": $B_c}"
check '[ "$(count ticket)" = "$before" ]' "a refused ticket was stored"
out=$("$RAPPORT" --as "$A" create ticket '{"subject": "mine"}' 2>&1)
check 'grep -q "\"contact\": *$A_c" <<<"$out"' "a ticket opened by A is not A's: $out"
expect 1 "is not linked" -- --as "$A" update ticket "$A_t" "{\"contact\": $B_c}"
check '[ "$("$RAPPORT" get ticket "$A_t" | grep -o "\"contact\": *[0-9]*" | grep -o "[0-9]*$")" = "$A_c" ]' "A's ticket was re-pointed"
expect 1 "no ticket with id $B_t" -- --as "$A" update ticket "$B_t" '{"subject": "mine now"}'
expect 1 'may not delete ticket' -- --as "$A" delete ticket "$A_t"
expect 1 'may not update order' -- --as "$A" update order "$A_o" '{"total": "0.00"}'
expect 1 'read-only' -- --as "$A" update contact "$A_c" "{\"account\": $B_acc}"
check '[ "$("$RAPPORT" --as "$A" count account --where "{\"id\": $B_acc}")" = 0 ]' "A reached B's account"
expect 1 'hidden' -- --as "$A" update contact "$A_c" '{"owner": "sam"}'
expect 0 '' -- --as "$A" update contact "$A_c" '{"first_name": "Alice"}'
expect 1 "no contact with id $B_c" -- --as "$A" update contact "$B_c" '{"first_name": "Bob"}'
expect 1 'may not create interaction' -- --as "$A" create interaction '{"channel": "portal", "direction": "in"}'

# ---- the timeline (collaborative) -------------------------------------------------------
out=$("$RAPPORT" --as "$A" timeline ticket "$A_t" 2>&1)
check 'grep -q publiczza <<<"$out" && ! grep -q internalzz <<<"$out"' "A's ticket timeline as A: $out"
out=$("$RAPPORT" timeline ticket "$A_t" 2>&1)
check 'grep -q internalzza <<<"$out"' "the installation's timeline lacks the note: $out"
expect 1 "no ticket with id $B_t" -- --as "$A" timeline ticket "$B_t"
out=$("$RAPPORT" --as "$A" timeline contact "$A_c" 2>&1)
check '! grep -q "zzb\|internalzz" <<<"$out" && grep -q helpzza <<<"$out"' "A's contact timeline as A: $out"

# ---- who may act ------------------------------------------------------------------------
expect 1 'is not for records of contact' -- --as "$A" --role admin find order
expect 2 '--role goes with --as ENTITY:ID' -- --role portal find order
"$RAPPORT" roles set clerk '{"entities": {"*": {"read": "all"}}}' >/dev/null
expect 1 'is not for records of contact' -- --as "$A" --role clerk find order
expect 1 'is not for records of account' -- --as "account:$A_acc" find order
expect 1 'contact 99999 does not exist' -- --as contact:99999 find order
expect 1 'is not a record' -- --as contact:x find order
expect 1 'is not a user name' -- users add 'contact:1' --role clerk --password-stdin <<<"a long password"
"$RAPPORT" delete contact "$B_c" >/dev/null
expect 1 "contact $B_c is deleted" -- --as "contact:$B_c" find order
# The events of what A did carry A as the actor.
out=$("$RAPPORT" events tail -n 50 2>&1)
check 'grep -q "\"actor\":\"record:$A\"" <<<"$out"' "A's changes are not A's in the log"

# Who else changed A's records is not A's to know by name: a staff user and a rule show as
# their kind alone in events, history, records and A's download; A's own writes stay A's.
"$RAPPORT" users add zelda --role admin --password-stdin <<<"password of zelda" >/dev/null
"$RAPPORT" --as zelda update ticket "$A_t" '{"priority": "high"}' >/dev/null
"$RAPPORT" --as "$A" update ticket "$A_t" '{"description": "still broken"}' >/dev/null
out=$("$RAPPORT" --as "$A" get ticket "$A_t" 2>&1)
check 'grep -q "\"updated_by\": \"record:$A\"" <<<"$out" && ! grep -q zelda <<<"$out"' "A's ticket's actors: $out"
"$RAPPORT" --as zelda update ticket "$A_t" '{"priority": "low"}' >/dev/null
out=$("$RAPPORT" --as "$A" get ticket "$A_t" 2>&1)
check 'grep -q "\"updated_by\": \"user\"" <<<"$out" && ! grep -q zelda <<<"$out"' "staff's name in A's ticket: $out"
out=$("$RAPPORT" --as "$A" eval "local t = {} for _, e in ipairs(crm.history('ticket', $A_t)) do t[#t + 1] = e.actor end return table.concat(t, ' ')" 2>&1)
check 'grep -qw user <<<"$out" && grep -q "record:$A" <<<"$out" && ! grep -q zelda <<<"$out"' "crm.history's actors as A: $out"
out=$("$RAPPORT" --as "$A" export-subject contact "$A_c" 2>&1)
check 'grep -q "\"actor\": *\"user\"" <<<"$out" && ! grep -q zelda <<<"$out"' "A's download names staff: $(head -c 300 <<<"$out")"
out=$("$RAPPORT" eval "local t = {} for _, e in ipairs(crm.history('ticket', $A_t)) do t[#t + 1] = e.actor end return table.concat(t, ' ')" 2>&1)
check 'grep -q "user:zelda" <<<"$out"' "staff lost the actor's name: $out"

finish
