#!/usr/bin/env bash
# man_pages: the generated pages (dist/man/gen_man.py, built into $SCATTER_MAN_DIR) render
# with groff and man without a warning, and hold everything their sources list: every key of
# the key table (`scatterd --print-default-config`) in scatter.ini.5 with its default, every
# option of `scatterd --help` in scatterd.8, every command and global option of
# `scatterctl --help` in scatterctl.1.
set -euo pipefail
: "${SCATTERD:?}" "${SCATTERCTL:?}" "${SCATTER_MAN_DIR:?}"
command -v groff >/dev/null && command -v man >/dev/null || { echo "groff and man are required (bash scripts/deps.sh)" >&2; exit 1; }
export ASAN_OPTIONS=detect_leaks=0 LC_ALL=C.UTF-8 MANWIDTH=200
FAILS=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

for p in man8/scatterd.8 man1/scatterctl.1 man5/scatter.ini.5; do
  f="$SCATTER_MAN_DIR/$p"
  [ -s "$f" ] || { fail "$p exists"; continue; }
  w=$(groff -man -Tutf8 -ww -z "$f" 2>&1 || echo "groff exit $?")
  [ -z "$w" ] && ok "$p: groff -ww renders it without a warning" || { fail "$p: groff warns"; echo "$w" | head -5; }
  w=$(man --warnings -l "$f" 2>&1 >"$TMP/$(basename "$p").txt" || echo "man exit $?")
  [ -z "$w" ] && ok "$p: man --warnings -l renders it without a warning" || { fail "$p: man warns"; echo "$w" | head -5; }
done

# scatter.ini.5: every key of the table, with the default it prints
missing=0; n=0
while IFS= read -r l; do
  n=$((n + 1))
  grep -qF -- "$l" "$TMP/scatter.ini.5.txt" || { missing=$((missing + 1)); echo "# not in scatter.ini.5: $l"; }
done < <("$SCATTERD" --print-default-config | grep -E '^[a-z_]+ = ')
[ "$n" -ge 40 ] && [ "$missing" = 0 ] && ok "scatter.ini.5 has all $n keys of the table as 'key = default'" || fail "scatter.ini.5 lacks $missing of $n keys"
dl=$("$SCATTERD" --print-default-config | grep -c '^; default: ')
[ "$(grep -c 'Default: ' "$TMP/scatter.ini.5.txt")" = "$dl" ] && ok "scatter.ini.5 gives each key's default and flags ($dl)" || fail "scatter.ini.5: Default lines"

# scatterd.8: every long option of --help; scatterctl.1: every command and global option
before=$FAILS
for o in $("$SCATTERD" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
  grep -qF -- "$o" "$TMP/scatterd.8.txt" || fail "scatterd.8 lacks $o"
done
[ "$FAILS" = "$before" ] && ok "scatterd.8 has every option of scatterd --help"
before=$FAILS
for c in $("$SCATTERCTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}'); do
  grep -qE "^ +$c\b" "$TMP/scatterctl.1.txt" || fail "scatterctl.1 lacks the command $c"
done
[ "$FAILS" = "$before" ] && ok "scatterctl.1 lists every command"
before=$FAILS
for o in $("$SCATTERCTL" fetch --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
  grep -qF -- "$o" "$TMP/scatterctl.1.txt" || fail "scatterctl.1 lacks fetch's $o"
done
[ "$FAILS" = "$before" ] && ok "scatterctl.1 has every option of scatterctl fetch --help"
grep -q "SCATTERD(8)" "$TMP/scatterd.8.txt" && ok "scatterd.8 is section 8" || fail "scatterd.8 header"

if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all checks passed"
