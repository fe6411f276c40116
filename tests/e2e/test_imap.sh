#!/usr/bin/env bash
# End-to-end: the collaborative plugin's IMAP poller (plugins/collaborative/imap.c) against a
# real Dovecot this test starts on 127.0.0.1 with its own configuration in a temporary folder
# (never the system's service). Messages from the .eml corpus are put in the Maildir with
# `doveadm save`. Checked: `rapport mail poll` stores them (interactions, tickets, a duplicate
# dropped), marks each \Seen only once handled (the Maildir's S flag; a second poll fetches
# nothing); messages made unseen again (a crash between storing and marking) are fetched and
# dropped as duplicates, a message without a Message-ID included; settings are refused naming
# the entry and field; a wrong password fails with the server's reason and without the password;
# a server that is down fails its mailbox only; crm.collaborative.poll_mail; and `serve` polls on
# its own (imap_every), logging the failing mailbox and going on. No password appears anywhere.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/../../plugins/collaborative/tests/mail"
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
dove_pid=
hang_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
    [ -n "$hang_pid" ] && kill "$hang_pid" 2>/dev/null
    if [ -n "$dove_pid" ]; then kill "$dove_pid" 2>/dev/null; wait "$dove_pid" 2>/dev/null; fi
    [ -n "${KEEP:-}" ] && cp -r "$tmp" /tmp/imap_e2e
    rm -rf "$tmp"
}
trap cleanup EXIT
export RAPPORT_DB="$tmp/crm.db"
unset all_proxy ALL_PROXY no_proxy NO_PROXY
factor=${RP_TIME_FACTOR:-1}

# wait_for CONDITION [SECONDS]: up to SECONDS (20) × RP_TIME_FACTOR for a shell expression.
wait_for() {
    for _ in $(seq $(( ${2:-20} * factor * 20 ))); do eval "$1" && return 0; sleep 0.05; done
    return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# run ARGS…: rapport, its output (stdout and stderr) kept in $out and in the transcript.
run() { out=$("$RAPPORT" "$@" 2>&1); status=$?; printf '%s\n' "$out" >> "$tmp/transcript"; }

DOVECOT=${DOVECOT:-/usr/sbin/dovecot}
if [ ! -x "$DOVECOT" ] || ! command -v doveadm >/dev/null; then
    bad "dovecot is not installed (dovecot-imapd, dovecot-core: see debian-packages.txt)"
    finish
    exit 1
fi

# ---- a Dovecot of our own ----
PASS_ANA='Ana-imap-pw-7Hq2'
PASS_BOB='Bob-imap-pw-9Xr4'
WRONG='Not-the-pw-3Kd8'
port=$(free_port)
down_port=$(free_port) # nothing listens there
dv="$tmp/dovecot"
mkdir -p "$dv/run" "$dv/state" "$dv/mail"
# Dovecot refuses to keep mail as root: as root (CI) the mail belongs to nobody, and the
# daemons run as the users the package made; otherwise everything runs as the current user,
# which cannot chroot (hence no chroot for anvil and imap-login).
if [ "$(id -u)" = 0 ]; then
    mail_uid=$(id -u nobody) mail_gid=$(id -g nobody)
    login_user=dovenull internal_user=dovecot internal_group=dovecot
    chmod 755 "$tmp"
else
    mail_uid=$(id -u) mail_gid=$(id -g)
    login_user=$(id -un) internal_user=$(id -un) internal_group=$(id -gn)
fi
cat > "$dv/dovecot.conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
info_log_path = $dv/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = $login_user
default_internal_user = $internal_user
default_internal_group = $internal_group
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dv/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dv/mail/%u
}
mail_location = maildir:$dv/mail/%u/Maildir
EOF
printf 'ana:{PLAIN}%s\nbob:{PLAIN}%s\n' "$PASS_ANA" "$PASS_BOB" > "$dv/passwd"
chown -R "$mail_uid:$mail_gid" "$dv/mail"
"$DOVECOT" -c "$dv/dovecot.conf" -F >"$dv/foreground.log" 2>&1 &
dove_pid=$!
wait_for "python3 -c \"import socket; socket.create_connection(('127.0.0.1', $port), 0.2)\" 2>/dev/null" 10 ||
    bad "dovecot did not start: $(cat "$dv/foreground.log" "$dv/dovecot.log" 2>/dev/null)"
