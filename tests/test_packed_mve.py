"""The MVE (Helium, Cortex-M55) packed-activation kernels (runtime_c/include/mcunn_packed_mve.h,
compiler/ops/packed_kernels.py): mcu_conv_mve_a{8,4,2}w8_s8 and mcu_dwconv_mve_a{8,4,2}w8_s8.

Kernel by kernel on qemu-m55 (tests/c_kernels/packed_mve_main.c): the random layers of packed_cases.py at every
(input bits, output bits) pair (odd channel counts, channel tails past the 16-block, start offsets, partial regions,
strides, dilations), plus zero points at both ends of each range, worst-case magnitudes for the depthwise int16 sums
(every input at its most negative value, weights -128) and windows past the 31-tap int16 chunk, each output equal
to the simulator's bytes; the scratch each kernel asks for equal to what the compiler declares. A harness given the
wrong weight order fails.

In a compiled network: the small CNN of test_packed_kernels.py with its stage maps at 4 and 2 bits on qemu-m55,
layer by layer and patched: every conv / depthwise layer of the stage takes its MVE packed kernel, the C equals the
simulator byte for byte; and the QuantMCU run-time dispatch of test_quantmcu_chain.py (8-bit and low-bit chains)
on qemu-m55, equal to the simulator. Also single rounding, -O0 and -Og builds against the portable kernels, and the
cost terms.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcucompile.api import build_and_run_board
from mcucompile.arith.bitwidth import pack, qrange, unpack
from mcucompile.ops import fast_layout, mve_layout, packed_kernels
from mcucompile.ops.base import op_def
from mcucompile.ops.kernel import KernelTarget
from mcucompile.patch import plan_patches
from mcucompile.quant.simulate import run_int

sys.path.insert(0, str(Path(__file__).resolve().parent / "c_kernels"))
import harness
import packed_cases

SEED = 55
PER_PAIR = 5  # 5 conv + 5 depthwise random cases per bit pair
MAIN = harness.HERE / "packed_mve_main.c"
FAIL_LINES = ("FAIL", "MCU PACKED")  # what a failing run's message quotes


def _need_arm_tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "qemu-system-arm)")


def _weights(c: packed_cases.PackedCase) -> np.ndarray:
    if c.kind == packed_cases.KIND["conv"]:
        return c.filter.reshape(c.filter_dims)
    return c.filter.reshape(c.filter_dims[1:])


def mve_case(c: packed_cases.PackedCase) -> packed_cases.PackedCase:
    """``c`` with the MVE kernel's weights, folded bias and scratch as its fast ones (a case at 8 bits in and out:
    the int8 MVE kernel's); has_fast where the MVE kernel takes the layer (groups / multiplier 1, <= 64 taps)."""
    wts = _weights(c)
    conv = c.kind == packed_cases.KIND["conv"]
    int8 = c.in_bits == 8 and c.out_bits == 8
    if conv:
        fits = c.groups == 1
        if not fits:
            return dataclasses.replace(c, has_fast=False, fast_filter=c.filter, fast_bias=c.bias, scratch_fast=0)
        _, kh, kw, cin = wts.shape
        fast = mve_layout.conv_weights(wts)
        bias = fast_layout.fold_input_offset(c.bias, wts, c.in_off)
        one = (kh, kw) == (1, 1) and max(c.pad) <= 0
        scratch = ((0 if one else mve_layout.conv_scratch_bytes(kh, kw, cin)) if int8 else
                   packed_kernels.conv_mve_scratch_bytes(kh, kw, cin, wts.shape[0], c.out_bits))
    else:
        fits = c.groups == 1 and mve_layout.dwconv_problem(wts.shape[:2], 1) is None
        if not fits:
            return dataclasses.replace(c, has_fast=False, fast_filter=c.filter, fast_bias=c.bias, scratch_fast=0)
        if int8:
            k = mve_layout.dwconv_constants(wts, c.bias, c.in_off)
            scratch = k.scratch_bytes
        else:
            k = packed_kernels.dwconv_mve_constants(wts, c.bias, c.in_off)
            scratch = packed_kernels.dwconv_mve_scratch_bytes(wts.shape[2], c.in_bits)
        fast, bias = k.weights, k.bias
    return dataclasses.replace(c, has_fast=True, fast_filter=fast, fast_bias=np.asarray(bias, np.int32),
                               scratch_fast=scratch)


