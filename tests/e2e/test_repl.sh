#!/usr/bin/env bash
# End-to-end: `rapport repl` fed through a pipe (multi-line chunks, records as a table, errors
# that do not end the session, :dry on, :help) while `rapport serve` runs on the same database,
# and, when tmux is installed, tab completion and the history file in a real terminal.
set -u
# The bare core (no built-in plugins): these tests define their own entities, such as a
# "contact" of their own; the built-in plugins' entities are driven by their own tests.
export RAPPORT_PLUGINS_BUILTIN=0
RAPPORT=$(realpath "${RAPPORT:-build/rapport}")
tmp=$(mktemp -d)
serve_pid=
tmux_sock="$tmp/tmux.sock"
cleanup() {
    [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
    command -v tmux >/dev/null && tmux -S "$tmux_sock" kill-server 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export RAPPORT_DB="$tmp/crm.db" RAPPORT_SCRIPTS="$tmp/scripts" RAPPORT_HISTORY="$tmp/history"
# Tables fit $COLUMNS when stdout is not a terminal: the same width wherever the test runs.
export COLUMNS=80
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# repl INPUT: runs the REPL on INPUT; $out holds stdout and stderr together, $status the exit.
repl() {
    out=$("$RAPPORT" repl 2>&1 <<<"$1"); status=$?
}
# has PATTERN WHAT: the last output has a line matching the extended regular expression.
has() {
    if grep -qE -- "$1" <<<"$out"; then ok; else bad "$2: no line matching /$1/ in:"$'\n'"$out"; fi
}
lacks() {
    if grep -qE -- "$1" <<<"$out"; then bad "$2: a line matches /$1/ in:"$'\n'"$out"; else ok; fi
}

mkdir -p "$tmp/scripts"
# A before-hook, so a dry run shows a change the input did not make itself.
cat > "$tmp/scripts/won.lua" <<'EOF'
crm.before("contact.update", function(rec, old)
  if rec.stage == "won" and old.stage ~= "won" then rec.notes = "closed" end
end)
EOF
"$RAPPORT" init >/dev/null
"$RAPPORT" define contact '{"fields": {"first_name": {"type": "text"}, "last_name": {"type": "text", "required": true}, "email": {"type": "email"}, "stage": {"type": "enum", "values": ["new", "won"], "default": "new"}, "notes": {"type": "text"}}}' >/dev/null
"$RAPPORT" create contact '[{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.example"}, {"last_name": "Turing", "notes": "Wrote a paper on computable numbers and later one on morphogenesis"}]' >/dev/null
"$RAPPORT" serve --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!

# A function defined over several lines, then called.
repl $'function double(n)\n  local d = n * 2\n  return d\nend\ndouble(21)'
has '^42$' "a multi-line function"
[ "$status" = 0 ] && ok || bad "repl exited $status at the end of its input"

# A find prints a table: a header, a rule, aligned rows with long values cut, a count.
repl 'crm.find("contact", {order = "id"})'
has '^id  email             first_name  last_name  notes +stage$' "the table header"
has '^--  -+  -+  -+  -+  -+$' "the table rule"
has '^1   ada@acme\.example  Ada         Lovelace   +new$' "a table row"
has '^2 +Turing +Wrote a paper on computable…  new$' "a long value cut to fit 80 columns"
has '^\(2 records\)$' "the record count"
repl 'crm.get("contact", 1)'
has '^last_name  = Lovelace$' "a record as field = value lines"

# Errors print file:line: message and the session goes on.
repl $'nosuch()\ndo\n  local t = {}\n  t.x.y = 1\nend\ncrm.create("contact", {emial = "x"})\n1 + 1'
has "^repl:1: attempt to call a nil value \(global 'nosuch'\)$" "a runtime error"
has "^repl:3: attempt to index a nil value \(field 'x'\)$" "an error on line 3 of a chunk"
has '^repl:1: RP-E1203: unknown field "emial" on contact' "a store error"
has '^2$' "the input after the errors"
repl $'x = = 1\n"still here"'
has "^repl:1: unexpected symbol near '='$" "a syntax error"
has '^still here$' "the input after a syntax error"
repl $'function broken()\n  return 1'
has "^repl:2: 'end' expected .*near <eof>$" "a chunk cut off by the end of the input"

# :dry on shows the diff (the hook's change too, events, jobs) and saves nothing.
repl $':dry on\ncrm.update("contact", 1, {stage = "won"})\ncrm.after("1h", "followup", {contact = 1}, {key = "f1"})\n:dry off\ncrm.get("contact", 1).stage'
has '^dry run is on' "the :dry on answer"
has '^stage      = won$' "the dry run's result"
has '^dry run: would have changed 1 record$' "the diff's title"
has '^entity +id +change +field +old +new$' "the diff table's header"
has '^contact +1 +updated +stage +"new" +→ +"won"$' "the old and new value in the diff table"
has '^contact +1 +updated +notes +nil +→ +"closed"$' "the hook's change in the diff table"
has '^  contact.updated contact 1$' "the event it would cause"
has '^  followup due [0-9T:.-]+Z key f1 \{"contact":1\}$' "the job it would schedule"
has '^nothing was saved$' "the dry run's last word"
has '^dry run is off$' "the :dry off answer"
has '^new$' "the record read after the dry run"
repl $':dry on\ncrm.update("contact", 1, {stage = "won"})\nnosuch()\n"after"'
has "^repl:1: attempt to call a nil value \(global 'nosuch'\)$" "an error in a dry run"
has '^after$' "the input after an error in a dry run"
out=$("$RAPPORT" get contact 1)
has '"stage": "new"' "the record, read by another process after the dry run"
lacks '"notes": "closed"' "the hook's change, after the dry run"
out=$("$RAPPORT" jobs list)
lacks 'followup' "the job, after the dry run"

# :help, unknown commands, and :quit ending the session before the rest of the input.
repl $':help\n:frob\n:quit\n"not run"'
for c in ':help ' ':dry on\|off ' ':wide \[on\|off\] ' ':next ' ':explain ENTITY ID FIELD ' \
    ':time INPUT ' ':quit '; do
    has "^  $c" ":help lists $c"
done
has 'unknown command ":frob"' "an unknown command"
lacks 'not run' "input after :quit"

# The live database: another process writes between two inputs (the REPL holds no lock while
# it waits), and the REPL sees the write; `rapport serve` keeps running alongside.
out=$({
    echo 'crm.count("contact")'
    sleep 0.3
    if "$RAPPORT" create contact '{"last_name": "Outside"}' >/dev/null 2>&1; then
        echo '"the outside write went through"'
    fi
    echo 'crm.count("contact")'
    echo 'crm.create("contact", {last_name = "Inside"}).id'
} | "$RAPPORT" repl 2>&1)
has '^2$' "the count before the outside write"
has '^the outside write went through$' "a write by another process while the REPL waits"
has '^3$' "the count after the outside write"
has '^4$' "a write from the REPL while serve runs"
kill -0 "$serve_pid" 2>/dev/null && ok || bad "serve died: $(cat "$tmp/serve.log")"
kill -TERM "$serve_pid"; wait "$serve_pid"; st=$?; serve_pid=
[ "$st" = 0 ] && ok || bad "serve exited $st: $(cat "$tmp/serve.log")"

# ---- Tables fit the width: $COLUMNS through a pipe, the terminal's own size through a pty ----
# widths: the display width of each line of $out between a table's rule and its count, one per
# line (Persian marks and joiners take no column, CJK two); "bad-utf8" if a cut split a char.
widths() {
    python3 -c '
import sys, unicodedata
raw = sys.stdin.buffer.read()
try:
    text = raw.decode("utf-8")
except UnicodeDecodeError:
    print("bad-utf8"); sys.exit()
def width(s):
    w = 0
    for ch in s:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w
inside = False
for line in text.replace("\r", "").split("\n"):
    if line.startswith("--") and set(line) <= {"-", " "}:
        inside = True
    elif line.startswith("("):
        inside = False
    if inside:
        print(width(line))
' <<<"$out"
}
# fits N WHAT: every table line of $out is at most N columns wide, and one is exactly N.
fits() {
    local w; w=$(widths)
    if grep -q bad-utf8 <<<"$w"; then bad "$2: a cut split a UTF-8 character in:"$'\n'"$out"; return; fi
    local max; max=$(sort -n <<<"$w" | tail -1)
    if [ -n "$max" ] && [ "$max" -le "$1" ]; then ok; else bad "$2: a line is $max wide, over $1:"$'\n'"$out"; fi
    if grep -qx "$1" <<<"$w"; then ok; else bad "$2: no line uses all $1 columns:"$'\n'"$out"; fi
}
fa='یادداشتی طولانی درباره‌ی این مشتری با اِعراب و نیم‌فاصله که از عرض پنجره بیشتر است'
ja='顧客についての長いメモです。端末の幅より長い文章です。'
"$RAPPORT" create contact "[{\"last_name\": \"Rostami\", \"notes\": \"$fa\"}, {\"last_name\": \"Sato\", \"notes\": \"$ja\"}]" >/dev/null
wide_find='crm.find("contact", {where = {last_name = {["in"] = {"Rostami", "Sato"}}}, order = "id"})'
out=$(COLUMNS=50 "$RAPPORT" repl 2>&1 <<<"$wide_find")
fits 50 "COLUMNS=50"
has '^id  last_name  notes +stage$' "the header at 50 columns"
has '^5   Rostami    یادداشتی طولانی .*…  new$' "Persian text cut with …, its column aligned"
has '^6   Sato       顧客についての.*…  +new$' "CJK text cut with …"
lacks "$fa" "the whole Persian note at 50 columns"
out=$(COLUMNS=50 "$RAPPORT" repl 2>&1 <<<$':wide\n'"$wide_find"$'\n:wide\n'"$wide_find")
has '^wide is on: tables show every value whole$' "the :wide answer"
has "^5   Rostami    $fa  new$" ":wide shows the whole Persian note"
has "^6   Sato       $ja  +new$" ":wide shows the whole CJK note"
has '^wide is off: tables are cut with … to fit the terminal$' "the second :wide"
[ "$(grep -cE '…  +new$' <<<"$out")" = 2 ] && ok || bad ":wide off cuts again: $out"
# A terminal's width wins over $COLUMNS: stdout is a pty of 44 columns.
out=$(COLUMNS=200 python3 - "$RAPPORT" "$wide_find" <<'PY'
import fcntl, os, pty, struct, subprocess, sys, termios
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 44, 0, 0))
p = subprocess.Popen([sys.argv[1], "repl"], stdin=subprocess.PIPE, stdout=slave, stderr=slave)
os.close(slave)
p.stdin.write(sys.argv[2].encode() + b"\n")
p.stdin.close()
data = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
p.wait()
sys.stdout.write(data.decode("utf-8", "replace").replace("\r", ""))
PY
)
fits 44 "a pty of 44 columns"
has '^5   Rostami    .*…  new$' "the Persian note cut in the pty"

