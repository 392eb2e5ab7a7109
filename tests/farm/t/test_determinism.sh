#!/usr/bin/env bash
# Same seed, same farm (ports, behaviours, file order); another seed, another farm.
# Also: percentages round to exactly --proxies, and source addresses are unique.
source "$(dirname "$0")/lib.sh"

farm_start --proxies 40 --seed 7 --urls 10 || exit 1
cp "$FARM_DIR/truth.tsv" "$TMP/a.tsv"; cp "$FARM_DIR/proxies.txt" "$TMP/a.txt"
check "40 proxies in proxies.txt" test "$(wc -l <"$TMP/a.txt")" = 40
check "refuse proxies are listed too" test "$(grep -c $'\trefuse\t' "$TMP/a.tsv")" = 6
check "source addresses are unique" test "$(cut -f3 "$TMP/a.tsv" | sort -u | wc -l)" = 40
check "truth.json is valid JSON with 40 proxies" test "$(jq '.proxies | length' "$FARM_DIR/truth.json")" = 40
check "urls.txt has 10 lines" test "$(wc -l <"$FARM_DIR/urls.txt")" = 10
check "refuse ports have no listener" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$(awk -F'\t' '$2=="refuse"{print $4; exit}' "$TMP/a.tsv")) 2>/dev/null"
b1=$BASE; farm_stop

farm_start --proxies 40 --seed 7 --urls 10 || exit 1
if [ "$BASE" = "$b1" ]; then
  check "same seed: same truth.tsv" cmp -s "$TMP/a.tsv" "$FARM_DIR/truth.tsv"
  check "same seed: same proxies.txt order" cmp -s "$TMP/a.txt" "$FARM_DIR/proxies.txt"
else
  check "same seed: same behaviours (ports moved)" cmp -s <(cut -f2 "$TMP/a.tsv") <(cut -f2 "$FARM_DIR/truth.tsv")
fi
farm_stop
farm_start --proxies 40 --seed 8 --urls 10 || exit 1
check "other seed: other behaviours" bash -c "! cmp -s <(cut -f2 '$TMP/a.tsv') <(cut -f2 '$FARM_DIR/truth.tsv')"
farm_stop
finish