def resimulate(c: packed_cases.PackedCase, *, x: np.ndarray | None = None, wts: np.ndarray | None = None,
               in_zp: int | None = None, out_zp: int | None = None, scale_to_fit: bool = False,
               describe: str = "") -> packed_cases.PackedCase:
    """``c`` with other input values / weights / zero points and the simulator's output for them; with
    ``scale_to_fit`` the requantization maps each channel's largest accumulator to half the output range (no
    saturation: an accumulator off by anything shows in the bytes)."""
    kind = "conv" if c.kind == packed_cases.KIND["conv"] else "dwconv"
    cin = c.in_dims[3]
    if x is None:
        x = unpack(c.input.reshape(c.in_dims[:3] + (-1,)), c.in_bits, cin).astype(np.int8)
    if wts is None:
        wts = _weights(c)
    in_off = c.in_off if in_zp is None else -in_zp
    out_off = c.out_off if out_zp is None else out_zp
    args = (c.stride, c.pad, c.dilation, c.groups, c.out_dims[1:3], c.in_bits)
    mult, shift, act = c.mult, c.shift, c.act
    if scale_to_fit:
        acc = packed_cases.simulate(kind, x, wts, c.bias, np.full(len(c.mult), 1 << 30), np.ones(len(c.mult)),
                                    in_off, 0, (-(1 << 31), (1 << 31) - 1), *args, 32)
        peak = np.abs(acc.reshape(-1, acc.shape[-1]).astype(np.int64)).max(axis=0) + 1
        # y = acc * 2^30 * 2^(shift - 31) = acc * 2^(shift - 1): the peak to at most 2^(out_bits - 2)
        shift = np.clip(c.out_bits - 1 - np.ceil(np.log2(peak)).astype(np.int64), -31, 0).astype(np.int32)
        mult = np.full(len(c.mult), 1 << 30, np.int32)
        act = (-128, 127)
    lo, hi = qrange(c.out_bits)
    out_off = int(np.clip(out_off, lo, hi))
    y = packed_cases.simulate(kind, x, wts, c.bias, mult, shift, in_off, out_off, act, *args, c.out_bits)
    filt = wts.reshape(-1).astype(np.int8)
    return dataclasses.replace(c, describe=c.describe + describe, input=pack(x, c.in_bits).reshape(-1), filter=filt,
                               fast_filter=filt, in_off=in_off, out_off=out_off, mult=mult.astype(np.int32),
                               shift=np.asarray(shift, np.int32), act=act, expected=pack(y, c.out_bits).reshape(-1))


