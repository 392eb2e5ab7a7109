#!/usr/bin/env bash
# it_redis_restart — Redis (appendonly yes, appendfsync always) stopped and restarted in the
# middle of a 3,000-task `scatterctl fetch --redis` served by two instances (shard 0/2, 1/2;
# redis_claim_idle = 2 s): each worker logs the loss once and the reconnection once, a local
# socket client of each instance is served during the outage, the run resumes and every task
# Redis had accepted is answered (all 3,000, once each in the output), 0 violations.
source "$(dirname "$0")/lib.sh"
it_init 42
source "$(dirname "$0")/redis_lib.sh"
N=3000

farm_up --proxies 200 --mix "good=90,flaky=10" --seed 42 --interval-ms 500 --urls "$N"
redis_up --appendonly yes --appendfsync always
inst_ini 0 0/2 "redis_claim_idle = 2s"
inst_ini 1 1/2 "redis_claim_idle = 2s"
inst_up 0
inst_up 1
sleep 0.6 # past the start gate

CTL_TIMEOUT=150 rfetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" &
fpid=$!
EXTRA_PIDS+=("$fpid")
for i in $(seq 1 200); do
  [ "$(wc -l <"$TMP/out.jsonl" 2>/dev/null || echo 0)" -ge 400 ] && break; sleep 0.05
done
echo "# stopping redis with $(wc -l <"$TMP/out.jsonl") tasks answered, $(rcli XLEN it:tasks) entries in the stream"
redis_stop
sleep 1
for k in 0 1; do
  ictl "$k" fetch "http://$T1/item/99999$k" --jsonl "$TMP/local$k.jsonl" 2>/dev/null || true
  expect_eq "i$k serves a local socket client while redis is down" "$(jq -r .ok "$TMP/local$k.jsonl" 2>/dev/null)" true
done
lost=$(cat "$TMP"/i*/scatterd.log | grep -c "redis: connection to .* lost" || true)
grep -h "redis: connection to .* lost" "$TMP"/i*/scatterd.log | head -n 1 | sed 's/^/# /'
expect_eq "every worker logged the loss once" "$lost" 4
expect_eq "status while redis is down: no worker connected" "$(ictl 0 status --json | jq -r .redis.connected_workers)" 0
sleep 1.5
echo "# restarting redis (answered so far: $(wc -l <"$TMP/out.jsonl"))"
redis_up --appendonly yes --appendfsync always
frc=0; wait "$fpid" || frc=$?
tail -n 3 "$TMP/fetch.err" | sed 's/^/# /'
check "fetch --redis exit status 0 or 1 (got $frc)" test "$frc" -le 1
check "the client reconnected" grep -q "reconnected to redis" "$TMP/fetch.err"
back=$(cat "$TMP"/i*/scatterd.log | grep -c "redis: reconnected to" || true)
expect_eq "every worker logged the reconnection once" "$back" 4
for k in 0 1; do
  expect_eq "i$k status after the restart: both workers connected" "$(ictl "$k" status --json | jq -r .redis.connected_workers)" 2
done
expect_eq "no worker logged a failed attempt per retry" \
  "$(cat "$TMP"/i*/scatterd.log | grep -c "redis: cannot connect" || true)" 0
expect_batch_answered "$TMP/out.jsonl" "$N"
expect_eq "nothing left pending in the group" "$(rcli XPENDING it:tasks scatter | head -n 1)" 0
insts_stop 0 1
no_sanitizer_report "$TMP/fetch.err"
finish
