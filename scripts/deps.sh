#!/usr/bin/env bash
# Installs the Debian packages scatter needs to build, test, demo and benchmark.
# Idempotent: installs only what is missing, and runs apt-get update at most once.
set -euo pipefail
pkgs=(build-essential cmake pkg-config curl procps
      libcurl4-openssl-dev libev-dev libmsgpack-dev libiniparser-dev libjansson-dev libcmocka-dev libhttp-parser-dev
      libssl-dev
      libsystemd-dev  # sd_notify: scatterd's readiness under systemd (Type=notify)
      systemd dpkg-dev groff-base man-db logrotate  # it_systemd (systemd-analyze), package_deb (cpack -G DEB uses dpkg-shlibdeps), man_pages (groff, man), it_logs (dist/logrotate/scatterd run by logrotate)
      microsocks jq socat
      python3-msgpack python3-pytest  # clients/python: the client and its tests (py_client)
      python3-requests  # it_http_front, it_https: requests through the HTTP front end and CONNECT
      python3-aiohttp python3-scrapy  # it_http_aiohttp, it_http_scrapy: aiohttp and a Scrapy spider through it
      prometheus  # promtool, for it_metrics (`promtool check metrics`)
      tmux  # it_top: scatterctl top in a detached terminal of a fixed size
      libhiredis-dev redis-server  # the Redis stream transport (worker/redis.c, scatterctl fetch --redis) and it_redis_*
      python3-redis)  # clients/python: StreamClient, the Redis stream mode (it_redis_clients)
# --bench: the peers of scripts/bench.sh, and gnuplot (no X11) for its SVG charts
if [ "${1:-}" = "--bench" ]; then pkgs+=(haproxy proxychains4 gnuplot-nox); fi
# --soak: the soak's client driver (tests/soak/load.py) is Python 3, standard library only.
case " $* " in *" --soak "*) pkgs+=(python3) ;; esac
# --fuzz: clang with its libFuzzer runtime for scripts/fuzz.sh (test.sh runs its smoke), and
# llvm for the symbolizer that puts file:line in sanitizer reports.
case " $* " in *" --fuzz "*) pkgs+=(clang libclang-rt-dev llvm) ;; esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
