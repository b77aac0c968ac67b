"""Random layers for the MVE kernel tests (tests/test_c_kernels_mve.py), on top of harness.py.

The cases are harness.Case values (same C struct, same cases.c.j2), with the MVE kernels' weights and folded
bias from ``mcucompile.ops.mve_layout`` as the compiler will emit them. Shapes differ from the DSP tests where
the MVE kernels differ: 1x1 convolutions with any C_in (not only multiples of 4), channel counts on both sides
of the 16-lane vector (1..40), and every layer of conv / FC passes the folded bias (MveCase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mcucompile.ops import mve_layout

import harness
from harness import KIND, Case, _bias, _int8, _quant, _window_out

HERE = harness.HERE
MAIN = HERE / "mve_main.c"


@dataclass(frozen=True)
class MveCase(Case):
    """A Case whose fast kernel always takes a bias array: the folded one."""

    @property
    def fast_bias_given(self) -> bool:
        return True


def _channels(rng) -> int:
    return int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 13, 16, 17, 24, 31, 33, 40]))


def conv_case(rng, one_by_one: bool) -> MveCase:
    n = int(rng.integers(1, 3))
    if one_by_one:
        kh = kw = 1
        cin = _channels(rng)
        stride = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 2])))
        dil = (1, 1)
        pad = (-int(rng.integers(0, 3)), -int(rng.integers(0, 3)))  # a start offset or none; taps inside
        oh, ow = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        h = -pad[0] + (oh - 1) * stride[0] + 1 + int(rng.integers(0, 3))
        w = -pad[1] + (ow - 1) * stride[1] + 1 + int(rng.integers(0, 3))
    else:
        kh, kw = [(1, 1), (2, 2), (3, 3), (3, 3), (5, 5), (10, 4), (1, 3), (3, 1)][int(rng.integers(0, 8))]
        cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 16, 17]))
        stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
        dil = (1, 1) if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
        h, w = int(rng.integers(kh, kh + 8)), int(rng.integers(kw, kw + 8))
        oh = _window_out(h, kh, stride[0], pad[0], dil[0], rng)
        ow = _window_out(w, kw, stride[1], pad[1], dil[1], rng)
    cout = int(rng.integers(1, 14))
    x = _int8(rng, (n, h, w, cin))
    wts = _int8(rng, (cout, kh, kw, cin))
    bias, has = _bias(rng, cout)
    mult, shift, in_off, out_off, act = _quant(rng, cout, kh * kw * cin)
    consts = (mve_layout.conv_1x1_constants if one_by_one else mve_layout.conv_constants)(
        wts, bias if has else None, in_off)
    what = "conv_1x1" if one_by_one else "conv"
    return MveCase(KIND[what], f"{what} {n}x{h}x{w}x{cin} k{kh}x{kw} s{stride} p{pad} d{dil} -> {oh}x{ow}x{cout}",
                   (n, h, w, cin), (cout, kh, kw, cin), (n, oh, ow, cout), stride, pad, dil, in_off, out_off, act,
                   x, wts, consts.weights, bias, has, consts.bias, mult, shift, 0, consts.scratch_bytes)


def dwconv_case(rng, three_by_three: bool = False, rounding: str = "double") -> MveCase:
    """A depthwise layer for mcu_dwconv_mve_s8 or, with ``three_by_three``, for mcu_dwconv_3x3_mve_s8: a 3x3 window
    and shifts it takes (<= 0 with double rounding, 0 included; < 0 with single)."""
    n = int(rng.integers(1, 3))
    kh, kw = [(3, 3), (3, 3), (3, 3), (1, 1), (2, 2), (5, 5), (3, 1), (1, 3), (7, 7)][int(rng.integers(0, 9))]
    if three_by_three:
        kh = kw = 3
    c = _channels(rng)
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    dil = (1, 1) if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pad = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
    h, w = int(rng.integers(kh, kh + 7)), int(rng.integers(kw, kw + 7))
    oh = _window_out(h, kh, stride[0], pad[0], dil[0], rng)
    ow = _window_out(w, kw, stride[1], pad[1], dil[1], rng)
    x = _int8(rng, (n, h, w, c))
    wts = _int8(rng, (kh, kw, c))
    bias, has = _bias(rng, c)
    mult, shift, in_off, out_off, act = _quant(rng, c, kh * kw)
    what = "dwconv"
    if three_by_three:
        what = "dwconv_3x3"
        shift = np.minimum(shift, -1 if rounding == "single" else 0).astype(np.int32)
        if rounding != "single" and rng.random() < 0.3:
            shift[rng.integers(0, c)] = 0  # the edge of the range
        assert mve_layout.dwconv_3x3_problem((kh, kw), 1, shift, rounding) is None
    consts = mve_layout.dwconv_constants(wts, bias if has else None, in_off)
    return MveCase(KIND[what], f"{what} {n}x{h}x{w}x{c} k{kh}x{kw} s{stride} p{pad} d{dil} -> {oh}x{ow}",
                   (n, h, w, c), (1, kh, kw, c), (n, oh, ow, c), stride, pad, dil, in_off, out_off, act,
                   x, wts, consts.weights, bias, has, consts.bias, mult, shift, 4 * c, consts.scratch_bytes)


def fc_case(rng) -> MveCase:
    rows, depth, cout = int(rng.integers(1, 4)), int(rng.integers(1, 100)), int(rng.integers(1, 14))
    x = _int8(rng, (rows, depth))
    wts = _int8(rng, (cout, depth))
    bias, has = _bias(rng, cout)
    mult, shift, in_off, out_off, act = _quant(rng, cout, depth)
    consts = mve_layout.fully_connected_constants(wts, bias if has else None, in_off)
    return MveCase(KIND["fc"], f"fc {rows}x{depth} -> {cout}", (rows, 1, 1, depth), (depth, 1, 1, cout),
                   (rows, 1, 1, cout), (1, 1), (0, 0), (1, 1), in_off, out_off, act, x, wts,
                   consts.weights, bias, has, consts.bias, mult, shift, 0, consts.scratch_bytes)


def random_cases(seed: int, per_kind: int, rounding: str = "double") -> list[MveCase]:
    """``per_kind`` random layers of each of the five MVE kernels (the 3x3 depthwise one with shifts it takes under
    ``rounding``, the build's mcunn_config.h mode)."""
    rng = np.random.default_rng(seed)
    cases: list[MveCase] = []
    for _ in range(per_kind):
        cases += [conv_case(rng, True), conv_case(rng, False), dwconv_case(rng), fc_case(rng),
                  dwconv_case(rng, True, rounding)]
    return cases


def layer_case(what: str, in_hwc: tuple[int, int, int], kernel: tuple[int, int], cout: int,
               stride: tuple[int, int] = (1, 1), pad: tuple[int, int] = (0, 0), seed: int = 0,
               out_hw: tuple[int, int] | None = None) -> MveCase:
    """harness.layer_case (the benchmark's shapes, same random data) with the MVE kernels' constants."""
    c = harness.layer_case(what, in_hwc, kernel, cout, stride, pad, seed, out_hw)
    w = c.filter
    if what == "fc":
        consts = mve_layout.fully_connected_constants(w, c.bias, c.in_off)
    elif what == "dwconv":
        consts = mve_layout.dwconv_constants(w, c.bias, c.in_off)
    elif what == "conv_1x1":
        consts = mve_layout.conv_1x1_constants(w, c.bias, c.in_off)
    else:
        consts = mve_layout.conv_constants(w, c.bias, c.in_off)
    fields = {f: getattr(c, f) for f in Case.__dataclass_fields__}
    fields.update(fast_filter=consts.weights, fast_bias=consts.bias, scratch_fast=consts.scratch_bytes)
    return MveCase(**fields)
