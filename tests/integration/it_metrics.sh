#!/usr/bin/env bash
# it_metrics — the management endpoints on metrics_listen (docs/HTTP.md, "Management
# endpoints"). After a small fetch: `promtool check metrics` accepts /metrics and its counters
# match the fetch; /proxy-metrics has every documented field, consistent with the fetch;
# /health is 200 healthy, turns 503 unhealthy when the only target's circuit opens (the farm
# target switched to 503s) and 200 again once a probe closed it; 404 and 405; an HTTP client
# held open shows in the client gauge; a client that sends nothing is answered 408 and closed
# after the read timeout while the endpoints and the workers keep answering; more clients
# than the bound get 503 at once; a non-loopback metrics_listen without http_auth is refused;
# with http_auth set the endpoints answer 401 without the same user:password as Basic auth.
source "$(dirname "$0")/lib.sh"
it_init 26
command -v promtool >/dev/null || { echo "promtool is required (Debian package prometheus; bash scripts/deps.sh)" >&2; exit 1; }

MADDR="$NET.3:9118"
M="http://$MADDR"
N=30
farm_up --mix-counts --mix good=20 --good-latency-ms 2 --interval-ms 100 --urls 200
write_ini "$FARM_DIR/proxies.txt" 100 "metrics_listen = \"$MADDR\"" "circuit_breaker_threshold = 5" \
  "circuit_probe_interval = 1" "max_attempts = 2" "task_timeout = 5" "pool_capacity = 700" \
  "connect_ports = \"${T1##*:}\""
daemon_up

mget() { curl -s --noproxy '*' --max-time 5 "$@"; }
mcode() { # mcode [-o FILE] [curl args...] URL — the status code
  local out=/dev/null
  if [ "$1" = -o ]; then out="$2"; shift 2; fi
  curl -s --noproxy '*' --max-time 5 -o "$out" -w '%{http_code}' "$@"
}
# metric NAME_WITH_LABELS — its value in $TMP/metrics.txt (exact series match)
metric() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/metrics.txt"; }
promcheck() { # promcheck LABEL
  local rc=0
  promtool check metrics <"$TMP/metrics.txt" >"$TMP/promtool.out" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then ok "$1: promtool check metrics passes"; else fail "$1: promtool check metrics: $(head -c 600 "$TMP/promtool.out")"; fi
}

# --- a small fetch, then every endpoint agrees with it
for i in $(seq 1 $N); do echo "http://$T1/item/$i"; done >"$TMP/urls.txt"
rc=0; ctl fetch -i "$TMP/urls.txt" --jsonl "$TMP/out.jsonl" --quiet 2>/dev/null || rc=$?
expect_eq "fetch exit status" "$rc" 0
expect_eq "every task ok" "$(grep -c '"ok":true' "$TMP/out.jsonl")" "$N"

# an HTTP front-end client held open shows in the per-worker client gauge, and a CONNECT
# tunnel held open in the tunnel gauge
exec {HOLD_HTTP}<>"/dev/tcp/$NET.2/8118"
exec {HOLD_TUN}<>"/dev/tcp/$NET.2/8118"
printf 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' "$T1" "$T1" >&"$HOLD_TUN"
tline=""; read -r -t 5 -u "$HOLD_TUN" tline || true
check "the CONNECT tunnel is established ($tline)" grep -q '^HTTP/1.1 200' <<<"$tline"
sleep 0.3
code=$(curl -s --noproxy '*' --max-time 5 -D "$TMP/metrics.hdr" -o "$TMP/metrics.txt" -w '%{http_code}' "$M/metrics")
expect_eq "/metrics status" "$code" 200
check "/metrics content type is text format 0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$TMP/metrics.hdr"
promcheck "after the fetch"
expect_eq "scatter_tasks_total{outcome=completed}" "$(metric 'scatter_tasks_total{outcome="completed"}')" "$N"
expect_eq "scatter_tasks_total{outcome=failed}" "$(metric 'scatter_tasks_total{outcome="failed"}')" 0
expect_eq "scatter_tasks_submitted_total" "$(metric scatter_tasks_submitted_total)" "$N"
expect_eq "task latency histogram count" "$(metric scatter_task_duration_seconds_count)" "$N"
expect_eq "task latency +Inf bucket" "$(metric 'scatter_task_duration_seconds_bucket{le="+Inf"}')" "$N"
att=$(metric scatter_attempts_total)
expect_ge "attempts >= tasks" "$att" "$N"
expect_ge "attempt latency histogram count >= tasks" "$(metric scatter_attempt_duration_seconds_count)" "$N"
expect_ge "host successes of $T1" "$(metric "scatter_host_successes_total{host=\"$T1\"}")" "$N"
expect_eq "circuit of $T1 closed" "$(metric "scatter_host_circuit_state{host=\"$T1\",state=\"closed\"}")" 1
expect_eq "pool capacity" "$(metric scatter_pool_capacity)" 700
expect_eq "pool in use now" "$(metric scatter_tasks_pending)" 0
expect_eq "healthy proxies of $T1" "$(metric "scatter_host_proxies{host=\"$T1\",state=\"healthy\"}")" 20
http_clients=$(awk '$1 ~ /^scatter_clients\{.*protocol="http"\}$/ { s += $2 } END { print s + 0 }' "$TMP/metrics.txt")
expect_eq "HTTP front-end clients (one held open)" "$http_clients" 1
tunnels=$(awk '$1 ~ /^scatter_tunnels\{/ { s += $2 } END { print s + 0 }' "$TMP/metrics.txt")
expect_eq "CONNECT tunnels (one held open)" "$tunnels" 1
for fam in scatter_task_errors_total scatter_submissions_refused_total scatter_stall_zero_avail_total \
           scatter_host_proxy_failures_total scatter_host_target_errors_total scatter_proxies scatter_attempts_inflight; do
  check "family $fam is exported" grep -q "^# TYPE $fam " "$TMP/metrics.txt"
