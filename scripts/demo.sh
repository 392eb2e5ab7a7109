#!/usr/bin/env bash
# demo.sh — scatter end to end on one machine, offline (loopback only):
#   1. installs what is missing (scripts/deps.sh; Debian 12, as root or with sudo)
#   2. Release build into build/
#   3. a loopback farm: 200 unreliable SOCKS5 proxies (good, slow, flaky, refuse, blackhole,
#      banned, captcha) and two targets that allow one request per 500 ms per proxy address
#   4. scatterd on that farm, then 1,000 URLs through `scatterctl fetch` (progress bar)
#   5. `scatterctl status`, and each target's own count of requests and rate-limit violations
# Everything it starts is stopped on exit (by pid). Exit status 0 only when every task
# succeeded and the targets saw no rate-limit violation.
#
#   scripts/demo.sh            (from any directory; KEEP=1 keeps the temp dir)
set -euo pipefail

TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$TOP/build"
TARGETS=(127.0.0.10:18080 127.0.0.11:18080)
INTERVAL_MS=500
NURLS=1000
KEEP="${KEEP:-0}"

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

DIR=""
DPID=""
FPID=""
FARM_STARTED=0
cleanup() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  if [ -n "$FPID" ]; then kill -TERM "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null; fi
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null
    for i in $(seq 1 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DPID" 2>/dev/null; then
      echo "demo: scatterd (pid $DPID) still runs after 20 s, sending SIGKILL" >&2
      kill -KILL "$DPID" 2>/dev/null
    fi
    wait "$DPID" 2>/dev/null
  fi
  if [ "$FARM_STARTED" = 1 ] && [ -f "$DIR/farm/pid" ]; then
    "$TOP/scripts/farm.sh" down --out "$DIR/farm" >/dev/null 2>&1
  fi
  if [ -n "$DIR" ] && [ -d "$DIR" ]; then
    if [ "$rc" = 130 ] || [ "$rc" = 143 ]; then echo "demo: interrupted; everything it started is stopped" >&2; fi
    if [ "$KEEP" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ]; }; then
      [ -f "$DIR/scatterd.log" ] && [ "$rc" -ne 0 ] && { echo "--- last lines of $DIR/scatterd.log:"; tail -n 20 "$DIR/scatterd.log"; }
      echo "demo: files kept in $DIR"
    else
      rm -rf "$DIR"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "dependencies (scripts/deps.sh)"
bash "$TOP/scripts/deps.sh"
echo "ok"

