"""Per-op golden tests over random shapes, strides and pads (odd sizes included).

Each case builds a small ONNX model; the float IR must match onnxruntime, and the int8 C code built
for the host must equal the numpy integer simulator byte for byte.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from conftest import check_float, check_int8, make_model, save


def _rand(rng, *shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _conv_case(seed: int):
    rng = np.random.default_rng(seed)
    cin = int(rng.choice([1, 2, 3, 4, 8]))
    kind = ["standard", "depthwise", "grouped", "pointwise"][seed % 4]
    k = 1 if kind == "pointwise" else int(rng.choice([1, 3, 5]))
    kh, kw = k, (k if seed % 3 else max(1, k - 2))
    h, w = int(rng.integers(kh, 14)), int(rng.integers(kw, 14))
    stride = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
    dil = [1, 1] if seed % 5 else [2, 2]
    if dil != [1, 1]:
        h, w = h + 2 * kh, w + 2 * kw
    pads = [int(rng.integers(0, kh)), int(rng.integers(0, kw)), int(rng.integers(0, kh)), int(rng.integers(0, kw))]
    if kind == "depthwise":
        group, cout = cin, cin * int(rng.choice([1, 2]))
    elif kind == "grouped":
        cin = 4
        group, cout = 2, 6
    else:
        group, cout = 1, int(rng.integers(1, 9))
    wt = _rand(rng, cout, cin // group, kh, kw)
    b = _rand(rng, cout)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=stride, pads=pads, dilations=dil, group=group,
                            kernel_shape=[kh, kw])
    return make_model([node], [1, cin, h, w], ["y"], {"w": wt, "b": b}), [1, cin, h, w]


@pytest.mark.parametrize("seed", range(12))
def test_conv(seed, tmp_path):
    model, shape = _conv_case(seed)
    p = save(model, tmp_path)
    check_float(p, np.random.default_rng(seed).standard_normal(shape).astype(np.float32))
    check_int8(p, shape, tmp_path)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad(auto_pad, tmp_path, rng):
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], auto_pad=auto_pad, kernel_shape=[3, 3])
    model = make_model([node], [1, 3, 9, 8], ["y"], {"w": _rand(rng, 4, 3, 3, 3)})
    p = save(model, tmp_path)
    check_float(p, rng.standard_normal((1, 3, 9, 8)).astype(np.float32))
    check_int8(p, [1, 3, 9, 8], tmp_path)


def test_conv_bn_relu6_fused(tmp_path, rng):
    c = 5
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"]),
        helper.make_node("Clip", ["bn", "lo", "hi"], ["y"]),
    ]
    inits = {"w": _rand(rng, c, 3, 3, 3), "g": _rand(rng, c) + 1, "b": _rand(rng, c), "m": _rand(rng, c),
             "v": np.abs(_rand(rng, c)) + 0.5, "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    p = save(make_model(nodes, [1, 3, 7, 7], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 3, 7, 7)).astype(np.float32))
    compiled, _ = check_int8(p, [1, 3, 7, 7], tmp_path)
    ops = [n.op for n in compiled.graph.nodes]
    assert ops == ["conv2d"], f"BatchNorm and Relu6 should fold into the conv, got {ops}"


@pytest.mark.parametrize("variant", ["gemm", "gemm_transB", "matmul_add"])
def test_fully_connected(variant, tmp_path, rng):
    k, n = 37, 11
    if variant == "gemm":
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=0.5, beta=2.0)]
        inits = {"w": _rand(rng, k, n), "b": _rand(rng, n)}
    elif variant == "gemm_transB":
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
        inits = {"w": _rand(rng, n, k), "b": _rand(rng, 1, n)}
    else:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])]
        inits = {"w": _rand(rng, k, n), "b": _rand(rng, n)}
    p = save(make_model(nodes, [1, k], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, k)).astype(np.float32))
    compiled, _ = check_int8(p, [1, k], tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["fully_connected"]


def _stem(c=4):
    """A conv in front, so the op under test sees an NHWC activation."""
    return helper.make_node("Conv", ["x", "w0"], ["s"], kernel_shape=[1, 1]), {"w0": np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)}


@pytest.mark.parametrize("seed", range(6))
def test_pooling(seed, tmp_path):
    rng = np.random.default_rng(seed)
    op = "MaxPool" if seed % 2 == 0 else "AveragePool"
    k = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    s = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
    pads = [int(rng.integers(0, k[0])), int(rng.integers(0, k[1])), int(rng.integers(0, k[0])), int(rng.integers(0, k[1]))]
    attrs = dict(kernel_shape=k, strides=s, pads=pads, ceil_mode=int(seed >= 3))
    if op == "AveragePool":
        attrs["count_include_pad"] = int(seed == 1)
        if seed == 5:
            attrs["ceil_mode"] = 1
    h, w = int(rng.integers(k[0] + 1, 12)), int(rng.integers(k[1] + 1, 12))
    stem, inits = _stem(3)
    nodes = [stem, helper.make_node(op, ["s"], ["y"], **attrs)]
    p = save(make_model(nodes, [1, 3, h, w], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 3, h, w)).astype(np.float32))
    check_int8(p, [1, 3, h, w], tmp_path)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "ReduceMean"])
def test_global_pooling(op, tmp_path, rng):
    stem, inits = _stem(5)
    attrs = {"axes": [2, 3], "keepdims": 0} if op == "ReduceMean" else {}
    nodes = [stem, helper.make_node(op, ["s"], ["y"], **attrs)]
    p = save(make_model(nodes, [1, 5, 7, 9], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 5, 7, 9)).astype(np.float32))
    check_int8(p, [1, 5, 7, 9], tmp_path)


def test_residual_add_relu(tmp_path, rng):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["a"], ["ar"]),
        helper.make_node("Conv", ["ar", "w2"], ["b"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Add", ["b", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    inits = {"w1": _rand(rng, 4, 4, 3, 3), "w2": _rand(rng, 4, 4, 3, 3)}
    p = save(make_model(nodes, [1, 4, 6, 5], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 4, 6, 5)).astype(np.float32))
    compiled, _ = check_int8(p, [1, 4, 6, 5], tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["conv2d", "conv2d", "add"]


def test_squeeze_excite_mul(tmp_path, rng):
    c = 6
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["f"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["f"], ["g"]),
        helper.make_node("Conv", ["g", "w2", "b2"], ["e"], kernel_shape=[1, 1]),
        helper.make_node("HardSigmoid", ["e"], ["gate"]),
        helper.make_node("Mul", ["f", "gate"], ["y"]),
    ]
    inits = {"w": _rand(rng, c, 3, 1, 1), "w2": _rand(rng, c, c, 1, 1), "b2": _rand(rng, c)}
    p = save(make_model(nodes, [1, 3, 5, 7], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 3, 5, 7)).astype(np.float32))
    check_int8(p, [1, 3, 5, 7], tmp_path)


@pytest.mark.parametrize("op", ["Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "Relu", "Clip"])
def test_unary(op, tmp_path, rng):
    stem, inits = _stem(4)
    ins = ["s"]
    if op == "Clip":
        ins += ["lo", "hi"]
        inits.update(lo=np.array(-0.5, np.float32), hi=np.array(0.7, np.float32))
    relu = helper.make_node("Relu", ["y0"], ["y"])  # a second activation after, fused or tabled
    nodes = [stem, helper.make_node(op, ins, ["y0"]), relu]
    p = save(make_model(nodes, [1, 4, 5, 3], ["y"], inits, opset=14), tmp_path)
    check_float(p, rng.standard_normal((1, 4, 5, 3)).astype(np.float32) * 3)
    check_int8(p, [1, 4, 5, 3], tmp_path)


def test_concat_channels_with_different_ranges(tmp_path, rng):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["y"], axis=1),
    ]
    inits = {"w1": _rand(rng, 3, 2, 1, 1) * 4, "w2": _rand(rng, 5, 2, 3, 3)}
    p = save(make_model(nodes, [1, 2, 5, 6], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 2, 5, 6)).astype(np.float32))
    check_int8(p, [1, 2, 5, 6], tmp_path)


def test_pad_then_conv_and_pool(tmp_path, rng):
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Pad", ["c", "pads2"], ["p2"]),
        helper.make_node("MaxPool", ["p2"], ["y"], kernel_shape=[2, 2]),
    ]
    inits = {"pads": np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64), "w": _rand(rng, 4, 3, 3, 3),
             "pads2": np.array([0, 0, 1, 1, 0, 0, 0, 0], np.int64)}
    p = save(make_model(nodes, [1, 3, 9, 8], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 3, 9, 8)).astype(np.float32))
    compiled, _ = check_int8(p, [1, 3, 9, 8], tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["conv2d", "pad", "max_pool2d"], "the first Pad folds into the conv"


@pytest.mark.parametrize("rows,cols", [(1, 10), (3, 7), (1, 1000)])
def test_softmax(rows, cols, tmp_path, rng):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["l"]), helper.make_node("Softmax", ["l"], ["y"], axis=-1)]
    inits = {"w": _rand(rng, 16, cols, scale=2.0)}
    p = save(make_model(nodes, [1, rows, 16], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, rows, 16)).astype(np.float32), atol=1e-5)
    check_int8(p, [1, rows, 16], tmp_path)


def test_nchw_flatten_needs_a_real_transpose(tmp_path, rng):
    # PyTorch-style flatten of an NCHW map with H, W > 1: the bytes must be reordered
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"]),
    ]
    inits = {"w": _rand(rng, 3, 2, 3, 3), "fc": _rand(rng, 3 * 4 * 5, 4)}
    p = save(make_model(nodes, [1, 2, 6, 7], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 2, 6, 7)).astype(np.float32))
    compiled, _ = check_int8(p, [1, 2, 6, 7], tmp_path)
    assert "transpose" in [n.op for n in compiled.graph.nodes]


def test_input_normalisation_sub_div(tmp_path, rng):
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"]),
        helper.make_node("Div", ["a", "std"], ["b"]),
        helper.make_node("Conv", ["b", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    inits = {"mean": np.array([0.4, 0.5, 0.6], np.float32).reshape(1, 3, 1, 1),
             "std": np.array([0.2, 0.25, 0.3], np.float32).reshape(1, 3, 1, 1), "w": _rand(rng, 4, 3, 3, 3)}
    p = save(make_model(nodes, [1, 3, 8, 8], ["y"], inits), tmp_path)
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    check_float(p, x)
    check_int8(p, [1, 3, 8, 8], tmp_path, calib=rng.random((16, 3, 8, 8)).astype(np.float32))


@pytest.mark.parametrize("variant", ["scales_2x2", "scales_3x1", "sizes_1x4", "upsample_opset9", "opset10"])
def test_resize_nearest(variant, tmp_path, rng):
    stem, inits = _stem(3)
    opset = {"upsample_opset9": 9, "opset10": 10}.get(variant, 13)
    if variant == "sizes_1x4":
        inits["sizes"] = np.array([1, 3, 5, 24], np.int64)
        node = helper.make_node("Resize", ["s", "", "", "sizes"], ["y"], mode="nearest")
    else:
        inits["scales"] = np.array({"scales_3x1": [1, 1, 3, 1]}.get(variant, [1, 1, 2, 2]), np.float32)
        ins = {"upsample_opset9": ["s", "scales"], "opset10": ["s", "scales"]}.get(variant, ["s", "", "scales"])
        node = helper.make_node("Upsample" if variant == "upsample_opset9" else "Resize", ins, ["y"], mode="nearest")
    p = save(make_model([stem, node], [1, 3, 5, 6], ["y"], inits, opset=opset), tmp_path)
    check_float(p, rng.standard_normal((1, 3, 5, 6)).astype(np.float32))
    compiled, _ = check_int8(p, [1, 3, 5, 6], tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["conv2d", "resize_nearest"]


@pytest.mark.parametrize("slope_shape", [(4, 1, 1), (1, 4, 1, 1), (1,), ()])
def test_prelu(slope_shape, tmp_path, rng):
    stem, inits = _stem(4)
    inits["slope"] = (rng.standard_normal(slope_shape) * 0.6).astype(np.float32).reshape(slope_shape)
    nodes = [stem, helper.make_node("PRelu", ["s", "slope"], ["y"])]
    p = save(make_model(nodes, [1, 4, 5, 3], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 4, 5, 3)).astype(np.float32) * 3)
    compiled, _ = check_int8(p, [1, 4, 5, 3], tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["conv2d", "prelu"]


def test_prelu_after_gemm(tmp_path, rng):
    """A 2-D [N, C] input: the slope [C] broadcasts over the last (channel) axis."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["f"], transB=1), helper.make_node("PRelu", ["f", "slope"], ["y"])]
    inits = {"w": _rand(rng, 6, 10), "b": _rand(rng, 6), "slope": np.array([0.1, -0.5, 2.0, 0.0, 0.3, 1.0], np.float32)}
    p = save(make_model(nodes, [1, 10], ["y"], inits), tmp_path)
    check_float(p, rng.standard_normal((1, 10)).astype(np.float32))
    check_int8(p, [1, 10], tmp_path)
