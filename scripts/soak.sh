#!/usr/bin/env bash
# soak.sh — a bounded mixed load with faults against a real scatterd (2 workers) on the
# loopback farm, sampled every minute, checked at the end (tests/soak/README.md).
#
#   scripts/soak.sh [MINUTES]        load phase of MINUTES (default 10, 1..600); the whole run
#                                    takes about MINUTES + 2 min (warm-up, drain, idle sample)
#
# Environment:
#   SCATTER_BUILD=DIR   use the Release build in DIR (master/scatterd, ctl/scatterctl,
#                       tests/farm/scatter-farm); default: configure and build build-soak/
#   SOAK_OUT=DIR        where the run's files go (default: a new /tmp/scatter-soak.XXXXXX);
#                       it is always kept and printed
#   SOAK_RSS_TOL_PCT, SOAK_RSS_TOL_KB, SOAK_FD_TOL   the idle band (defaults 25, 4096, 4)
#   SOAK_MIN_OK         least share of well-behaved tasks that must succeed (default 0.98)
#   SOAK_NO_DEPS=1      skip scripts/deps.sh --soak
#   SOAK_KEEP_BATCHES=1 keep every fetch batch's URL list and output (default: failed ones only)
#
# What runs: the farm (200 proxies, mixed behaviours, 2 targets at 500 ms per source address)
# on 127.0.251.x, scatterd with 2 workers, and tests/soak/load.py: 3 lanes of `scatterctl
# fetch` batches, a client that never reads, clients that disconnect mid-task, malformed
# frames. Each minute: SIGKILL of one worker (at +20 s, or up to 10 s later once 50 tasks are
# pending; workers in turn) and SIGHUP of the master (at +40 s); at each minute mark one sample
# of every process's RSS and open fds, the shared pending/inflight counters and the targets'
# violations (samples.csv, one line printed).
#
# Checks at the end (exit 1 naming each failed one; 0 when all pass): every well-behaved task
# answered exactly once (scatterctl resubmits what a killed worker owed: allowed), their ok
# share, 0 violations, pending/inflight/rl_held back to 0 once idle, RSS and fds of the
# master and of each worker slot within the idle band measured after warm-up, every malformed
# frame answered bad_request and closed, the master alive, both workers running, every worker
# death one of ours. Every process it starts is stopped by pid on exit, also on Ctrl-C.
set -euo pipefail

TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINUTES="${1:-10}"
case "$MINUTES" in ''|*[!0-9]*) echo "soak: MINUTES must be a whole number of minutes, got '$MINUTES'" >&2; exit 2 ;; esac
if [ "$MINUTES" -lt 1 ] || [ "$MINUTES" -gt 600 ]; then
  echo "soak: MINUTES must be 1..600, got $MINUTES" >&2; exit 2
fi
RSS_TOL_PCT="${SOAK_RSS_TOL_PCT:-25}"
RSS_TOL_KB="${SOAK_RSS_TOL_KB:-4096}"
FD_TOL="${SOAK_FD_TOL:-4}"
MIN_OK="${SOAK_MIN_OK:-0.98}"

# 127.0.251.x: no integration test slot (127.0.231-250.x) and no demo (127.0.0.x) uses it
NET=127.0.251
T1="$NET.10:18080"
T2="$NET.11:18080"
PROXY_IP="$NET.1"
PBASE=16000
NPROXIES=200
INTERVAL_MS=500
MIX="good=30,slow=10,flaky=15,refuse=15,blackhole=10,banned=10,captcha=10"
KILL_AT=20   # seconds into each minute
KILL_WAIT_S=10  # ... or up to this much later, as soon as KILL_MIN_PENDING tasks are pending
KILL_MIN_PENDING=50
HUP_AT=40
IDLE_WAIT_S=120  # longest wait for pending/inflight to reach 0 after the load
SETTLE_S=20      # idle time before an idle sample (workers trim their heap 0.5 s after idle)

say() { printf '== %s\n' "$*"; }
die() { echo "soak: $*" >&2; exit 1; }

