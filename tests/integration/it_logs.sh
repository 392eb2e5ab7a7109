#!/usr/bin/env bash
# it_logs — log_format = json and SIGUSR1 (logrotate): every line of the master, the workers
# and a source fetch is one JSON object with time, level, process, worker, pid and message;
# a message with a double quote, a backslash and a control byte comes back byte for byte; after
# logrotate runs the shipped dist/logrotate/scatterd (rename, create, SIGUSR1 to the master by
# its pid file), the master and both workers write to the new file at the same path and
# nothing more to the renamed one.
source "$(dirname "$0")/lib.sh"
it_init 32
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

farm_up --proxies 20 --mix "good=100" --seed 32 --interval-ms 100 --urls 20
{ cat "$FARM_DIR/proxies.txt"; echo 'not a proxy line'; } >"$TMP/proxies.txt"
# a source whose name carries '"', '\' and \x01: its fetch fails and the master logs the name
ODD="$TMP/we\"ird\\pa$(printf '\001')th"
write_ini "$TMP/proxies.txt" 100 'log_format = json' 'log_level = debug'
python3 - "$TMP/scatter.ini" "$TMP/proxies.txt" "$ODD" <<'PY'
import re, sys
p, src, odd = sys.argv[1:]
t = open(p).read()
# single quotes: iniparser keeps the '"' and '\' inside them as they are
t, n = re.subn(r'(?m)^sources = .*$', lambda m: "sources = 'farm=%s,%s'" % (src, odd), t)
assert n == 1
open(p, "w").write(t)
PY
LOG="$TMP/scatterd.log"
daemon_up
ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out1.jsonl" 2>/dev/null || true
expect_eq "20 tasks served" "$(jq -r 'select(.ok) | .n' "$TMP/out1.jsonl" | wc -l)" 20

# every line is a JSON object with the documented fields; the odd name comes back exactly
export LOG ODD
check_json() { # check_json FILE -> prints "lines processes workers"
  python3 - "$1" <<'PY'
import json, os, sys
n, procs, workers, odd_seen = 0, set(), set(), 0
with open(sys.argv[1], "rb") as f:
    for raw in f:
        o = json.loads(raw.decode("utf-8"))  # strict: the line must be valid UTF-8 and JSON
        assert set(o) == {"time", "level", "process", "worker", "pid", "message"}, o
        assert o["level"] in ("error", "warn", "info", "debug"), o
        assert o["process"] in ("master", "worker", "fetch"), o
        assert (o["worker"] is None) == (o["process"] != "worker"), o
        assert o["time"].endswith("Z") and len(o["time"]) == 24, o
        procs.add(o["process"])
        if o["worker"] is not None:
            workers.add(o["worker"])
        if o["message"].startswith("source %s: fetch failed" % os.environ["ODD"]):
            odd_seen += 1
        n += 1
print(n, ",".join(sorted(procs)), ",".join(str(w) for w in sorted(workers)), odd_seen)
PY
}
read -r n procs workers odd <<<"$(check_json "$LOG" || echo "x x x x")"
expect_ge "every line parses as a JSON object with the documented fields" "${n/x/0}" 10
expect_eq "lines from the master, both workers and a source fetch" "$procs $workers" "fetch,master,worker 1,2"
expect_ge "a message with '\"', '\\\\' and \\x01 round-trips exactly" "${odd/x/0}" 1

# the shipped dist/logrotate/scatterd, run by logrotate, with this test's paths (and root in
# place of the scatter user): rename, create, then SIGUSR1 to the pid in the pid file
command -v logrotate >/dev/null || { echo "logrotate is required (bash scripts/deps.sh)" >&2; exit 1; }
sed -e "s|^/var/log/scatter/\*.log {|$TMP/*.log {|" -e "s|create 0640 scatter adm|create 0640 root root|" \
    -e "s|/run/scatter/scatterd.pid|$TMP/scatterd.pid|" "$SCATTER_TOP/dist/logrotate/scatterd" >"$TMP/logrotate.conf"
check "the logrotate file was adapted (paths, user)" bash -c "grep -q '^$TMP/\*.log {' '$TMP/logrotate.conf' && grep -q '$TMP/scatterd.pid' '$TMP/logrotate.conf'"
logrotate -f -s "$TMP/logrotate.state" "$TMP/logrotate.conf" >"$TMP/logrotate.out" 2>&1 || { cat "$TMP/logrotate.out"; fail "logrotate -f ran"; }
check "logrotate renamed the log to scatterd.log.1 and created a new one" test -s "$LOG.1" -a -f "$LOG"
for i in $(seq 1 50); do
  [ "$(grep -c 'log file reopened (SIGUSR1)' "$LOG" 2>/dev/null || true)" -ge 3 ] && break
  sleep 0.1
done
old_size=$(stat -c %s "$LOG.1")
expect_eq "the master and both workers reopened into a new file at the path" \
  "$(python3 -c 'import json,sys; print(sorted("%s %s" % (o["process"], o["worker"]) for o in map(json.loads, open(sys.argv[1])) if o["message"] == "log file reopened (SIGUSR1)"))' "$LOG")" \
  "['master None', 'worker 1', 'worker 2']"
ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out2.jsonl" 2>/dev/null || true
expect_eq "20 more tasks served" "$(jq -r 'select(.ok) | .n' "$TMP/out2.jsonl" | wc -l)" 20
kill -HUP "$DPID" # a reload line from the master and both workers, after the rotation
for i in $(seq 1 50); do
  [ "$(grep -c 'config reloaded' "$LOG" || true)" -ge 3 ] && break
  sleep 0.1
done
expect_eq "new task lines of both workers in the new file" \
  "$(jq -r 'select(.message | startswith("task done")) | .worker' "$LOG" | sort -u | tr '\n' ' ')" "1 2 "
expect_eq "reload lines of the master and both workers in the new file" \
  "$(jq -r 'select(.message | startswith("config reloaded")) | .process' "$LOG" | sort | tr '\n' ' ')" "master worker worker "
expect_eq "nothing more written to the renamed file" "$(stat -c %s "$LOG.1")" "$old_size"
read -r n _ <<<"$(check_json "$LOG" || echo x)"
expect_ge "the new file parses as JSON lines too" "${n/x/0}" 5
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$LOG" "$LOG.1" "$TMP/scatterd.out"
finish
