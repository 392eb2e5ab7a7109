#!/usr/bin/env bash
# The per-source-address interval: a violation when one address comes back too soon, none
# when spaced, none across different addresses; /__farm/reset; stats not rate limited.
source "$(dirname "$0")/lib.sh"

farm_start --mix-counts --mix good=3 --interval-ms 500 --good-latency-ms 0 || exit 1
g1=$(proxy_of good 1); g2=$(proxy_of good 2); g3=$(proxy_of good 3)
s1=$(source_of "$g1")

c1=$(via "$g1" "http://$TARGET/item/1"); c2=$(via "$g1" "http://$TARGET/item/2")
check "same address twice within 500 ms: 200 then 429 ($c1 $c2)" test "$c1" = 200 -a "$c2" = 429
check "one violation counted" test "$(stats .violations)" = 1
check "violation charged to $s1" test "$(stats ".sources[\"$s1\"].violations")" = 1
check "429 counted in status" test "$(stats '.status["429"]')" = 1

c2=$(via "$g2" "http://$TARGET/item/3"); c3=$(via "$g3" "http://$TARGET/item/4")
check "different addresses back to back: no violation ($c2 $c3)" test "$c2" = 200 -a "$c3" = 200 -a "$(stats .violations)" = 1

for _ in 1 2 3 4 5; do stats .requests >/dev/null; done
check "stats requests are neither counted nor limited" test "$(stats .requests)" = 4

check "reset answers 200" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$TARGET/__farm/reset")" = 200
check "reset zeroes the counters" test "$(stats .requests)" = 0 -a "$(stats .violations)" = 0

sleep 0.6
okall=1
for n in 1 2 3; do
  c=$(via "$g1" "http://$TARGET/item/$n"); [ "$c" = 200 ] || okall=0
  sleep 0.6
done
check "spaced 600 ms apart: all 200" test "$okall" = 1
check "spaced: no violation" test "$(stats .violations)" = 0
check "items_distinct = 3" test "$(stats .items_distinct)" = 3
c=$(via "$g1" "http://$TARGET/item/1")
check "repeat item served again but items_distinct stays 3" test "$c" = 200 -a "$(stats .items_distinct)" = 3

curl -s "http://$TARGET/__farm/set?interval_ms=0" >/dev/null
c1=$(via "$g2" "http://$TARGET/item/1"); c2=$(via "$g2" "http://$TARGET/item/2")
check "interval_ms=0 at run time: no limit ($c1 $c2)" test "$c1" = 200 -a "$c2" = 200 -a "$(stats .violations)" = 0

farm_stop
check "requests.log has one line per counted request" test "$(wc -l <"$FARM_DIR/requests.log")" = 10
check "requests.log line format: time target source path status" \
  grep -Eq "^[0-9]+\.[0-9]{6} $TARGET $s1 /item/2 429$" "$FARM_DIR/requests.log"
finish
