#!/usr/bin/env bash
# The C ABI from C (tests/c/ffi_test.c): built with gcc once plain and once
# with AddressSanitizer and UndefinedBehaviorSanitizer, and the plain build
# run under valgrind's memcheck too. Needs target/release/libsqueeze_ffi.so
# and the squeeze CLI (built by scripts/test.sh), which packs the bundled
# model and computes the reference outputs the C program checks against.
# Also compiles the header as C99 and C11 with -Wall -Wextra -Werror and as
# C++. Closes with `c: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=target/release
for need in "$lib/libsqueeze_ffi.so" "$lib/squeeze"; do
    [[ -e $need ]] || { echo "FAILED: $need is missing (run scripts/test.sh or cargo build --release first)"; exit 1; }
done
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
lap() { echo "== $1: $(($(date +%s) - start)) s"; start=$(date +%s); }

status=0
passed=0
failed=0
tally() { # the "N passed, M failed" line of a run's log
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1 || true)
    if [[ -z $line ]]; then failed=$((failed + 1)); echo "FAILED: $2 ended without a summary"; return; fi
    passed=$((passed + ${line%% *}))
    local f=${line#*, }; failed=$((failed + ${f%% *}))
}

# The header alone, in every dialect it promises.
echo '#include "squeeze.h"' >"$work/header.c"
cp "$work/header.c" "$work/header.cpp"
for dialect in "gcc -std=c99 $work/header.c" "gcc -std=c11 $work/header.c" "g++ -std=c++11 $work/header.cpp"; do
    if $dialect -Wall -Wextra -Werror -pedantic -fsyntax-only -Iffi/include 2>"$work/h.log"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); status=1; echo "FAILED: squeeze.h under ${dialect% *}"; cat "$work/h.log"
    fi
done

# Fixtures: the bundled model packed, inputs from the C program, and the
# Rust CLI's outputs for them (the reference).
"$lib/squeeze" pack models/tiny-classifier.onnx -o "$work/tiny.sqz" >/dev/null
cc=(gcc -std=c99 -Wall -Wextra -Werror -O1 -g -Iffi/include tests/c/ffi_test.c -L"$lib" -lsqueeze_ffi -lpthread -lm -Wl,-rpath,"$PWD/$lib")
"${cc[@]}" -o "$work/ffi_test"
"$work/ffi_test" write-inputs "$work"
"$lib/squeeze" run "$work/tiny.sqz" --input "$work/x.npy" --save "$work/out" >/dev/null
"$lib/squeeze" run "$work/tiny.sqz" --input "$work/frame.nv21" --frame-size 96x80 --rotate 90 --save "$work/fout" >/dev/null
lap "build and fixtures"

"$work/ffi_test" check "$work" | tee "$work/plain.log" || status=1
tally "$work/plain.log" plain
lap "plain"

"${cc[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -o "$work/ffi_test_asan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$work/ffi_test_asan" check "$work" | tee "$work/asan.log" || status=1
tally "$work/asan.log" "ASan/UBSan"
lap "ASan and UBSan"

# memcheck: any error or definite/indirect leak fails the run.
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$work/ffi_test" check "$work" >"$work/vg.log" 2>&1 || { status=1; echo "FAILED: valgrind"; cat "$work/vg.log"; }
grep -E "definitely lost|indirectly lost|ERROR SUMMARY|All heap blocks" "$work/vg.log" || true
tally "$work/vg.log" valgrind
lap "valgrind"

echo "c: $passed passed, $failed failed"
[[ $failed -eq 0 ]] || status=1
exit "$status"
