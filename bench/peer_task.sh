#!/usr/bin/env bash
# peer_task.sh MODE URL — one task of a "what users do today" peer, for xargs -P 32.
#   MODE haproxy:     curl --socks5-hostname 127.0.0.1:$BENCH_HAPORT (HAProxy round robin)
#   MODE proxychains: proxychains4 -q -f $BENCH_PCCONF curl (random chain of length 1)
#   MODE front:       curl -x http://$BENCH_FRONT (scatter's HTTP front door; the one-flag switch)
# Retries up to $BENCH_ATTEMPTS (default 5) attempts until a 2xx whose body does not
# contain $BENCH_BLOCKED. Timeouts as scatterd's defaults: connect 5 s, attempt 15 s.
# Prints one JSON line: {"n":..,"ok":..,"status":..,"attempts":..,"elapsed_ms":..,"t_ms":..},
# t_ms the Unix time in ms the task finished (bench.sh's tasks/s over time).
mode="$1"; n="$2"; url="$3"
body="${TMPDIR:-/tmp}/peer.$$"
t0=$(date +%s%N)
ok=false; code=0; a=0
while [ "$a" -lt "${BENCH_ATTEMPTS:-5}" ]; do
  a=$((a + 1))
  case "$mode" in
    haproxy) code=$(curl -s -o "$body" -w '%{http_code}' --connect-timeout 5 -m 15 \
                      --socks5-hostname "127.0.0.1:$BENCH_HAPORT" "$url" 2>/dev/null) ;;
    # one front-door request is a whole task (the daemon's rounds of attempts), not one attempt
    front) code=$(curl -s -o "$body" -w '%{http_code}' --connect-timeout 5 -m 60 \
                      -x "http://$BENCH_FRONT" "$url" 2>/dev/null) ;;
    proxychains) code=$(proxychains4 -q -f "$BENCH_PCCONF" curl -s -o "$body" -w '%{http_code}' \
                      --connect-timeout 5 -m 15 --noproxy '*' "$url" 2>/dev/null) ;;
  esac
  case "$code" in
    2[0-9][0-9]) if [ -s "$body" ] && ! grep -q -- "${BENCH_BLOCKED:-captcha}" "$body"; then ok=true; break; fi ;;
  esac
done
rm -f "$body"
t1=$(date +%s%N)
printf '{"n":%s,"ok":%s,"status":%s,"attempts":%s,"elapsed_ms":%s,"t_ms":%s}\n' \
  "$n" "$ok" "$((10#${code:-0}))" "$a" "$(( (t1 - t0) / 1000000 ))" "$(( t1 / 1000000 ))"
