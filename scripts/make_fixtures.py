"""Regenerates the tiny fixtures in models/ (run with the venv python from
scripts/fetch-test-data.sh). Each is small enough to commit (< 1 MB):

  tiny-classifier.onnx  a 10-class CNN on 1x3x64x64 with seeded random weights,
                        exercising Conv+BN+Relu/Clip, depthwise conv, Pad,
                        MaxPool, GlobalAveragePool, Flatten, Gemm, Softmax.
  vgg16-shapes.onnx     VGG16 (224x224, with Dropout) whose weights are built
                        by ConstantOfShape, so the file is tiny but import
                        yields the real 138,357,544 parameters.
  detector-head.onnx    a detector-style head on 1x8x6x6 features without weights:
                        DepthToSpace (CRD and DCR), ReduceMax, Expand, Add, Tile
                        and SpaceToDepth, the shapes given as constants as
                        exporters fold them.
  sequence-head.onnx    recurrent layers on 7x2x6 sequences with seeded random
                        weights: a bidirectional LSTM (peepholes, clip, initial
                        states), a reverse GRU (linear_before_reset), a GRU with
                        HardSigmoid and an RNN with Relu, batch element 1's
                        sequence 4 steps long.
  signal-head.onnx      1-D layers on 1x4x30 signals with seeded random weights:
                        Conv (SAME_UPPER, strided depthwise, dilated),
                        ConvTranspose (grouped, output_padding),
                        MaxPool and AveragePool, as audio and text models
                        export them.
  sample.png            a 64x64 synthetic test picture (no real photo).

`python make_fixtures.py NAME...` regenerates only the named ones.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
rng = np.random.default_rng(7)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def tiny_classifier():
    nodes, inits = [], []

    def conv_bn(x, cin, cout, k, stride, group, act, idx, pad=None):
        w = rng.normal(0, np.sqrt(2.0 / (cin // group * k * k)), (cout, cin // group, k, k))
        inits.append(init(f"w{idx}", w))
        for p, v in (("g", rng.uniform(0.5, 1.5, cout)), ("b", rng.normal(0, 0.1, cout)),
                     ("m", rng.normal(0, 0.1, cout)), ("v", rng.uniform(0.5, 1.5, cout))):
            inits.append(init(f"{p}{idx}", v))
        pads = [k // 2] * 4 if pad is None else pad
        nodes.append(helper.make_node("Conv", [x, f"w{idx}"], [f"c{idx}"], strides=[stride] * 2,
                                      pads=pads, group=group))
        nodes.append(helper.make_node("BatchNormalization",
                                      [f"c{idx}", f"g{idx}", f"b{idx}", f"m{idx}", f"v{idx}"], [f"n{idx}"]))
        if act == "relu":
            nodes.append(helper.make_node("Relu", [f"n{idx}"], [f"a{idx}"]))
        else:
            nodes.append(helper.make_node("Clip", [f"n{idx}", "zero", "six"], [f"a{idx}"]))
        return f"a{idx}"

    inits += [init("zero", 0.0), init("six", 6.0)]
    x = conv_bn("image", 3, 16, 3, 2, 1, "relu", 0)
    x = conv_bn(x, 16, 16, 3, 1, 16, "relu6", 1)
    x = conv_bn(x, 16, 32, 1, 1, 1, "relu6", 2)
    nodes.append(helper.make_node("Pad", [x, "pads"], ["padded"], mode="constant"))
    inits.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "pads"))
    x = conv_bn("padded", 32, 32, 3, 2, 32, "relu", 3, pad=[0, 0, 0, 0])
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[2, 2], strides=[2, 2]))
    x = conv_bn("pool", 32, 64, 1, 1, 1, "relu", 4)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    inits += [init("fc_w", rng.normal(0, 0.2, (10, 64))), init("fc_b", rng.normal(0, 0.1, 10))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    g = helper.make_graph(nodes, "tiny-classifier",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
                          [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="squeeze-fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "tiny-classifier.onnx"))


def vgg16():
    nodes, inits = [], []
    counter = [0]

    def weight(shape, value):
        i = counter[0]
        counter[0] += 1
        inits.append(numpy_helper.from_array(np.array(shape, dtype=np.int64), f"shape{i}"))
        nodes.append(helper.make_node("ConstantOfShape", [f"shape{i}"], [f"param{i}"],
                                      value=helper.make_tensor("v", TensorProto.FLOAT, [1], [value])))
        return f"param{i}"

    x, cin = "image", 3
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    for i, c in enumerate(cfg):
        if c == "M":
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"pool{i}"
            continue
        w, b = weight([c, cin, 3, 3], 0.001), weight([c], 0.0)
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x, cin = f"relu{i}", c
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    x = "flat"
    for i, (fin, fout) in enumerate([(25088, 4096), (4096, 4096), (4096, 1000)]):
        w, b = weight([fout, fin], 0.001), weight([fout], 0.0)
        nodes.append(helper.make_node("Gemm", [x, w, b], [f"fc{i}"], transB=1))
        x = f"fc{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"fcrelu{i}"]))
            nodes.append(helper.make_node("Dropout", [f"fcrelu{i}"], [f"drop{i}"]))
            x = f"drop{i}"
    g = helper.make_graph(nodes, "vgg16-shapes",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 224, 224])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1000])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="squeeze-fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "vgg16-shapes.onnx"))


def detector_head():
    ints = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.int64), name)
    nodes = [
        helper.make_node("DepthToSpace", ["features"], ["crd"], blocksize=2, mode="CRD"),
        helper.make_node("DepthToSpace", ["features"], ["dcr"], blocksize=2, mode="DCR"),
        helper.make_node("ReduceMax", ["crd"], ["peak"], axes=[1], keepdims=1),
        helper.make_node("Expand", ["peak", "expand_shape"], ["peaks"]),
        helper.make_node("Add", ["crd", "peaks"], ["boosted"]),
        helper.make_node("Tile", ["boosted", "repeats"], ["tiled"]),
        helper.make_node("SpaceToDepth", ["tiled"], ["packed"], blocksize=2),
    ]
    g = helper.make_graph(nodes, "detector-head",
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 8, 6, 6])],
                          [helper.make_tensor_value_info("packed", TensorProto.FLOAT, [1, 8, 6, 12]),
                           helper.make_tensor_value_info("dcr", TensorProto.FLOAT, [1, 2, 12, 12])],
                          [ints("expand_shape", [1, 2, 12, 12]), ints("repeats", [1, 1, 1, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="squeeze-fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "detector-head.onnx"))


def sequence_head():
    T, N, F, H = 7, 2, 6, 5
    w = lambda name, *shape: init(name, rng.standard_normal(shape) * 0.4)
    lens = numpy_helper.from_array(np.asarray([T, 4], dtype=np.int32), "lens")
    inits = [lens,
             w("lstm_w", 2, 4 * H, F), w("lstm_r", 2, 4 * H, H), w("lstm_b", 2, 8 * H),
             w("lstm_h0", 2, N, H), w("lstm_c0", 2, N, H), w("lstm_p", 2, 3 * H),
             w("gru_w", 1, 3 * H, F), w("gru_r", 1, 3 * H, H), w("gru_b", 1, 6 * H),
             w("gru2_w", 1, 3 * H, F), w("gru2_r", 1, 3 * H, H),
             w("rnn_w", 1, H, F), w("rnn_r", 1, H, H), w("rnn_b", 1, 2 * H)]
    nodes = [
        helper.make_node("LSTM", ["x", "lstm_w", "lstm_r", "lstm_b", "lens", "lstm_h0", "lstm_c0", "lstm_p"],
                         ["lstm_y", "lstm_h", "lstm_c"], hidden_size=H, direction="bidirectional", clip=2.5),
        helper.make_node("GRU", ["x", "gru_w", "gru_r", "gru_b", "lens"], ["gru_y"], hidden_size=H,
                         direction="reverse", linear_before_reset=1),
        helper.make_node("GRU", ["x", "gru2_w", "gru2_r"], ["gru2_y", "gru2_h"], hidden_size=H,
                         activations=["HardSigmoid", "Tanh"], activation_alpha=[0.3], activation_beta=[0.4]),
        helper.make_node("RNN", ["x", "rnn_w", "rnn_r", "rnn_b", "lens"], ["", "rnn_h"], hidden_size=H,
                         activations=["Relu"]),
    ]
    out = lambda name, *shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
    g = helper.make_graph(nodes, "sequence-head", [out("x", T, N, F)],
                          [out("lstm_y", T, 2, N, H), out("lstm_h", 2, N, H), out("lstm_c", 2, N, H),
                           out("gru_y", T, 1, N, H), out("gru2_y", T, 1, N, H), out("gru2_h", 1, N, H),
                           out("rnn_h", 1, N, H)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], producer_name="squeeze-fixtures")
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "sequence-head.onnx"))


def signal_head():
    w = lambda name, *shape: init(name, rng.standard_normal(shape) * 0.4)
    inits = [w("c1_w", 8, 4, 5), w("c1_b", 8), w("dw_w", 8, 1, 3), w("dw_b", 8),
             w("up_w", 8, 3, 4), w("up_b", 6), w("c2_w", 5, 6, 3)]
    nodes = [
        helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["c1"], auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "dw_w", "dw_b"], ["dw"], group=8, strides=[2], pads=[1, 1]),
        helper.make_node("MaxPool", ["dw"], ["mp"], kernel_shape=[3], strides=[2], pads=[1, 1]),
        helper.make_node("ConvTranspose", ["mp", "up_w", "up_b"], ["up"], group=2, strides=[2], pads=[1, 1],
                         output_padding=[1]),
        helper.make_node("AveragePool", ["up"], ["ap"], kernel_shape=[2], strides=[1]),
        helper.make_node("Conv", ["ap", "c2_w"], ["y"], dilations=[2], pads=[2, 2]),
    ]
    out = lambda name, *shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
    g = helper.make_graph(nodes, "signal-head", [out("x", 1, 4, 30)],
                          [out("y", 1, 5, 16), out("mp", 1, 8, 8)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="squeeze-fixtures")
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(OUT, "signal-head.onnx"))


def sample_png():
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(os.path.join(OUT, "sample.png"))


if __name__ == "__main__":
    import sys
    makers = {"tiny-classifier": tiny_classifier, "vgg16-shapes": vgg16, "detector-head": detector_head,
              "sequence-head": sequence_head, "signal-head": signal_head, "sample": sample_png}
    for name in sys.argv[1:] or makers:
        makers[name]()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
