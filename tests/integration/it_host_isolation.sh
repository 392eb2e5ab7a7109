#!/usr/bin/env bash
# it_host_isolation — per-host pools: target 2 is served only by a pool of dead proxies
# (refused and blackholed), target 1 by good ones. Target 1's throughput with target 2's
# hopeless tasks running alongside must stay within 10 % of target 1 alone: a host whose
# proxies are all cooling or dead cannot slow down another host.
source "$(dirname "$0")/lib.sh"
it_init 7

farm_up --mix-counts --mix good=20,refuse=10,blackhole=10 --good-latency-ms 2 --interval-ms 200 --urls 1
jq -r '.proxies[] | select(.behaviour == "good") | .url' "$FARM_DIR/truth.json" >"$TMP/good.txt"
jq -r '.proxies[] | select(.behaviour != "good") | .url' "$FARM_DIR/truth.json" >"$TMP/bad.txt"
write_ini "$TMP/good.txt" 200 "connect_timeout = 1000" "max_attempts = 0" "task_timeout = 8"
sed -i "s|^sources = .*|sources = \"good=$TMP/good.txt, bad=$TMP/bad.txt\"|" "$TMP/scatter.ini"
printf '[host:%s]\nsources = good\n[host:%s]\nsources = bad\n' "$T1" "$T2" >>"$TMP/scatter.ini"
daemon_up
for i in $(seq 1 400); do echo "http://$T1/item/$i"; done >"$TMP/t1.txt"
for i in $(seq 1 200); do echo "http://$T2/item/$i"; done >"$TMP/t2.txt"

run_t1() { # -> tasks/s for target 1
  local s e
  s=$(date +%s.%N)
  ctl fetch -i "$TMP/t1.txt" --jsonl "$TMP/$1.jsonl" --quiet 2>/dev/null || true
  e=$(date +%s.%N)
  expect_eq "$1: every target 1 task ok" "$(grep -c '"ok":true' "$TMP/$1.jsonl")" 400
  awk -v s="$s" -v e="$e" 'BEGIN{printf "%.1f", 400 / (e - s)}'
}
alone=$(run_t1 alone | tail -1)
echo "# target 1 alone: $alone tasks/s"
sleep 0.6 # let every pair's interval pass
ctl fetch -i "$TMP/t2.txt" --jsonl "$TMP/t2.jsonl" --quiet 2>/dev/null & F2=$!
EXTRA_PIDS+=("$F2")
sleep 1
shared=$(run_t1 shared | tail -1)
echo "# target 1 beside the dead host: $shared tasks/s"
wait "$F2" || true
expect_eq "target 2: every task answered" "$(wc -l <"$TMP/t2.jsonl")" 200
expect_eq "target 2: none succeeded (its pool is dead)" "$(grep -c '"ok":true' "$TMP/t2.jsonl" || true)" 0
check "target 1 throughput beside the dead host within 10 % of alone ($shared vs $alone)" \
  awk -v a="$alone" -v b="$shared" 'BEGIN{exit !(b >= 0.9 * a)}'
expect_eq "no good proxy was used for target 2" "$(fstats "$T2" .requests)" 0
expect_eq "zero violations at target 1" "$(fstats "$T1" .violations)" 0
st=$(status_json)
echo "# hosts: $(echo "$st" | jq -c '[.hosts[] | {name, circuit, healthy, cooling, dead}]')"
expect_eq "rl_held == 0" "$(echo "$st" | jq -r .stalls.rl_held)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
