#!/usr/bin/env bash
# RFC 1929 username/password: right credentials relay, wrong or missing ones are rejected.
source "$(dirname "$0")/lib.sh"

farm_start --mix-counts --mix good=1 --auth alice:s3cret --interval-ms 0 || exit 1
p=$(proxy_of good)
check "proxies.txt carries the credentials" grep -q "^socks5://alice:s3cret@127.0.0.1:" "$FARM_DIR/proxies.txt"
code=$(via "$p" "http://$TARGET/item/5"); rc=$?
check "right password: 200 (rc=$rc code=$code)" test "$rc" -eq 0 -a "$code" = 200
code=$(via "${p/socks5:/socks5h:}" "http://$TARGET/item/5"); rc=$?
check "right password over socks5h: 200 (rc=$rc code=$code)" test "$rc" -eq 0 -a "$code" = 200
code=$(via "${p/s3cret/wrong}" "http://$TARGET/item/5"); rc=$?
check "wrong password rejected (curl exit 97, got $rc)" test "$rc" -eq 97
bare="socks5://127.0.0.1:${p##*:}"
code=$(via "$bare" "http://$TARGET/item/5"); rc=$?
check "no credentials rejected (curl exit 97, got $rc)" test "$rc" -eq 97
code=$(via "$p" "http://$TARGET/item/6"); rc=$?
check "still serving after rejections: 200" test "$rc" -eq 0 -a "$code" = 200
farm_stop
finish
