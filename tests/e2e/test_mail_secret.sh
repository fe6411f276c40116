#!/usr/bin/env bash
# End-to-end: crm.collaborative.send_email{…, secret = …} through a real SMTP server (aiosmtpd).
# The interaction and its events keep the text with a note where {{secret}} was; the secret
# waits in rp_plugin_secrets through a process that stopped before sending and a relay that was
# down, goes out once, and is gone after; an expired one fails the mail instead of sending the
# note; erasing the contact drops a waiting one; bad calls say what is wrong.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
smtp_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "$smtp_pid" ] && kill $smtp_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

serve_start() {
    "$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2>>"$tmp/serve.log" &
    serve_pid=$!
}
serve_stop() { kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=; }
delivered() { ls "$tmp/mbox/new" 2>/dev/null | wc -l; }
kept() { sqlite3 "$RAPPORT_DB" "SELECT count(*) FROM rp_plugin_secrets WHERE plugin = 'collaborative'"; }
field() { "$RAPPORT" get interaction "$1" | python3 -c 'import sys, json; print(json.load(sys.stdin).get(sys.argv[1]))' "$2"; }
# wait_for COMMAND WANT: until COMMAND prints WANT (up to 15 s).
wait_for() { for _ in $(seq 300); do [ "$(eval "$1")" = "$2" ] && return 0; sleep 0.05; done; return 1; }

mail_init
"$RAPPORT" config set plugin.collaborative.retry_base '"1s"' >/dev/null
"$RAPPORT" create contact '{"first_name": "Sara", "last_name": "Ahmadi", "email": "sara@example.org"}' >/dev/null
"$RAPPORT" create contact '{"first_name": "Bob", "last_name": "Other", "email": "bob@example.org"}' >/dev/null

# ---- bad calls store nothing ----
send() { "$RAPPORT" eval "return crm.collaborative.send_email{to = '$1', subject = 'Your link', $2}.id"; }
expect 1 'needs {{secret}}' -- eval "crm.collaborative.send_email{to = 'sara@example.org', subject = 's', body = 'no place', secret = 'S1'}"
expect 1 'holds the secret itself' -- eval "crm.collaborative.send_email{to = 'sara@example.org', subject = 's', body = 'S1234 {{secret}}', secret = 'S1234'}"
expect 1 'secret_ttl' -- eval "crm.collaborative.send_email{to = 'sara@example.org', subject = 's', body = '{{secret}}', secret = 'S1', secret_ttl = 'soon'}"
expect 1 'secret_note' -- eval "crm.collaborative.send_email{to = 'sara@example.org', subject = 's', body = '[x] {{secret}}', secret = 'S1', secret_note = '[x]'}"
check '[ "$(count interaction)" = 0 ] && [ "$(kept)" = 0 ]' "a refused send stored something"

# ---- queued, and the process stops before sending: the secret waits in the table ----
S1="https://portal.example/#token=QkZ1secretAAA111"
id=$(send sara@example.org "body = 'Sign in: {{secret}} (once)', secret = '$S1', secret_note = '[link, not kept]'")
check '[ -n "$id" ]' "no interaction for the secret mail"
check '[ "$(field "$id" body)" = "Sign in: [link, not kept] (once)" ]' "the kept body is not the redacted text: $(field "$id" body)"
check '[ "$(kept)" = 1 ]' "the secret is not waiting in rp_plugin_secrets: $(kept)"
check '! "$RAPPORT" get interaction "$id" | grep -qF "QkZ1secret"' "the secret is in the interaction"

# ---- the relay is down: the attempt fails, the secret stays for the retry ----
serve_start
check 'wait_for "field $id attempts" 1' "no send attempt: $(field "$id" attempts) $(tail -3 "$tmp/serve.log")"
check '[ "$(field "$id" status)" = queued ] && [ "$(kept)" = 1 ]' "after a failed attempt: status $(field "$id" status), secrets $(kept)"
# ---- the relay is back: sent once, with the secret; then the secret is gone ----
smtp_start
check 'wait_for "field $id status" sent' "the mail was not sent: $(field "$id" status) $(field "$id" error)"
sleep 0.3
check '[ "$(delivered)" = 1 ]' "not exactly one mail delivered: $(delivered)"
msg=$(ls "$tmp/mbox/new"/* | head -1)
text=$(python3 -c 'import sys, email, email.policy; m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default); print(m.get_body(("plain",)).get_content())' "$msg")
check 'grep -qxF "Sign in: $S1 (once)" <<<"$text"' "the delivered text lacks the secret: $text"
check '! grep -qF "not kept" <<<"$text"' "the note went out: $text"
check '[ "$(kept)" = 0 ]' "the secret was left behind after sending: $(kept)"

# ---- expired before it could go: the mail fails, the note never goes out ----
serve_stop
id2=$(send sara@example.org "body = 'Code {{secret}}', secret = 'EXPIREDxyz789', secret_ttl = '1s'")
sleep 1.2
serve_start
check 'wait_for "field $id2 status" failed' "an expired secret's mail is $(field "$id2" status)"
check 'field "$id2" error | grep -q "expired"' "the failure does not say the secret expired: $(field "$id2" error)"
sleep 0.3
check '[ "$(delivered)" = 1 ] && [ "$(kept)" = 0 ]' "after the expired one: $(delivered) delivered, $(kept) kept"
serve_stop

# ---- erased: a waiting secret goes with the contact ----
id3=$(send bob@example.org "body = '{{secret}}', secret = 'ERASEDsecret456'")
check '[ "$(kept)" = 1 ]' "Bob's secret is not waiting: $(kept)"
expect 0 '' -- erase contact 2 --reason asked
check '[ "$(kept)" = 0 ]' "erasing the contact left its mail's secret"

# ---- nowhere readable: events, the dump, the file's bytes ----
events=$("$RAPPORT" events tail -n 100000 2>&1)
check 'grep -q "interaction.created" <<<"$events"' "no interaction events to look in"
dump=$(sqlite3 "$RAPPORT_DB" .dump)
sqlite3 "$RAPPORT_DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
for s in QkZ1secretAAA111 EXPIREDxyz789 ERASEDsecret456; do
    check '! grep -qF "$s" <<<"$events"' "$s is in the event log"
    check '! grep -qF "$s" <<<"$dump"' "$s is in the database's dump"
    for f in "$RAPPORT_DB" "$RAPPORT_DB-wal"; do
        check '! { [ -f "$f" ] && grep -qaF "$s" "$f"; }' "$s is in the bytes of $f"
    done
done
finish
