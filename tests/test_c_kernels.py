"""The SIMD32 (DSP) kernels of runtime_c/include/mcunn_dsp.h are bit-exact with the portable kernels.

Random layers (tests/c_kernels/harness.py: odd sizes, strides 1/2, dilation, paddings and start offsets,
zero points, clamps, channel counts that are and are not multiples of 2 and 4, batches) run through the
portable kernel (the reference, itself bit-exact with the simulator) and the fast kernel on the same target,
with the fast kernel's weights and bias from ``mcucompile.ops.fast_layout`` as the compiler emits them:

- on the host under AddressSanitizer + UBSan, where the ACLE intrinsics are the portable emulation of
  mcunn_dsp_support.h (same kernel source);
- on qemu-m4 (mps2-an386), qemu-m7 (mps2-an500), qemu-m55 (mps3-an547) and qemu-m33 (mps2-an505), where they are the real
  SXTB16 / SMLAD instructions (each needs arm-none-eabi-gcc and qemu-system-arm; skipped, with the reason,
  when one is missing).

Also: the layouts and the bias fold in Python against their definitions, the header's calling convention
(the checker of tests/test_c_api.py), and that the harness fails on a wrong layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "c_kernels"))

import harness
from mcucompile.ops import fast_layout
from mcucompile.targets.host import SANITIZE_ENV

SEED = 11
PER_KIND = 40  # 160 layers per target
N_CASES = 4 * PER_KIND + len(harness.high_shift_cases(SEED))  # and 3 with shifts in [-1, 2]
MAIN = harness.HERE / "kernel_main.c"


@pytest.fixture(scope="module")
def cases_c(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("c_kernels")
    return harness.write_cases(harness.random_cases(SEED, PER_KIND) + harness.high_shift_cases(SEED), SEED,
                               d / "cases.c")


def _summary(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("MCU ")]
    return "\n".join(lines[-40:])


@pytest.mark.parametrize("single", [0, 1])
def test_fast_kernels_equal_portable_on_host_under_sanitizers(single, cases_c, tmp_path):
    """Both requantization modes of mcunn_config.h: TFLite's double rounding and single rounding."""
    exe = harness.build_host([cases_c, MAIN], tmp_path / "kt", sanitize=True,
                             defines=(f"-DMCU_SINGLE_ROUNDING={single}",))
    run = subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, **SANITIZE_ENV}, timeout=120,
                         check=False)
    assert f"MCU CASES {N_CASES} failed 0" in run.stdout, _summary(run.stdout) + run.stderr[-3000:]
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr[-3000:]


@pytest.mark.parametrize("board_name,opt,single", [("qemu-m4", "-O2", 0), ("qemu-m7", "-O2", 0),
                                                    ("qemu-m55", "-O2", 0), ("qemu-m33", "-O2", 0),
                                                    ("qemu-m4", "-O0", 0), ("qemu-m4", "-O2", 1)])
