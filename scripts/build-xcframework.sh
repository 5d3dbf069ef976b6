#!/usr/bin/env bash
# Squeeze.xcframework: the C library for iOS apps, from the squeeze-ffi
# staticlib (libsqueeze_ffi.a), for
#   - devices:   aarch64-apple-ios
#   - simulator: aarch64-apple-ios-sim + x86_64-apple-ios, merged with lipo
#     (an xcframework takes one library per platform variant)
# each with ffi/include/squeeze.h and a module map naming the module
# CSqueeze, the module the Swift layer in ios/ imports. See ios/README.md
# for using it from ios/Package.swift as a binary target.
#
#   scripts/build-xcframework.sh [OUTPUT]   # default: ios/build/Squeeze.xcframework
#
# Needs macOS with Xcode (xcodebuild, lipo) and the three Rust targets
# (rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios).
# Built without default features: the JNI glue is for Android only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/ios/build/Squeeze.xcframework}
DEVICE=aarch64-apple-ios
SIMULATORS=(aarch64-apple-ios-sim x86_64-apple-ios)
# The deployment target rustc builds for, as in ios/Package.swift.
export IPHONEOS_DEPLOYMENT_TARGET=${IPHONEOS_DEPLOYMENT_TARGET:-13.0}

die() { echo "build-xcframework: $*" >&2; exit 1; }

# Check the tools before building anything.
command -v xcodebuild >/dev/null 2>&1 ||
    die "xcodebuild not found: this needs macOS with Xcode installed (xcode-select --install is not enough); host is $(uname -s)"
command -v lipo >/dev/null 2>&1 || die "lipo not found (it comes with Xcode)"
command -v cargo >/dev/null 2>&1 || die "cargo not found"
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed)
    missing=()
    for t in "$DEVICE" "${SIMULATORS[@]}"; do
        grep -qx "$t" <<<"$installed" || missing+=("$t")
    done
    [[ ${#missing[@]} == 0 ]] || die "missing Rust targets: rustup target add ${missing[*]}"
fi
[[ -f $ROOT/ffi/include/squeeze.h ]] || die "no ffi/include/squeeze.h"

cd "$ROOT"
for t in "$DEVICE" "${SIMULATORS[@]}"; do
    echo "build-xcframework: cargo build for $t" >&2
    cargo build --release -p squeeze-ffi --no-default-features --target "$t"
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Headers in a directory named after the module: Xcode copies every
# xcframework's headers into one include directory, where two top-level
# module.modulemap files would collide.
HEADERS=$WORK/include
mkdir -p "$HEADERS/CSqueeze"
cp ffi/include/squeeze.h "$HEADERS/CSqueeze/"
cat >"$HEADERS/CSqueeze/module.modulemap" <<'EOF'
module CSqueeze {
    header "squeeze.h"
    export *
}
EOF

mkdir -p "$WORK/simulator"
sims=()
for t in "${SIMULATORS[@]}"; do sims+=("target/$t/release/libsqueeze_ffi.a"); done
lipo -create "${sims[@]}" -output "$WORK/simulator/libsqueeze_ffi.a"

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
xcodebuild -create-xcframework \
    -library "target/$DEVICE/release/libsqueeze_ffi.a" -headers "$HEADERS" \
    -library "$WORK/simulator/libsqueeze_ffi.a" -headers "$HEADERS" \
    -output "$OUT"
echo "build-xcframework: wrote $OUT" >&2
