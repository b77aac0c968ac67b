#!/usr/bin/env python3
"""Packed-activation kernel benchmark (measure, do not assert): instructions per MAC of the a4w8 and a2w8
convolution and depthwise kernels (runtime_c/include/mcunn_packed.h) against the int8 kernels, on qemu-m4, for
shapes of the performance table (../shared/design/performance.md: 1, 2, 4, 5), one call each, random data,
per-channel requantization; each output checked against the simulator's bytes. Then the SRAM the packed maps
save: each shape's input + output map at 8 / 4 / 2 bits, and the peak SRAM of a stage-heavy CNN whose stage maps
are lowered to 4 and 2 bits (tests/test_packed_kernels.py's lowering), layer by layer and patched, against int8.

Counts are guest instructions under QEMU -icount shift=0 (deterministic), not cycles. On Cortex-M4 sub-byte
maps are a storage format (performance.md, "Sub-byte data"): the MAC loop stays on SMLAD, so the figure to
read is the unpacking overhead per MAC over int8, against the 2x / 4x smaller maps.

With ``--board qemu-m55`` (an MVE core) the table has an MVE column: per shape and width pair the MVE packed
kernel (runtime_c/include/mcunn_packed_mve.h) against the portable packed kernel and the SIMD32 packed kernel
(what the M55 ran before it had MVE packed kernels), and the int8 MVE kernel of the same shape (the int8 row: what
an int8 layer runs on the M55, mcu_conv_1x1_mve_s8 / mcu_conv_mve_s8 / mcu_dwconv_mve_s8); every output checked
against the simulator's bytes (tests/c_kernels/packed_mve_main.c).

On qemu-m4 the tables end with QuantMCU's per-patch layers (STAGE_M4) and the scratch-free SIMD32 conv
(mcu_conv_lean_dsp_a*w8_s8, what a conv runs when its im2col scratch must go) against the im2col SIMD32 packed kernel
and the portable packed kernel it replaced; ``--fit`` fits its cost terms on a sweep of small layers.

Usage: python bench/packed_kernels.py [--board qemu-m4 | qemu-m55] [--no-network] [--stage-only] [--fit]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "c_kernels"))

import harness
import packed_cases
from mcucompile.arith.bitwidth import pack, pixel_bytes
from mcucompile.boards import get_board
from mcucompile.targets.firmware import run_qemu

# (number in performance.md, description, kind, input HWC, kernel, C_out, stride, padding)
SHAPES = [
    (1, "conv 1x1, 24x24x32 -> 24x24x64", "conv", (24, 24, 32), (1, 1), 64, (1, 1), (0, 0)),
    (2, "conv 3x3 s1 p1, 16x16x16 -> 16x16x32", "conv", (16, 16, 16), (3, 3), 32, (1, 1), (1, 1)),
    (4, "depthwise 3x3 s1 p1, 24x24x64", "dwconv", (24, 24, 64), (3, 3), 64, (1, 1), (1, 1)),
    (5, "depthwise 3x3 s2 p1, 24x24x64 -> 12x12x64", "dwconv", (24, 24, 64), (3, 3), 64, (2, 2), (1, 1)),
]
#: per-patch regions as QuantMCU's stages run them (the region a patch's layer reads, halo included, no padding:
#: the planner crops it), where the per-call and per-row overhead shows: VWW's 4-layer stage on its 8x8 grid
#: (output tiles of 3x3..6x6 pixels, 8-16 channels) and a MNIST-like 7x7 grid (tiny tiles)
SMALL = [
    ("p1", "VWW patch: conv 3x3 s2, 13x13x3 -> 6x6x8", "conv", (13, 13, 3), (3, 3), 8, (2, 2), (0, 0)),
    ("p2", "VWW patch: dw 3x3, 8x8x8 -> 6x6x8", "dwconv", (8, 8, 8), (3, 3), 8, (1, 1), (0, 0)),
    ("p3", "VWW patch: pw, 6x6x8 -> 6x6x16", "conv", (6, 6, 8), (1, 1), 16, (1, 1), (0, 0)),
    ("p4", "VWW patch: dw 3x3 s2, 7x7x16 -> 3x3x16", "dwconv", (7, 7, 16), (3, 3), 16, (2, 2), (0, 0)),
    ("p5", "MNIST patch: conv 3x3, 6x6x8 -> 4x4x8", "conv", (6, 6, 8), (3, 3), 8, (1, 1), (0, 0)),
    ("p6", "MNIST patch: dw 3x3, 4x4x16 -> 2x2x16", "dwconv", (4, 4, 16), (3, 3), 16, (1, 1), (0, 0)),
]
#: QuantMCU's per-patch layers on qemu-m55 as VWW and MNIST compile them at their tight budgets (39,008 B and
#: 2,064 B; ``mcucompile <model> --board qemu-m55 --quantmcu --sram-limit <budget>``, an interior patch's region of
#: model.c's patch table): VWW 8x8@4 (dw, pw, dw s2 of 8-16 channels on 3x3..9x9 regions), MNIST 7x7@4 (dw s2, pw
#: and a 3x3 conv on 1x1..7x7 regions)
STAGE_M55 = [
    ("v1", "VWW patch: dw 3x3, 9x9x8 -> 7x7x8", "dwconv", (9, 9, 8), (3, 3), 8, (1, 1), (0, 0)),
    ("v2", "VWW patch: pw, 7x7x8 -> 7x7x16", "conv", (7, 7, 8), (1, 1), 16, (1, 1), (0, 0)),
    ("v3", "VWW patch: dw 3x3 s2, 7x7x16 -> 3x3x16", "dwconv", (7, 7, 16), (3, 3), 16, (2, 2), (0, 0)),
    ("m1", "MNIST patch: dw 3x3 s2, 7x7x8 -> 3x3x8", "dwconv", (7, 7, 8), (3, 3), 8, (2, 2), (0, 0)),
    ("m2", "MNIST patch: pw, 3x3x8 -> 3x3x16", "conv", (3, 3, 8), (1, 1), 16, (1, 1), (0, 0)),
    ("m3", "MNIST patch: conv 3x3, 3x3x16 -> 1x1x16", "conv", (3, 3, 16), (3, 3), 16, (1, 1), (0, 0)),
]
#: (input bits, output bits) rows per shape: the int8 kernels, then the packed ones
PAIRS = [(8, 8), (4, 4), (2, 2), (4, 8), (8, 4)]
#: the stage table's rows: every pair the stages run (a8>a4, a4>a4, a4>a8, a8>a2, a2>a2, a2>a8) and the others
PAIRS_STAGE = [(8, 8), (4, 4), (2, 2), (4, 8), (8, 4), (2, 8), (8, 2)]


def macs(c: packed_cases.PackedCase) -> int:
    _, oh, ow, cout = c.out_dims
    _, kh, kw, cin = c.filter_dims
    return oh * ow * cout * kh * kw * (1 if c.kind == packed_cases.KIND["dwconv"] else cin)


def int8_depthwise(c: packed_cases.PackedCase) -> packed_cases.PackedCase:
    """The int8 depthwise row with input zero point 0 and no bias, so mcu_dwconv_dsp_s8's folded bias is the
    model's (the cost does not depend on either)."""
    x = c.input.view(np.int8).reshape(c.in_dims)
    wts = c.filter.reshape(c.filter_dims[1:])
    bias = np.zeros_like(c.bias)
    y = packed_cases.simulate("dwconv", x, wts, bias, c.mult, c.shift, 0, c.out_off, c.act, c.stride, c.pad,
                              c.dilation, 1, c.out_dims[1:3], 8, 8)
    return dataclasses.replace(c, in_off=0, bias=bias, fast_bias=bias, expected=pack(y, 8).reshape(-1))