def edge_cases(seed: int) -> list[packed_cases.PackedCase]:
    """Per bit pair and kind: zero points at both ends of the input and output ranges; depthwise windows past the
    31-tap chunk (7x7) and worst-case magnitudes (inputs at qmin, weights -128 on most taps)."""
    rng = np.random.default_rng(seed)
    out = []
    for bi, bo in packed_cases.BIT_PAIRS:
        (ilo, ihi), (olo, ohi) = qrange(bi), qrange(bo)
        for kind, hwc, k, cout, pad in (("conv", (7, 6, 5), (3, 3), 7, (1, 1)), ("conv", (5, 5, 19), (1, 1), 9, (0, 0)),
                                        ("dwconv", (7, 6, 21), (3, 3), 21, (1, 1))):
            base = packed_cases.layer_case(kind, bi, bo, hwc, k, cout, pad=pad, seed=int(rng.integers(1 << 30)))
            out.append(resimulate(base, in_zp=ilo, out_zp=ohi, describe=" zp min/max"))
            out.append(resimulate(base, in_zp=ihi, out_zp=olo, describe=" zp max/min"))
        for kernel, ch in (((7, 7), 19), ((3, 3), 33)):
            base = packed_cases.layer_case("dwconv", bi, bo, (9, 8, ch), kernel, ch, pad=(kernel[0] // 2,) * 2,
                                           seed=int(rng.integers(1 << 30)))
            x = np.full(base.in_dims, ilo, np.int8)
            x[rng.random(x.shape) < 0.1] = ihi
            wts = np.where(rng.random(_weights(base).shape) < 0.85, -128,
                           rng.integers(-128, 128, _weights(base).shape)).astype(np.int8)
            out.append(resimulate(base, x=x, wts=wts, in_zp=ihi, scale_to_fit=True, describe=" worst magnitudes"))
            out.append(resimulate(base, in_zp=ilo, scale_to_fit=True, describe=" fit"))
    return out


def direct_cases(seed: int) -> list[packed_cases.PackedCase]:
    """Per bit pair, the loops the small per-patch regions run: the direct pointwise path (1x1 on C_in <= 16: an odd
    pixel count, C_in 1 / 7 / 16, C_out tails off 4 and 16, a stride and zero-point taps from padding), the windowed
    direct path without scratch (C_in 16 / 32, 3x3 with padding and stride, 1x1 on 32 channels, C_out tails; the
    case's scratch 0) and the depthwise half block of 3x3 layers with C % 16 = 8 (8 and 24 channels, an odd pixel
    count, stride 2, padding; shifts <= 0)."""
    rng = np.random.default_rng(seed)
    out = []
    for bi, bo in packed_cases.BIT_PAIRS:
        def layer(kind, hwc, k, cout, stride=(1, 1), pad=(0, 0)):
            return packed_cases.layer_case(kind, bi, bo, hwc, k, cout, stride, pad, seed=int(rng.integers(1 << 30)))

        for hwc, cout, stride, pad in (((3, 3, 8), 16, (1, 1), (0, 0)), ((3, 5, 7), 9, (1, 1), (0, 0)),
                                       ((5, 3, 16), 18, (1, 1), (0, 0)), ((5, 4, 1), 5, (2, 2), (1, 1)),
                                       ((4, 4, 16), 36, (1, 1), (1, 1)),
                                       # C_out a multiple of 16 (pm_pw_fast): C_in 8 over two blocks, C_in 16 and 5
                                       # with padding and a stride (zero-point pixels), an odd pixel count
                                       ((5, 5, 8), 32, (1, 1), (0, 0)), ((3, 4, 16), 16, (1, 1), (0, 0)),
                                       ((5, 4, 5), 16, (2, 2), (1, 1))):
            out.append(mve_case(layer("conv", hwc, (1, 1), cout, stride, pad)))
        for hwc, k, cout, stride, pad in (((5, 5, 16), (3, 3), 7, (1, 1), (1, 1)), ((5, 6, 32), (3, 3), 20, (2, 2), (1, 1)),
                                          ((3, 3, 16), (3, 3), 16, (1, 1), (0, 0)), ((3, 4, 32), (1, 1), 6, (1, 1), (0, 0)),
                                          ((4, 4, 48), (2, 2), 17, (1, 1), (0, 0))):
            out.append(dataclasses.replace(mve_case(layer("conv", hwc, k, cout, stride, pad)), scratch_fast=0))
        for hwc, stride, pad in (((5, 7, 8), (1, 1), (0, 0)), ((7, 6, 24), (2, 2), (1, 1)), ((4, 4, 8), (1, 1), (1, 1)),
                                 # 8 channels (pm_dw8_run): VWW's 9x9 region (odd rows of 7), a stride 2 with padding
                                 # (border pixels paired across rows), a 1x1 output
                                 ((9, 9, 8), (1, 1), (0, 0)), ((8, 9, 8), (2, 2), (1, 1)), ((3, 3, 8), (1, 1), (0, 0))):
            out.append(mve_case(layer("dwconv", hwc, (3, 3), hwc[2], stride, pad)))
    return out


@pytest.fixture(scope="module")
def cases():
    return [mve_case(c) for c in packed_cases.random_cases(SEED, PER_PAIR) + edge_cases(SEED)]


@pytest.fixture(scope="module")
def small_cases():
    return direct_cases(SEED)


def _run_m55(cases, tmp_path, flags: tuple[str, ...] = (), opt: str = "-O2"):
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board("qemu-m55")
    src = packed_cases.write_cases(cases, SEED, tmp_path / "cases.c")
    elf = harness.build_firmware(board, [src, MAIN], tmp_path / "fw", extra_flags=flags, opt=opt)
    return elf, run_qemu(elf, board, timeout=300)


def test_cases_cover_what_the_mve_kernels_branch_on(cases):
    """Channel counts off the values per byte and past the 16-block, tails, windows past the int16 chunk, the MVE
    kernel on most cases (not on grouped ones), every bit pair."""
    assert {(c.in_bits, c.out_bits) for c in cases} == set(packed_cases.BIT_PAIRS)
    fast = [c for c in cases if c.has_fast]
    assert len(fast) > 0.7 * len(cases) and any(not c.has_fast for c in cases)
    assert any(c.in_dims[3] % 2 for c in fast) and any(c.in_dims[3] % 4 for c in fast)
    assert any(c.out_dims[3] > 16 and c.out_dims[3] % 16 for c in fast if c.kind == 1)
    assert any(c.filter_dims[1] * c.filter_dims[2] > 31 for c in fast if c.kind == 1)
    assert any(min(c.pad) < 0 for c in fast) and any(max(c.pad) > 0 for c in fast)


def test_small_cases_cover_the_direct_paths(small_cases):
    """direct_cases(): the direct pointwise path with its tails, the scratch-free windowed path at every bit pair,
    the depthwise half block at every input width."""
    fast = [c for c in small_cases if c.has_fast]
    assert len(fast) == len(small_cases)
    conv = [c for c in fast if c.kind == 0 and (c.in_bits, c.out_bits) != (8, 8)]
    pointwise = [c for c in conv if packed_kernels.conv_mve_direct(*c.filter_dims[1:])]
    assert pointwise and all(c.scratch_fast == 0 for c in pointwise)
    assert any(np.prod(c.out_dims[1:3]) % 2 for c in pointwise) and any(c.out_dims[3] % 4 for c in pointwise)
    assert any(max(c.pad) > 0 for c in pointwise) and any(c.in_dims[3] == 16 for c in pointwise)
    lean = [c for c in conv if c.scratch_fast == 0 and not packed_kernels.conv_mve_direct(*c.filter_dims[1:])]
    assert {(c.in_bits, c.out_bits) for c in lean} == set(packed_cases.BIT_PAIRS) - {(8, 8)}
    assert any(max(c.pad) > 0 for c in lean) and any(c.out_dims[3] % 4 for c in lean)
    assert all(packed_kernels.conv_mve_scratch_free(*c.filter_dims[1:]) for c in lean)
    half = [c for c in fast if c.kind == 1 and c.filter_dims[1:3] == (3, 3) and c.in_dims[3] % 16 == 8]
    assert {c.in_bits for c in half} == {8, 4, 2} and any(np.prod(c.out_dims[1:3]) % 2 for c in half)
    # the 8-channel 3x3 runs and the pointwise blocks of 16 packed from registers, at every bit pair
    dw8 = [c for c in half if c.in_dims[3] == 8 and np.all(c.shift <= 0)]
    assert {(c.in_bits, c.out_bits) for c in dw8} == set(packed_cases.BIT_PAIRS) - {(8, 8)}
    assert any(c.out_dims[2] % 2 and min(c.pad) == 0 for c in dw8) and any(max(c.pad) > 0 for c in dw8)
    pw16 = [c for c in pointwise if c.out_dims[3] % 16 == 0 and np.all(c.shift <= 0)]
    assert {(c.in_bits, c.out_bits) for c in pw16} == set(packed_cases.BIT_PAIRS) - {(8, 8)}
    assert {c.in_dims[3] for c in pw16} >= {8, 16, 5} and any(c.out_dims[3] > 16 for c in pw16)


def test_mve_kernels_equal_the_simulator_on_qemu_m55(cases, tmp_path):
    _need_arm_tools()
    elf, run = _run_m55(cases, tmp_path)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-marmv8.1-m.main", str(elf)], capture_output=True,
                         text=True, check=False).stdout
    # objdump spells VMLADAVA.S8 by its alias vmlava.s8
    assert all(op in dis for op in ("vmlava.s8", "vmullb.s8", "vmullt.s8", "vsli.16", "vsli.32", "vldrbt.u16", "vldrbt.u32"))
    assert run.status == 0, harness.failures(run.log, FAIL_LINES)
    assert f"MCU PACKED MVE CASES {len(cases)} failed 0" in run.log, harness.failures(run.log, FAIL_LINES)
    ran = re.findall(r"MCU K \d+ mve \d+ 1", run.log)
    assert len(ran) == sum(c.has_fast for c in cases)


