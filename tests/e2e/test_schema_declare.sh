#!/usr/bin/env bash
# End-to-end: a scripts folder that declares its entity with crm.schema.declare, as an admin
# ships it release after release — loaded at every command, writing nothing when nothing
# changed, adding what a release gained, refusing (with nothing stored) what needs a migration,
# running each migration once, rolling a failing one back — and `rapport schema diff` telling
# what the next load would do while leaving the file byte for byte as it was.
set -u
# The bare core: the entity is the scripts' own.
export RAPPORT_PLUGINS_BUILTIN=0
RAPPORT=${RAPPORT:-build/rapport}
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
export RAPPORT_SCRIPTS="$tmp/scripts"
mkdir -p "$RAPPORT_SCRIPTS"
"$RAPPORT" init >/dev/null

hash() { sha256sum "$RAPPORT_DB" | cut -d' ' -f1; }
# events TYPE: how many events of TYPE the log holds.
events() { "$RAPPORT" events tail -n 100000 2>/dev/null | grep -c "\"type\":\"$1\""; }
all_events() { "$RAPPORT" events tail -n 100000 2>/dev/null | wc -l; }
# release FIELDS [MIGRATIONS]: the script as a release ships it.
release() {
    {
        printf '%s\n' "${2-}"
        printf 'crm.schema.declare("pet", {label = "Pet", fields = {\n%s\n}})\n' "$1"
    } > "$RAPPORT_SCRIPTS/pets.lua"
}
V1='name = {type = "text", required = true, searchable = true},
  age = {type = "text"}, tag = {type = "text"}, nick = {type = "text", searchable = true},
  chip = {type = "text", unique = true}'

# ---- release 1: diff first, then the first load creates the entity ----------------------------
release "$V1"
h0=$(hash)
out=$("$RAPPORT" schema diff 2>&1); st=$?
check '[ $st = 3 ] && grep -qx "create entity pet (fields: age chip name nick tag)" <<<"$out"' \
    "diff of a new entity: ($st) $out"
check '[ "$(hash)" = "$h0" ]' "schema diff changed the file"
out=$("$RAPPORT" schema diff --json 2>&1)
check 'grep -q "\"type\": \"schema.entity_defined\"" <<<"$out" && grep -q "\"refused\": \[\]" <<<"$out"' \
    "diff --json: $out"
expect 0 "" -- eval 'return 1'
check '[ "$(events schema.entity_defined)" = 1 ]' "the first load defines pet once"
"$RAPPORT" create pet '[{"name": "Rex", "age": "3", "tag": "a", "nick": "fluffy", "chip": "c1"},
                        {"name": "Tom", "age": "7", "tag": "a", "chip": "c2"}]' >/dev/null

# Loads that find nothing to do write nothing: no event, the same bytes.
h1=$(hash) e1=$(all_events)
expect 0 "" -- eval 'return 1'
expect 0 "" -- eval 'return 1'
check '[ "$(hash)" = "$h1" ] && [ "$(all_events)" = "$e1" ]' "a matching declaration wrote something"
expect 0 "nothing would change" -- schema diff
check '[ "$(hash)" = "$h1" ]' "an empty schema diff changed the file"

# ---- release 2: a new field, added once ---------------------------------------------------------
V2="$V1, color = {type = \"text\"}"
release "$V2"
expect 3 "add field pet.color" -- schema diff
expect 0 "" -- eval 'return 1'
expect 0 "" -- eval 'return 1'
check '[ "$(events schema.field_added)" = 1 ]' "color added $(events schema.field_added) times"
expect 0 text -- eval 'return crm.schema.get("pet").fields.color.type'

