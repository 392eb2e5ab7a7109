# redis_lib.sh — helpers of the it_redis_* tests (sourced after lib.sh and it_init): a
# redis-server of the test's own on $NET.4:6379, and several scatterd instances in $TMP/i<K>,
# each with its own socket, HTTP and metrics addresses, all on the farm's proxy list and one
# task stream. Every process started here is stopped by pid in lib.sh's EXIT trap.

REDIS_IP="$NET.4"
REDIS_PORT=6379
REDIS_URL="redis://$REDIS_IP:$REDIS_PORT"
REDIS_PID=""
declare -A IPID=()

command -v redis-server >/dev/null || { echo "# redis-server missing (bash scripts/deps.sh): skipped"; exit 77; }

# redis_up [redis-server options...] — starts (or restarts, keeping $TMP/redis) the server.
redis_up() {
  mkdir -p "$TMP/redis"
  redis-server --bind "$REDIS_IP" --port "$REDIS_PORT" --dir "$TMP/redis" --save '' --daemonize no \
    --logfile "$TMP/redis/redis.log" "$@" &
  REDIS_PID=$!
  EXTRA_PIDS+=("$REDIS_PID")
  local i
  for i in $(seq 1 100); do
    [ "$(rcli PING 2>/dev/null)" = PONG ] && { echo "# redis up: pid $REDIS_PID"; return 0; }
    sleep 0.1
  done
  echo "redis-server did not start"; cat "$TMP/redis/redis.log"; return 1
}

# redis_stop — SIGTERM and wait (a clean stop: with appendonly the stream is on disk).
redis_stop() { kill_pid "$REDIS_PID" 10; REDIS_PID=""; }

rcli() { timeout 10 redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" "$@"; }

# inst_ini K SHARD [more [scatter] lines...] — $TMP/iK/scatter.ini
inst_ini() {
  local k="$1" shard="$2"; shift 2
  local d="$TMP/i$k"
  mkdir -p "$d"
  {
    echo "[scatter]"
    echo "sources = \"farm=$FARM_DIR/proxies.txt\""
    echo "allow_private_proxies = true"
    echo "socket_path = \"$d/scatter.sock\""
    echo "pid_file = \"$d/scatterd.pid\""
    echo "workers = 2"
    echo "log_file = \"$d/scatterd.log\""
    echo "http_listen = \"$NET.$((20 + k)):8118\""
    echo "metrics_listen = \"$NET.$((30 + k)):9118\""
    echo "shard = $shard"
    echo "redis_url = \"$REDIS_URL\""
    echo "redis_stream = \"it:tasks\""
    local l; for l in "$@"; do echo "$l"; done
    echo "[rate_limit]"
    echo "interval = ${INTERVAL:-500}"
  } >"$d/scatter.ini"
}

# inst_up K — starts instance K; waits until it answers status.
inst_up() {
  local k="$1" d="$TMP/i$1" i
  "$SCATTERD" -c "$d/scatter.ini" -f >"$d/scatterd.out" 2>&1 </dev/null &
  IPID[$k]=$!
  EXTRA_PIDS+=("${IPID[$k]}")
  for i in $(seq 1 100); do
    if ! kill -0 "${IPID[$k]}" 2>/dev/null; then
      cat "$d/scatterd.out" "$d/scatterd.log" >&2; echo "instance $k exited during start-up" >&2; return 1
    fi
    if [ -S "$d/scatter.sock" ] && ictl "$k" status --json >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  echo "# instance $k up: master ${IPID[$k]}, workers $(pgrep -P "${IPID[$k]}" | tr '\n' ' ')"
}

ictl() { local k="$1"; shift; ASAN_OPTIONS=detect_leaks=0 timeout "${CTL_TIMEOUT:-60}" "$SCATTERCTL" -s "$TMP/i$k/scatter.sock" "$@"; }

# inst_stop K — SIGTERM; INST_RC gets its exit status.
inst_stop() {
  local k="$1" p="${IPID[$1]}" i
  INST_RC=124
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 200); do
    if ! kill -0 "$p" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ]; then
      INST_RC=0; wait "$p" || INST_RC=$?; return 0
    fi
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null || true
}

# insts_stop K... — stops each instance: exit 0 on SIGTERM, no sanitizer report in its files.
insts_stop() {
  local k
  for k in "$@"; do
    inst_stop "$k"
    expect_eq "i$k exits 0 on SIGTERM" "$INST_RC" 0
    no_sanitizer_report "$TMP/i$k/scatterd.log" "$TMP/i$k/scatterd.out"
  done
}

# expect_batch_answered OUT N — the batch's jsonl: every task answered once, >= 99 % ok; and
# 0 violations at both targets (their counts printed).
expect_batch_answered() {
  local out="$1" n="$2" t
  expect_eq "every task answered: jsonl lines" "$(wc -l <"$out")" "$n"
  expect_eq "each task once in the output (distinct n)" "$(jq -r .n "$out" | sort -u | wc -l)" "$n"
  expect_ge "ok tasks >= 99%" "$(jq -r 'select(.ok) | .n' "$out" | wc -l)" $((n * 99 / 100))
  for t in "$T1" "$T2"; do
    fstats "$t" '{violations, requests} | tostring' | sed "s/^/# $t: /"
    expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0
  done
}

# rfetch [scatterctl fetch options...] — fetch through the stream (no socket).
rfetch() { ASAN_OPTIONS=detect_leaks=0 timeout "${CTL_TIMEOUT:-120}" "$SCATTERCTL" fetch --redis "$REDIS_URL" --stream it:tasks "$@"; }

# the farm's per-source counters of target $1: "source-ip requests" lines
farm_sources() { fstats "$1" '.sources | to_entries[] | select(.value.requests > 0) | "\(.key) \(.value.requests)"'; }

# proxy URL -> the farm's source address of that proxy (proxy i, port PBASE+i, connects from
# 127.1.(i/250).(i%250+1))
proxy_source() { awk -v base="$PBASE" -F: '{ i = $NF - base; printf "127.1.%d.%d\n", int(i / 250), i % 250 + 1 }'; }