def _seed(number) -> int:
    return number if isinstance(number, int) else 100 + sum(map(ord, number))


def _cases_and_rows(shapes=SHAPES, pairs=PAIRS):
    cases, rows = [], []
    for number, desc, kind, hwc, k, cout, stride, pad in shapes:
        for bi, bo in pairs:
            rows.append((number, desc, bi, bo, len(cases)))
            cases.append(packed_cases.layer_case(kind, bi, bo, hwc, k, cout, stride, pad, seed=_seed(number)))
    return cases, rows


def _counts(log: str) -> dict:
    counts = {}
    for line in log.splitlines():
        m = re.match(r"MCU K (\d+) (\w+) (\d+) ([01])", line)
        if m:
            counts[(int(m.group(1)), m.group(2))] = (int(m.group(3)), m.group(4) == "1")
    return counts


def _run_by_shape(board, cases: list, main: str, per_shape: int = len(PAIRS)) -> dict:
    """(case, kernel) -> (instructions, equal): ``main`` (a firmware under tests/c_kernels) on ``cases``, one
    firmware per group of ``per_shape`` cases (all shapes at once do not fit the M55's 512 KB ITCM)."""
    counts = {}
    with tempfile.TemporaryDirectory(prefix="mcu_bench_packed_") as tmp:
        for first in range(0, len(cases), per_shape):
            build = Path(tmp) / str(first)
            build.mkdir()
            src = packed_cases.write_cases(cases[first:first + per_shape], 0, build / "cases.c")
            elf = harness.build_firmware(board, [src, harness.HERE / main], build / "fw")
            counts.update({(first + i, k): v for (i, k), v in _counts(run_qemu(elf, board, timeout=600).log).items()})
    return counts


