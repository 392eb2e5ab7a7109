#!/usr/bin/env bash
# it_redis_clients — one instance on the stream, redis_claim_idle = 2 s, half its proxies slow
# (3 s): (1) tasks that run longer than redis_claim_idle on a live worker are not claimed
# (its refresh keeps them fresh): 12 tasks with race 1, at least one lasting > 2 s, each one
# request at the target, nothing claimed; (2) the Python client's stream mode
# (scatter_client.StreamClient, python3-redis): fetch_many of 300 URLs yields 300 results, one
# per URL, all ok; fetch() of one URL returns its body; a result that arrives twice for one
# task is counted as a duplicate and not yielded (a result injected into the reply stream by
# hand); close() deletes the reply stream; 0 violations.
source "$(dirname "$0")/lib.sh"
it_init 43
source "$(dirname "$0")/redis_lib.sh"
/usr/bin/python3 -c 'import redis, msgpack' 2>/dev/null || { echo "# python3-redis missing: skipped"; exit 77; }

farm_up --proxies 50 --mix "good=50,slow=50" --slow-ms 3000-3000 --seed 43 --interval-ms 200 --urls 300
redis_up --appendonly no
inst_ini 0 0/1 "redis_claim_idle = 2s"
inst_up 0
sleep 0.4

# (1) long tasks on a live worker
for i in $(seq 1 12); do echo "http://$T1/item/$((500000 + i))"; done >"$TMP/long.txt"
rfetch --race 1 -i "$TMP/long.txt" --jsonl "$TMP/long.jsonl" 2>"$TMP/long.err" || true
longest=$(jq -r .elapsed_ms "$TMP/long.jsonl" | sort -n | tail -n 1)
echo "# longest of the 12 tasks: ${longest} ms; claimed: $(ictl 0 status --json | jq -c .redis)"
expect_ge "a task ran longer than redis_claim_idle (2000 ms)" "${longest:-0}" 2001
expect_eq "all 12 answered" "$(jq -r 'select(.ok) | .n' "$TMP/long.jsonl" | wc -l)" 12
expect_eq "nothing claimed from the live worker" "$(ictl 0 status --json | jq -r .redis.claimed)" 0
expect_eq "one request per task at the target (none ran twice)" "$(fstats "$T1" .requests)" 12

export PYTHONPATH="$SCATTER_TOP/clients/python" REDIS_URL FARM_DIR T1 REDIS_IP REDIS_PORT
timeout 120 /usr/bin/python3 - >"$TMP/py.out" 2>&1 <<'PY' || true
import os, msgpack
from scatter_client import StreamClient
urls = [u.strip() for u in open(os.environ["FARM_DIR"] + "/urls.txt") if u.strip()]
with StreamClient(os.environ["REDIS_URL"], "it:tasks", window=100) as c:
    seen = {}
    for r in c.fetch_many(urls):
        seen[r.url] = seen.get(r.url, 0) + 1
    print("MANY", len(seen), sum(seen.values()), sum(1 for v in seen.values() if v == 1))
    r = c.fetch("http://%s/item/424242" % os.environ["T1"])
    print("ONE", r.ok, r.status, len(r.body) > 0)
    # a second result for a task already answered: what a takeover can produce
    tid = c.submit("http://%s/item/4243" % os.environ["T1"])
    first = c.next_result()
    c._r.xadd(c.reply_to, {"result": msgpack.packb({"id": tid, "op": "submit", "ok": True, "status": 200,
                                                     "body": b"again"}, use_bin_type=True)})
    c.submit("http://%s/item/4244" % os.environ["T1"])
    nxt = c.next_result()
    print("DUP", first.id == tid, nxt.id != tid, c.duplicates)
    reply = c.reply_to
print("CLOSED", reply)
PY
sed 's/^/# py: /' "$TMP/py.out" | tail -n 8
read -r _ urls results once <<<"$(grep '^MANY' "$TMP/py.out" || echo "MANY 0 0 0")"
expect_eq "fetch_many: one result per URL (URLs)" "$urls" 300
expect_eq "fetch_many: results" "$results" 300
expect_eq "fetch_many: each URL once" "$once" 300
check "fetch() of one URL returns its body" grep -q '^ONE True 200 True' "$TMP/py.out"
check "a second result for a task is dropped and counted" grep -q '^DUP True True 1' "$TMP/py.out"
reply=$(awk '/^CLOSED/ {print $2}' "$TMP/py.out")
expect_eq "close() deleted the reply stream" "$(rcli EXISTS "${reply:-none}")" 0
for t in "$T1" "$T2"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
inst_stop 0
expect_eq "the instance exits 0 on SIGTERM" "$INST_RC" 0
no_sanitizer_report "$TMP/i0/scatterd.log" "$TMP/i0/scatterd.out"
finish