# ---- Pages: the cursor as the call that fetches the next page, and :next ----
page='crm.find("contact", {order = "id", limit = 2, fields = {"last_name"}})'
repl "$page"$'\n:next\n:next\n:next\n:next\n"after the last page"'
# Over 80 columns, the hint leaves the query out (:next still has it).
has '^-- more \(:next\): crm\.find\("contact", \{…, after = "[A-Za-z0-9_=-]+"\}\)$' "the next-page hint, short"
lacks '^[A-Za-z0-9_=-]{20,}$' "a bare cursor"
for n in 1 2 3 4 5 6; do
    [ "$(grep -cE "^$n +[A-Z]" <<<"$out")" = 1 ] && ok || bad "record $n is not on exactly one page: $out"
done
[ "$(grep -c '^-- more' <<<"$out")" = 2 ] && ok || bad "three pages need two hints: $out"
has '^\(2 records\)$' "a page of two"
has 'repl: :next: there is no next page' ":next past the last page"
has '^after the last page$' "the input after :next"
# The hint is Lua: typed as shown, it fetches the same page :next fetches.
repl $':wide\n'"$page"
has '^-- more \(:next\): crm\.find\("contact", \{fields = \{"last_name"\}, limit = 2, order = "id", after = "[A-Za-z0-9_=-]+"\}\)$' "the whole next-page hint"
hint=$(grep '^-- more' <<<"$out" | head -1 | sed 's/^-- more (:next): //')
repl "$hint"
has '^3 +Outside$' "the hint typed in, page two"
lacks '^1 +' "page one, when the hint is typed in"
repl $':wide on\ncrm.find("contact", {limit = 1, where = {notes = {ne = "a\\"b\\n"}}})\n:next'
has '^-- more \(:next\): crm\.find\("contact", \{limit = 1, where = \{notes = \{ne = "a\\"b\\n"\}\}, after = ' "a query with quotes written back as Lua"
has '^2 +Turing' ":next with a filter"
# crm.find's messages are unchanged by the REPL's following it.
repl $'crm.find(nil)\ndo\n  crm.find("contact", 3)\nend'
has "^repl:1: bad argument #1 to 'find' \(string expected, got nil\)$" "crm.find's argument error"
has "^repl:2: bad argument #2 to 'find' \(table expected, got number\)$" "crm.find's error placed at its line"

