#!/usr/bin/env bash
# fleet.sh [--quick] [--no-doc] BUILD_DIR — the "Fleet size" benchmark: does the cost of a
# task stay flat as the fleet grows?
#
# For each fleet size N (default 200 500 1000 2000 4000 8000 20000; --quick: 200 2000): a farm
# bed of N good proxies (5 ms) and one target that allows one request per source address
# every 500 ms, so the ceiling is 2 x N tasks/s; 20 URLs per proxy; a fresh daemon with
# 2 workers (pool_capacity 2 x N, max_inflight N / 4, at least the defaults); one
# `scatterctl fetch` of every URL. Then 20,000 proxies x 10 targets at a 2 s interval.
# A bed larger than 1,000 proxies runs as several farm processes (a process may open 20,000
# descriptors here): the first serves the targets (every tunnel ends there) and 1,000 proxies,
# the others up to 5,000 proxies each with --no-targets and their own --source-base; all
# listen on 127.0.0.3.
#
# Per size: tasks/s, efficiency against the ceiling, daemon CPU s per 1,000 tasks (master and
# workers, utime + stime), selection us per call (the workers' own select_ns / selects),
# the stall counters, violations counted by the target, task latency p50/p99, and how busy
# the whole machine was (both cores, every process). Results: bench/fleet.json, and the
# "Fleet size" section of docs/BENCHMARKS.md between the fleet.sh markers (unless --no-doc).
# BUILD_DIR: a Release build (master/scatterd, ctl/scatterctl, tests/farm/scatter-farm).
# Environment: FLEET_SIZES overrides the sizes; FLEET_TMP the work directory; FLEET_INI more
# [scatter] lines for the daemon, FLEET_FIRST the first farm process's proxies (default 1000),
# FLEET_SCATTERD another scatterd binary (experiments: before/after comparisons).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
source bench/daemon_ini.sh
QUICK=0; DOC=1; B=""
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --no-doc) DOC=0 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fleet.sh: unknown option $a" >&2; exit 2 ;;
    *) B="$a" ;;
  esac
done
[ -n "$B" ] || { echo "fleet.sh: give the Release build directory (see --help)" >&2; exit 2; }
B="$(cd "$B" && pwd)"
SCATTERD="${FLEET_SCATTERD:-$B/master/scatterd}"; CTL="$B/ctl/scatterctl"; FARMBIN="$B/tests/farm/scatter-farm"
for f in "$SCATTERD" "$CTL" "$FARMBIN"; do [ -x "$f" ] || { echo "fleet.sh: $f missing" >&2; exit 2; }; done
if [ "$QUICK" = 1 ]; then SIZES="${FLEET_SIZES:-200 2000}"; else SIZES="${FLEET_SIZES:-200 500 1000 2000 4000 8000 20000}"; fi
W="${FLEET_TMP:-$(mktemp -d /tmp/scatter-fleet.XXXXXX)}"; mkdir -p "$W"
T0=$(date +%s)
log() { printf '[fleet %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
CHUNK=5000; FIRST=${FLEET_FIRST:-1000}; PIP=127.0.0.3; PBASE=11000; TIP=127.0.0.40; TPORT=18080
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
cleanup() {
  local p; set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_pid() {
  local p="$1" q keep=()
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done; PIDS=("${keep[@]}")
}
now_s() { date +%s.%N; }
stat_cpu() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }
daemon_ticks() {
  local s=0 p x
  for p in "$1" $(ps -o pid= --ppid "$1" | tr -d ' '); do
    x=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0); s=$((s + x))
  done; echo "$s"
}

