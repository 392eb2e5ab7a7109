#!/usr/bin/env bash
# it_sources — proxy sources (the proxy life cycle): counting, private addresses, refresh,
# failed fetches and http sources.
#   Daemon A (allow_private_proxies = false; its table holds documentation-range addresses, so
#   it is never given a task — nothing leaves loopback):
#   (a) a file of good, malformed, comment and private lines: the log line
#       "source NAME: L lines, M proxies (M new), K rejected (P private)" has the right counts
#       and status proxies.total == M
#   (c) lines appended + SIGHUP: new proxies merged, a duplicate not counted twice, nothing lost
#   (d) a second source at a closed loopback port, then the first file gone: each failed fetch
#       logs a warning and the proxies already known stay
#   (e) an http source served on 127.0.0.1 (python3 -m http.server, else socat): its proxies load
#   Daemon B (allow_private_proxies = true):
#   (b) the loopback farm's proxies load, and a short fetch through them is all ok, 0 violations
source "$(dirname "$0")/lib.sh"
it_init 10
# the daemon's own http fetches (sources) must not go through a proxy from the environment
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

ini_a() { # ini_a SOURCES — daemon A's config
  {
    echo "[scatter]"
    echo "sources = \"$1\""
    echo "allow_private_proxies = false"
    echo "socket_path = \"$SOCK\""
    echo "pid_file = \"$TMP/scatterd.pid\""
    echo "log_file = \"$TMP/scatterd.log\""
    echo "workers = 2"
    echo "source_timeout = 5"
    echo "http_listen = \"$NET.2:8118\""
    echo "metrics_listen = \"$NET.3:9118\""
    echo "[rate_limit]"
    echo "interval = 500"
  } >"$TMP/scatter.ini"
}
total() { status_json | jq -r .proxies.total; }
nlog() { grep -c -F "source $1: " "$TMP/scatterd.log" || true; }
# hup_wait NAME N — SIGHUP the master, wait (<= 15 s) until source NAME has logged N lines
hup_wait() {
  kill -HUP "$DPID"
  local i
  for i in $(seq 1 150); do
    [ "$(nlog "$1")" -ge "$2" ] && { sleep 0.2; return 0; }
    sleep 0.1
  done
  return 1
}
last_line() { grep -F "source $1: " "$TMP/scatterd.log" | tail -n 1 | sed 's/^.*master: //'; }
urls() { ctl proxies --json --limit 100000 | jq -r '(.proxies // .)[] | .url' | sort; }

# ---- (a) counts, private addresses refused
cat >"$TMP/a.txt" <<'EOF'
# a list as found on the internet: comments, blanks, good, malformed and private lines

192.0.2.1:1080
socks5://192.0.2.2:1080
socks5h://user:pass@198.51.100.3:1080
socks4://203.0.113.4:1080
http://203.0.113.5:3128
socks5://[2001:db8::6]:1080
not a proxy
192.0.2.9
192.0.2.10:99999
ftp://192.0.2.11:21
socks5://192.0.2.12:
127.0.0.1:1080
10.1.2.3:1080
192.168.0.1:1080
socks5://localhost:1080
[::1]:1080
169.254.0.1:1080
EOF
L=$(wc -l <"$TMP/a.txt")
ini_a "lista=$TMP/a.txt"
daemon_up
line=$(last_line lista)
echo "# (a) log: $line"
check "(a) log line: $L lines, 6 proxies (6 new), 11 rejected (6 private)" \
  grep -qF "source lista: $L lines, 6 proxies (6 new), 11 rejected (6 private)" "$TMP/scatterd.log"
expect_eq "(a) status proxies.total" "$(total)" 6
urls >"$TMP/urls.a"
echo "# (a) table: $(tr '\n' ' ' <"$TMP/urls.a")"
check "(a) no private or loopback address in the table" bash -c "! grep -E '127\.0\.0\.1|10\.1\.2\.3|192\.168\.|localhost|::1\]|169\.254' '$TMP/urls.a'"
check "(a) no password in the listing" bash -c "! grep -q 'pass@' '$TMP/urls.a'"

# ---- (c) refresh merges: 3 new, 1 duplicate, 1 private appended
cat >>"$TMP/a.txt" <<'EOF'
socks5://192.0.2.20:1080
socks5://192.0.2.21:1080
198.51.100.22:8080
socks5://192.0.2.2:1080
172.16.5.5:1080
EOF
L2=$(wc -l <"$TMP/a.txt")
check "(c) SIGHUP refreshed the source (second log line)" hup_wait lista 2
echo "# (c) log: $(last_line lista)"
check "(c) log line: $L2 lines, 10 proxies (3 new), 12 rejected (7 private)" \
  grep -qF "source lista: $L2 lines, 10 proxies (3 new), 12 rejected (7 private)" "$TMP/scatterd.log"