# ---- :explain: why a field has its value ----
"$RAPPORT" update contact 1 '{"stage": "won"}' >/dev/null
repl $':explain contact 1 stage\n:explain contact 1 email\n:explain contact 2 first_name\n:explain contact\n:explain contact one stage\n:explain contact 1 emial\n:explain contact 1 stage extra\n:explain contact 99999999999999999999999 stage'
has '^contact 1 stage: 2 recorded changes, oldest first; the last one set its value$' ":explain's title"
has '^seq +at +change +old +new +by +via$' ":explain's header"
has '^[0-9]+ +20[0-9-]+T[0-9:.]+Z +contact\.created +nil +→ +"new" +[^ ]+ +[a-z]+$' "the created row"
has '^[0-9]+ +20[0-9-]+T[0-9:.]+Z +contact\.updated +"new" +→ +"won" +[^ ]+ +cli$' "the update row"
has '^contact 1 email: 1 recorded change' ":explain of a field set once"
has '^contact 2: no recorded change of first_name$' ":explain of a field never set"
has '^repl: :explain needs ENTITY ID FIELD, e.g. :explain contact 1 stage$' ":explain without enough words"
has '^repl: :explain: the id must be a positive whole number, not "one"$' ":explain with a bad id"
has '^repl: :explain: the id must be a positive whole number, not "99999999999999999999999"$' ":explain with an id past 64 bits"
has '^repl: :explain: RP-E1203: unknown field "emial" on contact$' ":explain of an unknown field"
has '^repl: :explain needs ENTITY ID FIELD and nothing more' ":explain with a word too many"
# A change a handler made in answer to another: the cause is shown.
cat > "$tmp/scripts/chain.lua" <<'EOF'
crm.on("contact.updated", function(ev)
  if ev.record_id == 6 then crm.update("contact", 5, {first_name = "Chained"}) end
end)
EOF
"$RAPPORT" update contact 6 '{"first_name": "Kenji"}' >/dev/null
"$RAPPORT" serve --poll-ms 20 2> "$tmp/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
    "$RAPPORT" get contact 5 | grep -q Chained && break
    sleep 0.05
