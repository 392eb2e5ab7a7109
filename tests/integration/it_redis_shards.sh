#!/usr/bin/env bash
# it_redis_shards — two instances (shard = 0/2 and 1/2) on one farm consume one Redis stream:
# 5,000 tasks submitted with `scatterctl fetch --redis`, each answered exactly once (5,000
# results, 5,000 distinct tasks, no duplicate result, the instances' completed + failed
# counts adding up to 5,000), 0 rate-limit violations at both targets, each instance's share
# of the tasks close to its share of the proxies, no proxy used by both (the instances' proxy
# lists are disjoint and cover the farm; every farm source that sent a request belongs to
# exactly one instance), a local socket client served meanwhile, the reply stream removed.
source "$(dirname "$0")/lib.sh"
it_init 40
source "$(dirname "$0")/redis_lib.sh"
N=${IT_REDIS_TASKS:-5000}

farm_up --proxies 200 --mix "good=85,flaky=10,refuse=5" --seed 40 --interval-ms 500 --urls "$N"
redis_up --appendonly no
inst_ini 0 0/2 "redis_batch = 64"
inst_ini 1 1/2 "redis_batch = 64"
inst_up 0
inst_up 1
for k in 0 1; do
  for i in $(seq 1 50); do
    [ "$(ictl "$k" status --json | jq -r .proxies.total)" -gt 0 ] && break; sleep 0.1
  done
  grep -m1 "redis: connected" "$TMP/i$k/scatterd.log" | sed "s/^/# i$k: /"
done
check "every worker of both instances connected to redis" \
  test "$(cat "$TMP"/i*/scatterd.log | grep -c 'redis: connected to')" -eq 4

t0=$(date +%s.%N)
frc=0
rfetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" &
fpid=$!
EXTRA_PIDS+=("$fpid")
sleep 1
# a local client of instance 0 is served while the stream runs
ictl 0 fetch "http://$T1/item/999999" --jsonl "$TMP/local.jsonl" 2>/dev/null || true
wait "$fpid" || frc=$?
echo "# fetch exit $frc, wall $(echo "$(date +%s.%N) - $t0" | bc) s"
tail -n 2 "$TMP/fetch.err" | sed 's/^/# /'
check "fetch --redis exit status 0 or 1 (got $frc)" test "$frc" -le 1
expect_eq "local socket client answered during the run" "$(jq -r .ok "$TMP/local.jsonl" 2>/dev/null)" true

expect_batch_answered "$TMP/out.jsonl" "$N"
check "no task answered twice (no duplicate result)" bash -c "! grep -q 'came twice' '$TMP/fetch.err'"
jq -r 'select(.ok|not) | "\(.error) \(.message)"' "$TMP/out.jsonl" | sort | uniq -c | sed 's/^/# failed: /'


# shares: tasks each instance ended against its share of the proxies
ran=0
for k in 0 1; do
  ictl "$k" status --json >"$TMP/st$k.json"
  ictl "$k" proxies --json --limit 1000 >"$TMP/px$k.json"
  p[$k]=$(jq -r .proxies.total "$TMP/st$k.json")
  d[$k]=$(jq -r '.tasks.completed + .tasks.failed' "$TMP/st$k.json")
  ran=$((ran + d[k]))
  echo "# i$k: shard $(jq -r .shard "$TMP/st$k.json"), $(jq -r .shard_dropped "$TMP/st$k.json") dropped," \
    "${p[$k]} proxies, ${d[$k]} tasks ended"
  expect_eq "i$k status shows its shard" "$(jq -r .shard "$TMP/st$k.json")" "$k/2"
done
expect_eq "tasks ended by the two instances add up to the tasks (none ran twice)" "$ran" $((N + 1))
ans=$(( $(jq -r .redis.answered "$TMP/st0.json") + $(jq -r .redis.answered "$TMP/st1.json") ))
expect_eq "stream entries answered by the two instances (status redis.answered) add up to the tasks" "$ans" "$N"
for k in 0 1; do
  expect_eq "i$k: both workers connected to redis (status)" "$(jq -r .redis.connected_workers "$TMP/st$k.json")" 2
