#!/bin/sh
# scatterctl's command line: help exits 0, usage errors exit 2 and name the bad argument,
# an absent daemon exits 3.
ctl="$1"
fail=0
expect() { # expect CODE PATTERN ARGS...
    want=$1 pat=$2
    shift 2
    out=$(SCATTER_SOCKET=/tmp/sc_cli_test_none.sock "$ctl" "$@" 2>&1)
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: scatterctl $*: exit $got, want $want"; echo "$out"; fail=1
    elif [ -n "$pat" ] && ! printf '%s' "$out" | grep -q -- "$pat"; then
        echo "FAIL: scatterctl $*: output lacks '$pat'"; echo "$out"; fail=1
    fi
}
expect 0 "Usage: scatterctl" --help
expect 0 "DIR/<n>.body" fetch --help
expect 0 "SIGHUP" reload --help
expect 0 "JSON_MAP" help raw
expect 2 "missing COMMAND"
expect 2 "'frobnicate'" frobnicate
expect 2 "'--bogus'" fetch --bogus x
expect 2 "'99'" fetch --race 99 http://a/
expect 2 "'x1'" fetch --window x1 http://a/
expect 2 "'nocolon'" fetch -H nocolon http://a/
expect 2 "cannot be used together" fetch -o /tmp/d --jsonl - http://a/
expect 2 "no URL" fetch
expect 2 "cannot be used together" fetch --data a --data-file /dev/null http://a/
expect 2 "cannot be used together" fetch -i /dev/null --input-jsonl /dev/null
expect 2 "cannot both read standard input" fetch --data-file - --input-jsonl -
expect 2 "HEAD cannot send a body" fetch -X HEAD --data x http://a/
expect 2 "'get'" fetch -X get http://a/
expect 2 "sc_cli_no_headers: No such file" fetch --header-file /tmp/sc_cli_no_headers http://a/
expect 2 "'--session'" fetch --session
expect 2 "1 to 63 bytes" fetch --session "" http://a/
expect 0 "--input-jsonl FILE" fetch --help
expect 0 "--redis URL" fetch --help
expect 2 "needs --redis" fetch --stream s http://a/
expect 2 "bad --redis 'http://x'" fetch --redis http://x http://a/
expect 2 "bad --redis 'redis://\*\*\*@h:0'" fetch --redis redis://:hunter2@h:0 http://a/
expect 2 "bad --stream" fetch --redis redis://127.0.0.1:1 --stream "a b" http://a/
expect 0 "q quits" top --help
expect 2 "bad --delay '0.01'" top --delay 0.01
expect 2 "'extra'" top extra
expect 3 "cannot connect" top
expect 2 "'--limit'" proxies --limit
expect 2 "'extra'" status extra
expect 2 "not a JSON object" raw '[1]'
expect 3 "cannot connect" status
expect 3 "sc_cli_test_none" fetch http://a/
expect 3 "cannot connect to redis at 127.0.0.1:1" fetch --redis redis://127.0.0.1:1 http://a/
expect 3 "" -s /tmp/sc_cli_other.sock hosts
expect 1 "pidfile" stop --pidfile /tmp/sc_cli_no_pidfile
exit $fail
