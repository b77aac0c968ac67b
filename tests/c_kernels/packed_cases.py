"""Random layers for the packed-activation kernels (runtime_c/include/mcunn_packed.h), with the simulator's
outputs as the expected bytes.

Each case is one conv2d or depthwise layer at an (input bits, output bits) pair from {8, 4, 2} (not both 8):
odd sizes, strides, dilations, paddings and start offsets (negative padding) with partial output regions,
zero points, channel counts that are and are not multiples of the values per byte and of the SIMD block (4),
chunks past 32 output channels, groups and channel multipliers (portable kernel only). The expected output is
``Conv2D.eval_int`` / ``DepthwiseConv2D.eval_int`` on a one-layer graph whose tensors carry those bits (the
simulator the compiler checks C against), packed with ``arith.bitwidth.pack``. ``packed_cases.c.j2`` writes
them as C arrays and ``packed_main.c`` runs every case through the portable and, where it applies, the DSP
kernel and compares the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import _env
from mcucompile.arith.bitwidth import pack, pixel_bytes, qrange
from mcucompile.ir import Activation, Graph, Node, QuantParams, Tensor
from mcucompile.ir.graph import int_dtype
from mcucompile.ops import fast_layout, packed_kernels
from mcucompile.ops.conv import Conv2D, ConvAttrs, ConvParams, DepthwiseConv2D
from mcucompile.ops.spatial import Window

KIND = {"conv": 0, "dwconv": 1}


@dataclass(frozen=True)
class PackedCase:
    """One layer: the kernels' arguments and the simulator's packed output."""

    kind: int
    describe: str
    in_bits: int
    out_bits: int
    in_dims: tuple[int, int, int, int]
    filter_dims: tuple[int, int, int, int]
    out_dims: tuple[int, int, int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    groups: int  # conv groups, or the depthwise channel multiplier
    in_off: int
    out_off: int
    act: tuple[int, int]
    input: np.ndarray  # packed bytes
    filter: np.ndarray
    fast_filter: np.ndarray
    bias: np.ndarray
    fast_bias: np.ndarray  # the DSP kernel's: the model's (conv), the input offset folded in (depthwise)
    mult: np.ndarray
    shift: np.ndarray
    expected: np.ndarray  # packed bytes
    has_fast: bool
    scratch_fast: int


def simulate(kind: str, x: np.ndarray, wts: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
             in_off: int, out_off: int, act: tuple[int, int], stride, pad, dilation, groups: int,
             out_hw: tuple[int, int], in_bits: int, out_bits: int) -> np.ndarray:
    """The simulator's output of one layer as the kernel runs it: ``pad`` (top, left) negative is a start offset
    into ``x``, taps past the bottom / right edge are skipped (the zero point), output ``out_hw``."""
    top, left = max(0, -pad[0]), max(0, -pad[1])
    xe = x[:, top:, left:, :]
    kh, kw = wts.shape[1:3] if kind == "conv" else wts.shape[:2]
    oh, ow = out_hw
    pt, pl = max(0, pad[0]), max(0, pad[1])
    ext_h, ext_w = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    pb = max(0, (oh - 1) * stride[0] + ext_h - (xe.shape[1] + pt))
    pr = max(0, (ow - 1) * stride[1] + ext_w - (xe.shape[2] + pl))
    win = Window((kh, kw), tuple(stride), tuple(dilation), (pt, pl, pb, pr))
    cout = wts.shape[0] if kind == "conv" else wts.shape[2]
    tensors = {
        "x": Tensor("x", tuple(xe.shape), int_dtype(in_bits), quant=QuantParams.per_tensor(1.0, -in_off, in_bits)),
        "w": Tensor("w", tuple(wts.shape), "int8", wts.astype(np.int8)),
        "b": Tensor("b", (cout,), "int32", bias.astype(np.int32)),
        "y": Tensor("y", (1, 1, 1, cout), int_dtype(out_bits), quant=QuantParams.per_tensor(1.0, out_off, out_bits)),
    }
    params = ConvParams(in_off, out_off, act[0], act[1], mult.astype(np.int64), shift.astype(np.int64))
    attrs = ConvAttrs(win, groups if kind == "conv" else 1, Activation())
    node = Node("layer", "conv2d" if kind == "conv" else "depthwise_conv2d", ("x", "w", "b"), ("y",), attrs, params)
    graph = Graph("case", (node,), tensors, ("x",), ("y",))
    op = Conv2D() if kind == "conv" else DepthwiseConv2D()
    y = op.eval_int(node, graph, [xe.astype(np.int8)])[0]
    return y[:, :oh, :ow, :]


def _case(rng: np.random.Generator, kind: str, in_bits: int, out_bits: int, big: bool = False) -> PackedCase:
    channels = [1, 2, 3, 4, 5, 6, 8, 12, 16] + ([33, 40] if big else [])
    cin = int(rng.choice(channels))
    if kind == "conv":
        groups = int(rng.choice([1, 1, 1, 2])) if cin % 2 == 0 else 1
        cout = int(rng.choice([1, 2, 3, 5, 8, 16] + ([36, 66] if big else []))) * groups
        kh, kw = [(1, 1), (3, 3), (1, 3), (3, 1), (2, 2)][rng.integers(5)]
    else:
        groups = int(rng.choice([1, 1, 1, 2]))
        cout = cin * groups
        kh, kw = [(3, 3), (3, 3), (5, 5), (1, 1), (2, 3)][rng.integers(5)]
    stride = tuple(int(s) for s in rng.choice([1, 2], 2))
    dilation = (1, 1) if rng.random() < 0.8 else tuple(int(d) for d in rng.choice([1, 2], 2))
    h, w = (int(v) for v in rng.integers(1, 10, 2))
    pad = tuple(int(p) for p in rng.integers(-2, 3, 2))  # negative: a start offset into the buffer
    ext_h, ext_w = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    # the output region: at most what a symmetric padding gives, sometimes a partial one (a patch)
    full_h = max(1, (h + 2 * max(pad[0], 0) - ext_h) // stride[0] + 1)
    full_w = max(1, (w + 2 * max(pad[1], 0) - ext_w) // stride[1] + 1)
    oh, ow = int(rng.integers(1, full_h + 1)), int(rng.integers(1, full_w + 1))
    return _make(rng, kind, in_bits, out_bits, (h, w, cin), (kh, kw), cout, stride, pad, dilation, groups, (oh, ow))


def _make(rng: np.random.Generator, kind: str, in_bits: int, out_bits: int, in_hwc, kernel, cout: int, stride,
          pad, dilation, groups: int, out_hw, full_clamp: bool | None = None,
          high_shifts: bool = False) -> PackedCase:
    """One layer of the given geometry with random data (values, weights, bias, zero points, requantization);
    ``full_clamp`` True / False forces the activation to the whole int8 range / a fused bound (None: random);
    ``high_shifts``: every third output channel at a shift in [-1, 2] (right shift 1 or 0, left shifts; a scale
    of 1/4 and above, as a low-bit chain's rescaled layers get), with one weight of +-1 or +-2 and a small bias so
    that its outputs spread over the range instead of saturating."""
    lo_in, hi_in = qrange(in_bits)
    lo_out, hi_out = qrange(out_bits)
    (h, w, cin), (kh, kw), (oh, ow) = in_hwc, kernel, out_hw
    x = rng.integers(lo_in, hi_in + 1, (1, h, w, cin)).astype(np.int8)
    if kind == "conv":
        wts = rng.integers(-127, 128, (cout, kh, kw, cin // groups)).astype(np.int8)
    else:
        wts = rng.integers(-127, 128, (kh, kw, cout)).astype(np.int8)
    in_zp = int(rng.integers(lo_in, hi_in + 1))
    out_zp = int(rng.integers(lo_out, hi_out + 1))
    bias = rng.integers(-2000, 2000, cout).astype(np.int32) if rng.random() < 0.8 else np.zeros(cout, np.int32)
    high = np.arange(0, cout, 3) if high_shifts else np.zeros(0, np.int64)
    for o in high:
        tap = tuple(int(rng.integers(0, n)) for n in (kh, kw, cin // groups if kind == "conv" else 1))
        one = int(rng.choice([-2, -1, 1, 2]))
        if kind == "conv":
            wts[o] = 0
            wts[(o,) + tap] = one
        else:
            wts[:, :, o] = 0
            wts[tap[0], tap[1], o] = one
        bias[o] = int(rng.integers(-8, 9))
    # the accumulators themselves (requantized by exactly 1 into 32 bits) set the shifts: outputs spread over the
    # output range, a few saturating
    acc = simulate(kind, x, wts, bias, np.full(cout, 1 << 30), np.ones(cout, np.int64), -in_zp, 0,
                   (-(1 << 31), (1 << 31) - 1), stride, pad, dilation, groups, (oh, ow), in_bits, 32)
    spread = max(float(np.std(acc)) + abs(float(np.mean(acc))) * 0.5, 1.0)
    base = int(np.round(np.log2((1 << (out_bits - 1)) / (spread * 0.75))))
    shift = np.clip(base + rng.integers(-1, 1, cout), -31, 0).astype(np.int32)
    shift[high] = rng.integers(-1, 3, len(high))
    mult = rng.integers(1 << 30, (1 << 31) - 1, cout).astype(np.int32)
    full = rng.random() < 0.6 if full_clamp is None else full_clamp
    act = (-128, 127) if full else (max(out_zp, lo_out), hi_out if rng.random() < 0.5 else
                                                  int(rng.integers(max(out_zp, lo_out), hi_out + 1)))
    y = simulate(kind, x, wts, bias, mult, shift, -in_zp, out_zp, act, stride, pad, dilation, groups, (oh, ow),
                 in_bits, out_bits)
    if kind == "conv":
        has_fast = groups == 1
        fast = fast_layout.conv_weights(wts) if has_fast else wts.reshape(-1)
        fast_bias = bias
        scratch = packed_kernels.conv_dsp_scratch_bytes(kh, kw, cin) if has_fast else 0
        fdims = (cout, kh, kw, cin // groups)
    else:
        has_fast = groups == 1 and fast_layout.dwconv_problem((kh, kw), groups) is None
        fast = fast_layout.dwconv_weights(wts) if has_fast else wts.reshape(-1)
        scratch = packed_kernels.dwconv_dsp_scratch_bytes(cout, in_bits) if has_fast else 0
        fast_bias = packed_kernels.dwconv_dsp_bias(bias, wts, -in_zp, in_bits) if has_fast else bias
        fdims = (1, kh, kw, cout)
    desc = (f"{kind} a{in_bits}->a{out_bits} {h}x{w}x{cin} k{kh}x{kw} s{stride[0]}{stride[1]} d{dilation[0]}"
            f"{dilation[1]} p{pad[0]},{pad[1]} g{groups} -> {oh}x{ow}x{cout}")
    return PackedCase(KIND[kind], desc, in_bits, out_bits, (1, h, w, cin), fdims, (1, oh, ow, cout), stride, pad,
                      dilation, groups, -in_zp, out_zp, act, pack(x, in_bits).reshape(-1), wts.reshape(-1), fast,
                      bias, fast_bias, mult, shift, pack(y, out_bits).reshape(-1), has_fast, scratch)


#: every (input bits, output bits) pair the kernels take: sub-byte in or out
BIT_PAIRS = [(i, o) for i in (8, 4, 2) for o in (8, 4, 2) if (i, o) != (8, 8)]


def layer_case(kind: str, in_bits: int, out_bits: int, in_hwc: tuple[int, int, int], kernel: tuple[int, int],
               cout: int, stride: tuple[int, int] = (1, 1), pad: tuple[int, int] = (0, 0), seed: int = 0) -> PackedCase:
    """One given layer (bench/packed_kernels.py's shapes): ``kind`` conv or dwconv (``cout`` = C_in), symmetric
    padding ``pad``, random data."""
    h, w, _ = in_hwc
    oh, ow = (h + 2 * pad[0] - kernel[0]) // stride[0] + 1, (w + 2 * pad[1] - kernel[1]) // stride[1] + 1
    return _make(np.random.default_rng(seed), kind, in_bits, out_bits, in_hwc, kernel,
                 cout if kind == "conv" else in_hwc[2], stride, pad, (1, 1), 1, (oh, ow))


def random_cases(seed: int, per_pair: int) -> list[PackedCase]:
    """``per_pair`` conv and ``per_pair`` depthwise cases for every bit pair (every third one with large channel
    counts: several output chunks)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(per_pair):
        for in_bits, out_bits in BIT_PAIRS:
            for kind in ("conv", "dwconv"):
                cases.append(_case(rng, kind, in_bits, out_bits, big=i % 3 == 2))
    return cases


def dsp_edge_cases(seed: int) -> list[PackedCase]:
    """Layers aimed at the SIMD32 kernels' branches: the depthwise tap-pair loops with an even and an odd tap
    count (2x2, 1x3, 3x3) at every input width, channel tails (5, 7, 13 channels: off the 4-block and the values
    per byte), more than one 32-channel chunk (37), start offsets and strides; convolutions whose sub-byte
    output is packed in registers (clamp = the width's range) with C_out off and on the values per byte."""
    rng = np.random.default_rng(seed)
    cases = []
    for in_bits, out_bits in BIT_PAIRS:
        for kernel, c, stride, pad in (((2, 2), 7, (1, 1), (0, 0)), ((1, 3), 13, (1, 2), (-1, 1)),
                                       ((3, 3), 37, (2, 1), (1, -1)), ((2, 2), 4, (2, 2), (1, 1))):
            h, w = 5, 6
            oh = max(1, (h + 2 * max(pad[0], 0) - kernel[0]) // stride[0] + 1)
            ow = max(1, (w + 2 * max(pad[1], 0) - kernel[1]) // stride[1] + 1)
            cases.append(_make(rng, "dwconv", in_bits, out_bits, (h, w, c), kernel, c, stride, pad, (1, 1), 1,
                               (oh, ow), full_clamp=c % 2 == 1))
        for kernel, cin, cout, pad in (((1, 1), 8, 7, (0, 0)), ((3, 3), 4, 38, (0, 0)), ((1, 1), 6, 5, (0, 0)),
                                       ((3, 3), 8, 6, (1, 1)), ((1, 3), 16, 9, (0, 1))):
            # pad (1, 1) clips the kernel rows at both edges (runs of whole bytes between zeros)
            out_hw = (4 + 2 * pad[0] - kernel[0] + 1, 5 + 2 * pad[1] - kernel[1] + 1)
            cases.append(_make(rng, "conv", in_bits, out_bits, (4, 5, cin), kernel, cout, (1, 1), pad, (1, 1), 1,
                               out_hw, full_clamp=cout != 5))
        # a dilated window: tap by tap
        cases.append(_make(rng, "conv", in_bits, out_bits, (4, 5, 8), (2, 2), 3, (1, 1), (0, 0), (1, 2), 1, (3, 3)))
        # shifts in [-1, 2] on some channels, the clamp the width's range: the register-packed output's other
        # requantizations (right 1, left shifts) beside the folded one, over 1.5 chunks and a partial last byte
        cases.append(_make(rng, "conv", in_bits, out_bits, (3, 4, 8), (1, 1), 47, (1, 1), (0, 0), (1, 1), 1,
                           (3, 4), full_clamp=True, high_shifts=True))
        cases.append(_make(rng, "dwconv", in_bits, out_bits, (5, 5, 13), (3, 3), 13, (1, 1), (1, 1), (1, 1), 1,
                           (5, 5), full_clamp=True, high_shifts=True))
    return cases


def write_cases(cases: list[PackedCase], seed: int, out: Path) -> Path:
    out.write_text(_env().get_template("packed_cases.c.j2").render(cases=cases, seed=seed))
    return out


def output_bytes(c: PackedCase) -> int:
    return c.out_dims[0] * c.out_dims[1] * c.out_dims[2] * pixel_bytes(c.out_dims[3], c.out_bits)