def test_fast_kernels_equal_portable_on_emulated_core(board_name, opt, single, cases_c, tmp_path):
    """-O2: the inline-assembly loops; -O0: the C loops with the same intrinsics (what a debug build runs);
    single: mcunn_config.h's single-rounding mode."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "qemu-system-arm)")
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board(board_name)
    elf = harness.build_firmware(board, [cases_c, MAIN], tmp_path / board_name,
                                 extra_flags=(f"-DMCU_SINGLE_ROUNDING={single}",), opt=opt)
    if board.dsp:
        # the real instructions ran, not the emulation
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                             check=False).stdout
        assert "smlad" in dis and "sxtb16" in dis
    run = run_qemu(elf, board, timeout=120)
    assert run.status == 0, _summary(run.log)
    assert f"MCU CASES {N_CASES} failed 0" in run.log


ADD_MAIN = harness.HERE / "add_main.c"


@pytest.mark.parametrize("single", [0, 1])
def test_dsp_add_equals_portable_add_on_host_under_sanitizers(single, tmp_path):
    """mcu_add_dsp_s8 against mcu_add_s8 (add_main.c: 3000 random sizes with every tail, zero points, clamps,
    shifts on both sides of 0, outputs aliasing an input, a broadcast refused), both roundings."""
    exe = harness.build_host([ADD_MAIN], tmp_path / "add", sanitize=True,
                             defines=(f"-DMCU_SINGLE_ROUNDING={single}", "-DADD_FAST=mcu_add_dsp_s8"))
    run = subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, **SANITIZE_ENV}, timeout=120,
                         check=False)
    assert "MCU ADD 3001 failed 0" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr[-3000:]


@pytest.mark.parametrize("board_name,single", [("qemu-m4", 0), ("qemu-m4", 1), ("qemu-m7", 0), ("qemu-m55", 0)])
def test_dsp_add_equals_portable_add_on_emulated_core(board_name, single, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "qemu-system-arm)")
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board(board_name)
    elf = harness.build_firmware(board, [ADD_MAIN], tmp_path / board_name,
                                 extra_flags=(f"-DMCU_SINGLE_ROUNDING={single}", "-DADD_FAST=mcu_add_dsp_s8"))
    run = run_qemu(elf, board, timeout=120)
    assert run.status == 0 and "MCU ADD 3001 failed 0" in run.log, _summary(run.log) + run.log[-1500:]


@pytest.mark.parametrize("single", [0, 1])
def test_requantization_equals_the_portable_one(single, tmp_path):
    """The one-SMLAL requantization of the DSP kernels equals mcu_requantize() on 4 M random and edge cases
    (every shift in [-31, 30], multipliers at both ends of [2^30, 2^31)), in both rounding modes, UBSan
    watching."""
    from mcucompile.targets.host import CFLAGS, find_compiler

    exe = tmp_path / "requant_check"
    cmd = [find_compiler(), *CFLAGS, "-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all",
           f"-DMCU_SINGLE_ROUNDING={single}",
           "-I", str(harness.RUNTIME / "include"), str(harness.HERE / "requant_check.c"), "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "bad=0", run.stdout + run.stderr


def test_the_harness_catches_a_wrong_layout(tmp_path):
    """The original (not re-laid) weights given to the fast kernels must fail: the comparison is not vacuous."""
    from dataclasses import replace

    cases = [replace(c, fast_filter=c.filter.reshape(-1)) for c in harness.random_cases(SEED + 1, 6)
             if c.filter.size >= 16 and c.filter_dims[-1] >= 4]
    src = harness.write_cases(cases, SEED + 1, tmp_path / "cases.c")
    exe = harness.build_host([src, MAIN], tmp_path / "kt", sanitize=False)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "FAIL bytes" in run.stdout, run.stdout


def test_interleave_channels_by_definition():
    rng = np.random.default_rng(0)
    for cout, k, group, swap in [(5, 7, 2, True), (8, 16, 4, True), (3, 4, 2, False), (1, 9, 4, True),
                                 (9, 12, 4, False)]:
        w = rng.integers(-128, 128, size=(cout, k)).astype(np.int8)
        out = fast_layout.interleave_channels(w, group, swap)
        kp = fast_layout.k4(k)
        assert out.dtype == np.int8 and out.size == cout * kp
        order = [0, 2, 1, 3] if swap else [0, 1, 2, 3]
        pos = 0
        full = cout // group * group
        for g0 in range(0, full, group):
            for b in range(kp // 4):
                for c in range(g0, g0 + group):
                    for e in order:
                        kk = 4 * b + e
                        assert out[pos] == (w[c, kk] if kk < k else 0)
                        pos += 1
        for c in range(full, cout):
            for b in range(kp // 4):
                for e in order:
                    kk = 4 * b + e
                    assert out[pos] == (w[c, kk] if kk < k else 0)
                    pos += 1
        assert pos == out.size


def test_dwconv_weights_by_definition():
    rng = np.random.default_rng(1)
    for kh, kw, c in [(3, 3, 8), (3, 3, 7), (2, 2, 4), (1, 1, 5), (5, 5, 13)]:
        w = rng.integers(-128, 128, size=(kh, kw, c)).astype(np.int8)
        out = fast_layout.dwconv_weights(w)
        assert out.size == w.size
        flat, taps, pos = w.reshape(-1, c), kh * kw, 0
        for g in range(0, c // 4 * 4, 4):
            for t in range(0, taps - 1, 2):
                for pair in ((g, g + 1), (g + 2, g + 3)):
                    assert list(out[pos:pos + 4]) == [flat[t, pair[0]], flat[t, pair[1]], flat[t + 1, pair[0]],
                                                      flat[t + 1, pair[1]]]
                    pos += 4
            if taps % 2:
                assert list(out[pos:pos + 4]) == list(flat[taps - 1, g:g + 4])
                pos += 4
        for ch in range(c // 4 * 4, c):
            assert list(out[pos:pos + taps]) == list(flat[:, ch])
            pos += taps
        assert pos == out.size
    with pytest.raises(ValueError, match="at most 64 taps"):
        fast_layout.dwconv_weights(np.zeros((9, 9, 4), np.int8))


def test_fold_input_offset_wraps_like_int32():
    w = np.full((2, 1, 1, 4), 127, np.int8)
    bias = np.array([5, (1 << 31) - 10], np.int64).astype(np.int32)
    out = fast_layout.fold_input_offset(bias, w, 128)
    assert out.dtype == np.int32
    assert out[0] == 5 + 128 * 508
    assert int(out[1]) == ((1 << 31) - 10 + 128 * 508) - (1 << 32)  # wrapped, as the kernel's adds
    assert list(fast_layout.fold_input_offset(None, w, -3)) == [-3 * 508, -3 * 508]


def test_conv_1x1_layout_refuses_what_the_kernel_refuses():
    with pytest.raises(ValueError, match="C_in % 4"):
        fast_layout.conv_1x1_weights(np.zeros((4, 1, 1, 6), np.int8))
    with pytest.raises(ValueError, match="1x1"):
        fast_layout.conv_1x1_weights(np.zeros((4, 3, 3, 8), np.int8))


def test_dsp_header_follows_the_convention():
    from test_c_api import SOURCES, header_problems

    header = (harness.RUNTIME / "include" / "mcunn_dsp.h").read_text()  # mcu_add_dsp_s8 included
    assert header_problems(header, [s.read_text() for s in SOURCES]) == []


def test_constants_per_variant():
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(6, 3, 3, 5)).astype(np.int8)
    b = rng.integers(-1000, 1000, size=6).astype(np.int32)
    c = fast_layout.conv_constants(w, b, 7)
    assert c.kernel == "mcu_conv_dsp_s8" and c.bias is b and c.scratch_bytes == 4 * 48 + 48
    assert c.weights.size == 6 * 48
    w1 = rng.integers(-128, 128, size=(5, 1, 1, 8)).astype(np.int8)
    c1 = fast_layout.conv_1x1_constants(w1, None, -3)
    assert c1.scratch_bytes == 0 and list(c1.bias) == list(-3 * w1.reshape(5, -1).astype(np.int64).sum(1))
    wd = rng.integers(-128, 128, size=(3, 3, 7)).astype(np.int8)
    cd = fast_layout.dwconv_constants(wd, b[:1].repeat(7), 2)
    assert cd.scratch_bytes == 8 and list(cd.bias) == list(b[0] + 2 * wd.reshape(9, 7).astype(np.int64).sum(0))
    wf = rng.integers(-128, 128, size=(13, 10)).astype(np.int8)
    cf = fast_layout.fully_connected_constants(wf, None, 1)
    assert cf.scratch_bytes == 0 and cf.weights.size == 13 * 12
    assert list(cf.bias) == list(wf.astype(np.int64).sum(1))
    # 8 channels blocked by 8, then a quad, then a plain row (natural order, padded to K4)
    padded = np.zeros((13, 12), np.int8)
    padded[:, :10] = wf
    assert list(cf.weights[:32]) == list(padded[0:8, 0:4].reshape(-1))
    assert list(cf.weights[96:112]) == list(padded[8:12, 0:4].reshape(-1))
    assert list(cf.weights[-12:]) == list(padded[12])


def test_problems_name_the_reason():
    assert fast_layout.conv_1x1_problem((1, 1), 32, 1, (1, 1), (0, 0), (24, 24), (24, 24)) is None
    assert fast_layout.conv_1x1_problem((1, 1), 32, 1, (1, 1), (-2, -1), (30, 30), (24, 24)) is None  # start offset
    assert "outside" in fast_layout.conv_1x1_problem((1, 1), 32, 1, (1, 1), (1, 1), (24, 24), (26, 26))
    assert "multiple of 4" in fast_layout.conv_1x1_problem((1, 1), 6, 1, (1, 1), (0, 0), (8, 8), (8, 8))
    assert "not 1x1" in fast_layout.conv_1x1_problem((3, 3), 8, 1, (1, 1), (0, 0), (8, 8), (6, 6))
    assert fast_layout.conv_problem(1) is None and "groups" in fast_layout.conv_problem(2)
    assert fast_layout.dwconv_problem((3, 3), 1) is None
    assert "multiplier" in fast_layout.dwconv_problem((3, 3), 2)
    assert "taps" in fast_layout.dwconv_problem((9, 9), 1)
