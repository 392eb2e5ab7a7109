#!/usr/bin/env bash
# Malformed SOCKS5 input, refused CONNECTs, garbage on a target port: each closes only that
# one connection and the farm keeps serving. Raw bytes are sent with bash's /dev/tcp.
source "$(dirname "$0")/lib.sh"

farm_start --mix-counts --mix good=2 --interval-ms 0 --good-latency-ms 0 || exit 1
g=$(proxy_of good); gport=${g##*:}
tip=${TARGET%:*}; tport=${TARGET##*:}

# raw HOST PORT PRINTF-DATA: sends, prints every byte received (hex) until the peer closes;
# status 0 when the peer closed within 3 s (1 if it reset), 124 when it kept it open.
raw() {
  local fd out rc
  exec {fd}<>"/dev/tcp/$1/$2" || return 1
  printf "$3" >&"$fd" 2>/dev/null
  out=$(timeout 3 cat <&"$fd" 2>/dev/null | od -An -v -tx1 | tr -d ' \n'); rc=$?
  exec {fd}>&-
  echo "$out"
  return $rc
}
# raw_then_close HOST PORT PRINTF-DATA: sends, reads what arrives in 0.5 s, closes our side.
raw_then_close() {
  local fd
  exec {fd}<>"/dev/tcp/$1/$2" || return 1
  printf "$3" >&"$fd"
  timeout 0.5 cat <&"$fd" >/dev/null 2>&1
  exec {fd}>&-
  return 0
}
serving() { [ "$(via "$g" "http://$TARGET/item/1")" = 200 ]; }

out=$(raw 127.0.0.1 "$gport" '\x04\x01\x00\x50\x7f\x00\x00\x01\x00'); rc=$?
check "SOCKS4 greeting: closed without a reply (rc=$rc out='$out')" test "$rc" -eq 0 -a -z "$out"
check "farm still serves" serving
out=$(raw 127.0.0.1 "$gport" '\x05\x00'); rc=$?
check "greeting with zero methods: closed (rc=$rc out='$out')" test "$rc" -eq 0 -a -z "$out"
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x02'); rc=$?
check "only user/pass offered, none configured: 05ff then closed (out='$out')" test "$rc" -eq 0 -a "$out" = 05ff
raw_then_close 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x01\x7f'
check "truncated CONNECT request then client close: farm still serves" serving
raw_then_close 127.0.0.1 "$gport" '\x05\x01'
check "truncated greeting then client close: farm still serves" serving
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x09\x00'); rc=$?
check "unknown address type: reply 08 (out='$out')" test "${out:0:8}" = 05000508
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50'); rc=$?
check "BIND command: reply 07, closed (rc=$rc out='$out')" test "$rc" -eq 0 -a "${out:0:8}" = 05000507
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50'); rc=$?
check "IPv6 address: reply 08 (out='$out')" test "${out:0:8}" = 05000508
# Non-loopback destinations are refused before any socket is made: nothing leaves the host.
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50'); rc=$?
check "CONNECT 10.1.2.3: reply 02 not allowed (out='$out')" test "${out:0:8}" = 05000502
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x03\x0bexample.com\x00\x50'); rc=$?
check "CONNECT example.com (no resolver): reply 02 (out='$out')" test "${out:0:8}" = 05000502
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x03\x0a8.8.8.8.xx\x00\x50'); rc=$?
check "CONNECT to a non-IPv4 name: reply 02 (out='$out')" test "${out:0:8}" = 05000502
out=$(raw 127.0.0.1 "$gport" '\x05\x01\x00\x05\x01\x00\x03\x07192.0.2\x00\x50'); rc=$?
check "CONNECT to a partial literal: reply 02 (out='$out')" test "${out:0:8}" = 05000502
ptp=$(printf '\\x%02x' "$((tport >> 8))" "$((tport & 255))")
name="$tip"; nlen=$(printf '\\x%02x' "${#name}")
out=$(raw 127.0.0.1 "$gport" "\\x05\\x01\\x00\\x05\\x01\\x00\\x03$nlen$name$ptp""GET /item/9 HTTP/1.0\\r\\n\\r\\n"); rc=$?
check "CONNECT by dotted name + pipelined HTTP/1.0: success reply and item 9" \
  test "${out:0:8}" = 05000500 -a "$rc" -eq 0
case "$out" in *6974656d2039*) ok "relayed body contains 'item 9'";; *) fail "relayed body contains 'item 9'";; esac
check "farm still serves" serving

out=$(raw "$tip" "$tport" '\x16\x03\x01\x00\xffgarbage\r\n\r\n'); rc=$?
# closed with unread bytes in our direction may arrive as a reset (rc 1) on a loaded machine
check "binary garbage on the target port: closed or reset, not left open (rc=$rc)" test "$rc" -ne 124
out=$(raw "$tip" "$tport" 'HELLO\r\n'); rc=$?
check "a line with no request shape: closed (rc=$rc)" test "$rc" -eq 0
out=$(raw "$tip" "$tport" 'GET / HTTX/9\r\n\r\n'); rc=$?
check "bad HTTP version: 400 then closed (rc=$rc)" test "$rc" -eq 0 -a "${out:0:24}" = 485454502f312e3120343030
big=$(head -c 9000 /dev/zero | tr '\0' a)
out=$(raw "$tip" "$tport" "GET /item/1 HTTP/1.1\\r\\nX: $big"); rc=$?
check "request head over 8 KB: closed or reset, not left open (rc=$rc)" test "$rc" -ne 124
raw_then_close "$tip" "$tport" 'GET /item/1 HT'
check "farm still serves after target garbage" serving

n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "http://$TARGET/item/1" "http://$TARGET/item/2" | awk '{s += $1} END {print s}')
check "keep-alive: two requests over one connection (connects=$n)" test "$n" = 1
hdr=$(curl -s -D - -o /dev/null -H 'Connection: close' "http://$TARGET/item/1")
case "$hdr" in *"Connection: close"*) ok "Connection: close honoured";; *) fail "Connection: close honoured";; esac
check "HEAD works" test "$(curl -s -I -o /dev/null -w '%{http_code}' "http://$TARGET/item/1")" = 200
check "DELETE gets 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$TARGET/item/1")" = 405

# Many concurrent relays at once through both proxies.
cpids=()
for i in $(seq 1 100); do
  via "$(proxy_of good $((i % 2 + 1)))" "http://$TARGET/item/$i" >"$TMP/c$i" &
  cpids+=($!)
done
wait_ok=1
for j in "${cpids[@]}"; do wait "$j" || wait_ok=0; done
good200=$(cat "$TMP"/c* | grep -o 200 | wc -l)
check "100 concurrent requests through the proxies: all 200 ($good200)" test "$good200" = 100 -a "$wait_ok" = 1

farm_stop
finish
