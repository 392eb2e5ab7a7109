#!/usr/bin/env bash
# Loopback-only safety and option validation: bad values exit 2 naming option and value,
# and nothing is started or written.
source "$(dirname "$0")/lib.sh"

# expect2 DESCRIPTION OPTION-NAME ARGS... : exit 2, and stderr names the option.
expect2() {
  local d="$1" opt="$2"; shift 2
  "$SCATTER_FARM" --quiet --out "$TMP/never" "$@" >"$TMP/o" 2>"$TMP/e" </dev/null
  local rc=$?
  if [ "$rc" -eq 2 ] && grep -q -- "$opt" "$TMP/e"; then ok "$d: exit 2, names $opt"; else
    fail "$d: expected exit 2 naming $opt, got $rc: $(cat "$TMP/e")"; fi
}
expect2 "non-loopback --target" --target --target 10.0.0.1:80
expect2 "--target 0.0.0.0" --target --target 0.0.0.0:18080
expect2 "--target 192.168.1.1 after a good one" --target --target 127.0.0.5:18080 --target 192.168.1.1:80
expect2 "non-loopback --proxy-ip (bind)" --proxy-ip --proxy-ip 192.168.1.1
expect2 "--proxy-ip not an address" --proxy-ip --proxy-ip localhostx
expect2 "--target without a port" --target --target 127.0.0.5
expect2 "--target port 70000" --target --target 127.0.0.5:70000
expect2 "--proxies abc" --proxies --proxies abc
expect2 "--proxies 0" --proxies --proxies 0
expect2 "--proxies -3" --proxies --proxies -3
expect2 "--mix unknown behaviour" --mix --mix good=50,weird=50
expect2 "--mix not adding to 100" --mix --mix good=50,slow=10
expect2 "--mix-counts not matching --proxies" --mix --proxies 5 --mix-counts --mix good=3
expect2 "--flaky-drop 2" --flaky-drop --flaky-drop 2
expect2 "--error-rate x" --error-rate --error-rate x
expect2 "--slow-ms 3000-1000" --slow-ms --slow-ms 3000-1000
expect2 "--auth without a colon" --auth --auth alice
expect2 "--interval-ms -1" --interval-ms --interval-ms -1
expect2 "--proxy-base-port 65530 with 100 proxies" --proxy-base-port --proxy-base-port 65530 --proxies 100
expect2 "--seed x" --seed --seed x
expect2 "non-loopback --tls-target" --tls-target --tls-target 10.0.0.1:443
expect2 "--tls-target without a port" --tls-target --tls-target 127.0.0.5
expect2 "--tls-cert without --tls-key" --tls-cert --tls-target 127.0.0.5:18443 --tls-cert /dev/null
expect2 "--tls-key without --tls-cert" --tls-key --tls-target 127.0.0.5:18443 --tls-key /dev/null
expect2 "--tls-cert without a --tls-target" --tls-cert --tls-cert /dev/null --tls-key /dev/null
expect2 "--tls-cert that is no certificate" --tls-cert --tls-target 127.0.0.5:18443 \
  --tls-cert "$TMP/no-such.pem" --tls-key "$TMP/no-such.pem"
sixteen=$(for i in $(seq 1 16); do echo --target 127.0.0.5:$((18000 + i)); done)
# shellcheck disable=SC2086 # sixteen is split into its words on purpose
expect2 "17 targets, plain and TLS together" --tls-target $sixteen --tls-target 127.0.0.5:18443
expect2 "unknown option" --frobnicate --frobnicate
check "nothing was written by refused starts" test ! -e "$TMP/never"

"$SCATTER_FARM" --help >"$TMP/help"; rc=$?
check "--help exits 0" test "$rc" -eq 0
missing=""
for o in proxies proxy-ip proxy-base-port mix mix-counts seed auth good-latency-ms slow-ms flaky-drop \
         blackhole-ms target tls-target tls-cert tls-key interval-ms error-rate max-items urls out \
         quiet help version; do
  grep -q -- "--$o\b" "$TMP/help" || missing="$missing --$o"
done
check "--help documents every option (missing:$missing)" test -z "$missing"
finish
