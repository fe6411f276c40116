#!/usr/bin/env bash
# The collaborative plugin's email, each figure beside a floor measured in the same run:
#
# 1. Sending: N messages queued (crm.collaborative.send_email in one `rapport eval` Lua loop;
#    queueing is timed and shown but is not the figure), then `rapport serve` started and timed
#    from its start until N interactions are "sent" (polled read-only every 20 ms): the job
#    claims, the MIME build, the status writes and the SMTP exchanges, as production sends.
#    This and not `mail send --now` per message, which would time process starts; and not an
#    eval loop, which cannot reach the sending path (send_email only queues). The floor:
#    smtp_floor.c, libcurl alone sending N messages of the same shape to the same server, one
#    connection per message as the plugin makes, from as many threads as serve sends with
#    (libuv's pool: UV_THREADPOOL_SIZE, default 4); run before and after the engine, the mean
#    of the two is the floor. The server is aiosmtpd with the Sink handler (it discards), so its
#    own speed is in both sides. Issue target: engine/curl >= 0.5.
# 2. Receiving: N generated messages (distinct Message-IDs, 100 known senders and 5 unknown
#    ones, a fifth of them replies to the mail sent in 1 by its reply address, a tenth
#    follow-ups of the sender's own earlier message) each handed to its own
#    `rapport mail receive` process, as an MTA's pipe does, so a process start is in every
#    message. The floor, interleaved (one after every fifth message, so both see the same
#    machine): `rapport eval 'return 1'` process starts, and `/bin/true` (the driver's own
#    spawning cost).
#
# Usage: bash bench/bench_mail.sh [N]   (default 10,000; RAPPORT=path/to/rapport,
#        default build-release/rapport; BENCH_KEEP=1 keeps the folder)
# Needs /usr/bin/python3 with aiosmtpd (python3-aiosmtpd), a C compiler and libcurl's headers
# (the floor is compiled here, to a temporary folder).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
RAPPORT=${RAPPORT:-build-release/rapport}
PY=/usr/bin/python3 # Debian's, where python3-aiosmtpd is installed
n=${1:-${BENCH_N:-10000}}
threads=${UV_THREADPOOL_SIZE:-4}

die() { echo "bench_mail: $*" >&2; exit 1; }
[ -x "$RAPPORT" ] || die "no rapport binary at $RAPPORT (RAPPORT=path/to/rapport)"
RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT")
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 100 ] || die "usage: bench_mail.sh [messages >= 100]"
"$PY" -c 'import aiosmtpd' 2>/dev/null || die "$PY has no aiosmtpd (apt install python3-aiosmtpd)"

tmp=$(mktemp -d /tmp/rp-bench-mail-XXXXXX)
smtp_pid=
cleanup() {
    if [ -n "$smtp_pid" ]; then kill "$smtp_pid" 2>/dev/null; wait "$smtp_pid" 2>/dev/null || true; fi
    if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
export RAPPORT_DB="$tmp/crm.db"

# ---- the SMTP server, shared by both sides -------------------------------------------------
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
"$PY" -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Sink >"$tmp/smtp.log" 2>&1 &
smtp_pid=$!
for _ in $(seq 100); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" \
        2>/dev/null && break
    sleep 0.05
done
url="smtp://127.0.0.1:$port"

cc -std=c11 -O2 -Wall -Wextra -Werror -o "$tmp/smtp_floor" "$here/smtp_floor.c" \
    $(pkg-config --cflags --libs libcurl) -lpthread || die "cannot compile smtp_floor.c"

floor() { # threads -> "seconds sent failed"
    "$tmp/smtp_floor" "$url" "$n" "$1" || die "the curl floor failed: $(cat "$tmp/smtp.log")"
}

# ---- the engine: queue, then serve drains ---------------------------------------------------
"$RAPPORT" init >/dev/null
{
    echo "first_name,last_name,email"
    for i in $(seq 100); do echo "Customer,Number$i,customer$i@example.org"; done
} >"$tmp/contacts.csv"
"$RAPPORT" import contact "$tmp/contacts.csv" --quiet >/dev/null
"$RAPPORT" config set mail.smtp.url "\"$url\"" >/dev/null
"$RAPPORT" config set mail.from '"Support <support@example.com>"' >/dev/null
"$RAPPORT" config set plugin.collaborative.reply_to '"reply@example.com"' >/dev/null

out=$(floor "$threads")
read -r f1_s _ _ <<<"$out"
out=$(floor 1)
read -r seq_s _ _ <<<"$out"

t0=$EPOCHREALTIME
"$RAPPORT" eval "
local body = 'Hello,\n\nyour order left our warehouse today and should arrive within three ' ..
    'working days.\nYou can follow it on the carrier page.\n\nThank you for shopping with ' ..
    'us.\nSupport'
for i = 1, $n do
    local c = i % 100 + 1
    crm.collaborative.send_email{to = 'customer' .. c .. '@example.org',
        subject = 'Your order ' .. i .. ' has shipped', body = body, related = 'contact:' .. c}
end
return $n" >/dev/null
queue_s=$("$PY" -c "print($EPOCHREALTIME - $t0)")

drain_s=$("$PY" - "$RAPPORT" "$RAPPORT_DB" "$n" "$tmp/serve.log" <<'EOF'
import sqlite3, subprocess, sys, time
rapport, db, n, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0 = time.monotonic()
p = subprocess.Popen([rapport, "--db", db, "serve", "--listen", "127.0.0.1:0"],
                     stdout=subprocess.DEVNULL, stderr=open(log, "w"))
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
q = "SELECT count(*) FROM interaction WHERE status = 'sent'"
try:
    while con.execute(q).fetchone()[0] < n:
        if p.poll() is not None:
            sys.exit(f"bench_mail: serve stopped ({p.returncode}); see {log}")
        if time.monotonic() - t0 > 60 + n / 10:
            st = con.execute("SELECT status, count(*) FROM interaction GROUP BY status").fetchall()
            sys.exit(f"bench_mail: serve did not send them all in time: {st}")
        time.sleep(0.02)
    print(f"{time.monotonic() - t0:.3f}")
finally:
    p.terminate()
    p.wait()
EOF
)

out=$(floor "$threads")
read -r f2_s _ _ <<<"$out"

# ---- receiving, one process per message -----------------------------------------------------
mkdir "$tmp/in"
"$PY" - "$RAPPORT_DB" "$tmp/in" "$n" <<'EOF'
import random, sqlite3, sys
db, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(7)
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
# What was sent in part 1: a reply goes to its thread's reply address, answering its Message-ID.
sent = con.execute("SELECT i.external_id, i.to_addr, i.subject, t.token FROM interaction i "
                   "JOIN thread t ON t.id = i.thread WHERE i.status = 'sent'").fetchall()
known = [f"customer{k}@example.org" for k in range(1, 101)]
unknown = [f"stranger{k}@example.net" for k in range(1, 6)]
body = ("Hello,\r\n\r\nthe parcel has not arrived yet and the tracking page has not changed "
        "since Monday. Could you tell me where it is?\r\n\r\nThanks\r\n")
last = {}
for i in range(n):
    r = random.random()
    mid = f"<in{i:06d}.{random.getrandbits(40):010x}@example.org>"
    head = {}
    if r < 0.2 and sent:
        ext, addr, subject, token = random.choice(sent)
        frm, to, subj = addr, f"reply+{token}@example.com", "Re: " + subject
        head = {"In-Reply-To": ext, "References": ext}
    else:
        frm = random.choice(unknown) if r > 0.95 else random.choice(known)
        to, subj = "support@example.com", f"Where is my parcel? ({i})"
        if r < 0.3 and frm in last:
            prev, psubj = last[frm]
            subj = "Re: " + psubj
            head = {"In-Reply-To": prev, "References": prev}
    last[frm] = (mid, subj)
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subj}", f"Message-ID: {mid}",
             "Date: Mon, 07 Dec 2026 09:00:00 +0000", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    with open(f"{out}/{i:06d}.eml", "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n\r\n" + body)