# ---- incompatible releases: refused, naming field, difference and migration; nothing stored ---
h2=$(hash) e2=$(all_events)
release "${V2/age = \{type = \"text\"\}/age = {type = \"integer\"\}}"
expect 1 'RP-E1105: cannot declare pet: field "age" is text in the store but declared integer (2 records hold a value)' -- eval 'return 1'
expect 1 'write a migration: crm.schema.migration("pet-age-integer", function() crm.schema.change_type("pet", "age", {type="integer"}, function(v) return tonumber(v) end) end)' -- eval 'return 1'
out=$("$RAPPORT" schema diff 2>&1); st=$?
check '[ $st = 4 ] && grep -q "^refused: .*pets.lua:.*RP-E1105: cannot declare pet: field \"age\"" <<<"$out"' \
    "diff of a refused type change: ($st) $out"
release "${V2/color = \{type = \"text\"\}/color = {type = \"text\", required = true\}}"
expect 1 'cannot declare pet: field "color" is declared required but 2 live records hold no value' -- eval 'return 1'
release "${V2/tag = \{type = \"text\"\}/tag = {type = \"text\", unique = true\}}"
expect 1 'cannot declare pet: field "tag" is declared unique but 2 records (soft-deleted ones included) share their value' -- eval 'return 1'
release "${V2/tag = \{type = \"text\"\}, /}"
expect 1 'field "tag" holds values in 2 records (soft-deleted ones included) but the declaration no longer names it' -- eval 'return 1'
check '[ "$(hash)" = "$h2" ] && [ "$(all_events)" = "$e2" ]' "a refused declaration stored something"
expect 0 text -- --skip-broken eval 'return crm.schema.get("pet").fields.age.type'

# ---- the migration written: it runs once, is recorded, and the declaration passes ------------
MIG='crm.schema.migration("pet-age-integer", function()
  crm.schema.change_type("pet", "age", {type = "integer"}, function(v) return tonumber(v) end)
end)'
V3="${V2/age = \{type = \"text\"\}/age = {type = \"integer\"\}}"
release "$V3" "$MIG"
h3=$(hash)
out=$("$RAPPORT" schema diff 2>&1); st=$?
check '[ $st = 3 ] && grep -qx "run migration pet-age-integer (pets.lua)" <<<"$out" &&
       grep -q "^change the type of pet.age: {\"type\":\"text\"} -> {\"type\":\"integer\"} (2 records)" <<<"$out"' \
    "diff of a pending migration: ($st) $out"
check '[ "$(hash)" = "$h3" ]' "schema diff with a pending migration changed the file"
for _ in 1 2 3; do expect 0 "" -- eval 'return 1'; done
check '[ "$(events schema.migration_ran)" = 1 ] && [ "$(events schema.field_type_changed)" = 1 ]' \
    "the migration ran $(events schema.migration_ran) times"
out=$(sqlite3 "$RAPPORT_DB" "SELECT id, length(checksum), script, ran_by <> '' FROM rp_migrations")
check '[ "$out" = "pet-age-integer|16|pets.lua|1" ]' "the ledger: $out"
expect 0 '"age": 3' -- get pet 1
expect 0 '"age": 7' -- get pet 2
expect 0 "nothing would change" -- schema diff

# A migration edited after it ran does not run again, and says so.
release "$V3" "${MIG/tonumber(v)/tonumber(v) + 0}"
expect 0 'migration "pet-age-integer" changed since it ran' -- eval 'return 1'
out=$("$RAPPORT" schema diff 2>&1); st=$?
check '[ $st = 0 ] && grep -q "^warning: .*migration \"pet-age-integer\" changed since it ran" <<<"$out"' \
    "diff of an edited migration: ($st) $out"
check '[ "$(events schema.migration_ran)" = 1 ]' "an edited migration ran again"
release "$V3" "$MIG"

