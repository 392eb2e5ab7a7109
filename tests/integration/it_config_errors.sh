#!/usr/bin/env bash
# it_config_errors — what a user sees when the configuration or the socket is wrong:
#   (a) an unknown key, (b) a bad value, (c) an unquoted value containing ';': exit 2 and a
#       message naming the file, the line, the key (and the value); no leak report on that path
#   (d) --check on a good file (and on `--print-default-config` output): exit 0
#   (e) a live socket: a second scatterd on the same socket_path exits 1 saying "in use" (in the
#       foreground and when detaching), and the first keeps serving with its pid file intact
#   (f) a stale socket file (its listener is gone) is replaced and the daemon starts;
#       a socket_path that is a regular file is left alone (exit 1)
#   (g) --help mentions every option, --version prints the project version
source "$(dirname "$0")/lib.sh"
it_init 9

# no leak report in these runs unless a check asks for it: exit statuses are checked on their own
NOLEAK="detect_leaks=0"
run_d() { # run_d NAME ARGS... — scatterd with stdout/stderr in $TMP/NAME.{out,err}; sets RC
  local name="$1"; shift
  RC=0
  ASAN_OPTIONS="${RUN_ASAN-$NOLEAK}" timeout 20 "$SCATTERD" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null || RC=$?
}
has() { grep -qF -- "$2" "$1"; } # has FILE TEXT
show() { echo "# $1: $(head -c 300 "$TMP/$1.err" | head -n 2 | tr '\n' ' ')"; }

# a config with one proxy line; the proxy need not exist for these tests
echo "socks5://$PROXY_IP:$PBASE" >"$TMP/p.txt"
good_ini() { # good_ini FILE [extra [scatter] lines...]
  local f="$1"; shift
  {
    echo "[scatter]"
    echo "sources = \"local=$TMP/p.txt\""
    echo "allow_private_proxies = true"
    echo "socket_path = \"$SOCK\""
    echo "pid_file = \"$TMP/scatterd.pid\""
    echo "log_file = \"$TMP/scatterd.log\""
    echo "workers = 2"
    echo "http_listen = \"$NET.2:8118\""      # this slot's own addresses: the defaults
    echo "metrics_listen = \"$NET.3:9118\""   # (127.0.0.1:8118/9118) are shared by all tests
    local l; for l in "$@"; do echo "$l"; done
    echo "[rate_limit]"
    echo "interval = 200"
  } >"$f"
}

# (a) unknown key on line 3
mkdir -p "$TMP/a"
printf '[scatter]\nworkers = 2\nrace_widht = 3\n' >"$TMP/a/scatter.ini"
run_d a -c "$TMP/a/scatter.ini" -f
show a
expect_eq "(a) unknown key: exit status" "$RC" 2
check "(a) message names file and line (scatter.ini:3:)" has "$TMP/a.err" "scatter.ini:3:"
check "(a) message names the key 'race_widht'" has "$TMP/a.err" "race_widht"
check "(a) message says unknown key" has "$TMP/a.err" "unknown key"
check "(a) nothing was started: no socket file" test ! -e "$SOCK"

# (b) bad value on line 4
printf '[scatter]\nworkers = 2\n\nrace_width = banana\n' >"$TMP/b.ini"
run_d b -c "$TMP/b.ini" --check
show b
expect_eq "(b) bad value: exit status" "$RC" 2
check "(b) message names the line (b.ini:4:)" has "$TMP/b.err" "b.ini:4:"
check "(b) message names the key" has "$TMP/b.err" "race_width"
check "(b) message names the value" has "$TMP/b.err" "banana"
# a bad value in [rate_limit] and in a [host:...] section, for the section part of the message
printf '[scatter]\nworkers = 2\n[rate_limit]\ninterval = 5 parsecs\n' >"$TMP/b2.ini"
run_d b2 -c "$TMP/b2.ini" --check
show b2
expect_eq "(b) bad interval in [rate_limit]: exit status" "$RC" 2
check "(b) [rate_limit] message names line, key and value" \
  bash -c "grep -qF 'b2.ini:4:' '$TMP/b2.err' && grep -qF interval '$TMP/b2.err' && grep -qF parsecs '$TMP/b2.err'"
