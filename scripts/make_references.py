#!/usr/bin/env python3
"""Write ONNX Runtime reference outputs for squeeze's tests.

For every fp32 test model in $SQUEEZE_TEST_MODELS and every light_*.onnx from the
onnx 1.17.0 wheel ($SQUEEZE_CACHE/onnx-1.17.0/light), runs onnxruntime (CPU, graph
optimisations disabled, so the references are the plain math) on deterministic inputs
(seeded random numbers, or a real picture for the few models whose outputs are
degenerate on noise: sqz_models.INPUT_IMAGES) and writes
$SQUEEZE_CACHE/refs/<model-stem>/{input_<i>.npy, output_<j>.npy, meta.json}
plus $SQUEEZE_CACHE/refs/index.json. The outputs are cross-checked against a fully
optimised session (warning only). A failing model is reported and skipped; the
exit status is non-zero if any failed.
"""
import json
import shutil
import sys
import time

import numpy as np
import onnxruntime as ort

from sqz_models import (CACHE, MODELS_DIR, ONNX_DATA, QUANTIZED_MODELS, TEST_MODELS, make_inputs, model_stem,
                        output_step, session)

REFS = CACHE / "refs"
REL_TOL = 1e-5


def save(path, x):
    x = np.asarray(x)
    dtype = "<f4" if x.dtype.kind == "f" else x.dtype.newbyteorder("<")  # int64 -> '<i8'
    np.save(path, np.ascontiguousarray(x, dtype=dtype))


def make_reference(path):
    stem = model_stem(path)
    sess = session(path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    feeds = make_inputs(sess, stem)
    outs = sess.run(None, feeds)

    opt = session(path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, feeds)
    for o, ref, got in zip(sess.get_outputs(), outs, opt):
        scale = max(float(np.abs(ref).max(initial=0.0)), 1e-30)
        diff = float(np.abs(ref.astype(np.float64) - got).max(initial=0.0))
        if diff > REL_TOL * scale:
            print(f"WARNING {stem}: output {o.name} differs with ORT_ENABLE_ALL: "
                  f"max|diff| {diff:.3g} (max|ref| {scale:.3g})")

    tmp = REFS / f".tmp-{stem}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, x in enumerate(feeds.values()):
        save(tmp / f"input_{i}.npy", x)
    for j, y in enumerate(outs):
        save(tmp / f"output_{j}.npy", y)
    meta = {
        "model": str(path.resolve()),
        "output_step": output_step(path) if stem in QUANTIZED_MODELS else None,
        "inputs": [{"name": n, "shape": list(x.shape)} for n, x in feeds.items()],
        "outputs": [{"name": o.name, "shape": list(y.shape)} for o, y in zip(sess.get_outputs(), outs)],
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(REFS / stem, ignore_errors=True)
    tmp.rename(REFS / stem)
    return stem, meta


def main():
    models = [MODELS_DIR / f"{m}.onnx" for m in TEST_MODELS]
    models += sorted((ONNX_DATA / "light").glob("light_*.onnx"))
    shutil.rmtree(REFS, ignore_errors=True)
    REFS.mkdir(parents=True)
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}; models {MODELS_DIR}; writing {REFS}")
    if not (ONNX_DATA / "light").is_dir():
        print(f"ERROR: {ONNX_DATA / 'light'} missing (run scripts/fetch-test-data.sh)")
    written, failed = [], []
    for path in models:
        t0 = time.perf_counter()
        try:
            stem, meta = make_reference(path)
        except Exception as e:  # keep going, report at the end
            print(f"ERROR {model_stem(path)}: {type(e).__name__}: {e}")
            failed.append(model_stem(path))
            continue
        shapes = lambda key: " ".join("x".join(map(str, t["shape"])) for t in meta[key])
        print(f"{stem:26} in {shapes('inputs'):16} out {shapes('outputs'):24} {time.perf_counter() - t0:6.2f}s")
        written.append(stem)
    (REFS / "index.json").write_text(json.dumps({"models": written}, indent=1) + "\n")
    if failed or not (ONNX_DATA / "light").is_dir():
        print(f"FAILED: {', '.join(failed) or 'no light models'}")
        return 1
    print(f"wrote {len(written)} references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
