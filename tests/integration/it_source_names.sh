#!/usr/bin/env bash
# it_source_names — proxy names are resolved and every address checked (issue 10, findings 10
# and 13), and tasks wait while the first fetch runs. One real microsocks on 127.0.0.1
# (what "localhost" resolves to) in front of the farm's target; no name here is looked up
# beyond /etc/hosts, so nothing leaves loopback.
#   (a) allow_private_proxies = false: "localhost", "LocalHost" and another /etc/hosts name of a
#       loopback address (if the system has one, e.g. the host's own name), in URL and bare
#       form, are refused as private; a line with a NUL byte is rejected and counted, and the
#       lines after it are still read
#   (b) allow_private_proxies = true: the same names load as the IP that was checked (the
#       table holds socks5://127.0.0.1:PORT, never the name; both names dedupe to it), and a
#       fetch through it is all ok with 0 violations
#   (c) start-up with an http source that answers after 2 s: the daemon serves before it
#       arrives; a task submitted 1 s in (an empty pool) waits for the proxies instead of
#       opening the host's circuit, and is ok
# On 2110d5e the other loopback name got into the table in (a), and the NUL byte ended the
# list (two lines after it lost, the NUL line itself accepted).
source "$(dirname "$0")/lib.sh"
it_init 18
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
command -v microsocks >/dev/null || { echo "microsocks is required (bash scripts/deps.sh)" >&2; exit 1; }
command -v socat >/dev/null || { echo "socat is required (bash scripts/deps.sh)" >&2; exit 1; }

LOG="$TMP/scatterd.log"
farm_up --target "$T1" --mix-counts --mix good=1 --interval-ms 300 --urls 10
MPORT=$((PBASE + 10))
microsocks -i 127.0.0.1 -p "$MPORT" -b "$NET.21" >"$TMP/microsocks.log" 2>&1 &
EXTRA_PIDS+=($!)
for _ in $(seq 1 50); do
  curl -s --max-time 2 --proxy "socks5://127.0.0.1:$MPORT" -o /dev/null "http://$T1/__farm/stats" && break
  sleep 0.1
done
check "microsocks serves on 127.0.0.1:$MPORT" curl -sf --max-time 2 --proxy "socks5://127.0.0.1:$MPORT" -o /dev/null "http://$T1/__farm/stats"

# a name of a loopback address other than localhost (the finding's "vm", "runsc"), from
# /etc/hosts only: a name of the proxy grammar (letters, digits, '-', '.')
ALIAS=$(awk '$1 ~ /^127\./ { for (i = 2; i <= NF; i++) print $i }' /etc/hosts |
  grep -E '^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*$' | grep -viE '^localhost$|\.localhost$' | head -n 1 || true)
if [ -n "$ALIAS" ] && [ "$(getent ahostsv4 "$ALIAS" | awk 'NR == 1 {print $1}')" = 127.0.0.1 ]; then
  echo "# loopback alias from /etc/hosts: $ALIAS"
else
  echo "# no other name of 127.0.0.1 in /etc/hosts: only localhost is tried"
  ALIAS=""
fi

ini() { # ini SOURCES ALLOW_PRIVATE
  {
    echo "[scatter]"
    echo "sources = \"$1\""
    echo "allow_private_proxies = $2"
    echo "socket_path = \"$SOCK\""
    echo "pid_file = \"$TMP/scatterd.pid\""
    echo "log_file = \"$LOG\""
    echo "workers = 2"
    echo "http_listen = \"$NET.2:8118\""
    echo "metrics_listen = \"$NET.3:9118\""
    echo "source_timeout = 5"
    echo "[rate_limit]"
    echo "interval = 300"
  } >"$TMP/scatter.ini"
}
urls() { ctl proxies --json --limit 100000 | jq -r '(.proxies // .)[] | .url' | sort; }

# ---- (a) private after resolution; NUL byte
{
  echo "# names that resolve to loopback must not get past the private rule"
  echo "socks5://localhost:$MPORT"
  echo "LocalHost:$MPORT"
  if [ -n "$ALIAS" ]; then
    echo "socks5://$ALIAS:$MPORT"
    echo "$ALIAS:$MPORT"
  fi
  echo "192.0.2.50:1080"
  printf '192.0.2.51:1080\0junk\n'
  echo "192.0.2.52:1080"
  echo "198.51.100.53:1080"
} >"$TMP/names.txt"
L=$(wc -l <"$TMP/names.txt")
P=2; [ -n "$ALIAS" ] && P=4
ini "names=$TMP/names.txt" false
daemon_up
line=$(grep -F "source names: " "$LOG" | tail -n 1 | sed 's/^.*master: //')
echo "# (a) log: $line"
expect_eq "(a) log line" "$line" "source names: $L lines, 3 proxies (3 new), $((P + 1)) rejected ($P private), 1 lines with a NUL byte"
expect_eq "(a) status proxies.total" "$(status_json | jq -r .proxies.total)" 3
urls >"$TMP/urls.a"
echo "# (a) table: $(tr '\n' ' ' <"$TMP/urls.a")"
expect_eq "(a) the table holds exactly the three public proxies" "$(tr '\n' ' ' <"$TMP/urls.a")" \
  "socks5://192.0.2.50:1080 socks5://192.0.2.52:1080 socks5://198.51.100.53:1080 "
