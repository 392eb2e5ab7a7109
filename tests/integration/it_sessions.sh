#!/usr/bin/env bash
# it_sessions — sticky sessions (docs/HTTP.md, "Sessions"): three microsocks in front of a farm
# target at 300 ms. Session s1 keeps one proxy over 20 HTTP front end requests (separate curl
# runs, four at a time, landing on both workers; some name the session as a Proxy-Authorization
# user session-s1) and over msgpack submits with `session` on each worker's own socket; each of
# its tasks races one proxy. Killing that proxy's microsocks moves the session exactly once, to
# one other proxy it then keeps. The target sees 0 violations. A name over 63 bytes is refused
# 400; with max_sessions = 3 a fourth live session is refused 503 pool_full, and admitted once
# the others have been idle longer than session_ttl (reloaded to 1 s). With http_auth, a
# session-NAME user needs http_auth's password.
source "$(dirname "$0")/lib.sh"
it_init 29
command -v microsocks >/dev/null || { echo "microsocks is required (bash scripts/deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

farm_up --target "$T1" --mix-counts --mix good=1 --interval-ms 300 --urls 60
: >"$TMP/proxies.txt"
declare -A MS_PID
for i in 1 2 3; do
  port=$((PBASE + 100 + i))
  microsocks -i "$PROXY_IP" -p "$port" -b "$NET.$((20 + i))" >"$TMP/microsocks$i.log" 2>&1 &
  EXTRA_PIDS+=($!)
  MS_PID["socks5://$PROXY_IP:$port"]=$!
  echo "socks5://$PROXY_IP:$port" >>"$TMP/proxies.txt"
done
for i in $(seq 1 50); do
  if curl -s --max-time 2 --proxy "socks5://$PROXY_IP:$((PBASE + 103))" -o /dev/null "http://$T1/__farm/stats"; then break; fi
  sleep 0.1
done
echo "# microsocks pids: ${EXTRA_PIDS[*]}"

write_ini "$TMP/proxies.txt" 300 "log_level = debug" "max_sessions = 3" "session_ttl = 60"
daemon_up
HTTP="$NET.2:8118"
mapfile -t URLS <"$FARM_DIR/urls.txt"

# get N SESSION-ARGS... : one request through the front end; writes $TMP/r.N.{h,b}
get() {
  local n="$1"; shift
  curl -s --noproxy '' -x "http://$HTTP" --max-time 30 -D "$TMP/r.$n.h" -o "$TMP/r.$n.b" "$@" "${URLS[$n]}"
}
status_of() { head -n 1 "$TMP/r.$1.h" | awk '{print $2}'; }
proxy_of() { grep -i '^X-Scatter-Proxy:' "$TMP/r.$1.h" | awk '{print $2}' | tr -d '\r'; }

# --- 20 requests of session s1, four at a time, each its own curl (its own connection)
# (a bare `wait` would wait for the microsocks and the daemon too)
for b in 0 1 2 3 4; do
  cpids=()
  for j in 0 1 2 3; do
    n=$((b * 4 + j))
    if [ "$j" = 3 ]; then get "$n" --proxy-user "session-s1:ignored" & else get "$n" -H 'X-Scatter-Session: s1' & fi
    cpids+=($!)
  done
  wait "${cpids[@]}"
done
ok200=0; : >"$TMP/p1.txt"
for n in $(seq 0 19); do
  [ "$(status_of "$n")" = 200 ] && ok200=$((ok200 + 1))
  proxy_of "$n" >>"$TMP/p1.txt"
done
expect_eq "20 session requests answered 200" "$ok200" 20
sort "$TMP/p1.txt" | uniq -c | sed 's/^/# s1 proxies: /'
P1=$(head -n 1 "$TMP/p1.txt")
expect_eq "all 20 went through one proxy" "$(sort -u "$TMP/p1.txt" | wc -l)" 1
w1=$(grep -c "worker 1: task done host=$T1" "$TMP/scatterd.log")
w2=$(grep -c "worker 2: task done host=$T1" "$TMP/scatterd.log")
echo "# tasks done by worker 1: $w1, worker 2: $w2"
expect_ge "worker 1 served some of them" "$w1" 1
expect_ge "worker 2 served some of them" "$w2" 1
expect_eq "each session task raced one proxy" "$(grep "task done host=$T1" "$TMP/scatterd.log" | grep -vc ' race=1 ')" 0

# --- msgpack: `session` on each worker's own socket
export SOCK URL1="${URLS[40]}" URL2="${URLS[41]}"
mp_proxies() {
  python3 - <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["SCATTER_TOP"], "tests/integration"))
