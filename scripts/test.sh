#!/usr/bin/env bash
# The project's test command (README, CI): installs what is missing, then
#   1. bun test: unit tests beside the code and end-to-end/interop tests in test/
#   2. the end-to-end suites again with edgemux running under Deno
#   3. the single executable (bun build --compile) against the end-to-end suites
#   4. deno check over src/ and workers/ (the same code type-checks for Deno)
# and ends with each failure's output again (so the tail of a CI log says why)
# and one line "N passed, M failed". Exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }

# Everything the tests write to the temporary directory (configs, PKI, sockets,
# agents' working directories) goes under one folder that is removed at the end,
# with any process still started from it (a test that failed before its cleanup).
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgemux-run-XXXXXX")
export TMPDIR="$run_tmp"
cleanup() {
  pkill -f -- "$run_tmp" 2>/dev/null || true
  rm -rf "$run_tmp"
}
trap cleanup EXIT

passed=0
failed=0
log_dir=$(mktemp -d)

# Reads bun test's closing " N pass" / " N fail" lines from a log.
count_bun() {
  local log=$1 p f
  p=$(grep -E '^ *[0-9]+ pass$' "$log" | tail -1 | grep -oE '[0-9]+')
  f=$(grep -E '^ *[0-9]+ fail$' "$log" | tail -1 | grep -oE '[0-9]+')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  # A run that crashed before printing its summary counts as one failure.
  if [ -z "$p" ] && [ -z "$f" ]; then failed=$((failed + 1)); fi
}

echo "== bun test (all tests, edgemux on Bun)"
bun test --timeout 60000 2>&1 | tee "$log_dir/bun.log"
bun_rc=${PIPESTATUS[0]}
count_bun "$log_dir/bun.log"
[ "$bun_rc" -ne 0 ] && ! grep -qE '^ *[1-9][0-9]* fail$' "$log_dir/bun.log" && failed=$((failed + 1))

echo "== end-to-end suites with edgemux on Deno"
EDGEMUX_RUNTIME=deno bun test --timeout 60000 test/frontdoor_e2e_test.ts test/agent_config_test.ts test/agent_metrics_test.ts test/sni_routing_test.ts test/sni_lifecycle_test.ts test/sni_bad_input_test.ts test/cli_test.ts test/connect_proxy_test.ts test/connect_hbone_test.ts test/sni_hbone_test.ts test/tunnel_e2e_test.ts test/connection_id_test.ts test/remote_files_test.ts test/remote_shell_test.ts test/examples_test.ts test/socket_activation_test.ts test/upgrade_test.ts test/http_strict_test.ts test/udp_listener_test.ts test/admin_auth_test.ts test/dashboard_chromium_test.ts test/http_edge_test.ts test/http_interop_test.ts 2>&1 | tee "$log_dir/deno.log"
deno_rc=${PIPESTATUS[0]}
count_bun "$log_dir/deno.log"
[ "$deno_rc" -ne 0 ] && ! grep -qE '^ *[1-9][0-9]* fail$' "$log_dir/deno.log" && failed=$((failed + 1))

echo "== single executable: build dist/edgemux, run the end-to-end suites against a copy outside the tree"
bash scripts/smoke_binary.sh 2>&1 | tee "$log_dir/binary.log"
bin_rc=${PIPESTATUS[0]}
count_bun "$log_dir/binary.log"
[ "$bin_rc" -ne 0 ] && ! grep -qE '^ *[1-9][0-9]* fail$' "$log_dir/binary.log" && failed=$((failed + 1))

echo "== deno check (every module under src/ and workers/)"
if deno task check >"$log_dir/check.log" 2>&1; then
  passed=$((passed + 1))
  echo "ok: $(grep -c 'Check' "$log_dir/check.log") modules"
else
  failed=$((failed + 1))
  cat "$log_dir/check.log"
fi

# Each failed test again with the output bun printed for it (up to 80 lines since the test before).
if [ "$failed" -ne 0 ]; then
  echo "== failures"
  for log in "$log_dir"/bun.log "$log_dir"/deno.log "$log_dir"/binary.log; do
    [ -f "$log" ] || continue
    awk -v name="$(basename "$log" .log)" '
      / tests? failed:$/ { exit }
      /^\((pass|skip|todo)\) / { n = 0; next }
      /^\(fail\) / { print "-- " name ": " $0; for (i = (n > 80 ? n - 80 : 0); i < n; i++) print buf[i % 80]; n = 0; next }
      { buf[n++ % 80] = $0 }
    ' "$log"
  done
fi

rm -rf "$log_dir"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