done
exec {HOLD_HTTP}>&-
exec {HOLD_TUN}>&-
sleep 0.3
expect_eq "tunnel gauge back to 0 once closed" \
  "$(mget "$M/metrics" | awk '$1 ~ /^scatter_tunnels\{/ { s += $2 } END { print s + 0 }')" 0

mget "$M/proxy-metrics" >"$TMP/pm.json"
for f in total_requests successful_requests failed_requests timeout_requests active_requests queue_rejected \
         success_rate avg_response_time circuit_open consecutive_failures queue_size available_slots hosts stalls; do
  check "/proxy-metrics has $f" jq -e --arg f "$f" 'has($f)' "$TMP/pm.json"
done
expect_eq "/proxy-metrics successful_requests" "$(jq .successful_requests "$TMP/pm.json")" "$N"
expect_eq "/proxy-metrics total_requests" "$(jq .total_requests "$TMP/pm.json")" "$N"
expect_eq "/proxy-metrics failed_requests" "$(jq .failed_requests "$TMP/pm.json")" 0
expect_eq "/proxy-metrics success_rate" "$(jq .success_rate "$TMP/pm.json")" 1
expect_eq "/proxy-metrics queue_size + available_slots = pool_capacity" \
  "$(jq '.queue_size + .available_slots' "$TMP/pm.json")" 700
expect_eq "/proxy-metrics circuit_open" "$(jq .circuit_open "$TMP/pm.json")" false
check "/proxy-metrics avg_response_time > 0" jq -e '.avg_response_time > 0' "$TMP/pm.json"
expect_ge "/proxy-metrics stalls.selects (one selection per task at least)" "$(jq .stalls.selects "$TMP/pm.json")" "$N"
check "/proxy-metrics stalls.select_ns > 0" jq -e '.stalls.select_ns > 0' "$TMP/pm.json"
expect_ge "scatter_select_calls_total" "$(metric scatter_select_calls_total)" "$N"
expect_eq "/proxy-metrics host entry for $T1" "$(jq -r --arg h "$T1" '.hosts[] | select(.name == $h) | .successes >= 30' "$TMP/pm.json")" true

code=$(mcode -o "$TMP/health.json" "$M/health")
expect_eq "/health status code when healthy" "$code" 200
expect_eq "/health status" "$(jq -r .status "$TMP/health.json")" healthy

# --- other paths and methods
expect_eq "GET /nope" "$(mcode "$M/nope")" 404
expect_eq "GET / " "$(mcode "$M/")" 404
expect_eq "POST /metrics" "$(mcode -X POST --data x "$M/metrics")" 405
check "405 names the allowed methods" bash -c "curl -s --noproxy '*' --max-time 5 -D - -o /dev/null -X DELETE '$M/health' | grep -qi '^Allow: GET'"
expect_eq "HEAD /health" "$(mcode -I "$M/health")" 200
expect_eq "garbage request line" "$(printf 'NOT HTTP AT ALL\r\n\r\n' | timeout 5 socat - "TCP:$MADDR" | head -n 1 | cut -d' ' -f2)" 400

# --- a client that sends nothing: the master keeps serving, the client gets 408 and is closed
exec {IDLE}<>"/dev/tcp/$NET.3/9118"
t0=$(date +%s%N)
expect_eq "/health while a client holds a connection" "$(mcode "$M/health")" 200
check "workers answer status meanwhile" bash -c "ASAN_OPTIONS=detect_leaks=0 timeout 5 '$SCATTERCTL' -s '$SOCK' status --json >/dev/null"
t1=$(date +%s%N)
expect_le "those answers took (ms)" "$(( (t1 - t0) / 1000000 ))" 1500
rc=0; got=$(timeout 6 cat <&"$IDLE") || rc=$?
expect_eq "the idle client's connection was closed by the daemon (cat exit status)" "$rc" 0
check "the idle client got 408" grep -q '^HTTP/1.1 408' <<<"$got"
exec {IDLE}>&-

