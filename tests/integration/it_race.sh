#!/usr/bin/env bash
# it_race — the race: one task over K = 3 proxies of which one is slow (2 s before it even
# connects). The first good response must win well before the slow one could answer, and the
# slow attempt must be cancelled, not counted as a failure.
source "$(dirname "$0")/lib.sh"
it_init 3

farm_up --mix-counts --mix slow=1,good=2 --slow-ms 2000 --good-latency-ms 5 --interval-ms 100 --urls 1 --target "$T1"
write_ini "$FARM_DIR/proxies.txt" 100 "race_width = 3" "adaptive_race = false"
daemon_up
before=$(status_json)
frc=0
ctl fetch --race 3 "http://$T1/item/1" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || frc=$?
cat "$TMP/out.jsonl" | sed 's/^/# /'
expect_eq "fetch exit status" "$frc" 0
expect_eq "task ok" "$(jq -r .ok "$TMP/out.jsonl")" true
expect_eq "raced over 3 proxies" "$(jq -r .race "$TMP/out.jsonl")" 3
lat=$(jq -r .latency_ms "$TMP/out.jsonl")
expect_le "latency_ms well below the slow proxy's 2000 ms" "$lat" 1000
slow=$(jq -r '.proxies[] | select(.behaviour == "slow") | .url' "$FARM_DIR/truth.json")
check "winner is not the slow proxy ($slow)" test "$(jq -r .proxy "$TMP/out.jsonl")" != "$slow"
sleep 0.3
st=$(status_json)
echo "# stalls: $(echo "$st" | jq -c .stalls)"
c0=$(echo "$before" | jq -r .stalls.attempts_cancelled); c1=$(echo "$st" | jq -r .stalls.attempts_cancelled)
f0=$(echo "$before" | jq -r .stalls.attempts_failed); f1=$(echo "$st" | jq -r .stalls.attempts_failed)
expect_ge "attempts_cancelled grew by >= 1" "$((c1 - c0))" 1
expect_eq "attempts_failed did not grow" "$((f1 - f0))" 0
expect_eq "rl_held == 0" "$(echo "$st" | jq -r .stalls.rl_held)" 0
expect_eq "zero violations" "$(fstats "$T1" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
