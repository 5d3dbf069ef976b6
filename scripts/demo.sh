#!/usr/bin/env bash
# The main job: a real photo, turned into what a phone camera hands an app (a
# 1920x1080 NV21 frame, rotated as a portrait-held phone records it), goes
# through an int8 .sqz of a real classifier (EfficientNet-Lite0, quantized by
# `squeeze pack --quantize int8` calibrated on other photos): the frame is
# converted straight into the model's input (rotated upright, resized,
# normalized) and classified; the top-5 ImageNet labels are printed with the
# load, frame-conversion and inference times.
#   scripts/demo.sh [PHOTO]   (default: the coffee photo of ../shared/models)
# Needs ../shared/models (or SQUEEZE_TEST_MODELS); without it, the tiny bundled
# fixture runs instead and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${SQUEEZE_TEST_MODELS:-$(cd .. && pwd)/shared/models}
cargo build --release -p squeeze --bin squeeze --example photo_to_frame
SQ=target/release/squeeze
OUT=${SQUEEZE_CACHE:-$HOME/.cache/squeeze}/demo
mkdir -p "$OUT"

if [[ ! -f $M/efficientnet-lite0-fp32.onnx ]]; then
    echo "!!! $M/efficientnet-lite0-fp32.onnx not found: running the tiny bundled fixture instead" >&2
    $SQ pack models/tiny-classifier.onnx -o "$OUT/tiny.sqz" --weights int8 --scale 0.00392157 --mean 0.5 --std 0.25
    $SQ run "$OUT/tiny.sqz" --input models/sample.png
    exit 0
fi

PHOTO=${1:-$M/data/images/coffee.jpg}
echo "== the camera frame: $PHOTO as a phone sensor delivers it"
target/release/examples/photo_to_frame "$PHOTO" "$OUT/frame.nv21" 1920 1080

echo "== int8 .sqz of EfficientNet-Lite0, calibrated on the scene photos"
MODEL=$OUT/efficientnet-lite0-int8.sqz
if [[ ! -f $MODEL || $M/efficientnet-lite0-fp32.onnx -nt $MODEL || $SQ -nt $MODEL ]]; then
    $SQ pack "$M/efficientnet-lite0-fp32.onnx" -o "$MODEL" --quantize int8 --calibration "$M/data/images" \
        --scale 1 --mean 127 --std 128 --labels "$M/data/imagenet_labels.txt" | tail -n 4
fi
ls -l "$M/efficientnet-lite0-fp32.onnx" "$MODEL" | awk '{ print $5, $9 }'

echo "== the frame, rotated upright, converted and classified"
$SQ run "$MODEL" --input "$OUT/frame.nv21" --frame-size 1920x1080 --rotate 90
