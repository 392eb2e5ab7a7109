#!/usr/bin/env bash
# it_local_hijack — another local user cannot hijack the daemon's files, socket or signals:
#   (a) a symlink planted at <pid_file>.tmp: its target is not overwritten; a temp file
#       pre-created (and owned) by another user does not leave the pid file theirs
#   (b) scatterctl stop refuses a pidfile pointing at a process that is not scatterd (a sleep
#       we started survives), a pidfile owned by another user, a symlinked pidfile, a
#       world-writable one; a real stop still works
#   (c) scatterctl refuses a socket served by another uid before sending a byte (socat run
#       as nobody records what it receives), naming the uid and the path (exit 3)
#   (d) defaults: as nobody with XDG_RUNTIME_DIR set, scatterd creates $XDG_RUNTIME_DIR/scatter
#       (0750) and puts socket and pid file there, scatterctl finds them with no option and
#       stops it; root's scatterctl refuses that daemon's socket (uid 65534); a runtime dir
#       that is a symlink or world-writable is refused (exit 1); without XDG_RUNTIME_DIR a
#       non-root --check says so (exit 2), and so does scatterctl (exit 3)
# Needs root (to plant files as another user and run processes as nobody).
source "$(dirname "$0")/lib.sh"
it_init 15

if [ "$(id -u)" != 0 ]; then echo "# needs root to act as another user"; exit 77; fi
command -v setpriv >/dev/null || { echo "setpriv (util-linux) is required" >&2; exit 1; }
command -v socat >/dev/null || { echo "socat is required (bash scripts/deps.sh)" >&2; exit 1; }
NOBODY=65534
AS_NOBODY=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups)
# a function, not for `&`: $! would be a subshell's pid, and the EXIT trap would miss the child
as_nobody() { "${AS_NOBODY[@]}" "$@"; }
# nobody must be able to reach its own directories under $TMP (created 0700 by mktemp)
chmod 0711 "$TMP"

echo "socks5://$PROXY_IP:$PBASE" >"$TMP/p.txt"
write_ini "$TMP/p.txt" 200
PIDF="$TMP/scatterd.pid"

# ---- (a) the pid file ----
echo "precious" >"$TMP/victim"
ln -s "$TMP/victim" "$PIDF.tmp"
daemon_up
expect_eq "(a) symlink target at pid_file.tmp not overwritten" "$(cat "$TMP/victim")" "precious"
check "(a) pid file is a regular file" test -f "$PIDF" -a ! -L "$PIDF"
expect_eq "(a) pid file holds the daemon's pid" "$(cat "$PIDF" 2>/dev/null)" "$DPID"
check "(a) no temp file left" test ! -e "$PIDF.tmp"
expect_eq "(a) pid file mode and owner" "$(stat -c '%a %u' "$PIDF")" "640 0"
daemon_stop
expect_eq "(a) daemon stopped cleanly" "$DRC" 0

# a temp file pre-created by another user, writable by them
rm -f "$PIDF" "$PIDF.tmp"
touch "$PIDF.tmp"; chown $NOBODY:$NOBODY "$PIDF.tmp"; chmod 0666 "$PIDF.tmp"
daemon_up
expect_eq "(a) pre-created temp: pid file owned by root, 0640" "$(stat -c '%u %a' "$PIDF")" "0 640"
expect_eq "(a) pre-created temp: pid file holds the daemon's pid" "$(cat "$PIDF" 2>/dev/null)" "$DPID"

# ---- (b) scatterctl stop only signals scatterd ----
sleep 60 &
SLEEPER=$!
EXTRA_PIDS+=("$SLEEPER")
stop_with() { # stop_with NAME PIDFILE — scatterctl stop; RC, output in $TMP/NAME.err
  RC=0
  ctl stop --pidfile "$2" >"$TMP/$1.out" 2>"$TMP/$1.err" || RC=$?
  echo "# $1: $(head -c 300 "$TMP/$1.err" | tr '\n' ' ')"
}
echo "$SLEEPER" >"$TMP/sleep.pid"; chmod 0640 "$TMP/sleep.pid"
stop_with b1 "$TMP/sleep.pid"
expect_eq "(b) pidfile of a sleep: refused, exit 1" "$RC" 1
check "(b) message says it is not scatterd" grep -q "'sleep', not scatterd" "$TMP/b1.err"
check "(b) the sleep is still alive" kill -0 "$SLEEPER"

