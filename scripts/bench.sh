#!/usr/bin/env bash
# Benchmark squeeze against ONNX Runtime and tract and write docs/BENCHMARKS.md.
#   1. fetch/generate the test data and the Python venv (scripts/fetch-test-data.sh; a no-op when up to date)
#   2. build `squeeze` and the `tract_bench` example in release (one profile; nothing else)
#   3. run scripts/bench.py with the venv python (extra arguments are passed to it, e.g. --models mobilenetv2):
#      squeeze, ONNX Runtime and tract per model, interleaved, at 1 and 2 threads (tract: 1), and
#      a 1x1 conv GEMM against this core's measured peak FMA (`squeeze bench --fma-peak`), and
#      a camera frame's conversion against OpenCV (opencv-python-headless, installed into the venv here)
#      and through the C ABI (ffi/bench/run_frame.c) against the Rust Session, and
#      the stripped size of the aarch64 app library (libsqueeze) in four builds (cross gcc from Debian)
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

# The app library: on the host for the C ABI's frame run, and for aarch64 to
# measure its size (.sqz only, + JNI, + LTO, + ONNX import), under $SQUEEZE_CACHE/bench/lib.
cargo build --release -p squeeze-ffi
gcc -std=c99 -O2 -Iffi/include ffi/bench/run_frame.c -Ltarget/release -lsqueeze_ffi \
    -Wl,-rpath,"$REPO/target/release" -o target/release/ffi_run_frame
if command -v aarch64-linux-gnu-gcc >/dev/null && rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    lib_build() { # lib_build VARIANT PROFILE CARGO_FLAGS...
        local variant=$1 profile=$2
        shift 2
        cargo build --profile "$profile" -p squeeze-ffi --target aarch64-unknown-linux-gnu "$@"
        mkdir -p "$SQUEEZE_CACHE/bench/lib/$variant"
        cp "target/aarch64-unknown-linux-gnu/$profile/libsqueeze_ffi.so" "$SQUEEZE_CACHE/bench/lib/$variant/"
    }
    lib_build sqz release --no-default-features
    lib_build sqz-jni release
    lib_build sqz-jni-lto mobile
    lib_build onnx-jni release --features onnx
else
    echo "WARNING: no aarch64 cross toolchain (scripts/test-aarch64.sh installs it); library sizes will be n/a" >&2
fi

# OpenCV is the camera-frame peer; only the benchmark needs it (not the tests).
"$SQUEEZE_CACHE/venv/bin/python" -c "import cv2" 2>/dev/null \
    || "$SQUEEZE_CACHE/venv/bin/python" -m pip install -q opencv-python-headless
exec "$SQUEEZE_CACHE/venv/bin/python" "$HERE/bench.py" "$@"
