#!/usr/bin/env bash
# it_reload_keys — one config path: every key of the key table is changed in turn through a
# SIGHUP, and exactly the keys marked reloadable take effect, in the master (its published
# configuration) and in every worker (which take it from the master, never from the file);
# the others keep their start value everywhere until a restart.
source "$(dirname "$0")/lib.sh"
it_init 24
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

farm_up --proxies 20 --mix "good=100" --seed 24 --interval-ms 200 --urls 10
cp "$FARM_DIR/proxies.txt" "$TMP/other.txt"
"$SCATTERD" --print-default-config >"$TMP/defaults.ini"
export TMP SOCK SCATTERD NET DEF="$TMP/defaults.ini" SRC="$FARM_DIR/proxies.txt"
# the base: the shipped defaults with this test's paths
python3 - <<'PY'
import os, re
t = open(os.environ["DEF"]).read()
over = {"sources": '"farm=%s,other=%s"' % (os.environ["SRC"], os.environ["TMP"] + "/other.txt"),
        "allow_private_proxies": "true", "socket_path": '"%s"' % os.environ["SOCK"],
        "pid_file": '"%s/scatterd.pid"' % os.environ["TMP"], "log_file": '"%s/scatterd.log"' % os.environ["TMP"],
        "workers": "2", "state_file": '""', "http_listen": '"%s.2:8118"' % os.environ["NET"],
        "metrics_listen": '"%s.3:9118"' % os.environ["NET"]}
for k, v in over.items():
    t, n = re.subn(r"(?m)^%s = .*$" % k, "%s = %s" % (k, v), t)
    assert n == 1, k
open(os.environ["TMP"] + "/scatter.ini", "w").write(t)
PY
daemon_up
python3 - >"$TMP/reload.out" 2>&1 <<'PY'
import os, re, signal, sys, time
sys.path.insert(0, os.path.join(os.environ["SCATTER_TOP"], "tests/integration"))
from mp import Client
tmp, sock = os.environ["TMP"], os.environ["SOCK"]
base = open(tmp + "/scatter.ini").read()
master_pid = int(open(tmp + "/scatterd.pid").read())

def keys_of(text):
    """(section, key) -> (value, reloadable) from a printed config with its comments."""
    out, sec, reloadable = {}, None, None
    for line in text.splitlines():
        m = re.match(r"^\[(.*)\]$", line)
        if m:
            sec = m.group(1)
            continue
        if line.startswith("; default:"):
            reloadable = "reloadable (SIGHUP)" in line
        m = re.match(r"^([a-z_]+) = (.*)$", line)
        if m and sec:
            out[(sec, m.group(1))] = (m.group(2), reloadable)
    return out

def values(text):
    return {k: v for k, (v, _) in keys_of(text).items()}

def other(key, v):
    """A different valid value of the same type."""
    special = {"sources": '"farm=%s"' % os.environ["SRC"], "socket_path": '"%s/other.sock"' % tmp,
               "pid_file": '"%s/other.pid"' % tmp, "log_file": '"%s/other.log"' % tmp,
               "state_file": '"%s/state.json"' % tmp, "user_agent": '"scatter-test/9"',
               "blocked_body": '"zz-not-here"', "host_sources": '"farm"', "success_status": '"200-299"',
               "blocked_status": '"403"', "target_error_status": '"500-599"', "log_level": "debug",
               "socket_mode": "0640", "anchor": "sent", "race_mode": "all", "workers": "3",
               "http_listen": '"127.0.0.1:18999"', "http_auth": '"u:p"', "metrics_listen": '"127.0.0.1:19999"',
               "ca_file": '"%s"' % os.environ["SRC"], "connect_ports": '"443,8443"',
               "log_format": "json", "user": '"nobody"', "group": '"nogroup"', "shard": "1/2",
               "redis_url": '"redis://127.0.0.1:1"', "redis_stream": '"it:other"'}
    if key in special:
        return special[key]
    if v in ("true", "false"):
        return "false" if v == "true" else "true"
    m = re.match(r"^(\d+)(ms|s|m|h|K|M|G)?$", v)
    if m:
        return "%d%s" % (int(m.group(1)) + 1, m.group(2) or "")
    m = re.match(r"^(0\.\d+|\d+)$", v)
    if re.match(r"^\d*\.\d+$", v):
        return "%.3f" % (float(v) + 0.01)
    raise SystemExit("no alternative value for %s = %s" % (key, v))

