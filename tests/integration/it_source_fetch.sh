#!/usr/bin/env bash
# it_source_fetch — the master never waits for a proxy source (issue 10, finding 11).
# The "slow" source is an http URL on a farm blackhole (it accepts the connection and never
# answers), source_timeout = 10 s; beside it a local file source "list".
#   (a) start-up: status answers within 1.5 s (the fetch runs in a scatterd-fetch child), the
#       file source is already loaded, the log says the slow one loads behind
#   (b0) SIGHUP while the start-up fetch still hangs: the file source is refreshed, the slow
#       one is not started twice; it ends at source_timeout with a warning
#   (b) SIGHUP (a new hanging fetch), then kill -9 a worker: restarted within 2 s; status
#       answers within 1 s meanwhile
#   (c) SIGTERM during the hanging fetch: exit 0 within 3 s, the fetcher child gone
# On 2110d5e the master ran curl_easy_perform in its loop: (a) took ~10 s, the restart in (b)
# waited for the fetch, and so did the SIGTERM in (c).
source "$(dirname "$0")/lib.sh"
it_init 17
# the daemon's own http fetches must not go through a proxy from the environment
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

farm_up --mix-counts --mix blackhole=1 --blackhole-ms 120000
HOLE=$(sed -E 's#^socks5://##' "$FARM_DIR/proxies.txt" | head -n 1)
printf '192.0.2.1:1080\nsocks5://192.0.2.2:1080\n198.51.100.3:1080\n' >"$TMP/list.txt"
{
  echo "[scatter]"
  echo "sources = \"slow=http://$HOLE/proxies.txt,list=$TMP/list.txt\""
  echo "allow_private_proxies = false"
  echo "source_timeout = 10"
  echo "socket_path = \"$SOCK\""
  echo "pid_file = \"$TMP/scatterd.pid\""
  echo "log_file = \"$TMP/scatterd.log\""
  echo "workers = 2"
  echo "http_listen = \"$NET.2:8118\""
  echo "metrics_listen = \"$NET.3:9118\""
} >"$TMP/scatter.ini"

LOG="$TMP/scatterd.log"
ms() { date +%s%3N; }
# workers and fetchers are both children of the master; a fetcher names itself scatterd-fetch
wpids() { pgrep -P "$DPID" -x scatterd | sort -n | tr '\n' ' ' | sed 's/ $//' || true; }
fpids() { pgrep -P "$DPID" -x scatterd-fetch | tr '\n' ' ' | sed 's/ $//' || true; }
fetching() { [ -n "$(fpids)" ]; }
not_fetching() { [ -z "$(fpids)" ]; }
nlog() { grep -c -F "source $1: " "$LOG" || true; }
# wait_for SECONDS COMMAND... — polls every 0.1 s
wait_for() {
  local n=$(($1 * 10)) i; shift
  for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}

# ---- (a) start-up does not wait for the hanging source
t0=$(ms)
daemon_up
t1=$(ms)
WORKER_PIDS="$(wpids)" # daemon_up's list would include the fetcher
echo "# (a) status answered $((t1 - t0)) ms after start; workers $WORKER_PIDS, fetcher $(fpids)"
expect_le "(a) status answered within 1500 ms of start (ms)" $((t1 - t0)) 1500
check "(a) the file source loaded at start-up beside the hanging one" \
  grep -qF "source list: 3 lines, 3 proxies (3 new), 0 rejected (0 private)" "$LOG"
expect_eq "(a) status proxies.total" "$(status_json | jq -r .proxies.total)" 3
check "(a) the hanging source is fetched by a child process (scatterd-fetch)" fetching
check "(a) the log says the daemon serves without the slow source" \
  grep -qF "source slow is still being fetched; serving without it until it ends" "$LOG"
expect_eq "(a) two workers" "$(wpids | wc -w)" 2

# ---- (b0) a refresh while the start-up fetch hangs: not started twice
first_fetcher=$(fpids)
kill -HUP "$DPID"
check "(b0) SIGHUP refreshed the file source at once" wait_for 3 bash -c "[ \$(grep -c -F 'source list: ' '$LOG') -ge 2 ]"
check "(b0) the hanging source was not started again" \
  grep -qE "source slow is still being fetched \(for [0-9]+ s\); not started again" "$LOG"
expect_eq "(b0) still one fetcher, the same" "$(fpids)" "$first_fetcher"
check "(b0) the hanging fetch ends at source_timeout with a warning (<= 15 s)" \
  wait_for 15 grep -qE "warn.*source slow: fetch failed \(.*timed out.*\); keeping the proxies already known" "$LOG"
grep -F "source slow: " "$LOG" | tail -n 1 | sed 's/^.*master: /# (b0) /'
check "(b0) its fetcher is gone" wait_for 2 not_fetching

# ---- (b) a worker killed during a hanging refresh is restarted at once
kill -HUP "$DPID"
check "(b) SIGHUP started a new fetch of the slow source" wait_for 2 fetching
fetcher=$(fpids)
victim=$(wpids | awk '{print $1}')
t0=$(ms)
kill -KILL "$victim"
restarted() { local w; w=$(wpids); [ "$(echo "$w" | wc -w)" = 2 ] && ! echo " $w " | grep -q " $victim "; }
wait_for 10 restarted || true
t1=$(ms)
WORKER_PIDS="$(wpids)"
echo "# (b) worker $victim killed; workers now $WORKER_PIDS after $((t1 - t0)) ms"
expect_le "(b) the killed worker was restarted within 2000 ms (ms)" $((t1 - t0)) 2000
check "(b) the master logged the death" grep -qE "worker [0-9]+ \(pid $victim\) killed by signal 9" "$LOG"
t0=$(ms)
st=$(status_json | jq -r .workers)
t1=$(ms)
expect_le "(b) status answered during the hanging refresh (ms)" $((t1 - t0)) 1000
expect_eq "(b) status: workers" "$st" 2
expect_eq "(b) the hanging fetch is still running (the kill came during it)" "$(fpids)" "$fetcher"

# ---- (c) SIGTERM does not wait for the fetch
t0=$(ms)
daemon_stop
t1=$(ms)
echo "# (c) SIGTERM to exit: $((t1 - t0)) ms"
expect_eq "(c) scatterd exits 0" "$DRC" 0
expect_le "(c) exit within 3000 ms of SIGTERM during the hanging fetch (ms)" $((t1 - t0)) 3000
check "(c) the fetcher child is gone" bash -c "! kill -0 $fetcher 2>/dev/null"
check "(c) the log says the fetch was stopped" grep -qF "source slow: fetch stopped" "$LOG"
no_sanitizer_report "$LOG" "$TMP/scatterd.out"
finish
