#!/usr/bin/env bash
# The Android library as an AAR: target/android/squeeze.aar.
#
# With an NDK (ANDROID_NDK_HOME names one), cargo-ndk builds libsqueeze.so
# for arm64-v8a, armeabi-v7a and x86_64 into android/src/main/jniLibs (what
# the Gradle project packs). Without one, the AAR is assembled from what
# this machine has, to check its layout and bindings: the host
# target/release/libsqueeze_ffi.so as jni/x86_64/libsqueeze.so and, when
# cross-built, target/aarch64-unknown-linux-gnu/release/libsqueeze_ffi.so as
# jni/arm64-v8a/libsqueeze.so (glibc builds: right symbols, but not
# loadable on a phone).
#
# Either way: classes.jar holds the core classes and dev.squeeze.android
# (compiled against android/stubs, which are left out), plus the manifest
# AGP would write (namespace and minSdk from android/build.gradle.kts) and
# the consumer ProGuard rules. Then checks: every native method of
# dev.squeeze.Native (javap) has its Java_dev_squeeze_Native_* export in
# each .so and each export a native, each .so is of its ABI's machine, the
# jar holds no android.* class, and aapt2 links the manifest. Ends with
# `android: N checks passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/android
stage=$out/aar
jnilibs=$root/android/src/main/jniLibs
abis=(arm64-v8a armeabi-v7a x86_64)

now() { date +%s%N; }
start=$(now)
part=$start
seconds() { # NANOS as seconds with two decimals
    local ms=$(($1 / 1000000))
    printf '%d.%02d s' $((ms / 1000)) $((ms % 1000 / 10))
}
timing() {
    local t
    t=$(now)
    printf 'time: %-9s %s\n' "$1" "$(seconds $((t - part)))"
    part=$t
}
die() { echo "error: $*" >&2; echo "android: 0 checks passed, 1 failed"; exit 1; }

namespace=$(sed -n 's/^ *namespace = "\(.*\)"/\1/p' android/build.gradle.kts)
min_sdk=$(sed -n 's/^ *minSdk = \([0-9]*\)/\1/p' android/build.gradle.kts)
[ -n "$namespace" ] && [ -n "$min_sdk" ] || die "no namespace or minSdk in android/build.gradle.kts"
for tool in javac javap jar zip unzip nm readelf; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
if ! command -v aapt2 >/dev/null; then
    [ "$(id -u)" = 0 ] || die "aapt2 is missing: apt-get install aapt (as root)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq aapt >/dev/null
fi

rm -rf "$out"
mkdir -p "$stage/jni"
declare -A sources=() # ABI -> the .so to pack
if [ -n "${ANDROID_NDK_HOME:-}" ] && [ -d "$ANDROID_NDK_HOME" ]; then
    command -v cargo-ndk >/dev/null || cargo install cargo-ndk
    rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
    # The soname Android's linker records is the packed file's name.
    RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-soname,libsqueeze.so" \
        cargo ndk --platform "$min_sdk" -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$jnilibs" \
        build --release -p squeeze-ffi
    for abi in "${abis[@]}"; do
        mv -f "$jnilibs/$abi/libsqueeze_ffi.so" "$jnilibs/$abi/libsqueeze.so"
        sources[$abi]=$jnilibs/$abi/libsqueeze.so
    done
    echo "built with the NDK at $ANDROID_NDK_HOME: ${abis[*]}"
else
    echo "no ANDROID_NDK_HOME: packing the host builds that exist (layout and symbol checks only)"
    host=target/release/libsqueeze_ffi.so
    [ -f "$host" ] || die "$host is missing: run cargo build --release -p squeeze-ffi"
    sources[x86_64]=$root/$host
    arm=target/aarch64-unknown-linux-gnu/release/libsqueeze_ffi.so
    if [ -f "$arm" ]; then
        sources[arm64-v8a]=$root/$arm
    else
        echo "  no $arm (scripts/test-aarch64.sh cross-builds the runtime): no arm64-v8a"
    fi
fi
for abi in "${!sources[@]}"; do
    mkdir -p "$stage/jni/$abi"
    cp "${sources[$abi]}" "$stage/jni/$abi/libsqueeze.so"
done
timing natives

# classes.jar: core and Android classes; the stubs only on the class path.
classes=$out/classes
mkdir -p "$classes" "$out/stubs"
javac --release 17 -encoding UTF-8 -d "$out/stubs" $(find android/stubs -name '*.java')
javac --release 17 -encoding UTF-8 -Xlint:all -Xlint:-options -Werror -cp "$out/stubs" -d "$classes" \
    $(find android/src/main/java -name '*.java')
jar --create --file "$stage/classes.jar" -C "$classes" .
# The manifest as AGP writes it into an AAR: the namespace as package, and uses-sdk.
sed -e "s|<manifest |<manifest package=\"$namespace\" |" \
    -e "s|</manifest>|    <uses-sdk android:minSdkVersion=\"$min_sdk\" />\n</manifest>|" \
    android/src/main/AndroidManifest.xml >"$stage/AndroidManifest.xml"
