#!/usr/bin/env bash
# Benchmark squeeze against ONNX Runtime and tract and write docs/BENCHMARKS.md.
#   1. fetch/generate the test data and the Python venv (scripts/fetch-test-data.sh; a no-op when up to date)
#   2. build `squeeze` and the `tract_bench` example in release (one profile; nothing else)
#   3. run scripts/bench.py with the venv python (extra arguments are passed to it, e.g. --models mobilenetv2):
#      squeeze, ONNX Runtime and tract per model, interleaved, at 1 and 2 threads (tract: 1), and
#      a 1x1 conv GEMM against this core's measured peak FMA (`squeeze bench --fma-peak`), and
#      a camera frame's conversion against OpenCV (opencv-python-headless, installed into the venv here)
# Packed files and the generated conv model go under $SQUEEZE_CACHE/bench/ (default
# ~/.cache/squeeze/bench), never in the repository.
# The accuracy section shows $SQUEEZE_CACHE/accuracy.json, written by
# `cargo test --release --test accuracy` (not run here: about 4 minutes); run that first.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
export SQUEEZE_CACHE=${SQUEEZE_CACHE:-$HOME/.cache/squeeze}
export SQUEEZE_TEST_MODELS=${SQUEEZE_TEST_MODELS:-$(cd "$REPO/.." && pwd)/shared/models}

"$HERE/fetch-test-data.sh"

cd "$REPO"
cargo build --release -p squeeze --bin squeeze
# tract numbers are optional: without the example, bench.py records them as n/a.
cargo build --release -p squeeze --example tract_bench \
    || echo "WARNING: examples/tract_bench did not build; tract columns will be n/a" >&2

# OpenCV is the camera-frame peer; only the benchmark needs it (not the tests).
"$SQUEEZE_CACHE/venv/bin/python" -c "import cv2" 2>/dev/null \
    || "$SQUEEZE_CACHE/venv/bin/python" -m pip install -q opencv-python-headless
exec "$SQUEEZE_CACHE/venv/bin/python" "$HERE/bench.py" "$@"