echo "$DPID" >"$TMP/theirs.pid"; chown $NOBODY:$NOBODY "$TMP/theirs.pid"; chmod 0644 "$TMP/theirs.pid"
stop_with b2 "$TMP/theirs.pid"
expect_eq "(b) pidfile owned by uid $NOBODY: refused, exit 1" "$RC" 1
check "(b) message names the owner uid" grep -q "owned by uid $NOBODY" "$TMP/b2.err"

ln -s "$PIDF" "$TMP/link.pid"
stop_with b3 "$TMP/link.pid"
expect_eq "(b) symlinked pidfile: refused, exit 1" "$RC" 1
check "(b) message says symlink" grep -q "symlink" "$TMP/b3.err"

echo "$DPID" >"$TMP/open.pid"; chmod 0666 "$TMP/open.pid"
stop_with b4 "$TMP/open.pid"
expect_eq "(b) world-writable pidfile: refused, exit 1" "$RC" 1
check "(b) the daemon survived all four" kill -0 "$DPID"

stop_with b5 "$PIDF"
expect_eq "(b) the daemon's own pidfile: stop sent, exit 0" "$RC" 0
for i in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
check "(b) the daemon stopped" sh -c "! kill -0 $DPID 2>/dev/null"
wait "$DPID" 2>/dev/null || true
DPID=""

# ---- (c) a socket served by another uid ----
mkdir -m 0755 "$TMP/foreign"; chown $NOBODY:$NOBODY "$TMP/foreign"
FSOCK="$TMP/foreign/scatter.sock"
"${AS_NOBODY[@]}" socat -u UNIX-LISTEN:"$FSOCK",fork OPEN:"$TMP/foreign/received",creat,append 2>/dev/null &
EXTRA_PIDS+=("$!")
for i in $(seq 1 50); do [ -S "$FSOCK" ] && break; sleep 0.1; done
RC=0
ASAN_OPTIONS=detect_leaks=0 timeout 20 "$SCATTERCTL" -s "$FSOCK" fetch --jsonl "$TMP/c.jsonl" \
  "http://$T1/item?token=SECRET" >"$TMP/c.out" 2>"$TMP/c.err" || RC=$?
echo "# c: $(head -c 300 "$TMP/c.err" | tr '\n' ' ')"
expect_eq "(c) fetch through a foreign socket: exit 3 (cannot connect)" "$RC" 3
check "(c) message names uid $NOBODY" grep -q "uid $NOBODY" "$TMP/c.err"
check "(c) message names the socket path" grep -qF "$FSOCK" "$TMP/c.err"
sleep 0.3
expect_eq "(c) the foreign server received 0 bytes" "$(stat -c %s "$TMP/foreign/received" 2>/dev/null || echo 0)" 0

# ---- (d) default paths for a non-root user ----
XDG="$TMP/xdg"
mkdir -m 0700 "$XDG"; chown $NOBODY:$NOBODY "$XDG"
{
  echo "[scatter]"
  echo "sources = \"local=$TMP/p.txt\""
  echo "allow_private_proxies = true"
  echo "workers = 1"
  echo "log_file = \"$XDG/scatterd.log\""
  echo "http_listen = \"$NET.2:8118\""    # the socket and pid file are the defaults under test;
  echo "metrics_listen = \"$NET.3:9118\"" # the TCP listeners stay on this slot's addresses
  echo "[rate_limit]"
  echo "interval = 200"
} >"$TMP/defaults.ini"
chmod 0644 "$TMP/defaults.ini" "$TMP/p.txt"
RC=0
as_nobody env XDG_RUNTIME_DIR="$XDG" ASAN_OPTIONS=detect_leaks=0 "$SCATTERD" -c "$TMP/defaults.ini" --print-config \
  >"$TMP/d0.out" 2>&1 || RC=$?
check "(d) --print-config shows the socket in \$XDG_RUNTIME_DIR/scatter" grep -qF "socket_path = \"$XDG/scatter/scatter.sock\"" "$TMP/d0.out"
check "(d) and the pid file there" grep -qF "pid_file = \"$XDG/scatter/scatterd.pid\"" "$TMP/d0.out"

"${AS_NOBODY[@]}" env XDG_RUNTIME_DIR="$XDG" ASAN_OPTIONS=detect_leaks=0 "$SCATTERD" -c "$TMP/defaults.ini" -f \
  >"$TMP/d.out" 2>&1 </dev/null &
