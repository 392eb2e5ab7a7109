#!/usr/bin/env bash
# redis_bench.sh [--quick] [--bin DIR] [--runs N] — issue 15: what the Redis task stream
# costs. On one farm (P good proxies, two rate-limited targets) the same N tasks run through:
#   (a) one instance with every proxy, tasks over its Unix socket (`scatterctl fetch`);
#   (b) the same instance, tasks through the stream (`scatterctl fetch --redis`);
#   (c) two instances (shard = 0/2 and 1/2) with half the proxies each, one stream.
# The instances have 2 workers in (a) and (b) and 1 each in (c): the same worker processes in
# all. Reported: tasks/s, efficiency against the farm's ceiling (each (proxy, target) pair may
# carry one request per interval: N ÷ (waves - 1) × interval for a batch), completed tasks,
# violations at the targets, and CPU seconds per 1,000 tasks of the daemons (master and
# workers, from /proc/PID/stat) and of redis-server. On a 2-core machine the point is what the
# stream adds per task, not a speed-up from the second instance.
# Writes the section between the redis_bench.sh markers of docs/BENCHMARKS.md and the "redis"
# key of bench/results.json. Loopback only, on the addresses of integration-test slot 43
# (127.2.43.x, proxies from port 20750); every process it starts is stopped by pid.
#
#   --quick    1 run, 3,000 tasks per configuration (~1 min with a build tree)
#   --runs N   runs per configuration (default 3; --quick: 1), interleaved a, b, c
#   --bin DIR  a Release build tree with master/scatterd, ctl/scatterctl and
#              tests/farm/scatter-farm (default: build the working tree into build-bench/)
#   --commit C, --cmd TEXT   what the report names as the commit and the command (scripts/bench.sh
#              passes its own; default: git HEAD, "+ working tree" if dirty, and this command)
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
source "$top/bench/section_args.sh"
source "$top/bench/daemon_ini.sh"
section_args redis_bench.sh "$@"
log() { printf '[redis %3ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
command -v redis-server >/dev/null || { echo "redis-server missing: bash scripts/deps.sh" >&2; exit 1; }
W="$(mktemp -d /tmp/scatter-redis-bench.XXXXXX)"
P=200 IV=500 NT=2
if [ "$QUICK" = 1 ]; then N=3000; else N=6000; fi
NET=127.2.43 PBASE=20750 T1=127.2.43.10:18080 T2=127.2.43.11:18080
REDIS_IP=$NET.4 REDIS_PORT=6379

section_bin
[ -n "$COMMIT" ] || COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + working tree')"

PIDS=() FARM="" RPID=""
cleanup() {
  set +e
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -z "$RPID" ] || { kill -TERM "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; }
  [ -z "$FARM" ] || scripts/farm.sh down --out "$FARM" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FARM="$W/farm"
scripts/farm.sh up --out "$FARM" --proxy-ip "$NET.1" --proxy-base-port "$PBASE" --target "$T1" --target "$T2" \
  --proxies "$P" --mix good=100 --interval-ms "$IV" --urls "$N" >/dev/null
redis-server --bind "$REDIS_IP" --port "$REDIS_PORT" --dir "$W" --save '' --appendonly no --daemonize no \
  --logfile "$W/redis.log" &
RPID=$!
for i in $(seq 1 100); do [ "$(redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done

# cpu_ticks PID... — utime + stime of the processes, in clock ticks
cpu_ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$s"; }

# start K SHARD WORKERS — an instance in $W/r<run>/i<K>; sets IPIDS
inst_start() {
  local k="$1" shard="$2" workers="$3" d="$RD/i$1" i
  mkdir -p "$d"
  bench_ini "$d" "$FARM/proxies.txt" "$workers" "$IV" "shard = $shard" \
    "redis_url = \"redis://$REDIS_IP:$REDIS_PORT\"" 'redis_stream = "bench:tasks"' "max_idle_connections = 4096"
  "$SCATTERD" -c "$d/scatter.ini" -f >"$d/out" 2>&1 </dev/null &
  PIDS+=($!)
  IPIDS+=($!)
  for i in $(seq 1 100); do
    [ -S "$d/scatter.sock" ] && "$CTL" -s "$d/scatter.sock" status --json >/dev/null 2>&1 && break
    sleep 0.1
  done
}

farm_reset() { local t; for t in "$T1" "$T2"; do curl -s --noproxy '*' "http://$t/__farm/reset" >/dev/null; done; }
farm_viol() { local t s=0; for t in "$T1" "$T2"; do s=$((s + $(curl -s --noproxy '*' "http://$t/__farm/stats" | jq .violations))); done; echo "$s"; }

HZ=$(getconf CLK_TCK)
: >"$W/rows.jsonl"
for run in $(seq 1 "$RUNS"); do
  for cfg in socket stream two; do
    RD="$W/r$run-$cfg"
    IPIDS=()
    farm_reset
    redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" DEL bench:tasks >/dev/null
    case "$cfg" in
      socket|stream) inst_start 0 0/1 2 ;;
      two) inst_start 0 0/2 1; inst_start 1 1/2 1 ;;
    esac
    sleep 0.8 # past the start gate (one interval)
    procs=()
    for p in "${IPIDS[@]}"; do procs+=("$p" $(pgrep -P "$p")); done
    c0=$(cpu_ticks "${procs[@]}") r0=$(cpu_ticks "$RPID")
    t0=$(date +%s.%N)
    if [ "$cfg" = socket ]; then
      "$CTL" -s "$RD/i0/scatter.sock" fetch -q -i "$FARM/urls.txt" --jsonl "$RD/out.jsonl" || true
    else
      "$CTL" fetch -q --redis "redis://$REDIS_IP:$REDIS_PORT" --stream bench:tasks -i "$FARM/urls.txt" \
        --jsonl "$RD/out.jsonl" || true
    fi
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "${procs[@]}") r1=$(cpu_ticks "$RPID")
    ok=$(jq -r 'select(.ok) | .n' "$RD/out.jsonl" | wc -l)
    viol=$(farm_viol)
    for p in "${IPIDS[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
    python3 -c 'import json,sys; a=sys.argv; print(json.dumps({"run": int(a[1]), "config": a[2], "secs": float(a[4]) - float(a[3]),
      "ok": int(a[5]), "violations": int(a[6]), "cpu_daemon_s": int(a[7]) / int(a[9]), "cpu_redis_s": int(a[8]) / int(a[9])}))' \
      "$run" "$cfg" "$t0" "$t1" "$ok" "$viol" $((c1 - c0)) $((r1 - r0)) "$HZ" >>"$W/rows.jsonl"
    log "run $run $cfg: $(tail -n 1 "$W/rows.jsonl")"
  done
