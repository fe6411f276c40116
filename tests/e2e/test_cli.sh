#!/usr/bin/env bash
# End-to-end: drives the real `rapport` binary through its commands, exit codes and errors.
set -u
# The bare core (no built-in plugins): these tests define their own entities, such as a
# "contact" of their own; the built-in plugins' entities are driven by their own tests.
export RAPPORT_PLUGINS_BUILTIN=0
RAPPORT=${RAPPORT:-build/rapport}
tmp=$(mktemp -d)
trap 'kill $follow_pid 2>/dev/null; rm -rf "$tmp"' EXIT
follow_pid=
export RAPPORT_DB="$tmp/crm.db"
. "$(dirname "$0")/lib.sh"

expect 0 "rapport 0." -- --version
expect 0 "usage: rapport" -- --help
expect 2 "rapport: unknown command \"frobnicate\"" -- frobnicate
expect 2 "run \`rapport --help\`" -- --bogus
expect 2 "" --
expect 1 "no database at $tmp/crm.db" -- schema
expect 0 "initialised $tmp/crm.db" -- init
expect 0 "up to date" -- init
expect 0 "usage: rapport create" -- create --help
expect 0 "no entities defined yet" -- schema

expect 0 "defined account" -- define account '{"fields": {"name": {"type": "text", "required": true, "searchable": true}, "domain": {"type": "text", "unique": true}}}'
expect 0 "defined contact" -- define contact '{"fields": {"first_name": {"type": "text", "searchable": true}, "last_name": {"type": "text", "required": true, "searchable": true}, "email": {"type": "email", "unique": true}, "account": {"type": "ref", "ref": "account"}, "amount": {"type": "decimal"}, "stage": {"type": "enum", "values": ["new", "won", "lost"], "default": "new"}}}'
expect 1 "RP-E1102: entity \"contact\" is already defined" -- define contact '{"fields": {}}'
expect 1 "is not valid JSON: line 1, column" -- define broken '{"fields": {'
expect 0 "ref        -> account" -- schema contact
expect 0 "\"type\": \"decimal\"" -- schema contact --json

expect 0 '"name":"Acme"' -- create account '{"name": "Acme", "domain": "acme.example"}'
expect 0 '"amount":"1200.50"' -- create contact '{"first_name": "Ada", "last_name": "Lovelace", "email": "ADA@acme.example", "account": 1, "amount": "1200.5"}'
expect 0 '"last_name":"Turing"' -- create contact '[{"last_name": "Turing", "stage": "won"}, {"last_name": "Hopper", "stage": "lost"}]'
expect 1 "RP-E1203: unknown field \"emial\" on contact" -- create contact '{"last_name": "X", "emial": "x@y.z"}'
expect 1 "RP-E1205: contact.last_name is required" -- create contact '{"first_name": "X"}'
expect 1 "RP-E1206: contact.stage" -- create contact '{"last_name": "X", "stage": "maybe"}'
expect 1 "RP-E1207: contact.email: \"ada@acme.example\" is already used" -- create contact '{"last_name": "X", "email": "ada@acme.example"}'
expect 1 "RP-E1208: contact.account: there is no account with id 42" -- create contact '{"last_name": "X", "account": 42}'
expect 1 "record 1: " -- create contact '[{"last_name": "Ok"}, {"last_name": "Bad", "amount": "1.234"}]'
expect 1 "line 1, column" -- create contact '{"last_name": }'
expect 2 "usage: rapport create" -- create contact
expect 0 "3" -- count contact

expect 0 '"email": "ada@acme.example"' -- get contact 1
expect 1 "RP-E1202: no contact with id 99" -- get contact 99
expect 2 "record id" -- get contact abc
expect 1 "RP-E1201: unknown entity \"ghost\"" -- get ghost 1
expect 0 '"stage":"won"' -- update contact 1 '{"stage": "won"}' --if-version 1
expect 1 "RP-E1209: contact 1: version 1 was read" -- update contact 1 '{"stage": "lost"}' --if-version 1
expect 0 '"version": 2' -- get contact 1
expect 1 "kept by the store" -- update contact 1 '{"version": 7}'

expect 0 '"last_name":"Lovelace"' -- find contact --where '{"stage": "won", "amount": {"gt": "1000"}}'
expect 0 "next page: --after" -- find contact --order -last_name --limit 1
expect 1 "RP-E1301" -- find contact --where '{"amount": {"bigger": 1}}'
expect 1 "RP-E1203: unknown field \"drop\"" -- find contact --order 'drop'
expect 0 "3" -- count contact --where '{"stage": {"in": ["won", "lost"]}}'
expect 0 '"snippet":"[Ada]' -- search ad
expect 0 '"entity":"account"' -- search acme
expect 1 "RP-E1304" -- search ' '