daemon_stop
expect_eq "(a) scatterd exits 0" "$DRC" 0
no_sanitizer_report "$LOG" "$TMP/scatterd.out"
mv "$LOG" "$TMP/scatterd-a.log"

# ---- (b) allowed: the checked IP is what the table keeps and what tasks go through
{
  echo "socks5://localhost:$MPORT"
  [ -n "$ALIAS" ] && echo "$ALIAS:$MPORT"
} >"$TMP/local.txt"
N=$(wc -l <"$TMP/local.txt")
ini "names=$TMP/local.txt" true
daemon_up
line=$(grep -F "source names: " "$LOG" | tail -n 1 | sed 's/^.*master: //')
echo "# (b) log: $line"
expect_eq "(b) log line" "$line" "source names: $N lines, $N proxies (1 new), 0 rejected (0 private)"
expect_eq "(b) the table holds the IP, not the name" "$(urls | tr '\n' ' ')" "socks5://127.0.0.1:$MPORT "
rc=0; ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/b.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "(b) fetch exit status" "$rc" 0
expect_eq "(b) every task ok" "$(jq -r 'select(.ok) | .n' "$TMP/b.jsonl" | wc -l)" 10
expect_eq "(b) every winner is the checked IP" "$(jq -r 'select(.ok) | .proxy' "$TMP/b.jsonl" | sort -u | tr '\n' ' ')" \
  "socks5://127.0.0.1:$MPORT "
expect_eq "(b) zero violations at the target" "$(fstats "$T1" .violations)" 0
daemon_stop
expect_eq "(b) scatterd exits 0" "$DRC" 0
no_sanitizer_report "$LOG" "$TMP/scatterd.out"
mv "$LOG" "$TMP/scatterd-b.log"

# ---- (c) a late first fetch: tasks wait for it instead of opening the circuit
HPORT=$((PBASE + 20))
printf 'socks5://localhost:%s\n' "$MPORT" >"$TMP/late.txt"
printf '#!/bin/sh\nsleep 2\nprintf "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n"\ncat "%s"\n' "$TMP/late.txt" >"$TMP/late.sh"
socat "TCP-LISTEN:$HPORT,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"sh $TMP/late.sh" >"$TMP/socat.log" 2>&1 &
SPID=$!
EXTRA_PIDS+=("$SPID")
# listening (without a probe connection, which would be answered 2 s later)
listening() { grep -qiE "^ *[0-9]+: [0-9A-F]+:$(printf '%04X' "$HPORT") 0+:0000 0A" /proc/net/tcp; }
for _ in $(seq 1 50); do listening && break; sleep 0.1; done
check "(c) socat listens on 127.0.0.1:$HPORT" listening
ini "late=http://127.0.0.1:$HPORT/late.txt" true
t0=$(date +%s%3N)
daemon_up
t1=$(date +%s%3N)
expect_le "(c) status answered before the 2 s source arrived (ms)" $((t1 - t0)) 1500
expect_eq "(c) the table is still empty" "$(status_json | jq -r .proxies.total)" 0
head -n 1 "$FARM_DIR/urls.txt" >"$TMP/u1.txt"
sed -n 2p "$FARM_DIR/urls.txt" >"$TMP/u2.txt"
rc1=0; CTL_TIMEOUT=20 ctl fetch -i "$TMP/u1.txt" --jsonl "$TMP/c1.jsonl" --quiet 2>/dev/null &
F1=$!
sleep 1 # the first task found no proxy; a circuit tick (every 250 ms) has seen it
rc2=0; CTL_TIMEOUT=20 ctl fetch -i "$TMP/u2.txt" --jsonl "$TMP/c2.jsonl" --quiet 2>/dev/null || rc2=$?
wait "$F1" || rc1=$?
expect_eq "(c) task submitted before the proxies: exit status" "$rc1" 0
expect_eq "(c) task submitted 1 s later: exit status" "$rc2" 0
expect_eq "(c) both ok" "$(cat "$TMP/c1.jsonl" "$TMP/c2.jsonl" | jq -r 'select(.ok) | .n' | wc -l)" 2
check "(c) no circuit opened" bash -c "! grep -q 'circuit closed -> open' '$LOG'"
check "(c) the late source loaded" grep -qF "source late: 1 lines, 1 proxies (1 new), 0 rejected (0 private)" "$LOG"
daemon_stop
expect_eq "(c) scatterd exits 0" "$DRC" 0
kill_pid "$SPID" 2
no_sanitizer_report "$LOG" "$TMP/scatterd.out"
finish
