#!/usr/bin/env bash
# Builds the Go smux interop/benchmark peers (test/go/*.go) offline against the
# Debian packages golang-go (1.19) and golang-github-xtaci-smux-dev, in GOPATH
# mode. Output: .tmp/go/smux_peer (or the directory given as $1).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.tmp/go}"
mkdir -p "$out"
command -v go >/dev/null || { echo "build_go_peers: 'go' not found (apt-get install golang-go golang-github-xtaci-smux-dev)" >&2; exit 1; }
[ -d /usr/share/gocode/src/github.com/xtaci/smux ] || { echo "build_go_peers: Go smux missing (apt-get install golang-github-xtaci-smux-dev)" >&2; exit 1; }
export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off
export GOCACHE="${GOCACHE:-$out/cache}"
cd "$root/test/go"
go build -o "$out/smux_peer" smux_peer.go
echo "$out/smux_peer"