done
expect_eq "proxies of the two shards add up to the farm" $((p[0] + p[1])) 200
expect_eq "i0 dropped what i1 kept" "$(jq -r .shard_dropped "$TMP/st0.json")" "${p[1]}"
for k in 0 1; do
  # per mille: tasks share vs proxies share, within 150 (15 points)
  ts=$((d[k] * 1000 / ran)); ps=$((p[k] * 1000 / 200))
  diff=$((ts > ps ? ts - ps : ps - ts))
  echo "# i$k: $ts per mille of the tasks, $ps per mille of the proxies"
  expect_le "i$k's share of the tasks is close to its share of the proxies (per mille apart)" "$diff" 150
done

curl -s --noproxy '*' --max-time 5 "http://$NET.30:9118/metrics" >"$TMP/metrics0.txt" || true
check "i0 /metrics names its shard" grep -q '^scatter_shard{k="0",n="2"} 1$' "$TMP/metrics0.txt"
check "i0 /metrics counts answered stream entries" grep -q '^scatter_redis_entries_total{event="answered"} [1-9]' "$TMP/metrics0.txt"
if command -v promtool >/dev/null; then
  check "i0 /metrics passes promtool check metrics" bash -c "promtool check metrics <'$TMP/metrics0.txt' >/dev/null 2>&1"
fi

# no proxy used by both
jq -r '.proxies[].url' "$TMP/px0.json" | sort >"$TMP/u0"
jq -r '.proxies[].url' "$TMP/px1.json" | sort >"$TMP/u1"
expect_eq "the instances' proxy lists are disjoint" "$(comm -12 "$TMP/u0" "$TMP/u1" | wc -l)" 0
for k in 0 1; do
  jq -r '.proxies[] | select(([.hosts[]? | .success + .fail] | add // 0) > 0) | .url' "$TMP/px$k.json" \
    | proxy_source | sort -u >"$TMP/used$k"
  sed 's#.*://##' "$TMP/u$k" | proxy_source | sort -u >"$TMP/src$k"
done
expect_eq "no proxy used by both instances (their own counters)" "$(comm -12 "$TMP/used0" "$TMP/used1" | wc -l)" 0
for t in "$T1" "$T2"; do farm_sources "$t"; done | awk '{print $1}' | sort -u >"$TMP/farm_used"
both=0; none=0
while read -r s; do
  in0=$(grep -cxF "$s" "$TMP/src0" || true); in1=$(grep -cxF "$s" "$TMP/src1" || true)
  [ $((in0 + in1)) -eq 2 ] && both=$((both + 1))
  [ $((in0 + in1)) -eq 0 ] && none=$((none + 1))
done <"$TMP/farm_used"
echo "# farm: $(wc -l <"$TMP/farm_used") sources sent requests; i0 used $(wc -l <"$TMP/used0"), i1 $(wc -l <"$TMP/used1")"
expect_eq "every source the farm saw is in exactly one shard (in both)" "$both" 0
expect_eq "every source the farm saw is in exactly one shard (in none)" "$none" 0
# (not checked: that the instances' own counters name every source the farm saw: a race loser
# cancelled after it was sent reaches the target but charges nobody, so its proxy may show no
# count; the shard lists above are what bounds which proxies an instance can use at all)

expect_eq "reply streams removed" "$(rcli --scan --pattern 'scatter:reply:*' | wc -l)" 0
expect_eq "task stream empty (entries deleted once answered)" "$(rcli XLEN it:tasks)" 0
expect_eq "nothing pending in the group" "$(rcli XPENDING it:tasks scatter | head -n 1)" 0

insts_stop 0 1
no_sanitizer_report "$TMP/fetch.err"
finish
