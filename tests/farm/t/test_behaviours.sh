#!/usr/bin/env bash
# Every proxy behaviour as a real client (curl) sees it, over socks5 and socks5h.
source "$(dirname "$0")/lib.sh"

farm_start --mix-counts --mix good=1,slow=1,flaky=1,refuse=1,blackhole=1,banned=1,captcha=1 \
  --flaky-drop 0.5 --slow-ms 1000-1500 --interval-ms 0 --seed 3 || exit 1
url="http://$TARGET/item/7"

good=$(proxy_of good)
code=$(via "$good" "$url"); rc=$?
check "good over socks5: curl ok, 200 (rc=$rc code=$code)" test "$rc" -eq 0 -a "$code" = 200
check "good body contains 'item 7'" grep -q "item 7" "$TMP/body"
check "body is about 1 KB" test "$(wc -c <"$TMP/body")" -ge 900
code=$(via "${good/socks5:/socks5h:}" "$url"); rc=$?
check "good over socks5h: 200 (rc=$rc code=$code)" test "$rc" -eq 0 -a "$code" = 200
code=$(via "${good/socks5:/socks5h:}" "http://localhost:${TARGET##*:}/item/7"); rc=$?
check "socks5h with the name 'localhost' resolves to 127.0.0.1: refused there, curl fails" test "$rc" -ne 0 -o "$code" != 200

start=$(date +%s%N)
code=$(via "$(proxy_of slow)" "$url"); rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
check "slow: 200 after ${ms} ms (>= 1000)" test "$rc" -eq 0 -a "$code" = 200 -a "$ms" -ge 1000

via "$(proxy_of refuse)" "$url" >/dev/null; rc=$?
check "refuse: curl exit 7 or 97 (got $rc)" test "$rc" -eq 7 -o "$rc" -eq 97

start=$(date +%s%N)
via "$(proxy_of blackhole)" "$url" --max-time 2 >/dev/null; rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
check "blackhole: curl times out (exit 28, got $rc) after ~2 s ($ms ms)" test "$rc" -eq 28 -a "$ms" -ge 1900

okn=0; badn=0
for _ in $(seq 1 20); do
  code=$(via "$(proxy_of flaky)" "$url"); rc=$?
  if [ "$rc" -eq 0 ] && [ "$code" = 200 ] && grep -q "item 7" "$TMP/body"; then okn=$((okn + 1)); else badn=$((badn + 1)); fi
done
check "flaky over 20 tries: some succeed ($okn), some fail ($badn)" test "$okn" -gt 0 -a "$badn" -gt 0

code=$(via "$(proxy_of banned)" "$url"); rc=$?
check "banned: 403 (rc=$rc code=$code)" test "$rc" -eq 0 -a "$code" = 403

code=$(via "$(proxy_of captcha)" "$url"); rc=$?
check "captcha: 200 (rc=$rc code=$code)" test "$rc" -eq 0 -a "$code" = 200
check "captcha body has 'captcha'" grep -q captcha "$TMP/body"
check "captcha body has no item number" bash -c "! grep -q 'item 7' '$TMP/body'"

src=$(source_of "$good")
check "target saw the good proxy's own source address $src" test "$(stats ".sources[\"$src\"].ok")" -ge 2
check "nothing came from 127.0.0.1 (every request went through a proxy)" test "$(stats '.sources["127.0.0.1"]')" = null
check "404 for an unknown path" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$TARGET/nope")" = 404
check "/status/204: 204, no body" test "$(curl -s -o "$TMP/s204" -w '%{http_code} %{size_download}' "http://$TARGET/status/204")" = "204 0"
check "/status/301: 301 with a Location" test "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://$TARGET/status/301")" = "301 http://$TARGET/item/0"
check "/status/404 and HEAD of it: 404" test "$(curl -s -I -o /dev/null -w '%{http_code}' "http://$TARGET/status/404")" = 404
check "/status/99: not a status, 404" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$TARGET/status/99")" = 404

farm_stop
finish
