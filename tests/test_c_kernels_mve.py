"""The MVE (Helium) kernels of runtime_c/include/mcunn_mve.h are bit-exact with the portable kernels.

Random layers (tests/c_kernels/mve_cases.py on top of harness.py: odd sizes, strides 1/2, dilation, paddings
and start offsets, zero points, clamps, channel counts on both sides of 16, 1x1 convolutions with any C_in,
batches; 30% of layers with shifts over the whole range) run through the portable kernel (the reference, itself
bit-exact with the simulator) and the MVE kernel on qemu-m55 (mps3-an547), with the MVE kernels' weights and
folded bias from ``mcucompile.ops.mve_layout`` as the compiler emits them, in both requantization modes of
mcunn_config.h; the same firmware checks the vector requantization against mcu_requantize() on 20 000 x 4
random and edge operands. Also: the layouts in Python against their definitions, the header's calling
convention, that the harness fails on a wrong layout, and that the sources compile to nothing (warning-free)
where there is no MVE.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "c_kernels"))

import harness
import mve_cases
from mcucompile.ops import mve_layout

SEED = 11
PER_KIND = 40  # 200 layers per build
MVE_SOURCES = sorted((harness.RUNTIME / "src").glob("*_mve.c"))


def _need_arm_tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "qemu-system-arm)")


def _summary(text: str) -> str:
    return "\n".join([ln for ln in text.splitlines() if ln.startswith("MCU ")][-40:])


def _run_m55(cases, seed: int, tmp_path: Path, single: int = 0, opt: str = "-O2"):
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board("qemu-m55")
    src = harness.write_cases(cases, seed, tmp_path / "cases.c")
    elf = harness.build_firmware(board, [src, mve_cases.MAIN], tmp_path / "fw",
                                 extra_flags=(f"-DMCU_SINGLE_ROUNDING={single}",), opt=opt)
    return elf, run_qemu(elf, board, timeout=120)


@pytest.mark.parametrize("single,opt", [(0, "-O2"), (1, "-O2"), (0, "-O0"), (1, "-Og")])
def test_mve_kernels_equal_portable_on_qemu_m55(single, opt, tmp_path):
    """Double (TFLite's) and single rounding at -O2; -O0 (the C loops: no assembly) and -Og (a debug build with
    the assembly blocks, which must still find their 12 core registers)."""
    _need_arm_tools()
    cases = mve_cases.random_cases(SEED + single, PER_KIND if opt == "-O2" else 12, "single" if single else "double")
    elf, run = _run_m55(cases, SEED + single, tmp_path, single, opt)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-marmv8.1-m.main", str(elf)],
                         capture_output=True, text=True, check=False).stdout
    # objdump spells VMLADAVA.S8 by its alias vmlava.s8
    assert re.search(r"\bvml(ad)?ava\.s8", dis) and "vmullb.s16" in dis, "no MVE code in the firmware"
    assert ("vqdmulh.s32" if single else "vqrdmulh.s32") in dis, "the output stage is not vectorised"
    assert run.status == 0, _summary(run.log)
    assert "MCU REQUANT 20000 bad 0" in run.log and "MCU REFUSALS bad 0" in run.log, _summary(run.log)
    assert f"MCU CASES {len(cases)} failed 0" in run.log, _summary(run.log)


def test_the_mve_harness_catches_a_wrong_layout(tmp_path):
    """The model's (not re-laid) weights given to the MVE kernels must fail: the comparison is not vacuous."""
    _need_arm_tools()
    cases = [replace(c, fast_filter=c.filter.reshape(-1)) for c in mve_cases.random_cases(SEED + 5, 8)
             if c.filter.size >= 64 and c.filter_dims[-1] >= 16]
    assert len(cases) >= 3
    _, run = _run_m55(cases, SEED + 5, tmp_path)
    assert "FAIL bytes" in run.log and f"MCU CASES {len(cases)} failed 0" not in run.log, _summary(run.log)


