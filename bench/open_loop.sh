#!/usr/bin/env bash
# open_loop.sh BUILD_DIR — open-loop task latency (issue 12), alone: what a full
# scripts/bench.sh measures in its §6 (ol_run), one run per configuration. The demo farm mix,
# 200 proxies, 2 targets, a 500 ms interval; tasks arrive at 220/s (half the steady ceiling)
# for 20 s into a cold daemon, hedged and all-at-once, over msgpack (bench/bench_open: the
# client library) and through the HTTP front door (bench/bench_curl proxy -r). Latency is the
# client's, from each task's scheduled start to its result. Prints one line per configuration:
# answered, ok, p50/p95/p99/max ms, violations counted by the farm's targets.
# BUILD_DIR: a Release build with master/scatterd, tests/farm/scatter-farm, bench/bench_open
# and bench/bench_curl (scripts/bench.sh leaves one in build-bench/ with --worktree).
set -u
[ $# = 1 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
B="$(cd "$1" && pwd)"; D="$(mktemp -d /tmp/scatter-openloop.XXXXXX)"; mkdir -p $D/farm
export SCATTER_FARM=$B/tests/farm/scatter-farm
cd "$(dirname "$0")/.."
source bench/daemon_ini.sh
scripts/farm.sh up --out $D/farm --proxies 200 --proxy-base-port 14800 --mix "good=30,slow=10,flaky=15,refuse=15,blackhole=10,banned=10,captcha=10" --seed 7 --target 127.0.0.77:18184 --target 127.0.0.78:18184 --interval-ms 500 --urls 600 >/dev/null
awk '{u[NR]=$0} END{for(i=0;i<4400;i++) print u[i%NR+1]}' $D/farm/urls.txt > $D/urls.txt
for mode in hedged all; do for via in msgpack front; do
  d=$D/$via-$mode; mkdir -p $d
  bench_ini "$d" "$D/farm/proxies.txt" 2 500 'http_listen = "127.0.0.97:8118"' "race_mode = $mode"
  $B/master/scatterd -c $d/scatter.ini -f > $d/s.out 2>&1 & DP=$!
  sleep 1.2
  for t in 127.0.0.77:18184 127.0.0.78:18184; do curl -s --noproxy '*' "http://$t/__farm/reset" >/dev/null; done
  if [ $via = msgpack ]; then
    timeout 70 $B/bench/bench_open -s $d/scatter.sock -u $D/urls.txt -o $d/out.jsonl -r 220 -t 40 > $d/c.out 2>&1
  else
    timeout 70 $B/bench/bench_curl proxy -x http://127.0.0.97:8118 -u $D/urls.txt -o $d/fc.jsonl -c 4096 -r 220 -t 40 -b captcha > $d/c.out 2>&1
    cat $d/fc.jsonl.* > $d/out.jsonl 2>/dev/null
  fi
  v=0; for t in 127.0.0.77:18184 127.0.0.78:18184; do x=$(curl -s --noproxy '*' "http://$t/__farm/stats" | jq .violations); v=$((v+x)); done
  kill $DP; wait $DP
  python3 - $d/out.jsonl $via $mode $v <<'PY'
import json, sys
rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok=sorted(r['elapsed_ms'] for r in rows if r.get('ok') and r.get('elapsed_ms') is not None)
q=lambda p: ok[min(len(ok)-1,int(p*len(ok)))]
print(f"{sys.argv[2]:8} {sys.argv[3]:6} answered {len(rows)} ok {len(ok)} p50 {q(.5):.2f} p95 {q(.95):.2f} p99 {q(.99):.2f} max {ok[-1]:.1f} violations {sys.argv[4]}")
PY
done; done
scripts/farm.sh down --out $D/farm >/dev/null
