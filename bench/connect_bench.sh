#!/usr/bin/env bash
# connect_bench.sh [--quick] [--bin DIR] [--runs N] — issue 12: CONNECT tunnels through the
# front door against direct SOCKS5 connects through the same farm proxies.
#
#   (a) added latency at low load: one tunnel at a time (bench_connect -c 1) on a fast farm
#       (all good proxies, no connect delay, no rate limit, daemon interval 0): setup time
#       (to the end of the `200` head, or of the SOCKS success reply) and setup + one HTTP
#       round trip to the target through the tunnel, p50/p95/p99, front door minus direct;
#   (b) tunnels per second at a known ceiling: P proxies, one target with an interval I
#       (the farm counts violations, the daemon paces, the direct client paces itself the
#       same way), so at most P / I tunnels per second; efficiency = tunnels/s ÷ ceiling.
# Writes the section between the connect_bench.sh markers of docs/BENCHMARKS.md and the
# "connect" key of bench/results.json (the rest of both files is kept), so it runs alone or
# from scripts/bench.sh (which calls it after its own report). Loopback only, on the
# addresses of integration-test slot 37 (127.2.37.x, ports 19250-19499); every process it
# starts is stopped by pid.
#
#   --quick    1 run, 200 latency tunnels and 600 throughput tunnels per path (~15 s)
#   --runs N   runs per configuration (default 3; --quick: 1), interleaved front / direct
#   --bin DIR  a Release build tree with master/scatterd, ctl/scatterctl and
#              tests/farm/scatter-farm (default: build the working tree into build-bench/)
#   --commit C, --cmd TEXT   what the report names as the commit and the command (scripts/bench.sh
#              passes its own; default: git HEAD, "+ working tree" if dirty, and this command)
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
source "$top/bench/section_args.sh"
source "$top/bench/daemon_ini.sh"
section_args connect_bench.sh "$@"
log() { printf '[connect %3ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
W="$(mktemp -d /tmp/scatter-connect.XXXXXX)"

# the parameters of both parts
P=100 IV=500 CONC=100
if [ "$QUICK" = 1 ]; then NLAT=200 NTHR=600; else NLAT=1000 NTHR=2000; fi
PROXY_IP=127.2.37.1 PBASE=19250 TARGET=127.2.37.10:18080 FRONT=127.2.37.2:8118

section_bin
BCN="$W/bench_connect"
cc -O2 -std=c11 -Wall -o "$BCN" bench/bench_connect.c
[ -n "$COMMIT" ] || COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + working tree')"

DPID="" FARM=""
cleanup() {
  set +e
  [ -z "$DPID" ] || { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; }
  [ -z "$FARM" ] || scripts/farm.sh down --out "$FARM" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

daemon_start() {   # daemon_start DIR INTERVAL_MS
  local d="$1" iv="$2" i n launched
  mkdir -p "$d"
  launched=$(date +%s.%N)
  bench_ini "$d" "$FARM/proxies.txt" 2 "$iv" "http_listen = \"$FRONT\"" "connect_ports = \"${TARGET##*:}\""
  "$SCATTERD" -c "$d/scatter.ini" -f >>"$d/scatterd.out" 2>&1 </dev/null &
  DPID=$!
  for i in $(seq 1 100); do
    n=$("$CTL" -s "$d/scatter.sock" status --json 2>/dev/null | jq '.proxies.total' 2>/dev/null || echo 0)
    if [ "${n:-0}" -gt 0 ]; then
      # past the start gate (interval + margin after start: a restart rule, not measured here)
      sleep "$(awk -v l="$launched" -v n="$(date +%s.%N)" -v iv="$iv" 'BEGIN{r=l+(iv+60)/1000-n; print (r>0?r:0)}')"
      return 0
    fi
    kill -0 "$DPID" 2>/dev/null || { cat "$d/scatterd.out" >&2; echo "connect_bench.sh: scatterd died at start" >&2; exit 1; }
    sleep 0.1
  done
  echo "connect_bench.sh: scatterd not ready after 10 s" >&2; exit 1
}
daemon_stop() {
  kill -TERM "$DPID" 2>/dev/null || true
  wait "$DPID" 2>/dev/null || true
  DPID=""
}
farm_get() { curl -s --noproxy '*' -m 2 "http://$TARGET/__farm/$1"; }

# one_run PART PATH RUN N CONC INTERVAL -- a row of $W/rows.jsonl
one_run() {
  local part="$1" path="$2" r="$3" n="$4" c="$5" iv="$6" d="$W/$1-$2-$3" st viol
  mkdir -p "$d"
  farm_get "set?interval_ms=$iv" >/dev/null
  if [ "$path" = front ]; then
    daemon_start "$d" "$iv"
    farm_get reset >/dev/null
    st=$(timeout 120 "$BCN" front -x "$FRONT" -T "$TARGET" -n "$n" -c "$c" -t 90 -o "$d/out.jsonl")
    daemon_stop
  else
    farm_get reset >/dev/null
    st=$(timeout 120 "$BCN" socks -p "$FARM/proxies.txt" -T "$TARGET" -n "$n" -c "$c" -i "$iv" -t 90 -o "$d/out.jsonl")
  fi
  viol=$(farm_get stats | jq '.violations')
  jq -c --arg p "$part" --arg s "$path" --argjson r "$r" --argjson c "$c" --argjson iv "$iv" --argjson v "$viol" \
    '. + {part: $p, path: $s, run: $r, concurrency: $c, interval_ms: $iv, violations: $v}' <<<"$st" >>"$W/rows.jsonl"
  log "$part $path run $r: $(jq -c '{ok, tunnels_per_s, setup_p50_ms, setup_p99_ms, total_p50_ms}' <<<"$st") violations $viol"
}

log "farm: $P good proxies on $PROXY_IP:$PBASE+, target $TARGET, no connect delay; $RUNS run(s)"
FARM="$W/farm"
scripts/farm.sh up --out "$FARM" --proxies "$P" --mix good=100 --seed 37 --proxy-ip "$PROXY_IP" \
  --proxy-base-port "$PBASE" --target "$TARGET" --good-latency-ms 0 --interval-ms 0 --urls 10 >/dev/null
: >"$W/rows.jsonl"
for r in $(seq 1 "$RUNS"); do
  one_run latency front "$r" "$NLAT" 1 0
  one_run latency direct "$r" "$NLAT" 1 0
  one_run rate front "$r" "$NTHR" "$CONC" "$IV"
  one_run rate direct "$r" "$NTHR" "$CONC" "$IV"
done

log "writing docs/BENCHMARKS.md (connect_bench.sh section) and bench/results.json (key connect)"
python3 - "$W/rows.jsonl" "$CMDLINE" "$COMMIT" "$P" "$IV" "$CONC" "$NLAT" "$NTHR" "$RUNS" <<'PY'
import datetime, json, math, statistics, sys
rows_path, cmd, commit, P, IV, C, NLAT, NTHR, RUNS = sys.argv[1:]
P, IV, C, NLAT, NTHR, RUNS = int(P), int(IV), int(C), int(NLAT), int(NTHR), int(RUNS)
rows = [json.loads(l) for l in open(rows_path) if l.strip()]
steady = P * 1000.0 / IV
waves = math.ceil(NTHR / P)
# the first wave of P tunnels costs no wait, then one wave per interval
batch = NTHR / ((waves - 1) * IV / 1000.0) if waves > 1 else float("inf")
def G(part, path):
    return [r for r in rows if r["part"] == part and r["path"] == path]
def med(part, path, k):
    v = [r[k] for r in G(part, path) if r.get(k) is not None and r[k] >= 0]
    return statistics.median(v) if v else None
def rng(part, path, k, fmt="{:.2f}"):
    v = [r[k] for r in G(part, path) if r.get(k) is not None and r[k] >= 0]
    if not v:
        return "—"
    m = fmt.format(statistics.median(v))
    return m if len(v) == 1 else f"{m} ({fmt.format(min(v))}–{fmt.format(max(v))})"
def per_run(part, k, f):
    a = {r["run"]: r.get(k) for r in G(part, "front")}
    b = {r["run"]: r.get(k) for r in G(part, "direct")}
    v = [f(a[x], b[x]) for x in a if x in b and a[x] is not None and b[x] is not None and a[x] >= 0 and b[x] > 0]
    return statistics.median(v) if v else None
for r in rows:
    if r["part"] == "rate":
        r["ceiling_steady"] = steady
        r["ceiling_batch"] = round(batch, 1)
        r["efficiency"] = round(r["tunnels_per_s"] / batch, 4)
now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
L = ["<!-- connect_bench.sh:begin (generated by bench/connect_bench.sh; edit the script, not this part) -->",
     "## CONNECT tunnels (issue 12)\n",
     f"Generated by `{cmd}` on {now}, commit {commit}; {RUNS} run(s) per row, interleaved "
     "(front door, then direct); a range is min–max over the runs. Farm: "
     f"{P} good proxies (`--mix good=100 --good-latency-ms 0`: no connect delay) and one HTTP "
     "target. **Front door**: `bench/bench_connect front` opens a TCP connection to scatter's "
     "`http_listen` (a fresh daemon per run, 2 workers, `connect_ports` = the target's port, "
     "defaults otherwise: race width 3) and sends `CONNECT IP:PORT HTTP/1.1`; "
     "**direct**: `bench/bench_connect socks` opens a TCP connection to one farm proxy "
     "(round robin, one tunnel per proxy at a time) and does the SOCKS5 greeting and CONNECT. "
     "*Setup* runs to the end of the `200 Connection established` head or of the SOCKS success "
     "reply; *setup + request* adds one `GET /item/N` (Connection: close) through the tunnel, "
     "read to the end of its body. Completed tunnels only.\n",
     "### Added latency at low load\n",
     f"One tunnel at a time (`-c 1`), {NLAT} tunnels per run, no rate limit (farm and daemon "
     "interval 0).\n",
     "| Path | Completed | Tunnels/s | Setup p50 ms | p95 | p99 | Setup + request p50 ms | p95 | p99 |",
     "|---|---|---|---|---|---|---|---|---|"]
for path, lab in (("front", "front door (`CONNECT`)"), ("direct", "direct SOCKS5")):
    L.append(f"| {lab} | {rng('latency', path, 'ok', '{:.0f}')} / {NLAT} | {rng('latency', path, 'tunnels_per_s', '{:.0f}')} | "
             + " | ".join(rng('latency', path, k) for k in ("setup_p50_ms", "setup_p95_ms", "setup_p99_ms",
                                                               "total_p50_ms", "total_p95_ms", "total_p99_ms")) + " |")
add = {k: per_run("latency", k, lambda a, b: a - b) for k in
       ("setup_p50_ms", "setup_p95_ms", "setup_p99_ms", "total_p50_ms", "total_p99_ms")}
rat = {k: per_run("latency", k, lambda a, b: a / b) for k in ("setup_p50_ms", "total_p50_ms")}
if None not in add.values() and None not in rat.values():
    L.append(f"\nThe front door adds **{add['setup_p50_ms']:+.2f} ms** at p50 of the setup "
             f"({rat['setup_p50_ms']:.1f}× the direct connect), {add['setup_p95_ms']:+.2f} ms at p95, "
             f"{add['setup_p99_ms']:+.2f} ms at p99; with the request through the tunnel "
             f"{add['total_p50_ms']:+.2f} ms at p50 ({rat['total_p50_ms']:.2f}×) and {add['total_p99_ms']:+.2f} ms "
             "at p99 (per run, median). The extra work per tunnel: a second TCP connection (client to "
             "front door), parsing the `CONNECT`, claiming the (proxy, host) slots, K SOCKS connects "
             "raced through libcurl (`CONNECT_ONLY`) and the relay's extra hop on every byte.\n")
L += ["### Tunnels per second at a known ceiling\n",
      f"{NTHR} tunnels per run, up to {C} open at once, farm and daemon interval {IV} ms: each "
      f"(proxy, target) pair may carry one tunnel per {IV} ms, so the steady ceiling is "
      f"{P} ÷ {IV / 1000:g} s = **{steady:.0f} tunnels/s**, and the batch ceiling (the first "
      f"{P} tunnels cost no wait, then one wave per interval) {NTHR} ÷ ({waves - 1} × {IV / 1000:g} s) "
      f"= **{batch:.0f} tunnels/s**. The direct client paces itself like the daemon (a proxy "
      f"is used again {IV} ms after its previous tunnel ended); the front door is told nothing. "
      "Efficiency = tunnels/s ÷ the batch ceiling; setup latency here includes the wait for a slot "
      "(front door: inside the daemon; direct: none, the client only starts a tunnel when a proxy "
      "is free), so it is not a latency comparison.\n",
      "| Path | Completed | Tunnels/s | Efficiency | Setup p50 ms | p99 | Violations at the target |",
      "|---|---|---|---|---|---|---|"]
for path, lab in (("front", "front door (`CONNECT`)"), ("direct", "direct SOCKS5, self-paced")):
    L.append(f"| {lab} | {rng('rate', path, 'ok', '{:.0f}')} / {NTHR} | {rng('rate', path, 'tunnels_per_s', '{:.0f}')} | "
             f"{rng('rate', path, 'efficiency', '{:.3f}')} | {rng('rate', path, 'setup_p50_ms', '{:.0f}')} | "
             f"{rng('rate', path, 'setup_p99_ms', '{:.0f}')} | {rng('rate', path, 'violations', '{:.0f}')} |")
rr = per_run("rate", "tunnels_per_s", lambda a, b: a / b)
if rr is not None:
    L.append(f"\nFront door ÷ direct (tunnels/s, per run, median): **{rr:.2f}**.\n")
L.append("<!-- connect_bench.sh:end -->")
section = "\n".join(L) + "\n"

sys.path.insert(0, "bench")
from benchlib import put_result, put_section
put_section("docs/BENCHMARKS.md", "connect_bench.sh", section)
put_result("bench/results.json", "connect",
           {"command": cmd, "date": now, "commit": commit, "proxies": P, "interval_ms": IV,
            "concurrency": C, "latency_tunnels": NLAT, "rate_tunnels": NTHR, "ceiling_steady": steady,
            "ceiling_batch": round(batch, 1), "rows": rows})
PY
log "done in $(( $(date +%s) - T0 )) s"
