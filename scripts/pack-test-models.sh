#!/usr/bin/env bash
# Packs the reference models of tests/sqz_models.rs and tests/quantized.rs
# (the stems in their model_tests! lists) to f32 .sqz with the host's release `squeeze` binary,
# into $SQUEEZE_SQZ_DIR (default $SQUEEZE_CACHE/sqz-f32), at the input shapes
# of their ONNX Runtime references ($SQUEEZE_CACHE/refs/<stem>/meta.json).
# Needs scripts/fetch-test-data.sh first. Builds the binary if needed (cargo
# is a no-op when it is up to date). Idempotent: a model is packed again only
# when its .onnx, its meta.json or the binary is newer than its .sqz.
set -euo pipefail
cd "$(dirname "$0")/.."
export SQUEEZE_CACHE=${SQUEEZE_CACHE:-$HOME/.cache/squeeze}
export SQUEEZE_TEST_MODELS=${SQUEEZE_TEST_MODELS:-$(cd .. && pwd)/shared/models}
OUT=${SQUEEZE_SQZ_DIR:-$SQUEEZE_CACHE/sqz-f32}
BIN=${CARGO_TARGET_DIR:-target}/release/squeeze

cargo build --release -p squeeze --bin squeeze
mkdir -p "$OUT"
PY=$SQUEEZE_CACHE/venv/bin/python
[[ -x $PY ]] || PY=python3

mapfile -t stems < <(sed -n 's/^ *[a-z0-9_]* => "\([^"]*\)",$/\1/p' tests/sqz_models.rs tests/quantized.rs)
((${#stems[@]} > 0)) || { echo "no model list found in tests/sqz_models.rs" >&2; exit 1; }
packed=0
missing=0
for stem in "${stems[@]}"; do
    meta=$SQUEEZE_CACHE/refs/$stem/meta.json
    if [[ ! -f $meta ]]; then
        echo "NOT PACKED: $stem: no reference at $meta (run scripts/fetch-test-data.sh)" >&2
        missing=$((missing + 1))
        continue
    fi
    # The model file and one --input-shape per input, from the reference's meta.json.
    mapfile -t args < <("$PY" - "$meta" "$SQUEEZE_TEST_MODELS" "$SQUEEZE_CACHE" <<'EOF'
import json, pathlib, sys
meta, models, cache = json.load(open(sys.argv[1])), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
name = pathlib.Path(meta["model"]).name
fixture = pathlib.Path("models") / name  # the repo's fixtures first
print(cache / "onnx-1.17.0/light" / name if name.startswith("light_") else fixture if fixture.exists() else models / name)
for i in meta["inputs"]:
    print("--input-shape")
    print(i["name"] + "=" + "x".join(str(d) for d in i["shape"]))
EOF
    )
    model=${args[0]}
    sqz=$OUT/$stem.sqz
    if [[ ! -f $model ]]; then
        echo "NOT PACKED: $stem: $model missing" >&2
        missing=$((missing + 1))
        continue
    fi
    if [[ -f $sqz && $sqz -nt $model && $sqz -nt $meta && $sqz -nt $BIN ]]; then
        continue
    fi
    # Level 3: the weights are f32 test fixtures, speed matters more than size.
    "$BIN" pack "$model" -o "$sqz.tmp" --weights f32 --level 3 --samples 0 "${args[@]:1}" >/dev/null
    mv "$sqz.tmp" "$sqz"
    packed=$((packed + 1))
done
echo "test models: $packed packed, $((${#stems[@]} - packed - missing)) up to date, $missing missing, in $OUT"