cp android/consumer-rules.pro "$stage/proguard.txt"
: >"$stage/R.txt"
(cd "$stage" && zip -qrX "$out/squeeze.aar" AndroidManifest.xml classes.jar proguard.txt R.txt jni)
timing assemble

passed=0
failed=0
check() { # DESCRIPTION COMMAND...: one check
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $what"
    fi
}

listing=$(unzip -Z1 "$out/squeeze.aar")
for entry in AndroidManifest.xml classes.jar proguard.txt R.txt jni/x86_64/libsqueeze.so; do
    check "the AAR holds $entry" grep -qx "$entry" <<<"$listing"
done
jar_listing=$(unzip -Z1 "$stage/classes.jar")
check "classes.jar holds no android.* class (stubs left out)" \
    bash -c '! grep -q "^android/" <<<"$1"' _ "$jar_listing"
for class in dev/squeeze/Native dev/squeeze/Model dev/squeeze/Session dev/squeeze/SqueezeException \
    dev/squeeze/android/AndroidSqueeze; do
    check "classes.jar holds $class" grep -qx "$class.class" <<<"$jar_listing"
done
check "SqueezeException(int, String) exists for JNI" \
    bash -c 'javap -p -cp "$1" dev.squeeze.SqueezeException | grep -q "public dev.squeeze.SqueezeException(int, java.lang.String)"' _ "$classes"

# JNI symbols, from the compiled class: Java_<class>_<method>, with "_"
# escaped as "_1" (no overloads, so no signature suffix).
natives=$(javap -p -cp "$classes" dev.squeeze.Native |
    sed -n 's/.* native .* \([A-Za-z0-9_$]*\)(.*/\1/p' | sed 's/_/_1/g; s/^/Java_dev_squeeze_Native_/' | sort)
[ -n "$natives" ] || die "no native methods found in dev.squeeze.Native"
echo "$(wc -l <<<"$natives") natives in dev.squeeze.Native; ABIs packed: $(cd "$stage/jni" && echo *)"
declare -A machine=([arm64-v8a]=AArch64 [armeabi-v7a]=ARM [x86_64]=X86-64)
for so in "$stage"/jni/*/libsqueeze.so; do
    abi=$(basename "$(dirname "$so")")
    exports=$(nm -D --defined-only "$so" | awk '$3 ~ /^Java_/ { print $3 }' | sort)
    while read -r symbol; do
        check "$abi exports $symbol" grep -qx "$symbol" <<<"$exports"
    done <<<"$natives"
    check "$abi exports no Java_ symbol without a native method" \
        bash -c '[ -z "$(comm -13 <(echo "$1") <(echo "$2"))" ]' _ "$natives" "$exports"
    check "$abi library is an ${machine[$abi]} ELF" \
        bash -c 'readelf -h "$1" | grep -q "Machine:.*$2"' _ "$so" "${machine[$abi]}"
done

# aapt2 links the manifest. No android.jar here: a stand-in framework
# package declares the only android: attributes the manifest uses, with
# their public IDs (android.R.attr.minSdkVersion, targetSdkVersion).
fw=$out/framework
mkdir -p "$fw/res/values"
cat >"$fw/res/values/attrs.xml" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<resources>
    <attr name="minSdkVersion" format="integer|string" />
    <attr name="targetSdkVersion" format="integer|string" />
    <public type="attr" name="minSdkVersion" id="0x0101020c" />
    <public type="attr" name="targetSdkVersion" id="0x01010270" />
</resources>
XML
echo '<manifest package="android" />' >"$fw/AndroidManifest.xml"
aapt2 compile --dir "$fw/res" -o "$fw/res.zip"
aapt2 link --manifest "$fw/AndroidManifest.xml" -o "$fw/framework.apk" "$fw/res.zip"
unzip -p "$out/squeeze.aar" AndroidManifest.xml >"$out/AndroidManifest.xml"
check "aapt2 links the AAR's manifest" \
    aapt2 link --manifest "$out/AndroidManifest.xml" -I "$fw/framework.apk" -o "$out/manifest.apk"
check "the linked manifest is package $namespace, minSdk $min_sdk" \
    bash -c 'aapt2 dump badging "$1" | grep -q "^package: name='"'"'$2'"'"'" &&
             aapt2 dump badging "$1" | grep -q "^sdkVersion:'"'"'$3'"'"'"' _ "$out/manifest.apk" "$namespace" "$min_sdk"
timing checks

printf 'time: %-9s %s\n' total "$(seconds $(($(now) - start)))"
echo "aar: ${out#"$root"/}/squeeze.aar ($(stat -c %s "$out/squeeze.aar") bytes)"
echo "android: $passed checks passed, $failed failed"
[ "$failed" = 0 ]
