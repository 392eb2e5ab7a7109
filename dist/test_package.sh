#!/usr/bin/env bash
# package_deb: `cpack -G DEB` and `cmake --install` from the build tree gives a .deb with exactly the expected files
# where Debian expects them (binaries in /usr/sbin and /usr/bin, /etc/scatter/scatter.ini and
# the logrotate file as conffiles, the man pages, the unit, the sysusers file, the Python
# package in /usr/lib/python3/dist-packages), maintainer scripts that parse, and a Depends
# line naming the Debian package of every shared library the binaries load (dpkg -S of each
# ldd path) plus python3-msgpack and adduser. Extracted into a scratch root (dpkg -x), its
# scatterd checks its own /etc/scatter/scatter.ini, its scatterctl prints the version, its
# scatter.ini is the daemon's --print-default-config, its man pages render and its Python
# package imports.
set -euo pipefail
: "${SCATTER_BUILD:?}" "${SCATTERD:?}" "${SCATTERCTL:?}"
for c in cpack dpkg-deb dpkg-shlibdeps man objdump /usr/bin/python3; do
  command -v "$c" >/dev/null || { echo "$c is required (bash scripts/deps.sh)" >&2; exit 1; }
done
export ASAN_OPTIONS=detect_leaks=0 LC_ALL=C.UTF-8
FAILS=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1 (got '$2', want '$3')"; fi; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scatter-pkg.XXXXXX"); trap 'rm -rf "$TMP"' EXIT

