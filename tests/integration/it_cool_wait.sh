#!/usr/bin/env bash
# it_cool_wait — a host whose only usable pair is in flight while the rest cool down: when the
# attempt ends, the next task must go out as soon as the pair's interval allows, not when the
# earliest cooldown ends (the selection index's earliest known time). 1 good proxy, 3 that
# refuse (cooling for 30 s after one try), a 300 ms interval, 20 tasks raced over one proxy:
# about 6 s of rate limit, not 30 s of cooldown.
source "$(dirname "$0")/lib.sh"
it_init 44

farm_up --mix-counts --mix good=1,refuse=3 --good-latency-ms 2 --interval-ms 300 --urls 20 --target "$T1"
write_ini "$FARM_DIR/proxies.txt" 300 "race_width = 1" "adaptive_race = false" "workers = 1"
daemon_up
t0=$(date +%s%N)
frc=0
CTL_TIMEOUT=60 ctl fetch -q --race 1 -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || frc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "fetch exit status" "$frc" 0
expect_eq "all 20 ok" "$(jq -s 'map(select(.ok)) | length' "$TMP/out.jsonl")" 20
expect_le "20 tasks at one per 300 ms took under 15 s, not a cooldown (ms)" "$ms" 15000
expect_eq "zero violations" "$(fstats "$T1" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