def test_direct_paths_equal_the_simulator_on_qemu_m55(small_cases, tmp_path):
    """The direct pointwise path, the windowed direct path given no scratch and the depthwise half block: every
    output byte equal to the simulator's (and the kernels accept the zero scratch)."""
    _need_arm_tools()
    _, run = _run_m55(small_cases, tmp_path)
    assert run.status == 0, harness.failures(run.log, FAIL_LINES)
    assert f"MCU PACKED MVE CASES {len(small_cases)} failed 0" in run.log, harness.failures(run.log, FAIL_LINES)
    assert len(re.findall(r"MCU K \d+ mve \d+ 1", run.log)) == len(small_cases)


@pytest.mark.parametrize("single", [1, 0])
def test_direct_paths_equal_portable_with_single_rounding(small_cases, single, tmp_path):
    """The same cases with MCU_SINGLE_ROUNDING 1 (the scalar output stage of a zero shift) and 0: the MVE bytes
    equal the portable kernels' of the same build."""
    _need_arm_tools()
    _, run = _run_m55(small_cases, tmp_path, (f"-DMCU_SINGLE_ROUNDING={single}", "-DPM_AGAINST_PORTABLE"))
    assert run.status == 0, harness.failures(run.log, FAIL_LINES)
    assert f"MCU PACKED MVE CASES {len(small_cases)} failed 0" in run.log, harness.failures(run.log, FAIL_LINES)


