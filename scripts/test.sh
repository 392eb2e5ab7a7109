#!/usr/bin/env bash
# Installs dependencies, builds with ASan+UBSan and -Werror, runs every test with ctest.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
bash "$top/scripts/deps.sh" --fuzz # the suite runs the fuzz smoke (fuzz_smoke)
build="${SCATTER_TEST_BUILD:-$top/build-test}"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSCATTER_SANITIZE=ON -DSCATTER_WERROR=ON -DSCATTER_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
# detect_leaks stays on: every test must free what it allocates.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build"
ctest --output-on-failure --timeout 300 -j2 "$@"
