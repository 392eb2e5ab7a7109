#!/usr/bin/env bash
# it_privdrop — `user =` / `group =`: started as root with user = nobody, group = nogroup, the
# master opens its socket, pid file, log file and state file as root, then runs as nobody
# (real, effective, saved and filesystem ids, no supplementary group), and so do the workers
# it forks; tasks are served; a SIGHUP reload still reads the config file and refreshes the
# sources; SIGUSR1 reopens a log file logrotate created for nobody; root's `scatterctl stop`
# stops it and the state file is saved by nobody. An unknown user or group: exit 2 naming the
# key; a non-root start asking for another user: exit 2 saying only root can switch.
# Needs root.
source "$(dirname "$0")/lib.sh"
it_init 33
if [ "$(id -u)" != 0 ]; then echo "# needs root to switch users"; exit 77; fi
getent passwd nobody >/dev/null && getent group nogroup >/dev/null || { echo "needs user nobody, group nogroup" >&2; exit 1; }
command -v setpriv >/dev/null || { echo "setpriv (util-linux) is required" >&2; exit 1; }
NOBODY=$(id -u nobody)
NOGROUP=$(getent group nogroup | cut -d: -f3)

farm_up --proxies 20 --mix "good=100" --seed 33 --interval-ms 100 --urls 20
# nobody reads the config and the sources (a reload and every fetch happen after the switch)
chmod 0711 "$TMP"
chmod -R o+rX "$FARM_DIR"
head -n 10 "$FARM_DIR/proxies.txt" >"$TMP/proxies.txt"
chmod 0644 "$TMP/proxies.txt"
# the runtime directory (socket, worker sockets, pid file) and the state directory: nobody's,
# as systemd's RuntimeDirectory= / StateDirectory= would make them for the unit's user
install -d -o nobody -g nogroup -m 0750 "$TMP/run" "$TMP/state"
SOCK="$TMP/run/scatter.sock"
LOG="$TMP/scatterd.log"
write_ini "$TMP/proxies.txt" 100 'user = "nobody"' 'group = "nogroup"' "state_file = \"$TMP/state/state.json\"" \
  'state_save_interval = 1'
sed -i "s|^pid_file = .*|pid_file = \"$TMP/run/scatterd.pid\"|" "$TMP/scatter.ini"
chmod 0644 "$TMP/scatter.ini"
daemon_up