def mve_rows(board, shapes=SHAPES, pairs=PAIRS) -> None:
    """The qemu-m55 table: MVE packed vs portable packed vs SIMD32 packed, and the int8 MVE kernel per shape."""
    import test_packed_mve

    cases, rows = _cases_and_rows(shapes, pairs)
    mve = [test_packed_mve.mve_case(c) for c in cases]
    per = len(mve) if shapes is STAGE_M55 else len(pairs)  # the small layers fit one firmware
    counts = _run_by_shape(board, mve, "packed_mve_main.c", per)
    dsp_cases = [int8_depthwise(c) if c.kind == packed_cases.KIND["dwconv"] and (c.in_bits, c.out_bits) == (8, 8)
                 else c for c in cases]
    dsp = _run_by_shape(board, dsp_cases, "packed_bench_main.c", per)
    # the packed convs the scratch-free windowed path takes, run again without scratch (what a lean budget runs)
    from mcucompile.ops import packed_kernels as pk

    lean_rows = [i for i, c in enumerate(mve)
                 if c.kind == packed_cases.KIND["conv"] and (c.in_bits, c.out_bits) != (8, 8)
                 and not pk.conv_mve_direct(*c.filter_dims[1:]) and pk.conv_mve_scratch_free(*c.filter_dims[1:])]
    lean_cases = [dataclasses.replace(mve[i], scratch_fast=0) for i in lean_rows]
    lean_counts = _run_by_shape(board, lean_cases, "packed_mve_main.c", len(lean_cases)) if lean_cases else {}
    lean = {i: lean_counts[(j, "mve")] for j, i in enumerate(lean_rows)}
    print(f"board {board.name} ({board.core}), instructions (QEMU -icount shift=0, not cycles); int8 rows: the int8 "
          "kernels (MVE column: the int8 MVE kernel); 'MVE no scratch': the scratch-free windowed conv path (what a "
          "lean budget runs; the int8 layer there runs the portable kernel)")
    head = (f"{'#':>2} {'layer (NHWC)':<44} {'bits':>6} {'MACs':>10} {'portable (i/MAC)':>20} {'SIMD32 (i/MAC)':>18} "
            f"{'MVE (i/MAC)':>18} {'MVE/int8 MVE':>12} {'MVE/SIMD32':>10} {'exact':>5} {'MVE no scratch':>16}")
    print(head)
    print("-" * len(head))
    base = {}
    for number, desc, bi, bo, i in rows:
        m = macs(mve[i])
        port, p_ok = counts[(i, "portable")]
        fast, f_ok = counts[(i, "mve")]
        simd, s_ok = dsp[(i, "fast")]
        if (bi, bo) == (8, 8):
            base[number] = fast
        ok = p_ok and f_ok and s_ok
        no_scratch = ""
        if i in lean:
            n, l_ok = lean[i]
            no_scratch = f" {n:>9,} ({n / m:4.2f})"
            ok = ok and l_ok
        print(f"{number!s:>2} {desc:<44} {f'a{bi}>a{bo}':>6} {m:>10,} {port:>11,} ({port / m:5.2f}) {simd:>9,} "
              f"({simd / m:5.2f}) {fast:>9,} ({fast / m:5.2f}) {fast / base[number]:>12.2f} {fast / simd:>10.2f} "
              f"{'yes' if ok else 'NO':>5}{no_scratch}")