EOF

recv=$("$PY" - "$RAPPORT" "$RAPPORT_DB" "$tmp/in" "$n" <<'EOF'
import os, subprocess, sys, time
rapport, db, src, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
null = subprocess.DEVNULL
def timed(argv, stdin=None):
    t = time.perf_counter()
    rc = subprocess.run(argv, stdin=stdin, stdout=null, stderr=subprocess.PIPE)
    t = time.perf_counter() - t
    if rc.returncode != 0:
        sys.exit(f"bench_mail: {' '.join(argv)} exited {rc.returncode}: {rc.stderr.decode()}")
    return t
recv = ev = tr = 0.0
nev = 0
t0 = time.perf_counter()
for i, name in enumerate(sorted(os.listdir(src))):
    with open(os.path.join(src, name), "rb") as f:
        recv += timed([rapport, "--db", db, "mail", "receive"], f)
    if i % 5 == 4:
        ev += timed([rapport, "--db", db, "eval", "return 1"])
        tr += timed(["/bin/true"])
        nev += 1
print(f"{recv:.3f} {ev:.3f} {tr:.3f} {nev} {time.perf_counter() - t0:.3f}")
EOF
)
read -r recv_s eval_s true_s nfloor _ <<<"$recv"
inbound=$(sqlite3 "$RAPPORT_DB" "SELECT count(*) FROM interaction WHERE direction = 'in'")
[ "$inbound" = "$n" ] || die "$n messages received but $inbound inbound interactions stored"

# ---- the figures ----------------------------------------------------------------------------
"$PY" - <<EOF
n, threads = $n, $threads
f1, f2, seq = $f1_s, $f2_s, $seq_s
drain, queue = $drain_s, $queue_s
floor = (f1 + f2) / 2
eng = n / drain
print(f"email, {n} messages, aiosmtpd Sink on loopback:")
print(f"   queue: crm.collaborative.send_email x {n} in one rapport eval   {queue:7.2f} s "
      f"({n / queue:6.0f} msg/s, not the figure)")
print(f"   floor: libcurl, {threads} threads, one connection per message   {n / floor:7.0f} msg/s "
      f"(runs of {f1:.2f} s and {f2:.2f} s; 1 thread: {n / seq:.0f} msg/s)")
print(f"   rapport serve draining the queue (from its start)        {eng:7.0f} msg/s "
      f"({drain:.2f} s)")
print(f"send: ratio engine/curl {eng * floor / n:.2f} (target >= 0.5)")
recv, ev, tr, nf = $recv_s, $eval_s, $true_s, $nfloor
print(f"   floor: /bin/true, spawned by the same driver               {nf / tr:7.0f} /s")
print(f"   floor: rapport eval 'return 1' (a process start)           {nf / ev:7.0f} /s "
      f"({1000 * ev / nf:.1f} ms each, {nf} runs interleaved)")
print(f"   rapport mail receive, one process per message              {n / recv:7.0f} msg/s "
      f"({1000 * recv / n:.1f} ms each)")
print(f"receive: ratio to a bare process start {(n / recv) / (nf / ev):.2f}")
EOF
