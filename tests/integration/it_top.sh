#!/usr/bin/env bash
# it_top — scatterctl top on a real terminal: tmux (a private server, detached sessions of a
# fixed size) runs it against scatterd and the farm while tasks run:
#  - the pane shows the header, the pool against its capacity, and a row per target host with
#    its closed circuit and 20 healthy proxies; the completed-task count changes between two
#    captures 2 s apart; it draws on the alternate screen with the cursor hidden;
#  - a resized window (SIGWINCH) is redrawn at once within the new width, footer on the last row;
#  - Ctrl-Z gives the terminal back and stops top; SIGCONT takes it again and redraws;
#  - q quits with exit 0, Ctrl-C too; after each the terminal modes are those before (stty -g),
#    the main screen is back and the cursor shown;
#  - stopping the daemon under a running top: "lost the daemon", exit 3, terminal restored;
#  - stdout not a terminal: plain frames with no escape codes.
# The tmux server is killed by its pid at the end.
source "$(dirname "$0")/lib.sh"
it_init 36
command -v tmux >/dev/null || { echo "tmux is required (bash scripts/deps.sh)" >&2; exit 1; }
farm_up --proxies 20 --mix "good=100" --seed 36 --interval-ms 500 --urls 400
write_ini "$FARM_DIR/proxies.txt" 500
daemon_up

TS="$TMP/tmux.sock"
tm() { tmux -S "$TS" "$@"; }
# top runs in a pane through this wrapper: terminal modes before and after, exit status, stderr
# (Ctrl-C and Ctrl-Z go to the whole foreground group: the wrapper catches them so it survives
# to record top's status; a caught signal is default again in top after exec)
cat >"$TMP/run_top.sh" <<EOF2
#!/bin/bash
trap : INT TSTP
n=\$1; shift
stty -g >"$TMP/\$n.before"
"$SCATTERCTL" -s "$SOCK" top "\$@" 2>"$TMP/\$n.err"
echo \$? >"$TMP/\$n.rc"
stty -g >"$TMP/\$n.after"
printf 'top ended\n'
exec sleep 600
EOF2
chmod +x "$TMP/run_top.sh"
start_top() { # start_top NAME [OPTIONS] — a detached 100x30 session running top
  tm new-session -d -s "$1" -x 100 -y 30 "$TMP/run_top.sh $*"
}
# wait_for NAME PATTERN — until the pane shows PATTERN (10 s)
wait_for() {
  local i; for i in $(seq 1 100); do tm capture-pane -p -t "$1" | grep -q -- "$2" && return 0; sleep 0.1; done
  return 1
}
wait_rc() { local i; for i in $(seq 1 100); do [ -s "$TMP/$1.rc" ] && return 0; sleep 0.1; done; return 1; }
restored() { # restored NAME — the pane is back to its state before top
  expect_eq "$1: terminal modes as before (stty -g)" "$(cat "$TMP/$1.after")" "$(cat "$TMP/$1.before")"
  expect_eq "$1: main screen back" "$(tm display -p -t "$1" '#{alternate_on}')" 0
  expect_eq "$1: cursor shown" "$(tm display -p -t "$1" '#{cursor_flag}')" 1
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-}"
start_top A
TPID=$(tm display -p '#{pid}')
EXTRA_PIDS+=("$TPID")
echo "# tmux server pid $TPID"
check "top draws its header" wait_for A "^scatterd "
ctl fetch -q -i "$FARM_DIR/urls.txt" --jsonl /dev/null &
FETCH=$!
EXTRA_PIDS+=("$FETCH")
sleep 2
tm capture-pane -p -t A >"$TMP/cap1"
sleep 2
tm capture-pane -p -t A >"$TMP/cap2"
sed 's/^/# cap2: /' "$TMP/cap2" | head -12
check "header line" grep -q "^scatterd .* up .* workers 2" "$TMP/cap2"
check "pool against the daemon's capacity" grep -Eq "^pool +[0-9]+ / [0-9]+ tasks" "$TMP/cap2"
check "table header" grep -Eq "^HOST +CIRCUIT +HEALTHY +COOLING +DEAD" "$TMP/cap2"
check "a row for $T1: closed circuit, 20 healthy" grep -Eq "^$T1 +closed +20 +0 +0 " "$TMP/cap2"
check "a row for $T2" grep -Eq "^$T2 +closed " "$TMP/cap2"
c1=$(grep -Eo '[0-9]+ completed' "$TMP/cap1" | cut -d' ' -f1)
c2=$(grep -Eo '[0-9]+ completed' "$TMP/cap2" | cut -d' ' -f1)
echo "# completed: $c1 then $c2"
check "completed tasks grew between two captures ($c1 -> $c2)" test "${c2:-0}" -gt "${c1:-0}"
expect_eq "alternate screen while running" "$(tm display -p -t A '#{alternate_on}')" 1
expect_eq "cursor hidden while running" "$(tm display -p -t A '#{cursor_flag}')" 0

