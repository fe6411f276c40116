#!/usr/bin/env bash
# End-to-end: `rapport import` and `rapport export` on real files — the csv-spectrum edge cases,
# a real CRM's contact export — and on bad ones: every bad row named by line and column, all or
# nothing, or the good rows with --skip-bad and a reject file; the business rules run.
# The files are in tests/fixtures/ (see its README); the whole 500-contact export, one of the
# large reference sets outside the repository, is imported too when $RP_SHARED_DATA has it.
set -u
RAPPORT=${RAPPORT:-build/rapport}
RP_SOURCE=${RP_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
FIXTURES="$RP_SOURCE/tests/fixtures"
DATA=${RP_SHARED_DATA:-$RP_SOURCE/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
. "$(dirname "$0")/lib.sh"

"$RAPPORT" init >/dev/null

# ---- csv-spectrum: every edge case parses as its expected JSON says --------------------------
if [ -d "$FIXTURES/csv_spectrum/csvs" ]; then
    for csv in "$FIXTURES/csv_spectrum/csvs"/*.csv; do
        name=$(basename "$csv" .csv)
        entity="spec_$name"
        header=$(head -1 "$csv" | tr -d '\r')
        [ -n "$header" ] || continue
        spec=$(tr ',' '\n' <<<"$header" | sed 's/.*/"&": {"type": "text"}/' | paste -sd, -)
        "$RAPPORT" define "$entity" "{\"fields\": {$spec}}" >/dev/null
        expect 0 "created" -- import "$entity" "$csv" --quiet
        # The stored rows, against the expected parse (an empty cell is an absent field).
        cat > "$tmp/cmp.lua" <<'LUA'
local entity, path = arg[1], arg[2]
local f = assert(io.open(path))
local want = crm.json.decode(f:read("a"))
f:close()
local got = crm.find(entity, {order = "id", limit = 1000})
if #got ~= #want then error(("%d rows, wanted %d"):format(#got, #want)) end
for i, row in ipairs(want) do
  for k, v in pairs(row) do
    local g = got[i][k]
    if v == "" then v = nil end
    if g ~= v then error(("row %d %s: %q, wanted %q"):format(i, k, tostring(g), tostring(v))) end
  end
end
return "same"
LUA
        out=$("$RAPPORT" run "$tmp/cmp.lua" "$entity" "$FIXTURES/csv_spectrum/json/$name.json" 2>&1)
        check '[ "$out" = same ]' "csv-spectrum $name: $out"
    done
else
    bad "no csv-spectrum corpus at $FIXTURES/csv_spectrum"
fi

# ---- a real CRM's contact export, with a map, through the operational plugin's rules ---------
echo '{"email_work": "email", "phone_work": "phone", "email_home": null}' > "$tmp/map.json"
crm="$FIXTURES/crm_import"
expect 0 "50 created, 0 updated, 0 skipped" -- \
    import contact "$crm/atomic_crm_test_contacts_50.csv" --map "$tmp/map.json" --quiet
expect 0 "leaving out columns \"gender\"" -- \
    import contact "$crm/atomic_crm_contacts_import_sample.csv" --dry-run --quiet
check '[ "$(count contact)" = 50 ]' "the real sample: $(count contact) contacts"
# The hooks ran: phones took their one form, and every record has its event.
out=$("$RAPPORT" find contact --where '{"phone": {"contains": "-"}}' 2>/dev/null | wc -l)
check '[ "$out" = 0 ]' "phones kept their dashes: $out"
out=$("$RAPPORT" eval 'return crm.count("contact", {phone = {starts_with = "1"}}) > 0' 2>&1)
check '[ "$out" = true ]' "no phone was imported at all: $out"
out=$("$RAPPORT" events tail -n 1000 2>/dev/null | grep -c '"contact.created"')
check '[ "$out" = 50 ]' "contact.created events: $out"

# The whole export (500 contacts), when the reference data sets are beside the repository.
full="$DATA/crm_import/atomic_crm_test_contacts.csv"
if [ -f "$full" ]; then
    db_full="$tmp/full.db"
    "$RAPPORT" --db "$db_full" init >/dev/null
    expect 0 "500 created, 0 updated, 0 skipped" -- \
        --db "$db_full" import contact "$full" --map "$tmp/map.json" --quiet
    out=$("$RAPPORT" --db "$db_full" events tail -n 1000 2>/dev/null | grep -c '"contact.created"')
    check '[ "$out" = 500 ]' "the whole export: contact.created events: $out"
else
    echo "skip: the whole Atomic CRM export (500 contacts) is not at $full; set RP_SHARED_DATA" \
         "to the reference data sets to import it too"
fi

# ---- bad rows: named by line and column; nothing stored, or the good rows with --skip-bad ----
printf 'First Name,Last Name,Email,Phone\nAda,Lovelace,ADA@example.com,+44 20 7946 0958\nBob,,bob@example.com,\nCara,Diaz,not-an-email,\n"Dan ""D""",Evans,dan@example.com,"555\n0101"\nEve,Fox,eve@example.com,call me\n' > "$tmp/bad.csv"
before=$(count contact)
out=$("$RAPPORT" import contact "$tmp/bad.csv" --dry-run 2>&1); st=$?
check '[ $st = 1 ]' "a dry run over bad rows exits 1: $st"
check 'grep -qF "bad.csv:3: column \"Last Name\": RP-E1205: contact.last_name is required" <<<"$out"' "dry run, line 3: $out"
check 'grep -qF "bad.csv:4: column \"Email\": RP-E1204: contact.email: \"not-an-email\" is not an email" <<<"$out"' "dry run, line 4: $out"
check 'grep -qF "bad.csv:5: column \"Phone\"" <<<"$out"' "dry run, line 5 (a quoted field over two lines): $out"
check 'grep -qF "bad.csv:7: column \"Phone\": RP-E1401: contact.phone: \"call me\" is not a phone number" <<<"$out"' "dry run, line 7: $out"
check 'grep -qF "dry run, nothing stored: 5 rows, 1 would be created, 4 bad" <<<"$out"' "dry-run summary: $out"
check '[ "$(count contact)" = "$before" ]' "a dry run stored something"
expect 1 "nothing imported: 4 of 5 rows are bad" -- import contact "$tmp/bad.csv"
check '[ "$(count contact)" = "$before" ]' "a refused import stored something"
expect 0 "1 created, 0 updated, 4 skipped" -- import contact "$tmp/bad.csv" --skip-bad \
    --rejects "$tmp/rejects.csv"
check '[ "$(count contact)" = $((before + 1)) ]' "--skip-bad: $(count contact) contacts"
check '[ "$(wc -l < "$tmp/rejects.csv")" -ge 5 ] && grep -q "^7,.*call me" "$tmp/rejects.csv" && head -1 "$tmp/rejects.csv" | grep -q "^line,error,row$"' \
    "the reject file: $(cat "$tmp/rejects.csv")"
out=$("$RAPPORT" find contact --where '{"last_name": "Lovelace"}' --fields email,phone 2>/dev/null)
check 'grep -qF "\"email\":\"ada@example.com\",\"phone\":\"+442079460958\"" <<<"$out"' "normalised: $out"

# A quoted first field over two lines: the row is named by the line it starts on, and goes
# whole into the reject file.
printf 'title,last_name,phone
"two
lines",Multi,not a phone
' > "$tmp/multi.csv"
out=$("$RAPPORT" import contact "$tmp/multi.csv" --skip-bad --rejects "$tmp/multi.rej" 2>&1)
check 'grep -qF "multi.csv:2: column \"phone\"" <<<"$out" && grep -qF "\"two" "$tmp/multi.rej" && grep -qF "lines\",Multi" "$tmp/multi.rej"' "multi-line first field: $out / $(cat "$tmp/multi.rej")"

# ---- whole-file problems: refused before any row, with the line ----------------------------
printf 'first_name,last_name\nAda,"Love\n' > "$tmp/open.csv"
expect 1 "open.csv:2:" -- import contact "$tmp/open.csv"
printf 'first_name,surname\nAda,Lovelace\n' > "$tmp/nolast.csv"
expect 1 "no column fills contact.last_name, which is required" -- import contact "$tmp/nolast.csv"
expect 1 "(--strict)" -- import contact "$tmp/nolast.csv" --strict
expect 0 "1 created" -- import contact "$tmp/nolast.csv" --map <(echo '{"surname": "last_name"}')
expect 1 "the map sends column \"surname\" to \"nickname\"" -- \
    import contact "$tmp/nolast.csv" --map <(echo '{"surname": "nickname"}')
: > "$tmp/empty.csv"
expect 1 "the file is empty" -- import contact "$tmp/empty.csv"
expect 1 "unknown entity" -- import nosuch "$tmp/bad.csv"
expect 2 "usage: rapport import" -- import contact
expect 2 "format \"xml\"" -- import contact "$tmp/bad.csv" --format xml

# ---- --upsert-by: a second import updates instead of duplicating ---------------------------
printf 'last_name,email,title\nLovelace,ada@example.com,Countess\nNew,new@example.com,\n' > "$tmp/up.csv"
n=$(count contact)
expect 0 "1 created, 1 updated, 0 skipped" -- import contact "$tmp/up.csv" --upsert-by email
check '[ "$(count contact)" = $((n + 1)) ]' "upsert duplicated: $(count contact)"
out=$("$RAPPORT" find contact --where '{"email": "ada@example.com"}' --fields title 2>/dev/null)
check 'grep -q Countess <<<"$out"' "upsert did not update: $out"
expect 2 "has no such field" -- import contact "$tmp/up.csv" --upsert-by nickname
# The key is compared as the rules store it: an email in capitals finds the lower-case one.
printf 'last_name,email,title
Lovelace,ADA@EXAMPLE.COM,Mathematician
' > "$tmp/up2.csv"
n=$(count contact)
expect 0 "0 created, 1 updated" -- import contact "$tmp/up2.csv" --upsert-by email
check '[ "$(count contact)" = "$n" ]' "an upsert by a differently typed email duplicated"

# A partial row finds its record by a key in another form (the phone as typed elsewhere).
"$RAPPORT" config set plugin.operational.default_country '"PT"' >/dev/null
"$RAPPORT" create contact '{"last_name": "Faro", "phone": "+351912345678"}' >/dev/null
printf 'phone,city
912 345 678,Faro
' > "$tmp/partial.csv"
n=$(count contact)
expect 0 "0 created, 1 updated" -- import contact "$tmp/partial.csv" --upsert-by phone
check '[ "$(count contact)" = "$n" ] && [ "$(count contact --where "{\"city\": \"Faro\"}")" = 1 ]' "partial upsert by phone"

# Order lines from CSV: the cells are text, the totals exact.
"$RAPPORT" create order '{}' >/dev/null
oid=$("$RAPPORT" find order --order -id --limit 1 --fields id 2>/dev/null | sed 's/.*"id":\([0-9]*\).*/\1/')
"$RAPPORT" create product '{"sku": "IMP-1", "name": "Imported", "price": "3.30"}' >/dev/null
pid=$("$RAPPORT" find product --where '{"sku": "IMP-1"}' --fields id 2>/dev/null | sed 's/.*"id":\([0-9]*\).*/\1/')
printf 'order,product,unit_price,quantity
%s,,10.00,2
%s,%s,,3
' "$oid" "$oid" "$pid" > "$tmp/lines.csv"
expect 0 "2 created" -- import order_line "$tmp/lines.csv"
out=$("$RAPPORT" get order "$oid" 2>&1)
check 'grep -qF "\"total\": \"29.90\"" <<<"$out"' "order total after a CSV import of its lines: $out"
printf 'order
%s
%s
' "$oid" "$oid" > "$tmp/invoices.csv"
expect 0 "2 created" -- import invoice "$tmp/invoices.csv"
out=$("$RAPPORT" find invoice --order seq --fields number,total 2>/dev/null)
check 'grep -qF "\"number\":\"INV-000001\",\"total\":\"29.90\"" <<<"$out" && grep -qF "INV-000002" <<<"$out"' "invoices from CSV: $out"

# ---- JSON lines and vCard --------------------------------------------------------------------
printf '{"last_name": "Json", "email": "J@Example.com"}\n\n{"last_name": 3\n["not", "an object"]\n' > "$tmp/in.jsonl"
out=$("$RAPPORT" import contact "$tmp/in.jsonl" --skip-bad --rejects "$tmp/j.rej" 2>&1)
check 'grep -qF "in.jsonl:3: not JSON: column" <<<"$out" && grep -qF "in.jsonl:4: each line must be a JSON object" <<<"$out" && grep -qF "1 created, 0 updated, 2 skipped" <<<"$out"' "jsonl: $out"
printf 'BEGIN:VCARD\r\nVERSION:3.0\r\nN:Hopper;Grace;;;\r\nEMAIL:GRACE@navy.example\r\nTEL;TYPE=CELL:+1 202 555 0199\r\nTITLE:Rear Admiral\\, USN\r\nBDAY:19061209\r\nNOTE:folded\r\n  across lines\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nFN:Alan Turing\r\nEND:VCARD\r\n' > "$tmp/cards.vcf"
expect 0 "2 created" -- import contact "$tmp/cards.vcf"
out=$("$RAPPORT" find contact --where '{"last_name": {"in": ["Hopper", "Turing"]}}' --order last_name --fields first_name,mobile,title,birthday 2>/dev/null)
check 'grep -qF "\"birthday\":\"1906-12-09\",\"first_name\":\"Grace\",\"mobile\":\"+12025550199\",\"title\":\"Rear Admiral, USN\"" <<<"$out" && grep -qF "\"first_name\":\"Alan\"" <<<"$out"' "vcf: $out"
printf 'BEGIN:VCARD\nVERSION:3.0\nFN:Never Ends\n' > "$tmp/open.vcf"
expect 1 "line 1: BEGIN:VCARD without END:VCARD" -- import contact "$tmp/open.vcf"

# ---- export round-trips with import ------------------------------------------------------
for fmt in csv jsonl vcf; do
    db2="$tmp/copy-$fmt.db"
    "$RAPPORT" --db "$db2" init >/dev/null
    expect 0 "records written" -- export contact --format "$fmt" -o "$tmp/all.$fmt"
    expect 0 "skipped" -- --db "$db2" import contact "$tmp/all.$fmt" --quiet
    check '[ "$("$RAPPORT" --db "$db2" count contact 2>/dev/null)" = "$(count contact)" ]' \
        "$fmt round trip: $("$RAPPORT" --db "$db2" count contact) of $(count contact)"
    a=$("$RAPPORT" find contact --order id --limit 10000 --fields first_name,last_name,email,phone 2>/dev/null | sed 's/"id":[0-9]*,"version":[0-9]*,//')
    b=$("$RAPPORT" --db "$db2" find contact --order id --limit 10000 --fields first_name,last_name,email,phone 2>/dev/null | sed 's/"id":[0-9]*,"version":[0-9]*,//')
    check '[ "$a" = "$b" ]' "$fmt round trip changed the records"
done

# ---- iCalendar: the meetings --------------------------------------------------------------
"$RAPPORT" create activity '{"kind": "meeting", "subject": "Kick-off; scope, plan", "due_at": "2026-03-02T09:00:00Z", "ends_at": "2026-03-02T10:30:00Z", "location": "Room 1"}' >/dev/null
"$RAPPORT" create activity '{"kind": "call", "subject": "Not a meeting", "due_at": "2026-03-02T11:00:00Z"}' >/dev/null
out=$("$RAPPORT" export activity --format ics 2>&1)
check 'grep -q "^BEGIN:VCALENDAR" <<<"$out" && grep -qF "SUMMARY:Kick-off\\; scope\\, plan" <<<"$out" && grep -q "^DTSTART:20260302T090000Z" <<<"$out" && grep -q "^DTEND:20260302T103000Z" <<<"$out" && ! grep -q "Not a meeting" <<<"$out" && grep -q "^END:VCALENDAR" <<<"$out"' "ics: $out"
expect 1 "iCalendar is for meetings" -- export contact --format ics
expect 1 "vCard is for people" -- export product --format vcf

finish
