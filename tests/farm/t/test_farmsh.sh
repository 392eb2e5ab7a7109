#!/usr/bin/env bash
# scripts/farm.sh up/status/down with 1,000 proxies: ready when up returns, RSS under
# 100 MB, traffic flows, down leaves no process behind.
source "$(dirname "$0")/lib.sh"
sh="$top/scripts/farm.sh"
dir="$TMP/big"

started=""
for attempt in 0 1 2 3 4; do
  base=$((3000 + (($$ + attempt) % 5) * 1000))
  tgt="127.0.$((($$ + attempt) % 200 + 20)).$((($$ / 200) % 250 + 1)):$((12000 + ($$ * 13 + attempt * 101) % 8000))"
  if pid=$(bash "$sh" up --out "$dir" --proxies 1000 --proxy-base-port "$base" --target "$tgt" \
             --interval-ms 0 --seed 5 2>"$TMP/uperr"); then
    started=1; PIDS+=("$pid"); break
  fi
  grep -q "in use" "$TMP/uperr" || { cat "$TMP/uperr"; break; }
done
check "farm.sh up printed a pid" test -n "$started" -a -n "${pid:-}"
[ -n "$started" ] || finish
check "pid file matches" test "$(cat "$dir/pid")" = "$pid"
check "1000 lines in proxies.txt" test "$(wc -l <"$dir/proxies.txt")" = 1000
TARGET=$tgt FARM_DIR=$dir

rss=$(ps -o rss= -p "$pid" | tr -d ' ')
echo "RSS at 1,000 proxies (idle): ${rss} KB"
check "RSS under 100 MB (${rss} KB)" test "$rss" -lt 102400

# Some traffic through a spread of good proxies, then RSS again.
cpids=()
for i in $(seq 1 50); do
  via "$(proxy_of good "$i")" "http://$tgt/item/$i" >"$TMP/c$i" &
  cpids+=($!)
done
for j in "${cpids[@]}"; do wait "$j"; done
n200=$(cat "$TMP"/c* | grep -o 200 | wc -l)
check "50 requests through 50 good proxies: all 200 ($n200)" test "$n200" = 50
check "target saw 50 distinct source addresses" test "$(stats '.sources | length')" = 50
rss2=$(ps -o rss= -p "$pid" | tr -d ' ')
echo "RSS at 1,000 proxies after traffic: ${rss2} KB"
check "RSS after traffic under 100 MB (${rss2} KB)" test "$rss2" -lt 102400

out=$(bash "$sh" status --out "$dir"); rc=$?
check "status: running" test "$rc" -eq 0
case "$out" in *"running pid $pid"*'"requests":50'*) ok "status shows pid and stats";; *) fail "status output: $out";; esac

out=$(bash "$sh" down "$dir"); rc=$?
check "down exits 0" test "$rc" -eq 0
check "down prints the summary" test "$(echo "$out" | jq .requests)" = 50
# The farm was orphaned by farm.sh up, so init reaps it: allow a moment for that; a zombie
# has exited (it holds no port, no memory), which is what matters.
gone() { ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; }
check "process exited after down" gone
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && echo "note: pid $pid exited but is not reaped yet by its parent (init)"
check "pid file gone" test ! -e "$dir/pid"
bash "$sh" status "$dir" >/dev/null; rc=$?
check "status after down: not running (exit 3, got $rc)" test "$rc" -eq 3
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$dir/farm.err"; then fail "sanitizer report"; cat "$dir/farm.err"; else ok "no sanitizer report"; fi
finish