#: the --fit sweep on qemu-m55 (out HW, C_in, C_out): 1x1 and 3x3 convolutions (C_out 24: the direct pointwise loop
#: off the 16-channel blocks), 3x3 depthwise, per-patch sizes up to 12x12 outputs; windowed convolutions on C_in 16 /
#: 32 also without scratch (the lean rows)
FIT_PAIRS = [(4, 4), (2, 2), (4, 8), (8, 4), (8, 2), (2, 8)]
FIT_SHAPES = ([("conv", (1, 1), o, ci, co, 1) for o in (3, 7, 12) for ci in (8, 16, 32) for co in (16, 24, 32)]
              + [("conv", (3, 3), o, ci, co, 1) for o in (1, 3, 6) for ci in (8, 16, 32) for co in (8, 32)]
              + [("dwconv", (3, 3), o, c, c, 1) for o in (3, 7, 12) for c in (8, 16, 24, 64)]
              + [("dwconv", (3, 3), 3, c, c, 2) for c in (8, 16)])


def _stub_layer(c: packed_cases.PackedCase):
    """(node, graph, geometry) stand-ins carrying what the packed kernels' cost counts read: the weights' shape, the
    maps' shapes and bits, the output region."""
    from types import SimpleNamespace as NS

    conv = c.kind == packed_cases.KIND["conv"]
    wshape = tuple(c.filter_dims) if conv else tuple(c.filter_dims[1:])
    tensors = {"x": NS(shape=tuple(c.in_dims), quant=NS(bits=c.in_bits)), "w": NS(shape=wshape),
               "y": NS(shape=tuple(c.out_dims), quant=NS(bits=c.out_bits))}
    node = NS(inputs=["x", "w"], outputs=["y"], attrs=NS(window=NS(dilation=tuple(c.dilation))))
    return node, NS(tensors=tensors), NS(out_h=c.out_dims[1], out_w=c.out_dims[2])


