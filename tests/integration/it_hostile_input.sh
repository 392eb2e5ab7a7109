#!/usr/bin/env bash
# it_hostile_input — what a client sends cannot break the daemon's promises:
#  - request smuggling: Content-Length / Transfer-Encoding / hop-by-hop headers from the
#    client are dropped (the daemon frames the body), a Host that disagrees with the URL is
#    refused: the target counts exactly one request per attempt, 0 violations;
#  - a 27-byte `proxies` request with limit 100000 gets one bounded page (next_offset), and
#    300 of them pipelined by a client that does not read stop being decoded at the
#    backpressure mark (worker memory stays bounded), then are all answered once read;
#  - 70 refused submits to junk hosts register no host;
#  - response headers over 64 KiB end the task too_large instead of being cut silently;
#  - clients over max_clients get a too_many_clients reply (not a bare EOF) and one log line;
#  - a client that connects while the daemon stops gets shutting_down.
source "$(dirname "$0")/lib.sh"
it_init 13
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
MP="$SCATTER_TOP/tests/integration"

farm_up --proxies 1200 --mix "good=100" --seed 13 --interval-ms 1000 --urls 100
SPECIAL="$NET.12:18080"
python3 "$MP/special_target.py" "$NET.12" 18080 &
EXTRA_PIDS+=("$!")
write_ini "$FARM_DIR/proxies.txt" 1000 "max_clients = 10"
# ASan's quarantine would keep every freed reply buffer resident and hide what the daemon holds
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=1"
daemon_up
for i in $(seq 1 50); do curl -s --noproxy '*' -o /dev/null "http://$SPECIAL/x" && break; sleep 0.1; done

export SOCK T1 T2 SPECIAL MP
python3 - >"$TMP/py.out" 2>&1 <<'PY'
import json, os, sys, time
sys.path.insert(0, os.environ["MP"])
from mp import Client
sock, t1, t2, special = os.environ["SOCK"], os.environ["T1"], os.environ["T2"], os.environ["SPECIAL"]
out = {}

def call(c, m, wait=30):
    c.send(m)
    return c.recv(wait)

