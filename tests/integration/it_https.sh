#!/usr/bin/env bash
# it_https — https targets end to end: the farm's TLS target (its own CA) through scatter with
# ca_file: a msgpack fetch of https URLs, the HTTP front end with X-Scatter-Scheme: https and
# /fetch?url=https..., all ok with 0 violations counted by the TLS target. A host whose CA is
# not trusted fails with a last_error about the certificate, and no proxy is charged globally.
source "$(dirname "$0")/lib.sh"
it_init 28
TLS1="$NET.12:18443"
TLS2="$NET.13:18443"
HP="$NET.2:8118"
farm_up --proxies 20 --mix "good=100" --seed 28 --interval-ms 300 --urls 60 --target "$T1" --tls-target "$TLS1" \
  --tls-target "$TLS2"
CA="$FARM_DIR/tls-ca.pem"
write_ini "$FARM_DIR/proxies.txt" 300 "ca_file = \"$CA\"" "connect_ports = \"443,18443\""
printf '[host:%s]\nca_file = ""\n' "$TLS2" >>"$TMP/scatter.ini"
daemon_up
tstats() { curl -s --noproxy '*' --max-time 5 --cacert "$CA" "https://$1/__farm/stats" | jq -r "${2:-.}"; }

grep "https://$TLS1/" "$FARM_DIR/urls.txt" | head -n 20 >"$TMP/https.txt"
CTL_TIMEOUT=60 ctl fetch -i "$TMP/https.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || true
tail -n 1 "$TMP/fetch.err" | sed 's/^/# /'
expect_eq "20 https URLs through scatter (msgpack): all ok" "$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)" 20
px() { curl -s --max-time 20 -x "http://$HP" "$@"; }
check "HTTP front end, X-Scatter-Scheme: https" grep -q "<h1>item 3</h1>" <(px -H 'X-Scatter-Scheme: https' "http://$TLS1/item/3")
check "HTTP front end, /fetch?url=https..." grep -q "<h1>item 4</h1>" \
  <(curl -s --max-time 20 "http://$HP/fetch?url=https%3A%2F%2F$TLS1%2Fitem%2F4")
expect_eq "the TLS target counted the requests" "$(( $(tstats "$TLS1" .requests) >= 22 ))" 1
expect_eq "zero violations at the TLS target" "$(tstats "$TLS1" .violations)" 0

# CONNECT tunnels: curl through one, then one kept-alive tunnel carrying 20 requests is paced
# like separate tasks (the target counts no violation)
v0=$(tstats "$TLS1" .violations)
hdr=$(curl -s --max-time 20 -x "http://$HP" --cacert "$CA" -D - -o "$TMP/t1" "https://$TLS1/item/5")
check "CONNECT: curl gets the page through a tunnel" grep -q "<h1>item 5</h1>" "$TMP/t1"
check "CONNECT: the 200 names the proxy" grep -qi "X-Scatter-Proxy: socks5://$PROXY_IP:" <(echo "$hdr")
if /usr/bin/python3 -c 'import requests' 2>/dev/null; then
  t0=$(date +%s%3N)
  HP="$HP" CA="$CA" TLS="$TLS1" /usr/bin/python3 - >"$TMP/session.out" 2>&1 <<'PY' || true
import os, requests
s = requests.Session()
s.proxies = {"https": "http://" + os.environ["HP"]}
# verify per request: a REQUESTS_CA_BUNDLE in the environment would override Session.verify
ok = sum(1 for i in range(20)
         if "<h1>item %d</h1>" % i in s.get("https://%s/item/%d" % (os.environ["TLS"], i), timeout=30,
                                            verify=os.environ["CA"]).text)
print("OK", ok)
PY
  echo "# 20 requests through one kept-alive tunnel took $(( $(date +%s%3N) - t0 )) ms (interval 300 ms)"
  expect_eq "requests.Session: 20 https requests through one tunnel" "$(tail -n 1 "$TMP/session.out")" "OK 20"
else
  echo "# /usr/bin/python3 has no requests module: skipped the Session check"
fi
expect_eq "tunnels paced: no violation at the TLS target" "$(tstats "$TLS1" .violations)" "$v0"
expect_eq "CONNECT to a port not in connect_ports: 403" \
  "$(curl -s -o /dev/null -w '%{http_connect}' --max-time 10 -x "http://$HP" "https://$T1/" 2>/dev/null || true)" "403"

# a host whose CA is not trusted: the TLS handshake fails, the proxies stay healthy
r=$(ctl raw --json "{\"op\":\"submit\",\"id\":7,\"url\":\"https://$TLS2/item/5\",\"timeout_ms\":3000,\"max_attempts\":2}" || true)
echo "# untrusted CA: $(echo "$r" | jq -c '{ok, error, attempts, last_error}')"
expect_eq "untrusted CA: the task fails" "$(echo "$r" | jq .ok)" false
check "untrusted CA: last_error says why" grep -qi "certificate\|SSL" <(echo "$r" | jq -r .last_error)
st=$(ctl status --json)
expect_eq "no proxy dead after the TLS failures" "$(echo "$st" | jq .proxies.dead)" 0
expect_eq "zero violations at the untrusted TLS target" "$(tstats "$TLS2" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
