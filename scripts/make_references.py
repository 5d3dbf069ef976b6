#!/usr/bin/env python3
"""Write ONNX Runtime reference outputs for squeeze's tests.

For every fp32 test model in $SQUEEZE_TEST_MODELS, the fixtures of models/ named in
FIXTURE_MODELS, and every light_*.onnx from the
onnx 1.17.0 wheel ($SQUEEZE_CACHE/onnx-1.17.0/light), runs onnxruntime (CPU, graph
optimisations disabled, so the references are the plain math) on deterministic inputs
(seeded random numbers, or a real picture for the few models whose outputs are
degenerate on noise: sqz_models.INPUT_IMAGES) and writes
$SQUEEZE_CACHE/refs/<model-stem>/{input_<i>.npy, output_<j>.npy, meta.json}
plus $SQUEEZE_CACHE/refs/index.json. The outputs are cross-checked against a fully
optimised session (warning only). A failing model is reported and skipped; the
exit status is non-zero if any failed.

ORT's u8 x s8 integer kernels on x86 without VNNI (vpmaddubsw) saturate pairs of
products at 32767, which ORT documents; a QOperator model's output then depends on the
host (measured on EfficientNet-Lite0 QOp: 20,014 of 401,408 values of the first conv
off, by up to 233 steps). A probe detects this, and such a model's reference is then
ORT's run of its QDQ form (QDQ_FORMS), whose float fake-quantization does not saturate.
"""
import json
import shutil
import sys
import time

import numpy as np
import onnxruntime as ort

from sqz_models import (CACHE, DYNAMIC_SHAPES, FIXTURE_MODELS, FIXTURES_DIR, MODELS_DIR, ONNX_DATA, QDQ_FORMS, QUANTIZED_MODELS,
                        TEST_MODELS, make_inputs, model_stem, output_step, session)

REFS = CACHE / "refs"
REL_TOL = 1e-5


def save(path, x):
    x = np.asarray(x)
    dtype = "<f4" if x.dtype.kind == "f" else x.dtype.newbyteorder("<")  # int64 -> '<i8'
    np.save(path, np.ascontiguousarray(x, dtype=dtype))


def ort_u8s8_saturates():
    """Whether ORT's QLinearConv saturates here: a 1x1 conv of two u8 255 inputs by two
    s8 127 weights, whose exact sum 64770 does not fit the int16 of vpmaddubsw."""
    from onnx import TensorProto, helper

    def const(name, dtype, dims, vals):
        return helper.make_tensor(name, dtype, dims, vals)

    inits = [const("xs", TensorProto.FLOAT, [], [1.0]), const("xz", TensorProto.UINT8, [], [0]),
             const("w", TensorProto.INT8, [1, 2, 1, 1], [127, 127]), const("ws", TensorProto.FLOAT, [], [1.0]),
             const("wz", TensorProto.INT8, [], [0]), const("ys", TensorProto.FLOAT, [], [256.0]),
             const("yz", TensorProto.UINT8, [], [0])]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
    graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 1, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = int(sess.run(None, {"x": np.full((1, 2, 1, 1), 255, np.uint8)})[0].reshape(-1)[0])
    return y != round(64770 / 256)


def make_reference(path, saturates, shape=None):
    """References of one model into refs/STEM, or refs/STEM@NxCxHxW at an input `shape`."""
    stem = model_stem(path)
    sess = session(path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    feeds = make_inputs(sess, stem, shape=shape)
    outs = sess.run(None, feeds)
    note = None
    if saturates and stem in QDQ_FORMS:
        qdq = MODELS_DIR / f"{QDQ_FORMS[stem]}.onnx"
        outs = session(qdq, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feeds)
        note = f"ORT's u8 x s8 kernels saturate on this host: reference from {qdq.name}"
        print(f"NOTE {stem}: {note}")

    opt = session(path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, feeds)
    for o, ref, got in zip(sess.get_outputs(), outs, opt):
        scale = max(float(np.abs(ref).max(initial=0.0)), 1e-30)
        diff = float(np.abs(ref.astype(np.float64) - got).max(initial=0.0))
        if diff > REL_TOL * scale:
            print(f"WARNING {stem}: output {o.name} differs with ORT_ENABLE_ALL: "
                  f"max|diff| {diff:.3g} (max|ref| {scale:.3g})")

    if shape:
        stem = f"{stem}@{'x'.join(map(str, shape))}"
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
        "note": note,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(REFS / stem, ignore_errors=True)
    tmp.rename(REFS / stem)
    return stem, meta


# The camera-frame test (tests/frames.rs): the NV21 frame of ../shared, rotated a
# quarter turn clockwise, converted by the numpy reference below, into MobileNetV2.
FRAME_CASE = {
    "stem": "frame-mobilenetv2",
    "model": "mobilenetv2",
    "frame": "data/camera_coffee_1920x1080.nv21",
    "width": 1920,
    "height": 1080,
    "rotate": 90,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}


def resample_matrix(n_from, n_to):
    """(n_to, n_from) weights: bilinear with half-pixel centres, area averaging when
    shrinking by more than 2x (the semantics of squeeze's frame module)."""
    r = n_from / n_to
    m = np.zeros((n_to, n_from))
    for o in range(n_to):
        if r > 2:
            lo, hi = o * r, (o + 1) * r
            for i in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_from)):
                m[o, i] = (min(hi, i + 1) - max(lo, i)) / r
        else:
            s = min(max((o + 0.5) * r - 0.5, 0.0), n_from - 1.0)
            i = int(np.floor(s))
            m[o, i] += 1 - (s - i)
            m[o, min(i + 1, n_from - 1)] += s - i
    return m