printf '[scatter]\nworkers = 2\n[host:127.0.0.1:80]\nmax_attempts = -3\n' >"$TMP/b3.ini"
run_d b3 -c "$TMP/b3.ini" --check
show b3
expect_eq "(b) bad value in a [host:...] section: exit status" "$RC" 2
check "(b) [host:] message names line, key and value" \
  bash -c "grep -qF 'b3.ini:4:' '$TMP/b3.err' && grep -qF max_attempts '$TMP/b3.err' && grep -qF -- '-3' '$TMP/b3.err'"

# (c) unquoted ';' in a value
printf '[scatter]\nworkers = 2\nblocked_body = captcha;denied\n' >"$TMP/c.ini"
run_d c -c "$TMP/c.ini" --check
show c
expect_eq "(c) unquoted ';': exit status" "$RC" 2
check "(c) message names line and key" bash -c "grep -qF 'c.ini:3:' '$TMP/c.err' && grep -qF blocked_body '$TMP/c.err'"
check "(c) message says to quote the value" grep -qi "quote" "$TMP/c.err"
printf '[scatter]\nworkers = 2\nblocked_body = "captcha;denied"\n' >"$TMP/c2.ini"
run_d c2 -c "$TMP/c2.ini" --check
expect_eq "(c) the same value in double quotes is accepted" "$RC" 0

# the error paths must exit cleanly under the sanitizers too (a leak report turns exit 2 into 1)
RUN_ASAN="" run_d aleak -c "$TMP/a/scatter.ini" -f
expect_eq "(a) unknown key, leak detection on: exit status still 2" "$RC" 2
if grep -q LeakSanitizer "$TMP/aleak.err"; then
  fail "(a) leak report on the config-error path: $(grep -m1 -A3 'Direct leak' "$TMP/aleak.err" | tr '\n' ' ' | tr -s ' ')"
else ok "(a) no leak report on the config-error path"; fi

# (d) --check on good files
good_ini "$TMP/good.ini"
run_d d --check -c "$TMP/good.ini"
expect_eq "(d) --check on a good file: exit status" "$RC" 0
echo "# (d): $(cat "$TMP/d.out")"
check "(d) --check started nothing (no socket, no pid file)" test ! -e "$SOCK" -a ! -e "$TMP/scatterd.pid"
run_d pdc --print-default-config
expect_eq "(d) --print-default-config: exit status" "$RC" 0
cp "$TMP/pdc.out" "$TMP/default.ini"
run_d d2 --check -c "$TMP/default.ini"
expect_eq "(d) --check on the --print-default-config output" "$RC" 0
if cmp -s "$TMP/pdc.out" "$SCATTER_TOP/scatter.ini"; then ok "(d) shipped scatter.ini == --print-default-config"
else fail "(d) shipped scatter.ini differs from --print-default-config: $(diff "$SCATTER_TOP/scatter.ini" "$TMP/pdc.out" | head -n 6 | tr '\n' ' ')"; fi

