#!/usr/bin/env bash
# --tls-target: the same site over TLS with the generated certificate (DIR/tls-ca.pem), through
# the farm's SOCKS5 proxies; the same per-source interval, violations and stats as the plain
# target; HEAD, /status/404, keep-alive and a large answer a slow reader drains; garbage, a
# plain-HTTP request and a stuck handshake close only their own connection; --tls-cert/--tls-key.
source "$(dirname "$0")/lib.sh"

FARM_TLS=1 farm_start --mix-counts --mix good=3 --interval-ms 500 --good-latency-ms 0 || exit 1
g1=$(proxy_of good 1); g2=$(proxy_of good 2); g3=$(proxy_of good 3)
s1=$(source_of "$g1")
tip=${TLS_TARGET%:*}; tport=${TLS_TARGET##*:}
CA="$FARM_DIR/tls-ca.pem"
U="https://$TLS_TARGET"

tstats() { curl -s --max-time 5 --cacert "$CA" "$U/__farm/stats" | jq -r "${1:-.}"; }

check "tls-ca.pem written" test -s "$CA"
check "tls-targets.txt names the TLS target" \
  test "$(cat "$FARM_DIR/tls-targets.txt")" = "$TLS_TARGET"
check "targets.txt keeps only the plain target" test "$(cat "$FARM_DIR/targets.txt")" = "$TARGET"
check "truth.json lists it under tls_targets" \
  test "$(jq -c .tls_targets "$FARM_DIR/truth.json")" = "[\"$TLS_TARGET\"]"
check "urls.txt: https:// for the TLS target" grep -qx "$U/item/1" "$FARM_DIR/urls.txt"

c=$(via "$g1" "$U/item/1" --cacert "$CA")
check "curl --cacert tls-ca.pem --socks5 -> https item 1: 200 ($c)" test "$c" = 200
check "body is item 1's page" grep -q '<h1>item 1</h1>' "$TMP/body"
c=$(via "$g1" "$U/item/2" --cacert "$CA")
check "same proxy again within 500 ms over TLS: 429 ($c)" test "$c" = 429
check "one violation counted on the TLS target" test "$(tstats .violations)" = 1
check "violation charged to $s1" test "$(tstats ".sources[\"$s1\"].violations")" = 1
check "429 in the TLS target's status" test "$(tstats '.status["429"]')" = 1
check "the TLS target names itself by its address" test "$(tstats .target)" = "$TLS_TARGET"
check "the plain target counted none of it" test "$(stats .requests)" = 0
check "same stats fields as the plain target" \
  test "$(tstats 'keys|join(",")')" = "$(stats 'keys|join(",")')"
c=$(via "$g1" "$U/item/3"); rc=$?
check "without --cacert the certificate is not trusted (curl exit 60, got $rc)" \
  test "$rc" = 60 -a "$c" = 000

c=$(via "$g2" "$U/item/4" --cacert "$CA" -I)
check "HEAD over TLS: 200 ($c)" test "$c" = 200
check "HEAD: headers only" grep -q '^Content-Length: ' "$TMP/body"
c=$(via "$g3" "$U/status/404" --cacert "$CA")
check "/status/404 over TLS: 404 ($c)" test "$c" = 404
sleep 0.6
c=$(via "$g3" "$U/status/404" --cacert "$CA" -I)
check "HEAD /status/404 over TLS: 404 ($c)" test "$c" = 404

n=$(curl -s --cacert "$CA" -o /dev/null -o /dev/null -w '%{num_connects}\n' "$U/__farm/stats" \
      "$U/__farm/stats" | awk '{s += $1} END {print s}')
check "keep-alive over TLS: two requests, one connection (connects=$n)" test "$n" = 1

# A 4 MB answer read at 2 MB/s: the farm's writes hit WANT_WRITE and resume. Meanwhile garbage,
# plain HTTP and a stuck handshake arrive on the same port and close only their connections.
sleep 0.6
curl -s --max-time 20 --cacert "$CA" --socks5 "${g1#socks5://}" --limit-rate 2M \
  -o "$TMP/big" -w '%{http_code}' "$U/item/5?pad=4000000" >"$TMP/big.code" &
big_pid=$!
PIDS+=("$big_pid")

# raw PRINTF-DATA: sends to the TLS port, waits ≤3 s for the close; 124 when left open.
# The write runs in a subshell: the farm may reset the connection before it ends, and the
# SIGPIPE of a builtin printf would kill the test itself.
raw() {
  local fd rc
  exec {fd}<>"/dev/tcp/$tip/$tport" || return 1
  (printf "$1" >&"$fd") 2>/dev/null
  timeout 3 cat <&"$fd" >/dev/null 2>&1; rc=$?
  exec {fd}>&-
  return $rc
}
head -c 2000 /dev/urandom >"$TMP/garbage"
exec {gfd}<>"/dev/tcp/$tip/$tport"
cat "$TMP/garbage" >&"$gfd" 2>/dev/null
timeout 3 cat <&"$gfd" >/dev/null 2>&1; rc=$?
exec {gfd}>&-
check "2000 random bytes on the TLS port: closed, not left open (rc=$rc)" test "$rc" -ne 124
raw '\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03garbage-garbage-garbage-garbage-garbage-gar'; rc=$?
check "malformed ClientHello: closed (rc=$rc)" test "$rc" -ne 124
raw 'GET /item/1 HTTP/1.1\r\nHost: x\r\n\r\n'; rc=$?
check "plain HTTP on the TLS port: closed (rc=$rc)" test "$rc" -ne 124
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "$U/__farm/stats")
check "farm still serves TLS after the garbage ($c)" test "$c" = 200