def fit_rows(board) -> None:
    """Least squares (weighted by 1 / instructions) of the MVE packed kernels' cost terms over FIT_SHAPES x FIT_PAIRS
    on ``board``: prints each kernel's coefficients (to paste into compiler/ops/packed_kernels.py) and the error of the
    fitted and of the declared coefficients."""
    import dataclasses as dc

    import test_packed_mve
    from mcucompile.ops import packed_kernels as pk
    from scipy.optimize import nnls

    cases, kernels = [], []
    for kind, k, o, ci, co, st in FIT_SHAPES:
        hw = ((o - 1) * st + k[0], (o - 1) * st + k[1], ci)
        for bi, bo in FIT_PAIRS:
            c = test_packed_mve.mve_case(packed_cases.layer_case(kind, bi, bo, hw, k, co, (st, st), (0, 0),
                                                                 seed=len(cases)))
            if kind == "dwconv":
                cases.append(c)
                kernels.append(pk.DEPTHWISE_CONV_MVE)
                continue
            cases.append(c)
            kernels.append(pk.CONV_MVE)
            if not pk.conv_mve_direct(k[0], k[1], ci) and pk.conv_mve_scratch_free(k[0], k[1], ci):
                cases.append(dc.replace(c, scratch_fast=0))  # the same layer without scratch
                kernels.append(pk.CONV_LEAN_MVE)
    counts = _run_by_shape(board, cases, "packed_mve_main.c", 24)
    print(f"board {board.name}: {len(cases)} layers of the --fit sweep (QEMU -icount, instructions)")
    for kern in (pk.CONV_MVE, pk.CONV_LEAN_MVE, pk.DEPTHWISE_CONV_MVE):
        idx = [i for i, kk in enumerate(kernels) if kk is kern]
        names = list(kern.cost.features)
        a = np.array([[kern.cost.counts(*_stub_layer(cases[i])).get(n, 0.0) for n in names] for i in idx])
        b = np.array([counts[(i, "mve")][0] for i in idx], float)
        bad = [i for i in idx if not counts[(i, "mve")][1]]
        wt = 1.0 / b
        used = a.any(axis=0)
        x = np.zeros(len(names))
        x[used], _ = nnls(a[:, used] * wt[:, None], b * wt, maxiter=100 * a.shape[1])
        declared = np.array([kern.cost.coefficients.get(n, 0.0) for n in names])
        for label, coef in (("fitted", x), ("declared", declared)):
            err = np.abs(a @ coef - b) / b
            print(f"  {kern.name} {label}: mean error {100 * err.mean():.1f}%, worst {100 * err.max():.1f}% "
                  f"({len(idx)} layers{', NOT EXACT: ' + str(len(bad)) if bad else ''})")
        print("    {" + ", ".join(f'"{n}": {v:.4g}' for n, v in zip(names, x)) + "}")


#: QuantMCU's per-patch layers on qemu-m4 as VWW and MNIST compile them at their tight budgets: the same plans as on
#: qemu-m55 (VWW 8x8@4, MNIST 7x7@4; ``mcucompile <model> --board qemu-m4 --quantmcu --sram-limit <budget>``), so the
#: same regions; MNIST's 3x3 conv is the layer whose im2col scratch does not fit (it runs the scratch-free conv)
STAGE_M4 = STAGE_M55
#: the --fit sweep on qemu-m4 for the scratch-free SIMD32 conv (kind, kernel, out HW, C_in, C_out, stride): 1x1 and
#: 3x3 convolutions on per-patch sizes, C_in a multiple of 4, C_out on and off the quads and past a 32-channel chunk
FIT_SHAPES_M4 = ([("conv", (1, 1), o, ci, co, 1) for o in (1, 3, 7, 12) for ci in (4, 8, 16, 32) for co in (3, 16, 36)]
                 + [("conv", (3, 3), o, ci, co, 1) for o in (1, 2, 3, 6) for ci in (4, 8, 16, 32) for co in (5, 16, 32)]
                 + [("conv", (3, 3), o, ci, co, 2) for o in (1, 3) for ci in (8, 16) for co in (8, 16)])


def _lean_pair(c: packed_cases.PackedCase):
    """The im2col case ``c`` and the same layer with the scratch-free kernel's constants (None when it cannot)."""
    import packed_lean_cases
    from mcucompile.ops import packed_kernels as pk

    if pk.conv_lean_dsp_problem(*c.filter_dims[1:], c.in_bits) is not None:
        return None
    return packed_lean_cases.lean_constants(c)