DIR=""
DPID=""
DRIVER=""
NAP=""
FARM_UP=0
WORKERS_SEEN=""
cleanup() {
  local rc=$? i p
  set +e
  trap - EXIT INT TERM
  [ -n "$NAP" ] && kill "$NAP" 2>/dev/null
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null  # it kills its scatterctl children by pid
    for i in $(seq 1 50); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DRIVER" 2>/dev/null
    wait "$DRIVER" 2>/dev/null
  fi
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    WORKERS_SEEN="$WORKERS_SEEN $(pgrep -P "$DPID" | tr '\n' ' ')"
    kill -TERM "$DPID" 2>/dev/null
    for i in $(seq 1 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DPID" 2>/dev/null; then
      echo "soak: scatterd (pid $DPID) still runs after 20 s, sending SIGKILL" >&2
      kill -KILL "$DPID" 2>/dev/null
    fi
    wait "$DPID" 2>/dev/null
  fi
  # workers of ours that outlived their master (they get SIGTERM by PDEATHSIG; be sure)
  for p in $WORKERS_SEEN; do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = scatterd ] && kill -KILL "$p" 2>/dev/null
  done
  if [ "$FARM_UP" = 1 ] && [ -f "$DIR/farm/pid" ]; then
    "$TOP/scripts/farm.sh" down --out "$DIR/farm" >/dev/null 2>&1
  fi
  if [ "$rc" = 130 ] || [ "$rc" = 143 ]; then echo "soak: interrupted; everything it started is stopped" >&2; fi
  [ -n "$DIR" ] && echo "soak: files in $DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# nap SECONDS — a sleep that Ctrl-C / SIGTERM interrupt at once (the trap runs after wait)
nap() { sleep "$1" & NAP=$!; wait "$NAP" || true; NAP=""; }

# ---- dependencies and binaries ----
if [ "${SOAK_NO_DEPS:-0}" != 1 ]; then bash "$TOP/scripts/deps.sh" --soak; fi
command -v python3 >/dev/null || die "python3 is required (bash scripts/deps.sh --soak)"
command -v jq >/dev/null || die "jq is required (bash scripts/deps.sh --soak)"

if [ -n "${SCATTER_BUILD:-}" ]; then
  BUILD="$(cd "$SCATTER_BUILD" && pwd)" || die "SCATTER_BUILD=$SCATTER_BUILD is not a directory"
  bt="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
  # memory and fd figures of a Debug or sanitizer build say nothing about the shipped daemon
  [ "$bt" = Release ] || die "SCATTER_BUILD=$BUILD is a '${bt:-unknown}' build, the soak wants Release (or leave SCATTER_BUILD unset)"
  if grep -q '^SCATTER_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then die "SCATTER_BUILD=$BUILD has SCATTER_SANITIZE=ON"; fi
else
  BUILD="$TOP/build-soak"
  say "Release build into $BUILD"
  cmake -S "$TOP" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSCATTER_SANITIZE=OFF -DSCATTER_TESTS=OFF >"$BUILD.cmake.log" 2>&1 ||
    { cat "$BUILD.cmake.log" >&2; die "cmake configure failed"; }
  cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { tail -n 40 "$BUILD.build.log" >&2; die "build failed"; }
  rm -f "$BUILD.cmake.log" "$BUILD.build.log"
fi
SCATTERD="$BUILD/master/scatterd"
SCATTERCTL="$BUILD/ctl/scatterctl"
export SCATTER_FARM="$BUILD/tests/farm/scatter-farm"
for b in "$SCATTERD" "$SCATTERCTL" "$SCATTER_FARM"; do [ -x "$b" ] || die "not built: $b"; done

if [ -n "${SOAK_OUT:-}" ]; then
  DIR="$SOAK_OUT"; mkdir -p "$DIR"
  [ -z "$(ls -A "$DIR")" ] || die "SOAK_OUT=$DIR is not empty"
  DIR="$(cd "$DIR" && pwd)"
else
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/scatter-soak.XXXXXX")"
fi
SOCK="$DIR/scatter.sock"
# the revision the binaries were built from (their source tree may not be this one)
SRC="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
if REV="$(git -C "${SRC:-/nonexistent}" rev-parse --short HEAD 2>/dev/null)"; then
  if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no -- master worker shm common ctl 2>/dev/null)" ]; then
    REV="$REV+uncommitted"
  fi