def ask(path):
    c = Client(path)
    c.send({"op": "config", "id": 1})
    r = c.recv(10)
    c.close()
    if not r or not r.get("ok"):
        raise SystemExit("config op on %s answered %r" % (path, r))
    return r

def reload_and_wait(text, pub):
    """Writes the file, sends SIGHUP, and returns each worker's config reply once it took `pub`."""
    open(tmp + "/scatter.ini", "w").write(text)
    os.kill(master_pid, signal.SIGHUP)
    replies = {}
    for w in (1, 2):
        for _ in range(100):
            r = ask("%s.%d" % (sock, w))
            if r.get("worker_publication") == pub:
                break
            time.sleep(0.05)
        replies[w] = r
    return replies

start = ask(sock + ".1")
start_w, start_m = values(start["worker"]), values(start["master"])
table = keys_of(start["worker"])
pub = start["master_publication"]
checked = fails = 0
for (sec, key), (v, reloadable) in sorted(table.items()):
    if sec.startswith("host:"):
        continue
    new = other(key, v)
    text = re.sub(r"(?m)^(\[%s\][\s\S]*?^)%s = .*$" % (re.escape(sec), key), lambda m: m.group(1) + "%s = %s" % (key, new), base, count=1)
    assert text != base, key
    pub += 1
    for w, r in reload_and_wait(text, pub).items():  # both workers took publication `pub`
        wv, mv = values(r["worker"])[(sec, key)], values(r["master"])[(sec, key)]
        want_changed = reloadable
        ok = (wv != start_w[(sec, key)]) == want_changed and (mv != start_m[(sec, key)]) == want_changed
        if not ok or r.get("worker_publication") != pub or r.get("master_publication") != pub:
            fails += 1
            print("FAIL key %s (%s): set %s, worker %d has %s, master has %s, publication %s (want %d)" %
                  (key, "reloadable" if reloadable else "fixed", new, w, wv, mv, r.get("worker_publication"), pub))
    checked += 1
    pub += 1
    for w, r in reload_and_wait(base, pub).items():
        if values(r["worker"]) != start_w:
            fails += 1
            print("FAIL after restoring %s: worker %d differs from its start config" % (key, w))
print("RESULT %d %d %d" % (checked, sum(1 for (s, k), (v, r) in table.items() if not s.startswith("host:") and r), fails))
PY
{ grep FAIL "$TMP/reload.out" || true; } | head -20 | sed "s/^/# /"
res=$(grep '^RESULT' "$TMP/reload.out" || true)
[ -n "$res" ] || { cat "$TMP/reload.out"; fail "the reload driver ran to the end"; }
read -r _ checked reloadable fails <<<"$res"
echo "# $checked keys changed one at a time ($reloadable reloadable), through $((checked * 2)) reloads"
expect_ge "every key of the table was changed" "${checked:-0}" 40
expect_eq "exactly the reloadable keys took effect, in the master and both workers" "${fails:-x}" 0
echo "# master lines naming ignored keys: $(grep -c "can only change at start; ignored" "$TMP/scatterd.log" || true)"
check "workers never read the file (no parse errors, publications logged)" grep -q "worker 2: config reloaded (publication" "$TMP/scatterd.log"
ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>/dev/null || true
expect_eq "still serving after $((checked * 2)) reloads" "$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)" 10
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