def lean_rows(board, shapes=SHAPES + SMALL + STAGE_M4, pairs=PAIRS_STAGE) -> None:
    """The qemu-m4 table of the scratch-free SIMD32 conv (mcu_conv_lean_dsp_a*w8_s8, what a layer runs when its
    im2col scratch must go) against the im2col SIMD32 packed kernel (with scratch) and the portable packed kernel
    (what such a layer ran before), per conv shape and width pair; int8 rows: the int8 DSP kernel with scratch and
    the portable int8 kernel (what 8-bit patching runs on a lean budget)."""
    cases, rows = _cases_and_rows([s for s in shapes if s[2] == "conv"], pairs)
    lean = {}
    for number, desc, bi, bo, i in rows:
        if (bi, bo) != (8, 8):
            lc = _lean_pair(cases[i])
            if lc is not None:
                lean[i] = len(cases) + len(lean)
    lean_cases = [_lean_pair(cases[i]) for i in lean]
    im2col = _run_by_shape(board, cases, "packed_bench_main.c", len(pairs))
    no_scratch = _run_by_shape(board, lean_cases, "packed_lean_bench_main.c", 24) if lean_cases else {}
    print(f"board {board.name} ({board.core}), instructions (QEMU -icount shift=0, not cycles); 'lean': the "
          "scratch-free SIMD32 conv, no scratch; int8 rows: portable = mcu_conv_s8, DSP = mcu_conv_dsp_s8")
    head = (f"{'#':>2} {'layer (NHWC)':<44} {'bits':>6} {'MACs':>9} {'portable (i/MAC)':>20} {'DSP im2col':>18} "
            f"{'DSP lean':>18} {'lean/im2col':>11} {'lean/int8 DSP':>13} {'exact':>5}")
    print(head)
    print("-" * len(head))
    base = {}
    for number, desc, bi, bo, i in rows:
        m = macs(cases[i])
        port, p_ok = im2col[(i, "portable")]
        fast, f_ok = im2col[(i, "fast")]
        if (bi, bo) == (8, 8):
            base[number] = fast
        cell, ratio, vs8, ok = f"{'-':>18}", f"{'-':>11}", f"{'-':>13}", p_ok and f_ok
        if i in lean:
            n, l_ok = no_scratch[(lean[i] - len(cases), "fast")]
            cell, ratio, vs8 = f"{n:>9,} ({n / m:5.2f})", f"{n / fast:>11.2f}", f"{n / base[number]:>13.2f}"
            ok = ok and l_ok
        print(f"{number!s:>2} {desc:<44} {f'a{bi}>a{bo}':>6} {m:>9,} {port:>11,} ({port / m:5.2f}) {fast:>9,} "
              f"({fast / m:5.2f}) {cell} {ratio} {vs8} {'yes' if ok else 'NO':>5}")


def fit_lean_rows(board) -> None:
    """Least squares (weighted by 1 / instructions, non-negative) of CONV_LEAN_DSP's cost terms over FIT_SHAPES_M4 x
    FIT_PAIRS on ``board`` (qemu-m4): prints the coefficients (to paste into compiler/ops/packed_kernels.py) and the
    error of the fitted and of the declared ones."""
    from mcucompile.ops import packed_kernels as pk
    from scipy.optimize import nnls

    cases = []
    for kind, k, o, ci, co, st in FIT_SHAPES_M4:
        hw = ((o - 1) * st + k[0], (o - 1) * st + k[1], ci)
        for bi, bo in FIT_PAIRS:
            c = packed_cases.layer_case(kind, bi, bo, hw, k, co, (st, st), (0, 0), seed=len(cases))
            cases.append(_lean_pair(c))
    counts = _run_by_shape(board, cases, "packed_lean_bench_main.c", 24)
    kern = pk.CONV_LEAN_DSP
    names = list(kern.cost.features)
    a = np.array([[kern.cost.counts(*_stub_layer(c)).get(n, 0.0) for n in names] for c in cases])
    b = np.array([counts[(i, "fast")][0] for i in range(len(cases))], float)
    bad = [i for i in range(len(cases)) if not counts[(i, "fast")][1]]
    wt = 1.0 / b
    used = a.any(axis=0)
    x = np.zeros(len(names))
    x[used], _ = nnls(a[:, used] * wt[:, None], b * wt, maxiter=100 * a.shape[1])
    declared = np.array([kern.cost.coefficients.get(n, 0.0) for n in names])
    print(f"board {board.name}: {len(cases)} layers of the qemu-m4 --fit sweep (QEMU -icount, instructions)")
    for label, coef in (("fitted", x), ("declared", declared)):
        err = np.abs(a @ coef - b) / b
        print(f"  {kern.name} {label}: mean error {100 * err.mean():.1f}%, worst {100 * err.max():.1f}% "
              f"({len(cases)} layers{', NOT EXACT: ' + str(len(bad)) if bad else ''})")
    print("    {" + ", ".join(f'"{n}": {v:.4g}' for n, v in zip(names, x)) + "}")