# (e) a live socket
good_ini "$TMP/scatter.ini"
daemon_up
first_pid="$DPID"
ctl status >/dev/null && ok "(e) first daemon answers status" || fail "(e) first daemon answers status"
# foreground, same ini (logs to the log file) and a copy logging to stderr
run_d e1 -c "$TMP/scatter.ini" -f
expect_eq "(e) second scatterd -f on the same socket: exit status" "$RC" 1
check "(e) its log says the socket is in use" grep -q "in use" "$TMP/scatterd.log"
sed 's|^log_file = .*|log_file = ""|' "$TMP/scatter.ini" >"$TMP/e2.ini"
run_d e2 -c "$TMP/e2.ini" -f
show e2
expect_eq "(e) second scatterd -f logging to stderr: exit status" "$RC" 1
check "(e) its stderr says in use" grep -q "in use" "$TMP/e2.err"
# detaching (the default mode): the start-up failure must still show in the exit status
run_d e3 -c "$TMP/e2.ini"
sleep 0.5
show e3
expect_eq "(e) second scatterd without -f (detaching): exit status" "$RC" 1
ctl status --json >/dev/null && ok "(e) first daemon still answers status" || fail "(e) first daemon still answers status"
expect_eq "(e) pid file still holds the first daemon's pid" "$(cat "$TMP/scatterd.pid" 2>/dev/null)" "$first_pid"
check "(e) socket file still there" test -S "$SOCK"
check "(e) first daemon still running" kill -0 "$first_pid"
daemon_stop
expect_eq "(e) first daemon exits 0 on SIGTERM" "$DRC" 0
check "(e) socket file removed at stop" test ! -e "$SOCK"

# (f) a stale socket: bind a Unix socket, then kill its owner without removing the file
if command -v python3 >/dev/null; then
  python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)" "$SOCK"
elif command -v socat >/dev/null; then
  socat "UNIX-LISTEN:$SOCK" /dev/null & sp=$!
  for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
  kill -KILL "$sp"; wait "$sp" 2>/dev/null || true
fi
if [ -S "$SOCK" ]; then
  check "(f) stale socket file present and nobody listening" bash -c "! timeout 2 socat -u OPEN:/dev/null UNIX-CONNECT:'$SOCK' 2>/dev/null"
  : >"$TMP/scatterd.log"
  daemon_up
  ctl status --json >/dev/null && ok "(f) daemon started over the stale socket and answers status" || fail "(f) daemon started over the stale socket and answers status"
  check "(f) 'replacing stale socket' logged" grep -q "stale socket" "$TMP/scatterd.log"
  daemon_stop
  expect_eq "(f) exits 0 on SIGTERM" "$DRC" 0
else
  echo "# (f) skipped: neither python3 nor socat to make a stale socket"
fi
# socket_path is a regular file: not ours, never removed
echo "precious" >"$SOCK"
run_d f2 -c "$TMP/e2.ini" -f
show f2
expect_eq "(f) socket_path is a regular file: exit status" "$RC" 1
expect_eq "(f) the regular file is untouched" "$(cat "$SOCK")" precious
rm -f "$SOCK"

# (g) --help and --version
run_d help --help
expect_eq "(g) --help: exit status" "$RC" 0
missing=""
for o in -c --config -w --workers -f --foreground -l --log-level --check --print-config \
  --print-default-config -h --help -V --version; do
  grep -qE -- "(^|[ ,])$o([ ,=]|$)" "$TMP/help.out" || missing="$missing $o"
done
# and every long option the program declares (struct option table in master/main.c)
if [ -f "$SCATTER_TOP/master/main.c" ]; then
  for o in $(grep -oE '\{"[a-z-]+", *(no|required|optional)_argument' "$SCATTER_TOP/master/main.c" | sed -E 's/\{"([a-z-]+)".*/\1/' | sort -u); do
    grep -qE -- "--$o([ ,=]|$)" "$TMP/help.out" || missing="$missing --$o"
  done
fi
expect_eq "(g) --help mentions every option" "${missing:-none}" none
check "(g) --help describes SIGHUP and SIGTERM" bash -c "grep -q SIGHUP '$TMP/help.out' && grep -q SIGTERM '$TMP/help.out'"
run_d ver --version
expect_eq "(g) --version: exit status" "$RC" 0
pver=$(sed -nE 's/^project\(scatter VERSION ([0-9.]+).*/\1/p' "$SCATTER_TOP/CMakeLists.txt")
expect_eq "(g) --version prints the project version" "$(cat "$TMP/ver.out")" "scatterd $pver"
run_d nocfg -f
expect_eq "(g) no -c: exit status 2" "$RC" 2
run_d badopt -c "$TMP/good.ini" --frobnicate
expect_eq "(g) unknown option: exit status 2" "$RC" 2
finish