check 'kill -0 $dove_pid 2>/dev/null' "dovecot -F did not stay up: $(cat "$dv/foreground.log")"
doveadm_() { doveadm -c "$dv/dovecot.conf" "$@"; }
deliver() { doveadm_ save -u "$1" < "$2" || bad "doveadm save $2 for $1 failed"; }
maildir() { echo "$dv/mail/$1/Maildir"; }
# seen USER / unseen USER: how many messages carry the S flag, and how many do not.
seen() { ls "$(maildir "$1")/cur" "$(maildir "$1")/new" 2>/dev/null | grep -c ':2,[A-Za-z]*S'; }
unseen() { doveadm_ search -u "$1" mailbox INBOX unseen 2>/dev/null | wc -l; }
inbound() { count interaction --where '{"channel": "email", "direction": "in"}'; }

"$RAPPORT" init >/dev/null
URL="imap://127.0.0.1:$port/INBOX"

# ---- settings are checked, naming the entry and the field ----
run config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\", \"password\": \"x\"}, {\"name\": \"sales\", \"url\": \"http://127.0.0.1/INBOX\", \"user\": \"bob\", \"password\": \"x\"}]"
run mail poll
check '[ $status != 0 ] && grep -q "plugin.collaborative.imap\[1\].url" <<<"$out"' "a bad URL was not refused naming imap[1].url: $out"
run config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\", \"pasword\": \"x\"}]"
run mail poll
check 'grep -q "plugin.collaborative.imap\[0\].pasword: not a field" <<<"$out"' "a misspelt field was not named: $out"
run config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"imap://ana:pw-in-url@127.0.0.1:$port/INBOX\", \"user\": \"ana\", \"password\": \"x\"}]"
run mail poll
check 'grep -q "imap\[0\].url: holds a user or password" <<<"$out"' "a password in the URL was not refused: $out"
run config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"imap://127.0.0.1:$port\", \"user\": \"ana\"}]"
run mail poll
check 'grep -q "imap\[0\].url: .* names no mailbox" <<<"$out"' "a URL without a mailbox was not refused: $out"
run config set plugin.collaborative.imap_every '"soon"'
run config set plugin.collaborative.imap '[]'
run mail poll
check 'grep -q "imap_every" <<<"$out"' "a bad imap_every was not refused: $out"
"$RAPPORT" config unset plugin.collaborative.imap_every >/dev/null
run mail poll
check '[ $status = 1 ] && grep -q "plugin.collaborative.imap is not set" <<<"$out"' "no mailbox did not say so: $out"

# The password under its own key, which the event log masks (the list is logged as it is).
"$RAPPORT" config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\"}]" >/dev/null
"$RAPPORT" config set plugin.collaborative.imap.support.password "\"$PASS_ANA\"" >/dev/null
run events tail -n 5
check 'grep -q "\[secret\]" <<<"$out"' "the password setting was not masked in the event log: $out"

# ---- a poll stores what waits, and marks it seen ----
for f in plain.eml no_message_id.eml autoreply.eml windows1256.eml duplicate.eml; do
    deliver ana "$corpus/$f"
done
check '[ "$(unseen ana)" = 5 ]' "the mailbox does not hold 5 unseen messages: $(unseen ana)"
tickets=$(count ticket)
run mail poll
check '[ $status = 0 ] && grep -q "^support: fetched 5, stored 4, duplicates 1, auto-replies 1," <<<"$out"' "the first poll: $out"
check '[ "$(inbound)" = 4 ]' "4 messages were not stored as interactions: $(inbound)"
check '[ "$(count ticket)" = $((tickets + 3)) ]' "3 new conversations did not open 3 tickets (an auto-reply opens none)"
check '[ "$(seen ana)" = 5 ] && [ "$(unseen ana)" = 0 ]' "the handled messages were not marked seen: $(ls "$(maildir ana)/cur")"
expect 0 '"subject":"Question about my last invoice"' -- find interaction --where '{"from_addr": "ana.silva@example.com"}'
run mail poll
check '[ $status = 0 ] && grep -q "^support: fetched 0, stored 0" <<<"$out"' "a second poll fetched again: $out"

# A crash between storing and marking seen: the messages come again and are dropped as
# duplicates, the one without a Message-ID too (it gets one from its place on the server).
doveadm_ flags remove -u ana '\Seen' mailbox INBOX all
check '[ "$(unseen ana)" = 5 ]' "the messages were not made unseen again"
run mail poll --json
check 'grep -q "\"fetched\":5,\"stored\":0,\"duplicates\":5" <<<"$out"' "unseen again, they were not dropped as duplicates: $out"
check '[ "$(inbound)" = 4 ] && [ "$(unseen ana)" = 0 ]' "a message was stored twice or left unseen: $(inbound)"

