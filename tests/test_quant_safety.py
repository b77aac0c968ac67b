"""Quantization that cannot overflow: biases fit int32, accumulators cannot overflow for any int8
input, multipliers are representable or the error names the layer (issue 8, finding 3 and 7)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from onnx import helper

from conftest import REPO, SHARED_MODELS, make_model
from mcucompile.api import CompileOptions, PatchOptions, compile_model
from mcucompile.errors import UserError
from mcucompile.arith.fixedpoint import (INT32_MAX, MultiplierRangeError, accumulator_bound, quantize_multiplier,
                                         softmax_params)
from mcucompile.quant.quantize import quantize_graph

WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


def weighted_layers(graph):
    """(node, int8 weights [Cout, K], int32 bias, input zero point) of every weighted layer."""
    for n in graph.nodes:
        if n.op not in WEIGHTED:
            continue
        w = graph.tensors[n.inputs[1]]
        axis = w.quant.axis
        wq = np.moveaxis(w.data.astype(np.int64), axis, 0).reshape(w.shape[axis], -1)
        yield n, wq, graph.tensors[n.inputs[2]].data.astype(np.int64), graph.tensors[n.inputs[0]].quant.zp


@pytest.fixture(scope="module")
def float_vww():
    return compile_model(SHARED_MODELS / "vww_mbv1_025_float.onnx",
                         CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))


def test_float_vww_biases_fit_and_accumulators_cannot_overflow(float_vww):
    """The proof over the real model: |bias| + K * 127 * 255 < 2^31 for every channel of every layer
    (K products of |w| <= 127 and |x - zp| <= 255), so no int8 input overflows the int32 accumulator."""
    g, fg = float_vww.graph, float_vww.float_graph
    tiny = 0
    for n, wq, b, zp in weighted_layers(g):
        k = wq.shape[1]
        assert np.all(np.abs(b) <= 2**30), n.name  # TFLite's margin: half the int32 range
        assert np.all(np.abs(b) + k * 127 * 255 < 2**31), n.name
        assert np.all(accumulator_bound(wq, b, 0, zp) <= INT32_MAX)
        tiny += int(np.sum(np.abs(wq).max(axis=1) == 0))
    # the near-zero channels (weights below 1e-20 in the float model) are there, and were made safe
    src = [t for t in fg.tensors.values() if t.is_const and t.data.ndim == 4]
    assert sum(int(np.sum(np.abs(t.data.reshape(t.shape[0], -1)).max(axis=1) < 1e-20)) for t in src) > 100
    assert tiny > 100


def test_float_vww_near_zero_channels_output_their_bias(float_vww):
    """A channel with (near) zero weights outputs its bias: the raised scale keeps that exact."""
    g, fg = float_vww.graph, float_vww.float_graph
    n = next(n for n in g.nodes if n.name == "model/conv2d_13/BiasAdd")
    fn = next(f for f in fg.nodes if f.name == n.name)
    w_float = fg.tensors[fn.inputs[1]].data
    dead = np.abs(w_float.reshape(w_float.shape[0], -1)).max(axis=1) < 1e-20
    b_float = fg.tensors[fn.inputs[2]].data.astype(np.float64)
    b_q = g.tensors[n.inputs[2]].data.astype(np.int64)
    bias_scale = g.tensors[n.inputs[0]].quant.s * g.tensors[n.inputs[1]].quant.scale
    np.testing.assert_allclose(b_q[dead] * bias_scale[dead], b_float[dead], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("path", [REPO / "models" / "mnist" / "mnist_cnn.onnx", SHARED_MODELS / "resnet8_float.onnx"])
def test_channels_that_fit_keep_the_symmetric_scale(path):
    """No needless change: where nothing overflows, the weight scale stays max|w| / 127."""
    c = compile_model(path, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))
    for n in c.graph.nodes:
        if n.op not in WEIGHTED:
            continue
        fn = next(f for f in c.float_graph.nodes if f.name == n.name)
        w = c.float_graph.tensors[fn.inputs[1]].data.astype(np.float64)
        axis = c.graph.tensors[n.inputs[1]].quant.axis
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
        np.testing.assert_array_equal(c.graph.tensors[n.inputs[1]].quant.scale, np.where(amax > 0, amax / 127, 1.0))


def _conv_model(tmp_path, w, b, relu=False):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 0, 0, 0])]
    out = "c"
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
        out = "y"
    m = make_model(nodes, (1, w.shape[1], 4, 4), [out], {"w": w.astype(np.float32), "b": b.astype(np.float32)})
    path = tmp_path / "conv.onnx"
    path.write_bytes(m.SerializeToString())
    return path


def test_near_zero_channel_bias_is_not_saturated(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (4, 3, 3, 3))
    w[1] = 1e-30  # a dead channel with a real bias, as float VWW has
    w[2] = 0.0  # an all-zero channel keeps scale 1
    b = np.array([0.1, 0.7, -0.4, 0.2])
    c = compile_model(_conv_model(tmp_path, w, b), CompileOptions(board="host", progress=False))
    n = c.graph.nodes[0]
    bq = c.graph.tensors[n.inputs[2]].data.astype(np.int64)
    assert np.all(np.abs(bq) < 2**31 - 1)
    assert 2**30 - 2 <= abs(bq[1]) <= 2**30  # TFLite's rule: the bias lands at half the int32 range
    assert c.graph.tensors[n.inputs[1]].quant.scale[2] == 1.0
    # the dead channel still computes its bias: output = round(0.7 / output scale) + zero point
    from mcucompile.api import quantize_input, simulate

    q = c.graph.tensors[c.graph.outputs[0]].quant
    out = simulate(c, quantize_input(c, c.calib[:2]))[0].reshape(2, 2, 2, 4)[..., 1]  # NHWC, channel 1
    assert np.all(np.abs((out - q.zp) * q.s - 0.7) <= q.s)


@pytest.mark.parametrize("weight,bias", [(1.0, -20.0), (1.0, -1e6), (2000.0, -1e6)])
def test_dead_relu_output_range_is_widened(tmp_path, weight, bias):
    """A conv + ReLU negative on all calibration data: its output range is [0, 0]. With the calibrated
    scale the multiplier is >= 1 (the accumulator shifted left wraps int32: outputs of 127 instead of 0)
    or >= 2^30 (no Q31 form). The widened range makes it safe, and the output is the ReLU's 0."""
    from mcucompile.api import quantize_input, simulate

    w, b = np.full((2, 1, 3, 3), weight), np.full(2, bias)
    c = compile_model(_conv_model(tmp_path, w, b, relu=True), CompileOptions(board="host", progress=False))
    n, wq, bq, zp = next(weighted_layers(c.graph))
    shift = np.asarray(n.params.shift)
    assert np.all(accumulator_bound(wq, bq, 0, zp) * 2.0 ** np.maximum(shift, 0) <= INT32_MAX)
    q = c.graph.tensors[c.graph.outputs[0]].quant
    rng = np.random.default_rng(1)
    x = np.concatenate([c.calib[:4], rng.random((4,) + c.calib.shape[1:], dtype=np.float32)])
    assert np.all(simulate(c, quantize_input(c, x))[0] == q.zp)


