#!/usr/bin/env bash
# /__farm/set?error_rate= breaks a target (503) and recovers it; --error-rate at start.
source "$(dirname "$0")/lib.sh"

farm_start --mix-counts --mix good=1 --interval-ms 0 --error-rate 0.5 --seed 11 || exit 1
p=$(proxy_of good)
n503=0; n200=0
for i in $(seq 1 20); do
  c=$(via "$p" "http://$TARGET/item/$i")
  [ "$c" = 503 ] && n503=$((n503 + 1)); [ "$c" = 200 ] && n200=$((n200 + 1))
done
check "--error-rate 0.5: a mix of 503 ($n503) and 200 ($n200)" test "$n503" -gt 0 -a "$n200" -gt 0

r=$(curl -s "http://$TARGET/__farm/set?error_rate=1.0")
check "set error_rate=1.0 answers the new settings ($r)" test "$(echo "$r" | jq .error_rate)" = 1
all=1
for i in 1 2 3 4 5; do [ "$(via "$p" "http://$TARGET/item/$i")" = 503 ] || all=0; done
check "error_rate=1.0: every request 503" test "$all" = 1
curl -s "http://$TARGET/__farm/set?error_rate=0" >/dev/null
all=1
for i in 1 2 3 4 5; do [ "$(via "$p" "http://$TARGET/item/$i")" = 200 ] || all=0; done
check "error_rate=0: recovered, every request 200" test "$all" = 1
check "bad error_rate rejected with 400" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$TARGET/__farm/set?error_rate=2")" = 400
check "unknown parameter rejected with 400" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$TARGET/__farm/set?foo=1")" = 400
check "503s counted in stats" test "$(stats '.status["503"]')" -ge 5
farm_stop
finish
