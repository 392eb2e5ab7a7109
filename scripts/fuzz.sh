#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan + LeakSanitizer) and runs each
# on its committed corpus (fuzz/corpus/<target>/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 60), one at a time
#   scripts/fuzz.sh --smoke [TARGET...]     each target for 5 s (what ctest's fuzz_smoke runs)
#
# Prints per target: seconds run, executions, coverage (cov/ft), corpus size and crashes, with
# the path of the reproducer when there is one; exits 1 if any target crashed, leaked or timed out.
# Environment: SCATTER_FUZZ_BUILD (clang build directory, default build-fuzzer/),
# SCATTER_FUZZ_JOBS (parallel compile jobs, default 2).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="${SCATTER_FUZZ_BUILD:-$top/build-fuzzer}"
all_targets=(proto config sources persist http)

secs=60 smoke=0
if [ "${1:-}" = "--smoke" ]; then
  smoke=1 secs=5; shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  secs=$1; shift
elif [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -d "$top/fuzz/corpus/$t" ] || { echo "fuzz: unknown target '$t' (targets: ${all_targets[*]})" >&2; exit 2; }
done

# ctest's smoke never installs packages: scripts/test.sh ran deps.sh --fuzz before it.
[ $smoke = 1 ] || bash "$top/scripts/deps.sh" --fuzz
if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found; install it with: bash scripts/deps.sh --fuzz" >&2
  exit 2
fi

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" \
  -DSCATTER_FUZZ=ON -DSCATTER_TESTS=OFF -DSCATTER_SANITIZE=OFF -DSCATTER_WERROR=OFF \
  -DSCATTER_DIRS="shm;common" >"$build.configure.log" 2>&1 \
  || { cat "$build.configure.log" >&2; echo "fuzz: cmake configure failed" >&2; exit 2; }
rm -f "$build.configure.log"
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
if ! cmake --build "$build" -j"${SCATTER_FUZZ_JOBS:-2}" "${build_targets[@]}" >"$build/build.log" 2>&1; then
  tail -40 "$build/build.log" >&2
  echo "fuzz: build failed (full log: $build/build.log)" >&2
  exit 2
fi

# The sanitizers' verdicts are the point: leaks on, any UB fatal, reports symbolised.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
command -v llvm-symbolizer >/dev/null || { s=$(ls /usr/bin/llvm-symbolizer-* 2>/dev/null | head -1); [ -z "$s" ] || export ASAN_SYMBOLIZER_PATH="$s"; }

# New inputs go to a scratch corpus (the build's, kept between runs; a temporary one for the
# smoke), never into the committed one: fuzz/README.md says how to merge them.
scratch_root="$build/corpus"
if [ $smoke = 1 ]; then scratch_root="$(mktemp -d "${TMPDIR:-/tmp}/scatter-fuzz.XXXXXX")"; fi
cleanup() { if [ $smoke = 1 ]; then rm -rf "$scratch_root"; fi; }
trap cleanup EXIT

failed=0
printf '%-8s %6s %12s %9s %6s %7s %7s  %s\n' target time_s execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
  bin="$build/fuzz/fuzz_$t"
  out="$build/crashes/$t"
  mkdir -p "$out" "$scratch_root/$t"
  log="$build/fuzz_$t.log"
  before=$(ls "$out" | wc -l)
  dict=()
  [ ! -f "$top/fuzz/dict/$t.dict" ] || dict=(-dict="$top/fuzz/dict/$t.dict")
  rc=0
  t0=$(date +%s)
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$out/" "$scratch_root/$t" "$top/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - t0 )) # less than SECONDS when a crash stopped the run
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  new=$(ls -t "$out" | head -n $(( $(ls "$out" | wc -l) - before )) || true)
  if [ $rc -eq 0 ]; then
    result="ok, 0 crashes"
  else
    failed=1
    repro=""
    [ -z "$new" ] || repro="$out/$(head -1 <<<"$new")"
    result="CRASH (exit $rc): reproducer ${repro:-none written}; log $log"
  fi
  printf '%-8s %6s %12s %9s %6s %7s %7s  %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corpus:-?}" "$result"
  if [ $rc -ne 0 ]; then
    # the report itself: the sanitizer's or the target's own message, and the stack
    grep -E -A40 '^==[0-9]+==ERROR|^fuzz_[a-z]+:|runtime error|^SUMMARY' "$log" | head -60 | sed 's/^/    /' >&2
  fi
done
if [ $failed -ne 0 ]; then
  echo "fuzz: at least one target failed; reproduce with: $build/fuzz/fuzz_<target> <reproducer>" >&2
  exit 1
fi