cpack -G DEB --config "$SCATTER_BUILD/CPackConfig.cmake" -B "$TMP/out" >"$TMP/cpack.log" 2>&1 || { cat "$TMP/cpack.log"; exit 1; }
deb=$(ls "$TMP"/out/*.deb)
expect_eq "cpack made one .deb named by Debian's rule" "$(basename "$deb")" "scatter_$("$SCATTERD" --version | awk '{print $2}')_$(dpkg --print-architecture).deb"

dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $1, $2, $6}' | sed 's|\./||' | sort >"$TMP/files"
cat >"$TMP/want" <<WANT
-rw-r--r-- root/root etc/logrotate.d/scatterd
-rw-r--r-- root/root etc/scatter/scatter.ini
-rwxr-xr-x root/root usr/bin/scatterctl
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/__init__.py
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/_core.py
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/aio.py
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/client.py
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/errors.py
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/paths.py
-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/py.typed
-rw-r--r-- root/root usr/lib/systemd/system/scatterd.service
-rw-r--r-- root/root usr/lib/sysusers.d/scatter.conf
-rwxr-xr-x root/root usr/sbin/scatterd
-rw-r--r-- root/root usr/share/man/man1/scatterctl.1
-rw-r--r-- root/root usr/share/man/man5/scatter.ini.5
-rw-r--r-- root/root usr/share/man/man8/scatterd.8
WANT
# the Python package's modules come from its folder: a module added there is expected too
for f in "$(dirname "$0")"/../clients/python/scatter_client/*.py; do
  grep -q "scatter_client/$(basename "$f")$" "$TMP/want" || echo "-rw-r--r-- root/root usr/lib/python3/dist-packages/scatter_client/$(basename "$f")" >>"$TMP/want"
done
sort -o "$TMP/want" "$TMP/want"
if diff "$TMP/want" "$TMP/files" >"$TMP/diff"; then ok "the package holds exactly the expected files, modes and owners"
else fail "file list differs (< expected, > in the .deb)"; sed 's/^/# /' "$TMP/diff"; fi

mkdir "$TMP/ctl"; dpkg-deb -e "$deb" "$TMP/ctl"
expect_eq "conffiles: scatter.ini and the logrotate file" "$(sort "$TMP/ctl/conffiles" | tr '\n' ' ')" "/etc/logrotate.d/scatterd /etc/scatter/scatter.ini "
for s in postinst prerm postrm; do
  if [ -x "$TMP/ctl/$s" ] && sh -n "$TMP/ctl/$s"; then ok "$s is executable and parses"; else fail "$s"; fi
done
grep -q 'adduser --system --group' "$TMP/ctl/postinst" && ok "postinst creates the scatter system user" || fail "postinst user"

# Depends: every shared library the binaries load belongs to a package the .deb depends on
deps=$(dpkg-deb -f "$deb" Depends)
echo "# Depends: $deps"
names=$(echo "$deps" | tr ',' '\n' | sed 's/(.*)//; s/ //g' | sort -u)
for p in python3 python3-msgpack adduser; do
  echo "$names" | grep -qx "$p" && ok "Depends names $p" || fail "Depends lacks $p"
done
# the libraries the binaries link directly (NEEDED), found where the loader finds them
miss=0; n=0
for b in "$SCATTERD" "$SCATTERCTL"; do
  for so in $(objdump -p "$b" | awk '$1 == "NEEDED" {print $2}'); do
    lib=$(ldd "$b" | awk -v so="$so" '$1 == so && $3 ~ /^\// {print $3}')
    [ -n "$lib" ] || { fail "$(basename "$b") needs $so, which the loader does not find"; miss=$((miss + 1)); continue; }
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1) || pkg=""
    [ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1) || pkg=""
    n=$((n + 1))
    if [ -z "$pkg" ]; then fail "no Debian package owns $lib (a library of the build tree would need LD_LIBRARY_PATH)"; miss=$((miss + 1))
    elif ! echo "$names" | grep -qx "$pkg"; then fail "Depends lacks $pkg (for $so)"; miss=$((miss + 1)); fi
  done
done
[ "$n" -ge 8 ] && [ "$miss" = 0 ] && ok "Depends names the package of each library scatterd and scatterctl link ($n NEEDED entries)"

# a scratch root: the package's own files, run from where they were installed
root="$TMP/root"; dpkg -x "$deb" "$root"
out=$("$root/usr/sbin/scatterd" --check -c "$root/etc/scatter/scatter.ini" 2>&1) && rc=0 || rc=$?
expect_eq "installed scatterd --check -c <root>/etc/scatter/scatter.ini exits 0" "$rc" 0
expect_eq "  and says ok" "$out" "$root/etc/scatter/scatter.ini: ok"
expect_eq "installed scatterctl --version" "$("$root/usr/bin/scatterctl" --version | awk '{print $1, $2}')" "scatterctl $("$SCATTERD" --version | awk '{print $2}')"
if "$root/usr/sbin/scatterd" --print-default-config | cmp -s - "$root/etc/scatter/scatter.ini"; then
  ok "the installed scatter.ini is the installed daemon's --print-default-config"; else fail "installed scatter.ini differs from --print-default-config"; fi
for p in man8/scatterd.8 man1/scatterctl.1 man5/scatter.ini.5; do
  w=$(MANWIDTH=100 man --warnings -l "$root/usr/share/man/$p" 2>&1 >/dev/null) || w="man failed"
  [ -z "$w" ] && ok "installed $p renders" || fail "installed $p: $w"
done
# Debian's python3 (the one python3-msgpack serves), whatever else is first on PATH
v=$(cd / && PYTHONPATH="$root/usr/lib/python3/dist-packages" /usr/bin/python3 -c 'import scatter_client, os; print(os.path.dirname(scatter_client.__file__))') || v=""
expect_eq "the installed Python package imports from dist-packages" "$v" "$root/usr/lib/python3/dist-packages/scatter_client"
grep -q '^ExecStart=/usr/sbin/scatterd -f -c /etc/scatter/scatter.ini' "$root/usr/lib/systemd/system/scatterd.service" \
  && ok "the unit runs the installed binary with the installed config" || fail "unit ExecStart"

# cmake --install: the same files for the prefix /usr (config in /etc), and <prefix>/etc for
# another prefix
DESTDIR="$TMP/di" cmake --install "$SCATTER_BUILD" --prefix /usr >/dev/null
(cd "$TMP/di" && find . -type f | sed 's|^\./||' | sort) >"$TMP/di.files"
if diff <(awk '{print $3}' "$TMP/want" | sort) "$TMP/di.files" >"$TMP/di.diff"; then
  ok "cmake --install --prefix /usr installs the package's files at the same paths (config in /etc/scatter)"
else fail "cmake --install --prefix /usr differs from the package"; sed 's/^/# /' "$TMP/di.diff"; fi
cmake --install "$SCATTER_BUILD" --prefix "$TMP/opt" >/dev/null
check_files=("$TMP/opt/etc/scatter/scatter.ini" "$TMP/opt/etc/logrotate.d/scatterd" "$TMP/opt/sbin/scatterd" \
             "$TMP/opt/bin/scatterctl" "$TMP/opt/share/man/man5/scatter.ini.5" "$TMP/opt/lib/python3/dist-packages/scatter_client/__init__.py")
missing=""; for f in "${check_files[@]}"; do [ -f "$f" ] || missing="$missing $f"; done
expect_eq "cmake --install --prefix P: the config in P/etc/scatter, the rest under P" "$missing" ""

if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all checks passed"