else
  REV="source ${SRC:-unknown} (not a git tree)"
fi
say "soak of $MINUTES min, scatterd $("$SCATTERD" --version | awk '{print $NF}') at $REV, build $BUILD, files $DIR"

# ---- farm and daemon ----
for t in "$T1" "$T2"; do
  if curl -s --noproxy '*' --max-time 1 -o /dev/null "http://$t/__farm/stats"; then
    die "something already answers on $t (another soak running?)"
  fi
done
"$TOP/scripts/farm.sh" up --out "$DIR/farm" --proxy-ip "$PROXY_IP" --proxy-base-port "$PBASE" \
  --target "$T1" --target "$T2" --proxies "$NPROXIES" --mix "$MIX" --seed 17 \
  --interval-ms "$INTERVAL_MS" --urls 10 --blackhole-ms 20000 >/dev/null
FARM_UP=1
FARM_PID="$(cat "$DIR/farm/pid")"

cat >"$DIR/scatter.ini" <<EOF
[scatter]
sources = "farm=$DIR/farm/proxies.txt"
allow_private_proxies = true
socket_path = "$SOCK"
pid_file = "$DIR/scatterd.pid"
log_file = "$DIR/scatterd.log"
workers = 2
blocked_body = "captcha"
http_listen = "$NET.2:8118"
metrics_listen = "$NET.3:9118"

[rate_limit]
interval = $INTERVAL_MS
EOF
"$SCATTERD" -c "$DIR/scatter.ini" -f >"$DIR/scatterd.out" 2>&1 </dev/null &
DPID=$!
up=0
for _ in $(seq 1 100); do
  kill -0 "$DPID" 2>/dev/null || { cat "$DIR/scatterd.out" "$DIR/scatterd.log" >&2 2>/dev/null; DPID=""; die "scatterd exited during start-up"; }
  if [ -S "$SOCK" ] && timeout 5 "$SCATTERCTL" -s "$SOCK" status --json >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
[ "$up" = 1 ] || die "scatterd did not answer within 10 s"
say "farm pid $FARM_PID ($NPROXIES proxies on $PROXY_IP:$PBASE+, targets $T1 $T2), scatterd pid $DPID"

# ---- sampling ----

# worker_pid W — the pid of worker slot W now: the last "worker W: started (pid P)" line,
# if P is still a child of the master
worker_pid() {
  local p
  p="$(sed -n "s/.*worker $1: started (pid \([0-9]*\)).*/\1/p" "$DIR/scatterd.log" | tail -n 1)"
  if [ -n "$p" ] && [ "$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)" = "$DPID" ]; then echo "$p"; else echo ""; fi
}
# tcp_map — "inode state" of every TCP socket (state 08 = CLOSE_WAIT), for proc_line
tcp_map() { awk 'FNR > 1 {print $10, $4}' /proc/net/tcp /proc/net/tcp6 2>/dev/null >"$DIR/.tcp" || true; }
# proc_line PID — "pid rss_kb fds tcp close_wait": open fds, how many of them are TCP sockets
# (a worker's are libcurl's tunnels to the proxies) and how many of those the peer has closed
# (dashes when the process is gone)
proc_line() {
  local p="$1" rss
  if [ -n "$p" ] && rss="$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null)" && [ -n "$rss" ]; then
    echo "$p $rss $(ls -l "/proc/$p/fd" 2>/dev/null | awk -v map="$DIR/.tcp" '
      BEGIN { while ((getline l < map) > 0) { split(l, a, " "); st[a[1]] = a[2] } }
      / -> / { n++; if (match($0, /socket:\[[0-9]+\]/)) { i = substr($0, RSTART + 8, RLENGTH - 9)
                 if (i in st) { tcp++; if (st[i] == "08") cw++ } } }
      END { print n + 0, tcp + 0, cw + 0 }')"
  else
    echo "- - - - -"
  fi
}
violations() {
  local t v sum=0
  for t in "$T1" "$T2"; do
    v="$(curl -s --noproxy '*' --max-time 5 "http://$t/__farm/stats" | jq -r .violations 2>/dev/null || true)"
    case "$v" in ''|*[!0-9]*) echo "-"; return ;; esac
    sum=$((sum + v))
  done
  echo "$sum"
}
# status_fields — "pending inflight rl_held" from scatterctl status --json (dashes if no answer)
status_fields() {
  timeout 10 "$SCATTERCTL" -s "$SOCK" status --json 2>/dev/null |
    jq -r '"\(.tasks.pending) \(.inflight) \(.stalls.rl_held // "-")"' 2>/dev/null || echo "- - -"
}
drv() { jq -r "$1" "$DIR/driver.json" 2>/dev/null || echo 0; }

