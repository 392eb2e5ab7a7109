#!/usr/bin/env bash
# farm.sh — start, stop and inspect a scatter-farm (tests/farm/README.md) in the background.
#
#   scripts/farm.sh up --out DIR [scatter-farm options...]   start; prints the pid when ready
#   scripts/farm.sh down --out DIR        (or: down DIR)    SIGTERM, wait, print the summary
#   scripts/farm.sh status --out DIR      (or: status DIR)  running? + /__farm/stats per target
#                                         (TLS targets over https, trusting DIR/tls-ca.pem)
#
# The binary is $SCATTER_FARM, else build/, build-test/ or build-farm/ under the repository top.
# Exit status: 0 ok, 1 failure, 2 usage, 3 (status) not running.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "farm.sh: $*" >&2; exit 1; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

find_bin() {
  if [ -n "${SCATTER_FARM:-}" ]; then
    [ -x "$SCATTER_FARM" ] || die "SCATTER_FARM=$SCATTER_FARM is not executable"
    echo "$SCATTER_FARM"; return
  fi
  local d
  for d in build build-test build-farm; do
    if [ -x "$top/$d/tests/farm/scatter-farm" ]; then echo "$top/$d/tests/farm/scatter-farm"; return; fi
  done
  die "scatter-farm not found: build it (cmake --build build) or set SCATTER_FARM"
}

# Sets $dir from "--out DIR", "--out=DIR" or a bare DIR among the arguments.
out_dir() {
  dir=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --out) [ $# -ge 2 ] || usage; dir="$2"; shift 2 ;;
      --out=*) dir="${1#--out=}"; shift ;;
      -*) shift ;;
      *) [ -z "$dir" ] && dir="$1"; shift ;;
    esac
  done
  [ -n "$dir" ] || usage
}

# True while pid is a live (not zombie) scatter-farm process.
alive() {
  local pid="$1" state comm
  kill -0 "$pid" 2>/dev/null || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [ -z "$comm" ] || [ "$comm" = "scatter-farm" ] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo "?")"
  [ "$state" != "Z" ]
}

cmd_up() {
  out_dir "$@"
  local bin pid i
  bin="$(find_bin)"
  mkdir -p "$dir"
  if [ -f "$dir/pid" ] && alive "$(cat "$dir/pid")"; then
    die "a farm already runs with --out $dir (pid $(cat "$dir/pid"))"
  fi
  rm -f "$dir/pid" "$dir/summary.json"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  "$bin" --quiet "$@" >"$dir/farm.out" 2>"$dir/farm.err" </dev/null &
  pid=$!
  for i in $(seq 1 100); do
    if [ -f "$dir/pid" ]; then echo "$pid"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      cat "$dir/farm.err" >&2
      die "scatter-farm exited during start-up"
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  die "scatter-farm did not write $dir/pid within 10 s"
}

cmd_down() {
  out_dir "$@"
  [ -f "$dir/pid" ] || die "no $dir/pid: no farm runs there"
  local pid i
  pid="$(cat "$dir/pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || die "$dir/pid does not hold a pid"
  if alive "$pid"; then
    kill -TERM "$pid"
    for i in $(seq 1 50); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "farm.sh: pid $pid still runs after 5 s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
  else
    echo "farm.sh: pid $pid was not running" >&2
    rm -f "$dir/pid"
  fi
  if [ -f "$dir/summary.json" ]; then cat "$dir/summary.json"; fi
}

cmd_status() {
  out_dir "$@"
  local pid t
  if [ -f "$dir/pid" ] && alive "$(cat "$dir/pid")"; then
    pid="$(cat "$dir/pid")"
    echo "running pid $pid"
  else
    echo "not running"
    return 3
  fi
  if [ -f "$dir/targets.txt" ]; then
    while read -r t; do
      [ -n "$t" ] || continue
      echo "target $t:"
      curl -s --max-time 2 --noproxy '*' "http://$t/__farm/stats" || echo "(no answer)"
    done <"$dir/targets.txt"
  fi
  if [ -f "$dir/tls-targets.txt" ]; then
    local ca=()
    [ -f "$dir/tls-ca.pem" ] && ca=(--cacert "$dir/tls-ca.pem")
    while read -r t; do
      [ -n "$t" ] || continue
      echo "tls target $t:"
      curl -s --max-time 2 --noproxy '*' "${ca[@]}" "https://$t/__farm/stats" || echo "(no answer)"
    done <"$dir/tls-targets.txt"
  fi
}

[ $# -ge 1 ] || usage
sub="$1"; shift
case "$sub" in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status "$@" ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