# --- more clients than the bound: the extra one is answered 503 at once, then service resumes
HOLDERS=()
for i in $(seq 1 16); do exec {h}<>"/dev/tcp/$NET.3/9118"; HOLDERS+=("$h"); done
sleep 0.2
expect_eq "a 17th client while 16 hold connections" "$(mcode "$M/health")" 503
for h in "${HOLDERS[@]}"; do exec {h}>&-; done
sleep 0.3
expect_eq "/health once the holders left" "$(mcode "$M/health")" 200

# --- the only target fails: its circuit opens and /health is 503 unhealthy
curl -s --noproxy '*' "http://$T1/__farm/set?error_rate=1" >/dev/null
code=0
for i in $(seq 1 40); do
  ctl fetch "http://$T1/item/$((100 + i))" --jsonl "$TMP/bad.jsonl" --quiet >/dev/null 2>&1 || true
  code=$(mcode -o "$TMP/health.json" "$M/health")
  [ "$code" = 503 ] && break
  sleep 0.2
done
expect_eq "/health status code once the circuit opened" "$code" 503
expect_eq "/health status" "$(jq -r .status "$TMP/health.json")" unhealthy
check "/health reasons name the circuit" jq -e '[.reasons[] | select(test("circuit"))] | length > 0' "$TMP/health.json"
check "/health per-host circuit is not closed" jq -e --arg h "$T1" '.hosts[] | select(.name == $h) | .circuit != "closed"' "$TMP/health.json"
mget "$M/metrics" >"$TMP/metrics.txt"
promcheck "with the circuit open"
open=$(( $(metric "scatter_host_circuit_state{host=\"$T1\",state=\"open\"}") + $(metric "scatter_host_circuit_state{host=\"$T1\",state=\"half_open\"}") ))
expect_eq "scatter_host_circuit_state open or half_open" "$open" 1
expect_ge "target errors of $T1 counted" "$(metric "scatter_host_target_errors_total{host=\"$T1\"}")" 5
errs=$(( $(metric 'scatter_task_errors_total{code="max_attempts"}') + $(metric 'scatter_task_errors_total{code="timeout"}') ))
expect_eq "failed tasks = max_attempts + timeout errors" "$(metric 'scatter_tasks_total{outcome="failed"}')" "$errs"

# --- the target recovers: a probe closes the circuit and /health is 200 again
curl -s --noproxy '*' "http://$T1/__farm/set?error_rate=0" >/dev/null
code=0
for i in $(seq 1 60); do
  ctl fetch "http://$T1/item/$((150 + i))" --jsonl "$TMP/probe.jsonl" --quiet >/dev/null 2>&1 || true
  code=$(mcode -o "$TMP/health.json" "$M/health")
  [ "$code" = 200 ] && break
  sleep 0.3
done
expect_eq "/health status code after the probe closed the circuit" "$code" 200
check "/health is healthy or degraded ($(jq -r .status "$TMP/health.json"))" jq -e '.status != "unhealthy"' "$TMP/health.json"
mget "$M/proxy-metrics" >"$TMP/pm.json"
check "/proxy-metrics: successful + failed + cancelled + queue_size <= total" \
  jq -e '.successful_requests + .failed_requests + .cancelled_requests + .queue_size <= .total_requests' "$TMP/pm.json"
check "/proxy-metrics: refusals counted (queue_rejected >= 0, failed > 0)" jq -e '.failed_requests > 0' "$TMP/pm.json"
expect_eq "zero violations at the target" "$(fstats "$T1" .violations)" 0

# --- a non-loopback metrics_listen without http_auth is refused at start
sed "s|^metrics_listen = .*|metrics_listen = \"0.0.0.0:9118\"|" "$TMP/scatter.ini" >"$TMP/open.ini"
rc=0; ASAN_OPTIONS=detect_leaks=0 timeout 10 "$SCATTERD" --check -c "$TMP/open.ini" >"$TMP/open.out" 2>&1 || rc=$?
expect_eq "non-loopback metrics_listen without http_auth: exit status" "$rc" 2
check "the message names metrics_listen" grep -q "metrics_listen = '0.0.0.0:9118' is not a loopback address" "$TMP/open.out"

daemon_stop
expect_eq "scatterd exits 0 on SIGTERM" "$DRC" 0

# --- with http_auth set, the endpoints want the same user:password (Basic)
write_ini "$FARM_DIR/proxies.txt" 100 "metrics_listen = \"$MADDR\"" "http_auth = \"mon:s3cret\""
daemon_up
expect_eq "http_auth set: /metrics without credentials" "$(mcode "$M/metrics")" 401
check "401 asks for Basic" bash -c "curl -s --noproxy '*' --max-time 5 -D - -o /dev/null '$M/health' | grep -qi '^WWW-Authenticate: Basic'"
expect_eq "http_auth set: wrong password" "$(mcode -u mon:wrong "$M/metrics")" 401
expect_eq "http_auth set: right credentials" "$(mcode -u mon:s3cret "$M/health")" 200
daemon_stop
expect_eq "scatterd exits 0 on SIGTERM (auth run)" "$DRC" 0
no_sanitizer_report "$TMP/scatterd.log" "$TMP/scatterd.out"
finish