# bed_up DIR N HOSTS INTERVAL_MS URLS — farm processes of at most CHUNK proxies each
FARM_PIDS=()
bed_up() {
  local d="$1" n="$2" hosts="$3" iv="$4" urls="$5" j=0 start=0 cnt pid fd
  local targets=() h
  for h in $(seq 0 $((hosts - 1))); do targets+=(--target "127.0.0.$((40 + h)):$TPORT"); done
  FARM_PIDS=(); : >"$d/proxies.txt"
  while [ "$start" -lt "$n" ]; do
    # the first process also takes every connection to the targets: it gets fewer proxies
    local room=$(( j == 0 ? FIRST : CHUNK ))
    cnt=$(( n - start < room ? n - start : room ))
    fd="$d/farm$j"; mkdir -p "$fd"
    if [ "$j" = 0 ]; then
      "$FARMBIN" --quiet --proxies "$cnt" --mix good=100 --good-latency-ms 5 --proxy-ip "$PIP" \
        --proxy-base-port "$((PBASE + start))" "${targets[@]}" --interval-ms "$iv" --urls "$urls" \
        --out "$fd" >"$fd/stdout" 2>"$fd/stderr" </dev/null &
    else
      "$FARMBIN" --quiet --proxies "$cnt" --mix good=100 --good-latency-ms 5 --proxy-ip "$PIP" \
        --proxy-base-port "$((PBASE + start))" --source-base "$start" --no-targets \
        --out "$fd" >"$fd/stdout" 2>"$fd/stderr" </dev/null &
    fi
    pid=$!; PIDS+=("$pid"); FARM_PIDS+=("$pid")
    for _ in $(seq 1 200); do [ -f "$fd/pid" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    [ -f "$fd/pid" ] || { cat "$fd/stderr" >&2; echo "fleet.sh: farm $j did not start" >&2; exit 1; }
    cat "$fd/proxies.txt" >>"$d/proxies.txt"
    start=$((start + cnt)); j=$((j + 1))
  done
}
bed_down() { local p; for p in "${FARM_PIDS[@]}"; do stop_pid "$p"; done; FARM_PIDS=(); }
violations() {
  local v=0 t x
  while read -r t; do x=$(curl -s --noproxy '*' -m 5 "http://$t/__farm/stats" | jq '.violations'); v=$((v + x)); done <"$1/farm0/targets.txt"
  echo "$v"
}

# run LABEL N HOSTS INTERVAL_MS URLS_PER_PROXY — one row of $W/fleet.jsonl
run() {
  local label="$1" n="$2" hosts="$3" iv="$4" per="$5"
  local d="$W/$label"; rm -rf "$d"; mkdir -p "$d"
  bed_up "$d" "$n" "$hosts" "$iv" $((n * per))
  local pool=$((2 * n < 1000 ? 1000 : 2 * n)) infl=$((n / 4 < 512 ? 512 : n / 4))
  local maxp=$((n < 20000 ? 20000 : n))
  bench_ini "$d" "$d/proxies.txt" 2 "$iv" "max_proxies = $maxp" "pool_capacity = $pool" \
    "max_inflight = $infl" "${FLEET_INI:-}"
  local launched; launched=$(now_s)
  "$SCATTERD" -c "$d/scatter.ini" -f >"$d/scatterd.out" 2>&1 </dev/null &
  local dpid=$!; PIDS+=("$dpid")
  local ready=0
  for _ in $(seq 1 300); do
    if [ "$("$CTL" -s "$d/scatter.sock" status --json 2>/dev/null | jq '.proxies.total // 0' 2>/dev/null || echo 0)" -ge "$n" ]; then ready=1; break; fi
    kill -0 "$dpid" 2>/dev/null || break; sleep 0.1
  done
  [ "$ready" = 1 ] || { cat "$d/scatterd.out" >&2; echo "fleet.sh: scatterd not ready with $n proxies" >&2; exit 1; }
  # past the start gate (one interval after the start, docs/RACING.md)
  sleep "$(awk -v l="$launched" -v n="$(now_s)" -v iv="$iv" 'BEGIN{r=l+(iv+100)/1000-n; print (r>0?r:0)}')"
  local total; total=$(grep -c . "$d/farm0/urls.txt")
  local c0 c1 m0 m1 t0 t1
  c0=$(daemon_ticks "$dpid"); m0=$(stat_cpu); t0=$(now_s)
  timeout 600 "$CTL" -s "$d/scatter.sock" fetch -q -i "$d/farm0/urls.txt" --jsonl "$d/out.jsonl" >"$d/fetch.out" 2>&1 || true
  t1=$(now_s); c1=$(daemon_ticks "$dpid"); m1=$(stat_cpu)
  "$CTL" -s "$d/scatter.sock" status --json >"$d/status.json"
  local viol; viol=$(violations "$d")
  stop_pid "$dpid"; bed_down
  python3 - "$label" "$n" "$hosts" "$iv" "$total" "$t0" "$t1" "$c0" "$c1" "$m0" "$m1" "$viol" \
    "$d/out.jsonl" "$d/status.json" "$(getconf CLK_TCK)" "$pool" "$infl" >>"$W/fleet.jsonl" <<'PY'
import json, sys
(label, n, hosts, iv, total, t0, t1, c0, c1, m0, m1, viol, outp, stp, hz, pool, infl) = sys.argv[1:]
n, hosts, iv, total, hz = int(n), int(hosts), int(iv), int(total), int(hz)
wall = float(t1) - float(t0)
lat, ok = [], 0
for line in open(outp):
    r = json.loads(line)
    lat.append(r.get("elapsed_ms", 0))
    ok += bool(r.get("ok"))
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None
b0, a0 = map(int, m0.split()); b1, a1 = map(int, m1.split())
st = json.load(open(stp))["stalls"]
ceiling = n * hosts * 1000.0 / iv
tps = ok / wall if wall > 0 else 0.0
print(json.dumps({
    "run": label, "proxies": n, "hosts": hosts, "interval_ms": iv, "tasks": total,
    "answered": len(lat), "ok": ok, "wall_s": round(wall, 2), "tasks_per_s": round(tps, 1),
    "ceiling_per_s": ceiling, "efficiency": round(tps / ceiling, 3),
    "cpu_s_per_1000": round((int(c1) - int(c0)) / hz / max(ok, 1) * 1000, 4),
    "select_us": round(st.get("select_ns", 0) / 1000.0 / max(st.get("selects", 0), 1), 3), "selects": st.get("selects", 0),
    "dispatches": st["dispatches"], "skip_ratelimit": st["skip_ratelimit"],
    "skip_cooldown": st["skip_cooldown"], "attempts": st["attempts"],
    "attempts_failed": st["attempts_failed"], "violations": int(viol),
    "p50_ms": q(0.5), "p99_ms": q(0.99), "machine_busy": round((b1 - b0) / max(a1 - a0, 1), 3),
    "pool_capacity": int(pool), "max_inflight": int(infl)}))
PY
  log "$(tail -n1 "$W/fleet.jsonl" | jq -c '{run, tasks_per_s, efficiency, cpu_s_per_1000, select_us, violations, p99_ms, machine_busy}')"
}

: >"$W/fleet.jsonl"
for n in $SIZES; do run "n$n" "$n" 1 500 20; done
if [ "$QUICK" = 0 ]; then run "n20000x10" 20000 10 2000 1; fi
mkdir -p bench
jq -s --arg c "$(git rev-parse --short HEAD)" --arg cmd "bench/fleet.sh${*:+ $*}" \
  '{commit: $c, command: $cmd, rows: .}' "$W/fleet.jsonl" >bench/fleet.json
log "bench/fleet.json written ($(jq '.rows | length' bench/fleet.json) rows) in $(( $(date +%s) - T0 )) s"
[ "$DOC" = 1 ] || exit 0

python3 - bench/fleet.json docs/BENCHMARKS.md "$(nproc)" <<'PY'
import json, sys
res, doc, cores = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(res))
rows = r["rows"]
base = next((x for x in rows if x["hosts"] == 1), rows[0])
L = ["## Fleet size: cost per task from 200 to 20,000 proxies", "",
     f"Command: `{r['command']}` on commit {r['commit']} (Release, 2 workers, {cores} cores). "
     "Each size: a bed of N good farm proxies (5 ms) and one target allowing one request per "
     "source address every 500 ms, so the ceiling is 2 x N tasks/s; 20 URLs per proxy; a fresh "
     "daemon with pool_capacity 2 x N and max_inflight N / 4 (at least the defaults). Beds over "
     "1,000 proxies run as several farm processes (20,000 descriptors per process here). "
     "`select us` is the workers' own time per selection call; `busy` is the share of both cores "
     "used by every process (daemon, farm, client): near 1.0 the machine, not scatter, is the limit.", "",
     "| proxies x hosts | ceiling t/s | tasks/s | efficiency | busy | CPU s / 1,000 tasks | x 200-proxy | select us | dispatches | claims missed (rate limit / cooldown) | violations | p50 / p99 ms |",
     "|---|---|---|---|---|---|---|---|---|---|---|---|"]