DPID=$!
for i in $(seq 1 100); do [ -S "$XDG/scatter/scatter.sock" ] && [ -s "$XDG/scatter/scatterd.pid" ] && break; sleep 0.1; done
expect_eq "(d) runtime dir created 0750, owned by nobody" "$(stat -c '%a %u' "$XDG/scatter" 2>/dev/null)" "750 $NOBODY"
check "(d) socket there" test -S "$XDG/scatter/scatter.sock"
expect_eq "(d) pid file there" "$(cat "$XDG/scatter/scatterd.pid" 2>/dev/null)" "$DPID"
RC=0
as_nobody env XDG_RUNTIME_DIR="$XDG" ASAN_OPTIONS=detect_leaks=0 timeout 20 "$SCATTERCTL" status --json \
  >"$TMP/d1.out" 2>"$TMP/d1.err" || RC=$?
expect_eq "(d) scatterctl as nobody finds the default socket" "$RC" 0
RC=0
ASAN_OPTIONS=detect_leaks=0 timeout 20 "$SCATTERCTL" -s "$XDG/scatter/scatter.sock" status --json \
  >"$TMP/d2.out" 2>"$TMP/d2.err" || RC=$?
echo "# d2: $(head -c 300 "$TMP/d2.err" | tr '\n' ' ')"
expect_eq "(d) root's scatterctl refuses nobody's daemon: exit 3" "$RC" 3
check "(d) naming uid $NOBODY" grep -q "uid $NOBODY" "$TMP/d2.err"
RC=0
as_nobody env XDG_RUNTIME_DIR="$XDG" ASAN_OPTIONS=detect_leaks=0 "$SCATTERCTL" stop >"$TMP/d3.out" 2>"$TMP/d3.err" || RC=$?
expect_eq "(d) scatterctl stop as nobody with the default pidfile: exit 0" "$RC" 0
for i in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
check "(d) nobody's daemon stopped" sh -c "! kill -0 $DPID 2>/dev/null"
wait "$DPID" 2>/dev/null || true
DPID=""

start_nobody() { # start_nobody NAME — scatterd as nobody with the defaults; RC, output in $TMP/NAME.out
  RC=0
  as_nobody env XDG_RUNTIME_DIR="$XDG" ASAN_OPTIONS=detect_leaks=0 timeout 20 "$SCATTERD" -c "$TMP/defaults.ini" -f \
    >"$TMP/$1.out" 2>&1 </dev/null || RC=$?
  echo "# $1: $(tail -n 1 "$XDG/scatterd.log" | head -c 300)"
}
rm -rf "$XDG/scatter"
as_nobody mkdir -m 0700 "$XDG/elsewhere"
as_nobody ln -s "$XDG/elsewhere" "$XDG/scatter"
start_nobody d4
expect_eq "(d) runtime dir is a symlink: exit 1" "$RC" 1
check "(d) message says not a directory" grep -q "runtime directory.*not a directory" "$XDG/scatterd.log"
check "(d) nothing created through the symlink" test -z "$(ls -A "$XDG/elsewhere")"
rm -f "$XDG/scatter"
as_nobody mkdir -m 0777 "$XDG/scatter"; chmod 0777 "$XDG/scatter"
start_nobody d5
expect_eq "(d) world-writable runtime dir: exit 1" "$RC" 1
check "(d) message says writable by group or others" grep -q "writable by group or others" "$XDG/scatterd.log"

RC=0
as_nobody env -u XDG_RUNTIME_DIR ASAN_OPTIONS=detect_leaks=0 "$SCATTERD" -c "$TMP/defaults.ini" --check \
  >"$TMP/d6.out" 2>&1 || RC=$?
echo "# d6: $(head -c 300 "$TMP/d6.out" | tr '\n' ' ')"
expect_eq "(d) no XDG_RUNTIME_DIR, non-root, default paths: --check exit 2" "$RC" 2
check "(d) message names the file, the key and XDG_RUNTIME_DIR" \
  grep -qF "defaults.ini: [scatter] socket_path = 'scatter.sock' is relative (the default), but XDG_RUNTIME_DIR is not set" "$TMP/d6.out"
RC=0
as_nobody env -u XDG_RUNTIME_DIR -u SCATTER_SOCKET ASAN_OPTIONS=detect_leaks=0 "$SCATTERCTL" status \
  >"$TMP/d7.out" 2>&1 || RC=$?
expect_eq "(d) scatterctl without XDG_RUNTIME_DIR or -s: exit 3" "$RC" 3
check "(d) scatterctl says XDG_RUNTIME_DIR is not set" grep -q "XDG_RUNTIME_DIR is not set" "$TMP/d7.out"

no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out" "$XDG/scatterd.log" "$TMP/d.out"
finish
