#!/usr/bin/env bash
# End-to-end: a ticket's thread in the portal, with curl against `rapport serve` and real
# portal sessions (signed in by the mailed link, caught by aiosmtpd). The customer reads the
# public interactions of their ticket (staff's mail, their own answers), never an internal
# note, in the thread and in the timeline; answers with files (an interaction channel portal,
# direction in, linked to the ticket and the contact, origin portal), which download with the
# headers that keep them from running; refusals (size, count, body, empty, unknown field, a
# closed ticket, too many in a minute) store nothing; a pending or resolved ticket is open
# again; a second customer reaches none of it by any id; a portal ticket is acknowledged by
# mail in the contact's language, a staff one is not, and the switch turns it off.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(mktemp -d)
serve_pid=
smtp_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; [ -n "$smtp_pid" ] && kill $smtp_pid 2>/dev/null; [ -n "${KEEP:-}" ] && cat "$tmp"/serve*.log > "$KEEP"; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

# subjects: the decoded subject of every delivered mail, one a line.
subjects() {
    python3 -c 'import sys, glob, email, email.policy
for f in sorted(glob.glob(sys.argv[1] + "/new/*")):
    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.default)
    print(str(m["subject"]) + " -> " + str(m["to"]))' "$tmp/mbox" 2>/dev/null
}
# wait_subject TEXT: waits (up to 10 s) for a mail whose subject holds TEXT.
wait_subject() { for _ in $(seq 200); do subjects | grep -qF -- "$1" && return 0; sleep 0.05; done; return 1; }

mail_init
"$RAPPORT" config set plugin.portal.attachment_max_bytes 200000 >/dev/null
"$RAPPORT" config set plugin.portal.attachment_max_count 2 >/dev/null
"$RAPPORT" config set plugin.portal.answers_per_minute 100 >/dev/null
"$RAPPORT" config set http.max_body_bytes 400000 >/dev/null
ids=$("$RAPPORT" eval '
local a = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local b = crm.create("contact", {first_name = "Babak", last_name = "Other", email = "babak@example.org", language = "fa"})
crm.portal.grant(a.id)
crm.portal.grant(b.id)
return table.concat({a.id, b.id}, " ")')
read -r A B <<<"$ids"
check '[ -n "${B:-}" ]' "the seed failed: $ids"

smtp_start
portal_serve
T=/api/v1/plugins/collaborative/thread/ticket
D=/api/v1/plugins/collaborative/attachments

csa=$(portal_sign_in "$tmp/a" sara@example.org)
csb=$(portal_sign_in "$tmp/b" babak@example.org)
check '[ ${#csa} = 64 ] && [ ${#csb} = 64 ]' "the customers did not sign in: [$csa] [$csb]"
XA=(-H "X-CSRF-Token: $csa")
XB=(-H "X-CSRF-Token: $csb")
nint() { count interaction; }
natt() { count attachment; }

# ---- a ticket opened in the portal is acknowledged, in the contact's language ------------------
c "$tmp/a" POST /api/v1/ticket "{\"subject\": \"Broken kettle\", \"description\": \"It leaks.\", \"contact\": $A}" "${XA[@]}"
is 201 '"subject":"Broken kettle"' "Sara opens a ticket"
TA=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
c "$tmp/b" POST /api/v1/ticket "{\"subject\": \"کتری\", \"contact\": $B}" "${XB[@]}"
is 201 '"id"' "Babak opens a ticket"
TB=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
check 'wait_subject "We received your request #$TA: Broken kettle"' "no English acknowledgement: $(subjects)"
check 'wait_subject "درخواست شما با شمارهٔ $TB دریافت شد"' "no Persian acknowledgement: $(subjects)"
check 'subjects | grep -F "#$TA" | grep -qF "sara@example.org"' "the acknowledgement is not to Sara: $(subjects)"
expect 0 'portal' -- eval "return crm.history('ticket', $TA)[1].origin"
# Staff's ticket, and a portal ticket with the switch off: no acknowledgement.
TS=$("$RAPPORT" eval "return crm.create('ticket', {subject = 'Staff opened', contact = $A}).id")
"$RAPPORT" config set plugin.portal.acknowledge false >/dev/null
c "$tmp/a" POST /api/v1/ticket "{\"subject\": \"Quiet one\", \"contact\": $A}" "${XA[@]}"
is 201 '"id"' "a ticket with the acknowledgement off"
sleep 1
check '! subjects | grep -qF "Staff opened" && ! subjects | grep -qF "Quiet one"' "an acknowledgement that should not be: $(subjects)"
"$RAPPORT" config set plugin.portal.acknowledge true >/dev/null
expect 0 '1' -- eval "return crm.count('interaction', {author = 'rapport:portal_ack', to_addr = 'sara@example.org'})"
# An administrator's words (plugin.portal.messages) in place of the rule's.
"$RAPPORT" config set plugin.portal.messages '{"en": {"ack.subject": "Got it: #{n} ({subject})"}}' >/dev/null
c "$tmp/a" POST /api/v1/ticket "{\"subject\": \"Own words\", \"contact\": $A}" "${XA[@]}"
TW=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
check 'wait_subject "Got it: #$TW (Own words)"' "the administrator's subject is not used: $(subjects)"

# ---- staff answer by mail, and write an internal note -----------------------------------------
"$RAPPORT" eval "crm.collaborative.send_email{to = 'sara@example.org', subject = 'About your kettle',
  body = 'Please send us a photo of the leak.', related = {'ticket', $TA}}" >/dev/null
