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
    # A failure with a server the test started: whether it still runs, and its last words.
    if [ "$failed" != 0 ] && [ -n "${serve_pid:-}" ] && ! kill -0 "$serve_pid" 2>/dev/null; then
        wait "$serve_pid" 2>/dev/null
        echo "the server the test started had ended (exit status $?)" >&2
    fi
    if [ "$failed" != 0 ] && [ -n "${tmp:-}" ] && [ -s "$tmp/serve.log" ]; then
        echo "--- the last lines of its log ($tmp/serve.log):" >&2
        tail -n 30 "$tmp/serve.log" >&2
    fi
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

# The mail smtp_start's server delivered to $tmp/mbox: how many, waiting for N (up to 10 s),
# the newest, the portal's sign-in token in one (token_in FILE) or in the newest to an address
# (token_for ADDRESS); empty when there is none.
delivered() { ls "$tmp/mbox/new" 2>/dev/null | wc -l; }
wait_mail() { for _ in $(seq 200); do [ "$(delivered)" -ge "$1" ] && return 0; sleep 0.05; done; return 1; }
newest_mail() { ls -t "$tmp/mbox/new"/* | head -1; }
token_in() {
    python3 -c 'import sys, email, email.policy, re
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
t = re.findall(r"/portal/#token=([A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content())
print(t[0] if t else "")' "$1"
}
token_for() {
    python3 -c 'import sys, glob, os, email, email.policy, re
fs = sorted(glob.glob(sys.argv[1] + "/new/*"), key=os.path.getmtime)
for f in reversed(fs):
    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.default)
    if sys.argv[2] in str(m["to"]):
        t = re.findall(r"/portal/#token=([A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content())
        if t:
            print(t[0]); break' "$tmp/mbox" "$1"
}

# c JAR METHOD PATH [BODY] [curl args…]: one request to $U with the cookie jar JAR (and the
# CSRF token kept in JAR.csrf, when there is one); sets $code, $body (its first megabyte) and
# $head (the headers, without CRs).
c() {
    local jar=$1 m=$2 p=$3 d=${4-}; shift 3; [ $# -gt 0 ] && shift
    rm -f "$tmp/body"
    local args=(-s -D "$tmp/head" -o "$tmp/body" -w '%{http_code}' -X "$m" -b "$jar" -c "$jar")
    [ -f "$jar.csrf" ] && args+=(-H "X-CSRF-Token: $(cat "$jar.csrf")")
    [ -n "$d" ] && args+=(-H 'Content-Type: application/json' --data-binary "$d")
    code=$(curl "${args[@]}" "$@" "$U$p")
    body=$(head -c 1000000 "$tmp/body" 2>/dev/null | tr -d '\0')
    head=$(tr -d '\r' < "$tmp/head")
}

# mail_init: a new database whose mail goes to the SMTP server smtp_start starts on $smtp_port.
mail_init() {
    "$RAPPORT" init >/dev/null
    smtp_port=$(free_port)
    "$RAPPORT" config set mail.smtp.url "\"smtp://127.0.0.1:$smtp_port\"" >/dev/null
    "$RAPPORT" config set mail.from '"Support <support@example.com>"' >/dev/null
}

# portal_serve: starts `rapport serve` (log in $tmp/serve.log; sets serve_pid, port, U) and
# points the portal's links at it (plugin.portal.url); P is the portal's routes' prefix.
portal_serve() {
    "$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 20 2> "$tmp/serve.log" &
    serve_pid=$!
    port=$(listened_port "$tmp/serve.log")
    check '[ -n "$port" ]' "serve did not say where it listens: $(cat "$tmp/serve.log")"
    U=http://127.0.0.1:$port
    "$RAPPORT" config set plugin.portal.url "\"$U\"" >/dev/null
    P=/api/v1/plugins/portal
}

# portal_sign_in JAR ADDRESS: signs a portal customer in by the link mailed to ADDRESS (a new
# one: the token of an earlier mail is not taken) into JAR; prints the session's CSRF token.
portal_sign_in() {
    local before t=
    before=$(token_for "$2")
    c "$1" POST /api/v1/plugins/portal/login/link "{\"email\": \"$2\"}"
    for _ in $(seq 200); do
        t=$(token_for "$2")
        [ -n "$t" ] && [ "$t" != "$before" ] && break
        t=
        sleep 0.05
    done
    [ -n "$t" ] || { bad "no sign-in link was mailed to $2"; return 1; }
    c "$1" POST /api/v1/plugins/portal/login/token "{\"token\": \"$t\"}"
    [ "$code" = 200 ] || { bad "signing $2 in: $code $body"; return 1; }
    grep -o '"csrf":"[0-9a-f]*"' <<<"$body" | cut -d'"' -f4
}
