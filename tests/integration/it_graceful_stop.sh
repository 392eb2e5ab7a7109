#!/usr/bin/env bash
# it_graceful_stop — SIGTERM in the middle of a fetch. 400 tasks against a mixed farm (blackhole
# and slow proxies keep attempts in flight for seconds); about 1 s into the fetch scatterd gets
# SIGTERM with shutdown_grace = 3. It must exit 0 within grace + 5 s, the client must get exactly
# one reply per task (ok, or an error such as shutting_down), the targets must see no
# rate-limit violation, and no scatterd process (master or worker) may be left.
source "$(dirname "$0")/lib.sh"
it_init 8

N=400
GRACE=3
farm_up --mix "$MIX" --seed 8 --interval-ms 2000 --urls "$N" --slow-ms 1500-3000
write_ini "$FARM_DIR/proxies.txt" 2000 "shutdown_grace = $GRACE"
daemon_up
workers="$WORKER_PIDS"
check "two workers running ($workers)" test "$(echo $workers | wc -w)" -eq 2

frc_file="$TMP/fetch.rc"
( rc=0; CTL_TIMEOUT=60 ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" >"$TMP/fetch.out" 2>"$TMP/fetch.err" || rc=$?
  echo "$rc" >"$frc_file" ) &
FPID=$!
EXTRA_PIDS+=("$FPID")

# about 1 s into the fetch, once the daemon has started answering (the first dispatch to a host
# waits one interval after start), so some tasks are done and many are queued or in flight
sleep 1.5
for _ in $(seq 1 50); do
  [ "$(wc -l <"$TMP/out.jsonl" 2>/dev/null || echo 0)" -ge 5 ] && break
  sleep 0.1
done
before=$(wc -l <"$TMP/out.jsonl" 2>/dev/null || echo 0)
inflight=$(status_json | jq -r '.inflight // .attempts_inflight // .tasks.inflight // empty' 2>/dev/null || true)
echo "# SIGTERM with $before/$N results back${inflight:+, $inflight attempts in flight}"
check "SIGTERM lands mid-fetch ($before of $N done)" test "$before" -lt "$N"
t0=$(date +%s%N)
daemon_stop
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
expect_le "scatterd gone within shutdown_grace + 5 s (ms)" "$ms" $(((GRACE + 5) * 1000))

# the client finishes on its own once every task has its reply
for _ in $(seq 1 100); do [ -f "$frc_file" ] && break; sleep 0.1; done
check "scatterctl fetch finished within 10 s of the daemon's exit" test -f "$frc_file"
frc=$(cat "$frc_file" 2>/dev/null || echo none)
echo "# fetch exit status $frc; $(tail -n 2 "$TMP/fetch.err" | tr '\n' ' ')"
check "fetch exit status is 0 or 1, not a crash or a timeout ($frc)" test "$frc" = 0 -o "$frc" = 1

lines=$(wc -l <"$TMP/out.jsonl" 2>/dev/null || echo 0)
expect_eq "one reply line per task" "$lines" "$N"
expect_eq "every task number 1..$N appears exactly once" \
  "$(jq -r .n "$TMP/out.jsonl" | sort -n | uniq | awk -v n="$N" '$1 >= 1 && $1 <= n' | wc -l)" "$N"
bad=$(jq -c 'select((.ok == true and .status == null) or (.ok == false and (.error == null or .error == "")))' "$TMP/out.jsonl" | wc -l)
expect_eq "each reply is ok with a status, or an error with a code" "$bad" 0
okn=$(jq -r 'select(.ok == true) | .n' "$TMP/out.jsonl" | wc -l)
echo "# replies: $okn ok; errors: $(jq -r 'select(.ok == false) | .error' "$TMP/out.jsonl" | sort | uniq -c | tr '\n' ' ' | tr -s ' ')"
sd=$(jq -r 'select(.ok == false) | .error' "$TMP/out.jsonl" | grep -c -E '^(shutting_down|cancelled)$' || true)
expect_ge "tasks cut short by the stop answered shutting_down/cancelled" "$sd" 1
other=$(jq -r 'select(.ok == false) | .error' "$TMP/out.jsonl" | grep -v -c -E '^(shutting_down|cancelled)$' || true)
expect_eq "no other error code" "$other" 0
expect_ge "tasks finished before or during the grace period" "$okn" "$before"

expect_eq "zero violations at target 1" "$(fstats "$T1" .violations)" 0
expect_eq "zero violations at target 2" "$(fstats "$T2" .violations)" 0

left=""
for p in $workers; do
  if [ -d "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then left="$left $p"; fi
done
expect_eq "no worker left running" "${left:-none}" none
grep -q "stopping:" "$TMP/scatterd.log" && ok "'stopping' logged" || fail "no 'stopping' line in the log"
grep -q "stopped" "$TMP/scatterd.log" && ok "'stopped' logged" || fail "no 'stopped' line in the log"
if grep -q "killing them" "$TMP/scatterd.log"; then fail "master had to SIGKILL workers after the grace period"; else ok "workers stopped without SIGKILL"; fi
check "pid file removed" test ! -e "$TMP/scatterd.pid"
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
