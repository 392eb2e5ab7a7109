#!/usr/bin/env bash
# it_never_fail — rounds lost only to proxy faults do not use up a task. 400 tasks with
# max_attempts = 2 on a farm where 80 % of the proxies refuse or drop connections: every
# task completes (before, a task whose first two rounds landed on bad proxies ended
# max_attempts while good proxies were idle), and every reply carries its real elapsed_ms.
source "$(dirname "$0")/lib.sh"
it_init 22

farm_up --proxies 100 --mix "good=20,refuse=40,flaky=40" --flaky-drop 1.0 --seed 21 --interval-ms 200 --urls 400
write_ini "$FARM_DIR/proxies.txt" 200 "race_width = 1" "adaptive_race = false" "max_attempts = 2" \
  "cooldown_consecutive_fails = 1000" "eviction_min_samples = 100000"
daemon_up
CTL_TIMEOUT=100 ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || true
tail -n 1 "$TMP/fetch.err" | sed 's/^/# /'
jq -r 'select(.ok|not) | "\(.error) \(.message)"' "$TMP/out.jsonl" | sort | uniq -c | head -5 | sed 's/^/# failed: /'
expect_eq "every task answered" "$(wc -l <"$TMP/out.jsonl")" 400
expect_eq "every task ok despite proxy faults" "$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)" 400
expect_ge "some tasks needed more than max_attempts rounds" "$(jq -r 'select(.attempts > 2) | .n' "$TMP/out.jsonl" | wc -l)" 1
st=$(status_json)
expect_ge "proxy-fault rounds happened (requeued)" "$(echo "$st" | jq .stalls.requeued)" 10
# a task that cannot finish reports how long it ran
# (a target that refuses through every proxy: the target's fault, so max_attempts ends it)
t0=$(date +%s%3N)
r=$(ctl raw --json '{"op":"submit","id":5,"url":"http://127.0.0.1:1/none","timeout_ms":5000}' || true)
wall=$(( $(date +%s%3N) - t0 ))
echo "# refused-port task: $(echo "$r" | jq -c '{ok, error, attempts, elapsed_ms, last_error}'), client wall ${wall} ms"
expect_eq "it ends max_attempts after 2 rounds" "$(echo "$r" | jq -c '[.error, .attempts]')" '["max_attempts",2]'
check "a failure reply carries elapsed_ms" test "$(echo "$r" | jq 'has("elapsed_ms")')" = true
expect_le "elapsed_ms within the client's wall time" "$(echo "$r" | jq '.elapsed_ms // 999999')" "$wall"
for t in "$T1" "$T2"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
