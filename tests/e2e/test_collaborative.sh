#!/usr/bin/env bash
# End-to-end: the collaborative plugin as its users meet it — email sent through a real SMTP
# server (aiosmtpd, started here) with a Persian subject and threading headers, a server that is
# down and comes back, mail received from the .eml corpus (a new conversation opens a ticket, a
# reply lands on it, a duplicate is stored once, an auto-reply is never answered, a bounce marks
# the address), notes with @mentions and notifications, followers, and the timeline on the
# command line and over HTTP under a restricted role.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/../../plugins/collaborative/tests/mail"
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
smtp_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "$smtp_pid" ] && kill $smtp_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

smtp_stop() { kill "$smtp_pid" 2>/dev/null; wait "$smtp_pid" 2>/dev/null; smtp_pid=; }
delivered() { ls "$tmp/mbox/new" 2>/dev/null | wc -l; }

"$RAPPORT" init >/dev/null
smtp_port=$(free_port)
"$RAPPORT" config set mail.smtp.url "\"smtp://127.0.0.1:$smtp_port\"" >/dev/null
"$RAPPORT" config set mail.from '"پشتیبانی Rapport <support@example.com>"' >/dev/null
"$RAPPORT" config set plugin.collaborative.reply_to '"reply@example.com"' >/dev/null
"$RAPPORT" config set plugin.collaborative.retry_base '"1s"' >/dev/null
"$RAPPORT" create account '{"name": "Acme"}' >/dev/null
"$RAPPORT" create contact '{"first_name": "Sara", "last_name": "Ahmadi", "email": "sara@example.org", "account": 1}' >/dev/null
"$RAPPORT" create contact '{"last_name": "Out", "email": "out@example.org", "email_opt_out": true}' >/dev/null

# ---- email out, through a real SMTP server ----
smtp_start
expect 0 'sent' -- mail send --to sara@example.org --subject 'سفارش شما ارسال شد' \
    --body 'سلام سارا' --related contact:1 --now
