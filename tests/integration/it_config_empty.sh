#!/usr/bin/env bash
# it_config_empty — a config file that says nothing is an error, not "every default":
#   (a) an empty file, a comments-only file, a binary file, a file without [scatter], a
#       [scatter] without keys: --check and a start exit 2 with a message naming the file
#   (b) a running daemon SIGHUPed with an empty, then a binary file keeps its config: the log
#       says the reload was refused (naming the file), and the sources are still in force (a
#       proxy added to the source file is picked up by the next periodic refresh, which an
#       emptied `sources` would not do); a good file reloads again afterwards
source "$(dirname "$0")/lib.sh"
it_init 16

NOLEAK="detect_leaks=0"
run_d() { # run_d NAME ARGS... — scatterd with its output in $TMP/NAME.err; sets RC
  local name="$1"; shift
  RC=0
  ASAN_OPTIONS="$NOLEAK" timeout 20 "$SCATTERD" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null || RC=$?
  echo "# $name: $(head -c 300 "$TMP/$name.err" | head -n 1)"
}
has() { grep -qF -- "$2" "$1"; }

echo "socks5://$PROXY_IP:$PBASE" >"$TMP/p.txt"
write_ini "$TMP/p.txt" 200 "source_refresh_interval = 1"
cp "$TMP/scatter.ini" "$TMP/good.ini"

# ---- (a) files that say nothing ----
: >"$TMP/empty.ini"
printf '; a comment\n\n# another\n' >"$TMP/comments.ini"
# binary: every line starts with a NUL, so a reader that stops at the NUL sees only blank lines
{ head -c 2048 /dev/zero; printf '\n\000\177ELF\002\001 = x\n\000[scatter]\n\000\001\002\n'; } >"$TMP/binary.ini"
printf '[rate_limit]\ninterval = 500\n' >"$TMP/noscatter.ini"
printf '[scatter]\n\n[rate_limit]\n' >"$TMP/nokeys.ini"
for f in empty comments binary noscatter nokeys; do
  run_d "check-$f" -c "$TMP/$f.ini" --check
  expect_eq "(a) $f file: --check exit 2" "$RC" 2
  check "(a) $f file: --check message names the file" has "$TMP/check-$f.err" "$TMP/$f.ini"
  run_d "start-$f" -c "$TMP/$f.ini" -f
  expect_eq "(a) $f file: start exit 2" "$RC" 2
  check "(a) $f file: nothing started (no socket)" test ! -e "$SOCK"
done
check "(a) empty: says no [scatter] section" has "$TMP/check-empty.err" "no [scatter] section"
check "(a) comments only: says no [scatter] section" has "$TMP/check-comments.err" "no [scatter] section"
check "(a) binary: says where the NUL byte is" has "$TMP/check-binary.err" "binary.ini:1: contains a NUL byte"
check "(a) [rate_limit] only: says no [scatter] section" has "$TMP/check-noscatter.err" "no [scatter] section"
check "(a) [scatter] without keys: says no recognised key" has "$TMP/check-nokeys.err" "no recognised key"
run_d check-good -c "$TMP/good.ini" --check
expect_eq "(a) the good file still passes --check" "$RC" 0

# ---- (b) reloads with such files keep the running config ----
daemon_up
total() { status_json | jq -r .proxies.total; }
expect_eq "(b) one proxy at start" "$(total)" 1
nrel() { grep -c -F "$1" "$TMP/scatterd.log" || true; }
wait_log() { # wait_log TEXT N — until TEXT appears N times in the log (<= 10 s)
  local i
  for i in $(seq 1 100); do [ "$(nrel "$1")" -ge "$2" ] && return 0; sleep 0.1; done
  return 1
}
reloaded0=$(nrel "config reloaded")

cp "$TMP/empty.ini" "$TMP/scatter.ini"
kill -HUP "$DPID"
check "(b) empty file: reload refused in the log" wait_log "reload refused, keeping the running config" 1
check "(b) the refusal names the file and the reason" has "$TMP/scatterd.log" "$TMP/scatter.ini: no [scatter] section"
expect_eq "(b) no 'config reloaded' after the empty file" "$(nrel "config reloaded")" "$reloaded0"

cp "$TMP/binary.ini" "$TMP/scatter.ini"
kill -HUP "$DPID"
check "(b) binary file: reload refused too" wait_log "reload refused, keeping the running config" 2
expect_eq "(b) no 'config reloaded' after the binary file" "$(nrel "config reloaded")" "$reloaded0"

# the kept config still has its source: the next periodic refresh (1 s) finds a new proxy
echo "socks5://$PROXY_IP:$((PBASE + 1))" >>"$TMP/p.txt"
n=0
for i in $(seq 1 50); do n=$(total); [ "$n" = 2 ] && break; sleep 0.2; done
expect_eq "(b) sources still in force: a proxy added to the file is loaded" "$n" 2
check "(b) the daemon still serves status" status_json

cp "$TMP/good.ini" "$TMP/scatter.ini"
kill -HUP "$DPID"
check "(b) a good file reloads again" wait_log "config reloaded" $((reloaded0 + 1))

daemon_stop
expect_eq "(b) clean stop" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
