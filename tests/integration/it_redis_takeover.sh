#!/usr/bin/env bash
# it_redis_takeover — two instances (shard = 0/2 and 1/2) on one stream, redis_claim_idle =
# 2 s; instance 0's master and workers are killed with SIGKILL in the middle of a 2,000-task
# `scatterctl fetch --redis`: the entries it had taken and not acknowledged are claimed
# (XPENDING, XCLAIM) and completed by instance 1, every task is answered once in the output (a
# second result for a task that had run is dropped by the client), 0 rate-limit violations.
source "$(dirname "$0")/lib.sh"
it_init 41
source "$(dirname "$0")/redis_lib.sh"
N=2000

farm_up --proxies 200 --mix "good=90,flaky=10" --seed 41 --interval-ms 500 --urls "$N"
redis_up --appendonly no
inst_ini 0 0/2 "redis_claim_idle = 2s"
inst_ini 1 1/2 "redis_claim_idle = 2s"
inst_up 0
inst_up 1
sleep 0.6 # past the start gate

rfetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" &
fpid=$!
EXTRA_PIDS+=("$fpid")
for i in $(seq 1 100); do
  [ "$(wc -l <"$TMP/out.jsonl" 2>/dev/null || echo 0)" -ge 300 ] && break; sleep 0.05
done
victims="${IPID[0]} $(pgrep -P "${IPID[0]}" | tr '\n' ' ')"
pend=$(rcli XPENDING it:tasks scatter | head -n 1)
kill -KILL $victims
done_before=$(wc -l <"$TMP/out.jsonl")
echo "# killed instance 0 (pids $victims) with $done_before tasks answered, $pend entries pending in the group"
expect_ge "entries were pending when instance 0 died" "$pend" 1
frc=0; wait "$fpid" || frc=$?
tail -n 2 "$TMP/fetch.err" | sed 's/^/# /'
check "fetch --redis exit status 0 or 1 (got $frc)" test "$frc" -le 1
grep "redis: claimed" "$TMP/i1/scatterd.log" | head -n 3 | sed 's/^/# i1: /'
claimed=$(grep -o 'claimed [0-9]* entries' "$TMP/i1/scatterd.log" | awk '{s += $2} END {print s + 0}')
expect_ge "instance 1 claimed the dead instance's entries" "$claimed" 1
expect_eq "status redis.claimed counts what the log says" "$(ictl 1 status --json | jq -r .redis.claimed)" "$claimed"
expect_batch_answered "$TMP/out.jsonl" "$N"
expect_eq "nothing left pending in the group" "$(rcli XPENDING it:tasks scatter | head -n 1)" 0
expect_eq "task stream empty" "$(rcli XLEN it:tasks)" 0
insts_stop 1
no_sanitizer_report "$TMP/fetch.err"
finish