ids() { awk '$1 == "Uid:" {u = $2 "," $3 "," $4 "," $5} $1 == "Gid:" {g = $2 "," $3 "," $4 "," $5}
             $1 == "Groups:" {s = $2} END {print u " " g " [" s "]"}' "/proc/$1/status"; }
want="$NOBODY,$NOBODY,$NOBODY,$NOBODY $NOGROUP,$NOGROUP,$NOGROUP,$NOGROUP []"
want_groups="$NOBODY,$NOBODY,$NOBODY,$NOBODY $NOGROUP,$NOGROUP,$NOGROUP,$NOGROUP [$NOGROUP]"
got=$(ids "$DPID")
[ "$got" = "$want_groups" ] && want="$want_groups" # initgroups: nogroup may be listed as nobody's group
expect_eq "master runs as nobody/nogroup (uid, gid, groups from /proc)" "$got" "$want"
for w in $WORKER_PIDS; do expect_eq "worker $w runs as nobody/nogroup" "$(ids "$w")" "$want"; done
expect_eq "two workers" "$(echo $WORKER_PIDS | wc -w)" 2
check "the master logged the switch" grep -q "running as uid $NOBODY, gid $NOGROUP (\[scatter\] user = 'nobody'" "$LOG"
expect_eq "pid file written before the switch: root's" "$(stat -c %U "$TMP/run/scatterd.pid")" root
expect_eq "socket listened by root, owned by nobody:nogroup" "$(stat -c %U:%G "$SOCK")" nobody:nogroup
expect_eq "log file given to nobody (for SIGUSR1)" "$(stat -c %U "$LOG")" nobody

ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out1.jsonl" 2>"$TMP/fetch1.err" || true
expect_eq "20 tasks served by the unprivileged workers" "$(jq -r 'select(.ok) | .n' "$TMP/out1.jsonl" | wc -l)" 20

# a reload reads the file again as nobody, and the refresh (a fetch child, nobody too) picks
# up the ten proxies added to the source
cp "$FARM_DIR/proxies.txt" "$TMP/proxies.txt"
sed -i 's/^log_level = .*//; s/^\[scatter\]$/[scatter]\nlog_level = debug/' "$TMP/scatter.ini"
kill -HUP "$DPID"
for i in $(seq 1 50); do
  [ "$(status_json | jq -r '.pool.total // .proxies.total // empty' 2>/dev/null)" = 20 ] && break
  grep -q "20 proxies in the table" "$LOG" && break
  sleep 0.1
done
check "the reload was accepted (no 'reload refused')" bash -c "grep -q 'config reloaded' '$LOG' && ! grep -q 'reload refused' '$LOG'"
check "the refresh after the reload loaded 20 proxies" grep -q "20 proxies in the table" "$LOG"
check "the reloaded log_level took effect (debug lines)" grep -q " debug " "$LOG"
expect_eq "still nobody after the reload" "$(ids "$DPID")" "$want"

# logrotate's create mode, then SIGUSR1: the unprivileged master and workers reopen
mv "$LOG" "$LOG.1"
install -o nobody -g nogroup -m 0640 /dev/null "$LOG"
kill -USR1 "$DPID"
for i in $(seq 1 50); do
  [ "$(grep -c 'log file reopened (SIGUSR1)' "$LOG" || true)" -ge 3 ] && break
  sleep 0.1
done
expect_eq "master and both workers reopened the new log file" "$(grep -c 'log file reopened (SIGUSR1)' "$LOG" || true)" 3

ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out2.jsonl" 2>/dev/null || true
expect_eq "20 more tasks served after reload and reopen" "$(jq -r 'select(.ok) | .n' "$TMP/out2.jsonl" | wc -l)" 20
sleep 1.5 # one state_save_interval
# root's scatterctl stops a daemon that switched users (pid file root's, in nobody's runtime dir)
check "root's scatterctl stop signals the nobody daemon" timeout 10 "$SCATTERCTL" stop --pidfile "$TMP/run/scatterd.pid"
for i in $(seq 1 100); do
  [ "$(awk '{print $3}' "/proc/$DPID/stat" 2>/dev/null)" = Z ] || ! kill -0 "$DPID" 2>/dev/null && break
  sleep 0.1
done
DRC=0; wait "$DPID" || DRC=$?; DPID=""
expect_eq "scatterd exits 0" "$DRC" 0
expect_eq "the state file saved by nobody" "$(stat -c %U "$TMP/state/state.json" 2>/dev/null)" nobody
check "socket and pid file removed at exit by nobody" bash -c "[ ! -e '$SOCK' ] && [ ! -e '$TMP/run/scatterd.pid' ]"
no_sanitizer_report "$LOG" "$LOG.1" "$TMP/scatterd.out"

# the packaged layout: default (relative) socket_path and pid_file, so /run/scatter, which
# systemd's RuntimeDirectory= makes root's 0750; here in a private mount namespace with its own
# /run, so no other daemon's /run/scatter is touched. The master gives the directory to nobody,
# a SIGHUP reload resolves the relative paths as root did at start, and root's scatterctl
# finds and stops it by the defaults.
if unshare -m --propagation private true 2>/dev/null; then
  grep -v '^socket_path = \|^pid_file = \|^user = \|^group = ' "$TMP/scatter.ini" >"$TMP/rel.ini"
  chmod 0644 "$TMP/rel.ini"
  export SCATTERD SCATTERCTL TMP
  rc=0
  unshare -m --propagation private bash -c '
    set -u
    mount -t tmpfs tmpfs /run || exit 90
    install -d -m 0750 /run/scatter
    : >"$TMP/rel.log"
    sed -i "s|^log_file = .*|log_file = \"$TMP/rel.log\"|" "$TMP/rel.ini"
    "$SCATTERD" -f -c "$TMP/rel.ini" --user nobody:nogroup >"$TMP/rel.out" 2>&1 </dev/null &
    d=$!
    trap "kill -KILL $d 2>/dev/null" EXIT
    for i in $(seq 1 100); do [ -S /run/scatter/scatter.sock ] && grep -q "started 2 workers" "$TMP/rel.log" && break; sleep 0.1; done
    echo "dir $(stat -c %U:%G:%a /run/scatter)"
    echo "sock $(stat -c %U /run/scatter/scatter.sock) pid $(stat -c %U /run/scatter/scatterd.pid)"
    ASAN_OPTIONS=detect_leaks=0 timeout 10 "$SCATTERCTL" status --json >/dev/null 2>&1 && echo "status ok"
    ASAN_OPTIONS=detect_leaks=0 timeout 10 "$SCATTERCTL" reload >/dev/null 2>&1 && echo "reload sent"
    for i in $(seq 1 50); do grep -q "config reloaded\|reload refused" "$TMP/rel.log" && break; sleep 0.1; done
    grep -q "config reloaded" "$TMP/rel.log" && ! grep -q "reload refused" "$TMP/rel.log" && echo "reload ok"
    ASAN_OPTIONS=detect_leaks=0 timeout 10 "$SCATTERCTL" stop >/dev/null 2>&1 && echo "stop sent"
    rc=124; for i in $(seq 1 150); do kill -0 $d 2>/dev/null || break; sleep 0.1; done
    wait $d; echo "exit $?"
    echo "left $(ls /run/scatter | tr "\n" " ")"
  ' >"$TMP/rel.res" 2>&1 || rc=$?
  sed 's/^/# /' "$TMP/rel.res"
  expect_eq "runtime dir /run/scatter (root's 0750, as systemd makes it) given to nobody" "$(awk '$1 == "dir" {print $2}' "$TMP/rel.res")" "nobody:nogroup:750"
  expect_eq "  socket nobody's, pid file root's" "$(awk '$1 == "sock" {print $2, $3, $4}' "$TMP/rel.res")" "nobody pid root"
  check "  root's scatterctl status by the default socket" grep -qx "status ok" "$TMP/rel.res"
  check "  a reload with relative paths is accepted after the switch" grep -qx "reload ok" "$TMP/rel.res"
  check "  root's scatterctl stop by the default pid file" grep -qx "stop sent" "$TMP/rel.res"
  expect_eq "  exit 0, socket and pid file removed" "$(grep -E '^(exit|left)' "$TMP/rel.res" | tr '\n' ' ')" "exit 0 left  "
  [ "$(grep -c . "$TMP/rel.res")" -gt 3 ] || { cat "$TMP/rel.out" "$TMP/rel.log" 2>/dev/null | tail -20; }
else
  echo "# no mount namespace here (unshare -m failed): the /run/scatter case is not run"
fi

# errors: unknown user / group (also --check), a state directory nobody cannot write, and a
# non-root start asking for another user
bad() { # bad NAME LINE... -> $TMP/bad.ini: the good config with these lines instead of user/group
  grep -v '^user = \|^group = ' "$TMP/scatter.ini" >"$TMP/bad.ini"
  local l; for l in "$@"; do sed -i "s|^\[scatter\]$|[scatter]\n$l|" "$TMP/bad.ini"; done
  chmod 0644 "$TMP/bad.ini"
}
bad 'user = "no-such-user-33"'
rc=0; out=$("$SCATTERD" --check -c "$TMP/bad.ini" 2>&1) || rc=$?
expect_eq "unknown user: --check exit 2" "$rc" 2
check "  the message names the key and value" grep -q "\[scatter\] user = 'no-such-user-33': no such user" <<<"$out"
bad 'user = "nobody"' 'group = "no-such-group-33"'
rc=0; out=$("$SCATTERD" -f -c "$TMP/bad.ini" 2>&1) || rc=$?
expect_eq "unknown group: start exit 2" "$rc" 2
check "  the message names the key and value" grep -q "\[scatter\] group = 'no-such-group-33': no such group" <<<"$out"
bad
rc=0; out=$("$SCATTERD" --check -c "$TMP/bad.ini" --user nobody:no-such-group-33 2>&1) || rc=$?
expect_eq "--user USER:GROUP overrides the keys (unknown group: exit 2)" "$rc" 2
check "  the message names the group" grep -q "group = 'no-such-group-33': no such group" <<<"$out"
bad 'user = "nobody"' 'http_listen = "127.2.33.2:80"'
sed -i '0,/^http_listen = "127.2.33.2:8118"$/{//d}' "$TMP/bad.ini"
rc=0; out=$("$SCATTERD" -f -c "$TMP/bad.ini" 2>&1) || rc=$?
expect_eq "http_listen on port 80 with user = nobody: exit 2" "$rc" 2
check "  the message names http_listen and the 1024 limit" grep -q "http_listen = '127.2.33.2:80': the workers bind it as user 'nobody', who cannot bind a port below 1024" <<<"$out"
bad 'user = "root"'
rc=0; out=$(setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups "$SCATTERD" -f -c "$TMP/bad.ini" 2>&1) || rc=$?
expect_eq "non-root start with user = root: exit 2" "$rc" 2
check "  the message says only root can switch" grep -q "user = 'root': only root can switch users" <<<"$out"
install -d -m 0755 "$TMP/rootstate"
bad 'user = "nobody"' "state_file = \"$TMP/rootstate/s.json\""
sed -i '0,/^state_file = .*state.json"$/{//d}' "$TMP/bad.ini"
rc=0; out=$(timeout 20 "$SCATTERD" -f -c "$TMP/bad.ini" 2>&1) || rc=$?
[ -f "$LOG" ] && out="$out $(tail -n 5 "$LOG")"
expect_eq "state_file in a directory nobody cannot write: exit 1" "$rc" 1
check "  the message names state_file and the directory" grep -q "state_file = '$TMP/rootstate/s.json': its directory $TMP/rootstate is not writable by uid $NOBODY" <<<"$out"
finish
