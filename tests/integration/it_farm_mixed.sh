#!/usr/bin/env bash
# it_farm_mixed — the whole path on a realistic pool: 200 farm proxies of every behaviour
# (30% good, 10% slow, 15% flaky, 15% refuse, 10% blackhole, 10% banned, 10% captcha), two
# rate-limited targets at 500 ms, 1,000 tasks through `scatterctl fetch --jsonl`.
# Proves: every task answered, >= 99% ok, ZERO rate-limit violations at either target,
# refuse/blackhole proxies that were tried end cooling or dead, every winner is a proxy that
# can really serve (good/slow/flaky per the farm's truth.json), no rate-limit word stays held.
source "$(dirname "$0")/lib.sh"
it_init 1

farm_up --proxies 200 --mix "$MIX" --seed 7 --interval-ms 500 --urls 1000 --blackhole-ms 20000
write_ini "$FARM_DIR/proxies.txt" 500
daemon_up

t0=$(date +%s.%N)
frc=0
ctl fetch -i "$FARM_DIR/urls.txt" --jsonl "$TMP/out.jsonl" 2>"$TMP/fetch.err" || frc=$?
secs=$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo "?")
tail -n 1 "$TMP/fetch.err" | sed 's/^/# /'
echo "# fetch exit $frc, wall ${secs}s"
check "fetch exit status 0 or 1 (got $frc)" test "$frc" -le 1

lines=$(wc -l <"$TMP/out.jsonl")
expect_eq "every task answered: jsonl lines" "$lines" 1000
distinct=$(jq -r .n "$TMP/out.jsonl" | sort -u | wc -l)
expect_eq "each task exactly once (distinct n)" "$distinct" 1000
nok=$(jq -r 'select(.ok) | .n' "$TMP/out.jsonl" | wc -l)
expect_ge "ok tasks >= 99%" "$nok" 990
jq -r 'select(.ok|not) | "\(.error) \(.message)"' "$TMP/out.jsonl" | sort | uniq -c | sed 's/^/# failed: /'

# winners: join the ok lines' proxy with the farm's truth by url
jq -r '.proxies[] | "\(.url)\t\(.behaviour)"' "$FARM_DIR/truth.json" | sort >"$TMP/truth.tsv"
jq -r 'select(.ok) | .proxy' "$TMP/out.jsonl" | sort >"$TMP/winners"
join -t $'\t' -a 1 -e MISSING -o 1.1,2.2 "$TMP/winners" "$TMP/truth.tsv" | cut -f2 | sort | uniq -c \
  | sed 's/^/# winners by behaviour: /'
badwin=$(join -t $'\t' -a 1 -e MISSING -o 1.1,2.2 "$TMP/winners" "$TMP/truth.tsv" \
  | awk -F'\t' '$2 != "good" && $2 != "slow" && $2 != "flaky"' | wc -l)
expect_eq "every winner is a good/slow/flaky proxy (others, incl. empty proxy field)" "$badwin" 0
if [ "$badwin" -gt 0 ]; then
  join -t $'\t' -a 1 -e MISSING -o 1.1,2.2 "$TMP/winners" "$TMP/truth.tsv" \
    | awk -F'\t' '$2 != "good" && $2 != "slow" && $2 != "flaky"' | sort | uniq -c | sed -n 1,5p | sed 's/^/#   /' || true
  jq -c 'select(.ok and (.proxy == "" or .proxy == null))' "$TMP/out.jsonl" | sed -n 1,3p | sed 's/^/#   /' || true
fi

# the rate limit, as the targets saw it
for t in "$T1" "$T2"; do
  fstats "$t" '{violations, requests, items_distinct, status} | tostring' | sed "s/^/# $t: /"
  expect_eq "zero violations at $t" "$(fstats "$t" .violations)" 0
done

# refuse and blackhole proxies that were tried end cooling or dead
ctl proxies --json --limit 1000 >"$TMP/proxies.json"
jq -r '.proxies[] | [.url, (if (.state == "dead" or ([.hosts[]? | select((.cooldown_ms // 0) > 0 or .dead == true)] | length) > 0) then "out" else "in" end), ([.hosts[]? | (.success // 0) + (.fail // 0)] | add // 0)] | @tsv' \
  "$TMP/proxies.json" | sort >"$TMP/pstate.tsv"
tried=$(join -t $'\t' "$TMP/pstate.tsv" "$TMP/truth.tsv" | awk -F'\t' '($4 == "refuse" || $4 == "blackhole") && $3 > 0' | wc -l)
stillin=$(join -t $'\t' "$TMP/pstate.tsv" "$TMP/truth.tsv" | awk -F'\t' '($4 == "refuse" || $4 == "blackhole") && $3 > 0 && $2 == "in"' | wc -l)
echo "# refuse/blackhole proxies tried: $tried, not cooling/dead: $stillin"
expect_ge "some refuse/blackhole proxies were tried" "$tried" 1
expect_eq "tried refuse/blackhole proxies all cooling or dead" "$stillin" 0

status_json >"$TMP/status.json"
jq -c '{tasks, proxies, stalls}' "$TMP/status.json" | sed 's/^/# status: /'
expect_eq "rl_held == 0 at the end" "$(jq -r .stalls.rl_held "$TMP/status.json")" 0
expect_eq "pending == 0 at the end" "$(jq -r .tasks.pending "$TMP/status.json")" 0

# the client itself, with leak detection on (ASan builds): a short fetch must exit 0 and clean
frc=0
head -n 20 "$FARM_DIR/urls.txt" >"$TMP/urls20.txt"
CTL_ASAN_OPTIONS="" ctl fetch -i "$TMP/urls20.txt" --jsonl "$TMP/out20.jsonl" 2>"$TMP/fetch20.err" || frc=$?
expect_eq "scatterctl fetch --jsonl of 20 URLs, leak detection on: exit status" "$frc" 0
no_sanitizer_report "$TMP/fetch20.err"

daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out" "$TMP/fetch.err"
finish