def kernel_rows(board, shapes=SHAPES, per_call: bool = False) -> None:
    """The qemu-m4 table for ``shapes``: portable and DSP packed per MAC against the int8 DSP kernel of the same
    shape (the a8>a8 row: mcu_conv_dsp_s8 / mcu_dwconv_dsp_s8, what an int8 layer runs); ``per_call`` adds the
    instructions per call."""
    cases, rows = [], []
    for number, desc, kind, hwc, k, cout, stride, pad in shapes:
        for bi, bo in PAIRS:
            seed = number if isinstance(number, int) else 100 + int(number[1:])
            c = packed_cases.layer_case(kind, bi, bo, hwc, k, cout, stride, pad, seed=seed)
            if kind == "dwconv" and (bi, bo) == (8, 8):
                c = int8_depthwise(c)
            rows.append((number, desc, bi, bo, len(cases)))
            cases.append(c)
    with tempfile.TemporaryDirectory(prefix="mcu_bench_packed_") as tmp:
        build = Path(tmp)
        src = packed_cases.write_cases(cases, 0, build / "cases.c")
        elf = harness.build_firmware(board, [src, harness.HERE / "packed_bench_main.c"], build / "fw")
        run = run_qemu(elf, board, timeout=600)
    counts = {}
    for line in run.log.splitlines():
        m = re.match(r"MCU K (\d+) (\w+) (\d+) ([01])", line)
        if m:
            counts[(int(m.group(1)), m.group(2))] = (int(m.group(3)), m.group(4) == "1")
    print(f"board {board.name} ({board.core}), instructions (QEMU -icount shift=0, not cycles)")
    head = (f"{'#':>2} {'layer (NHWC)':<44} {'bits':>6} {'MACs':>10} {'portable (i/MAC)':>20} {'DSP (i/MAC)':>18} "
            f"{'DSP/int8 DSP':>12} {'maps (B)':>9} {'exact':>5}" + (f" {'DSP/call':>9}" if per_call else ""))
    print(head)
    print("-" * len(head))
    base = {}
    for number, desc, bi, bo, i in rows:
        c = cases[i]
        m = macs(c)
        port, p_ok = counts[(i, "portable")]
        fast, f_ok = counts[(i, "fast")]
        if (bi, bo) == (8, 8):
            base[number] = fast
        maps = (np.prod(c.in_dims[:3]) * pixel_bytes(c.in_dims[3], bi)
                + np.prod(c.out_dims[:3]) * pixel_bytes(c.out_dims[3], bo))
        bits = f"a{bi}>a{bo}"
        print(f"{number!s:>2} {desc:<44} {bits:>6} {m:>10,} {port:>11,} ({port / m:5.2f}) {fast:>9,} ({fast / m:5.2f}) "
              f"{fast / base[number]:>12.2f} {int(maps):>9,} {'yes' if p_ok and f_ok else 'NO':>5}"
              + (f" {fast:>9,}" if per_call else ""))