def nv21_to_input(nv21, w, h, rotate, out_h, out_w, mean, std):
    """NCHW float32: chroma replicated per 2x2 block, rotated clockwise, resized per
    Y/U/V plane, BT.601 full range to RGB clamped to 0..255, then normalized."""
    y = nv21[: w * h].reshape(h, w).astype(np.float64)
    vu = nv21[w * h :].reshape((h + 1) // 2, (w + 1) // 2, 2).astype(np.float64)
    up = lambda c: c.repeat(2, 0).repeat(2, 1)[:h, :w]
    planes = np.stack([y, up(vu[..., 1]), up(vu[..., 0])])
    planes = np.rot90(planes, k=-(rotate // 90), axes=(1, 2))
    rows = resample_matrix(planes.shape[1], out_h)
    cols = resample_matrix(planes.shape[2], out_w)
    small = np.einsum("oh,chw,pw->cop", rows, planes, cols, optimize=True)
    yy, u, v = small[0], small[1] - 128, small[2] - 128
    rgb = np.stack([yy + 1.402 * v, yy - 0.344136 * u - 0.714136 * v, yy + 1.772 * u]).clip(0, 255)
    x = (rgb / 255 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    return x[None].astype(np.float32)


def make_frame_reference():
    case = FRAME_CASE
    path = MODELS_DIR / f"{case['model']}.onnx"
    sess = session(path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    inp = sess.get_inputs()[0]
    nv21 = np.fromfile(MODELS_DIR / case["frame"], dtype=np.uint8)
    x = nv21_to_input(nv21, case["width"], case["height"], case["rotate"], inp.shape[2], inp.shape[3],
                      case["mean"], case["std"])
    out = sess.run(None, {inp.name: x})[0]
    tmp = REFS / f".tmp-{case['stem']}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save(tmp / "input_0.npy", x)
    save(tmp / "output_0.npy", out)
    meta = dict(case, model=str(path.resolve()), frame=str((MODELS_DIR / case["frame"]).resolve()))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(REFS / case["stem"], ignore_errors=True)
    tmp.rename(REFS / case["stem"])
    print(f"{case['stem']:26} {case['width']}x{case['height']} NV21 rotated {case['rotate']} -> {list(x.shape)}")


def main():
    models = [MODELS_DIR / f"{m}.onnx" for m in TEST_MODELS]
    models += [FIXTURES_DIR / f"{m}.onnx" for m in FIXTURE_MODELS]
    models += sorted((ONNX_DATA / "light").glob("light_*.onnx"))
    shutil.rmtree(REFS, ignore_errors=True)
    REFS.mkdir(parents=True)
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}; models {MODELS_DIR}; writing {REFS}")
    saturates = ort_u8s8_saturates()
    if not (ONNX_DATA / "light").is_dir():
        print(f"ERROR: {ONNX_DATA / 'light'} missing (run scripts/fetch-test-data.sh)")
    written, failed = [], []
    cases = [(path, None) for path in models]
    cases += [(MODELS_DIR / f"{m}.onnx", shape) for m, shapes in DYNAMIC_SHAPES.items() for shape in shapes]
    for path, shape in cases:
        t0 = time.perf_counter()
        try:
            stem, meta = make_reference(path, saturates, shape)
        except Exception as e:  # keep going, report at the end
            print(f"ERROR {model_stem(path)}: {type(e).__name__}: {e}")
            failed.append(model_stem(path))
            continue
        shapes = lambda key: " ".join("x".join(map(str, t["shape"])) for t in meta[key])
        print(f"{stem:26} in {shapes('inputs'):16} out {shapes('outputs'):24} {time.perf_counter() - t0:6.2f}s")
        written.append(stem)
    try:
        make_frame_reference()
    except Exception as e:
        print(f"ERROR {FRAME_CASE['stem']}: {type(e).__name__}: {e}")
        failed.append(FRAME_CASE["stem"])
    (REFS / "index.json").write_text(json.dumps({"models": written}, indent=1) + "\n")
    if failed or not (ONNX_DATA / "light").is_dir():
        print(f"FAILED: {', '.join(failed) or 'no light models'}")
        return 1
    print(f"wrote {len(written)} references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
