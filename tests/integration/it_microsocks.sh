#!/usr/bin/env bash
# it_microsocks — interoperability with a SOCKS5 server we did not write: three real
# microsocks (Debian) servers, each binding its outgoing connections to its own source
# address, in front of a farm target at 300 ms. 30 tasks must all succeed, with zero
# rate-limit violations at the target, and the winners spread over the three servers.
source "$(dirname "$0")/lib.sh"
it_init 2
command -v microsocks >/dev/null || { echo "microsocks is required (bash scripts/deps.sh)" >&2; exit 1; }

# the farm only for its target (one proxy, unused)
farm_up --target "$T1" --mix-counts --mix good=1 --interval-ms 300 --urls 30
: >"$TMP/proxies.txt"
for i in 1 2 3; do
  port=$((PBASE + 100 + i))
  microsocks -i "$PROXY_IP" -p "$port" -b "$NET.$((20 + i))" >"$TMP/microsocks$i.log" 2>&1 &
  EXTRA_PIDS+=($!)
  echo "socks5://$PROXY_IP:$port" >>"$TMP/proxies.txt"
done
for i in $(seq 1 50); do
  n=0; for p in "${EXTRA_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
  [ "$n" = 3 ] || { echo "a microsocks died:"; cat "$TMP"/microsocks*.log; exit 1; }
  if curl -s --max-time 2 --proxy "socks5://$PROXY_IP:$((PBASE + 103))" -o /dev/null "http://$T1/__farm/stats"; then break; fi
  sleep 0.1
done
echo "# microsocks pids: ${EXTRA_PIDS[*]}"

write_ini "$TMP/proxies.txt" 300
daemon_up
frc=0
ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || frc=$?
tail -n 1 "$TMP/fetch.err" | sed 's/^/# /'
expect_eq "fetch exit status" "$frc" 0
expect_eq "tasks answered" "$(wc -l <"$TMP/out.jsonl")" 30
expect_eq "tasks ok" "$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)" 30
jq -r 'select(.ok) | .proxy' "$TMP/out.jsonl" | sort | uniq -c | sed 's/^/# winners: /'
expect_eq "winners are the three microsocks servers" \
  "$(jq -r 'select(.ok) | .proxy' "$TMP/out.jsonl" | sort -u | grep -c '^socks5://')" 3
fstats "$T1" '{violations, requests, status} | tostring' | sed "s/^/# $T1: /"
expect_eq "zero violations at the target" "$(fstats "$T1" .violations)" 0
srcs=$(fstats "$T1" '.sources | keys | map(select(startswith("'"$NET"'."))) | length')
expect_eq "target saw the three microsocks source addresses" "$srcs" 3
expect_eq "rl_held == 0" "$(status_json | jq -r .stalls.rl_held)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
