#!/usr/bin/env bash
# it_http_front — scatter as an HTTP proxy (worker/http.c): curl -x and Python requests fetch
# through it; every request is a raced, rate-limited task (0 violations, X-Scatter-Proxy names
# a farm proxy); knobs as X-Scatter-* headers; the origin-form /fetch?url=; keep-alive and
# pipelining answered in order; bad input gets its 4xx and the listener keeps serving.
source "$(dirname "$0")/lib.sh"
it_init 25
HP="$NET.2:8118"
farm_up --proxies 40 --mix "good=100" --seed 25 --interval-ms 300 --urls 200
write_ini "$FARM_DIR/proxies.txt" 300 "http_header_timeout = 1" "http_max_header = 4K"
daemon_up
px() { curl -s --max-time 20 -x "http://$HP" "$@"; }

px -D "$TMP/h1" -o "$TMP/b1" "http://$T1/item/7"
check "curl -x: the page of item 7" grep -q "<h1>item 7</h1>" "$TMP/b1"
check "X-Scatter-Proxy names a farm proxy" grep -qi "^X-Scatter-Proxy: socks5://$PROXY_IP:" "$TMP/h1"
check "X-Scatter-Attempts present" grep -qi "^X-Scatter-Attempts: 1" "$TMP/h1"
check "framing recomputed: Content-Length" grep -qi "^Content-Length: $(stat -c %s "$TMP/b1")" "$TMP/h1"
expect_eq "HEAD through the proxy" "$(px -o /dev/null -w '%{http_code}' -I "http://$T1/item/8")" 200
expect_eq "a 404 of the target comes back as 404" "$(px -o /dev/null -w '%{http_code}' "http://$T1/nothing")" 404
# the scraping-API form is sent to the listener itself, not through it as a proxy
body=$(curl -s -i --max-time 20 "http://$HP/fetch?url=http%3A%2F%2F$T2%2Fitem%2F9")
echo "$body" | head -3 | sed "s/^/# fetch: /"
check "origin-form /fetch?url= works" grep -q "<h1>item 9</h1>" <(echo "$body")
expect_eq "the same through -x names the listener: a loop, 400" \
  "$(px -o /dev/null -w '%{http_code}' "http://$HP/fetch?url=http%3A%2F%2F$T2%2Fitem%2F9")" 400
expect_eq "knobs: X-Scatter-Race 2 accepted" "$(px -o /dev/null -w '%{http_code}' -H 'X-Scatter-Race: 2' "http://$T1/item/10")" 200
expect_eq "bad knob: 400" "$(px -o /dev/null -w '%{http_code}' -H 'X-Scatter-Race: 99' "http://$T1/item/11")" 400

# many requests over a few keep-alive connections (python requests, or curl with many URLs)
urls=$(head -n 120 "$FARM_DIR/urls.txt" | tr '\n' ' ')
# shellcheck disable=SC2086
px -o /dev/null -w '%{http_code}\n' $urls >"$TMP/codes.txt" || true
expect_eq "120 URLs over one keep-alive connection: all 200" "$(grep -c '^200$' "$TMP/codes.txt")" 120

# pipelining: two requests in one write, answered in order
resp=$(printf "GET http://$T1/item/21 HTTP/1.1\r\nHost: $T1\r\n\r\nGET http://$T1/item/22 HTTP/1.1\r\nHost: $T1\r\nConnection: close\r\n\r\n" |
       timeout 20 socat - "TCP:$HP" 2>/dev/null | grep -ao "<h1>item [0-9]*</h1>" | tr '\n' ' ')
expect_eq "pipelined requests answered in order" "$resp" "<h1>item 21</h1> <h1>item 22</h1> "
# an error answered with Connection: close closes: the request pipelined after it is not served
n=$(printf "GET http://$T1/item/23 HTTP/1.1\r\nHost: $T1\r\nX-Scatter-Race: 99\r\nConnection: close\r\n\r\nGET http://$T1/item/24 HTTP/1.1\r\nHost: $T1\r\n\r\n" |
    timeout 20 socat -t 5 - "TCP:$HP" 2>/dev/null | grep -ac '^HTTP/1.1 ')
expect_eq "a 400 with Connection: close ends the connection (responses)" "$n" 1

# bad input: each gets its 4xx, the listener keeps serving
code() { timeout 10 socat - "TCP:$HP" 2>/dev/null | head -n 1 | awk '{print $2}'; }
expect_eq "garbage request line: 400" "$(printf 'HELLO WORLD\r\n\r\n' | code)" 400
big=$(head -c 6000 /dev/zero | tr '\0' a)
expect_eq "headers over http_max_header: 431" "$(printf "GET http://$T1/item/1 HTTP/1.1\r\nX-Big: $big\r\n\r\n" | code)" 431
expect_eq "origin-form that is not /fetch: 400" "$(printf "GET /item/1 HTTP/1.1\r\nHost: x\r\n\r\n" | code)" 400
expect_eq "non-http scheme in /fetch: 400" "$(printf "GET /fetch?url=ftp%%3A%%2F%%2Fx%%2F HTTP/1.1\r\nHost: x\r\n\r\n" | code)" 400
expect_eq "a request to the listener itself: 400" "$(printf "GET http://$HP/x HTTP/1.1\r\nHost: $HP\r\n\r\n" | code)" 400
expect_eq "CONNECT to a port not in connect_ports: 403" "$(printf "CONNECT $T1 HTTP/1.1\r\nHost: $T1\r\n\r\n" | code)" 403
slow=$( { printf 'GET http://%s/item/1 HTTP/1.1\r\n' "$T1"; sleep 3; } | timeout 10 socat - "TCP:$HP" 2>/dev/null | head -n 1 | awk '{print $2}')
expect_eq "a head not complete within http_header_timeout: 408" "$slow" 408
expect_eq "still serving after the bad input" "$(px -o /dev/null -w '%{http_code}' "http://$T2/item/30")" 200
if /usr/bin/python3 -c 'import requests' 2>/dev/null; then
  HP="$HP" URLS="$FARM_DIR/urls.txt" /usr/bin/python3 - >"$TMP/requests.out" 2>&1 <<'PY' || true
import os, requests
proxies = {"http": "http://" + os.environ["HP"]}
urls = [u.strip() for u in open(os.environ["URLS"])][120:200]
s = requests.Session()
ok = sum(1 for u in urls if s.get(u, proxies=proxies, timeout=20).status_code == 200)
print("OK", ok, len(urls))
PY
  expect_eq "python requests through the proxy: 80 of 80" "$(tail -n 1 "$TMP/requests.out")" "OK 80 80"
else
  echo "# python3-requests not installed: skipped the requests check"
fi
for t in "$T1" "$T2"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
