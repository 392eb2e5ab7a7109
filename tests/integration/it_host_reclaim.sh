#!/usr/bin/env bash
# it_host_reclaim — a full host table does not refuse new hosts until a restart: once a
# registration finds every max_hosts slot taken, the master reclaims idle hosts (no live or
# queued task, every rate-limit word due, idle for 10 s), never-successful ones first, and the
# new host gets the slot. Hosts with successes and their history are kept.
source "$(dirname "$0")/lib.sh"
it_init 23
T3="$NET.12:18080"
NOLISTEN="$NET.13:18080"
farm_up --proxies 20 --mix "good=100" --seed 23 --interval-ms 200 --urls 10 --target "$T1" --target "$T2" --target "$T3"
write_ini "$FARM_DIR/proxies.txt" 200 "max_hosts = 3"
daemon_up
one() { ctl raw --json "{\"op\":\"submit\",\"id\":1,\"url\":\"http://$1/item/1\",\"timeout_ms\":4000}" || true; }
expect_eq "task to $T1 ok" "$(one "$T1" | jq .ok)" true
expect_eq "task to $T2 ok" "$(one "$T2" | jq .ok)" true
r=$(one "$NOLISTEN"); echo "# task to a port nobody listens on: $(echo "$r" | jq -c '{ok, error, last_error}')"
expect_eq "host table now full: 3 hosts" "$(ctl raw --json '{"op":"hosts","id":2}' | jq '.hosts | length')" 3
r=$(one "$T3"); echo "# 4th host: $(echo "$r" | jq -c '{ok, error, message}')"
expect_eq "a 4th host is refused while every slot is in use" "$(echo "$r" | jq -r .error)" bad_request
check "the refusal says slots are reclaimed when idle" grep -q "reclaimed after" <(echo "$r" | jq -r .message)
s1=$(ctl raw --json '{"op":"hosts","id":3}' | jq -c "[.hosts[] | select(.name == \"$T1\") | .success][0]")
for i in $(seq 1 150); do grep -q "reclaimed" "$TMP/scatterd.log" && break; sleep 0.1; done
grep "reclaimed" "$TMP/scatterd.log" | sed 's/^/# /'
check "the master reclaimed the never-successful idle host" grep -q "reclaimed 1 idle host slot: $NOLISTEN" "$TMP/scatterd.log"
r=$(one "$T3"); echo "# 4th host again: $(echo "$r" | jq -c '{ok, error, message}')"
expect_eq "the 4th host is served in the freed slot" "$(echo "$r" | jq .ok)" true
hosts=$(ctl raw --json '{"op":"hosts","id":4}' | jq -c '[.hosts[].name] | sort')
expect_eq "hosts now" "$hosts" "$(jq -cn --arg a "$T1" --arg b "$T2" --arg c "$T3" '[$a,$b,$c] | sort')"
expect_eq "$T1 kept its history" "$(ctl raw --json '{"op":"hosts","id":5}' | jq -c "[.hosts[] | select(.name == \"$T1\") | .success][0]")" "$s1"
for t in "$T1" "$T2" "$T3"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