check '[ "$(delivered)" = 1 ]' "the message did not reach the SMTP server"
msg=$(ls "$tmp/mbox/new"/* 2>/dev/null | head -1)
subj=$(python3 -c 'import sys, email, email.policy; m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default); print(m["subject"]); print(m["from"]); print(m["reply-to"]); print(m["message-id"])' "$msg" 2>&1)
check 'grep -qx "سفارش شما ارسال شد" <<<"$subj"' "the Persian subject did not decode back to itself: $subj"
check 'grep -q "پشتیبانی Rapport <support@example.com>" <<<"$subj"' "the From name was not kept: $subj"
check 'grep -q "reply+[a-z0-9]\{24\}@example.com" <<<"$subj"' "no per-thread reply address: $subj"
mid=$(sed -n 4p <<<"$subj")
expect 0 '"status": "sent"' -- get interaction 1

# Marketing to an opted-out address is refused, and the refusal recorded.
expect 1 'opted out' -- mail send --to out@example.org --subject Sale --body Hi --purpose marketing --now
expect 0 '"status":"refused"' -- find interaction --where '{"to_addr": "out@example.org"}'
# Bad input says what is wrong.
expect 2 'usage' -- mail send --subject x --body y
expect 1 'to: an email address' -- eval 'crm.collaborative.send_email{to = "nobody", subject = "s", body = "b"}'

# A server that is down: the message waits queued with the reason; it goes when it is back.
smtp_stop
expect 1 'queued' -- mail send --to sara@example.org --subject 'Second' --body 'x' --now
expect 0 '"status":"queued"' -- find interaction --where '{"subject": "Second"}'
expect 0 'collaborative.mail_send' -- jobs list
smtp_start
# Queued from Lua: `serve` sends it (below), with the retry.
expect 0 'message_id' -- eval "return crm.collaborative.send_email{to = 'sara@example.org', subject = 'Third', body = 'b', related = 'contact:1'}"

# A secret inside a setting's value (a member named so, a URL's user:password) is never in the
# event log.
"$RAPPORT" config set plugin.collaborative.sms '{"url": "https://u:URLPW9@gw.example/x", "password": "SMSPW9", "secret": "SIG9"}' >/dev/null
check '! "$RAPPORT" events tail -n 5 | grep -q "URLPW9\|SMSPW9\|SIG9"' "a secret inside a setting reached the event log"
"$RAPPORT" config unset plugin.collaborative.sms >/dev/null

# ---- email in ----
# A reply to what we sent, by the thread's reply address: lands on the thread and the contact.
token=$(grep -o 'reply+[a-z0-9]*' <<<"$subj" | head -1)
cat > "$tmp/reply.eml" <<EOF
From: Sara Ahmadi <sara@example.org>
To: <$token@example.com>
Subject: Re: order
Message-ID: <reply-1@example.org>
Date: Mon, 07 Dec 2026 09:00:00 +0000

Thanks!
EOF
expect 0 '"contact":1' -- mail receive < "$tmp/reply.eml"
expect 0 '"dropped":"duplicate"' -- mail receive < "$tmp/reply.eml"
check '[ "$(count interaction --where '"'"'{"external_id": "<reply-1@example.org>"}'"'"')" = 1 ]' "a duplicate delivery was stored twice"
# A reply that lost the reply address still finds its thread by In-Reply-To: she was written
# to. A stranger who copies the same header into his mail does not join her conversation.
thread1=$("$RAPPORT" get interaction 1 | python3 -c 'import sys, json; print(json.load(sys.stdin)["thread"])')
cat > "$tmp/reply2.eml" <<EOF
From: sara@example.org
To: support@example.com
Subject: Re: order
Message-ID: <reply-2@example.org>
In-Reply-To: $mid

One more thing.
EOF
out=$("$RAPPORT" mail receive < "$tmp/reply2.eml" 2>&1)
check 'grep -q "\"thread\":$thread1[,}]" <<<"$out"' "a reply by In-Reply-To did not join its thread: $out"
sed -e 's/^From: .*/From: evil@example.net/' -e 's/reply-2@/evil-1@/' "$tmp/reply2.eml" > "$tmp/evil.eml"
out=$("$RAPPORT" mail receive < "$tmp/evil.eml" 2>&1)
check 'grep -q "thread_refused" <<<"$out" && ! grep -q "\"thread\":$thread1[,}]" <<<"$out"' "a stranger's forged In-Reply-To joined her thread: $out"
# A new conversation from an unknown sender opens a ticket and makes a lead.
out=$("$RAPPORT" mail receive < "$corpus/plain.eml" 2>&1)
check 'grep -q "\"ticket\"" <<<"$out"' "a new conversation opened no ticket: $out"
check 'grep -q "\"created\":\[\"lead\"" <<<"$out"' "an unknown sender made no lead: $out"
# An auto-reply is stored, never answered, opens no ticket.
tickets=$(count ticket)
out=$("$RAPPORT" mail receive < "$corpus/autoreply.eml" 2>&1)
check 'grep -q "\"auto_reply\"" <<<"$out"' "an auto-reply was not recognised: $out"
check '[ "$(count ticket)" = "$tickets" ]' "an auto-reply opened a ticket"
out=$("$RAPPORT" mail receive < "$corpus/ooo.eml" 2>&1)
check 'grep -q "\"auto_reply\"" <<<"$out"' "an out-of-office was not recognised: $out"
# Persian in windows-1256 arrives readable.
out=$("$RAPPORT" mail receive < "$corpus/windows1256.eml" 2>&1)
wid=$(python3 -c 'import sys, json; print(json.loads(sys.argv[1])["interaction"])' "$out" 2>/dev/null)
check '[ -n "$wid" ] && "$RAPPORT" get interaction "$wid" | python3 -c "import sys, json; b = json.load(sys.stdin)[\"body\"]; sys.exit(0 if any(0x600 <= ord(ch) <= 0x6ff for ch in b) else 1)"' "windows-1256 text did not arrive as Persian: $out"
# A bounce marks the address, never opens a ticket.
tickets=$(count ticket)
"$RAPPORT" create contact "{\"last_name\": \"Gone\", \"email\": \"$(python3 -c 'import sys,re; t=open(sys.argv[1],encoding="latin-1").read(); print(re.search(r"Final-Recipient:\s*rfc822;\s*(\S+)", t, re.I).group(1).lower())' "$corpus/bounce.eml")\"}" >/dev/null
# A report about a message the engine never sent is recognised, but marks nobody: anyone can
# write one naming a customer's address.
out=$("$RAPPORT" mail receive < "$corpus/bounce.eml" 2>&1)
check 'grep -q "\"dropped\":\"bounce\"" <<<"$out" && grep -q "unverified" <<<"$out"' "a forged bounce was not set apart: $out"
expect 0 '"email_bouncing":false' -- find contact --where '{"last_name": "Gone"}'
# The same report about a message the engine did send to that address marks it.
gone_mid=$("$RAPPORT" mail send --to nobody@example.com --subject Hello --body x --now | grep -o '<[^>]*>')
orig_mid=$(python3 -c 'import sys, re; t = open(sys.argv[1], encoding="latin-1").read(); print(re.findall(r"Message-ID:\s*(<[^>]*>)", t, re.I)[-1])' "$corpus/bounce.eml")
python3 -c 'import sys; t = open(sys.argv[1], "rb").read(); t = t.replace(sys.argv[2].encode(), sys.argv[3].encode()).replace(b"<20261207031044.9A1B2C3D4E@mx.rapport.example>", b"<real-bounce-1@mx.example>"); open(sys.argv[4], "wb").write(t)' "$corpus/bounce.eml" "$orig_mid" "$gone_mid" "$tmp/real_bounce.eml"
out=$("$RAPPORT" mail receive < "$tmp/real_bounce.eml" 2>&1)
check '[ "$(count ticket)" = "$tickets" ]' "a bounce opened a ticket"
expect 0 '"email_bouncing":true' -- find contact --where '{"last_name": "Gone"}'
check '"$RAPPORT" find interaction --where "{\"external_id\": \"$gone_mid\"}" | grep -q "\"status\":\"bounced\""' "the bounced message was not marked: $out"
# A message larger than one stored text: a 2 MB file in parts, a 1.5 MB text cut on the
# interaction and kept whole as message.txt; nothing refused, nothing lost.
python3 - "$tmp/big.eml" "$tmp/big.bin" <<'PY'
import sys, os, email.message
blob = os.urandom(2_000_000)
open(sys.argv[2], "wb").write(blob)
m = email.message.EmailMessage()
m["From"] = "sara@example.org"; m["To"] = "support@example.com"
m["Subject"] = "the scans"; m["Message-ID"] = "<big-1@example.org>"
m.set_content("سلام " * 300_000)
m.add_attachment(blob, maintype="application", subtype="octet-stream", filename="scans.bin")
open(sys.argv[1], "wb").write(bytes(m))
PY
out=$("$RAPPORT" mail receive < "$tmp/big.eml" 2>&1)
bid=$(python3 -c 'import sys, json; print(json.loads(sys.argv[1])["interaction"])' "$out" 2>/dev/null)
check '[ -n "$bid" ]' "a large message was refused: $(head -c 300 <<<"$out")"
"$RAPPORT" find attachment --where "{\"interaction\": ${bid:-0}}" > "$tmp/atts.jsonl"
aid=$(python3 -c 'import sys, json
for l in open(sys.argv[1]):
    a = json.loads(l)
    if a["filename"] == "scans.bin": print(a["id"], a["parts"])' "$tmp/atts.jsonl")
check '[ "${aid#* }" = 3 ]' "the 2 MB file is not in three parts: $aid"
"$RAPPORT" find attachment_part --where "{\"attachment\": ${aid%% *}}" --order seq > "$tmp/parts.jsonl"
check 'python3 -c "import sys, json, base64; d = b\"\".join(base64.b64decode(json.loads(l)[\"data\"]) for l in open(sys.argv[1])); sys.exit(0 if d == open(sys.argv[2], \"rb\").read() else 1)" "$tmp/parts.jsonl" "$tmp/big.bin"' "the file's parts do not join into the file"
check 'grep -q "message.txt" "$tmp/atts.jsonl"' "the whole text was not kept as message.txt"
# Not a message at all: the MTA is told it is the data's fault (EX_DATAERR).
"$RAPPORT" mail receive < "$corpus/garbage.eml" >/dev/null 2>&1
check '[ $? = 65 ]' "garbage was not refused with 65"

# ---- notes, mentions, followers, notifications ----
printf 'password1\n' | "$RAPPORT" users add ana --role admin --password-stdin >/dev/null
printf 'password1\n' | "$RAPPORT" users add bob --role admin --password-stdin >/dev/null
expect 0 'email' -- users email ana ana@example.com
expect 1 'not an email address' -- users email ana 'not an address'
expect 0 'follows' -- follow contact 1 bob
expect 0 'note' -- note contact 1 'Call @ana about the refund; mail ana@example.com' --author bob
expect 0 'mentioned you' -- notifications ana
expect 0 'no unread' -- notifications bob
"$RAPPORT" note contact 1 'bob should see this' --author ana >/dev/null
expect 0 'new note (internal) interaction' -- notifications bob
# A notification says what happened, not what was said: a follower's role may not read it.
check '! "$RAPPORT" notifications bob | grep -q "should see"' "a notification carried the note's text"
expect 0 '1 marked read' -- notifications ana --read all
expect 0 'no unread' -- notifications ana
expect 1 'no user' -- follow contact 1 nobody

# ---- the timeline ----
"$RAPPORT" update contact 1 '{"title": "CTO"}' >/dev/null
tl=$("$RAPPORT" timeline contact 1 --json)
check '[ "$(wc -l <<<"$tl")" -ge 6 ]' "the contact's timeline is short: $tl"
check 'head -1 <<<"$tl" | grep -q "\"kind\":\"change\""' "the newest item is not the title change: $(head -1 <<<"$tl")"
check 'grep -q "\"channel\":\"email\",\"direction\":\"in\"" <<<"$tl"' "the reply is not on the timeline"
check 'grep -q "\"channel\":\"note\"" <<<"$tl"' "the note is not on the timeline"
# An account's timeline holds its people's conversations (the 360° view).
expect 0 '"channel":"email"' -- timeline account 1 --json
# Paging: two pages of 3 hold six different items, newest first.
p1=$("$RAPPORT" timeline contact 1 --json --limit 3 2>"$tmp/more")
cur=$(sed -n "s/^more: --before '\(.*\)'$/\1/p" "$tmp/more")
p2=$("$RAPPORT" timeline contact 1 --json --limit 3 --before "$cur" 2>/dev/null)
check '[ -n "$cur" ] && [ "$(printf "%s\n%s\n" "$p1" "$p2" | sort -u | wc -l)" = 6 ]' "paging repeated or lost items: $cur"
expect 0 '"kind":"interaction"' -- timeline contact 1 --json --kind interaction
expect 2 'usage' -- timeline contact
expect 1 'not one of' -- timeline contact 1 --kind gossip
expect 1 'no contact' -- timeline contact 999

# Over HTTP, as a role that may read contacts but not interactions: nothing said shows.
"$RAPPORT" config set roles.viewer '{"entities": {"contact": {"read": "all"}, "account": {"read": "all"}}}' >/dev/null
printf 'password1\n' | "$RAPPORT" users add vic --role viewer --password-stdin >/dev/null
"$RAPPORT" config set roles.rep '{"entities": {"contact": {"read": "all"}, "account": {"read": "all"}, "interaction": {"read": "all", "create": true}, "interaction_link": {"read": "all", "create": true}, "notification": {"read": "own", "create": true, "update": "own"}}}' >/dev/null
printf 'password1\n' | "$RAPPORT" users add rupert --role rep --password-stdin >/dev/null
"$RAPPORT" serve --listen 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
serve_pid=$!
port=$(listened_port "$tmp/serve.log")
U="http://127.0.0.1:$port"
# The server came back: serve sends what waited (the retry) and what Lua queued.
for _ in $(seq 100); do
    [ "$(count interaction --where '{"status": "sent"}')" = 3 ] && break
    sleep 0.1
done
check '[ "$(count interaction --where '"'"'{"status": "sent"}'"'"')" = 3 ]' "serve did not send the waiting mail: $(tail -5 "$tmp/serve.log")"
check '[ "$(delivered)" = 4 ]' "the SMTP server did not get the four messages"
tok=$(token_of ana)
req GET /api/v1/contact/1/timeline
is 200 '"channel":"note"' "GET the timeline as an admin"
req GET '/api/v1/contact/1/timeline?limit=2'
is 200 '"next":"' "a page of 2 has a cursor"
req GET '/api/v1/contact/1/timeline?colour=red'
is 422 'before, limit and kinds' "an unknown parameter is refused"
req GET /api/v1/contact/999/timeline
is 404 '' "the timeline of no record"
req GET /api/v1/contact/1/gossip
is 404 'no such path' "a view no plugin serves"
tok=$(token_of vic)
req GET /api/v1/contact/1/timeline
is 200 '"kind":"change"' "the viewer sees the contact's changes"
check '! grep -q "\"kind\":\"interaction\"" <<<"$body"' "the viewer saw interactions it may not read: $body"
req GET /api/v1/plugins/collaborative/notifications
is 403 'notification.read' "a role without notifications is told so"
req GET /api/v1//plugins/collaborative//notifications
is 403 'notification.read' "doubled slashes reach the same route"
# A rep who may create notifications only for herself still notes a followed contact and
# mentions a colleague: the notifications are the plugin's to give.
tok=$(token_of rupert)
req POST /api/v1/plugins/collaborative/notes '{"entity": "contact", "id": 1, "text": "spoke to her, @ana"}'
is 201 '"id"' "a rep's note with a mention"
expect 0 'rupert mentioned you' -- notifications ana
check '"$RAPPORT" notifications bob | grep -q "new note"' "the follower was not told of the rep's note"
req GET /api/v1/plugins/collaborative/notifications
is 200 '"data":[]' "the rep reads only her own notifications"

# ---- a campaign: only consenting members, once each, with one-click unsubscribe ----
tok=$(token_of ana)
"$RAPPORT" config set plugin.collaborative.unsubscribe_url "\"$U/api/v1/plugins/collaborative/unsubscribe\"" >/dev/null
"$RAPPORT" config set plugin.collaborative.unsubscribe_secret '"s3cret-for-links"' >/dev/null
"$RAPPORT" config set plugin.collaborative.campaign_pause '"1s"' >/dev/null
"$RAPPORT" config set plugin.collaborative.campaign_batch 1 >/dev/null
"$RAPPORT" create mailing_list '{"name": "News"}' >/dev/null
for who in 'Keen keen@example.org' 'Shy shy@example.org' 'Left left@example.org'; do
    set -- $who
    "$RAPPORT" create contact "{\"last_name\": \"$1\", \"email\": \"$2\"}" >/dev/null
done
keen=$("$RAPPORT" find contact --where '{"last_name": "Keen"}' | python3 -c 'import sys, json; print(json.loads(sys.stdin.readline())["id"])')
for n in Keen Shy Left; do
    cid=$("$RAPPORT" find contact --where "{\"last_name\": \"$n\"}" | python3 -c 'import sys, json; print(json.loads(sys.stdin.readline())["id"])')
    "$RAPPORT" create list_member "{\"list\": 1, \"contact\": $cid, \"opted_in_at\": \"2026-01-01T00:00:00Z\", \"source\": \"form\"}" >/dev/null
done
"$RAPPORT" update contact "$("$RAPPORT" find contact --where '{"last_name": "Shy"}' | python3 -c 'import sys, json; print(json.loads(sys.stdin.readline())["id"])')" '{"email_opt_out": true}' >/dev/null
"$RAPPORT" update list_member 3 '{"opted_out_at": "2026-02-01T00:00:00Z", "opt_out_source": "form"}' >/dev/null
"$RAPPORT" create campaign '{"name": "Spring", "list": 1, "subject": "تخفیف بهاری", "body": "Hello"}' >/dev/null
before=$(delivered)
expect 0 'sending' -- campaign send 1
for _ in $(seq 100); do
    "$RAPPORT" get campaign 1 | grep -q '"send_status": "sent"' && [ "$(delivered)" -gt "$before" ] && break
    sleep 0.1
done
for _ in $(seq 50); do "$RAPPORT" get campaign 1 | grep -q '"sent_count": 1' && break; sleep 0.1; done
camp=$("$RAPPORT" get campaign 1)
check 'grep -q "\"sent_count\": 1" <<<"$camp" && grep -q "\"skipped_count\": 1" <<<"$camp"' "the campaign counts are wrong: $camp"
check '[ "$(count interaction --where "{\"campaign\": 1, \"status\": \"refused\"}")" = 1 ]' "the opted-out member's refusal was not recorded"
check '[ "$(count interaction --where "{\"campaign\": 1, \"contact\": 6}")" = 0 ]' "a member who left the list was written to"
expect 1 'sent already' -- campaign send 1
cmsg=$(grep -l 'keen@example.org' "$tmp/mbox/new"/* | head -1)
heads=$(python3 -c 'import sys, email, email.policy; m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default); print(m["subject"]); print(m["list-unsubscribe"]); print(m["list-unsubscribe-post"])' "$cmsg" 2>&1)
check 'grep -qx "تخفیف بهاری" <<<"$heads"' "the campaign subject did not decode: $heads"
check 'grep -qx "List-Unsubscribe=One-Click" <<<"$heads"' "no one-click unsubscribe: $heads"
link=$(sed -n 's/^<\(http[^>]*\)>.*$/\1/p' <<<"$heads" | head -1)
# A scanner following the link with GET unsubscribes nobody; the one click (a POST) does.
curl -s "$link" >/dev/null
check '"$RAPPORT" get contact "$keen" | grep -q "\"email_opt_out\": false"' "a GET of the unsubscribe link unsubscribed"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data 'List-Unsubscribe=One-Click' "$link")
check '[ "$code" = 200 ]' "the one-click unsubscribe failed: $code ($link)"
expect 0 '"email_opt_out": true' -- get contact "$keen"
expect 0 '"opt_out_source": "one-click unsubscribe"' -- get list_member 1
check '"$RAPPORT" get campaign 1 | grep -q "\"unsubscribe_count\": 1"' "the unsubscribe was not counted"

# ---- the daily digest: open tasks and unread notifications, as automatic mail ----
"$RAPPORT" create activity '{"kind": "task", "subject": "Send the contract", "owner": "ana"}' >/dev/null
"$RAPPORT" note contact 1 '@ana the contract?' --author bob >/dev/null
expect 0 '1 digest mails queued' -- digest --user ana
for _ in $(seq 100); do grep -lq 'Your day' "$tmp/mbox/new"/* 2>/dev/null && break; sleep 0.1; done
dmsg=$(grep -l 'Your day' "$tmp/mbox/new"/* | head -1)
check '[ -n "$dmsg" ] && grep -qi "^Auto-Submitted: auto-generated" "$dmsg" && grep -q "Send the contract" "$dmsg"' "the digest did not arrive as automatic mail with the task"
# Notifications go out once; with the task done too, there is nothing to say.
tid=$("$RAPPORT" find activity --where '{"subject": "Send the contract"}' | python3 -c 'import sys, json; print(json.loads(sys.stdin.readline())["id"])')
"$RAPPORT" update activity "$tid" '{"done": true}' >/dev/null
expect 0 '0 digest mails queued' -- digest --user ana

# Unsubscribe is public but signed: a forged link changes nothing.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/api/v1/plugins/collaborative/unsubscribe?t=1.00000000000000000000000000000000")
check '[ "$code" = 403 ]' "a forged unsubscribe link was not refused: $code"
kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; serve_pid=
finish
