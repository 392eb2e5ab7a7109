#!/usr/bin/env bash
# One bed in two farm processes (what a bed larger than one process's descriptor limit
# needs): the second has --no-targets and --source-base, its proxies reach the first one's
# target from their own source addresses, and the target tells every proxy apart.
source "$(dirname "$0")/lib.sh"

farm_start --mix-counts --mix good=3 --interval-ms 500 --good-latency-ms 0 || exit 1
B="$TMP/farmB"; mkdir -p "$B"
bport=$((BASE + 5))
"$SCATTER_FARM" --quiet --no-targets --proxy-base-port "$bport" --source-base 3 \
  --mix-counts --mix good=3 --good-latency-ms 0 --out "$B" >"$B/stdout" 2>"$B/stderr" </dev/null &
BPID=$!; PIDS+=("$BPID")
for _ in $(seq 1 100); do [ -f "$B/pid" ] && break; kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
check "the proxies-only farm starts" test -f "$B/pid"
check "it writes no urls and no targets" test ! -s "$B/urls.txt" -a ! -s "$B/targets.txt"
check "its sources start after the first farm's three" \
  test "$(cut -f3 "$B/truth.tsv" | sort | tr '\n' ' ')" = "127.1.0.4 127.1.0.5 127.1.0.6 "

codes=""
for f in "$FARM_DIR" "$B"; do
  for u in $(cut -f1 "$f/truth.tsv"); do codes="$codes$(via "$u" "http://$TARGET/item/1") "; done
done
check "six proxies of two processes, one request each: all 200 ($codes)" test "$codes" = "200 200 200 200 200 200 "
check "the target saw six sources and no violation" \
  test "$(stats '.sources | length')" = 6 -a "$(stats .violations)" = 0
u=$(head -n1 "$B/truth.tsv" | cut -f1)
c=$(via "$u" "http://$TARGET/item/2")
check "a second-process proxy back within 500 ms is a violation at the target ($c)" \
  test "$c" = 429 -a "$(stats .violations)" = 1

# bad combinations are refused, naming the option
out=$("$SCATTER_FARM" --no-targets --target 127.0.0.9:1 --out "$TMP/bad" 2>&1); rc=$?
check "--no-targets with --target: exit 2 naming both ($out)" \
  test "$rc" = 2 -a -n "$(grep -- '--no-targets' <<<"$out" | grep -- '--target')"
out=$("$SCATTER_FARM" --no-targets --proxies 10 --out "$TMP/bad" 2>&1); rc=$?
check "--no-targets with banned/captcha in the mix: exit 2 ($out)" test "$rc" = 2 -a -n "$(grep banned <<<"$out")"
out=$("$SCATTER_FARM" --no-targets --proxies 10 --mix good=100 --source-base 63995 --out "$TMP/bad" 2>&1); rc=$?
check "--source-base past the address space: exit 2 ($out)" test "$rc" = 2 -a -n "$(grep -- '--source-base' <<<"$out")"

kill -TERM "$BPID"; wait "$BPID"; rc=$?
check "the proxies-only farm exits 0 (got $rc)" test "$rc" = 0
farm_stop
finish
