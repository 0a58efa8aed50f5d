#!/usr/bin/env bash
# Checks the benchmark peers and load tools (Debian packages) and installs
# whatever is missing. Used by `bun run bench` (bench/run.ts) before a run;
# safe to run by hand. Installs nothing when everything is there.
#
#   haproxy               peer: SNI routing with req.ssl_sni, `mode tcp` (tcp section), `mode http` with TLS (http section)
#   nginx + libnginx-mod-stream   peer: ssl_preread; http proxy_pass with TLS (http section); the backend
#   sniproxy              peer: Debian's sniproxy 0.6
#   wrk                   load: new-connection and keep-alive scenarios (HTTPS; plain HTTP in the tcp section)
#   openssl               throwaway certificate for the TLS backend and the TLS-terminating proxies
#   openssh-server        tunnel suite: sshd + ssh -R, the reverse-tunnel peer
set -euo pipefail

missing=()
need_bin() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$2"); }
need_bin haproxy haproxy
need_bin nginx nginx
need_bin sniproxy sniproxy
need_bin wrk wrk
need_bin openssl openssl
need_bin squid squid               # CONNECT suite
need_bin tinyproxy tinyproxy       # CONNECT suite
need_bin sshd openssh-server      # tunnel suite: OpenSSH reverse tunnel (ssh -R) as the peer
need_bin go golang-go              # smux and HBONE peers (Go, built offline)
[ -d /usr/share/gocode/src/github.com/xtaci/smux ] || missing+=(golang-github-xtaci-smux-dev)
[ -d /usr/share/gocode/src/golang.org/x/net ] || missing+=(golang-golang-x-net-dev)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench_deps: all peers present"
  exit 0
fi

echo "bench_deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "bench_deps: need root for apt-get (missing: ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# Packaged services must not start on install (we start our own on 127.0.0.1).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
status=0
apt-get install -y --no-install-recommends "${missing[@]}" || status=$?
if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
exit "$status"
