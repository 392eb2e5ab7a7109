# bench/section_args.sh — sourced by the benchmarks that write their own section of
# docs/BENCHMARKS.md (connect_bench.sh, redis_bench.sh), run alone or by scripts/bench.sh
# after its report. They take the same options:
#   --quick, --bin DIR, --runs N, --commit C, --cmd TEXT, -h/--help
# section_args NAME "$@" sets QUICK BIN RUNS COMMIT CMDLINE (RUNS: 3, or 1 with --quick) and
# T0; --help prints the calling script's leading comment block. section_bin: the binaries.
section_args() {
  local name="$1"; shift
  CMDLINE="bench/$name${*:+ $*}"
  QUICK=0 BIN="" RUNS="" COMMIT=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --quick) QUICK=1; shift ;;
      --bin) BIN="$2"; shift 2 ;;
      --runs) RUNS="$2"; shift 2 ;;
      --commit) COMMIT="$2"; shift 2 ;;
      --cmd) CMDLINE="$2"; shift 2 ;;
      -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      *) echo "$name: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ -n "$RUNS" ] || RUNS=$([ "$QUICK" = 1 ] && echo 1 || echo 3)
  T0=$(date +%s)
}

# section_bin — without --bin, builds the working tree into build-bench/ (Release; the log in
# $W/build.log; uses the caller's $top, $W and log); then sets SCATTERD, CTL and SCATTER_FARM.
section_bin() {
  if [ -z "$BIN" ]; then
    BIN="$top/build-bench"
    log "building the working tree into $BIN (Release)"
    cmake -S "$top" -B "$BIN" -DCMAKE_BUILD_TYPE=Release -DSCATTER_TESTS=OFF >"$W/build.log" 2>&1
    cmake --build "$BIN" -j2 >>"$W/build.log" 2>&1 || { tail -30 "$W/build.log" >&2; exit 1; }
  fi
  SCATTERD="$BIN/master/scatterd" CTL="$BIN/ctl/scatterctl"
  export SCATTER_FARM="$BIN/tests/farm/scatter-farm"
}