done
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=
rm "$tmp/scripts/chain.lua"
repl $':wide\n:explain contact 5 first_name'
has '^seq +at +change +old +new +by +via +caused by$' ":explain's header with causes"
has '^[0-9]+ +20[0-9-]+T[0-9:.]+Z +contact\.updated +nil +→ +"Chained" +[^ ]+ +handler +#[0-9]+ contact\.updated contact 6 by [^ ]+$' "the cause of a handler's change"

# ---- :time ----
repl $':time crm.count("contact")\n:time (function() local s = 0 for i = 1, 200000 do s = s + i end return s end)()\n:time\n:time nosuch()'
has '^6$' ":time prints the result"
has '^time: [0-9]+\.[0-9]{3} ms wall, fewer than 100 Lua instructions$' ":time of a call into C"
has '^20000100000$' ":time prints a loop's result"
n=$(sed -nE 's/^time: [0-9.]+ ms wall, about ([0-9,]+) Lua instructions$/\1/p' <<<"$out" | tr -d ,)
[ -n "$n" ] && [ "$n" -ge 400000 ] && [ "$n" -le 2000000 ] && ok || bad ":time's instruction count ($n) for 200,000 turns: $out"
has '^repl: :time needs an input to time' ":time without an input"
has "^repl:1: attempt to call a nil value \(global 'nosuch'\)$" ":time of an input that fails"

# ---- :dry on: the diff as a table, created and deleted records too; nothing saved ----
before=$("$RAPPORT" find contact --order id)
repl $':dry on\ncrm.update("contact", 2, {stage = "won"}); crm.create("contact", {last_name = "Ghost", first_name = "Kim"}); crm.delete("contact", 3)\n:dry off'
has '^dry run: would have changed 3 records$' "the count of records a dry run would change"
has '^entity +id +change +field +old +new$' "the dry table's header"
has '^contact +2 +updated +stage +"new" +→ +"won"$' "an update in the dry table"
has '^contact +2 +updated +notes +"Wrote a paper[^→]* +→ +"closed"$' "the hook's change in the dry table"
has '^contact +7 +created +first_name +nil +→ +"Kim"$' "a created record's field"
has '^contact +7 +created +last_name +nil +→ +"Ghost"$' "a created record's other field"
has '^contact +3 +deleted +deleted_at +nil +→ +"20[0-9T:.-]+(Z"|…)$' "a deleted record"
has '^nothing was saved$' "the dry run's last word"
after=$("$RAPPORT" find contact --order id)
[ "$before" = "$after" ] && ok || bad "the database changed under :dry on:"$'\n'"$before"$'\n'"$after"
out=$("$RAPPORT" count contact); has '^6$' "no record created under :dry on"

