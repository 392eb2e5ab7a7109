#!/usr/bin/env bash
# it_resend — a proxy that forwards a request on a kept-alive tunnel and then closes before
# the answer (the farm's "cut" behaviour): libcurl would send the request again on a fresh
# connection at once, and the target would see two requests from one address within one
# interval. scatter refuses the second send: the attempt fails, anchored as sent, and the task
# goes on elsewhere. Every task ok, 0 violations, and the target saw the cut requests.
source "$(dirname "$0")/lib.sh"
it_init 39

farm_up --mix-counts --mix cut=4 --good-latency-ms 2 --interval-ms 300 --urls 60 --target "$T1"
write_ini "$FARM_DIR/proxies.txt" 300 "race_width = 1" "adaptive_race = false" "workers = 1"
daemon_up
frc=0
ctl fetch -q -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || frc=$?
expect_eq "fetch exit status" "$frc" 0
expect_eq "60 tasks answered" "$(grep -c . "$TMP/out.jsonl")" 60
expect_eq "all 60 ok" "$(jq -s 'map(select(.ok)) | length' "$TMP/out.jsonl")" 60
st=$(status_json)
echo "# stalls: $(echo "$st" | jq -c .stalls)"
failed=$(echo "$st" | jq -r .stalls.attempts_failed)
expect_ge "attempts failed on cut tunnels (the second use of each connection)" "$failed" 10
reqs=$(fstats "$T1" .requests)
expect_ge "the target saw the cut requests too (60 answered + the cut ones)" "$reqs" $((60 + failed / 2))
expect_eq "zero violations at the target" "$(fstats "$T1" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
