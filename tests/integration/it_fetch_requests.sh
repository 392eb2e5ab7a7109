#!/usr/bin/env bash
# it_fetch_requests — scatterctl fetch sends what it is told to the target, through scatterd and
# a farm proxy, seen by a target that echoes every request (echo_target.py):
#  - -X POST --data, -H and --header-file: method, body and every header arrive;
#  - --data-file with all 256 byte values arrives byte for byte; --data alone means POST;
#    -X GET --data sends a GET with its body (the protocol allows it);
#  - --input-jsonl: each line's method, headers (object and array forms, replacing the command
#    line's of the same name), body / body_base64 reach the target for that line's task; a
#    session keeps one proxy; a bad line becomes one bad_input result naming its line and
#    field while the other lines run, exit 1; the same lines from standard input.
source "$(dirname "$0")/lib.sh"
it_init 35
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
farm_up --proxies 20 --mix "good=100" --seed 35 --interval-ms 100 --urls 10
E="$NET.12:18080"
python3 "$SCATTER_TOP/tests/integration/echo_target.py" "$NET.12" 18080 &
EXTRA_PIDS+=("$!")
write_ini "$FARM_DIR/proxies.txt" 100
daemon_up
for i in $(seq 1 50); do curl -s --noproxy '*' -o /dev/null "http://$E/x" && break; sleep 0.1; done

# echoed FILE JQ — a field of the target's description of the request
echoed() { jq -r "$2" "$1"; }
b64() { printf '%s' "$1" | base64 -w0; }

printf '# the API key\nAuthorization: Bearer t0ken\r\n\nX-From-File:  yes \n' >"$TMP/headers.txt"
rc=0; ctl fetch -q -X POST --data 'hello=1&b=2' -H 'X-Test: one' --header-file "$TMP/headers.txt" \
  -o "$TMP/a" "http://$E/post" || rc=$?
expect_eq "POST with --data: exit 0" "$rc" 0
expect_eq "the target saw POST" "$(echoed "$TMP/a/1.body" .method)" POST
expect_eq "the target saw the body" "$(echoed "$TMP/a/1.body" .body_b64)" "$(b64 'hello=1&b=2')"
expect_eq "-H reached the target" "$(echoed "$TMP/a/1.body" '.headers["x-test"]')" one
expect_eq "--header-file line 2 reached the target" "$(echoed "$TMP/a/1.body" .headers.authorization)" "Bearer t0ken"
expect_eq "--header-file line 4, value trimmed" "$(echoed "$TMP/a/1.body" '.headers["x-from-file"]')" yes

python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 4)' >"$TMP/bin.dat"
rc=0; ctl fetch -q --data-file "$TMP/bin.dat" -H 'Content-Type: application/octet-stream' -o "$TMP/b" \
  "http://$E/upload" || rc=$?
expect_eq "--data-file: exit 0" "$rc" 0
expect_eq "--data without -X is a POST" "$(echoed "$TMP/b/1.body" .method)" POST
check "1,024 binary bytes arrived unchanged" test "$(echoed "$TMP/b/1.body" .body_b64)" = "$(base64 -w0 "$TMP/bin.dat")"
rc=0; ctl fetch -q -X GET -d 'q=1' -o "$TMP/c" "http://$E/search" || rc=$?
expect_eq "-X GET --data: exit 0" "$rc" 0
expect_eq "a GET with a body arrives as GET" "$(echoed "$TMP/c/1.body" .method)" GET
expect_eq "... with its body" "$(echoed "$TMP/c/1.body" .body_b64)" "$(b64 'q=1')"
rc=0; ctl fetch -q -X HEAD -d x "http://$E/h" 2>"$TMP/head.err" || rc=$?
expect_eq "-X HEAD --data: usage error" "$rc" 2
check "... saying why" grep -q "HEAD cannot send a body" "$TMP/head.err"

