#!/usr/bin/env bash
# The Swift package (ios/) against the host's libsqueeze_ffi.so: builds it and
# runs its XCTest suite with Swift 6 in a Debian trixie chroot
# (scripts/swift-chroot.sh), on fixtures the Rust CLI makes here.
#
#   cargo build --release -p squeeze-ffi -p squeeze   # first: the library and the CLI
#   scripts/test-swift.sh
#
# Needs root (the chroot). Ends with `swift: N passed, M failed`; exits
# non-zero when anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIBDIR=$ROOT/target/release
SQUEEZE=$LIBDIR/squeeze
CHROOT=$ROOT/scripts/swift-chroot.sh

die() { echo "test-swift: $*" >&2; exit 1; }
[[ -f $LIBDIR/libsqueeze_ffi.so ]] ||
    die "no $LIBDIR/libsqueeze_ffi.so: run cargo build --release -p squeeze-ffi"
[[ -x $SQUEEZE ]] || die "no $SQUEEZE: run cargo build --release -p squeeze"
[[ -f $ROOT/ffi/include/squeeze.h ]] || die "no ffi/include/squeeze.h"
command -v python3 >/dev/null || die "python3 is needed to write the fixtures"

T0=$SECONDS
timed() { # timed LABEL CMD...: runs CMD, reports its time
    local label=$1 t=$SECONDS rc=0
    shift
    "$@" || rc=$?
    echo "test-swift: $label: $((SECONDS - t)) s" >&2
    return $rc
}

# The fixtures live under target/ so that the chroot, which sees only the
# bind-mounted repository, reads them at the same path.
mkdir -p "$ROOT/target"
FIX=$(mktemp -d "$ROOT/target/swift-fixtures.XXXXXX")
LOG=$FIX/swift-test.log
cleanup() { rm -rf "$FIX"; }
trap cleanup EXIT

make_fixtures() {
    local m=$ROOT/models/tiny-classifier.onnx
    printf 'c%d\n' 0 1 2 3 4 5 6 7 8 9 >"$FIX/labels.txt"
    "$SQUEEZE" pack "$m" -o "$FIX/tiny.sqz" --name tiny --model-version 3 \
        --labels "$FIX/labels.txt" --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 >/dev/null
    python3 - "$FIX" <<'EOF'
import struct, sys
d = sys.argv[1]
# x[i] = ((i*37) % 101)/100 as little-endian f32, shape (1, 3, 64, 64), .npy 1.0
n = 3 * 64 * 64
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64), }"
header += ' ' * (63 - (10 + len(header)) % 64) + '\n'  # pad to a multiple of 64
with open(d + '/x.npy', 'wb') as f:
    f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode())
    f.write(struct.pack('<%df' % n, *[((i * 37) % 101) / 100 for i in range(n)]))
w, h = 96, 80
# RGBA: byte (x*3 + y*5 + c*7) % 256
with open(d + '/frame.rgba', 'wb') as f:
    f.write(bytes((x * 3 + y * 5 + c * 7) % 256 for y in range(h) for x in range(w) for c in range(4)))
# NV12: Y (x*7 + y*3) % 256, then interleaved Cb, Cr rows of w/2 pairs
with open(d + '/frame.nv12', 'wb') as f:
    f.write(bytes((x * 7 + y * 3) % 256 for y in range(h) for x in range(w)))
    f.write(bytes(((x // 2) * 11 + y * 13 + (x % 2) * 50) % 256 for y in range(h // 2) for x in range(w)))
EOF
    "$SQUEEZE" run "$FIX/tiny.sqz" --input "$FIX/x.npy" --save "$FIX/out" >/dev/null
    "$SQUEEZE" run "$FIX/tiny.sqz" --input "$FIX/frame.rgba" --frame-size 96x80 --rotate 90 \
        --save "$FIX/fout" >/dev/null
    "$SQUEEZE" run "$FIX/tiny.sqz" --input "$FIX/frame.nv12" --frame-size 96x80 \
        --crop 8,4,64,72 --rotate 270 --mirror --yuv-matrix bt709 --video-range \
        --save "$FIX/nout" >/dev/null
    for f in out/probs.npy fout/probs.npy nout/probs.npy; do
        [[ -s $FIX/$f ]] || die "the CLI wrote no $f"
    done
}
timed fixtures make_fixtures

timed "chroot setup" "$CHROOT" setup

# In the chroot: the repository at its own path, so the module map's
# relative header path and -L/-rpath to target/release resolve as here.
LINK=(-Xlinker -L"$LIBDIR" -Xlinker -rpath -Xlinker "$LIBDIR")
in_chroot() { "$CHROOT" run "$ROOT" -- env SQUEEZE_SWIFT_FIXTURES="$FIX" \
    bash -c 'cd ios && exec "$@"' bash "$@"; }

if ! timed "swift build" in_chroot swift build "${LINK[@]}"; then
    echo "test-swift: swift build failed (total $((SECONDS - T0)) s)" >&2
    echo "swift: 0 passed, 1 failed (swift build)"
    exit 1
fi

rc=0 # with pipefail, the pipeline fails when swift test does
timed "swift test" in_chroot swift test "${LINK[@]}" 2>&1 | tee "$LOG" || rc=$?

# XCTest's last summary line is the whole run's: "Executed N tests, with M
# failures (U unexpected) in ..." ("with S tests skipped and M failures" when
# some were skipped). M counts failed assertions, so the per-test lines
# ("Test Case 'X.y' passed/failed/skipped") give the counts reported here.
summary=$(grep -E 'Executed [0-9]+ tests?, with ' "$LOG" | tail -1 || true)
passed=$(grep -cE "^Test Case '.*' passed" "$LOG" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$LOG" || true)
skipped=$(grep -cE "^Test Case '.*' skipped" "$LOG" || true)
echo "test-swift: total $((SECONDS - T0)) s" >&2
if [[ -z $summary ]]; then
    # no summary: the build failed or the test process died mid-run
    echo "test-swift: no XCTest summary in the output (swift test exit $rc)" >&2
    echo "swift: $passed passed, $((failed + 1)) failed (no summary)"
    exit 1
fi
total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
if ((passed + failed + skipped != total)); then
    echo "test-swift: $total tests executed but $passed passed, $failed failed, $skipped skipped" >&2
    rc=1
fi
((skipped == 0)) || echo "test-swift: $skipped skipped" >&2
echo "swift: $passed passed, $failed failed"
[[ $rc == 0 && $failed == 0 && $total -gt 0 ]]