expect_eq "(c) status proxies.total grew by the 3 new ones" "$(total)" 9
urls >"$TMP/urls.c"
expect_eq "(c) every proxy known before is still listed" "$(comm -23 "$TMP/urls.a" "$TMP/urls.c" | wc -l)" 0

# ---- (d) failed fetches keep what is known
ini_a "lista=$TMP/a.txt,dead=http://127.0.0.1:1/p.txt"
check "(d) SIGHUP: the http source on a closed port was tried" hup_wait dead 1
echo "# (d) log: $(last_line dead)"
check "(d) a warning names the failed source" grep -qE "warn.*source dead: fetch failed" "$TMP/scatterd.log"
expect_eq "(d) proxies from the first source stay" "$(total)" 9
mv "$TMP/a.txt" "$TMP/a.gone"
n0=$(nlog lista)
check "(d) SIGHUP with the first source's file gone" hup_wait lista $((n0 + 1))
echo "# (d) log: $(last_line lista)"
check "(d) a warning says the file fetch failed and the proxies are kept" grep -qE "warn.*source lista: fetch failed.*keeping" "$TMP/scatterd.log"
expect_eq "(d) proxies.total unchanged after the failed refresh" "$(total)" 9
urls >"$TMP/urls.d"
expect_eq "(d) the same proxies are listed" "$(comm -3 "$TMP/urls.c" "$TMP/urls.d" | wc -l)" 0
kill -0 "$DPID" && ok "(d) daemon still running" || fail "(d) daemon still running"
mv "$TMP/a.gone" "$TMP/a.txt"

# ---- (e) an http source on 127.0.0.1
HPORT=$((PBASE + 240))
mkdir -p "$TMP/www"
printf 'socks5://192.0.2.30:1080\nsocks5://192.0.2.31:1080\n198.51.100.32:1080\n# end\n10.9.9.9:1080\n' >"$TMP/www/h.txt"
HPID=""
if command -v python3 >/dev/null; then
  python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$HPORT" >"$TMP/http.log" 2>&1 &
  HPID=$!; how="python3 -m http.server"
elif command -v socat >/dev/null; then
  socat "TCP-LISTEN:$HPORT,bind=127.0.0.1,reuseaddr,fork" \
    SYSTEM:"printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'; cat '$TMP/www/h.txt'" >"$TMP/http.log" 2>&1 &
  HPID=$!; how="socat"
fi
if [ -n "$HPID" ]; then
  EXTRA_PIDS+=("$HPID")
  for _ in $(seq 1 50); do curl -s --noproxy '*' --max-time 1 -o /dev/null "http://127.0.0.1:$HPORT/h.txt" && break; sleep 0.1; done
  check "(e) $how serves the list on 127.0.0.1:$HPORT" curl -sf --noproxy '*' --max-time 2 -o /dev/null "http://127.0.0.1:$HPORT/h.txt"
  ini_a "lista=$TMP/a.txt,web=http://127.0.0.1:$HPORT/h.txt"
  check "(e) SIGHUP: the http source was fetched" hup_wait web 1
  echo "# (e) log: $(last_line web)"
  check "(e) log line: 5 lines, 3 proxies (3 new), 1 rejected (1 private)" \
    grep -qF "source web: 5 lines, 3 proxies (3 new), 1 rejected (1 private)" "$TMP/scatterd.log"
  expect_eq "(e) status proxies.total includes the http source's proxies" "$(total)" 12
  urls >"$TMP/urls.e"
  expect_eq "(e) nothing lost" "$(comm -23 "$TMP/urls.c" "$TMP/urls.e" | wc -l)" 0
  kill_pid "$HPID" 2
else
  echo "# (e) skipped: neither python3 nor socat to serve a file over http"
fi
daemon_stop
expect_eq "daemon A exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
mv "$TMP/scatterd.log" "$TMP/scatterd-a.log"

# ---- (b) allow_private_proxies = true: the loopback farm loads and serves
farm_up --mix-counts --mix good=20,refuse=4 --good-latency-ms 2 --interval-ms 300 --urls 40
write_ini "$FARM_DIR/proxies.txt" 300
daemon_up
echo "# (b) log: $(last_line farm)"
check "(b) log line: 24 lines, 24 proxies (24 new), 0 rejected (0 private)" \
  grep -qF "source farm: 24 lines, 24 proxies (24 new), 0 rejected (0 private)" "$TMP/scatterd.log"
expect_eq "(b) status proxies.total" "$(total)" 24
rc=0; ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/b.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "(b) fetch through the farm proxies: exit status" "$rc" 0
expect_eq "(b) every task ok" "$(grep -c '"ok":true' "$TMP/b.jsonl" || true)" 40
expect_eq "(b) zero violations at target 1" "$(fstats "$T1" .violations)" 0
expect_eq "(b) zero violations at target 2" "$(fstats "$T2" .violations)" 0
daemon_stop
expect_eq "daemon B exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
