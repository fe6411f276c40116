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

# In a terminal: Tab completes the crm API and entity names; the history file keeps inputs.
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