check 'wait_subject "About your kettle"' "staff's mail was not sent: $(subjects)"
NOTE=$("$RAPPORT" eval "return crm.collaborative.note('ticket', $TA, 'INTERNAL-ONLY: customer is difficult', 'ana')")
NOTEATT=$("$RAPPORT" eval "return crm.create('attachment', {interaction = $NOTE, filename = 'internal.txt',
  content_type = 'text/plain', size = 6, data = 'c2VjcmV0'}).id")

# ---- the thread as Sara reads it ----------------------------------------------------------------
c "$tmp/a" GET /api/v1/ticket/$TA/thread
is 200 'Please send us a photo of the leak.' "Sara reads staff's mail in the thread"
check 'grep -qF "\"from\":\"staff\"" <<<"$body"' "staff's mail is not from staff: $body"
check '! grep -qF "INTERNAL-ONLY" <<<"$body" && ! grep -qF "internal.txt" <<<"$body"' "the internal note shows in the thread: $body"
check '! grep -qF "\"author\"" <<<"$body" && ! grep -qF "\"visibility\"" <<<"$body"' "staff's bookkeeping shows to the customer: $body"
check 'grep -qF "\"attachment_max_bytes\":200000" <<<"$body" && grep -qF "\"attachment_max_count\":2" <<<"$body"' "the limits are not said: $body"
c "$tmp/a" GET "/api/v1/ticket/$TA/timeline?kinds=interaction"
is 200 'About your kettle' "Sara's timeline of the ticket"
check '! grep -qF "INTERNAL-ONLY" <<<"$body" && ! grep -qF "\"id\":$NOTE," <<<"$body"' "the internal note shows in the timeline: $body"
c "$tmp/a" GET "/api/v1/ticket/$TA/timeline"
is 200 '"kind":"change"' "Sara's whole timeline of the ticket"
check '! grep -qF "INTERNAL-ONLY" <<<"$body" && ! grep -qF "\"actor\"" <<<"$body"' "the timeline tells a note or who of staff did what: $body"
c "$tmp/a" GET /api/v1/interaction/$NOTE
check '[ "$code" = 403 ] || [ "$code" = 404 ]' "the note by id: $code $body"
c "$tmp/a" GET $D/$NOTEATT
is 404 'no attachment' "an internal note's attachment"

