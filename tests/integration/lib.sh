# lib.sh — shared helpers of the scatterd integration tests (sourced, not run).
#
# Binaries come from the environment (tests/CMakeLists.txt passes them with $<TARGET_FILE:...>):
#   SCATTERD, SCATTERCTL, SCATTER_FARM, SCATTER_TOP (the repository, for scripts/farm.sh).
# Every test calls it_init with its own slot number (1..40, 21 excepted: 127.0.251.x is
# scripts/soak.sh's); the slot picks the addresses (slots above 25: 127.2.SLOT.x):
#   targets      127.0.(230+slot).10 and .11, port 18080
#   proxies      listen on 127.0.(230+slot).1, ports 10000 + slot*250 ... (below the
#                ephemeral range, away from the farm tests' 22000-31000)
# so tests run in parallel (ctest -j2) without sharing a port or a target.
# The EXIT trap stops every process the test started, by pid: scatterd (SIGTERM, SIGKILL
# after 5 s, then any worker left), the farm (scripts/farm.sh down), extra pids (microsocks).
set -euo pipefail

: "${SCATTERD:?SCATTERD not set}" "${SCATTERCTL:?SCATTERCTL not set}" "${SCATTER_FARM:?SCATTER_FARM not set}"
SCATTER_TOP="${SCATTER_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export SCATTER_FARM
for b in "$SCATTERD" "$SCATTERCTL" "$SCATTER_FARM"; do
  [ -x "$b" ] || { echo "not executable: $b" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is required (bash scripts/deps.sh)" >&2; exit 1; }

MIX="good=30,slow=10,flaky=15,refuse=15,blackhole=10,banned=10,captcha=10"
FAILS=0
EXTRA_PIDS=()
DPID=""
WORKER_PIDS=""
FARM_DIR=""
KEEP_TMP="${KEEP_TMP:-0}"

it_init() { # it_init SLOT
  SLOT="$1"
  if [ "$SLOT" -le 25 ]; then NET="127.0.$((230 + SLOT))"; else NET="127.2.$SLOT"; fi
  T1="$NET.10:18080"
  T2="$NET.11:18080"
  PROXY_IP="$NET.1"
  PBASE=$((10000 + SLOT * 250))
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/scatter-it.XXXXXX")"
  SOCK="$TMP/scatter.sock"
  echo "# $(basename "$0"): slot $SLOT, targets $T1 $T2, proxies $PROXY_IP:$PBASE+, dir $TMP"
}

ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { # check DESCRIPTION COMMAND...
  local d="$1"; shift
  if "$@"; then ok "$d"; else fail "$d"; fi
}
# expect_ge / expect_le / expect_eq DESCRIPTION VALUE BOUND
expect_ge() { if [ "$2" -ge "$3" ] 2>/dev/null; then ok "$1 ($2 >= $3)"; else fail "$1 ($2 >= $3)"; fi; }
expect_le() { if [ "$2" -le "$3" ] 2>/dev/null; then ok "$1 ($2 <= $3)"; else fail "$1 ($2 <= $3)"; fi; }
expect_eq() { if [ "$2" = "$3" ]; then ok "$1 ($2)"; else fail "$1 (got '$2', want '$3')"; fi; }

# kill_pid PID [GRACE_S] — SIGTERM, wait, SIGKILL; reaps it if it is our child.
kill_pid() {
  local p="$1" grace="${2:-5}" i
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 $((grace * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
}

cleanup() {
  local rc=$? p
  set +e
  if [ -n "$DPID" ]; then
    kill_pid "$DPID" 5
    for p in $WORKER_PIDS; do kill -KILL "$p" 2>/dev/null; done
  fi
  for p in "${EXTRA_PIDS[@]}"; do kill_pid "$p" 2; done
  if [ -n "$FARM_DIR" ] && [ -f "$FARM_DIR/pid" ]; then
    "$SCATTER_TOP/scripts/farm.sh" down --out "$FARM_DIR" >/dev/null 2>&1
  fi
  if [ "$rc" -ne 0 ] && [ -f "$TMP/scatterd.log" ]; then
    echo "--- last lines of scatterd.log:"; tail -n 30 "$TMP/scatterd.log"
  fi
  if [ "$KEEP_TMP" = 1 ] || [ "$rc" -ne 0 ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
  if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
  echo "all checks passed"; exit 0
}

# farm_up [scatter-farm options...] — a farm in $TMP/farm with this slot's addresses.
# The caller gives the behaviour options; --out, --proxy-ip, --proxy-base-port and the
# targets ($T1, $T2 unless the caller passes --target itself) are added here.
farm_up() {
  FARM_DIR="$TMP/farm"
  local targets=(--target "$T1" --target "$T2")
  case " $* " in *" --target "*) targets=() ;; esac
  "$SCATTER_TOP/scripts/farm.sh" up --out "$FARM_DIR" --proxy-ip "$PROXY_IP" --proxy-base-port "$PBASE" \
    "${targets[@]}" "$@" >/dev/null
  echo "# farm up: $(wc -l <"$FARM_DIR/proxies.txt") proxies, pid $(cat "$FARM_DIR/pid")"
}

# fstats TARGET [JQ] — the target's /__farm/stats (filtered).
fstats() { curl -s --noproxy '*' --max-time 5 "http://$1/__farm/stats" | jq -r "${2:-.}"; }

# write_ini SOURCES_FILE INTERVAL_MS [more lines for [scatter]...] — $TMP/scatter.ini
write_ini() {
  local src="$1" interval="$2"; shift 2
  {
    echo "[scatter]"
    echo "sources = \"farm=$src\""
    echo "allow_private_proxies = true"
    echo "socket_path = \"$SOCK\""
    echo "pid_file = \"$TMP/scatterd.pid\""
    echo "workers = 2"
    echo "blocked_body = \"captcha\""
    echo "log_file = \"$TMP/scatterd.log\""
    # the HTTP front end on this slot's own address (the default 127.0.0.1:8118 would be
    # shared, through SO_REUSEPORT, by every test daemon running at once)
    case " $* " in *"http_listen"*) ;; *) echo "http_listen = \"$NET.2:8118\"" ;; esac
    # the management endpoints likewise (the master binds it alone: a shared default would
    # make every daemon but the first fail to start)
    case " $* " in *"metrics_listen"*) ;; *) echo "metrics_listen = \"$NET.3:9118\"" ;; esac
    local l; for l in "$@"; do echo "$l"; done
    echo "[rate_limit]"
    echo "interval = $interval"
  } >"$TMP/scatter.ini"
}

