#!/usr/bin/env bash
# it_straggler — straggler hedging. A cold daemon with 3 good and 2 blackhole proxies (a
# blackhole accepts and never answers: only the 4 s connect timeout ends it) gets 12 tasks at
# once. The first wave claims all 5 pairs with one attempt each (slots are scarce), so two
# tasks sit on blackholes. Once the good proxies have proven themselves and no task waits for
# a slot, each stuck task must get an extra attempt on a good proxy and finish long before the
# connect timeout; without straggler hedging those two tasks take >= 4 s.
source "$(dirname "$0")/lib.sh"
it_init 11

farm_up --mix-counts --mix good=3,blackhole=2 --good-latency-ms 2 --interval-ms 50 --urls 12 --target "$T1"
write_ini "$FARM_DIR/proxies.txt" 50 "connect_timeout = 4000"
daemon_up
frc=0
ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || frc=$?
sed 's/^/# /' "$TMP/out.jsonl"
expect_eq "fetch exit status" "$frc" 0
expect_eq "12 answers" "$(grep -c . "$TMP/out.jsonl")" 12
expect_eq "all ok" "$(jq -s '[.[] | select(.ok)] | length' "$TMP/out.jsonl")" 12
slowest=$(jq -s 'map(.elapsed_ms) | max' "$TMP/out.jsonl")
expect_le "slowest task well below the 4,000 ms connect timeout (ms)" "$slowest" 2000
st=$(status_json)
echo "# stalls: $(echo "$st" | jq -c .stalls)"
expect_ge "straggler hedges" "$(echo "$st" | jq -r .stalls.straggler_hedges)" 1
bh=$(jq -r '[.proxies[] | select(.behaviour == "blackhole") | .url] | join(" ")' "$FARM_DIR/truth.json")
won_bh=0
for u in $bh; do won_bh=$((won_bh + $(jq -s --arg u "$u" '[.[] | select(.proxy == $u)] | length' "$TMP/out.jsonl"))); done
expect_eq "no task won through a blackhole" "$won_bh" 0
expect_eq "zero violations" "$(fstats "$T1" .violations)" 0
sleep 0.3
expect_eq "rl_held == 0" "$(status_json | jq -r .stalls.rl_held)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
