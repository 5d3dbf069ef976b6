#!/usr/bin/env bash
# The test command: fetch test data (venv, ONNX backend tests, ORT references)
# into $SQUEEZE_CACHE, then run every test in the one release profile.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-test-data.sh
cargo test --release --workspace