# ---- Sara answers with files ------------------------------------------------------------------
printf '\x89PNG\r\n\x1a\nfake image bytes \x00\x01\x02' > "$tmp/photo.png"
printf '<script>alert(1)</script>' > "$tmp/page.html"
p64=$(base64 -w0 "$tmp/photo.png"); h64=$(base64 -w0 "$tmp/page.html")
n0=$(nint)
c "$tmp/a" POST $T/$TA "{\"text\": \"Here is the photo.\", \"attachments\": [{\"filename\": \"../../etc/le\\u0001ak.png\", \"content_type\": \"image/png\", \"data\": \"$p64\"}, {\"filename\": \"page.html\", \"content_type\": \"text/html\", \"data\": \"$h64\"}]}" "${XA[@]}"
is 201 '"filename":"leak.png"' "Sara answers with two files (the name without its folders and control characters)"
IA=$(grep -o '"id":[0-9]*' <<<"$body" | head -1 | cut -d: -f2)
check '[ "$(nint)" = $((n0 + 1)) ]' "not one interaction more: $n0 → $(nint)"
expect 0 'portal in received public' -- eval "local i = crm.get('interaction', $IA)
return table.concat({i.channel, i.direction, i.status, i.visibility}, ' ')"
expect 0 "$A" -- eval "return crm.get('interaction', $IA).contact"
expect 0 'portal' -- eval "return crm.history('interaction', $IA)[1].origin"
expect 0 'ticket:1 contact:1' -- eval "local n = {} for _, l in ipairs(crm.find('interaction_link', {where = {interaction = $IA}})) do
  local e = l.target:match('^(%a+):'); n[e] = (n[e] or 0) + 1 end
return 'ticket:' .. (n.ticket or 0) .. ' contact:' .. (n.contact or 0)"
expect 0 'Here is the photo.' -- timeline contact "$A" --kind interaction
c "$tmp/a" POST $T/$TA '{"text": "no token"}'
is 403 'X-CSRF-Token' "an answer without the CSRF token"
c "$tmp/a" GET /api/v1/ticket/$TA/thread
is 200 '"text":"Here is the photo."' "the answer is in the thread"
check 'grep -qF "\"from\":\"customer\"" <<<"$body"' "the answer is not the customer's: $body"
AP=$(grep -o '"id":[0-9]*,"filename":"leak.png"' <<<"$body" | cut -d: -f2 | cut -d, -f1)
AH=$(grep -o '"id":[0-9]*,"filename":"page.html"' <<<"$body" | cut -d: -f2 | cut -d, -f1)
check '[ -n "$AP" ] && [ -n "$AH" ]' "the files are not in the thread: $body"

# ---- downloading -----------------------------------------------------------------------------
c "$tmp/a" GET $D/$AP
check '[ "$code" = 200 ] && cmp -s "$tmp/body" "$tmp/photo.png"' "the photo's bytes: $code"
for hdr in "content-disposition: attachment; filename*=UTF-8''leak.png" 'x-content-type-options: nosniff' \
           'content-security-policy: sandbox' 'content-type: image/png'; do
    check 'grep -qiF "$hdr" <<<"$head"' "the download lacks [$hdr]: $head"
