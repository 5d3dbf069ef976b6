#!/usr/bin/env bash
# Desktop tests of the Android library's Java API (android/): compiles the
# core classes and the JUnit 5 tests with javac, compile-checks the one
# Android-only class against android/stubs (never packed), makes the
# fixtures with the release CLI (a packed tiny classifier, its output on a
# deterministic input and on camera frames), then runs the tests on this
# JVM against the host build of the JNI library under -Xcheck:jni.
# Needs `cargo build --release` (the CLI) and
# `cargo build --release -p squeeze-ffi` (libsqueeze_ffi.so) first.
# Ends with one line: `java: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
lib=$root/target/release/libsqueeze_ffi.so
cli=$root/target/release/squeeze
junit=/usr/share/java/junit-platform-console-standalone.jar
out=$root/target/java
fixtures=$out/fixtures

now() { date +%s%N; }
start=$(now)
part=$start
seconds() { # NANOS as seconds with two decimals
    local ms=$(($1 / 1000000))
    printf '%d.%02d s' $((ms / 1000)) $((ms % 1000 / 10))
}
timing() { # NAME: the time since the last mark
    local t
    t=$(now)
    printf 'time: %-9s %s\n' "$1" "$(seconds $((t - part)))"
    part=$t
}
fail() { echo "error: $*" >&2; echo "java: 0 passed, 1 failed"; exit 1; }

# Debian's junit5 ships the console launcher (with the Jupiter engine).
if [ ! -f "$junit" ]; then
    [ "$(id -u)" = 0 ] || fail "$junit is missing: apt-get install junit5 (as root)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq junit5 >/dev/null
fi
[ -f "$junit" ] || fail "the junit5 package did not provide $junit"
command -v javac >/dev/null || fail "javac (a JDK 17) is missing"
[ -f "$lib" ] || fail "$lib is missing: run cargo build --release -p squeeze-ffi"
[ -x "$cli" ] || fail "$cli is missing: run cargo build --release"
for src in ffi/src/*.rs; do
    if [ "$src" -nt "$lib" ]; then
        echo "warning: $src is newer than $lib: rebuild with cargo build --release -p squeeze-ffi" >&2
        break
    fi
done
timing setup

rm -rf "$out"
mkdir -p "$out/classes/main" "$out/classes/stubs" "$out/classes/android" "$out/classes/test" "$fixtures"
javac_() { javac --release 17 -encoding UTF-8 -Xlint:all -Xlint:-options -Werror "$@"; }
javac_ -d "$out/classes/main" $(find android/src/main/java/dev/squeeze -maxdepth 1 -name '*.java')
# The Android-only class against the stubs, in a tree of its own: neither
# its stubs nor it are on the tests' class path.
javac --release 17 -encoding UTF-8 -d "$out/classes/stubs" $(find android/stubs -name '*.java')
javac_ -cp "$out/classes/main:$out/classes/stubs" -d "$out/classes/android" \
    $(find android/src/main/java/dev/squeeze/android -name '*.java')
javac_ -cp "$out/classes/main:$junit" -d "$out/classes/test" $(find android/src/test/java -name '*.java')
timing compile

# Fixtures: the inputs from the tests' own generator, the references from the CLI.
java -cp "$out/classes/main:$out/classes/test" dev.squeeze.Fixtures "$fixtures"
"$cli" pack models/tiny-classifier.onnx -o "$fixtures/tiny.sqz" >/dev/null
seq -f 'class %g' 0 999 >"$fixtures/labels.txt"
"$cli" pack models/tiny-classifier.onnx -o "$fixtures/labels.sqz" --labels "$fixtures/labels.txt" >/dev/null
run() { "$cli" run "$fixtures/tiny.sqz" "$@" >/dev/null; }
run --input "$fixtures/x.npy" --save "$fixtures/out"
run --input "$fixtures/f.rgba" --frame-size 96x80 --rotate 90 --save "$fixtures/fout"
run --input "$fixtures/f.rgba" --frame-size 96x80 --crop 8,4,64,60 --mirror --rotate 180 --save "$fixtures/fcrop"
run --input "$fixtures/f.nv21" --frame-size 96x80 --rotate 270 --save "$fixtures/fnv21"
timing fixtures

log=$out/junit.log
status=0
# --add-opens: the descriptor tests read FileDescriptor's int (Android has
# ParcelFileDescriptor.getFd()).
java -Xcheck:jni --add-opens java.base/java.io=ALL-UNNAMED \
    -Dsqueeze.library.path="$lib" -Dsqueeze.test.dir="$fixtures" \
    -jar "$junit" --disable-banner --details=tree --disable-ansi-colors \
    --class-path "$out/classes/main:$out/classes/test" \
    --scan-class-path "$out/classes/test" 2>&1 | tee "$log" || status=$?
timing junit

count() { # the number in the launcher's summary line "[  N tests WHAT  ]"
    sed -n "s/^\[ *\([0-9]*\) tests $1 *\]\$/\1/p" "$log" | tail -1
}
passed=$(count successful)
failed=$(count failed)
skipped=$(count aborted)
if [ -z "$passed" ] || [ -z "$failed" ]; then
    echo "error: no JUnit summary in $log" >&2
    passed=${passed:-0}
    failed=$((${failed:-0} + 1))
    status=1
fi
# -Xcheck:jni warnings (leaked local references, calls with an exception
# pending) are bugs in the JNI glue even when the tests pass.
if grep -E 'WARNING in native method|JNI local refs|FATAL ERROR in native method' "$log" >/dev/null; then
    echo "error: -Xcheck:jni reported problems:" >&2
    grep -E 'WARNING in native method|JNI local refs|FATAL ERROR in native method' "$log" | sort | uniq -c >&2
    failed=$((failed + 1))
    status=1
fi
printf 'time: %-9s %s\n' total "$(seconds $(($(now) - start)))"
if [ "${skipped:-0}" -gt 0 ]; then
    echo "java: $passed passed, $failed failed, $skipped skipped"
else
    echo "java: $passed passed, $failed failed"
fi
[ "$status" = 0 ] && [ "$failed" = 0 ]