# A handshake that never finishes: half a record header, then silence.
exec {sfd}<>"/dev/tcp/$tip/$tport"
(printf '\x16\x03\x01' >&"$sfd") 2>/dev/null
start=$(date +%s)
ok20=1
for _ in $(seq 1 20); do
  c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "$U/__farm/stats")
  [ "$c" = 200 ] || ok20=0
done
check "20 TLS requests served while a handshake is stuck" test "$ok20" = 1
timeout 14 cat <&"$sfd" >/dev/null 2>&1; rc=$?
waited=$(($(date +%s) - start))
exec {sfd}>&-
check "stuck handshake closed by the 10 s handshake timeout (rc=$rc after ${waited}s)" \
  test "$rc" -ne 124 -a "$waited" -ge 8

wait "$big_pid"
size=$(stat -c %s "$TMP/big")
check "4 MB answer to a slow reader complete meanwhile ($(cat "$TMP/big.code"), $size bytes)" \
  test "$(cat "$TMP/big.code")" = 200 -a "$size" -gt 4000000
curl -s --max-time 5 --socks5 "${g2#socks5://}" -o "$TMP/big.plain" \
  "http://$TARGET/item/5?pad=4000000"
check "the same bytes as the plain target's answer" cmp -s "$TMP/big" "$TMP/big.plain"

farm_stop
check "requests.log: the TLS target's 429 logged" \
  grep -Eq "^[0-9]+\.[0-9]{6} $TLS_TARGET $s1 /item/2 429$" "$FARM_DIR/requests.log"
check "exit summary: the TLS target's violation in the total" \
  test "$(jq '.violations' "$FARM_DIR/summary.json")" = 1 -a \
       "$(jq -r '[.targets[].target]|join(" ")' "$FARM_DIR/summary.json")" = "$TARGET $TLS_TARGET"

# The operator's own certificate: --tls-cert/--tls-key, no tls-ca.pem written.
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$tip" \
    -addext "subjectAltName=IP:$tip" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
  FARM_TLS=1 farm_start --mix-counts --mix good=1 --good-latency-ms 0 \
    --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" || exit 1
  c=$(via "$(proxy_of good 1)" "https://$TLS_TARGET/item/7" --cacert "$TMP/cert.pem")
  check "--tls-cert/--tls-key: curl trusting that certificate gets 200 ($c)" test "$c" = 200
  # farm_start reuses the first run's directory: its tls-ca.pem must be gone, not left stale
  check "--tls-cert given: no tls-ca.pem (the earlier run's removed)" \
    test ! -e "$FARM_DIR/tls-ca.pem"
  farm_stop
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/other.pem" 2>/dev/null
  "$SCATTER_FARM" --quiet --out "$TMP/never" --tls-target 127.0.0.5:18443 \
    --tls-cert "$TMP/cert.pem" --tls-key "$TMP/other.pem" >/dev/null 2>"$TMP/e"; rc=$?
  check "a key that does not match the certificate: exit 2 naming --tls-key ($rc)" \
    test "$rc" = 2 -a -n "$(grep -- '--tls-key' "$TMP/e")"
else
  echo "skip - openssl command not installed: --tls-cert/--tls-key not checked"
fi
finish