done
c "$tmp/a" GET $D/$AH
check '[ "$code" = 200 ] && cmp -s "$tmp/body" "$tmp/page.html"' "the page's bytes: $code"
check 'grep -qi "^content-type: application/octet-stream" <<<"$head"' "an HTML file is not sent as bytes: $head"
c "$tmp/a" GET /api/v1/attachment/$AP
check '! grep -qF "\"data\"" <<<"$body"' "the file's data as a field: $body"
# A file that came another way (a mail's attachment, a script): the engine cleans its name for
# the header whatever the plugin stored (no folder, no control character; UTF-8 percent-encoded).
MAILATT=$("$RAPPORT" eval "local m = crm.find('interaction', {where = {subject = 'About your kettle'}})[1]
return crm.create('attachment', {interaction = m.id, filename = '..\\\\tmp/ra\\r\\nsid.html',
  content_type = 'text/html', size = 2, data = 'aGk='}).id")
c "$tmp/a" GET $D/$MAILATT
is 200 '' "a mailed file of staff's public mail"
check 'grep -qiF "content-disposition: attachment; filename*=UTF-8'"''"'rasid.html" <<<"$head" && grep -qi "^content-type: application/octet-stream" <<<"$head"' "a stored name is not cleaned for the header: $head"
# A file kept in parts (a mail's large attachment), read back in their order.
PARTATT=$("$RAPPORT" eval "local m = crm.find('interaction', {where = {subject = 'About your kettle'}})[1]
local a = crm.create('attachment', {interaction = m.id, filename = 'parts.txt', content_type = 'text/plain', size = 11, parts = 2})
crm.create('attachment_part', {attachment = a.id, seq = 2, data = 'd29ybGQ='})
crm.create('attachment_part', {attachment = a.id, seq = 1, data = 'aGVsbG8g'})
return a.id")
c "$tmp/a" GET $D/$PARTATT
is 200 'hello world' "a file in two parts"
FAATT=$("$RAPPORT" eval "local m = crm.find('interaction', {where = {subject = 'About your kettle'}})[1]
return crm.create('attachment', {interaction = m.id, filename = 'رسید.pdf', content_type = 'application/pdf; x=1', size = 2, data = 'aGk='}).id")
c "$tmp/a" GET $D/$FAATT
check 'grep -qiF "filename*=UTF-8'"''"'%D8%B1%D8%B3%DB%8C%D8%AF.pdf" <<<"$head" && grep -qi "^content-type: application/pdf$" <<<"$head"' "a Persian name or a PDF's type: $head"

# ---- Babak reaches none of it -----------------------------------------------------------------
c "$tmp/b" GET /api/v1/ticket/$TA/thread
check '[ "$code" = 404 ] || [ "$code" = 403 ]' "Babak reads Sara's thread: $code $body"
check '! grep -qF "photo" <<<"$body"' "Babak's refusal tells: $body"
c "$tmp/b" GET $T/$TA
check '[ "$code" = 404 ] || [ "$code" = 403 ]' "Babak reads Sara's thread by the plugin's path: $code"
n1=$(nint)
c "$tmp/b" POST $T/$TA '{"text": "I am not Sara"}' "${XB[@]}"
is 404 "no ticket $TA" "Babak answers Sara's ticket"
for id in $AP $AH $NOTEATT; do
    c "$tmp/b" GET $D/$id
    is 404 'no attachment' "Babak downloads attachment $id"
    c "$tmp/b" GET /api/v1/attachment/$id
    check '[ "$code" = 404 ] || [ "$code" = 403 ]' "Babak reads attachment $id: $code $body"
done
c "$tmp/b" GET /api/v1/interaction/$IA
check '[ "$code" = 404 ] || [ "$code" = 403 ]' "Babak reads Sara's answer: $code"
c "$tmp/b" GET "/api/v1/attachment?where=%7B%22interaction%22%3A$IA%7D"
check '! grep -qF "leak.png" <<<"$body"' "Babak finds Sara's files by filter: $body"
c "$tmp/b" GET /api/v1/ticket/$TB/thread
is 200 '"items":[' "Babak's own thread"
check '! grep -qF "photo" <<<"$body"' "Sara's answer in Babak's thread: $body"
check '[ "$(nint)" = "$n1" ]' "a refused answer stored something"

# ---- refusals store nothing ------------------------------------------------------------------
n2=$(nint); a2=$(natt)
# json_file NAME FILE…: an answer whose attachments are FILEs, into $tmp/NAME.json.
json_file() {
    local out=$tmp/$1.json; shift
    python3 -c 'import sys, json, base64, os
print(json.dumps({"text": "files", "attachments": [{"filename": os.path.basename(f),
    "data": base64.b64encode(open(f, "rb").read()).decode()} for f in sys.argv[1:]]}))' "$@" > "$out"
}
head -c 200001 /dev/zero > "$tmp/big"; json_file big "$tmp/big"
c "$tmp/a" POST $T/$TA "@$tmp/big.json" "${XA[@]}"
is 422 'attachments[1].data' "a file over attachment_max_bytes"
check 'grep -qF "200000 bytes" <<<"$body"' "the refusal does not say the limit: $body"
s64=$(printf 'x' | base64)
c "$tmp/a" POST $T/$TA "{\"text\": \"three\", \"attachments\": [{\"filename\": \"1\", \"data\": \"$s64\"}, {\"filename\": \"2\", \"data\": \"$s64\"}, {\"filename\": \"3\", \"data\": \"$s64\"}]}" "${XA[@]}"
is 422 'attachment_max_count' "three files over a count of two"
head -c 190000 /dev/zero > "$tmp/b2"; head -c 190000 /dev/zero > "$tmp/b3"; json_file b2 "$tmp/b2" "$tmp/b3"
c "$tmp/a" POST $T/$TA "@$tmp/b2.json" "${XA[@]}"
is 413 'http.max_body_bytes' "a body over http.max_body_bytes"
c "$tmp/a" POST $T/$TA "{\"text\": \"ok\", \"attachments\": [{\"filename\": \"a\", \"data\": \"not base64!\"}]}" "${XA[@]}"
is 422 'attachments[1].data: not base64' "bad base64"
c "$tmp/a" POST $T/$TA "{\"text\": \"ok\", \"attachments\": [{\"filename\": \"/\", \"data\": \"$s64\"}]}" "${XA[@]}"
is 422 'attachments[1].filename' "a name that is only a folder"
c "$tmp/a" POST $T/$TA '{"text": "   "}' "${XA[@]}"
is 422 'text: an answer needs words or a file' "an empty answer"
c "$tmp/a" POST $T/$TA '{"text": "hi", "visibility": "internal"}' "${XA[@]}"
is 422 'visibility: an answer has only text and attachments' "an unknown field"
long=$(head -c 20001 /dev/zero | tr '\0' 'a')
c "$tmp/a" POST $T/$TA "{\"text\": \"$long\"}" "${XA[@]}"
is 422 'text: 20001 bytes' "a text too long"
check '[ "$(nint)" = "$n2" ] && [ "$(natt)" = "$a2" ]' "a refusal stored something: $n2/$a2 → $(nint)/$(natt)"

# ---- status: pending and resolved open again; closed refuses ---------------------------------
for st in pending resolved; do
    "$RAPPORT" update ticket "$TA" "{\"status\": \"$st\"}" >/dev/null
    c "$tmp/a" POST $T/$TA "{\"text\": \"still leaking ($st)\"}" "${XA[@]}"
    is 201 '"status":"open"' "an answer on a $st ticket opens it"
done
expect 0 'open' -- eval "return crm.get('ticket', $TA).status"
c "$tmp/a" POST $P/tickets/$TA/close '{}' "${XA[@]}"
is 200 '"status":"closed"' "Sara closes the ticket"
n3=$(nint)
c "$tmp/a" POST $T/$TA '{"text": "one more thing"}' "${XA[@]}"
is 409 "ticket $TA is closed" "an answer on a closed ticket"
check '[ "$(nint)" = "$n3" ]' "the closed ticket's answer was stored"

# ---- staff do not answer here; too many answers in a minute ---------------------------------
tok=$("$RAPPORT" users add ana --role admin --password-stdin <<<"ana staff password" >/dev/null 2>&1; token_of ana)
req POST $T/$TB '{"text": "staff"}'
is 403 'staff answer by email' "staff's answer through the portal's route"
# A colleague whose role reads tickets but no conversation: the thread is empty, no file comes.
"$RAPPORT" roles set clerk '{"entities": {"ticket": {"read": "all"}}}' >/dev/null 2>&1
tok=$("$RAPPORT" users add cleo --role clerk --password-stdin <<<"cleo staff password" >/dev/null 2>&1; token_of cleo)
req GET /api/v1/ticket/$TA/thread
is 200 '"items":[]' "a clerk's thread of the ticket"
req GET $D/$AP
is 404 'no attachment' "a clerk's download"
tok=$(token_of ana)
req GET /api/v1/ticket/$TA/thread
is 200 'INTERNAL-ONLY' "staff see the note in the thread"
check 'grep -qF "\"visibility\":\"internal\"" <<<"$body"' "staff are not told it is internal: $body"
"$RAPPORT" config set plugin.portal.answers_per_minute 3 >/dev/null
c "$tmp/b" POST $T/$TB '{"text": "1"}' "${XB[@]}"; is 201 '' "answer 1"
c "$tmp/b" POST $T/$TB '{"text": "2"}' "${XB[@]}"; is 201 '' "answer 2"
c "$tmp/b" POST $T/$TB '{"text": "3"}' "${XB[@]}"; is 201 '' "answer 3"
n4=$(nint)
c "$tmp/b" POST $T/$TB '{"text": "4"}' "${XB[@]}"
is 429 'too many answers' "a fourth answer in a minute"
check '[ "$(nint)" = "$n4" ]' "the limited answer was stored"

# The server stops cleanly; under the sanitizers (RP_SANITIZE) its log holds no report.
kill -TERM $serve_pid; wait $serve_pid 2>/dev/null; serve_pid=
check '! grep -qE "Sanitizer|runtime error" "$tmp/serve.log"' "a sanitizer's report: $(grep -E -A20 'Sanitizer|runtime error' "$tmp/serve.log" | head -40)"

finish