# max_per_poll: one a poll, oldest first.
"$RAPPORT" config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\", \"max_per_poll\": 1}]" >/dev/null
deliver ana "$corpus/persian_utf8.eml"
deliver ana "$corpus/multipart.eml"
run mail poll support
check 'grep -q "^support: fetched 1, stored 1" <<<"$out" && [ "$(unseen ana)" = 1 ]' "max_per_poll 1 did not take one message: $out"
run eval 'local r = crm.collaborative.poll_mail("support"); return r[1].mailbox .. " " .. r[1].fetched .. " " .. r[1].stored'
check 'grep -q "^support 1 1$" <<<"$out" && [ "$(unseen ana)" = 0 ]' "crm.collaborative.poll_mail: $out"
run eval 'return crm.collaborative.poll_mail("nobody")'
check 'grep -q "no mailbox named \"nobody\"" <<<"$out"' "an unknown mailbox was not named: $out"

# ---- a large message in parts, one too large, a bounce, and what the store refuses ----
"$RAPPORT" config set plugin.collaborative.imap "[{\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\"}]" >/dev/null
# 570 KB: six parts of 96 KiB; a text of 297,000 bytes and a file of 200,000.
python3 - "$tmp/big.eml" <<'PY'
import base64, sys
text = b"".join(b"line %06d of a long message that is fetched in parts\r\n" % i for i in range(5400))
data = bytes(range(256)) * 782
data = data[:200000]
att = base64.encodebytes(data).replace(b"\n", b"\r\n")
open(sys.argv[1], "wb").write(
    b"From: Big Sender <big@example.org>\r\nTo: support@rapport.example\r\nSubject: big\r\n"
    b"Message-ID: <big-1@example.org>\r\nDate: Thu, 10 Dec 2026 09:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text + b"\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Disposition: attachment; filename=data.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + att + b"--XX--\r\n")
PY
"$RAPPORT" config set plugin.collaborative.max_message_bytes 100000 >/dev/null
deliver ana "$tmp/big.eml"
deliver ana "$corpus/bounce.eml"
deliver ana "$corpus/garbage.eml"
run mail poll
check 'grep -q "^support: fetched 2, stored 0, duplicates 0, auto-replies 0, bounces 1, refused 1, store failures 0, too large 1," <<<"$out"' "a bounce, a refusal and one too large: $out"
check 'grep -q "refused (.*): left unseen" <<<"$out"' "the refusal was not said: $out"
check '[ "$(unseen ana)" = 2 ]' "the refused and the too large message were not left unseen: $(unseen ana)"
"$RAPPORT" config unset plugin.collaborative.max_message_bytes >/dev/null
run mail poll
check 'grep -q "^support: fetched 2, stored 1, .* refused 1, .* too large 0," <<<"$out"' "the large message was not fetched once allowed: $out"
big=$("$RAPPORT" find interaction --where '{"external_id": "<big-1@example.org>"}')
check 'python3 -c "import sys, json; r = json.load(sys.stdin); b = r[\"body\"].splitlines(); sys.exit(0 if len(b) == 5400 and b[-1] == \"line 005399 of a long message that is fetched in parts\" else 1)" <<<"$big"' "the large message did not arrive whole"
bid=$(python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])' <<<"$big" 2>/dev/null)
expect 0 '"size":200000' -- find attachment --where "{\"interaction\": ${bid:-0}}"
check '[ "$(unseen ana)" = 1 ]' "only the refused message should stay unseen: $(unseen ana)"
doveadm_ flags add -u ana '\Seen' mailbox INBOX all

