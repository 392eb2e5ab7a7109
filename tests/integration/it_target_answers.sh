#!/usr/bin/env bash
# it_target_answers — the target's own answers are results, not the proxy's fault. 30 HEAD
# tasks (no body by definition: min_body_size must not apply), 404s, 301s, 302s, 204s and 304s
# through 20 good proxies all come back ok with the target's status, and no proxy is charged or
# cools down for the host (on 2110d5e every HEAD and every one of those statuses was
# ProxyBlocked: all tasks failed and most pairs went into cooldown). Statuses the config lists
# keep their meaning: with strict_status = true on the second target, a 404 is ProxyBlocked
# there again and charged to the pairs.
source "$(dirname "$0")/lib.sh"
it_init 20

farm_up --mix-counts --mix good=20 --good-latency-ms 1 --interval-ms 50
write_ini "$FARM_DIR/proxies.txt" 50 "task_timeout = 10"
printf '[host:%s]\nstrict_status = true\nmax_attempts = 1\n' "$T2" >>"$TMP/scatter.ini"
daemon_up

for i in $(seq 1 30); do echo "http://$T1/item/$i"; done >"$TMP/head.txt"
rc=0; ctl fetch -i "$TMP/head.txt" --method HEAD --jsonl "$TMP/head.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "HEAD fetch exit status" "$rc" 0
expect_eq "30 HEAD tasks ok with status 200" \
  "$(jq -s '[.[] | select(.ok and .status == 200 and .bytes == 0)] | length' "$TMP/head.jsonl")" 30

{
  for i in $(seq 1 10); do echo "http://$T1/missing/$i"; done   # 404 from the target
  for s in 301 302 204 304; do for i in $(seq 1 5); do echo "http://$T1/status/$s"; done; done
} >"$TMP/answers.txt"
rc=0; ctl fetch -i "$TMP/answers.txt" --jsonl "$TMP/answers.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "404/3xx/204/304 fetch exit status" "$rc" 0
for s in 404:10 301:5 302:5 204:5 304:5; do
  expect_eq "status ${s%%:*}: tasks ok with it" \
    "$(jq -s --argjson s "${s%%:*}" '[.[] | select(.ok and .status == $s)] | length' "$TMP/answers.jsonl")" "${s##*:}"
done
expect_eq "every task of both batches answered once" "$(cat "$TMP/head.jsonl" "$TMP/answers.jsonl" | grep -c .)" 60

px=$(ctl proxies --json)
cells=$(echo "$px" | jq -c --arg h "$T1" '[.proxies[].hosts[] | select(.host == $h)]')
expect_eq "no (proxy, target 1) pair charged a failure" "$(echo "$cells" | jq '[.[].fail] | add')" 0
expect_eq "no (proxy, target 1) pair cooling down" "$(echo "$cells" | jq '[.[] | select(.cooldown_ms > 0)] | length')" 0
expect_ge "the proxies' success counts hold the 60 answers" "$(echo "$cells" | jq '[.[].success] | add')" 60
h1=$(status_json | jq -c --arg h "$T1" '.hosts[] | select(.name == $h)')
echo "# target 1: $h1"
expect_eq "target 1: no cooling, no dead pair" "$(echo "$h1" | jq '.cooling + .dead')" 0

# strict_status on target 2: the same 404 is ProxyBlocked and charged to the pair
rc=0; ctl fetch "http://$T2/missing/1" --jsonl "$TMP/strict.jsonl" --quiet 2>/dev/null || rc=$?
echo "# strict: $(cat "$TMP/strict.jsonl")"
expect_eq "strict_status host: the 404 task fails" "$(jq -r .ok "$TMP/strict.jsonl")" false
f2=$(ctl proxies --json | jq --arg h "$T2" '[.proxies[].hosts[] | select(.host == $h) | .fail] | add')
expect_ge "strict_status host: the pairs were charged" "$f2" 1
ctl raw "{\"op\":\"submit\",\"id\":9,\"url\":\"http://$T2/missing/2\"}" >"$TMP/strict.json" 2>&1 || true
check "strict_status last_error names the rule" grep -q 'http 404 (status in no list, strict_status)' "$TMP/strict.json"

expect_eq "zero violations at target 1" "$(fstats "$T1" .violations)" 0
expect_eq "zero violations at target 2" "$(fstats "$T2" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
