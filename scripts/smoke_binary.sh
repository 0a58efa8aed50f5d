#!/usr/bin/env bash
# The single executable, end to end (CI and scripts/test.sh):
#   1. `bun run build` → dist/edgemux (fails here if it does not print its version)
#   2. copy it to a temporary directory outside the source tree
#   3. run the binary's own tests and the end-to-end suites with EDGEMUX_BIN
#      pointing at the copy: edgemux runs from a working directory outside the
#      tree (test/binary_test.ts also hides the tree, node_modules and bun)
# Prints bun test's summary (" N pass" / " N fail"); a failed build prints
# " 0 pass" / " 1 fail" so the caller's count sees it. Exit status non-zero on
# any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== build dist/edgemux"
if ! bun run build; then
  echo "build failed"
  echo " 0 pass"
  echo " 1 fail"
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/edgemux-binary-XXXXXX")
trap 'rm -rf "$dir"' EXIT
cp dist/edgemux "$dir/edgemux"
echo "== end-to-end suites against $dir/edgemux"
EDGEMUX_BIN="$dir/edgemux" bun test --timeout 60000 \
  test/binary_test.ts \
  test/sni_routing_test.ts \
  test/sni_lifecycle_test.ts \
  test/cli_test.ts \
  test/examples_test.ts \
  test/socket_activation_test.ts \
  test/upgrade_test.ts
