#!/usr/bin/env bash
# it_http_scrapy — a small Scrapy spider (Debian python3-scrapy; tests/integration/scrapy_farm.py)
# crawling 200 farm item pages through the HTTP front end, which it finds only through
# HTTP_PROXY/http_proxy in its environment: one JSON line per page, each 200 with the <h1> of its
# own item and an X-Scatter-Proxy naming a farm proxy; retries off in Scrapy, 0 violations at the
# farm's targets.
source "$(dirname "$0")/lib.sh"
it_init 31
HP="$NET.2:8118"
if ! /usr/bin/python3 -c 'import scrapy' 2>/dev/null; then
  echo "/usr/bin/python3 has no scrapy module (bash scripts/deps.sh installs python3-scrapy)" >&2
  exit 1
fi
farm_up --proxies 40 --mix "good=100" --seed 31 --interval-ms 300 --urls 200
write_ini "$FARM_DIR/proxies.txt" 300
daemon_up

t0=$(date +%s%3N)
# no_proxy unset: a loopback exclusion in the caller's environment would send Scrapy straight
# to the targets; HOME in $TMP: Scrapy writes nothing outside the test directory
(cd "$TMP" && env -u no_proxy -u NO_PROXY -u https_proxy -u HTTPS_PROXY HOME="$TMP" \
   HTTP_PROXY="http://$HP" http_proxy="http://$HP" \
   timeout 50 /usr/bin/python3 -m scrapy runspider "$SCATTER_TOP/tests/integration/scrapy_farm.py" \
   -L WARNING -a urls="$FARM_DIR/urls.txt" -O "$TMP/items.jsonl" >"$TMP/scrapy.out" 2>&1) || echo "# scrapy exited $?"
echo "# scrapy crawled 200 pages in $(( $(date +%s%3N) - t0 )) ms (interval 300 ms, 40 proxies)"
{ grep -v '^$' "$TMP/scrapy.out" || true; } | head -n 5 | sed 's/^/# scrapy: /'
[ -s "$TMP/items.jsonl" ] || : >"$TMP/items.jsonl"
expect_eq "one item per page" "$(wc -l <"$TMP/items.jsonl")" 200
good=$(jq -r --arg p "socks5://$PROXY_IP:" \
  'select(.status == 200 and .h1 == ("item " + (.url | capture("/item/(?<n>[0-9]+)$").n))
          and (.proxy | startswith($p))) | .url' "$TMP/items.jsonl" | sort -u | wc -l)
expect_eq "every page 200 with its own <h1>, through a farm proxy" "$good" 200
expect_eq "every start URL crawled" \
  "$(comm -3 <(sort -u "$FARM_DIR/urls.txt") <(jq -r .url "$TMP/items.jsonl" | sort -u) | wc -l)" 0
for t in "$T1" "$T2"; do expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0; done
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
