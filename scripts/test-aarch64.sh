#!/usr/bin/env bash
# The tests for aarch64-unknown-linux-gnu under qemu-user: built once, then
# run on two CPU models, `cortex-a53` (ARMv8.0, the oldest phone core) and
# `max` (every feature qemu knows). qemu enforces the model (an instruction it
# lacks raises SIGILL), and SQUEEZE_EXPECT_ISA=neon makes the dispatch tests
# fail on a silent fallback to the scalar kernels.
#
# The `onnx` feature is left out (tract is slow to build for aarch64): the
# model tests are tests/sqz_models.rs, on .sqz files packed on the host by
# scripts/pack-test-models.sh from the ONNX Runtime references of
# scripts/fetch-test-data.sh.
#
# Installs what it needs, skipping what is there: the rustup target, else
# (where rustup cannot reach its host, or SQUEEZE_AARCH64_TOOLCHAIN=debian)
# Debian's rustc-web/cargo-web with libstd-rust-web-dev:arm64; and Debian's
# gcc-aarch64-linux-gnu (the linker), libc6-dev-arm64-cross and qemu-user.
# Then type-checks the crate for aarch64-linux-android (docs/ANDROID.md).
# Closes with `aarch64: N passed, N failed`; exits non-zero on any failure.
# SQUEEZE_AARCH64_CPUS overrides the CPU models (e.g. `max`), and
# SQUEEZE_AARCH64_TIMEOUT the seconds each test binary may take per model.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
TARGET=aarch64-unknown-linux-gnu
CPUS=${SQUEEZE_AARCH64_CPUS:-cortex-a53 max}
TIMEOUT=${SQUEEZE_AARCH64_TIMEOUT:-1800} # seconds per test binary and CPU
start=$(date +%s)
t0=$start
lap() { # prints how long the part since the last lap took
    local now
    now=$(date +%s)
    echo "== $1: $((now - t0)) s"
    t0=$now
}

# ---- what it needs ----
apt_updated=
apt_install() { # installs the Debian packages given that are missing
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ -z $apt_updated ]]; then
        apt-get update -qq
        apt_updated=1
    fi
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user

toolchain=rustup
if [[ ${SQUEEZE_AARCH64_TOOLCHAIN:-} != debian ]] && command -v rustup >/dev/null &&
    { rustup target list --installed 2>/dev/null | grep -qx $TARGET || rustup target add $TARGET; }; then
    :
else
    echo "using Debian's Rust toolchain (rustc-web) for $TARGET"
    toolchain=debian
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt_updated=
    fi
    apt_install rustc-web cargo-web libstd-rust-web-dev:arm64
fi
xcargo() { # cargo for the aarch64 builds (the host's `cargo` builds the packing CLI)
    if [[ $toolchain == debian ]]; then
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc /usr/bin/cargo "$@"
    else
        cargo "$@"
    fi
}

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
# qemu finds the aarch64 loader and libc in the cross sysroot, unless the
# multiarch libc6:arm64 is installed (Debian's toolchain route brings it):
# its loader in /lib with the sysroot's libc hangs at the first thread spawn.
if [[ $toolchain == debian ]] || dpkg -s libc6:arm64 >/dev/null 2>&1; then
    unset QEMU_LD_PREFIX
else
    export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
fi
lap "setup ($toolchain toolchain, $(qemu-aarch64 --version | head -1))"

# ---- host side: references and the .sqz files of tests/sqz_models.rs ----
scripts/fetch-test-data.sh
scripts/pack-test-models.sh
lap "host: test data and packed models"

# ---- build once ----
json=$(mktemp)
log=$(mktemp)
trap 'rm -f "$json" "$log"' EXIT
xcargo test --release --workspace --no-default-features --target $TARGET --no-run \
    --message-format=json-render-diagnostics >"$json"
mapfile -t bins < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])
' "$json")
((${#bins[@]} > 0)) || { echo "no aarch64 test binaries were built" >&2; exit 1; }
printf '  %s\n' "${bins[@]##*/}"
lap "cross build (${#bins[@]} test binaries)"

# ---- run per CPU model ----
status=0
crashed=0 # binaries that died (SIGILL, timeout…) before their `test result:` line
for cpu in $CPUS; do
    for bin in "${bins[@]}"; do
        echo "-- $cpu: ${bin##*/}"
        one=$(mktemp)
        # Tests run with the crate as cwd, as under cargo.
        code=0
        (cd runtime && QEMU_CPU=$cpu SQUEEZE_EXPECT_ISA=neon \
            timeout "$TIMEOUT" qemu-aarch64 "$bin") >"$one" 2>&1 || code=$?
        if ((code != 0)); then
            status=1
            grep -q '^test result:' "$one" || crashed=$((crashed + 1))
            cat "$one"
            echo "FAILED: ${bin##*/} on $cpu (exit $code)"
        else
            # Passing binaries: their summaries only (the full log is long).
            grep -E '^(running|test result:)' "$one" || true
        fi
        cat "$one" >>"$log"
        rm -f "$one"
    done
    lap "qemu -cpu $cpu"
done

# ---- Android: type-check only (no NDK here; docs/ANDROID.md) ----
if [[ $toolchain == rustup ]] && { rustup target list --installed | grep -qx aarch64-linux-android ||
    rustup target add aarch64-linux-android; }; then
    # The GNU cross compiler stands in for the NDK's clang for zstd's C sources.
    CC_aarch64_linux_android=aarch64-linux-gnu-gcc AR_aarch64_linux_android=aarch64-linux-gnu-ar \
        xcargo check -p squeeze -p squeeze-ffi --no-default-features --features squeeze-ffi/jni \
        --target aarch64-linux-android || {
        echo "FAILED: cargo check for aarch64-linux-android"
        status=1
    }
    lap "check for aarch64-linux-android"
else
    echo "NOT RUN: check for aarch64-linux-android (no rustup target for it here)"
fi

echo "aarch64 total: $(($(date +%s) - start)) s"
awk -v crashed="$crashed" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "aarch64: %d passed, %d failed\n", p, f + crashed }' "$log"
exit "$status"
