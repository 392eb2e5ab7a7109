# lib.sh — shared helpers of the scatter-farm tests (sourced, not run).
#
# Every test: sources this, calls farm_start with its options, talks to the farm with curl,
# and exits; the EXIT trap stops every process the test started (by PID) and removes its
# temporary directory. Ports are derived from $$ so tests can run in parallel (ctest -j2);
# farm_start retries with other ports when one is taken.
set -uo pipefail

top="${SCATTER_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
if [ -z "${SCATTER_FARM:-}" ]; then
  for d in build build-test build-farm; do
    if [ -x "$top/$d/tests/farm/scatter-farm" ]; then SCATTER_FARM="$top/$d/tests/farm/scatter-farm"; break; fi
  done
fi
[ -x "${SCATTER_FARM:-}" ] || { echo "scatter-farm binary not found" >&2; exit 1; }
export SCATTER_FARM

TMP="$(mktemp -d "${TMPDIR:-/tmp}/farmtest.XXXXXX")"
PIDS=()
FAILS=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { # check DESCRIPTION COMMAND...
  local d="$1"; shift
  if "$@"; then ok "$d"; else fail "$d"; fi
}
finish() {
  if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
  echo "all checks passed"; exit 0
}

# farm_start [scatter-farm options...] — sets FARM_PID, FARM_DIR, TARGET, BASE.
# The caller gives no --out, --proxy-base-port or --target (unless it sets NO_DEFAULT_TARGET).
# With FARM_TLS=1 the farm also gets an HTTPS target on the same IP, next port: TLS_TARGET.
farm_start() {
  local attempt pid tip tport tls
  for attempt in 0 1 2 3 4 5; do
    BASE=$((22000 + (($$ * 7 + attempt * 997) % 900) * 10))
    tip="127.0.$((($$ + attempt) % 200 + 20)).$((($$ / 200) % 250 + 1))"
    tport=$((12000 + ($$ * 13 + attempt * 101) % 8000))
    TARGET="$tip:$tport"
    tls=()
    if [ "${FARM_TLS:-0}" = 1 ]; then
      TLS_TARGET="$tip:$((tport + 1))"
      tls=(--tls-target "$TLS_TARGET")
    fi
    FARM_DIR="$TMP/farm$attempt"
    mkdir -p "$FARM_DIR"
    "$SCATTER_FARM" --quiet --proxy-base-port "$BASE" --target "$TARGET" "${tls[@]}" --out "$FARM_DIR" "$@" \
      >"$FARM_DIR/stdout" 2>"$FARM_DIR/stderr" </dev/null &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
      [ -f "$FARM_DIR/pid" ] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if [ -f "$FARM_DIR/pid" ]; then
      FARM_PID=$pid
      return 0
    fi
    wait "$pid" 2>/dev/null
    if grep -q "in use" "$FARM_DIR/stderr"; then continue; fi
    cat "$FARM_DIR/stderr" >&2
    return 1
  done
  echo "could not find free ports" >&2
  return 1
}

# farm_stop — SIGTERM, expect exit 0, a summary on stdout, no sanitizer report, no pid file.
farm_stop() {
  kill -TERM "$FARM_PID"
  wait "$FARM_PID"
  local rc=$?
  check "farm exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
  check "summary printed on exit" grep -q '"violations"' "$FARM_DIR/stdout"
  check "pid file removed" test ! -e "$FARM_DIR/pid"
  if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$FARM_DIR/stderr"; then
    fail "sanitizer report:"; cat "$FARM_DIR/stderr"
  else
    ok "no sanitizer report"
  fi
}

# proxy_of BEHAVIOUR [N] — the Nth (1-based) proxy URL with that behaviour.
proxy_of() { awk -F'\t' -v b="$1" -v n="${2:-1}" '$2 == b && ++k == n {print $1; exit}' "$FARM_DIR/truth.tsv"; }
source_of() { awk -F'\t' -v u="$1" '$1 == u {print $3; exit}' "$FARM_DIR/truth.tsv"; }

# stats [JQ-FILTER] — this target's /__farm/stats, optionally filtered by jq.
stats() { curl -s --max-time 5 "http://$TARGET/__farm/stats" | jq -r "${1:-.}"; }

# via PROXY-URL URL [curl options...] — prints the HTTP code, body in $TMP/body; $? = curl's.
via() {
  local proxy="$1" url="$2"; shift 2
  curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 --proxy "$proxy" "$@" "$url"
}
