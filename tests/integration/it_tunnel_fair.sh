#!/usr/bin/env bash
# it_tunnel_fair — a kept-alive CONNECT tunnel keeps its turn on its pair while tasks of the
# same host compete for the same few pairs: 4 proxies, a 300 ms interval, one worker, about
# 130 https tasks queued through msgpack, and meanwhile a requests.Session making 10 requests
# through one tunnel. Each request waits at most for its pair's next slot (one interval),
# never for the slot after it because a task took the pair first (before the tunnel reserved
# its pair: 3 of 10 requests took 612-918 ms). The tasks all complete; 0 violations.
source "$(dirname "$0")/lib.sh"
it_init 47
/usr/bin/python3 -c 'import requests' 2>/dev/null || { echo "# python3-requests missing: skipped"; exit 77; }
TLS1="$NET.12:18443"
HP="$NET.2:8118"
farm_up --proxies 4 --mix "good=100" --seed 47 --interval-ms 300 --urls 400 --tls-target "$TLS1"
CA="$FARM_DIR/tls-ca.pem"
write_ini "$FARM_DIR/proxies.txt" 300 "ca_file = \"$CA\"" "connect_ports = \"18443\"" "workers = 1"
daemon_up
tstats() { curl -s --noproxy '*' --max-time 5 --cacert "$CA" "https://$1/__farm/stats" | jq -r "${2:-.}"; }
grep "https://$TLS1/" "$FARM_DIR/urls.txt" >"$TMP/https.txt"
n=$(wc -l <"$TMP/https.txt")
CTL_TIMEOUT=120 ctl fetch -i "$TMP/https.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" &
FP=$!
EXTRA_PIDS+=("$FP")
sleep 2 # the host's queue is long by now
HP="$HP" CA="$CA" TLS="$TLS1" /usr/bin/python3 - >"$TMP/session.out" 2>&1 <<'PY' || true
import os, time, requests
s = requests.Session()
s.proxies = {"https": "http://" + os.environ["HP"]}
lat = []
for i in range(10):
    t0 = time.monotonic()
    r = s.get("https://%s/item/%d" % (os.environ["TLS"], i), timeout=60, verify=os.environ["CA"])
    assert "<h1>item %d</h1>" % i in r.text
    lat.append(int((time.monotonic() - t0) * 1000))
print("LAT", " ".join(map(str, lat)))
PY
sed 's/^/# session: /' "$TMP/session.out"
expect_eq "10 requests through one tunnel" "$(awk '/^LAT/ {print NF - 1}' "$TMP/session.out")" 10
slowest=$(awk '/^LAT/ {m = 0; for (i = 2; i <= NF; i++) if ($i > m) m = $i; print m}' "$TMP/session.out")
expect_le "each within one interval of its pair (slowest ms; 300 ms interval)" "${slowest:-99999}" 500
wait "$FP" || true
tail -n 1 "$TMP/fetch.err" | sed 's/^/# /'
expect_eq "the $n tasks all ok" "$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)" "$n"
expect_eq "zero violations" "$(tstats "$TLS1" .violations)" 0
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