@pytest.mark.parametrize("target", ["host", "cortex-m4", "cortex-m0plus"])
def test_mve_sources_compile_to_nothing_without_mve(target, tmp_path):
    """The generated library compiles every runtime .c for every board: without MVE these are empty and clean."""
    if target == "host":
        from mcucompile.targets.host import CFLAGS, find_compiler

        cmd = [find_compiler(), *CFLAGS, "-Wpedantic"]
    else:
        if shutil.which("arm-none-eabi-gcc") is None:
            pytest.skip("arm-none-eabi-gcc not installed")
        cmd = ["arm-none-eabi-gcc", f"-mcpu={target}", "-mthumb", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
    for src in MVE_SOURCES:
        obj = tmp_path / (src.stem + ".o")
        res = subprocess.run([*cmd, "-I", str(harness.RUNTIME / "include"), "-c", str(src), "-o", str(obj)],
                             capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr
        syms = subprocess.run(["nm", str(obj)] if target == "host" else ["arm-none-eabi-nm", str(obj)],
                              capture_output=True, text=True, check=False).stdout
        assert "mcu_" not in syms, syms


def test_mve_header_follows_the_convention():
    from test_c_api import SOURCES, header_problems

    header = (harness.RUNTIME / "include" / "mcunn_mve.h").read_text()
    assert header_problems(header, [s.read_text() for s in SOURCES]) == []


def test_quads_by_definition():
    rng = np.random.default_rng(0)
    for cout, k in [(5, 7), (8, 16), (3, 40), (1, 9), (9, 33), (4, 16), (12, 27)]:
        w = rng.integers(-128, 128, size=(cout, k)).astype(np.int8)
        out = mve_layout.quads(w)
        assert out.dtype == np.int8 and out.size == w.size
        pos, full, nb, t = 0, cout // 4 * 4, k // 16, k % 16
        for g in range(0, full, 4):
            for b in range(nb):
                for c in range(g, g + 4):
                    assert list(out[pos:pos + 16]) == list(w[c, 16 * b:16 * b + 16])
                    pos += 16
            for c in range(g, g + 4):
                assert list(out[pos:pos + t]) == list(w[c, 16 * nb:])
                pos += t
        for c in range(full, cout):
            assert list(out[pos:pos + k]) == list(w[c])
            pos += k
        assert pos == out.size


def test_dwconv_layout_and_bias_by_definition():
    rng = np.random.default_rng(1)
    for kh, kw, c in [(3, 3, 16), (3, 3, 7), (2, 2, 33), (1, 1, 5), (5, 5, 40)]:
        w = rng.integers(-128, 128, size=(kh, kw, c)).astype(np.int8)
        out = mve_layout.dwconv_weights(w)
        flat, taps, pos = w.reshape(-1, c), kh * kw, 0
        for b in range(0, c, 16):
            r = min(16, c - b)
            for t in range(taps):
                assert list(out[pos:pos + r]) == list(flat[t, b:b + r])
                pos += r
        assert pos == out.size == w.size
        bias = rng.integers(-1000, 1000, size=c).astype(np.int32)
        folded = mve_layout.dwconv_bias(bias, w, -7)
        assert folded.dtype == np.int32 and folded.size == mve_layout.k16(c)
        want = bias.astype(np.int64) - 7 * flat.astype(np.int64).sum(0)
        for blk in range(0, c, 16):
            order = [blk + h * 8 + 2 * j + eo for h in (0, 1) for eo in (0, 1) for j in range(4)]
            for i, ch in enumerate(order):
                assert folded[blk + i] == (want[ch] if ch < c else 0)
    with pytest.raises(ValueError, match="at most 64 taps"):
        mve_layout.dwconv_weights(np.zeros((9, 9, 4), np.int8))


def test_constants_fold_the_input_offset():
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(6, 3, 3, 5)).astype(np.int8)
    b = rng.integers(-1000, 1000, size=6).astype(np.int32)
    c = mve_layout.conv_constants(w, b, 7)
    assert c.kernel == "mcu_conv_mve_s8" and c.scratch_bytes == 2 * 45 and c.weights.size == w.size
    assert list(c.bias) == list(b + 7 * w.reshape(6, -1).astype(np.int64).sum(1))
    c1 = mve_layout.conv_1x1_constants(w[:, :1, :1, :], None, -3)
    assert c1.scratch_bytes == 0 and list(c1.bias) == list(-3 * w[:, 0, 0, :].astype(np.int64).sum(1))
    with pytest.raises(ValueError, match="1x1"):
        mve_layout.conv_1x1_constants(w, None, 0)
    wf = rng.integers(-128, 128, size=(5, 10)).astype(np.int8)
    cf = mve_layout.fully_connected_constants(wf, None, 1)
    assert cf.scratch_bytes == 0 and list(cf.bias) == list(wf.astype(np.int64).sum(1))
    assert mve_layout.dwconv_constants(np.zeros((3, 3, 7), np.int8), None, 0).scratch_bytes == 7


def test_problems_name_the_reason():
    assert mve_layout.conv_1x1_problem((1, 1), 1, (1, 1), (0, 0), (24, 24), (24, 24)) is None
    assert mve_layout.conv_1x1_problem((1, 1), 1, (2, 2), (-1, -1), (9, 9), (4, 4)) is None  # start offset
    assert "outside" in mve_layout.conv_1x1_problem((1, 1), 1, (1, 1), (1, 1), (24, 24), (26, 26))
    assert "not 1x1" in mve_layout.conv_1x1_problem((3, 3), 1, (1, 1), (0, 0), (8, 8), (6, 6))
    assert mve_layout.conv_problem(1) is None and "groups" in mve_layout.conv_problem(2)
    assert mve_layout.dwconv_problem((3, 3), 1) is None
    assert "multiplier" in mve_layout.dwconv_problem((3, 3), 2)
    assert "taps" in mve_layout.dwconv_problem((9, 9), 1)
    assert mve_layout.fully_connected_problem(0) is None and "offset" in mve_layout.fully_connected_problem(3)


@pytest.mark.parametrize("single", [0, 1])
def test_mve_add_equals_portable_add_on_qemu_m55(single, tmp_path):
    _need_arm_tools()
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board("qemu-m55")
    elf = harness.build_firmware(board, [harness.HERE / "add_main.c"], tmp_path / "fw",
                                 extra_flags=(f"-DMCU_SINGLE_ROUNDING={single}", "-DADD_CASES=3000",
                                              "-DADD_FAST=mcu_add_mve_s8"))
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-marmv8.1-m.main", str(elf)],
                         capture_output=True, text=True, check=False).stdout
    assert ("vqdmulh.s32" if single else "vqrdmulh.s32") in dis, "the add is not vectorised"
    # mcu_add_mve_s8 against mcu_add_s8 (tests/c_kernels/add_main.c: random sizes with every tail, zero points,
    # clamps, shifts on both sides of 0, outputs aliasing an input, a broadcast refused)
    run = run_qemu(elf, board, timeout=120)
    assert run.status == 0, _summary(run.log)
    assert "MCU ADD 3001 failed 0" in run.log, _summary(run.log)