# ---- a wrong password, a server that is down, and a mailbox that works, in one poll ----
"$RAPPORT" config set plugin.collaborative.imap "[{\"name\": \"bad\", \"url\": \"$URL\", \"user\": \"bob\", \"password\": \"$WRONG\"}, {\"name\": \"down\", \"url\": \"imap://127.0.0.1:$down_port/INBOX\", \"user\": \"bob\", \"password\": \"$PASS_BOB\"}, {\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\"}]" >/dev/null
deliver ana "$corpus/html_only.eml"
before=$(inbound)
run mail poll
check '[ $status = 1 ]' "a failing mailbox did not fail the command: $status"
check 'grep -q "mail poll: bad: imap://127.0.0.1:$port/INBOX: Login denied (.*AUTHENTICATIONFAILED" <<<"$out"' "the wrong password did not fail with the server's reason: $out"
check 'grep -q "mail poll: down: imap://127.0.0.1:$down_port/INBOX: .*onnect" <<<"$out"' "the server that is down did not fail with a reason: $out"
check 'grep -q "^support: fetched 1, stored 1" <<<"$out" && [ "$(inbound)" = $((before + 1)) ]' "a failing mailbox stopped the others: $out"
check '[ "$(unseen ana)" = 0 ]' "the working mailbox was not marked seen"

# ---- serve polls on its own ----
# Beside the three mailboxes above (the one down at most hourly): one whose server takes the
# connection and never answers, so each poll of it waits imap_timeout_ms on a worker thread,
# while the event loop goes on answering.
hang_port=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); held = []
while True: held.append(s.accept()[0])' "$hang_port" &
hang_pid=$!
"$RAPPORT" config set plugin.collaborative.imap "[{\"name\": \"bad\", \"url\": \"$URL\", \"user\": \"bob\", \"password\": \"$WRONG\"}, {\"name\": \"down\", \"url\": \"imap://127.0.0.1:$down_port/INBOX\", \"user\": \"bob\", \"password\": \"$PASS_BOB\", \"every\": \"1h\"}, {\"name\": \"hang\", \"url\": \"imap://127.0.0.1:$hang_port/INBOX\", \"user\": \"bob\", \"password\": \"$PASS_BOB\"}, {\"name\": \"support\", \"url\": \"$URL\", \"user\": \"ana\"}]" >/dev/null
"$RAPPORT" config set plugin.collaborative.imap_every '"1s"' >/dev/null
"$RAPPORT" config set plugin.collaborative.imap_timeout_ms 3000 >/dev/null
deliver ana "$corpus/raw8bit_latin1.eml"
before=$(inbound)
"$RAPPORT" serve --listen 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
serve_pid=$!
port_http=$(listened_port "$tmp/serve.log")
slowest=$(for _ in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port_http/health"; sleep 0.5; done | sort -n | tail -1)
check 'python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 * $factor else 1)" "$slowest"' "the event loop waited on a poll: /health took ${slowest}s"
check 'wait_for "[ \"\$(inbound)\" = $((before + 1)) ]" 30' "serve did not poll: $(tail -5 "$tmp/serve.log")"
check 'wait_for "[ \"\$(unseen ana)\" = 0 ]"' "serve did not mark the message seen"
# And again, on its own, for a message that arrives while it runs.
deliver ana "$corpus/reply_no_refs.eml"
check 'wait_for "[ \"\$(inbound)\" = $((before + 2)) ]" 30' "serve did not poll a second time: $(tail -5 "$tmp/serve.log")"
check 'wait_for "grep -q \"imap support: fetched 1, stored 1\" \"$tmp/serve.log\""' "serve did not log the poll: $(tail -5 "$tmp/serve.log")"
check 'wait_for "grep -q \"imap bad: failed: .*AUTHENTICATIONFAILED\" \"$tmp/serve.log\""' "serve did not log the wrong password: $(grep imap "$tmp/serve.log" | tail -5)"
check '[ "$(grep -c "imap down: failed: imap://127.0.0.1:$down_port/INBOX: " "$tmp/serve.log")" = 1 ]' "the server that is down was not polled once (every 1h): $(grep "imap down" "$tmp/serve.log" | head -3)"
check 'wait_for "grep -q \"imap hang: failed: .*imed out\" \"$tmp/serve.log\""' "the server that never answers did not time out: $(grep "imap hang" "$tmp/serve.log" | head -3)"
check 'kill -0 $serve_pid 2>/dev/null' "serve stopped"
kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=
kill "$hang_pid" 2>/dev/null; wait "$hang_pid" 2>/dev/null; hang_pid=

# ---- no password anywhere ----
cat "$tmp/serve.log" >> "$tmp/transcript"
for pw in "$PASS_ANA" "$PASS_BOB" "$WRONG"; do
    check '! grep -qF -- "$pw" "$tmp/transcript"' "a password was shown: $(grep -F -- "$pw" "$tmp/transcript" | head -3)"
done
kill "$dove_pid" 2>/dev/null; wait "$dove_pid" 2>/dev/null; dove_pid=
finish
