#!/usr/bin/env bash
# End-to-end: `rapport backup` of a database that `rapport serve` and two writers (HTTP POSTs and
# CLI creates) change all the while: the copy passes integrity_check and is one consistent
# snapshot; `rapport restore` puts it into a new path identical to it, refuses a database that a
# running serve holds, a garbage file, a database of another program and one of a newer Rapport.
set -u
RAPPORT=${RAPPORT:-build/rapport}
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
serve_pid= http_pid= cli_pid=
stop_all() {
    for p in $http_pid $cli_pid $serve_pid; do kill -9 "$p" 2>/dev/null; done
}
trap 'stop_all; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/live.db"
sql() { sqlite3 -batch "$@"; }

"$RAPPORT" init >/dev/null
# Some thousands of records first, so the copy takes several steps.
batch() { # batch PREFIX N: a JSON array of N contacts
    local i sep=""
    printf '['
    for i in $(seq "$2"); do printf '%s{"first_name":"%s","last_name":"N%d"}' "$sep" "$1" "$i"; sep=,; done
    printf ']'
}
for r in 1 2 3 4; do "$RAPPORT" create contact "$(batch seed$r 2500)" >/dev/null; done
"$RAPPORT" users add ana --role admin --password-stdin <<<"a long password" >/dev/null
tok=$(token_of ana)

