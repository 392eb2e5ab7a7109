#!/usr/bin/env bash
# it_systemd — dist/systemd/scatterd.service and the sd_notify protocol. `systemd-analyze
# verify` passes on the unit (ExecStart pointed at the built scatterd in a temp copy) with no
# message at all. There is no systemd here (PID 1 is not systemd), so the test plays its part:
# NOTIFY_SOCKET is a unix datagram socket a listener reads; READY=1 must come once, after the
# shared socket and every worker's own socket answer a request (probed the moment it arrives)
# and after each worker logged "started"; a SIGHUP is reported RELOADING=1 (with
# MONOTONIC_USEC) then READY=1; SIGTERM STOPPING=1. A SIGHUP sent before readiness (during a
# slow source's start-up wait) does not produce an early READY=1.
source "$(dirname "$0")/lib.sh"
it_init 34
command -v systemd-analyze >/dev/null || { echo "systemd-analyze is required (bash scripts/deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
UNIT="$SCATTER_TOP/dist/systemd/scatterd.service"

# --- the unit ---
sed "s|^ExecStart=/usr/sbin/scatterd |ExecStart=$SCATTERD |" "$UNIT" >"$TMP/scatterd.service"
check "the temp copy runs the built scatterd" grep -q "^ExecStart=$SCATTERD -f -c /etc/scatter/scatter.ini --user scatter$" "$TMP/scatterd.service"
man_opt=(--man=no)
if [ -n "${SCATTER_MAN_DIR:-}" ] && [ -f "$SCATTER_MAN_DIR/man8/scatterd.8" ]; then
  man_opt=() # the built man pages: Documentation=man:... is checked too
  export MANPATH="$SCATTER_MAN_DIR"
fi
rc=0; out=$(cd "$TMP" && systemd-analyze verify "${man_opt[@]}" ./scatterd.service 2>&1) || rc=$?
expect_eq "systemd-analyze verify ${man_opt[*]} exits 0" "$rc" 0
expect_eq "  and prints nothing (no warning)" "$out" ""
[ -z "$out" ] || echo "$out" | sed 's/^/# /'
for k in Type=notify NotifyAccess=main 'ExecReload=/bin/kill -HUP $MAINPID' RuntimeDirectory=scatter \
         NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes 'ReadWritePaths=-/var/lib/scatter -/var/log/scatter'; do
  check "unit has $k" grep -qxF "$k" "$UNIT"
done

# --- sd_notify, with this test as the service manager ---
farm_up --proxies 20 --mix "good=100" --seed 34 --interval-ms 100 --urls 5
write_ini "$FARM_DIR/proxies.txt" 100
NOTIFY="$TMP/notify.sock"
export NOTIFY SOCK TMP SCATTER_TOP
python3 - >"$TMP/notify.log" 2>&1 <<'PY' &
import json, os, socket, sys, time
sys.path.insert(0, os.path.join(os.environ["SCATTER_TOP"], "tests/integration"))
from mp import Client
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(os.environ["NOTIFY"])
s.settimeout(60)
sock = os.environ["SOCK"]

def answers(path):
    try:
        c = Client(path)
        c.send({"op": "status", "id": 1})
        r = c.recv(2)
        c.close()
        return bool(r and r.get("ok"))
    except Exception as e:
        return "%s: %s" % (path, e)

out = open(os.environ["TMP"] + "/notify.jsonl", "w")
while True:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    rec = {"t": time.time(), "msg": msg}
    if "READY=1" in msg.split("\n"):
        rec["probe"] = {p: answers(p) for p in (sock, sock + ".1", sock + ".2")}
    out.write(json.dumps(rec) + "\n")
    out.flush()
    if "STOPPING=1" in msg.split("\n"):
        break
PY
EXTRA_PIDS+=($!)
for i in $(seq 1 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$NOTIFY" daemon_up
for i in $(seq 1 50); do grep -q READY=1 "$TMP/notify.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -HUP "$DPID"
for i in $(seq 1 50); do [ "$(grep -c READY=1 "$TMP/notify.jsonl")" -ge 2 ] && break; sleep 0.1; done
daemon_stop
expect_eq "scatterd exits 0" "$DRC" 0
wait "${EXTRA_PIDS[-1]}" 2>/dev/null || true
sed 's/^/# /' "$TMP/notify.jsonl" | cut -c1-200
export LOG="$TMP/scatterd.log"
res=$(python3 - <<'PY'
import datetime, json, os
recs = [json.loads(l) for l in open(os.environ["TMP"] + "/notify.jsonl")]
msgs = [r["msg"] for r in recs]
kinds = []
for m in msgs:
    f = m.split("\n")
    kinds.append("READY" if "READY=1" in f else "RELOADING" if "RELOADING=1" in f else "STOPPING" if "STOPPING=1" in f else "other")
print("sequence", ",".join(kinds))
first = next(r for r in recs if "READY=1" in r["msg"].split("\n"))
print("probe", "ok" if all(v is True for v in first["probe"].values()) else json.dumps(first["probe"]))
started = []
for l in open(os.environ["LOG"]):
    if ": started (pid" in l and " worker " in l:
        t = datetime.datetime.strptime(l.split(" ")[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        started.append(t.timestamp())
# the log has milliseconds: a worker's "started" is at most 1 ms after it stored its pid
print("after_started", "ok" if len(started) >= 2 and max(started[:2]) <= first["t"] + 0.001 else "%s %s" % (started, first["t"]))
rel = next((m for m in msgs if "RELOADING=1" in m.split("\n")), "")
print("monotonic", "ok" if "MONOTONIC_USEC=" in rel else "missing")
print("status", "ok" if "STATUS=serving on" in first["msg"] else "missing")
PY
)
echo "$res" | sed 's/^/# /'
expect_eq "notifications in order" "$(awk '$1 == "sequence" {print $2}' <<<"$res")" "READY,RELOADING,READY,STOPPING"
expect_eq "at READY=1 the shared socket and both worker sockets answered" "$(awk '$1 == "probe" {print $2}' <<<"$res")" ok
expect_eq "READY=1 after both workers logged started" "$(awk '$1 == "after_started" {print $2}' <<<"$res")" ok
expect_eq "RELOADING=1 carries MONOTONIC_USEC" "$(awk '$1 == "monotonic" {print $2}' <<<"$res")" ok
expect_eq "READY=1 carries a STATUS= line" "$(awk '$1 == "status" {print $2}' <<<"$res")" ok

# a SIGHUP during start-up (a source that never answers holds the start for 500 ms): no early READY
: >"$TMP/notify.jsonl"
python3 - "$NOTIFY" >"$TMP/notify2.jsonl" <<'PY' &
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
import os
try: os.unlink(sys.argv[1])
except FileNotFoundError: pass
s.bind(sys.argv[1]); s.settimeout(20)
while True:
    try: m = s.recv(4096).decode()
    except socket.timeout: break
    print(json.dumps({"t": time.time(), "msg": m}), flush=True)
    if "STOPPING=1" in m.split("\n"): break
PY
LISTENER2=$!
EXTRA_PIDS+=($LISTENER2)
for i in $(seq 1 50); do [ -S "$NOTIFY" ] && [ "$(stat -c %Y "$NOTIFY")" -ge "$(date +%s -d '-5 sec')" ] && break; sleep 0.1; done
sleep 0.3
# an http source that accepts and never answers: start-up waits its full 500 ms for it
python3 -c 'import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 18099)); s.listen(8); time.sleep(60)' "$NET.5" &
EXTRA_PIDS+=($!)
sleep 0.3
write_ini "$FARM_DIR/proxies.txt" 100 "source_timeout = 10"
sed -i "s|^sources = .*|sources = \"farm=$FARM_DIR/proxies.txt,slow=http://$NET.5:18099/list\"|" "$TMP/scatter.ini"
: >"$TMP/scatterd.log"
NOTIFY_SOCKET="$NOTIFY" "$SCATTERD" -c "$TMP/scatter.ini" -f >"$TMP/scatterd2.out" 2>&1 </dev/null &
DPID=$!
# the file source is in (its line is logged during the start-up wait, after the signal
# handlers are set), the slow one holds the start: SIGHUP now
for i in $(seq 1 50); do grep -q "source farm: " "$TMP/scatterd.log" && break; sleep 0.01; done
kill -HUP "$DPID"
for i in $(seq 1 50); do grep -q READY=1 "$TMP/notify2.jsonl" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
daemon_stop
wait "$LISTENER2" 2>/dev/null || true
seq2=$(python3 -c 'import json,sys; print(",".join(("READY" if "READY=1" in m else "RELOADING" if "RELOADING=1" in m else "STOPPING" if "STOPPING=1" in m else "other") for m in (json.loads(l)["msg"] for l in open(sys.argv[1]))))' "$TMP/notify2.jsonl")
expect_eq "a SIGHUP before readiness: one READY=1, sent when serving" "$seq2" "READY,STOPPING"
# the slow source held the workers back 500 ms: a READY=1 sent at the socket's opening would
# come long before their "started" lines
late=$(python3 - "$TMP/notify2.jsonl" "$TMP/scatterd.log" <<'PY'
import datetime, json, sys
ready = next(json.loads(l)["t"] for l in open(sys.argv[1]) if "READY=1" in json.loads(l)["msg"])
st = [datetime.datetime.strptime(l.split(" ")[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
      for l in open(sys.argv[2]) if " worker " in l and ": started (pid" in l]
print("ok" if len(st) == 2 and max(st) <= ready + 0.001 else "READY at %.3f, started at %s" % (ready, st))
PY
)
expect_eq "  READY=1 after both workers started (500 ms after the socket opened)" "$late" ok
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out" "$TMP/scatterd2.out"
finish
