"""The integer reference of conv2d and depthwise_conv2d (ops/conv.py) against the plain computation: int64
im2col, int64 products summed, the bias added in int64 and TFLite's requantization (which wraps to int32 as the C).

The simulator takes shortcuts for speed (int16 inputs, int32 tap-by-tap sums for depthwise, float32 or float64
BLAS products for conv, the bias added in int32, chosen by a bound on the accumulators); these tests hold them to
the plain computation on the edge cases: inputs and weights at the int8 extremes, zero points at both ends of the
range, the float32 / float64 / int64 boundaries of the bound, accumulators and biases past int32 (the C's wrap),
strides, dilations, pads, groups and channel multipliers.
"""

from __future__ import annotations

import numpy as np
import pytest

from mcucompile.arith import fixedpoint
from mcucompile.arith.bitwidth import requantize
from mcucompile.arith.fixedpoint import quantize_multiplier_array
from mcucompile.ir import Graph, Node, QuantParams, Tensor
from mcucompile.ops import op_def
from mcucompile.ops.conv import ConvAttrs, ConvParams, conv_accumulators, depthwise_accumulators
from mcucompile.ops.spatial import Window, im2col


def _layer(op: str, x_shape, w: np.ndarray, bias: np.ndarray, win: Window, groups: int = 1, zp_in: int = 0,
           zp_out: int = 0, real_multiplier: float = 1e-3, rounding: str = "double", act=(-128, 127)) -> Graph:
    """One quantized conv2d / depthwise_conv2d layer with int8 weights ``w`` and int32 ``bias``."""
    cout = w.shape[0] if op == "conv2d" else w.shape[-1]
    node = Node("n", op, ("x", "w", "b"), ("y",), ConvAttrs(win, groups))
    out_shape = op_def(node).infer_shapes(node, [tuple(x_shape), w.shape])[0]
    reals = np.geomspace(real_multiplier, 4 * real_multiplier, cout)
    mult, shift = quantize_multiplier_array(reals)
    params = ConvParams(-zp_in, zp_out, act[0], act[1], mult, shift)
    tensors = {
        "x": Tensor("x", tuple(x_shape), "int8", quant=QuantParams.per_tensor(0.1, zp_in)),
        "w": Tensor("w", w.shape, "int8", w.astype(np.int8),
                    QuantParams(np.ones(cout), np.zeros(cout, np.int64), 0 if op == "conv2d" else 2, 8)),
        "b": Tensor("b", (cout,), "int32", bias.astype(np.int32),
                    QuantParams(np.ones(cout), np.zeros(cout, np.int64), 0, 32)),
        "y": Tensor("y", tuple(out_shape), "int8", quant=QuantParams.per_tensor(0.1, zp_out)),
    }
    return Graph("g", (node.replace(params=params),), tensors, ("x",), ("y",), rounding=rounding)