say "Release build into $BUILD"
cmake -S "$TOP" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSCATTER_TESTS=OFF >"${TMPDIR:-/tmp}/scatter-demo-cmake.log" 2>&1 ||
  { cat "${TMPDIR:-/tmp}/scatter-demo-cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" -j"$(nproc)" >"${TMPDIR:-/tmp}/scatter-demo-build.log" 2>&1 ||
  { tail -n 40 "${TMPDIR:-/tmp}/scatter-demo-build.log" >&2; die "build failed"; }
SCATTERD="$BUILD/master/scatterd"
SCATTERCTL="$BUILD/ctl/scatterctl"
export SCATTER_FARM="$BUILD/tests/farm/scatter-farm"
for b in "$SCATTERD" "$SCATTERCTL" "$SCATTER_FARM"; do [ -x "$b" ] || die "not built: $b"; done
rm -f "${TMPDIR:-/tmp}/scatter-demo-cmake.log" "${TMPDIR:-/tmp}/scatter-demo-build.log"
echo "ok: $("$SCATTERD" --version)"

DIR="$(mktemp -d "${TMPDIR:-/tmp}/scatter-demo.XXXXXX")"
SOCK="$DIR/scatter.sock"

say "farm: 200 proxies, targets ${TARGETS[*]} (one request per ${INTERVAL_MS} ms per proxy)"
for t in "${TARGETS[@]}"; do
  if curl -s --noproxy '*' --max-time 1 -o /dev/null "http://$t/__farm/stats"; then
    die "something already answers on $t (another demo running?)"
  fi
done
"$TOP/scripts/farm.sh" up --out "$DIR/farm" --proxies 200 \
  --mix good=30,slow=10,flaky=15,refuse=15,blackhole=10,banned=10,captcha=10 --seed 7 \
  --target "${TARGETS[0]}" --target "${TARGETS[1]}" --interval-ms "$INTERVAL_MS" --urls "$NURLS" >/dev/null
FARM_STARTED=1
echo "farm pid $(cat "$DIR/farm/pid"): $(wc -l <"$DIR/farm/proxies.txt") proxies," \
  "$(wc -l <"$DIR/farm/urls.txt") URLs in $DIR/farm/urls.txt"
echo "behaviours: $(cut -f2 "$DIR/farm/truth.tsv" | sort | uniq -c | awk '{print $1 " " $2}' | paste -sd, - | sed 's/,/, /g')"

cat >"$DIR/scatter.ini" <<EOF
[scatter]
sources = "farm=$DIR/farm/proxies.txt"
allow_private_proxies = true
socket_path = "$SOCK"
pid_file = "$DIR/scatterd.pid"
log_file = "$DIR/scatterd.log"
blocked_body = "captcha"

[rate_limit]
interval = $INTERVAL_MS
EOF

say "scatterd -c $DIR/scatter.ini"
"$SCATTERD" -c "$DIR/scatter.ini" -f >"$DIR/scatterd.out" 2>&1 </dev/null &
DPID=$!
up=0
for _ in $(seq 1 100); do
  kill -0 "$DPID" 2>/dev/null || { cat "$DIR/scatterd.out" "$DIR/scatterd.log" 2>/dev/null >&2; DPID=""; die "scatterd exited during start-up"; }
  if [ -S "$SOCK" ] && "$SCATTERCTL" -s "$SOCK" status --json >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
[ "$up" = 1 ] || die "scatterd did not answer within 10 s"
echo "scatterd pid $DPID, workers $(pgrep -P "$DPID" | tr '\n' ' ')"
grep -E 'source farm:' "$DIR/scatterd.log" | sed 's/^/log: /' | head -n 1 || true

say "scatterctl fetch -i urls.txt -o bodies/  ($NURLS URLs over ${#TARGETS[@]} targets)"
# in the background + wait, so that a SIGTERM to this script is handled at once
frc=0
"$SCATTERCTL" -s "$SOCK" fetch -i "$DIR/farm/urls.txt" -o "$DIR/bodies" &
FPID=$!
wait "$FPID" || frc=$?
FPID=""
ok_tasks=$(find "$DIR/bodies" -name '*.body' 2>/dev/null | wc -l)

say "scatterctl status"
"$SCATTERCTL" -s "$SOCK" status || true

say "what the targets saw (their own counters, /__farm/stats)"
violations=0
for t in "${TARGETS[@]}"; do
  js="$(curl -s --noproxy '*' --max-time 5 "http://$t/__farm/stats")" || js=""
  if [ -z "$js" ]; then echo "$t: no answer"; violations=$((violations + 1)); continue; fi
  if command -v jq >/dev/null; then
    echo "$js" | jq -r '"\(.target): \(.requests) requests, \(.status["200"] // 0) x 200 (captcha pages included), \(.status["429"] // 0) x 429, " +
      "\(.status["403"] // 0) x 403, \(.violations) violations, \(.items_distinct) distinct items, " +
      "\(.sources | length) proxy addresses seen"'
    v=$(echo "$js" | jq -r .violations)
  else
    echo "$t: $js"
    v=$(echo "$js" | sed -n 's/.*"violations":\([0-9]*\).*/\1/p' | head -n 1)
  fi
  case "$v" in ''|*[!0-9]*) echo "$t: no violation count in its stats" >&2; v=1 ;; esac
  violations=$((violations + v))
done

say "verdict"
echo "$ok_tasks/$NURLS tasks ok, $violations rate-limit violations at the targets"
if [ "$frc" -ne 0 ] || [ "$ok_tasks" -ne "$NURLS" ] || [ "$violations" -ne 0 ]; then
  echo "demo: FAILED (fetch exit status $frc)" >&2
  exit 1
fi