expect 0 "deleted contact 3" -- delete contact 3
expect 0 "2" -- count contact
expect 0 "3" -- count contact --deleted
expect 1 "already deleted" -- delete contact 3
expect 0 "restored contact 3" -- restore contact 3
expect 1 "cannot be purged: contact 1 refers to it" -- purge account 1
expect 0 "purged contact 2" -- purge contact 2

expect 0 '"new" -> "won"  by local:' -- explain contact 1 stage
expect 1 "unknown field \"nope\"" -- explain contact 1 nope
expect 0 '"type":"contact.purged"' -- events tail -n 3
lines=$("$RAPPORT" events tail -n 5 | wc -l)
[ "$lines" = 5 ] && ok || bad "events tail -n 5 printed $lines lines"
expect 2 "-n needs" -- events tail -n
expect 2 "unknown subcommand" -- events rewind
expect 0 "" -- events dead

# --follow prints new events as they are committed by another process.
"$RAPPORT" events tail -n 0 --follow > "$tmp/follow.out" 2>&1 &
follow_pid=$!
sleep 0.5
"$RAPPORT" create contact '{"last_name": "Followed"}' >/dev/null
for _ in $(seq 150); do grep -q Followed "$tmp/follow.out" && break; sleep 0.1; done
grep -q '"type":"contact.created".*Followed' "$tmp/follow.out" && ok || bad "events tail --follow missed the new event: $(cat "$tmp/follow.out")"
kill -INT $follow_pid; wait $follow_pid; status=$?
[ "$status" = 0 ] && ok || bad "events tail --follow exited $status on SIGINT"
follow_pid=

# Settings live in the database; each change is an event; bad names are refused.
expect 0 "set timezone" -- config set timezone Europe/Paris
expect 0 "set lua.max_instructions" -- config set lua.max_instructions 2000000
expect 0 '"Europe/Paris"' -- config get timezone
expect 0 "lua.max_instructions = 2000000" -- config list
expect 1 "RP-E1202: setting \"nope\" is not set" -- config get nope
expect 1 "not a valid setting name" -- config set "Bad Key" 1
expect 0 '"type":"config.changed"' -- events tail -n 1
expect 1 "over its instruction budget of 2000000 instructions" -- eval --sandbox 'while true do end'
expect 0 "Europe/Paris" -- jobs every nightly '0 2 * * *' emit
expect 0 "unset timezone" -- config unset timezone

# --db takes precedence over RAPPORT_DB.
expect 0 "initialised $tmp/other.db" -- --db "$tmp/other.db" init
expect 0 "no entities defined yet" -- --db "$tmp/other.db" schema

# ---- users and tokens ----------------------------------------------------------------------
expect 0 "user ana added (role admin)" -- users add ana --role admin --team support --password-stdin <<<"correct horse"
expect 1 "there is a user named ana already" -- users add ana --role admin --password-stdin <<<"correct horse"
expect 1 "at least 8 characters" -- users add bob --role agent --password-stdin <<<"short"
expect 1 "--password-stdin" -- users add bob --role agent </dev/null
expect 2 "users add needs a NAME and --role ROLE" -- users add bob
expect 0 '"name":"ana","role":"admin","team":"support","disabled":false' -- users list
token=$("$RAPPORT" tokens create --user ana --expires 30d 2>/dev/null)
[[ "$token" == rpt_* ]] && ok || bad "tokens create printed: $token"
expect 0 '"user":"ana","role":"admin","prefix":"'"${token:0:12}"'"' -- tokens list
# The secret is shown once and kept nowhere: not in the file, not in the events.
if grep -qF -- "${token:12}" "$RAPPORT_DB"* 2>/dev/null; then bad "the token is stored in the database"; else ok; fi
expect 0 "token.created" -- events tail -n 3
expect 2 "--expires" -- tokens create --user ana --expires soon
expect 2 "leave --expires out" -- tokens create --user ana --expires 0s
expect 1 "within a hundred years" -- tokens create --user ana --expires 106751991167d
expect 1 "NUL byte" -- users add nul --role agent --password-stdin < <(printf 'correct\0horse\n')
expect 1 "no user named zed" -- tokens create --user zed
expect 0 "token 1 revoked" -- tokens revoke 1
expect 1 "no live token with id 1" -- tokens revoke 1
expect 0 "user ana disabled" -- users disable ana
expect 1 "disabled already" -- users disable ana
expect 1 "is disabled: no new tokens" -- tokens create --user ana

finish