"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
check '[ -n "$port" ]' "serve did not listen: $(cat "$tmp/serve.log")"
# Writer 1: the API, one record per request, as fast as curl goes.
( i=0; while :; do i=$((i + 1))
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $tok" -H "Content-Type: application/json" \
        -d "{\"first_name\":\"http\",\"last_name\":\"H$i\"}" "http://127.0.0.1:$port/api/v1/contact"
  done ) &
http_pid=$!
# Writer 2: another process, 50 records a transaction.
( i=0; while :; do i=$((i + 1)); "$RAPPORT" create contact "$(batch cli$i 50)" >/dev/null 2>&1; done ) &
cli_pid=$!
sleep 1
before=$(count contact)
out=$("$RAPPORT" backup "$tmp/b.db" 2>&1); st=$?
check '[ $st = 0 ] && grep -q "integrity_check ok" <<<"$out"' "backup under load failed ($st): $out"
check 'grep -q "backed up .* to .*b.db: [0-9]* pages of [0-9]* bytes .* schema [0-9]*, [0-9]* events (last seq [0-9]*)" <<<"$out"' "backup said: $out"
sleep 0.5
after=$(count contact)
check '[ "$after" -gt "$before" ]' "the writers stood still during the backup ($before, then $after)"
check 'kill -0 $serve_pid' "serve died during the backup"

# The copy is whole, and one snapshot: as many contacts as contact.created events.
check '[ "$(sql "$tmp/b.db" "PRAGMA integrity_check")" = ok ]' "the backup fails integrity_check"
n_rows=$(sql "$tmp/b.db" "SELECT count(*) FROM contact")
n_events=$(sql "$tmp/b.db" "SELECT count(*) FROM rp_events WHERE type = 'contact.created'")
check '[ "$n_rows" -ge 10000 ] && [ "$n_rows" = "$n_events" ]' "the backup is no snapshot: $n_rows contacts, $n_events created events"
last_seq=$(sql "$tmp/b.db" "SELECT max(seq) FROM rp_events")
check 'grep -q "(last seq $last_seq)" <<<"$out"' "backup named another last seq than its copy's $last_seq: $out"
check '[ ! -e "$tmp/b.db-wal" ] && [ ! -e "$tmp/b.db.tmp" ]' "the backup left a WAL or its temporary file"
"$RAPPORT" backup "$tmp/b.db" 2>"$tmp/err"; st=$?
check '[ $st = 1 ] && grep -q "exists; add --force" "$tmp/err"' "backup over an existing file without --force: $(cat "$tmp/err")"

# Restore refuses the database serve holds, and leaves it as it was.
out=$("$RAPPORT" restore "$tmp/b.db" --force 2>&1); st=$?
check '[ $st = 1 ] && grep -q "is in use by another process" <<<"$out"' "restore over a served database: ($st) $out"
check '[ "$(count contact)" -ge "$after" ] && kill -0 $serve_pid' "the refused restore touched the live database"

kill -9 $http_pid $cli_pid 2>/dev/null; wait $http_pid $cli_pid 2>/dev/null; http_pid= cli_pid=
# Serve alone, idle, holds it too.
sleep 0.3
out=$("$RAPPORT" restore "$tmp/b.db" --force 2>&1); st=$?
check '[ $st = 1 ] && grep -q "is in use by another process" <<<"$out"' "restore over a database an idle serve holds: ($st) $out"
kill -TERM $serve_pid; wait $serve_pid; st=$?; serve_pid=
check '[ $st = 0 ]' "serve exited $st on SIGTERM"

# Restored into a new path: the same database, page for page as SQL, and as rapport reads it.
out=$("$RAPPORT" --db "$tmp/restored.db" restore "$tmp/b.db" 2>&1); st=$?
check '[ $st = 0 ] && grep -q "restored .*b.db to .*restored.db: .*integrity_check ok" <<<"$out"' "restore into a new path: ($st) $out"
check '[ "$(sql "$tmp/restored.db" "PRAGMA integrity_check")" = ok ]' "the restored database fails integrity_check"
sql "$tmp/b.db" .dump > "$tmp/b.sql"; sql "$tmp/restored.db" .dump > "$tmp/r.sql"
check 'cmp -s "$tmp/b.sql" "$tmp/r.sql"' "the restored database differs from the backup: $(diff "$tmp/b.sql" "$tmp/r.sql" | head -5)"
# (A page holds at most 10000 records: the first and the last page cover them all.)
for db in b restored; do
    { "$RAPPORT" --db "$tmp/$db.db" count contact
      "$RAPPORT" --db "$tmp/$db.db" find contact --order id --limit 10000
      "$RAPPORT" --db "$tmp/$db.db" find contact --order -id --limit 10000; } > "$tmp/$db.find" 2>/dev/null
    "$RAPPORT" --db "$tmp/$db.db" events tail -n 100000 > "$tmp/$db.events" 2>/dev/null
done
check '[ "$(head -1 "$tmp/restored.find")" = "$n_rows" ] && [ "$(wc -l < "$tmp/restored.find")" = 20001 ] && cmp -s "$tmp/b.find" "$tmp/restored.find"' "find differs after the restore"
check '[ -s "$tmp/b.events" ] && cmp -s "$tmp/b.events" "$tmp/restored.events"' "the event log differs after the restore"

# Any other process that has it open holds it too: here a CLI command that waits for events.
"$RAPPORT" events tail --follow > /dev/null 2>&1 &
follow_pid=$!
sleep 0.5
out=$("$RAPPORT" restore "$tmp/b.db" --force 2>&1); st=$?
check '[ $st = 1 ] && grep -q "is in use by another process" <<<"$out"' "restore over a database a command holds: ($st) $out"
kill $follow_pid; wait $follow_pid 2>/dev/null

# Once nothing holds it, restore replaces the live database whole.
out=$("$RAPPORT" restore "$tmp/b.db" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "exists; add --force" <<<"$out"' "restore over an existing database without --force: ($st) $out"
out=$("$RAPPORT" restore "$tmp/b.db" --force 2>&1); st=$?
check '[ $st = 0 ]' "restore over a stopped database: ($st) $out"
check '[ "$(count contact)" = "$n_rows" ] && [ ! -e "$tmp/live.db-wal" ] && [ ! -e "$tmp/live.db.restore-tmp" ]' "the live database is not the backup after the restore ($(count contact) contacts)"

# What is not a Rapport backup is refused by name, and the target is left alone.
head -c 65536 /dev/urandom > "$tmp/garbage.db"
out=$("$RAPPORT" --db "$tmp/g.db" restore "$tmp/garbage.db" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "garbage.db is not a SQLite database" <<<"$out" && [ ! -e "$tmp/g.db" ]' "garbage restored: ($st) $out"
sql "$tmp/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1)"
out=$("$RAPPORT" --db "$tmp/g.db" restore "$tmp/other.db" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "other.db is not a Rapport database" <<<"$out"' "another program's database restored: ($st) $out"
cp "$tmp/b.db" "$tmp/newer.db"
sql "$tmp/newer.db" "UPDATE rp_meta SET value = '99' WHERE key = 'schema_version'"
out=$("$RAPPORT" --db "$tmp/g.db" restore "$tmp/newer.db" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "schema version 99, written by a newer Rapport" <<<"$out"' "a newer schema restored: ($st) $out"
out=$("$RAPPORT" --db "$tmp/g.db" restore "$tmp/none.db" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "no backup file at" <<<"$out"' "a missing backup file: ($st) $out"
out=$("$RAPPORT" --db "$tmp/none.db" backup "$tmp/x.db" 2>&1); st=$?
check '[ $st = 1 ] && grep -q "no database at" <<<"$out" && [ ! -e "$tmp/none.db" ]' "backup of a missing database: ($st) $out"
# The old meaning of restore stays: ENTITY ID brings back a soft-deleted record.
"$RAPPORT" delete contact 1 >/dev/null
out=$("$RAPPORT" restore contact 1 2>&1); st=$?
check '[ $st = 0 ] && grep -q "restored contact 1" <<<"$out"' "restore ENTITY ID: ($st) $out"
finish