def test_unrepresentable_multiplier_of_the_model_own_scales_names_the_layer():
    """A .tflite whose own output scale is far too small for its conv: no Q31 multiplier holds input
    scale x weight scale / output scale; the model's scales are not ours to change: one clear error."""
    pytest.importorskip("flatbuffers", reason="the .tflite reader needs flatbuffers (mcucompile[tflite])")
    from mcucompile.frontend.tflite import load_tflite
    from mcucompile.ir import QuantParams

    g = load_tflite(SHARED_MODELS / "kws_dscnn_int8.tflite")
    n = next(n for n in g.nodes if n.op == "conv2d")
    out = g.tensors[n.outputs[0]]
    tiny = dataclasses.replace(out, quant=QuantParams.per_tensor(out.quant.s * 1e-12, out.quant.zp))
    with pytest.raises(UserError, match=rf"layer '{re.escape(n.name)}' \(conv2d\): requantization multiplier .* "
                                        r"too large.*model's own scales"):
        quantize_graph(g.replace(tensors={**g.tensors, out.name: tiny}), {})


def test_quantize_multiplier_range():
    assert quantize_multiplier(2.0**-40) == (0, 0)  # flushed to zero, as TFLite does
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    m, s = quantize_multiplier(2.0**29)
    assert s == 30
    for bad in (2.0**31, float("nan"), float("inf"), -1.0):
        with pytest.raises(MultiplierRangeError):
            quantize_multiplier(bad)
    assert quantize_multiplier(2.0**31, strict=False)[1] == 32  # TFLite Micro's own semantics accept it
    with pytest.raises(MultiplierRangeError):
        softmax_params(1.0, 1e-12)


def test_accumulator_bound_is_the_worst_input():
    w = np.array([[3, -5], [0, 0]], np.int8)
    b = np.array([10, -7], np.int32)
    # zero point -128: x - zp in [0, 255]
    np.testing.assert_array_equal(accumulator_bound(w, b, 0, -128), [10 + 255 * 8, 7])
    np.testing.assert_array_equal(accumulator_bound(w, b, 0, 0), [10 + 128 * 8, 7])
    brute = max(abs(10 + 3 * (x1 + 128) - 5 * (x2 + 128)) for x1 in (-128, 127) for x2 in (-128, 127))
    assert brute <= accumulator_bound(w, b, 0, -128)[0]


def test_model_own_parameters_that_overflow_are_refused():
    """A .tflite whose own bias leaves no room for the products (TFLite Micro would overflow too): a
    UserError naming the layer, its parameters otherwise untouched."""
    pytest.importorskip("flatbuffers", reason="the .tflite reader needs flatbuffers (mcucompile[tflite])")
    from mcucompile.frontend.tflite import load_tflite

    g = load_tflite(SHARED_MODELS / "kws_dscnn_int8.tflite")
    n = next(n for n in g.nodes if n.op == "conv2d")
    b = g.tensors[n.inputs[2]]
    bad = b.qdata.copy()
    bad[0] = INT32_MAX - 10
    g_bad = g.replace(tensors={**g.tensors, b.name: dataclasses.replace(b, qdata=bad)})
    quantize_graph(g, {})  # the model as shipped is safe
    with pytest.raises(UserError, match=rf"layer '{re.escape(n.name)}' \(conv2d\).*model's own quantization.*overflow"):
        quantize_graph(g_bad, {})