CSV="$DIR/samples.csv"
echo "label,t_s,master_pid,master_rss_kb,master_fds,w1_pid,w1_rss_kb,w1_fds,w1_tcp,w1_close_wait,w2_pid,w2_rss_kb,w2_fds,w2_tcp,w2_close_wait,pending,inflight,rl_held,violations,wb_tasks,wb_ok,wb_bad_batches,noread_tasks,disc_tasks,malformed,kills,hups" >"$CSV"
KILLS=0
HUPS=0
T0=$(date +%s)
# sample LABEL — one CSV row and one printed line; sets S_* for the checks
sample() {
  local label="$1" x
  tcp_map
  read -r S_MPID S_MRSS S_MFD x x <<<"$(proc_line "$DPID")"
  read -r S_W1PID S_W1RSS S_W1FD S_W1TCP S_W1CW <<<"$(proc_line "$(worker_pid 1)")"
  read -r S_W2PID S_W2RSS S_W2FD S_W2TCP S_W2CW <<<"$(proc_line "$(worker_pid 2)")"
  read -r S_PEND S_INFL S_RLH <<<"$(status_fields)"
  S_VIOL="$(violations)"
  local wbt wbo wbb nr dt mf
  # one read: the driver rewrites the file every second
  read -r wbt wbo wbb nr dt mf <<<"$(drv '"\(.wb_tasks) \(.wb_ok) \(.batches_bad) \(.noread_tasks) \(.disc_tasks) \(.malformed)"' | grep ' ' || echo "0 0 0 0 0 0")"
  echo "$label,$(( $(date +%s) - T0 )),$S_MPID,$S_MRSS,$S_MFD,$S_W1PID,$S_W1RSS,$S_W1FD,$S_W1TCP,$S_W1CW,$S_W2PID,$S_W2RSS,$S_W2FD,$S_W2TCP,$S_W2CW,$S_PEND,$S_INFL,$S_RLH,$S_VIOL,$wbt,$wbo,$wbb,$nr,$dt,$mf,$KILLS,$HUPS" >>"$CSV"
  printf '[%-5s] master %s kB %s fd | w1 %s kB %s fd (%s tcp) | w2 %s kB %s fd (%s tcp) | pending %s inflight %s | violations %s | wb %s tasks %s ok, %s bad batches | noread %s disc %s malformed %s | kills %s hups %s\n' \
    "$label" "$S_MRSS" "$S_MFD" "$S_W1RSS" "$S_W1FD" "$S_W1TCP" "$S_W2RSS" "$S_W2FD" "$S_W2TCP" "$S_PEND" "$S_INFL" "$S_VIOL" \
    "$wbt" "$wbo" "$wbb" "$nr" "$dt" "$mf" "$KILLS" "$HUPS"
}
# wait_idle — until pending and inflight are 0 (at most IDLE_WAIT_S); sets IDLE_AFTER_S (or "never")
wait_idle() {
  local t0 p f r
  t0=$(date +%s)
  IDLE_AFTER_S=never
  while [ $(( $(date +%s) - t0 )) -lt "$IDLE_WAIT_S" ]; do
    read -r p f r <<<"$(status_fields)"
    if [ "$p" = 0 ] && [ "$f" = 0 ]; then IDLE_AFTER_S=$(( $(date +%s) - t0 )); return 0; fi
    nap 1
  done
}

LOAD=(python3 "$TOP/tests/soak/load.py" --sock "$SOCK" --workers 2 --scatterctl "$SCATTERCTL"
      --target "$T1" --target "$T2" --out "$DIR")
[ "${SOAK_KEEP_BATCHES:-0}" != 1 ] || LOAD+=(--keep-batches)

