#!/usr/bin/env bash
# it_worker_lost_counters — a worker killed with SIGKILL twice while it holds hundreds of
# tasks and attempts: the master returns what it owed the shared pending / inflight counters
# (pool_capacity and max_inflight are checked against them), so once idle both are 0 again and
# a fresh batch of 1,000 completes in full. Before the fix the dead workers' share stayed
# counted forever and new tasks ended pool_full or "timeout after 0 attempts".
source "$(dirname "$0")/lib.sh"
it_init 12

farm_up --proxies 200 --mix "good=50,slow=50" --slow-ms 4000-4000 --seed 12 --interval-ms 300 --urls 1000
write_ini "$FARM_DIR/proxies.txt" 300 "pool_capacity = 700" "max_inflight = 400"
daemon_up
head -n 300 "$FARM_DIR/urls.txt" >"$TMP/slow1.txt"
sed -n 301,600p "$FARM_DIR/urls.txt" >"$TMP/slow2.txt"

kill_round() { # kill_round N URLFILE — 300 tasks on worker 1's own socket, then SIGKILL it
  local n="$1" urls="$2" victim st
  CTL_TIMEOUT=30 ctl -s "$SOCK.1" fetch -i "$urls" --jsonl "$TMP/k$n.jsonl" >/dev/null 2>&1 &
  local fpid=$!
  EXTRA_PIDS+=("$fpid")
  sleep 1.5
  st=$(status_json)
  echo "# before kill $n: pending $(echo "$st" | jq .tasks.pending) inflight $(echo "$st" | jq .inflight)"
  victim=$(grep 'worker 1: started (pid' "$TMP/scatterd.log" | tail -n 1 | sed 's/.*(pid \([0-9]*\)).*/\1/')
  kill -KILL "$victim"
  kill_pid "$fpid" 1
  for i in $(seq 1 100); do
    [ "$(grep -c 'restarted' "$TMP/scatterd.log")" -ge "$n" ] && break
    sleep 0.1
  done
  WORKER_PIDS="$(worker_pids)"
  echo "# worker 1 ($victim) killed and restarted: $(grep 'killed by signal' "$TMP/scatterd.log" | tail -n 1 | sed 's/.*released/released/')"
}
kill_round 1 "$TMP/slow1.txt"
kill_round 2 "$TMP/slow2.txt"
check "master logged two restarts" test "$(grep -c restarted "$TMP/scatterd.log")" -ge 2
check "the master returned pending tasks of a dead worker" \
  grep -Eq 'released [0-9]+ rate-limit words, [1-9][0-9]* pending tasks' "$TMP/scatterd.log"

# worker 2 had nothing of these; once the dead workers' share is returned, both counters are 0
p=-1; f=-1
for i in $(seq 1 100); do
  st=$(status_json)
  p=$(echo "$st" | jq .tasks.pending); f=$(echo "$st" | jq .inflight)
  [ "$p" = 0 ] && [ "$f" = 0 ] && break
  sleep 0.1
done
expect_eq "pending back to 0 after two SIGKILLs" "$p" 0
expect_eq "inflight back to 0 after two SIGKILLs" "$f" 0

sed -n 601,1000p "$FARM_DIR/urls.txt" >"$TMP/fresh.txt"
cat "$TMP/fresh.txt" "$TMP/slow1.txt" "$TMP/slow2.txt" >"$TMP/batch.txt"
CTL_TIMEOUT=120 ctl fetch -i "$TMP/batch.txt" --jsonl "$TMP/batch.jsonl" 2>"$TMP/batch.err" || true
tail -n 1 "$TMP/batch.err" | sed 's/^/# /'
expect_eq "fresh batch: every task answered" "$(wc -l <"$TMP/batch.jsonl")" 1000
expect_eq "fresh batch: every task ok" "$(jq -r 'select(.ok) | .n' "$TMP/batch.jsonl" | wc -l)" 1000
jq -r 'select(.ok|not) | "\(.error) \(.message)"' "$TMP/batch.jsonl" | sort | uniq -c | head -5 | sed 's/^/# failed: /'
for t in "$T1" "$T2"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