done

log "writing docs/BENCHMARKS.md (redis_bench.sh section) and bench/results.json (key redis)"
python3 - "$W/rows.jsonl" "$CMDLINE" "$COMMIT" "$P" "$IV" "$NT" "$N" "$RUNS" <<'PY'
import datetime, json, math, statistics, sys
rows_path, cmd, commit, P, IV, NT, N, RUNS = sys.argv[1:]
P, IV, NT, N, RUNS = int(P), int(IV), int(NT), int(N), int(RUNS)
rows = [json.loads(l) for l in open(rows_path) if l.strip()]
steady = NT * P * 1000.0 / IV
waves = math.ceil(N / (NT * P))
batch = N / ((waves - 1) * IV / 1000.0)
for r in rows:
    r["tasks_per_s"] = r["ok"] / r["secs"] if r["secs"] > 0 else 0
    r["efficiency"] = r["tasks_per_s"] / batch
    r["cpu_daemon_per_1000"] = 1000 * r["cpu_daemon_s"] / r["ok"] if r["ok"] else None
    r["cpu_redis_per_1000"] = 1000 * r["cpu_redis_s"] / r["ok"] if r["ok"] else None
def cell(cfg, k, fmt):
    v = [r[k] for r in rows if r["config"] == cfg and r.get(k) is not None]
    if not v:
        return "—"
    m = fmt.format(statistics.median(v))
    return m if len(v) == 1 else f"{m} ({fmt.format(min(v))}–{fmt.format(max(v))})"
now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
L = ["<!-- redis_bench.sh:begin (generated by bench/redis_bench.sh; edit the script, not this part) -->",
     "## Several instances on one Redis stream (issue 15)\n",
     f"Generated by `{cmd}` on {now}, commit {commit}; {RUNS} run(s) per row, interleaved; a range is "
     f"min–max over the runs. Farm: {P} good proxies, {NT} targets, interval {IV} ms at the farm and the "
     f"daemons; {N} tasks per run from a fresh daemon past its start gate. Ceiling: each (proxy, target) "
     f"pair carries one request per {IV} ms, so {NT} × {P} ÷ {IV / 1000:g} s = **{steady:.0f} tasks/s** steady, "
     f"and for the batch {N} ÷ ({waves - 1} × {IV / 1000:g} s) = **{batch:.0f} tasks/s**. CPU: user + system "
     "seconds of the daemons' master and workers, and of redis-server, over the fetch, per 1,000 completed "
     "tasks. The client (`scatterctl fetch`) is not counted. One instance: 2 workers; two instances: "
     "1 worker each (shard = 0/2 and 1/2), so every row runs two worker processes.\n",
     "| Configuration | Completed | tasks/s | Efficiency | Violations | Daemon CPU s / 1,000 | redis-server CPU s / 1,000 |",
     "|---|---|---|---|---|---|---|"]
lab = {"socket": "one instance, all proxies, Unix socket", "stream": "one instance, all proxies, Redis stream",
       "two": "two instances, half the proxies each, one stream"}
for cfg in ("socket", "stream", "two"):
    L.append(f"| {lab[cfg]} | {cell(cfg, 'ok', '{:.0f}')} / {N} | {cell(cfg, 'tasks_per_s', '{:.0f}')} | "
             f"{cell(cfg, 'efficiency', '{:.3f}')} | {cell(cfg, 'violations', '{:.0f}')} | "
             f"{cell(cfg, 'cpu_daemon_per_1000', '{:.3f}')} | "
             f"{cell(cfg, 'cpu_redis_per_1000', '{:.3f}') if cfg != 'socket' else '—'} |")
L.append("\nOn a 2-core machine shared by the farm, the client, Redis and the daemons, a second "
         "instance cannot add speed: what the rows show is what the stream costs per task (the stream "
         "row against the socket row) and that splitting the proxies over two instances keeps the "
         "efficiency and 0 violations. docs/SCALING.md has the arithmetic for many boxes." +
         (" With one run per row, differences of 10-15 % between rows are within what this busy machine "
          "shows from run to run; run without --quick for ranges." if RUNS == 1 else "") + "\n")
L.append("<!-- redis_bench.sh:end -->")
section = "\n".join(L) + "\n"
sys.path.insert(0, "bench")
from benchlib import put_result, put_section
put_section("docs/BENCHMARKS.md", "redis_bench.sh", section)
put_result("bench/results.json", "redis",
           {"command": cmd, "date": now, "commit": commit, "proxies": P, "targets": NT, "interval_ms": IV,
            "tasks": N, "ceiling_steady": steady, "ceiling_batch": round(batch, 1), "rows": rows})
PY
log "done in $(( $(date +%s) - T0 )) s"