for x in rows:
    rel = x["cpu_s_per_1000"] / base["cpu_s_per_1000"] if base["cpu_s_per_1000"] else 0
    L.append(f"| {x['proxies']:,} x {x['hosts']} | {x['ceiling_per_s']:,.0f} | {x['tasks_per_s']:,.0f} | "
             f"{x['efficiency']:.2f} | {x['machine_busy']:.2f} | {x['cpu_s_per_1000']:.3f} | {rel:.2f} | "
             f"{x['select_us']:.2f} | {x['dispatches']:,} | {x['skip_ratelimit']:,} / {x['skip_cooldown']:,} | "
             f"{x['violations']} | {x['p50_ms']} / {x['p99_ms']} |")
L.append("")
L.append(f"{sum(x['ok'] for x in rows):,} of {sum(x['tasks'] for x in rows):,} tasks ok over all rows "
         f"({sum(x['answered'] for x in rows):,} answered).")
sec = "\n".join(L) + "\n"
B, E = "<!-- fleet.sh: begin -->", "<!-- fleet.sh: end -->"
text = open(doc).read()
if B in text and E in text:
    text = text[:text.index(B) + len(B)] + "\n" + sec + text[text.index(E):]
else:
    text = text.rstrip("\n") + "\n\n" + B + "\n" + sec + E + "\n"
open(doc, "w").write(text)
PY
log "docs/BENCHMARKS.md: Fleet size section written"