from mp import Client
for w, url in ((1, os.environ["URL1"]), (2, os.environ["URL2"])):
    c = Client("%s.%d" % (os.environ["SOCK"], w))
    c.send({"op": "submit", "id": 7, "url": url, "session": "s1", "timeout_ms": 20000})
    r = c.recv(25)
    c.close()
    print(r.get("proxy") if r and r.get("ok") else "error:%r" % (r,))
PY
}
mp_proxies >"$TMP/mp1.txt" 2>&1
cat "$TMP/mp1.txt" | sed 's/^/# msgpack s1: /'
expect_eq "msgpack submits of s1 on both workers use its proxy" "$(sort -u "$TMP/mp1.txt")" "$P1"

# --- the session's proxy fails: the session moves once and keeps the new one
pid="${MS_PID[$P1]:-}"
[ -n "$pid" ] || { fail "pinned proxy '$P1' is not one of ours"; finish; }
kill_pid "$pid" 2
echo "# killed $P1 (pid $pid)"
for b in 0 1 2 3 4; do
  cpids=()
  for j in 0 1; do n=$((20 + b * 2 + j)); get "$n" -H 'X-Scatter-Session: s1' & cpids+=($!); done
  wait "${cpids[@]}"
done
ok200=0; : >"$TMP/p2.txt"
for n in $(seq 20 29); do
  [ "$(status_of "$n")" = 200 ] && ok200=$((ok200 + 1))
  proxy_of "$n" >>"$TMP/p2.txt"
done
sort "$TMP/p2.txt" | uniq -c | sed 's/^/# s1 proxies after the kill: /'
expect_eq "10 requests after the kill answered 200" "$ok200" 10
expect_eq "after the kill all went through one proxy" "$(sort -u "$TMP/p2.txt" | wc -l)" 1
P2=$(head -n 1 "$TMP/p2.txt")
check "that proxy is another one ($P2)" test -n "$P2" -a "$P2" != "$P1"
expect_eq "the session moved once" "$(grep -c "session 's1' host=$T1 moves" "$TMP/scatterd.log")" 1
grep "session 's1' host=$T1 moves" "$TMP/scatterd.log" | sed 's/^/# /'
mp_proxies >"$TMP/mp2.txt" 2>&1
expect_eq "msgpack submits of s1 follow it" "$(sort -u "$TMP/mp2.txt")" "$P2"

fstats "$T1" '{violations, requests} | tostring' | sed "s/^/# $T1: /"
expect_eq "zero violations at the target" "$(fstats "$T1" .violations)" 0

# --- limits: name length, max_sessions, session_ttl
long=$(printf 'x%.0s' $(seq 1 64))
get 30 -H "X-Scatter-Session: $long"
expect_eq "a 64-byte session name gets 400" "$(status_of 30)" 400
check "the 400 names the limit" grep -q "limit of 63 bytes" "$TMP/r.30.b"
get 31 -H 'X-Scatter-Session: s2'
get 32 -H 'X-Scatter-Session: s3'
expect_eq "s2 and s3 admitted (3 sessions: max_sessions)" "$(status_of 31) $(status_of 32)" "200 200"
get 33 -H 'X-Scatter-Session: s4'
expect_eq "a fourth live session gets 503" "$(status_of 33)" 503
check "X-Scatter-Error: pool_full" grep -qi '^X-Scatter-Error: pool_full' "$TMP/r.33.h"
check "the 503 names max_sessions" grep -q "max_sessions = 3" "$TMP/r.33.b"
sed -i 's/^session_ttl = 60$/session_ttl = 1/' "$TMP/scatter.ini"
kill -HUP "$DPID"
sleep 2.5
get 34 -H 'X-Scatter-Session: s4'
expect_eq "after session_ttl idle the fourth is admitted" "$(status_of 34)" 200
expect_eq "zero violations at the target (end)" "$(fstats "$T1" .violations)" 0
expect_eq "rl_held == 0" "$(status_json | jq -r .stalls.rl_held)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0

# --- with http_auth, a session-NAME user is accepted with http_auth's password only
write_ini "$TMP/proxies.txt" 300 'http_auth = "u:pw"'
daemon_up
get 42 --proxy-user "session-s9:pw"
get 43 --proxy-user "session-s9:pw"
expect_eq "session-s9 with http_auth's password: 200, twice" "$(status_of 42) $(status_of 43)" "200 200"
expect_eq "both through the session's proxy" "$(proxy_of 43)" "$(proxy_of 42)"
get 44 --proxy-user "session-s9:wrong"
expect_eq "session-s9 with another password: 407" "$(status_of 44)" 407
get 45 --proxy-user "u:pw"
expect_eq "http_auth's own user still works" "$(status_of 45)" 200
expect_eq "zero violations at the target (second daemon)" "$(fstats "$T1" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM (second daemon)" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
