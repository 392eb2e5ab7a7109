#!/usr/bin/env bash
# it_kill_worker — a worker killed with SIGKILL in the middle of a 600-task fetch on the mixed
# farm: the master restarts it, the client resubmits what the dead connection owed, every
# task is answered, >= 99% ok, zero violations, and no rate-limit word stays held.
source "$(dirname "$0")/lib.sh"
it_init 5

farm_up --proxies 200 --mix "$MIX" --seed 11 --interval-ms 500 --urls 600 --blackhole-ms 20000
write_ini "$FARM_DIR/proxies.txt" 500
daemon_up
CTL_TIMEOUT=100 ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" &
fpid=$!
EXTRA_PIDS+=("$fpid")
sleep 1.5
victim=$(echo "$WORKER_PIDS" | awk '{print $1}')
done_before=$(wc -l <"$TMP/out.jsonl")
kill -KILL "$victim"
echo "# killed worker $victim after 1.5 s ($done_before tasks answered by then)"
frc=0; wait "$fpid" || frc=$?
tail -n 1 "$TMP/fetch.err" | sed 's/^/# /'
check "fetch exit status 0 or 1 (got $frc)" test "$frc" -le 1
for i in $(seq 1 50); do grep -q restarted "$TMP/scatterd.log" && break; sleep 0.1; done
grep restarted "$TMP/scatterd.log" | sed 's/^/# /'
check "master logged the restart" grep -q "restarted" "$TMP/scatterd.log"
now=$(worker_pids)
expect_eq "two workers again" "$(echo "$now" | wc -w)" 2
check "the killed pid is gone from the workers" bash -c "! echo ' $now ' | grep -q ' $victim '"
WORKER_PIDS="$now"
expect_eq "every task answered" "$(wc -l <"$TMP/out.jsonl")" 600
expect_eq "each exactly once" "$(jq -r .n "$TMP/out.jsonl" | sort -u | wc -l)" 600
expect_ge "ok >= 99%" "$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)" 594
jq -r 'select(.ok|not) | "\(.error) \(.message)"' "$TMP/out.jsonl" | sort | uniq -c | sed 's/^/# failed: /'
for t in "$T1" "$T2"; do
  fstats "$t" '{violations, requests, status} | tostring' | sed "s/^/# $t: /"
  expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0
done
st=$(status_json)
echo "# stalls: $(echo "$st" | jq -c .stalls)"
expect_eq "rl_held == 0 (no word held by the dead worker)" "$(echo "$st" | jq -r .stalls.rl_held)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