@pytest.mark.parametrize("single,opt", [(1, "-O2"), (0, "-O0"), (1, "-Og")])
def test_mve_kernels_equal_portable_in_other_builds(cases, single, opt, tmp_path):
    """Single rounding (MCU_SINGLE_ROUNDING 1: a shift of 0 takes the scalar output stage) and unoptimised / debug
    builds: the MVE kernels' bytes equal the portable kernels' of the same build."""
    _need_arm_tools()
    some = cases[::3] if opt != "-O0" else cases[::8]  # -O0 code is large: fewer cases fit the 512 KB ITCM
    _, run = _run_m55(some, tmp_path, (f"-DMCU_SINGLE_ROUNDING={single}", "-DPM_AGAINST_PORTABLE"), opt)
    assert run.status == 0, harness.failures(run.log, FAIL_LINES)
    assert f"MCU PACKED MVE CASES {len(some)} failed 0" in run.log, harness.failures(run.log, FAIL_LINES)


def test_the_mve_harness_catches_wrong_bytes(cases, tmp_path):
    """The MVE conv given the model's weight order and a depthwise case whose expected byte is off by one bit are
    both reported."""
    _need_arm_tools()
    # (with K < 16 the "quads" order is the model's: K >= 16 and a quad of channels)
    conv = next(i for i, c in enumerate(cases) if c.has_fast and c.kind == 0 and c.filter_dims[0] >= 4
                and np.prod(c.filter_dims[1:]) > 16 and c.in_bits != 8)
    dw = next(i for i, c in enumerate(cases) if c.has_fast and c.kind == 1 and c.in_bits == 2)
    broken = [cases[conv], cases[dw]]
    broken[0] = dataclasses.replace(broken[0], fast_filter=broken[0].filter)
    wrong = broken[1].expected.copy()
    wrong[-1] ^= 1
    broken[1] = dataclasses.replace(broken[1], expected=wrong)
    _, run = _run_m55(broken, tmp_path)
    assert "FAIL case 0 " in run.log and "MVE bytes differ" in run.log
    assert "FAIL case 1 " in run.log and "portable bytes differ" in run.log
    assert "MCU PACKED MVE CASES 2 failed 2" in run.log


# --- a compiled network with 4- and 2-bit stage maps on qemu-m55 ---------------------------------------------

@pytest.fixture(scope="module")
def m55_net(tmp_path_factory):
    import test_packed_kernels as tpk

    return tpk._net(tmp_path_factory, "qemu-m55")