# ---- warm-up, then the idle band ----
# the band is measured on processes that have seen one of everything the load does: a SIGHUP
# (a reload keeps some allocator memory in the master), a worker kill and restart, each client
say "warm-up: a SIGHUP, a worker kill, one of each kind of client, then ${SETTLE_S} s idle"
kill -HUP "$DPID"
w="$(worker_pid 2)"
kill -KILL "$w"
for _ in $(seq 1 50); do [ -z "$(worker_pid 2)" ] || [ "$(worker_pid 2)" = "$w" ] || break; nap 0.1; done
[ -n "$(worker_pid 2)" ] && [ "$(worker_pid 2)" != "$w" ] || die "worker 2 was not restarted within 5 s of the warm-up kill"
"${LOAD[@]}" --warmup --seed 1 >"$DIR/driver-warmup.log" 2>&1 &
DRIVER=$!
wait "$DRIVER" || die "warm-up driver failed (exit $?): $(tail -n 5 "$DIR/driver-warmup.log")"
DRIVER=""
wait_idle
nap "$SETTLE_S"
sample idle0
B_MRSS=$S_MRSS; B_MFD=$S_MFD; B_W1RSS=$S_W1RSS; B_W2RSS=$S_W2RSS
B_W1FD=$((S_W1FD - S_W1TCP)); B_W2FD=$((S_W2FD - S_W2TCP))
for v in "$B_MRSS" "$B_W1RSS" "$B_W2RSS"; do [ "$v" != - ] || die "a process is missing in the idle sample: $(tail -n 1 "$CSV")"; done
mv "$DIR/batches.jsonl" "$DIR/batches-warmup.jsonl" 2>/dev/null || true

# ---- the load, with a kill and a SIGHUP every minute ----
say "load: $MINUTES min; SIGKILL of a worker at +${KILL_AT} s and SIGHUP of the master at +${HUP_AT} s of every minute"
echo "time,event,pid,note" >"$DIR/events.csv"
"${LOAD[@]}" --seconds $((MINUTES * 60)) --seed 2 >"$DIR/driver.log" 2>&1 &
DRIVER=$!
L0=$(date +%s)
at() { # at SECONDS_SINCE_LOAD_START — naps until then
  local d=$(( L0 + $1 - $(date +%s) ))
  [ "$d" -le 0 ] || nap "$d"
}
for m in $(seq 1 "$MINUTES"); do
  base=$(( (m - 1) * 60 ))
  at $((base + KILL_AT))
  # a kill between two batches would cost nothing: wait (at most KILL_WAIT_S) until tasks are
  # pending, so that the dead worker owes something and the clients have to resubmit it
  for _ in $(seq 1 $((KILL_WAIT_S * 5))); do
    read -r p _ _ <<<"$(status_fields)"
    [ "$p" = - ] || [ "$p" -lt "$KILL_MIN_PENDING" ] || break
    nap 0.2
  done
  slot=$(( (m - 1) % 2 + 1 ))
  victim="$(worker_pid "$slot")"
  if [ -n "$victim" ]; then
    kill -KILL "$victim"; KILLS=$((KILLS + 1))
    echo "$(( $(date +%s) - L0 )),kill_w$slot,$victim,pending $p" >>"$DIR/events.csv"
  else
    echo "$(( $(date +%s) - L0 )),kill_w${slot}_skipped_no_pid," >>"$DIR/events.csv"
    echo "soak: minute $m: no live pid for worker $slot to kill" >&2
  fi
  at $((base + HUP_AT))
  kill -HUP "$DPID"; HUPS=$((HUPS + 1))
  echo "$(( $(date +%s) - L0 )),hup,$DPID" >>"$DIR/events.csv"
  at $((base + 60))
  sample "m$m"
  kill -0 "$DRIVER" 2>/dev/null || [ "$m" = "$MINUTES" ] || die "the load driver stopped early: $(tail -n 5 "$DIR/driver.log")"
done

