#!/usr/bin/env bash
# End-to-end: `rapport serve` killed with SIGKILL in the middle of a job. The restarted engine
# finds the old one gone (no process with its pid and start time), puts its job back at once and
# runs every job within seconds — not after a lease — and each exactly once in effect. The four
# first tries without a key were claimed as one batch (each is charged one attempt and runs
# alone after the restart); the keyed job due with them was not claimed, and keeps its count.
set -u
RAPPORT=${RAPPORT:-build/rapport}
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill -9 $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"

"$RAPPORT" init >/dev/null
"$RAPPORT" define mark '{"fields": {"n": {"type": "integer"}, "attempt": {"type": "integer"}}}' >/dev/null
mkdir "$tmp/scripts"
# A slow job: it writes its mark first, then works for 700 ms (its write commits with its end).
cat > "$tmp/scripts/slow.lua" <<'EOF'
crm.job("slow", function(p, job)
  crm.create("mark", {n = p.n, attempt = job.attempts})
  local t = crm.now_ms()
  while crm.now_ms() - t < 700 do end
end)
EOF
for n in 1 2 3 4; do "$RAPPORT" jobs add slow --payload "{\"n\": $n}" >/dev/null; done
"$RAPPORT" jobs add slow --key keyed --payload '{"n": 5}' >/dev/null

"$RAPPORT" --scripts "$tmp/scripts" serve --poll-ms 20 2> "$tmp/serve1.log" &
serve_pid=$!
for _ in $(seq 200); do
    "$RAPPORT" jobs list 2>/dev/null | grep -q '"state":"running"' && break
    sleep 0.05
done
kill -9 $serve_pid
wait $serve_pid 2>/dev/null
killed=$serve_pid
serve_pid=
"$RAPPORT" jobs list > "$tmp/jobs"
running=$(grep -c '"state":"running"' "$tmp/jobs")
pending=$(grep -c '"state":"pending"' "$tmp/jobs")
check '[ "$running" = 4 ]' "the killed engine should hold its batch of four, holds $running: $(cat "$tmp/jobs")"
check '[ "$pending" = 1 ] && grep -q "\"key\":\"keyed\".*\"state\":\"pending\",\"attempts\":0\|\"state\":\"pending\",\"attempts\":0.*\"key\":\"keyed\"" "$tmp/jobs"' \
    "the keyed job should still be pending, never charged: $(cat "$tmp/jobs")"
held=$(grep '"state":"running"' "$tmp/jobs" | grep -o '"id":[0-9]*' | cut -d: -f2 | sed 's/$/:slow/' | paste -sd, -)

# The restarted engine runs them all at once: 5 × 0.7 s of work, far below the 30 s lease.
start=$(date +%s%N)
"$RAPPORT" --scripts "$tmp/scripts" serve --poll-ms 20 2> "$tmp/serve2.log" &
serve_pid=$!
for _ in $(seq 300); do
    [ "$(count mark)" = 5 ] && [ -z "$("$RAPPORT" jobs list 2>/dev/null)" ] && break
    sleep 0.05
done
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check '[ "$(count mark)" = 5 ]' "after a restart the jobs did not all run: $(count mark) marks; $(cat "$tmp/serve2.log")"
check '[ -z "$("$RAPPORT" jobs list)" ]' "jobs left after the restart: $("$RAPPORT" jobs list)"
check '[ "$elapsed_ms" -lt 15000 ]' "the jobs took $elapsed_ms ms after the restart (a lease wait?)"
check 'grep -q "warn sched reclaimed the jobs of a stopped engine owner=[^ ]*:$killed:[^ ]* jobs=$held" "$tmp/serve2.log"' \
    "no reclaim line naming pid $killed and job $held: $(grep sched "$tmp/serve2.log")"
# Each job ran once in effect: one mark per n; the batch's on their second attempt (each
# charged once for the batch the crash undid), the keyed one on its first.
"$RAPPORT" find mark > "$tmp/marks"
for n in 1 2 3 4 5; do
    c=$(grep -c "\"n\":$n[,}]" "$tmp/marks")
    check '[ "$c" = 1 ]' "job n=$n left $c marks: $(cat "$tmp/marks")"
done
check '[ "$(grep -c "\"attempt\":2" "$tmp/marks")" = 4 ]' "the batch's four jobs should have run on their second attempt: $(cat "$tmp/marks")"
check 'grep -q "\"attempt\":1,\"n\":5\|\"n\":5.*\"attempt\":1" "$tmp/marks"' "the keyed job should have run on its first attempt: $(cat "$tmp/marks")"

kill -TERM $serve_pid
wait $serve_pid; status=$?
serve_pid=
check '[ $status = 0 ]' "serve exited $status on SIGTERM"
finish