def _plain_acc(graph: Graph, x: np.ndarray) -> np.ndarray:
    """sum over taps of w * (x + offset) in int64, from an int64 im2col (padding reads the zero point)."""
    node = graph.nodes[0]
    win, p = node.attrs.window, node.params
    w = graph.tensors["w"].data.astype(np.int64)
    n, h, wd, cin = x.shape
    oh, ow = win.out_size(h, wd)
    cols = im2col(x.astype(np.int64) + p.input_offset, win, oh, ow, 0)  # N,OH,OW,KH,KW,C
    if node.op == "depthwise_conv2d":
        mult = w.shape[-1] // cin
        return np.einsum("nhwijc,ijc->nhwc", np.repeat(cols, mult, axis=-1), w)
    g = node.attrs.groups
    cout, cin_g = w.shape[0], w.shape[-1]
    out = np.zeros((n, oh, ow, cout), np.int64)
    for gi in range(g):
        c = cols[..., gi * cin_g : (gi + 1) * cin_g]
        wg = w[gi * (cout // g) : (gi + 1) * (cout // g)]
        out[..., gi * (cout // g) : (gi + 1) * (cout // g)] = np.einsum("nhwijc,oijc->nhwo", c, wg)
    return out


def _plain_output(graph: Graph, x: np.ndarray) -> np.ndarray:
    p = graph.nodes[0].params
    acc = _plain_acc(graph, x) + graph.tensors["b"].data.astype(np.int64)
    return requantize(acc, p.multiplier, p.shift, p.output_offset, 8, p.act_min, p.act_max, graph.rounding)


def _check(graph: Graph, x: np.ndarray) -> np.ndarray:
    node = graph.nodes[0]
    fn = conv_accumulators if node.op == "conv2d" else depthwise_accumulators
    acc, bound = fn(node, graph, x, node.params.input_offset)
    plain = _plain_acc(graph, x)
    assert np.array_equal(acc, plain), node.op
    assert np.abs(plain).max(initial=0) <= bound
    y = op_def(node).eval_int(node, graph, [x])[0]
    want = _plain_output(graph, x)
    assert y.dtype == np.int8 and np.array_equal(y, want)
    return acc


WINDOWS = [
    Window((3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    Window((3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),
    Window((3, 3), (2, 1), (2, 1), (2, 0, 1, 2)),
    Window((1, 1), (1, 1)),
    Window((1, 1), (2, 2)),
    Window((1, 1), (1, 1), (1, 1), (1, 0, 0, 1)),
    Window((5, 2), (1, 3), (1, 2), (0, 2, 2, 0)),
]


@pytest.mark.parametrize("win", WINDOWS, ids=lambda w: f"k{w.kernel}s{w.stride}d{w.dilation}p{w.pads}")
@pytest.mark.parametrize("zp_in", [-128, 127, 3])
@pytest.mark.parametrize("block", [None, 40])
def test_conv_and_depthwise_equal_the_plain_computation(win, zp_in, block, monkeypatch):
    if block is not None:  # the requantization block by block, a last partial block
        monkeypatch.setattr(fixedpoint, "_BLOCK", block)
    rng = np.random.default_rng(abs(zp_in) + sum(win.kernel))
    x = rng.integers(-128, 128, (2, 9, 11, 4)).astype(np.int8)
    x[0, :3] = -128  # the extremes, with the offset at either end: |x + offset| = 255
    x[1, :3] = 127
    for w in (rng.integers(-128, 128, (6, *win.kernel, 4)), np.full((6, *win.kernel, 4), -128)):
        bias = rng.integers(-(1 << 20), 1 << 20, 6)
        _check(_layer("conv2d", x.shape, w, bias, win, zp_in=zp_in, zp_out=-5), x)
        _check(_layer("conv2d", x.shape, w, bias, win, zp_in=zp_in, zp_out=-128, act=(-128, 90)), x)  # a ReLU6
    _check(_layer("conv2d", x.shape, rng.integers(-128, 128, (6, *win.kernel, 2)), np.zeros(6), win, groups=2,
                  zp_in=zp_in), x)
    for mult in (1, 2):
        w = rng.integers(-128, 128, (*win.kernel, 4 * mult))
        w[..., 0] = 127
        _check(_layer("depthwise_conv2d", x.shape, w, rng.integers(-999, 999, 4 * mult), win, zp_in=zp_in), x)


def _extreme_1x1(cin: int, zp_in: int = 127, bias: int = 0, real: float = 1e-6, rounding: str = "double"):
    """A 1x1 conv whose accumulators reach their bound: every input -128 at zero point 127 (x + offset = -255),
    channel 0's weights 127 but one 126 (acc = -255 x (127 cin - 1): odd, so a float32 sum past 2^24 would round
    it), channel 1's alternating 127 and -128; one pixel at x + offset = 0."""
    x = np.full((1, 2, 3, cin), -128, np.int8)
    x[0, 1, 2, :] = 127
    w = np.full((2, 1, 1, cin), 127)
    w[0, 0, 0, 0] = 126
    w[1, 0, 0, ::2] = -128
    return _layer("conv2d", x.shape, w, np.full(2, bias), Window((1, 1)), zp_in=zp_in, real_multiplier=real,
                  rounding=rounding), x


@pytest.mark.parametrize("cin", [2, 516, 520, 66000, 66314])
def test_conv_accumulators_at_the_float32_and_int32_limits(cin):
    """The bound 255 x sum|w| is below 2^24 up to 516 input channels here (float32 BLAS, exact), above from 517
    (float64); channel 0's accumulator -255 x (127 cin - 1) passes 2^24 at 520 and leaves int32 at 66,314 (int64
    products; the requantization wraps it as the C's int32 does); the bound leaves int32 from 66,002."""
    graph, x = _extreme_1x1(cin)
    acc = _check(graph, x)
    assert int(acc[0, 0, 0, 0]) == -255 * (127 * cin - 1)
    bound = 255 * (128 * ((cin + 1) // 2) + 127 * (cin // 2))
    assert acc.dtype == (np.int64 if bound >= 1 << 31 else np.int32)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_bias_past_int32_wraps_as_the_c_does(rounding):
    """acc + bias beyond int32: the sum is formed in int64 (not in a wrapping int32) and requantized as the
    plain computation is (double rounding wraps to int32; single rounding takes the 64-bit value)."""
    graph, x = _extreme_1x1(60000, bias=-(1 << 31) + 5, rounding=rounding)
    _check(graph, x)
    graph, x = _extreme_1x1(60000, zp_in=-128, bias=(1 << 31) - 1, rounding=rounding)
    x[:] = 127  # x + offset = 255 everywhere: acc + bias > INT32_MAX
    _check(graph, x)


def test_depthwise_past_int32_takes_int64():
    """A depthwise window so large that its accumulators leave int32."""
    x = np.full((1, 300, 300, 1), 127, np.int8)
    w = np.full((300, 300, 1), 127)
    graph = _layer("depthwise_conv2d", x.shape, w, np.zeros(1), Window((300, 300)), zp_in=-128)
    acc, bound = depthwise_accumulators(graph.nodes[0], graph, x, 128)
    assert acc.dtype == np.int64 and int(acc[0, 0, 0, 0]) == 255 * 127 * 300 * 300 > (1 << 31)
    _check(graph, x)