def test_mve_kernel_choice(m55_net):
    """qemu-m55: every packed conv / depthwise layer of the stage takes its MVE kernel (fast, no reason, scratch
    declared); --kernels portable and a grouped conv fall back with the reason."""
    import test_packed_kernels as tpk

    g = tpk.lower_maps(m55_net.graph, tpk.MAP_BITS)
    for n in g.nodes[:tpk.STAGE]:
        call = op_def(n).kernel(n, g, m55_net.target)
        assert call.kernel.name.endswith("packed_mve") and call.kernel.fast and call.reason is None, (n.name, call)
        assert call.context["function"].startswith(("mcu_conv_mve_a", "mcu_dwconv_mve_a"))
        assert call.kernel.packed
        if call.kernel is packed_kernels.CONV_MVE:
            w = g.tensors[n.inputs[1]].shape
            bits = packed_kernels.packed_bits(g, n)
            assert call.scratch_bytes == packed_kernels.conv_mve_scratch_bytes(*w[1:], w[0], bits[1])
        else:
            assert call.scratch_bytes > 0
    dw = g.nodes[1]
    portable = op_def(dw).kernel(dw, g, KernelTarget(m55_net.board, "portable"))
    assert portable.kernel.name == "depthwise_conv_packed" and "--kernels portable" in portable.reason


@pytest.mark.parametrize("patched", [False, True], ids=["layer_by_layer", "patched"])
def test_packed_network_on_qemu_m55_is_bit_exact(m55_net, patched, tmp_path):
    _need_arm_tools()
    import test_packed_kernels as tpk

    g = tpk.lower_maps(m55_net.graph, tpk.MAP_BITS)
    patch = plan_patches(g, tpk.STAGE, 3) if patched else None
    c = tpk._rebuild(m55_net, g, patch)
    calls = tpk._calls(c)
    for fn in ("mcu_conv_mve_a8w8_s8", "mcu_dwconv_mve_a4w8_s8", "mcu_conv_mve_a2w8_s8", "mcu_dwconv_mve_a4w8_s8",
               "mcu_conv_mve_a4w8_s8"):
        assert fn in calls, calls
    assert "#include \"mcunn_packed_mve.h\"" in c.sources.files["src/model.c"]
    x_q, outs, _, _ = build_and_run_board(c, c.calib[:2], tmp_path)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    assert np.array_equal(outs[0], np.stack(ref))


def test_the_cost_model_prices_the_mve_packed_kernels(m55_net):
    """On qemu-m55 every packed stage layer's MVE kernel states its cost terms: positive per layer, the lowered net's
    estimate close to the int8 net's (the same matrix core; unpacking and packing add a little), and below what the
    SIMD32 packed kernels cost on the same core."""
    import test_packed_kernels as tpk
    from mcucompile.patch.cost import estimate_instructions, kernel_of

    g8 = m55_net.graph
    g = tpk.lower_maps(g8, tpk.MAP_BITS)
    kernels = tuple(kernel_of(n, g, m55_net.target) for n in g.nodes)
    assert all(k.name.endswith("packed_mve") for k in kernels[:tpk.STAGE])
    est = estimate_instructions(g, None, kernels)
    est8 = estimate_instructions(g8, None, tuple(kernel_of(n, g8, m55_net.target) for n in g8.nodes))
    no_mve = dataclasses.replace(m55_net.board, mve=False)
    est_dsp = estimate_instructions(g, None, tuple(kernel_of(n, g, KernelTarget(no_mve)) for n in g.nodes))
    assert all(v > 0 for v in est.layers[:tpk.STAGE])
    assert 0.8 * est8.total < est.total < 1.6 * est8.total
    assert sum(est.layers[:tpk.STAGE]) < sum(est_dsp.layers[:tpk.STAGE])


def test_quantmcu_low_bit_chain_on_qemu_m55(tmp_path_factory, tmp_path):
    """The QuantMCU run-time dispatch of tests/test_quantmcu_chain.py (an 8-bit outlier chain and a low-bit chain
    with 4- and 2-bit maps, the check at the first map) on qemu-m55: the low-bit chain's layers on their MVE packed
    kernels, the output equal to the simulator's on inputs where both chains are taken."""
    _need_arm_tools()
    import test_quantmcu_chain as tqc
    from mcucompile.schedule.safety import check_plan_memory

    c, *_ = tqc._setup(tqc._net(tmp_path_factory, "qemu-m55"))
    check_plan_memory(c.graph, c.plan, schedule=c.schedule)
    text = c.sources.files["src/model.c"]
    assert re.search(r"mcu_(conv|dwconv)_mve_a[42]w8_s8\(", text) and "mcu_conv_dsp_a" not in text
    x_q, outs, _, _ = build_and_run_board(c, c.calib[:3], tmp_path)
    sim, taken = tqc._simulate(c, x_q)
    assert np.array_equal(outs[0], sim)
    assert 0 < (taken == 0).sum() < taken.size, taken