tm send-keys -t A q
check "q: top exits" wait_rc A
expect_eq "q: exit status" "$(cat "$TMP/A.rc")" 0
check "q: nothing on stderr" test ! -s "$TMP/A.err"
restored A
wait "$FETCH" || true

# SIGWINCH: redrawn at once in the new size (refreshes 30 s apart: only the signal redraws)
start_top B -d 30
check "B: top draws" wait_for B "^HOST"
tm resize-window -t B -x 60 -y 16
sleep 0.5
tm capture-pane -p -t B >"$TMP/cap3"
sed 's/^/# resized: /' "$TMP/cap3"
expect_eq "resized: no line wider than 60" "$(awk '{ if (length($0) > m) m = length($0) } END { print (m <= 60) }' "$TMP/cap3")" 1
expect_eq "resized: the footer on row 16" "$(sed -n 16p "$TMP/cap3" | grep -c '^q: quit')" 1
check "resized: the header still on row 1" grep -q "^scatterd " <(head -n 1 "$TMP/cap3")

# Ctrl-Z hands the terminal back as it was; SIGCONT takes it again and redraws
tm send-keys -t B C-z
for i in $(seq 1 50); do [ "$(tm display -p -t B '#{alternate_on}')" = 0 ] && break; sleep 0.1; done
expect_eq "Ctrl-Z: main screen back" "$(tm display -p -t B '#{alternate_on}')" 0
TOP_B=$(pgrep -P "$(tm display -p -t B '#{pane_pid}')" | head -n 1)
expect_eq "Ctrl-Z: top (pid $TOP_B) stopped" "$(awk '{print $3}' "/proc/$TOP_B/stat")" T
expect_eq "Ctrl-Z: cursor shown" "$(tm display -p -t B '#{cursor_flag}')" 1
kill -CONT "$TOP_B"
check "SIGCONT: top draws again" wait_for B "^HOST"
expect_eq "SIGCONT: alternate screen again" "$(tm display -p -t B '#{alternate_on}')" 1

# Ctrl-C
tm send-keys -t B C-c
check "Ctrl-C: top exits" wait_rc B
expect_eq "Ctrl-C: exit status" "$(cat "$TMP/B.rc")" 0
restored B

# not a terminal: plain frames
ctl top -n 2 -d 0.2 >"$TMP/plain.out"; rc=$?
expect_eq "piped: exit 0" "$rc" 0
expect_eq "piped: two frames" "$(grep -c '^scatterd ' "$TMP/plain.out")" 2
check "piped: host rows" grep -Eq "^$T1 +closed" "$TMP/plain.out"
check "piped: no escape codes" bash -c "! grep -q $'\\033' '$TMP/plain.out'"

# the daemon goes away under a running top
start_top C
check "C: top draws" wait_for C "^HOST"
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
check "daemon gone: top exits (no hang)" wait_rc C
expect_eq "daemon gone: exit status 3" "$(cat "$TMP/C.rc")" 3
check "daemon gone: it says so" grep -q "scatterctl top: lost the daemon" "$TMP/C.err"
restored C

kill "$TPID"
for i in $(seq 1 50); do
  { kill -0 "$TPID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$TPID/stat" 2>/dev/null)" != Z ]; } || break
  sleep 0.1
done
check "tmux server stopped" bash -c "! kill -0 $TPID 2>/dev/null || [ \"\$(awk '{print \$3}' /proc/$TPID/stat)\" = Z ]"
EXTRA_PIDS=()
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out" "$TMP/A.err" "$TMP/B.err" "$TMP/C.err"
finish