# scatterctl under `timeout`. Leak detection is off for the client here: these tests are about
# the daemon, and a client leak at exit would turn every exit status into 1. it_farm_mixed
# runs one fetch with leak detection on, so a client leak is still reported (by one test).
ctl() { ASAN_OPTIONS="${CTL_ASAN_OPTIONS-detect_leaks=0}" timeout "${CTL_TIMEOUT:-60}" "$SCATTERCTL" -s "$SOCK" "$@"; }

# daemon_up — scatterd -f in the background; waits until it answers status.
daemon_up() {
  "$SCATTERD" -c "$TMP/scatter.ini" -f >"$TMP/scatterd.out" 2>&1 </dev/null &
  DPID=$!
  local i
  for i in $(seq 1 100); do
    if ! kill -0 "$DPID" 2>/dev/null; then
      cat "$TMP/scatterd.out" >&2; [ -f "$TMP/scatterd.log" ] && cat "$TMP/scatterd.log" >&2
      echo "scatterd exited during start-up" >&2; DPID=""; return 1
    fi
    if [ -S "$SOCK" ] && timeout 5 "$SCATTERCTL" -s "$SOCK" status --json >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  WORKER_PIDS="$(worker_pids)"
  echo "# scatterd up: master $DPID, workers $(echo $WORKER_PIDS)"
}

worker_pids() { pgrep -P "$DPID" | sort -n | tr '\n' ' ' | sed 's/ $//'; }

# daemon_stop — SIGTERM; sets DRC to its exit status (124 when it had to be killed).
daemon_stop() {
  local i
  DRC=124
  kill -TERM "$DPID" 2>/dev/null || true
  for i in $(seq 1 200); do
    if ! kill -0 "$DPID" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$DPID/stat" 2>/dev/null)" = Z ]; then
      DRC=0; wait "$DPID" || DRC=$?; DPID=""; return 0
    fi
    sleep 0.1
  done
  kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null || true; DPID=""
}

status_json() { ctl status --json; }

# no_sanitizer_report FILE... — fails the test on an ASan/UBSan/LSan report in the files.
no_sanitizer_report() {
  local f hit=0
  for f in "$@"; do
    [ -f "$f" ] || continue
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$f"; then
      hit=1; echo "--- sanitizer report in $f:"; grep -E -A12 'ERROR: |runtime error:' "$f" | head -40
    fi
  done
  if [ "$hit" = 0 ]; then ok "no sanitizer report in $*"; else fail "sanitizer report in $*"; fi
}
