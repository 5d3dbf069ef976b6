#!/usr/bin/env bash
# The test command: fetch test data (venv, ONNX backend tests, ORT references)
# into $SQUEEZE_CACHE, pack the .sqz models of tests/sqz_models.rs with the
# release CLI, then run every test in the one release profile; then the app
# surface: libsqueeze as a phone links it (.sqz only, with the JNI glue)
# from C (plain, ASan/UBSan, valgrind), Java (JUnit on the desktop JVM, the
# AAR layout) and Swift (a Debian chroot). Closes with one summary line per
# part and exits non-zero if any part failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-test-data.sh
scripts/pack-test-models.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
part=$(date +%s)
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed", p, f }' "$log")
echo "== cargo tests: $(($(date +%s) - part)) s"

# The library an app ships: no ONNX import, no CLI.
cargo build --release -p squeeze-ffi
for script in test-c test-java build-android test-swift; do
    part=$(date +%s)
    scripts/$script.sh 2>&1 | tee "$log" || status=1
    summary+=$'\n'$(grep -E '^[a-z]+: [0-9]+ (checks )?passed, [0-9]+ failed$' "$log" | tail -1 || echo "$script: no summary (FAILED)")
    echo "== $script: $(($(date +%s) - part)) s"
done
echo "$summary"
exit "$status"
