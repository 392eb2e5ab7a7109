#!/usr/bin/env bash
# it_memory_bounds — a worker's memory is bounded by worker_buffer_budget, not by
# pool x max_response_body or clients x max_frame:
#  (a) 300 tasks with ~1 MB responses from a client that does not read for 6 s: the worker's
#      RSS grows by less than budget + 16 MB (it grew ~800 MB before), and every task is
#      answered once the client reads;
#  (b) 200 connections each holding an unfinished 4 MiB message: growth is refused past the
#      budget (bad_request naming worker_buffer_budget) and the rest are closed after
#      client_timeout; other clients are served meanwhile.
source "$(dirname "$0")/lib.sh"
it_init 14
MP="$SCATTER_TOP/tests/integration"

farm_up --proxies 300 --mix "good=100" --seed 14 --interval-ms 300 --urls 300
write_ini "$FARM_DIR/proxies.txt" 300 "worker_buffer_budget = 32M" "max_response_body = 2M" "client_timeout = 3" \
  "max_clients = 256"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=1"  # freed buffers must leave RSS
daemon_up
w1=$(grep 'worker 1: started (pid' "$TMP/scatterd.log" | tail -n 1 | sed 's/.*(pid \([0-9]*\)).*/\1/')
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
rss_sum() { local p t=0; for p in $(worker_pids); do t=$((t + $(rss "$p"))); done; echo $t; }
export SOCK MP T1 T2 HELD="$TMP/held"
base=$(rss "$w1")

# (a) big responses, a client that does not read
python3 - >"$TMP/big.out" 2>&1 <<'PY' &
import json, os, sys, time
sys.path.insert(0, os.environ["MP"])
from mp import Client
c = Client(os.environ["SOCK"] + ".1")
for i in range(300):
    t = (os.environ["T1"], os.environ["T2"])[i % 2]
    c.send({"op": "submit", "id": i + 1, "url": "http://%s/item/%d?pad=1000000" % (t, i), "timeout_ms": 120000})
open(os.environ["HELD"], "w").write("x")
time.sleep(6)
ok, ids = 0, set()
while len(ids) < 300:
    r = c.recv(60)
    if r is None:
        break
    ids.add(r["id"])
    ok += bool(r.get("ok")) and len(r.get("body", b"")) > 1000000
print(json.dumps({"answered": len(ids), "ok": ok}))
PY
bpid=$!
EXTRA_PIDS+=("$bpid")
for i in $(seq 1 50); do [ -f "$HELD" ] && break; sleep 0.1; done
peak=0; bpeak=0
for i in $(seq 1 25); do
  r=$(rss "$w1"); [ "$r" -gt "$peak" ] && peak=$r
  b=$(python3 -c 'import os,sys; sys.path.insert(0,os.environ["MP"]); from mp import Client
c=Client(os.environ["SOCK"]+".1"); c.send({"op":"status","id":1}); print(c.recv(5)["worker_memory"]["buffered"])')
  [ "$b" -gt "$bpeak" ] && bpeak=$b
  sleep 0.1
done
wait "$bpid" || true
sed 's/^/# /' "$TMP/big.out"
echo "# worker 1 RSS: $((base / 1024)) MB idle, peak $((peak / 1024)) MB, buffered peak $((bpeak / 1048576)) MB while 300 x 1 MB replies were unread"
expect_eq "every big task answered once the client read" "$(tail -n 1 "$TMP/big.out" | jq .answered)" 300
expect_eq "every big task ok with its whole body" "$(tail -n 1 "$TMP/big.out" | jq .ok)" 300
expect_le "worker 1's buffered bytes (MB, its own count) within budget 32 + 16" $((bpeak / 1048576)) 48
# RSS also carries allocator slack (and ASan's shadow in test builds); before the budget the
# same load took ~800 MB
expect_le "worker RSS growth (MB) far below 300 x 1 MB" $(( (peak - base) / 1024 )) 150

# (b) 200 clients each holding an incomplete 4 MiB message
base=$(rss_sum)
python3 - >"$TMP/partial.out" 2>&1 <<'PY' &
import json, os, socket, struct, sys, time
sys.path.insert(0, os.environ["MP"])
from mp import Client, pack
head = b"\x81" + pack("op") + b"\xc6" + struct.pack(">I", 4 * 1024 * 1024 - 64)
chunk = b"z" * (256 * 1024)
conns = []
for i in range(200):
    c = Client(os.environ["SOCK"])
    c.s.setblocking(False)
    conns.append([c, head + chunk * 15, 0])  # 3.75 MiB of the promised 4 MiB
t0 = time.time()
while time.time() - t0 < 20 and any(k[2] < len(k[1]) for k in conns):
    for k in conns:
        if k[2] < len(k[1]):
            try:
                k[2] += k[0].s.send(k[1][k[2]:k[2] + 65536])
            except BlockingIOError:
                pass
            except OSError:
                k[2] = len(k[1]) + 1  # closed by the daemon
open(os.environ["HELD"] + "2", "w").write("x")
time.sleep(1)
# meanwhile a well-behaved client is served
s = Client(os.environ["SOCK"])
s.send({"op": "status", "id": 9})
st = s.recv(5)
codes = {}
for k in conns:
    k[0].s.setblocking(True)
    r = k[0].recv(8)
    m = r.get("message", "") if r else ""
    key = (r.get("error") if r else "none") + (" budget" if "worker_buffer_budget" in m else "") + \
          (" timeout" if "client_timeout" in m else "")
    codes[key] = codes.get(key, 0) + 1
print(json.dumps({"status_ok": bool(st and st.get("ok")), "codes": codes}))
PY
ppid_=$!
EXTRA_PIDS+=("$ppid_")
for i in $(seq 1 300); do [ -f "${HELD}2" ] && break; sleep 0.1; done
peak=$(rss_sum)
wait "$ppid_" || true
sed 's/^/# /' "$TMP/partial.out"
echo "# workers RSS: $((base / 1024)) MB before, $((peak / 1024)) MB with 200 x 3.75 MiB partial messages held"
pres=$(tail -n 1 "$TMP/partial.out")
expect_eq "a well-behaved client is served meanwhile" "$(echo "$pres" | jq .status_ok)" true
expect_ge "some growth refused for the budget" "$(echo "$pres" | jq '.codes["bad_request budget"] // 0')" 1
expect_ge "the held ones closed after client_timeout" "$(echo "$pres" | jq '.codes["bad_request timeout"] // 0')" 1
expect_eq "every partial client answered bad_request" "$(echo "$pres" | jq '[.codes | to_entries[] | select(.key|startswith("bad_request")) | .value] | add')" 200
expect_le "workers RSS growth (MB) within 2 x (32 + 16)" $(( (peak - base) / 1024 )) 96
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