def _sram_net(directory: Path):
    """A stage-heavy CNN (MobileNet-like first layers on a 3x40x40 input): conv 3x3 3->16, depthwise 3x3, pointwise
    16->16, depthwise 3x3 s2, pointwise 16->24, then pooling; its peak SRAM sits in the stage."""
    from conftest import make_model, save
    from mcucompile.api import CompileOptions, PatchOptions, compile_model
    from onnx import helper

    rng = np.random.default_rng(7)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    def conv(x, y, wn, k, group=1, stride=1):
        return [helper.make_node("Conv", [x, wn], [y + "_"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                                 strides=[stride, stride]), helper.make_node("Relu", [y + "_"], [y])]

    nodes = (conv("x", "a", "w0", 3) + conv("a", "b", "w1", 3, group=16) + conv("b", "c", "w2", 1)
             + conv("c", "d", "w3", 3, group=16, stride=2) + conv("d", "e", "w4", 1)
             + [helper.make_node("GlobalAveragePool", ["e"], ["y"])])
    inits = {"w0": w(16, 3, 3, 3), "w1": w(16, 1, 3, 3), "w2": w(16, 16, 1, 1), "w3": w(16, 1, 3, 3),
             "w4": w(24, 16, 1, 1)}
    path = save(make_model(nodes, [1, 3, 40, 40], ["y"], inits), directory, "sram.onnx")
    return compile_model(path, CompileOptions(board="qemu-m4", progress=False, calib_samples=8,
                                              patch=PatchOptions(mode="off")))


def network_rows() -> None:
    """Peak SRAM of a stage-heavy CNN at int8 and with its stage maps at 4 / 2 bits, layer by layer and patched
    (the same split and grid), with the qemu-m4 kernels' scratch."""
    import test_packed_kernels as tpk
    from mcucompile.memory import plan_memory
    from mcucompile.patch import plan_patches
    from mcucompile.patch.memory import plan_memory_patched

    with tempfile.TemporaryDirectory(prefix="mcu_bench_packed_net_") as tmp:
        net = _sram_net(Path(tmp))
    g8, target = net.graph, net.target
    print()
    print("peak SRAM (arena, kernel scratch included) of a 3x40x40 CNN, stage = conv, dw, pw, dw s2, pw (split: the "
          "last pw's int8 output), qemu-m4 kernels:")
    print(f"  {'stage map bits':<28} {'layer by layer':>15} {'patched 2x2':>12} {'patched 4x4':>12}")
    for label, bits in (("int8", None), ("4, 4, 4, 4", {"a": 4, "b": 4, "c": 4, "d": 4}),
                        ("4, 2, 4, 2", {"a": 4, "b": 2, "c": 4, "d": 2}),
                        ("2, 2, 2, 2", {"a": 2, "b": 2, "c": 2, "d": 2})):
        g = g8 if bits is None else tpk.lower_maps(g8, bits)
        sizes = [plan_memory(g, target).arena_size]
        sizes += [plan_memory_patched(g, plan_patches(g, 5, n), board=target).arena_size for n in (2, 4)]
        print(f"  {label:<28} {sizes[0]:>13,} B {sizes[1]:>10,} B {sizes[2]:>10,} B")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", default="qemu-m4")
    p.add_argument("--no-network", action="store_true", help="only the kernel table")
    p.add_argument("--fit", action="store_true",
                   help="fit cost terms on a sweep of small layers: qemu-m55 the MVE packed kernels' (FIT_SHAPES), "
                        "qemu-m4 the scratch-free SIMD32 conv's (FIT_SHAPES_M4)")
    p.add_argument("--stage-only", action="store_true",
                   help="only the tables of QuantMCU's per-patch layers (STAGE_M55 / STAGE_M4)")
    args = p.parse_args()
    board = get_board(args.board)
    if board.mve and args.fit:
        fit_rows(board)
        return 0
    if args.fit:
        fit_lean_rows(board)
        return 0
    if board.mve:
        if not args.stage_only:
            mve_rows(board)
            print()
        mve_rows(board, STAGE_M55, PAIRS_STAGE)
    else:
        if not args.stage_only:
            kernel_rows(board)
            print()
            kernel_rows(board, SMALL, per_call=True)
            print()
        kernel_rows(board, STAGE_M4, per_call=True)
        print()
        lean_rows(board, SHAPES + SMALL + STAGE_M4 if not args.stage_only else STAGE_M4)
    if not args.no_network:
        network_rows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