say "load over: waiting for the clients to finish their last batches"
drc=0; wait "$DRIVER" || drc=$?
DRIVER=""
[ "$drc" = 0 ] || echo "soak: load driver exit status $drc: $(tail -n 5 "$DIR/driver.log")" >&2
wait_idle
echo "idle (pending and inflight 0) after: ${IDLE_AFTER_S} s; settling ${SETTLE_S} s"
nap "$SETTLE_S"
sample end
# CPU seconds: the master's own plus its reaped children's (the killed workers), the live
# workers', the farm's, and the clients' (load.py and every scatterctl it ran)
HZ=$(getconf CLK_TCK)
cpu_of() { awk -v hz="$HZ" -v all="$2" '{ t = $14 + $15; if (all) t += $16 + $17; printf "%.1f", t / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
CPU_D=$(echo "$(cpu_of "$DPID" 1) $(cpu_of "${S_W1PID/-/0}" 0) $(cpu_of "${S_W2PID/-/0}" 0)" | awk '{printf "%.1f", $1 + $2 + $3}')
CPU_F=$(cpu_of "$FARM_PID" 0)

# ---- checks ----
FAILS=0
CHECKS="$DIR/checks.txt"
: >"$CHECKS"
pass() { echo "PASS  $*" | tee -a "$CHECKS"; }
flunk() { echo "FAIL  $*" | tee -a "$CHECKS"; FAILS=$((FAILS + 1)); }
verdict() { if [ "$1" = 1 ]; then pass "$2"; else flunk "$2"; fi; }
say "checks"

B="$DIR/batches.jsonl"
[ -s "$B" ] || : >"$B"
nb=$(jq -s 'length' "$B")
sum() { jq -s "map($1) | add // 0" "$B"; }
wb_tasks=$(sum .urls); wb_lines=$(sum .lines); wb_ok=$(sum .ok)
missing=$(sum .missing); dup=$(sum .duplicate); stray=$(sum .stray); unans=$(sum .unanswered)
hung=$(jq -s 'map(select(.hung)) | length' "$B"); badrc=$(jq -s 'map(select(.rc != 0 and .rc != 1)) | length' "$B")
verdict "$([ "$nb" -gt 0 ] && [ "$wb_tasks" -gt 0 ] && echo 1)" "well-behaved clients ran: $nb fetch batches, $wb_tasks tasks"
verdict "$([ "$missing" = 0 ] && [ "$dup" = 0 ] && [ "$stray" = 0 ] && [ "$unans" = 0 ] && [ "$wb_lines" = "$wb_tasks" ] && echo 1)" \
  "every well-behaved task answered exactly once: $wb_lines results for $wb_tasks tasks, $missing missing, $dup twice, $stray unknown, $unans never answered by the daemon (client-side codes)"
verdict "$([ "$hung" = 0 ] && [ "$badrc" = 0 ] && echo 1)" "every fetch ended by itself with status 0 or 1: $hung killed after 300 s, $badrc other status"
ok_share=$(jq -n --argjson o "$wb_ok" --argjson t "$wb_tasks" 'if $t > 0 then $o / $t else 0 end')
verdict "$(jq -n --argjson s "$ok_share" --argjson m "$MIN_OK" 'if $s >= $m then 1 else 0 end')" \
  "well-behaved ok share $(printf '%.4f' "$ok_share") >= $MIN_OK ($wb_ok of $wb_tasks; failures: $(jq -s -c 'map(.errors | to_entries[]) | group_by(.key) | map({(.[0].key): (map(.value) | add)}) | add // {}' "$B"))"
verdict "$([ "$S_VIOL" = 0 ] && echo 1)" "rate-limit violations at the targets: $S_VIOL (want 0)"
verdict "$([ "$S_PEND" = 0 ] && [ "$S_INFL" = 0 ] && echo 1)" "pending $S_PEND and inflight $S_INFL once idle (want 0 and 0; reached 0 after: $IDLE_AFTER_S s)"
verdict "$([ "$S_RLH" = 0 ] && echo 1)" "rate-limit words held once idle: $S_RLH (want 0)"
# band BASE — the highest value of the idle band of RSS
band() { local b="$1" t; t=$(( b * RSS_TOL_PCT / 100 )); [ "$t" -ge "$RSS_TOL_KB" ] || t="$RSS_TOL_KB"; echo $(( b + t )); }
# inband NAME RSS BASE_RSS FDS_NOT_TCP BASE_FDS_NOT_TCP [TCP CLOSE_WAIT]
inband() {
  local hi_r hi_f
  if [ "$2" = - ]; then flunk "$1: no process to measure at the end"; return; fi
  hi_r=$(band "$3"); hi_f=$(( $5 + FD_TOL ))
  verdict "$([ "$2" -le "$hi_r" ] && echo 1)" "$1 RSS $2 kB within its idle band (<= $hi_r kB: $3 kB after warm-up + max(${RSS_TOL_PCT} %, ${RSS_TOL_KB} kB))"
  verdict "$([ "$4" -le "$hi_f" ] && echo 1)" "$1 open fds other than TCP sockets: $4 within the idle band (<= $hi_f: $5 after warm-up + $FD_TOL)"
  [ $# -ge 6 ] || return 0
  # an idle worker keeps libcurl's cache of tunnels to the proxies, at most one per (proxy,
  # target) pair in practice (rate limit); more than the farm's pairs would be a leak
  verdict "$([ "$6" -le "$TCP_BAND" ] && echo 1)" "$1 TCP sockets: $6 (idle tunnels, $7 of them closed by the peer) <= $TCP_BAND (the farm's proxy x target pairs)"
}
TCP_BAND=$((NPROXIES * 2))
inband master "$S_MRSS" "$B_MRSS" "$S_MFD" "$B_MFD"
inband "worker 1" "$S_W1RSS" "$B_W1RSS" "$((S_W1FD - S_W1TCP))" "$B_W1FD" "$S_W1TCP" "$S_W1CW"
inband "worker 2" "$S_W2RSS" "$B_W2RSS" "$((S_W2FD - S_W2TCP))" "$B_W2FD" "$S_W2TCP" "$S_W2CW"
mexp=$(drv .malformed_expected); mbad=$(drv .malformed_bad)
verdict "$([ "$mexp" -gt 0 ] && [ "$mbad" = 0 ] && echo 1)" "malformed frames answered bad_request and closed: $((mexp - mbad)) of $mexp (and $(drv .truncated) cut-short frames sent)"
verdict "$([ "$S_MPID" = "$DPID" ] && echo 1)" "the master (pid $DPID) ran throughout"
verdict "$([ "$S_W1PID" != - ] && [ "$S_W2PID" != - ] && echo 1)" "two workers run at the end (pids $S_W1PID $S_W2PID)"
# the warm-up added one kill and one SIGHUP
deaths=$(grep -c 'killed by signal\|exited with status' "$DIR/scatterd.log" || true)
verdict "$([ "$deaths" = "$((KILLS + 1))" ] && echo 1)" "worker deaths logged: $deaths, all ours: $KILLS SIGKILLs sent + 1 in the warm-up"
restarts=$(grep -c 'restarted (pid' "$DIR/scatterd.log" || true)
verdict "$([ "$restarts" = "$((KILLS + 1))" ] && echo 1)" "worker restarts logged: $restarts (want $KILLS + 1)"
reloads=$(grep -c 'master: config reloaded' "$DIR/scatterd.log" || true)
verdict "$([ "$reloads" = "$((HUPS + 1))" ] && echo 1)" "reloads logged: $reloads (want $HUPS + 1)"

{
  echo "command: scripts/soak.sh $MINUTES  (SCATTER_BUILD=${SCATTER_BUILD:-build-soak}, scatterd at $REV)"
  echo "CPU seconds over the whole run: scatterd $CPU_D, farm $CPU_F, clients $(drv .cpu_s)"
  grep 'killed by signal' "$DIR/scatterd.log" | sed 's/^[^ ]* [a-z]* *master: /kill: /'
  echo "noread clients: $(drv .noread_conns) connections, $(drv .noread_tasks) tasks; disconnecting clients: $(drv .disc_conns) connections, $(drv .disc_tasks) tasks; malformed frames: $(drv .malformed); connect errors (worker socket briefly gone after a kill): $(drv .connect_errors)"
} | tee -a "$CHECKS"
if [ "$FAILS" -gt 0 ]; then
  echo "soak: $FAILS check(s) FAILED (see $CHECKS, $CSV, $DIR/scatterd.log)" >&2
  exit 1
fi
echo "soak: all checks passed"
