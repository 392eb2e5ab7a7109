#!/usr/bin/env bash
# it_http_aiohttp — Python aiohttp (Debian python3-aiohttp) through the HTTP front end with its
# normal proxy setting, session.get(url, proxy="http://HOST:8118"): 300 farm URLs, 50 in flight
# at a time over aiohttp's pooled keep-alive connections; every one 200 with the page of its own
# item and an X-Scatter-Proxy naming a farm proxy, 0 violations at the farm's targets.
source "$(dirname "$0")/lib.sh"
it_init 30
HP="$NET.2:8118"
if ! /usr/bin/python3 -c 'import aiohttp' 2>/dev/null; then
  echo "/usr/bin/python3 has no aiohttp module (bash scripts/deps.sh installs python3-aiohttp)" >&2
  exit 1
fi
farm_up --proxies 40 --mix "good=100" --seed 30 --interval-ms 300 --urls 300
write_ini "$FARM_DIR/proxies.txt" 300
daemon_up

t0=$(date +%s%3N)
HP="$HP" URLS="$FARM_DIR/urls.txt" timeout 50 /usr/bin/python3 - >"$TMP/aiohttp.out" 2>&1 <<'PY' || true
import asyncio, os, re
import aiohttp

PROXY = "http://" + os.environ["HP"]
urls = [u.strip() for u in open(os.environ["URLS"]) if u.strip()]

async def one(session, sem, url, bad):
    want = "<h1>item %s</h1>" % re.search(r"/item/(\d+)$", url).group(1)
    async with sem:
        try:
            async with session.get(url, proxy=PROXY) as r:
                body = await r.text()
                # X-Scatter-Proxy: the answer came through a farm proxy, not straight from the target
                if r.status == 200 and want in body and r.headers.get("X-Scatter-Proxy", "").startswith("socks5://"):
                    return 1
                bad.append("%s: %d %s" % (url, r.status, r.headers.get("X-Scatter-Error", "")))
        except Exception as e:  # counted as not completed, and shown
            bad.append("%s: %r" % (url, e))
    return 0

async def main():
    sem = asyncio.Semaphore(50)
    bad = []
    timeout = aiohttp.ClientTimeout(total=30)
    # trust_env off (the default): the proxy comes from the proxy= argument only
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=50)) as s:
        done = await asyncio.gather(*(one(s, sem, u, bad) for u in urls))
    for b in bad[:5]:
        print("#", b)
    print("OK", sum(done), len(urls))

asyncio.run(main())
PY
echo "# 300 URLs, 50 at a time, took $(( $(date +%s%3N) - t0 )) ms (interval 300 ms, 40 proxies)"
grep '^#' "$TMP/aiohttp.out" || true
expect_eq "aiohttp through the proxy: 300 of 300 with the right page" "$(tail -n 1 "$TMP/aiohttp.out")" "OK 300 300"
n=0; for t in "$T1" "$T2"; do n=$(( n + $(fstats "$t" .requests) )); done
expect_ge "the targets served the requests" "$n" 300
for t in "$T1" "$T2"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