# per-line requests; line 6 is bad, lines 1 and 4 are skipped (comment, blank)
cat >"$TMP/in.jsonl" <<JSON
# one request per line
{"url": "http://$E/put", "method": "PUT", "headers": {"X-Line": "2", "x-test": "from-line"}, "body": "line two"}
{"url": "http://$E/delete", "method": "DELETE", "headers": ["X-Line: 3", "X-Other: b"]}

{"url": "http://$E/bin", "body_base64": "AAEC/w==", "session": "s35"}
{"url": "http://$E/bad", "methd": "PATCH"}
{"url": "http://$E/s2", "session": "s35", "timeout": 20, "race": 2, "attempts": 3}
{"url": "http://$E/s3", "method": "PATCH", "session": "s35", "body": "{\"k\": [1, 2]}"}
JSON
# leak detection on for the client here (lib.sh's ctl turns it off): the bad-line paths free all
rc=0; CTL_ASAN_OPTIONS="" ctl fetch -H 'X-Test: cli' -o "$TMP/j" --input-jsonl "$TMP/in.jsonl" 2>"$TMP/j.err" || rc=$?
expect_eq "--input-jsonl with one bad line: exit 1" "$rc" 1
check "stderr names the file, line 6 and the field" grep -q "in.jsonl:6: field 'methd': unknown" "$TMP/j.err"
expect_eq "record 1 (line 2): PUT" "$(echoed "$TMP/j/1.body" .method)" PUT
expect_eq "record 1: its body" "$(echoed "$TMP/j/1.body" .body_b64)" "$(b64 'line two')"
expect_eq "record 1: its header" "$(echoed "$TMP/j/1.body" '.headers["x-line"]')" 2
expect_eq "record 1: its x-test replaced the -H one" "$(echoed "$TMP/j/1.body" '.headers["x-test"]')" from-line
expect_eq "record 2 (line 3): DELETE, array headers" \
  "$(echoed "$TMP/j/2.body" '[.method, .headers["x-line"], .headers["x-other"]] | join(",")')" "DELETE,3,b"
expect_eq "record 2: the -H header kept" "$(echoed "$TMP/j/2.body" '.headers["x-test"]')" cli
expect_eq "record 3 (line 5): body_base64 makes a POST with those bytes" \
  "$(echoed "$TMP/j/3.body" '.method + " " + .body_b64')" "POST AAEC/w=="
check "record 4 (the bad line) wrote no body" test ! -e "$TMP/j/4.body"
expect_eq "record 5: GET" "$(echoed "$TMP/j/5.body" .method)" GET
expect_eq "record 6: PATCH with a JSON body" "$(echoed "$TMP/j/6.body" '.method + " " + .body_b64')" \
  "PATCH $(b64 '{"k": [1, 2]}')"

# the same from standard input, results as JSON lines
rc=0; CTL_ASAN_OPTIONS="" ctl fetch -q --input-jsonl - --jsonl "$TMP/r.jsonl" <"$TMP/in.jsonl" 2>"$TMP/r.err" || rc=$?
expect_eq "stdin: exit 1" "$rc" 1
expect_eq "six results" "$(wc -l <"$TMP/r.jsonl")" 6
expect_eq "five ok" "$(jq -s 'map(select(.ok)) | length' "$TMP/r.jsonl")" 5
expect_eq "the bad line: n 4, bad_input, url null" "$(jq -rc 'select(.ok | not) | [.n, .error, .url]' "$TMP/r.jsonl")" \
  '[4,"bad_input",null]'
check "its message names line 6 and the field" grep -q '"message":"line 6: field '"'"'methd'"'"': unknown' "$TMP/r.jsonl"
expect_eq "the session's three tasks used one proxy" \
  "$(jq -r 'select(.n == 3 or .n == 5 or .n == 6) | .proxy' "$TMP/r.jsonl" | sort -u | wc -l)" 1
expect_eq "race 2 asked on line 7 is ignored by the session (race 1)" "$(jq -r 'select(.n == 5) | .race' "$TMP/r.jsonl")" 1

daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out" "$TMP/j.err" "$TMP/r.err"
finish
