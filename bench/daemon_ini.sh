# bench/daemon_ini.sh — sourced by the benchmark scripts (scripts/bench.sh, bench/fleet.sh,
# bench/open_loop.sh, bench/connect_bench.sh, bench/redis_bench.sh): the one writer of the
# scatter.ini their daemons run with.
#
# bench_ini DIR PROXYFILE WORKERS INTERVAL_MS [more [scatter] lines...] writes DIR/scatter.ini:
# the farm's proxies (private addresses allowed), the socket, pid file and log in DIR, captcha
# pages as blocked, WORKERS workers, the rate-limit interval; no HTTP front end and no
# management endpoints unless a line sets http_listen or metrics_listen (their defaults,
# 127.0.0.1:8118 and :9118, would collide with any other daemon on the machine).
bench_ini() {
  local d="$1" pf="$2" w="$3" iv="$4"; shift 4
  local l
  {
    echo "[scatter]"
    echo "sources = \"farm=$pf\""
    echo "allow_private_proxies = true"
    echo "socket_path = \"$d/scatter.sock\""
    echo "pid_file = \"$d/scatterd.pid\""
    echo "workers = $w"
    echo "blocked_body = \"captcha\""
    echo "log_file = \"$d/scatterd.log\""
    case " $* " in *"http_listen"*) ;; *) echo 'http_listen = ""' ;; esac
    case " $* " in *"metrics_listen"*) ;; *) echo 'metrics_listen = ""' ;; esac
    for l in "$@"; do [ -n "$l" ] && echo "$l"; done
    echo "[rate_limit]"
    echo "interval = $iv"
  } >"$d/scatter.ini"
}
