#!/usr/bin/env bash
# The main job on the bundled model: inspect it, pack it to an int8 .sqz,
# check the pack, and run both on the bundled picture.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p squeeze
SQ=target/release/squeeze
OUT=$(mktemp -d)
$SQ inspect models/tiny-classifier.onnx --passes
$SQ pack models/tiny-classifier.onnx -o "$OUT/tiny.sqz" --weights int8 --scale 0.00392157 --mean 0.5 --std 0.25
$SQ inspect "$OUT/tiny.sqz" --load --verify
$SQ run models/tiny-classifier.onnx --input models/sample.png --mean 0.5 --std 0.25 --save "$OUT/onnx-out"
$SQ run "$OUT/tiny.sqz" --input models/sample.png --save "$OUT/sqz-out"
echo "outputs saved under $OUT"
