# lib.sh — what the end-to-end tests share: pass/fail counting and running rapport.
# Source it after setting RAPPORT; end the test with `finish`.

passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect STATUS NEEDLE -- ARGS…: runs rapport, checks the exit status and that NEEDLE is in the
# output (stdout and stderr together).
expect() {
    local want=$1 needle=$2; shift 3
    local out status
    out=$("$RAPPORT" "$@" 2>&1); status=$?
    if [ "$status" != "$want" ]; then
        bad "rapport $*: exit $status, wanted $want; output: $out"
    elif [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$out"; then
        bad "rapport $*: output lacks \"$needle\": $out"
    else
        ok
    fi
}

# check CONDITION MESSAGE: counts CONDITION (a shell expression) as passed, or fails with MESSAGE.
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# count ENTITY [ARGS…]: how many records rapport counts.
count() { "$RAPPORT" count "$@" 2>/dev/null; }

# listened_port LOG [TRIES]: the port `rapport serve --listen 127.0.0.1:0` took, read from its
# "listening on 127.0.0.1:PORT" line in LOG, waiting TRIES × 0.05 s (default 400: a loaded
# machine may take seconds to start it); empty if none.
listened_port() {
    local p
    for _ in $(seq "${2:-400}"); do
        p=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$1" 2>/dev/null | cut -d: -f2)
        [ -n "$p" ] && { echo "$p"; return; }
        sleep 0.05
    done
}

# token_of USER: a new API token for USER.
token_of() { "$RAPPORT" tokens create --user "$1" 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*' | head -1; }

# The API, for tests that set $tmp, $tok (a token) and $U (http://127.0.0.1:PORT):
# req METHOD PATH [BODY] [extra curl args…]: sets $code and $body.
req() {
    local m=$1 p=$2 d=${3-}; shift 2; [ $# -gt 0 ] && shift
    local args=(-s -o "$tmp/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $tok")
    [ -n "$d" ] && args+=(-H 'Content-Type: application/json' --data-binary "$d")
    code=$(curl "${args[@]}" "$@" "$U$p")
    body=$(cat "$tmp/body")
}
# is CODE NEEDLE WHAT: the last answer had status CODE and contains NEEDLE.
is() {
    if [ "$code" != "$1" ]; then bad "$3: status $code, wanted $1: $body"
    elif [ -n "$2" ] && ! grep -qF -- "$2" <<<"$body"; then bad "$3: lacks $2: $body"
    else ok; fi
}

# The summary line, and the exit status: 0 when nothing failed.
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

# free_port: a loopback port free now (the kernel's pick), for a server the test starts.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# smtp_start: a real SMTP server (aiosmtpd, Debian's python3) on $smtp_port delivering to the
# Maildir $tmp/mbox, its log in $tmp/smtp.log; sets smtp_pid (the test's trap stops it) and
# returns once it accepts connections.
smtp_start() {
    /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$tmp/mbox" \
        >"$tmp/smtp.log" 2>&1 &
    smtp_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $smtp_port), 0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    bad "aiosmtpd did not start"
}
