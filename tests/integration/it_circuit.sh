#!/usr/bin/env bash
# it_circuit — the per-host circuit breaker against the farm. Target 2 is switched to answer
# 503 to everything: its circuit must open within the threshold (a bounded number of requests
# reach it), new tasks for it are refused with circuit_open at once, and a probe closes the
# circuit after the target recovers. Tasks for target 1 never see an error meanwhile.
source "$(dirname "$0")/lib.sh"
it_init 6

farm_up --mix-counts --mix good=40 --good-latency-ms 2 --interval-ms 100 --urls 400
write_ini "$FARM_DIR/proxies.txt" 100 "circuit_breaker_threshold = 10" "circuit_probe_interval = 2" \
  "max_attempts = 3" "task_timeout = 5"
daemon_up
curl -s --noproxy '*' "http://$T2/__farm/set?error_rate=1.0" >/dev/null
for i in $(seq 1 300); do echo "http://$T1/item/$i"; done >"$TMP/t1.txt"
for i in $(seq 1 40); do echo "http://$T2/item/$i"; done >"$TMP/t2.txt"

# target 1 keeps going while target 2 breaks
ctl fetch -i "$TMP/t1.txt" --jsonl "$TMP/t1.jsonl" --quiet 2>/dev/null & F1=$!
EXTRA_PIDS+=("$F1")
r2=0; ctl fetch -i "$TMP/t2.txt" --window 2 --jsonl "$TMP/t2.jsonl" --quiet 2>/dev/null || r2=$?
r1=0; wait "$F1" || r1=$?
expect_eq "target 1 fetch exit status" "$r1" 0
expect_eq "target 1: every task ok" "$(grep -c '"ok":true' "$TMP/t1.jsonl")" 300
expect_eq "target 2 fetch reports failures" "$r2" 1
expect_eq "target 2: every task answered" "$(wc -l <"$TMP/t2.jsonl")" 40
opened=$(jq -r 'select(.ok == false) | .error' "$TMP/t2.jsonl" | grep -c circuit_open || true)
expect_ge "later target 2 tasks refused with circuit_open" "$opened" 20
other=$(jq -r 'select(.ok == false and .error != "circuit_open") | .error' "$TMP/t2.jsonl" | sort | uniq -c | tr '\n' ' ')
echo "# target 2 errors other than circuit_open: $other"
circ=$(status_json | jq -r --arg h "$T2" '.hosts[] | select(.name == $h) | .circuit')
check "target 2 circuit is open or half_open now ($circ)" test "$circ" != closed
reqs=$(fstats "$T2" .requests)
# 10 consecutive target errors open it; add what was in flight when it tripped (window 2:
# two tasks of up to race_width_max = 6 attempts) and one single-attempt probe per interval
expect_le "requests that reached the broken target" "$reqs" 30
grep -q "circuit closed -> open" "$TMP/scatterd.log" && ok "transition logged at warn" || fail "no 'circuit closed -> open' line"
t0=$(date +%s)
rc=0; ctl fetch "http://$T2/item/1" --jsonl "$TMP/refused.jsonl" --quiet 2>/dev/null || rc=$?
t1=$(date +%s)
if [ "$(jq -r .error "$TMP/refused.jsonl")" = circuit_open ]; then
  ok "new task refused with circuit_open in $((t1 - t0)) s"
else
  echo "# (circuit was already half-open: $(cat "$TMP/refused.jsonl"))"
fi

# recovery: the next probe succeeds and closes the circuit
curl -s --noproxy '*' "http://$T2/__farm/set?error_rate=0" >/dev/null
closed=0
for i in $(seq 1 40); do
  ctl fetch "http://$T2/item/$((100 + i))" --jsonl "$TMP/probe.jsonl" --quiet >/dev/null 2>&1 || true
  c=$(status_json | jq -r --arg h "$T2" '.hosts[] | select(.name == $h) | .circuit')
  if [ "$c" = closed ]; then closed=1; break; fi
  sleep 0.5
done
expect_eq "a probe closed the circuit after the target recovered" "$closed" 1
grep -q "half_open -> closed" "$TMP/scatterd.log" && ok "half_open -> closed logged" || fail "no 'half_open -> closed' line"
rc=0; ctl fetch -i "$TMP/t2.txt" --jsonl "$TMP/t2b.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "target 2 serves again: every task ok" "$(grep -c '"ok":true' "$TMP/t2b.jsonl")" 40
expect_eq "zero violations at target 1" "$(fstats "$T1" .violations)" 0
expect_eq "zero violations at target 2" "$(fstats "$T2" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
