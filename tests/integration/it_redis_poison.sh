#!/usr/bin/env bash
# it_redis_poison — redis_max_deliveries: a stream entry that every worker taking it died on
# (here: delivered 3 times to consumers that never answered) is not run a fourth time; its
# client gets dead_letter on reply_to, and the entry is acknowledged. An entry delivered fewer
# times is taken over and run as usual, and one with no reply_to is acknowledged and dropped.
# Without the limit a task that crashes workers would crash one after the other for ever.
# Then redis_forget_consumers: the consumers that are gone, nothing pending, are deleted.
source "$(dirname "$0")/lib.sh"
it_init 46
source "$(dirname "$0")/redis_lib.sh"
/usr/bin/python3 -c 'import redis, msgpack' 2>/dev/null || { echo "# python3-redis missing: skipped"; exit 77; }

farm_up --proxies 20 --mix "good=100" --seed 46 --interval-ms 200 --urls 10
redis_up --appendonly no
rcli XGROUP CREATE it:tasks scatter 0 MKSTREAM >/dev/null

# three entries, each delivered to (and never answered by) consumers that are gone: "poison"
# 3 times, "again" once, "noreply" (no reply_to) 3 times
RIP="$REDIS_IP" RPORT="$REDIS_PORT" T1="$T1" /usr/bin/python3 - >"$TMP/seed.out" 2>&1 <<'PY'
import os, msgpack, redis
r = redis.Redis(host=os.environ["RIP"], port=int(os.environ["RPORT"]))
def task(i, n):
    # one proxy per round: the target's request count then says which tasks ran
    return msgpack.packb({"op": "submit", "id": i, "url": "http://%s/item/%d" % (os.environ["T1"], n),
                          "race_width": 1})
ids = {
    "poison": r.xadd("it:tasks", {"task": task(7, 1), "reply_to": "it:replies"}),
    "again": r.xadd("it:tasks", {"task": task(8, 2), "reply_to": "it:replies"}),
    "noreply": r.xadd("it:tasks", {"task": task(9, 3)}),
}
r.xreadgroup("scatter", "ghost-1", {"it:tasks": ">"})  # delivery 1 of each
for name, times in (("poison", 2), ("noreply", 2)):
    for k in range(times):  # XCLAIM counts a delivery each time
        r.xclaim("it:tasks", "scatter", "ghost-%d" % (k + 2), 0, [ids[name]])
for name, i in ids.items():
    p = r.xpending_range("it:tasks", "scatter", i, i, 1)[0]
    print(name, i.decode(), p["times_delivered"])
PY
sed 's/^/# seeded: /' "$TMP/seed.out"
expect_eq "seeded: poison delivered 3 times" "$(awk '$1 == "poison" {print $3}' "$TMP/seed.out")" 3
expect_eq "seeded: again delivered once" "$(awk '$1 == "again" {print $3}' "$TMP/seed.out")" 1
sleep 1.1 # idle past redis_claim_idle

inst_ini 0 0/1 "redis_claim_idle = 1s" "redis_max_deliveries = 3" "redis_forget_consumers = 2s"
inst_up 0
for _ in $(seq 1 100); do
  [ "$(rcli XLEN it:replies)" -ge 2 ] && [ "$(rcli XPENDING it:tasks scatter | head -n 1)" = 0 ] && break
  sleep 0.1
done
RIP="$REDIS_IP" RPORT="$REDIS_PORT" /usr/bin/python3 - >"$TMP/replies.out" 2>&1 <<'PY'
import os, msgpack, redis
r = redis.Redis(host=os.environ["RIP"], port=int(os.environ["RPORT"]))
for _, f in r.xrange("it:replies"):
    m = msgpack.unpackb(f[b"result"])
    print(m["id"], m["ok"], m.get("error", "-"), m.get("status", "-"), m.get("message", ""))
PY
sed 's/^/# reply: /' "$TMP/replies.out"
expect_eq "two replies (the entry without reply_to has nobody to answer)" "$(wc -l <"$TMP/replies.out")" 2
expect_eq "the entry delivered 3 times: dead_letter, with its id" "$(awk '$1 == 7 {print $2, $3}' "$TMP/replies.out")" "False dead_letter"
check "its message says why" grep -q "^7 .*delivered 3 times (redis_max_deliveries)" "$TMP/replies.out"
expect_eq "the entry delivered once was run: ok, 200" "$(awk '$1 == 8 {print $2, $4}' "$TMP/replies.out")" "True 200"
expect_eq "nothing left pending in the group" "$(rcli XPENDING it:tasks scatter | head -n 1)" 0
expect_eq "task stream empty (acknowledged and deleted)" "$(rcli XLEN it:tasks)" 0
expect_eq "the target saw only the entry that ran" "$(fstats "$T1" .requests)" 1
expect_eq "status redis.dead_letters" "$(ictl 0 status --json | jq -r .redis.dead_letters)" 2
expect_eq "status redis.claimed" "$(ictl 0 status --json | jq -r .redis.claimed)" 1
check "/metrics counts them" grep -q '^scatter_redis_entries_total{event="dead_letter"} 2$' \
  <(curl -s --noproxy '*' --max-time 5 "http://$NET.30:9118/metrics")
expect_eq "logged once per entry" "$(grep -c 'answered dead_letter, not run' "$TMP/i0/scatterd.log")" 2

# the ghosts (gone, nothing pending once their entries were claimed) are forgotten
consumers() { rcli XINFO CONSUMERS it:tasks scatter | awk 'prev == "name" {print} {prev = $0}'; }
for _ in $(seq 1 80); do consumers | grep -q '^ghost' || break; sleep 0.1; done
consumers | sed 's/^/# consumer: /'
expect_eq "the ghost consumers were deleted" "$(consumers | grep -c '^ghost')" 0
check "logged" grep -q "redis: forgot [0-9]* consumers idle over 2000 ms with nothing pending" "$TMP/i0/scatterd.log"
inst_stop 0
expect_eq "i0 exits 0 on SIGTERM" "$INST_RC" 0

# a consumer with an entry pending is kept however idle (its entry would go with it); here
# redis_claim_idle is long, so the entry is not claimed meanwhile
rcli XADD it:tasks '*' task x reply_to it:replies >/dev/null
rcli XREADGROUP GROUP scatter ghost-keep COUNT 1 STREAMS it:tasks '>' >/dev/null
rcli XADD it:tasks '*' task y reply_to it:replies >/dev/null
rcli XREADGROUP GROUP scatter ghost-drop COUNT 1 STREAMS it:tasks '>' >/dev/null
rcli XACK it:tasks scatter "$(rcli XPENDING it:tasks scatter - + 10 ghost-drop | head -n 1)" >/dev/null
inst_ini 0 0/1 "redis_claim_idle = 60s" "redis_forget_consumers = 2s"
inst_up 0
for _ in $(seq 1 60); do consumers | grep -q '^ghost-drop$' || break; sleep 0.1; done
consumers | sed 's/^/# consumer: /'
expect_eq "idle, nothing pending: deleted" "$(consumers | grep -c '^ghost-drop$')" 0
expect_eq "idle, one entry pending: kept" "$(consumers | grep -c '^ghost-keep$')" 1
expect_eq "its entry still pending" "$(rcli XPENDING it:tasks scatter | head -n 1)" 1
inst_stop 0
expect_eq "i0 exits 0 on SIGTERM" "$INST_RC" 0
no_sanitizer_report "$TMP/i0/scatterd.log" "$TMP/i0/scatterd.out"
finish
