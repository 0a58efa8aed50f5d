#!/usr/bin/env bash
# Installs everything edgemux's tests and benchmarks need on a fresh Debian
# machine with Node/npm: Bun and Deno (from npm, outside the project tree),
# the project's npm packages, and the Debian packages of the real peers the
# tests talk to. Idempotent: only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
DENO_VERSION=2.9.6

if ! command -v bun >/dev/null || [ "$(bun --version)" != "$BUN_VERSION" ] \
  || ! command -v deno >/dev/null || ! deno --version | grep -q "deno $DENO_VERSION"; then
  npm install -g --no-fund --no-audit "bun@$BUN_VERSION" "deno@$DENO_VERSION" >/dev/null
fi

# Debian packages: real clients and peers for interop tests.
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v promtool >/dev/null || need+=(prometheus)
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/xtaci/smux ] || need+=(golang-github-xtaci-smux-dev)
[ -d /usr/share/gocode/src/golang.org/x/net ] || need+=(golang-golang-x-net-dev)
command -v ip >/dev/null || need+=(iproute2)          # upgrade test: its own network namespace
command -v unshare >/dev/null || need+=(util-linux)
command -v perl >/dev/null || need+=(perl-base)
command -v iperf3 >/dev/null || need+=(iperf3)   # tcp listener test
command -v dig >/dev/null || need+=(bind9-dnsutils)   # udp listener test: the DNS client
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)   # udp listener test: the DNS server (the binary alone, no system service)
command -v buildah >/dev/null || need+=(buildah)   # container test: builds and runs deploy/container/Containerfile offline (chroot isolation, vfs storage)
[ -x /usr/bin/chromium ] || need+=(chromium)   # dashboard test: headless browser driven over CDP
command -v pebble >/dev/null || need+=(pebble)   # acme test: the ACME test server, with pebble-challtestsrv as its DNS stub
[ -x /usr/bin/redis-server ] || need+=(redis-server)   # cluster registry test: each test file starts its own on a free port and a unix socket
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The prometheus package starts a server on install where an init system runs; tests only need promtool.
  (command -v systemctl >/dev/null && systemctl stop prometheus 2>/dev/null) || true
  pkill -x prometheus 2>/dev/null || true
  # Likewise redis-server's system service (port 6379); the tests start their own.
  (command -v systemctl >/dev/null && systemctl stop redis-server 2>/dev/null) || true
fi

bun install --frozen-lockfile >/dev/null
