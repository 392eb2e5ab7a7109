#!/usr/bin/env bash
# it_target_unreachable — SOCKS5 replies about the target are not the proxy's failure. 20 good
# proxies get 48 tasks to http://[::1]:1..12/: the farm answers each CONNECT with reply 0x08
# (address type not supported), 12 distinct host keys, so the per-pair cooldown alone would not
# stop it. Those replies must be charged to the (proxy, host) pairs and the hosts' circuits,
# never to the proxies' global health: afterwards no proxy is dead and a valid task succeeds
# (on 2110d5e every proxy was evicted and the valid task timed out with an empty last_error).
# Also: a failed task says why (last_error names the unreachable target), and a task whose host
# has no usable proxy at all ends with a last_error saying so.
source "$(dirname "$0")/lib.sh"
it_init 19

farm_up --mix-counts --mix good=20 --good-latency-ms 1 --interval-ms 100 --urls 10 --target "$T1"
: >"$TMP/empty.txt"
write_ini "$FARM_DIR/proxies.txt" 100 "task_timeout = 4" "circuit_probe_interval = 60"
sed -i "s|^sources = .*|sources = \"farm=$FARM_DIR/proxies.txt, empty=$TMP/empty.txt\"|" "$TMP/scatter.ini"
printf '[host:%s]\nsources = empty\n' "$T2" >>"$TMP/scatter.ini"
daemon_up

for i in $(seq 0 47); do echo "http://[::1]:$((i % 12 + 1))/"; done >"$TMP/v6.txt"
frc=0
ctl fetch -i "$TMP/v6.txt" --jsonl "$TMP/v6.jsonl" --quiet 2>/dev/null || frc=$?
expect_eq "the [::1] batch reports failures" "$frc" 1
expect_eq "every [::1] task answered" "$(grep -c . "$TMP/v6.jsonl")" 48
expect_eq "no [::1] task ok" "$(jq -s '[.[] | select(.ok)] | length' "$TMP/v6.jsonl")" 0
echo "# [::1] errors: $(jq -r .error "$TMP/v6.jsonl" | sort | uniq -c | tr '\n' ' ')"

px=$(ctl proxies --json)
expect_eq "proxies known" "$(echo "$px" | jq '.proxies | length')" 20
expect_eq "no proxy dead after 48 tasks of 0x08 replies" "$(echo "$px" | jq '[.proxies[] | select(.state == "dead")] | length')" 0
expect_eq "no proxy charged a global failure" "$(echo "$px" | jq '[.proxies[] | .fail] | add')" 0
charged=$(echo "$px" | jq '[.proxies[].hosts[] | select(.host | startswith("[::1]")) | .fail] | add')
expect_ge "the (proxy, [::1]:N) pairs were charged" "$charged" 12
terr=$(status_json | jq '[.hosts[] | select(.name | startswith("[::1]")) | .target_errors] | add')
expect_ge "the [::1] hosts counted target errors (their circuits)" "$terr" 12

rc=0; ctl fetch "http://$T1/item/1" --jsonl "$TMP/valid.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "a valid task then succeeds" "$(jq -r .ok "$TMP/valid.jsonl")" true
echo "# valid task: $(cat "$TMP/valid.jsonl")"

# a fresh unreachable host: its failure names the target, not the proxy
ctl raw '{"op":"submit","id":77,"url":"http://[::1]:13/","timeout_ms":3000}' >"$TMP/v6raw.json" 2>&1 || true
echo "# [::1]:13: $(jq -c '{error, message, last_error}' "$TMP/v6raw.json")"
check "last_error of an unreachable target says so" grep -q '"last_error": *"target unreachable: .*(8)' "$TMP/v6raw.json"

# a host whose pool is empty: the task times out, and last_error says there was no proxy
ctl raw "{\"op\":\"submit\",\"id\":78,\"url\":\"http://$T2/item/1\",\"timeout_ms\":1500}" >"$TMP/nopool.json" 2>&1 || true
echo "# no pool: $(jq -c '{error, message, last_error}' "$TMP/nopool.json")"
expect_eq "no-proxy task ends in timeout" "$(jq -r .error "$TMP/nopool.json")" timeout
check "no-proxy task's last_error says no usable proxy" grep -q '"last_error": *"no usable proxy for this host' "$TMP/nopool.json"

expect_eq "zero violations" "$(fstats "$T1" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
