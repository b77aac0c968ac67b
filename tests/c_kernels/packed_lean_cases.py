"""Layers for the scratch-free SIMD32 packed conv (``mcu_conv_lean_dsp_a*w8_s8``, runtime_c/include/mcunn_packed.h),
with the simulator's outputs as the expected bytes.

The layers of ``packed_cases`` (same generator, same simulator), restricted to what the kernel takes (groups 1, C_in
a multiple of 4, at most 32 taps, a pixel of at most 128 bytes), with its own constants in the fast slots: the
"quads" weights (middle weights of each block exchanged for a sub-byte input) and the bias with the input offset
folded in (less 2^(b-1) for a sub-byte input), as ``compiler/ops/packed_kernels.py`` makes them. Written with
``packed_cases.c.j2``; ``packed_lean_dsp_main.c`` runs them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from mcucompile.ops import packed_kernels
from packed_cases import BIT_PAIRS, PackedCase, _make


def lean_constants(c: PackedCase) -> PackedCase:
    """``c`` (a groups-1 conv) with the lean kernel's weights and bias in its fast slots, no scratch."""
    w = c.filter.reshape(c.filter_dims)
    if c.in_bits == 8:
        fc = packed_kernels.conv_lean_dsp_a8_constants(w, c.bias, c.in_off)
    else:
        fc = packed_kernels.conv_lean_dsp_constants(w, c.bias, c.in_off - (1 << (c.in_bits - 1)))
    return dataclasses.replace(c, fast_filter=fc.weights, fast_bias=fc.bias, has_fast=True, scratch_fast=0)


def _random(rng: np.random.Generator, in_bits: int, out_bits: int, big: bool) -> PackedCase:
    cin = int(rng.choice([4, 8, 12, 16] + ([32, 64] if big else [])))
    cout = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 16] + ([33, 36, 66] if big else [])))
    kh, kw = [(1, 1), (3, 3), (1, 3), (3, 1), (2, 2), (5, 5)][rng.integers(6)]
    stride = tuple(int(s) for s in rng.choice([1, 2], 2))
    dilation = (1, 1) if rng.random() < 0.75 else tuple(int(d) for d in rng.choice([1, 2], 2))
    h, w = (int(v) for v in rng.integers(1, 9, 2))
    pad = tuple(int(p) for p in rng.integers(-2, 3, 2))
    ext_h, ext_w = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    full_h = max(1, (h + 2 * max(pad[0], 0) - ext_h) // stride[0] + 1)
    full_w = max(1, (w + 2 * max(pad[1], 0) - ext_w) // stride[1] + 1)
    oh, ow = int(rng.integers(1, full_h + 1)), int(rng.integers(1, full_w + 1))
    return _make(rng, "conv", in_bits, out_bits, (h, w, cin), (kh, kw), cout, stride, pad, dilation, 1, (oh, ow))


def lean_cases(seed: int, per_pair: int) -> list[PackedCase]:
    """``per_pair`` random layers for every bit pair (every third with large channel counts: tails past the
    quads, several 32-channel chunks), then per pair the edges: one output pixel (a patch's 1x1 tile: stored as a
    single last pixel), the widest pixel (128 bytes), the largest window (32 taps: 4x8), taps outside on every
    side (the zero-point pixel), and the output stage packed in registers and staged (the clamp the width's range
    or a fused bound)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(per_pair):
        for in_bits, out_bits in BIT_PAIRS:
            cases.append(lean_constants(_random(rng, in_bits, out_bits, big=i % 3 == 2)))
    for in_bits, out_bits in BIT_PAIRS:
        widest = 128 * 8 // in_bits
        for in_hwc, kernel, cout, stride, pad, out_hw, full in (
                ((3, 3, 16), (3, 3), 16, (2, 2), (1, 1), (1, 1), True),     # MNIST's per-patch layer, edge patch
                ((3, 3, 16), (3, 3), 16, (2, 2), (0, 0), (1, 1), False),
                ((2, 3, widest), (1, 1), 6, (1, 1), (0, 0), (2, 3), True),
                ((5, 9, 4), (4, 8), 5, (1, 1), (1, 0), (3, 2), False),
                ((4, 4, 8), (3, 3), 9, (1, 1), (1, 1), (4, 4), True),
                ((6, 5, 12), (1, 1), 40, (1, 1), (-1, -2), (4, 3), True)):
            cases.append(lean_constants(_make(rng, "conv", in_bits, out_bits, in_hwc, kernel, cout, stride, pad,
                                              (1, 1), 1, out_hw, full_clamp=full)))
    return cases
