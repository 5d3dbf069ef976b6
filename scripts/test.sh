#!/usr/bin/env bash
# The test command: fetch test data (venv, ONNX backend tests, ORT references)
# into $SQUEEZE_CACHE, pack the .sqz models of tests/sqz_models.rs with the
# release CLI, then run every test in the one release profile and close with
# one summary line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-test-data.sh
scripts/pack-test-models.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