# --- smuggling: 5 pipelined requests in the body of a GET with Content-Length: 0
c = Client(sock)
smuggled = "".join("GET /item/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (50 + i, t1) for i in range(5))
variants = [
    [["Content-Length", "0"]],
    [["Transfer-Encoding", "chunked"]],
    [["Content-Length", "0"], ["Connection", "keep-alive, X-Drop"], ["X-Drop", "1"], ["Keep-Alive", "5"],
     ["TE", "trailers"], ["Trailer", "X-T"], ["Upgrade", "h2c"], ["Expect", "100-continue"],
     ["Proxy-Authorization", "Basic eDp5"], ["Host", t1]],
]
races = 0
replies = []
for i, hv in enumerate(variants):
    r = call(c, {"op": "submit", "id": 100 + i, "url": "http://%s/item/%d" % (t1, i + 1), "headers": hv,
                 "body": smuggled, "race_width": 1, "max_attempts": 1, "timeout_ms": 20000})
    replies.append(r)
    races += r.get("race", 0) if r and r.get("ok") else 0
out["smuggle_ok"] = [bool(r and r.get("ok")) for r in replies]
out["smuggle_races"] = races
r = call(c, {"op": "submit", "id": 200, "url": "http://%s/item/9" % t1, "headers": [["Host", "evil.example"]]})
out["host_mismatch"] = [r.get("error"), r.get("message")]

# --- huge response headers
r = call(c, {"op": "submit", "id": 500, "url": "http://%s/bigheaders" % special, "timeout_ms": 20000})
out["bigheaders"] = [r.get("ok"), r.get("error"), r.get("message")]

# --- junk hosts: refused before they are registered
big = "x" * 9000
codes = set()
for i in range(70):
    r = call(c, {"op": "submit", "id": 300 + i, "url": "http://junk-%d.invalid/" % i,
                 "headers": [["X-Big", big]]})
    codes.add(r.get("error"))
out["junk_codes"] = sorted(codes)
r = call(c, {"op": "hosts", "id": 400})
out["hosts"] = sorted(h["name"] for h in r["hosts"])
r = call(c, {"op": "submit", "id": 401, "url": "http://%s/item/7" % t2, "timeout_ms": 20000})
out["new_host_after_junk"] = bool(r.get("ok"))

# --- proxies: one bounded page; pipelined without reading
r = call(c, {"op": "proxies", "id": 600, "limit": 100000})
out["page"] = [r.get("total"), len(r.get("proxies", [])), r.get("next_offset")]
r = call(c, {"op": "proxies", "id": 601, "limit": 100000, "offset": r.get("next_offset")})
out["page2"] = [len(r.get("proxies", [])), r.get("next_offset")]
c.close()
print(json.dumps(out))
PY
cat "$TMP/py.out" | sed 's/^/# /' | cut -c1-400
res=$(tail -n 1 "$TMP/py.out")
j() { echo "$res" | jq -c "$1"; }
expect_eq "smuggling variants answered ok" "$(j .smuggle_ok)" "[true,true,true]"
reqs=$(fstats "$T1" .requests); viol=$(fstats "$T1" .violations)
expect_eq "target counted exactly one request per attempt" "$reqs" "$(j .smuggle_races)"
expect_eq "no violation from smuggled requests" "$viol" 0
expect_eq "a Host disagreeing with the url is refused" "$(j '.host_mismatch[0]')" '"bad_request"'
check "the refusal names the Host header" grep -q "Host: evil.example" <(echo "$res" | jq -r '.host_mismatch[1]')
expect_eq "junk submits refused bad_request" "$(j .junk_codes)" '["bad_request"]'
check "no junk host registered" bash -c "! echo '$(j .hosts)' | grep -q junk"
expect_eq "a new host still registers after 70 junk submits" "$(j .new_host_after_junk)" true
expect_eq "headers over 64 KiB: too_large" "$(j '.bigheaders[1]')" '"too_large"'
expect_eq "proxies page bounded to 1000 of 1200 (total, count, next_offset)" "$(j .page)" "[1200,1000,1000]"
expect_eq "second page holds the rest" "$(j .page2)" "[200,1200]"
ctl proxies --limit 5000 >"$TMP/proxies.txt"
first=$(head -n 1 "$TMP/proxies.txt")
echo "# scatterctl proxies --limit 5000: $first"
check "scatterctl names the next page" grep -q "1200 proxies, 1000 shown; next page: scatterctl proxies --offset 1000" <(echo "$first")
ctl proxies --offset 1000 >"$TMP/proxies2.txt"
expect_eq "scatterctl --offset 1000 shows the rest" "$(head -n 1 "$TMP/proxies2.txt")" "1200 proxies, 200 shown"

# --- a client that pipelines 300 proxies requests (~300 KB of reply each) and does not read
rss_sum() { local p t=0; for p in $(worker_pids); do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $t; }
rss_before=$(rss_sum)
export TMPF="$TMP/held"
python3 - >"$TMP/pipe.out" 2>&1 <<'PY' &
import json, os, sys, time
sys.path.insert(0, os.environ["MP"])
from mp import Client, pack
c = Client(os.environ["SOCK"])
c.s.setblocking(False)
msg = b"".join(pack({"op": "proxies", "id": 1000 + i, "limit": 100000}) for i in range(300))
sent = 0
t0 = time.time()
while sent < len(msg) and time.time() - t0 < 5:
    try:
        sent += c.s.send(msg[sent:])
    except BlockingIOError:
        time.sleep(0.05)
time.sleep(1.5)
open(os.environ["TMPF"], "w").write("held\n")
time.sleep(2)
c.s.setblocking(True)
c.s.settimeout(10)
# each reply holds the key "next_offset" once; decoding 300 replies of 1,000 proxies in pure
# Python would take longer than the daemon takes to send them
key = pack("next_offset")
data = bytearray()
t0 = time.time()
while data.count(key) < 300 and time.time() - t0 < 60:
    try:
        d = c.s.recv(1 << 22)
    except OSError:
        break
    if not d:
        break
    data += d
print(json.dumps({"sent": sent, "of": len(msg), "answered": data.count(key)}))
PY
ppid_=$!
EXTRA_PIDS+=("$ppid_")
for i in $(seq 1 100); do [ -f "$TMPF" ] && break; sleep 0.1; done
sleep 0.5
rss_held=$(rss_sum)
wait "$ppid_" || true
sed 's/^/# /' "$TMP/pipe.out"
echo "# worker RSS: $rss_before kB before, $rss_held kB while 300 replies (~90 MB) were unread"
expect_eq "all 300 pipelined proxies requests answered once read" "$(tail -n 1 "$TMP/pipe.out" | jq .answered)" 300
expect_le "worker RSS grew by at most 40 MB while the client did not read" $(( (rss_held - rss_before) / 1024 )) 40

# --- max_clients = 10 per worker: 40 idle connections, the extra ones get too_many_clients
python3 - >"$TMP/clients.out" 2>&1 <<'PY'
import json, os, sys, time
sys.path.insert(0, os.environ["MP"])
from mp import Client
held, refused, other = [], 0, []
for i in range(40):
    c = Client(os.environ["SOCK"])
    r = c.recv(0.3)
    if r is None:
        held.append(c)
    elif r.get("error") == "too_many_clients":
        refused += 1
        c.close()
    else:
        other.append(r)
n_held = len(held)
# a new client on worker 1's own socket is refused with a reply that says why, not a bare
# EOF (the kernel may have left worker 1 short of 10 on the shared socket: fill it up first)
r = None
for i in range(11):
    c = Client(os.environ["SOCK"] + ".1")
    r = c.recv(0.5)
    if r is not None:
        break
    held.append(c)
for h in held:
    h.close()
time.sleep(0.3)
c2 = Client(os.environ["SOCK"])
c2.send({"op": "hello", "id": 1, "client": "it"})
r2 = c2.recv(5)
print(json.dumps({"held": n_held, "refused": refused, "other": len(other),
                  "extra": [r.get("error"), r.get("message")] if r else None,
                  "after": bool(r2 and r2.get("ok"))}))
PY
sed 's/^/# /' "$TMP/clients.out"
cres=$(tail -n 1 "$TMP/clients.out")
# the kernel hands a connection to whichever worker wakes first, so the split varies
expect_le "at most 20 clients held (10 per worker)" "$(echo "$cres" | jq .held)" 20
expect_eq "every client held or answered too_many_clients" "$(echo "$cres" | jq '.held + .refused')" 40
expect_eq "one more client gets too_many_clients" "$(echo "$cres" | jq -r '.extra[0]')" too_many_clients
expect_eq "once they leave, a client is served again" "$(echo "$cres" | jq .after)" true
nlog=$(grep -c "refusing clients" "$TMP/scatterd.log" || true)
expect_le "refusals logged at most once per worker per 10 s" "$nlog" 2

# --- a client that connects while the daemon stops is told so
python3 - >"$TMP/slow.out" 2>&1 <<'PY' &
import json, os, sys
sys.path.insert(0, os.environ["MP"])
from mp import Client
c = Client(os.environ["SOCK"])
r = c.send({"op": "submit", "id": 1, "url": "http://%s/slow" % os.environ["SPECIAL"], "timeout_ms": 30000})
print(json.dumps(c.recv(30)))
PY
spid=$!
EXTRA_PIDS+=("$spid")
sleep 1.5
kill -TERM "$DPID"
sleep 0.5
python3 - >"$TMP/late.out" 2>&1 <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["MP"])
from mp import Client
c = Client(os.environ["SOCK"])
r = c.recv(2)  # the refusal comes unasked, and the close right after it
if r is None and not c.eof:
    c.send({"op": "hello", "id": 1, "client": "late"})
    r = c.recv(5)
print(json.dumps(r))
PY
sed 's/^/# late client: /' "$TMP/late.out"
expect_eq "a client connecting during the grace gets shutting_down" "$(tail -n 1 "$TMP/late.out" | jq -r .error)" shutting_down
wait "$spid" || true
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