# ---- a failing migration rolls back whole; the script fails to load naming it ----------------
h4=$(hash) e4=$(all_events)
release "$V3" "$MIG
crm.schema.migration(\"pet-rename-then-fail\", function()
  crm.schema.rename_field(\"pet\", \"nick\", \"nickname\")
  crm.schema.change_type(\"pet\", \"tag\", {type = \"integer\"}, function(v) return tonumber(v) end)
end)"
expect 1 'RP-E1106: migration "pet-rename-then-fail" failed and was rolled back: ' -- eval 'return 1'
expect 1 'record 1 of pet: value "a" of "tag" does not become integer' -- eval 'return 1'
check '[ "$(hash)" = "$h4" ] && [ "$(all_events)" = "$e4" ]' "a failed migration left something"
release "$V3" "$MIG"
expect 0 '"nick": "fluffy"' -- get pet 1
expect 0 '"tag": "a"' -- get pet 1

# ---- rename, change_type and drop keep data, search and unique indexes right ------------------
V4='title = {type = "text", required = true, searchable = true},
  age = {type = "integer"}, tag = {type = "text"}, color = {type = "text"},
  microchip = {type = "text", unique = true, searchable = true}'
release "$V4" "$MIG
crm.schema.migration(\"pet-1.4\", function()
  crm.schema.rename_field(\"pet\", \"name\", \"title\")
  crm.schema.rename_field(\"pet\", \"chip\", \"microchip\")
  crm.schema.change_type(\"pet\", \"microchip\", {type = \"text\", unique = true, searchable = true},
                         function(v) return string.upper(v) .. \"-X\" end)
  crm.schema.drop_field(\"pet\", \"nick\")
end)"
expect 0 "" -- eval 'return 1'
expect 0 '"title": "Rex"' -- get pet 1
expect 0 '"microchip": "C1-X"' -- get pet 1
out=$("$RAPPORT" get pet 1 2>&1)
check '! grep -q nick <<<"$out"' "nick was not dropped: $out"
expect 0 '"id":1' -- search rex
expect 0 '"id":2' -- search c2-x
out=$("$RAPPORT" search fluffy 2>&1)
check '[ -z "$out" ]' "a dropped field is still searched: $out"
expect 1 "RP-E1207" -- create pet '{"title": "Max", "microchip": "C1-X"}'
expect 0 '"microchip":"C3"' -- create pet '{"title": "Max", "microchip": "C3"}'
expect 1 "RP-E1207" -- create pet '{"title": "Mia", "microchip": "C3"}'
check '[ "$(events schema.field_renamed)" = 2 ] && [ "$(events schema.field_dropped)" = 1 ]' \
    "rename and drop events"
expect 0 "nothing would change" -- schema diff


# ---- a user's role grants records, never the schema ---------------------------------------------
# Scripts the engine loads for an --as command still declare and migrate (they run as the
# installation); what the user's own chunk asks is refused by the store, with nothing stored.
printf '%s\n' 's3cret-pass-123' | "$RAPPORT" users add bob --role clerk --password-stdin >/dev/null
"$RAPPORT" roles set clerk '{"entities": {"*": {"read": "all", "create": true, "update": "all", "delete": "all"}}}' >/dev/null 2>&1
h5=$(hash) e5=$(all_events)
for chunk in 'crm.schema.define("loot", {fields = {x = {type = "text"}}})' \
             'crm.schema.declare("loot", {fields = {x = {type = "text"}}})' \
             'crm.schema.add_field("pet", "loot", {type = "text"})' \
             'crm.schema.drop_field("pet", "tag")' \
             'crm.schema.rename_field("pet", "tag", "tag2")' \
             'crm.schema.change_type("pet", "tag", {type = "text"}, function(v) return "x" end)' \
             'crm.schema.drop_entity("pet")'; do
    expect 1 "may not change the schema" -- --as bob eval "$chunk"
done
expect 1 'may not run migration "steal"' -- --as bob eval \
    'crm.schema.migration("steal", function() crm.update("pet", 1, {tag = "stolen"}) end)'
expect 1 "may not change the schema" -- --as bob define loot '{"fields": {"x": {"type": "text"}}}'
check '[ "$(hash)" = "$h5" ] && [ "$(all_events)" = "$e5" ]' "a refused schema change stored something"
expect 0 '"tag": "a"' -- --as bob get pet 1

finish