# ---- Bad commands say what is wrong ----
repl $':wide sideways\n:dry maybe\n:next now\n:quit later\n:frob\n"still here"'
has '^repl: :wide takes on or off, not "sideways"$' ":wide with a bad word"
has '^repl: :dry takes on or off, not "maybe"$' ":dry with a bad word"
has '^repl: :next takes nothing; "now" is extra$' ":next with a word"
has '^repl: :quit takes nothing; "later" is extra$' ":quit with a word"
has '^repl: unknown command ":frob" \(:help lists them' "an unknown command"
has '^still here$' "bad commands do not end the session"

# In a terminal: Tab completes the crm API and entity names; the history file keeps inputs.
# ---- stored values never act on the terminal ---------------------------------------------------
# A value written by anyone who may create records, holding escape sequences (retitle the
# window, colour, clear the screen through C1's CSI) and a carriage return faking a line: the
# record, the table and a plain value show them as escapes, and no ESC, BEL, CR or C1 byte
# reaches the terminal.
"$RAPPORT" eval 'return crm.create("contact", {last_name = "E\27]0;PWNED\7\27[31mRED\r\nfake \194\1552J"}).id' > "$tmp/esc_id"
esc_id=$(cat "$tmp/esc_id")
for input in "crm.get(\"contact\", $esc_id)" "crm.find(\"contact\", {})" "crm.get(\"contact\", $esc_id).last_name"; do
    repl "$input"
    if LC_ALL=C grep -q $'[\x1b\x07\r]\|\xc2[\x80-\x9f]' <<<"$out"; then
        bad "$input: a control character reached the terminal: $(cat -v <<<"$out")"
    else
        ok
    fi
done
repl "crm.get(\"contact\", $esc_id)"
has 'last_name += E\\027\]0;PWNED\\007\\027\[31mRED\\013\\010fake \\194\\1552J' "the record shows the escapes"

if command -v tmux >/dev/null; then
    t() { TERM=${TERM:-xterm} tmux -S "$tmux_sock" "$@"; }
    screen() { t capture-pane -p -t repl; }
    # wait_for PATTERN: polls the screen for up to 5 s.
    wait_for() {
        for _ in $(seq 50); do screen | grep -qE -- "$1" && return 0; sleep 0.1; done
        return 1
    }
    t new-session -d -s repl -x 150 -y 40 \
        "env RAPPORT_DB='$RAPPORT_DB' RAPPORT_SCRIPTS='$RAPPORT_SCRIPTS' RAPPORT_HISTORY='$RAPPORT_HISTORY' '$RAPPORT' repl 2>'$tmp/tty.err'; touch '$tmp/tty.done'; sleep 30"
    wait_for '^rapport>' && ok || bad "no prompt in the terminal: $(screen)"
    t send-keys -t repl -l 'crm.sch'
    t send-keys -t repl Tab
    wait_for '^rapport> crm\.schema\.$' && ok || bad "Tab did not complete crm.sch: $(screen)"
    t send-keys -t repl -l 'ge'
    t send-keys -t repl Tab
    t send-keys -t repl -l '("con'
    t send-keys -t repl Tab
    wait_for '^rapport> crm\.schema\.get\(\("contact"$' && ok ||
        bad "Tab did not complete crm.schema.ge and \"con: $(screen)"
    t send-keys -t repl C-u
    # A key of a table after an entity's name: its fields.
    t send-keys -t repl -l 'crm.update("contact", 1, {la'
    t send-keys -t repl Tab
    wait_for '^rapport> crm\.update\("contact", 1, \{last_name$' && ok ||
        bad "Tab did not complete the field key {la: $(screen)"
    t send-keys -t repl C-u
    t send-keys -t repl -l '"typed " .. "in a terminal"'
    t send-keys -t repl Enter
    wait_for '^typed in a terminal$' && ok || bad "no result in the terminal: $(screen)"
    t send-keys -t repl -l ':quit'
    t send-keys -t repl Enter
    for _ in $(seq 50); do [ -e "$tmp/tty.done" ] && break; sleep 0.1; done
    [ -e "$tmp/tty.done" ] && ok || bad ":quit did not end the session: $(screen)"
    # libedit keeps the file in strvis(3) form: a space is written \040.
    grep -qF 'in\040a\040terminal' "$RAPPORT_HISTORY" && ok || bad "the history file lacks the input"
    [ "$(stat -c %a "$RAPPORT_HISTORY")" = 600 ] && ok || bad "the history file is not 0600"
    if grep -qE 'ERROR|Sanitizer' "$tmp/tty.err"; then bad "stderr: $(cat "$tmp/tty.err")"; else ok; fi
else
    echo "skipped: tab completion in a terminal (tmux is not installed)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
