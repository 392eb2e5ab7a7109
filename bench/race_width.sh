#!/usr/bin/env bash
# bench/race_width.sh [TASKS] — adaptive race width and hedging vs fixed K = 1..5 on two proxy
# mixes (issue 5). One farm per mix, the same 2 targets at 500 ms, TASKS tasks per run; each
# configuration runs 3 times on a fresh daemon (cold table), the median tasks/s is reported with
# attempts per completed task and violations. Loopback only; every process stopped by pid.
# Prints a markdown table on stdout. Needs a Release build in build/ (scripts/demo.sh makes it).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
B="${SCATTER_BUILD:-$top/build}"
TASKS="${1:-2000}"
W="$(mktemp -d /tmp/scatter-racew.XXXXXX)"
DPID=""
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && sleep 0.5
  for f in "$W"/farm*; do [ -f "$f/pid" ] && SCATTER_FARM="$B/tests/farm/scatter-farm" "$top/scripts/farm.sh" down --out "$f" >/dev/null 2>&1; done
  rm -rf "$W"
}
trap cleanup EXIT
ctl() { "$B/ctl/scatterctl" -s "$W/s.sock" "$@"; }
run_one() {   # run_one FARMDIR MODE K  -> "tasks_per_s attempts_per_task violations p99_ms"
  local fd="$1" mode="$2" k="$3" t
  while read -r t; do curl -s -m 2 "http://$t/__farm/reset" >/dev/null; done <"$fd/targets.txt"
  cat >"$W/s.ini" <<INI
[scatter]
sources = "$fd/proxies.txt"
allow_private_proxies = true
socket_path = $W/s.sock
pid_file = $W/s.pid
workers = 2
log_level = warn
blocked_body = "captcha"
race_mode = $mode
[rate_limit]
interval = 500
INI
  "$B/master/scatterd" -c "$W/s.ini" -f 2>>"$W/d.log" & DPID=$!
  for _ in $(seq 50); do [ -S "$W/s.sock" ] && break; sleep 0.1; done
  local race=(); [ "$k" != "adaptive" ] && race=(--race "$k")
  head -n "$TASKS" "$fd/urls.txt" >"$W/u.txt"
  local t0 t1; t0=$(date +%s.%N)
  timeout 300 "$B/ctl/scatterctl" -s "$W/s.sock" fetch -i "$W/u.txt" --jsonl "$W/o.jsonl" "${race[@]}" --quiet >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  local ok att viol=0 v
  ok=$(grep -c '"ok":true' "$W/o.jsonl" || true)
  att=$(ctl status --json | jq '.stalls.attempts')
  while read -r t; do v=$(curl -s -m 2 "http://$t/__farm/stats" | jq .violations); viol=$((viol + v)); done <"$fd/targets.txt"
  kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""
  local p99
  p99=$(jq -r 'select(.ok) | .elapsed_ms' "$W/o.jsonl" | sort -n | awk '{a[NR]=$1} END{i=int(NR*0.99+0.5); if(i<1)i=1; print (NR? a[i] : 0)}')
  awk -v ok="$ok" -v a="$att" -v t0="$t0" -v t1="$t1" -v v="$viol" -v p="$p99" 'BEGIN{printf "%.1f %.2f %d %d\n", ok/(t1-t0), (ok? a/ok : 0), v, p}'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "| mix | race | tasks/s (median of 3) | min | max | attempts/task | p99 task latency (ms) | violations |"
echo "|---|---|---|---|---|---|---|---|"
mixes=(${MIXES:-}); [ ${#mixes[@]} -gt 0 ] || mixes=("default:good=30,slow=10,flaky=15,refuse=15,blackhole=10,banned=10,captcha=10"
       "hostile:good=10,slow=10,flaky=20,refuse=30,blackhole=15,banned=10,captcha=5")
i=0
for m in "${mixes[@]}"; do
  name="${m%%:*}"; mix="${m#*:}"; i=$((i + 1))
  fd="$W/farm$i"
  SCATTER_FARM="$B/tests/farm/scatter-farm" "$top/scripts/farm.sh" up --out "$fd" --proxies 200 --mix "$mix" --seed 7 \
    --target "127.0.9$i.10:18080" --target "127.0.9$i.11:18080" --interval-ms 500 --urls "$TASKS" \
    --proxy-base-port $((23000 + i * 300)) --quiet >/dev/null
  for cfg in ${CONFIGS:-"hedged:adaptive" "all:adaptive" "all:1" "all:2" "all:3" "all:4" "all:5"}; do
    cfg="${cfg/:/ }"
    set -- $cfg
    rm -f "$W/r.txt"
    for r in 1 2 3; do run_one "$fd" "$1" "$2" >>"$W/r.txt"; done
    med=$(cut -d' ' -f1 "$W/r.txt" | median); mn=$(cut -d' ' -f1 "$W/r.txt" | sort -n | head -1); mx=$(cut -d' ' -f1 "$W/r.txt" | sort -n | tail -1)
    apt=$(cut -d' ' -f2 "$W/r.txt" | median); vio=$(awk '{s+=$3} END{print s}' "$W/r.txt")
    p99=$(cut -d' ' -f4 "$W/r.txt" | median)
    label="$1, K=$2"; [ "$2" = adaptive ] && label="$1, adaptive"
    echo "| $name | $label | $med | $mn | $mx | $apt | $p99 | $vio |"
  done
done
