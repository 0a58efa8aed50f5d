#!/usr/bin/env bash
# Builds the Go HBONE peer (test/go/hbone: an x/net/http2 CONNECT client and
# relay server) offline against the Debian packages golang-go (1.19) and
# golang-golang-x-net-dev, in GOPATH mode. Output: .tmp/go-hbone/hbone (or
# the directory given as $1). Rebuilds only when a source is newer.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.tmp/go-hbone}"
mkdir -p "$out"
command -v go >/dev/null || { echo "build_go_hbone: 'go' not found (apt-get install golang-go golang-golang-x-net-dev)" >&2; exit 1; }
[ -d /usr/share/gocode/src/golang.org/x/net/http2 ] || { echo "build_go_hbone: x/net/http2 missing (apt-get install golang-golang-x-net-dev)" >&2; exit 1; }
bin="$out/hbone"
src="$root/test/go/hbone"
if [ -x "$bin" ] && [ -z "$(find "$src" -name '*.go' -newer "$bin")" ]; then echo "$bin"; exit 0; fi
export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off
export GOCACHE="${GOCACHE:-$out/cache}"
cd "$src"
go build -o "$bin.tmp" .
mv "$bin.tmp" "$bin"
echo "$bin"
