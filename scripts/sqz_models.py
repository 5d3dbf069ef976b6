"""Shared helpers for squeeze's Python test-data scripts.

Where things live (test models, cache), which models get reference outputs,
how dynamic input dims are resolved to concrete shapes, and how deterministic
random inputs are made. Used by make_references.py and ort_session_bench.py.
"""
import os
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("SQUEEZE_TEST_MODELS") or REPO.parent / "shared" / "models").resolve()
CACHE = Path(os.environ.get("SQUEEZE_CACHE") or Path.home() / ".cache" / "squeeze").resolve()
ONNX_DATA = CACHE / "onnx-1.17.0"  # node/ and light/ unpacked from the onnx 1.17.0 wheel

# Models from $SQUEEZE_TEST_MODELS that get reference outputs: the fp32 ones, then the
# statically quantized ones (QUANTIZED_MODELS; tests/quantized.rs compares them in steps of
# their output quantization, recorded in meta.json as "output_step").
TEST_MODELS = [
    "mobilenetv2", "mobilenetv3-small", "squeezenet1.1", "shufflenetv2-x1.0", "resnet18",
    "efficientnet-lite0-fp32", "ppocr-det-v4", "ppocr-cls-mobile-v2", "ppocr-rec-v4",
    "blazeface-short", "selfie-segmentation",
    "efficientnet-lite0-int8-qdq", "efficientnet-lite0-int8-qop",
]
QUANTIZED_MODELS = ["efficientnet-lite0-int8-qdq", "efficientnet-lite0-int8-qop"]
# The repository's own fixtures (models/) that get references too: ops no model of
# $SQUEEZE_TEST_MODELS has.
FIXTURE_MODELS = ["detector-head", "sequence-head", "signal-head"]
FIXTURES_DIR = REPO / "models"
# QOperator models and their QDQ form (the same quantized graph; tests/quantized.rs checks
# that squeeze imports both to identical integer graphs). Where ORT's u8 x s8 kernels
# saturate (x86 without VNNI), the QOperator reference is ORT's run of the QDQ form.
QDQ_FORMS = {"efficientnet-lite0-int8-qop": "efficientnet-lite0-int8-qdq"}

# Concrete shapes for models with dynamic H/W (keyed by file stem; applies to every input).
SHAPE_OVERRIDES = {
    "ppocr-det-v4": [1, 3, 320, 320],  # 640x640 is too slow for the scalar Rust reference in tests
    "ppocr-cls-mobile-v2": [1, 3, 48, 192],
    "ppocr-rec-v4": [1, 3, 48, 320],
}

# Uniform input range matching each model's normalisation; others get standard normal.
INPUT_RANGES = {
    "efficientnet-lite0-fp32": (-1.0, 1.0),
    "ppocr-det-v4": (-1.0, 1.0),
    "ppocr-cls-mobile-v2": (-1.0, 1.0),
    "ppocr-rec-v4": (-1.0, 1.0),
    "blazeface-short": (-1.0, 1.0),
    "selfie-segmentation": (0.0, 1.0),
}

# Models whose outputs are degenerate on noise (selfie mask and text map all ~0) get a real
# picture from $SQUEEZE_TEST_MODELS/data instead: (file, channel order, scale, offset on 0..255).
INPUT_IMAGES = {
    "selfie-segmentation": ("data/images/grace_hopper.jpg", "RGB", 1 / 255, 0.0),
    "blazeface-short": ("data/images/grace_hopper.jpg", "RGB", 1 / 127.5, -1.0),
    "ppocr-det-v4": ("data/text/page_scan.png", "BGR", 1 / 127.5, -1.0),
    # Quantized classifiers: calibrated on photos, so a photo exercises their real ranges.
    "efficientnet-lite0-int8-qdq": ("data/images/grace_hopper.jpg", "RGB", 1 / 127.5, -1.0),
    "efficientnet-lite0-int8-qop": ("data/images/grace_hopper.jpg", "RGB", 1 / 127.5, -1.0),
}


def output_step(path):
    """The scale of the DequantizeLinear that produces the model's first output (its
    quantization step), or None for a float output."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {t.name: t for t in m.graph.initializer}
    out = m.graph.output[0].name
    for n in m.graph.node:
        if out in n.output and n.op_type == "DequantizeLinear" and n.input[1] in init:
            return float(numpy_helper.to_array(init[n.input[1]]).reshape(-1)[0])
    return None


def model_stem(path):
    return Path(path).name[: -len(".onnx")] if str(path).endswith(".onnx") else Path(path).stem


def session(path, opt_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, threads=0):
    """CPU session; threads=0 lets ORT choose."""
    so = ort.SessionOptions()
    so.graph_optimization_level = opt_level
    so.log_severity_level = 3  # errors only
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


# Models with dynamic input dims checked at several shapes in one session
# (tests/models.rs, `*_shapes`); references in refs/STEM@NxCxHxW.
DYNAMIC_SHAPES = {
    "ppocr-det-v4": [[1, 3, 320, 448], [1, 3, 480, 480], [1, 3, 640, 352]],
    "ppocr-rec-v4": [[1, 3, 48, 160], [1, 3, 48, 480], [1, 3, 48, 256]],
}


def input_shape(stem, declared):
    """Concrete shape: per-model override, else the declared shape with dynamic dims set to 1."""
    if stem in SHAPE_OVERRIDES:
        shape = list(SHAPE_OVERRIDES[stem])
        if len(shape) != len(declared):
            raise ValueError(f"{stem}: override {shape} has wrong rank for {declared}")
        return shape
    return [d if isinstance(d, int) and d > 0 else 1 for d in declared]


def image_input(spec, shape):
    """NCHW float32 [1,3,H,W] from a picture, resized (bilinear) to H x W and normalised."""
    from PIL import Image  # only needed for the models in INPUT_IMAGES

    file, order, scale, offset = spec
    h, w = shape[2], shape[3]
    rgb = np.asarray(Image.open(MODELS_DIR / file).convert("RGB").resize((w, h), Image.BILINEAR), np.float32)
    chw = (rgb[..., ::-1] if order == "BGR" else rgb).transpose(2, 0, 1)[None]
    return chw * np.float32(scale) + np.float32(offset)


def make_inputs(sess, stem, images=True, shape=None):
    """Deterministic inputs {name: array} for every model input, in model input order:
    a picture for the models in INPUT_IMAGES (if images), else seeded random numbers.
    `shape`, if given, is the shape of every input (single-input models)."""
    rng = np.random.default_rng(zlib.crc32(stem.encode()))
    lo_hi = INPUT_RANGES.get(stem)
    feeds = {}
    for inp in sess.get_inputs():
        if inp.type != "tensor(float)":
            raise TypeError(f"input {inp.name}: unsupported type {inp.type}")
        shape = list(shape) if shape else input_shape(stem, inp.shape)
        if images and stem in INPUT_IMAGES:
            x = image_input(INPUT_IMAGES[stem], shape)
        else:
            x = rng.uniform(*lo_hi, size=shape) if lo_hi else rng.standard_normal(shape)
        feeds[inp.name] = np.ascontiguousarray(x, dtype="<f4")
    return feeds
