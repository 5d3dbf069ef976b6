#!/usr/bin/env bash
# Fetch and generate squeeze's test data into $SQUEEZE_CACHE (default ~/.cache/squeeze):
#   venv/          python venv with onnxruntime==1.32.0, numpy, onnx==1.17.0, pillow (from PyPI)
#   wheels/        the onnx 1.17.0 wheel
#   onnx-1.17.0/   node/test_*/{model.onnx,test_data_set_*/*.pb} and light/light_*.onnx
#                  unpacked from that wheel (ONNX's own backend test data)
#   refs/          ONNX Runtime reference inputs/outputs (scripts/make_references.py)
# Test models are read from $SQUEEZE_TEST_MODELS (default ../shared/models beside the repo).
# Idempotent: a stamp makes a re-run a no-op unless these scripts, the pins or the
# models' MANIFEST.tsv changed. `--force` regenerates everything but the venv and wheel.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SQUEEZE_CACHE=${SQUEEZE_CACHE:-$HOME/.cache/squeeze}
export SQUEEZE_TEST_MODELS=${SQUEEZE_TEST_MODELS:-$(cd "$HERE/../.." && pwd)/shared/models}
export PIP_DISABLE_PIP_VERSION_CHECK=1
ONNX_VER=1.17.0
REQS="onnxruntime==1.32.0 numpy onnx==$ONNX_VER pillow"
VENV=$SQUEEZE_CACHE/venv
PY=$VENV/bin/python
DATA=$SQUEEZE_CACHE/onnx-$ONNX_VER
STAMP=$SQUEEZE_CACHE/.complete

KEY=$({ echo "$REQS $SQUEEZE_TEST_MODELS"; cat "$HERE"/fetch-test-data.sh "$HERE"/make_references.py \
         "$HERE"/sqz_models.py "$HERE"/../models/*.onnx; cat "$SQUEEZE_TEST_MODELS/MANIFEST.tsv" 2>/dev/null || true; } | sha256sum)
if [[ ${1:-} == --force ]]; then
    rm -f "$DATA/.complete"
elif [[ -x $PY && -f $SQUEEZE_CACHE/refs/index.json && "$(cat "$STAMP" 2>/dev/null)" == "$KEY" ]]; then
    echo "test data up to date in $SQUEEZE_CACHE"
    exit 0
fi
mkdir -p "$SQUEEZE_CACHE"
rm -f "$STAMP"  # only a fully successful run below writes it back

# 1. venv
if [[ ! -x $PY || "$(cat "$VENV/.reqs" 2>/dev/null)" != "$REQS" ]]; then
    echo "creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    if ! "$PY" -m pip install -q $REQS; then
        echo "WARNING: onnx==$ONNX_VER does not install here; using the newest onnx (wheel data still from $ONNX_VER)" >&2
        "$PY" -m pip install -q onnxruntime==1.32.0 numpy onnx pillow
    fi
    echo "$REQS" >"$VENV/.reqs"
fi

# 2. ONNX backend test data (node/ and light/) from the onnx wheel
if [[ ! -f $DATA/.complete ]]; then
    WHEELS=$SQUEEZE_CACHE/wheels
    shopt -s nullglob
    whl=("$WHEELS"/onnx-$ONNX_VER-*.whl)
    if ((${#whl[@]} == 0)); then
        dl=("$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" "onnx==$ONNX_VER")
        "${dl[@]}" || "${dl[@]}" --platform manylinux_2_17_x86_64 --python-version 3.11
        whl=("$WHEELS"/onnx-$ONNX_VER-*.whl)
    fi
    echo "unpacking ${whl[0]##*/} -> $DATA"
    rm -rf "$DATA.tmp"
    "$PY" - "${whl[0]}" "$DATA.tmp" <<'EOF'
import pathlib, sys, zipfile
whl, out = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "onnx/backend/test/data/"
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        rel = name[len(prefix):]
        if name.startswith(prefix) and rel.split("/")[0] in ("node", "light") and not name.endswith("/"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(z.read(name))
print(f"{len(list((out / 'node').iterdir()))} node tests, {len(list((out / 'light').glob('*.onnx')))} light models")
EOF
    rm -rf "$DATA"
    mv "$DATA.tmp" "$DATA"
    touch "$DATA/.complete"
fi

# 3. reference outputs
"$PY" "$HERE/make_references.py"
echo "$KEY" >"$STAMP"
echo "test data ready in $SQUEEZE_CACHE"
