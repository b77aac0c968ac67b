"""The scratch-free SIMD32 packed conv (``mcu_conv_lean_dsp_a*w8_s8``, ``packed_kernels.CONV_LEAN_DSP``).

Kernel by kernel (tests/c_kernels/packed_lean_cases.py): every (input bits, output bits) pair of {8, 4, 2} on random
groups-1 layers with C_in a multiple of 4 (windows 1x1 to 5x5 and 4x8, strides, dilations, taps outside on every
side, start offsets, partial output regions, single last pixels, C_out tails past the quads and several 32-channel
chunks, both output stages) against the simulator's bytes, on the host under ASan + UBSan (the C path) and on
qemu-m4 and qemu-m7 (the assembly), the lean kernel called with a NULL context. In a compile: the kernel a layer
takes when its im2col scratch must go, and MNIST at its tight budget under ``--quantmcu`` on qemu-m4, where the
low-bit chain's 3x3 conv runs it, equal to the simulator byte for byte. Then the SIMD32 packed add against the
portable one.
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
from mcucompile.ops import packed_kernels

sys.path.insert(0, str(Path(__file__).resolve().parent / "c_kernels"))
import harness
import packed_cases
import packed_lean_cases

SEED = 21
PER_PAIR = 6  # 6 random layers per bit pair, then 6 edge layers per pair: 96 cases
MAIN = harness.HERE / "packed_lean_dsp_main.c"
REPO = Path(__file__).resolve().parents[1]
MNIST = REPO / "models" / "mnist"


def _need_arm_tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "qemu-system-arm)")


@pytest.fixture(scope="module")
def cases():
    return packed_lean_cases.lean_cases(SEED, PER_PAIR)


@pytest.fixture(scope="module")
def cases_c(cases, tmp_path_factory):
    return packed_cases.write_cases(cases, SEED, tmp_path_factory.mktemp("lean_cases") / "cases.c")


def test_cases_cover_what_the_kernel_branches_on(cases):
    """Every bit pair; C_out tails (C_out % 4) and chunks past 32; taps outside (padding) and start offsets; a
    single last pixel; the widest pixel and the largest window the kernel takes; both output stages."""
    assert {(c.in_bits, c.out_bits) for c in cases} == set(packed_cases.BIT_PAIRS)
    assert all(c.in_dims[3] % 4 == 0 and c.groups == 1 for c in cases)
    assert all(packed_kernels.conv_lean_dsp_problem(*c.filter_dims[1:], c.in_bits) is None for c in cases)
    for bits in (8, 4, 2):
        mine = [c for c in cases if c.in_bits == bits]
        assert any(c.out_dims[3] % 4 for c in mine) and any(c.out_dims[3] > 32 for c in mine)
        assert any(max(c.pad) > 0 for c in mine) and any(min(c.pad) < 0 for c in mine)
        assert any(c.out_dims[1] * c.out_dims[2] % 2 for c in mine)
        assert any(c.in_dims[3] * bits // 8 == packed_kernels.CONV_LEAN_DSP_MAX_PIXEL_BYTES for c in mine)
        assert any(c.filter_dims[1] * c.filter_dims[2] == packed_kernels.CONV_LEAN_DSP_MAX_TAPS for c in mine)
        assert any(c.dilation != (1, 1) for c in mine) and any(c.stride != (1, 1) for c in mine)
    for bits in (4, 2):
        sub = [c for c in cases if c.out_bits == bits]
        q = 1 << (bits - 1)
        full = [(max(c.act[0], -q), min(c.act[1], q - 1)) == (-q, q - 1) for c in sub]
        assert any(full) and not all(full)


def test_lean_kernel_equals_the_simulator_on_host_under_sanitizers(cases, cases_c, tmp_path):
    exe = harness.build_host([cases_c, MAIN], tmp_path / "lean", sanitize=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, harness.failures(res.stdout) + res.stderr[-3000:]
    assert f"MCU PACKED LEAN CASES {len(cases)} failed 0" in res.stdout


@pytest.mark.parametrize("board_name", ["qemu-m4", "qemu-m7"])
def test_lean_kernel_equals_the_simulator_on_emulated_dsp_cores(board_name, cases, cases_c, tmp_path):
    """The assembly loops (SMLAD on the unpacked lanes) on the M4 and the M7."""
    _need_arm_tools()
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board(board_name)
    elf = harness.build_firmware(board, [cases_c, MAIN], tmp_path / board_name)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                         check=False).stdout
    body = dis[dis.index("<pk_lean_pixel_a2>:"):]
    body = body[:body.index("\n\n")]
    assert "smlad" in body and "eor.w" in body and "0x220022" in body
    run = run_qemu(elf, board, timeout=120)
    assert run.status == 0, harness.failures(run.log)
    assert f"MCU PACKED LEAN CASES {len(cases)} failed 0" in run.log, harness.failures(run.log)


def test_the_harness_catches_wrong_bytes(cases, tmp_path):
    """The lean kernel given the im2col kernel's weight order (pairs, not quads) or the model's bias (the input
    offset not folded) is reported: the comparison can fail."""
    i = next(k for k, c in enumerate(cases) if c.out_dims[3] >= 4 and c.in_bits == 4)
    j = next(k for k, c in enumerate(cases) if k != i and c.in_bits == 2 and c.act == (-128, 127)
             and np.abs(c.fast_bias.astype(np.int64) - c.bias).min() > 64)
    broken = list(cases)
    w = cases[i].filter.reshape(cases[i].filter_dims)
    broken[i] = dataclasses.replace(cases[i], fast_filter=packed_kernels.fast_layout.conv_weights(w))
    broken[j] = dataclasses.replace(cases[j], fast_bias=cases[j].bias)
    src = packed_cases.write_cases(broken, SEED, tmp_path / "cases.c")
    exe = harness.build_host([src, MAIN], tmp_path / "lean", sanitize=False)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=False).stdout
    assert f"FAIL case {i} " in out and f"FAIL case {j} " in out and "lean bytes differ" in out
    assert "failed 2" in out


def test_problem_names_what_the_kernel_does_not_take():
    assert packed_kernels.conv_lean_dsp_problem(3, 3, 16, 2) is None
    assert "multiple of 4" in packed_kernels.conv_lean_dsp_problem(3, 3, 6, 4)
    assert "taps" in packed_kernels.conv_lean_dsp_problem(7, 7, 8, 4)
    assert "128 bytes" in packed_kernels.conv_lean_dsp_problem(1, 1, 132, 8)
    assert packed_kernels.conv_lean_dsp_problem(1, 1, 256, 4) is None


# --- in a compile ------------------------------------------------------------------------------------------------

def _mnist_tight():
    from mcucompile.api import CompileOptions, compile_model
    from mcucompile.quantmcu.options import QuantmcuOptions

    return compile_model(MNIST / "mnist_cnn.onnx", CompileOptions(
        board="qemu-m4", calib=str(MNIST / "mnist_calib_200.npz"), progress=False, sram_limit=2064,
        quantmcu=QuantmcuOptions()))


@pytest.fixture(scope="module")
def mnist_tight():
    return _mnist_tight()


def test_a_layer_whose_scratch_must_go_takes_the_lean_kernel(mnist_tight):
    """MNIST at its tight budget under --quantmcu: the DSP scratch does not fit, so the low-bit chain's 3x3 conv
    (16 -> 16 channels, 2-bit input) runs mcu_conv_lean_dsp_a2w8_s8 with no scratch (it ran the portable packed
    kernel), inside the budget, and the cost model prices it with its own terms."""
    c = mnist_tight
    assert c.plan.arena_size <= 2064
    low = c.schedule.loop.chains[c.schedule.loop.dispatch.inlier_chain]
    lean = [s for s in low.steps if s.kernel.name == "conv_lean_packed_dsp"]
    assert [s.kernel.context["function"] for s in lean] == ["mcu_conv_lean_dsp_a2w8_s8"]
    assert lean[0].kernel.scratch_bytes == 0 and lean[0].kernel.kernel is packed_kernels.CONV_LEAN_DSP
    text = c.sources.files["src/model.c"]
    assert re.search(r"status = mcu_conv_lean_dsp_a2w8_s8\(&ctx", text)
    assert "mcu_conv_a2w8_s8(" not in text  # the portable packed conv is gone


def test_mnist_tight_with_the_lean_kernel_is_bit_exact_on_qemu_m4(mnist_tight, tmp_path):
    """The firmware's outputs equal the simulator's on MNIST test images whose patches take both chains."""
    _need_arm_tools()
    from mcucompile.api import quantize_input
    from mcucompile.api.verify import build_and_run_board
    from mcucompile.schedule.schedule import run_schedule_int

    c = mnist_tight
    d = np.load(MNIST / "mnist_test_2000.npz")
    xs = (d["x"][:6] / 255.0).astype(np.float32)
    x_q = quantize_input(c, xs)
    g = c.graph
    ref, taken = [], []
    for x in x_q:
        t: list[int] = []
        ref.append(np.asarray(run_schedule_int(c.schedule, {g.inputs[0]: x}, t)[g.outputs[0]]).reshape(-1))
        taken.extend(t)
    assert set(taken) == {0, 1}  # outlier patches (8-bit chain) and low-bit ones
    _, outs, run, _ = build_and_run_board(c, xs, tmp_path / "fw")
    assert run.status == 0, run.log[-2000:]
    assert np.array_equal(np.asarray(outs[0]).reshape(len(xs), -1), np.stack(ref).astype(np.asarray(outs[0]).dtype))


# --- the table packed adds (mcu_add_table_packed_s8, mcu_add_table_dsp_packed_s8, mcu_add_table_mve_packed_s8) -----

ADD_MAIN = harness.HERE / "packed_add_main.c"
TABLE_CASES = 270  # 27 bit triples x 10 channel counts, per kernel


def test_table_packed_adds_equal_the_portable_one_on_host_under_sanitizers(tmp_path):
    exe = harness.build_host([ADD_MAIN], tmp_path / "add", sanitize=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, harness.failures(res.stdout) + res.stderr[-3000:]
    assert f"MCU PACKED TABLE ADD CASES {2 * TABLE_CASES} failed 0" in res.stdout, res.stdout[-2000:]


def test_table_packed_adds_equal_the_portable_one_on_qemu_m4(tmp_path):
    _need_arm_tools()
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board("qemu-m4")
    run = run_qemu(harness.build_firmware(board, [ADD_MAIN], tmp_path / "m4"), board, timeout=120)
    assert run.status == 0, harness.failures(run.log)
    assert f"MCU PACKED TABLE ADD CASES {2 * TABLE_CASES} failed 0" in run.log, harness.failures(run.log)


def test_table_packed_adds_equal_the_portable_one_on_qemu_m55(tmp_path):
    """mcu_add_table_mve_packed_s8 (packed_kernels.ADD_TABLE_MVE: MVE unpack, gathered terms, MVE pack) on the same
    cases, next to the two scalar table adds built for the M55."""
    _need_arm_tools()
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board("qemu-m55")
    elf = harness.build_firmware(board, [ADD_MAIN], tmp_path / "m55",
                                 extra_flags=("-DPA_TABLE_KERNEL=mcu_add_table_mve_packed_s8",))
    run = run_qemu(elf, board, timeout=120)
    assert run.status == 0, harness.failures(run.log)
    assert f"MCU PACKED TABLE ADD CASES {3 * TABLE_CASES} failed 0" in run.log, harness.failures(run.log)
