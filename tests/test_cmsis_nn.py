"""--kernels cmsis-nn: layers on Arm's CMSIS-NN where it is bit-exact, our kernels with the reason elsewhere.

Tests that build or run CMSIS-NN need a checkout in CMSIS_NN_DIR (never in CI: CMSIS-NN is not installable
here) and skip saying so; the rest (the reasons from compile only, the missing-dir errors, the pinned
PlatformIO text) always run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx import helper

from conftest import REPO, SHARED_MODELS, make_model, save
from mcucompile.api import CompileOptions, PatchOptions, build_and_run_board, compile_model, write_library
from mcucompile.api.verify import simulate, verify_host
from mcucompile.ops import cmsis_nn
from mcucompile.ops.kernel import KernelTarget
from mcucompile.boards import get_board
from mcucompile.patch.planner import local_window

MNIST = REPO / "models" / "mnist"
OFF = PatchOptions(mode="off")
CASES = {
    "mnist": (MNIST / "mnist_cnn.onnx", str(MNIST / "mnist_calib_200.npz"), OFF),
    "kws": (SHARED_MODELS / "kws_dscnn_int8.tflite", None, OFF),
    "resnet8": (SHARED_MODELS / "resnet8_int8.tflite", None, OFF),
    "vww": (SHARED_MODELS / "vww_mbv1_025_int8.tflite", None, OFF),
    "ad": (SHARED_MODELS / "ad_autoencoder_int8.tflite", None, OFF),
    "vww_patched": (SHARED_MODELS / "vww_mbv1_025_int8.tflite", None, PatchOptions(mode="forced", split=8, patches=5)),
}
#: ops CMSIS-NN runs in these models (everything with MACs, and the softmax)
ON_CMSIS = {"conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "max_pool2d", "add", "softmax"}


def _cmsis_dir() -> Path:
    where = os.environ.get("CMSIS_NN_DIR")
    if not where or not (Path(where) / "Include" / "arm_nnfunctions.h").is_file():
        pytest.skip("CMSIS_NN_DIR not set: point it at a CMSIS-NN checkout (v7.0.0) to build and run CMSIS-NN")
    return Path(where)


def _compile(name: str, board: str, **opts):
    path, calib, patch = CASES[name]
    return compile_model(path, CompileOptions(board=board, calib=calib, progress=False, patch=patch,
                                              kernels="cmsis-nn", **opts))


def _check_report(compiled) -> None:
    """Every layer of an op CMSIS-NN has runs it (a cmsis_* kernel, no reason); the others say why not."""
    for lay in compiled.report.layers:
        if lay.op in ON_CMSIS:
            assert lay.kernel.startswith("cmsis_") and lay.fast_kernel and lay.kernel_reason is None, (
                lay.name, lay.kernel, lay.kernel_reason)
        else:
            assert not lay.kernel.startswith("cmsis_") and lay.kernel_reason, (lay.name, lay.kernel)


def _env_without_cmsis() -> dict:
    return {k: v for k, v in os.environ.items() if k != "CMSIS_NN_DIR"}


# --- always: compile only ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["kws", "resnet8", "vww_patched"])
def test_layers_cmsis_nn_runs_and_the_reasons_of_the_rest(name):
    c = _compile(name, "qemu-m4")
    assert c.report.kernels == "cmsis-nn"
    _check_report(c)
    src = c.sources.files["src/model.c"]
    assert '#include "arm_nnfunctions.h"' in src and "arm_convolve_wrapper_s8(" in src
    # the run-time check of the library's own scratch formula against the planned scratch
    assert "arm_convolve_wrapper_s8_get_buffer_size(" in src
    if name == "vww_patched":
        # a patch CMSIS-NN cannot take (a start offset in W past the row's end) runs the portable kernel
        assert "mcu_dwconv_s8(" in src and "use_cmsis = 0" in src


def test_single_rounding_keeps_our_kernels_with_the_reason():
    c = _compile("ad", "qemu-m4", rounding="single")
    for lay in c.report.layers:
        assert not lay.kernel.startswith("cmsis_")
    calls = [st.kernel for st in c.schedule.steps()]
    assert all(k.reason and "--rounding single" in k.reason for k in calls), [k.reason for k in calls]


def test_fully_connected_on_mve_takes_precomputed_kernel_sums():
    c = _compile("ad", "qemu-m55")
    fc = [st for st in c.schedule.steps() if st.node.op == "fully_connected"]
    assert fc and all(st.kernel.template == "cmsis_fully_connected.c.j2" for st in fc)
    for st in fc:
        g = c.graph
        w = g.tensors[st.node.inputs[1]].data.astype(np.int64)
        b = g.tensors[st.node.inputs[2]].data.astype(np.int64)
        want = b + w.sum(axis=1) * st.node.params.input_offset
        assert np.array_equal(st.kernel.context["kernel_sums"].astype(np.int64), want)
    # no sums (and no buffer) on a DSP core: CMSIS-NN reads the bias there
    m4 = _compile("ad", "qemu-m4")
    assert all("kernel_sums" not in st.kernel.context for st in m4.schedule.steps())


def test_scratch_formulas_per_core():
    # conv 3x3 over 16 channels: two int16 im2col columns of K4(144) on DSP, four 16-padded int8 ones on MVE
    assert cmsis_nn.conv_wrapper_buffer_size("dsp", (1, 1), (1, 1), (1, 1), (1, 16, 16, 16), (32, 3, 3, 16),
                                             (1, 16, 16, 32)) == 2 * 144 * 2
    assert cmsis_nn.conv_wrapper_buffer_size("mve", (1, 1), (1, 1), (1, 1), (1, 16, 16, 16), (32, 3, 3, 16),
                                             (1, 16, 16, 32)) == 4 * 144
    assert cmsis_nn.conv_wrapper_buffer_size("dsp", (0, 0), (1, 1), (1, 1), (1, 8, 8, 16), (32, 1, 1, 16),
                                             (1, 8, 8, 32)) == 0
    # depthwise 3x3 pad 1: the 3x3 kernel (no buffer) except on MVE
    assert cmsis_nn.depthwise_wrapper_buffer_size("dsp", (1, 1), (1, 1), (1, 1), (1, 8, 8, 64), (3, 3, 64),
                                                  (1, 8, 8, 64)) == 0
    assert cmsis_nn.depthwise_wrapper_buffer_size("mve", (1, 1), (1, 1), (1, 1), (1, 8, 8, 64), (3, 3, 64),
                                                  (1, 8, 8, 64)) == 4 * 124 * 9
    assert cmsis_nn.fully_connected_buffer_size("mve", 10) == 40 and cmsis_nn.fully_connected_buffer_size("dsp", 10) == 0


def test_cli_verify_without_cmsis_nn_dir_says_what_to_set(tmp_path):
    mcucompile = Path(sys.executable).with_name("mcucompile")
    res = subprocess.run([str(mcucompile), "verify", str(SHARED_MODELS / "ad_autoencoder_int8.tflite"), "--board",
                          "host", "--kernels", "cmsis-nn", "--no-patch", "--quiet", "-n", "1"],
                         capture_output=True, text=True, env=_env_without_cmsis(), cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mcucompile: error: --kernels cmsis-nn needs CMSIS-NN") and "set CMSIS_NN_DIR" in lines[0]


def test_make_project_without_cmsis_nn_dir_stops_with_one_line(tmp_path):
    c = _compile("ad", "qemu-m4")
    out = write_library(c, tmp_path / "proj")
    res = subprocess.run(["make", "-C", str(out), "build/firmware.elf"], capture_output=True, text=True,
                         env=_env_without_cmsis(), timeout=120)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if "***" in line]
    assert len(errors) == 1, res.stderr
    assert "CMSIS_NN_DIR is not set: point it at a CMSIS-NN checkout (git clone" in errors[0], errors[0]
    # a library without CMSIS-NN calls builds without it
    auto = compile_model(CASES["ad"][0], CompileOptions(board="qemu-m4", progress=False, patch=OFF))
    assert "CMSIS_NN_DIR" not in write_library(auto, tmp_path / "auto").joinpath("Makefile").read_text()


def test_platformio_project_pins_cmsis_nn(tmp_path):
    c = _compile("ad", "qemu-m4")
    out = write_library(c, tmp_path / "proj")
    ini = (out / "platformio.ini").read_text()
    assert f"CMSIS-NN={cmsis_nn.CMSIS_NN_URL}.git#{cmsis_nn.CMSIS_NN_VERSION}" in ini
    assert "extra_scripts = post:cmsis_nn_build.py" in ini and "lib_ignore = CMSIS-NN" in ini
    script = (out / "cmsis_nn_build.py").read_text()
    assert "_f16.c" in script and "StaticLibrary" in script
    where = os.environ.get("CMSIS_NN_DIR")
    if where and (Path(where) / ".git").exists():
        tags = subprocess.run(["git", "-C", where, "tag"], capture_output=True, text=True, check=True).stdout.split()
        assert cmsis_nn.CMSIS_NN_VERSION in tags


# --- with CMSIS_NN_DIR: the library's own formulas, and bit-exact runs -----------------------------------------

def test_scratch_formulas_match_the_library(tmp_path):
    """Our mirrors of *_get_buffer_size against CMSIS-NN's host-callable _dsp / _mve variants, over shapes."""
    root = _cmsis_dir()
    shapes = [((1, 1), (1, 1), (1, 1), (1, 16, 16, 16), (32, 3, 3, 16), (1, 16, 16, 32)),
              ((0, 0), (1, 1), (1, 1), (1, 8, 8, 16), (32, 1, 1, 16), (1, 8, 8, 32)),
              ((0, 0), (2, 2), (1, 1), (1, 49, 10, 1), (64, 10, 4, 1), (1, 25, 5, 64)),
              ((1, 0), (1, 2), (1, 1), (1, 1, 30, 8), (16, 1, 5, 8), (1, 1, 14, 16)),
              ((1, 1), (2, 2), (1, 1), (1, 48, 48, 3), (8, 3, 3, 3), (1, 24, 24, 8))]
    lines, want = [], []
    for pads, st, dl, i, f, o in shapes:
        args = (f"&(cmsis_nn_conv_params){{0, 0, {{{st[1]}, {st[0]}}}, {{{pads[1]}, {pads[0]}}}, {{{dl[1]}, {dl[0]}}}, "
                f"{{-128, 127}}}}, &(cmsis_nn_dims){{{i[0]}, {i[1]}, {i[2]}, {i[3]}}}, "
                f"&(cmsis_nn_dims){{{f[0]}, {f[1]}, {f[2]}, {f[3]}}}, &(cmsis_nn_dims){{{o[0]}, {o[1]}, {o[2]}, {o[3]}}}")
        for core in ("dsp", "mve", "none"):  # none: the plain function, built here for the host (no DSP, no MVE)
            suffix = "" if core == "none" else f"_{core}"
            lines.append(f'printf("%d\\n", (int)arm_convolve_wrapper_s8_get_buffer_size{suffix}({args}));')
            want.append(cmsis_nn.conv_wrapper_buffer_size(core, pads, st, dl, i, f, o))
        c = i[3]
        dw = (f"&(cmsis_nn_dw_conv_params){{0, 0, 1, {{{st[1]}, {st[0]}}}, {{{pads[1]}, {pads[0]}}}, {{1, 1}}, "
              f"{{-128, 127}}}}, &(cmsis_nn_dims){{{i[0]}, {i[1]}, {i[2]}, {c}}}, "
              f"&(cmsis_nn_dims){{1, {f[1]}, {f[2]}, {c}}}, &(cmsis_nn_dims){{{o[0]}, {o[1]}, {o[2]}, {c}}}")
        for core in ("dsp", "mve", "none"):
            suffix = "" if core == "none" else f"_{core}"
            lines.append(f'printf("%d\\n", (int)arm_depthwise_conv_wrapper_s8_get_buffer_size{suffix}({dw}));')
            want.append(cmsis_nn.depthwise_wrapper_buffer_size(core, pads, st, (1, 1), i, (f[1], f[2], c),
                                                               (o[0], o[1], o[2], c)))
        for core in ("dsp", "mve", "none"):
            suffix = "" if core == "none" else f"_{core}"
            lines.append(f'printf("%d\\n", (int)arm_fully_connected_s8_get_buffer_size{suffix}('
                         f'&(cmsis_nn_dims){{{i[3]}, 1, 1, {o[3]}}}));')
            want.append(cmsis_nn.fully_connected_buffer_size(core, o[3]))
            lines.append(f'printf("%d\\n", (int)arm_avgpool_s8_get_buffer_size{suffix}({o[2]}, {c}));')
            want.append(cmsis_nn.avgpool_buffer_size(core, c))
    prog = tmp_path / "sizes.c"
    prog.write_text('#include <stdio.h>\n#include "arm_nnfunctions.h"\nint main(void)\n{\n    '
                    + "\n    ".join(lines) + "\n    return 0;\n}\n")
    src = root / "Source"
    files = [src / "ConvolutionFunctions" / "arm_convolve_get_buffer_sizes_s8.c",
             src / "ConvolutionFunctions" / "arm_depthwise_conv_get_buffer_sizes_s8.c",
             src / "FullyConnectedFunctions" / "arm_fully_connected_get_buffer_sizes_s8.c",
             src / "PoolingFunctions" / "arm_avgpool_get_buffer_sizes_s8.c"]
    exe = tmp_path / "sizes"
    subprocess.run(["gcc", "-std=c99", "-I", str(root / "Include"), str(prog), *map(str, files), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert got == want


@pytest.mark.parametrize("name", ["mnist", "kws", "resnet8", "ad"])  # VWW: patched on qemu-m4 below
def test_bit_exact_on_host(name, tmp_path):
    _cmsis_dir()
    c = _compile(name, "host")
    _check_report(c)
    res = verify_host(c, c.calib[:2], build_dir=tmp_path, references=())
    assert res.bit_exact, res


# representative: DSP paths and a patch loop on M4 (resnet8's residual adds run on the host above), MVE depthwise
# and conv (kws) and fully connected with kernel sums (ad) on M55; bench/run.py runs the other pairs
@pytest.mark.parametrize("name,board", [("vww_patched", "qemu-m4"), ("kws", "qemu-m55"), ("ad", "qemu-m55")])
def test_bit_exact_on_emulated_cores(name, board, tmp_path):
    _cmsis_dir()
    c = _compile(name, board)
    _check_report(c)
    x_q, outs, run, _ = build_and_run_board(c, c.calib[:2], tmp_path / "fw")
    sim = simulate(c, x_q)
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1)), f"{name} on {board}: CMSIS-NN build differs"
    assert run.status == 0


def test_platformio_project_builds_offline_with_a_local_cmsis_nn(tmp_path):
    """PlatformIO needs a manifest for symlink:// libraries and writes one for copied or git packages: the
    offline override is file:// (a copy), the generated pin is the git tag."""
    root = _cmsis_dir()
    pio = Path(sys.executable).with_name("pio")
    assert pio.exists(), "PlatformIO missing: make test installs it (pip extra 'dev')"
    sys.path.insert(0, str(REPO / "tools"))
    from pio_offline import setup

    cache = Path(os.environ.get("MCUCOMPILE_PIO_CACHE", Path.home() / ".cache" / "mcucompile" / "pio"))
    env = dict(os.environ, **setup(cache))
    c = _compile("ad", "qemu-m4")
    out = write_library(c, tmp_path / "proj", cmsis_nn_source=f"file://{root}")
    res = subprocess.run([str(pio), "run", "-e", "qemu_m4", "-t", "upload"], cwd=out, env=env, capture_output=True,
                         text=True, timeout=900)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    assert "MCU END 0" in text


def _branch_model(tmp_path: Path) -> Path:
    """Two branches over one map (3x3 and 5x5 convolutions into an add): patched, the 3x3 branch reads the
    5x5's larger region with start offsets, and at the right edge also needs padding past the region."""
    rng = np.random.default_rng(7)
    inits = {"wa": rng.standard_normal((8, 3, 3, 3)) * 0.3, "ba": rng.standard_normal(8) * 0.1,
             "wb": rng.standard_normal((8, 8, 3, 3)) * 0.2, "bb": rng.standard_normal(8) * 0.1,
             "wc": rng.standard_normal((8, 8, 5, 5)) * 0.1, "bc": rng.standard_normal(8) * 0.1,
             "wd": rng.standard_normal((4, 8, 1, 1)) * 0.3, "bd": rng.standard_normal(4) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "wb", "bb"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["ar", "wc", "bc"], ["c"], pads=[2, 2, 2, 2]),
             helper.make_node("Add", ["b", "c"], ["s"]),
             helper.make_node("Conv", ["s", "wd", "bd"], ["y"], strides=[2, 2])]
    return save(make_model(nodes, [1, 3, 16, 16], ["y"], inits), tmp_path, "branch.onnx")


def _branch_compiled(tmp_path: Path, board: str):
    c = compile_model(_branch_model(tmp_path), CompileOptions(board=board, kernels="cmsis-nn", progress=False,
                                                              calib_samples=4, patch=PatchOptions("forced", 4, 2)))
    g, plan = c.graph, c.patch
    offsets = {(p, n.name): local_window(g, plan, n, p) for p in range(plan.patches) for n in g.nodes[:plan.stage_len]}
    starts = {k: lw for k, lw in offsets.items() if lw is not None and (lw.pad_left < 0 or lw.pad_top < 0)}
    # the plan has what the test is for: start offsets in H alone (a pointer offset) and in W next to the
    # row's end (that patch runs mcu_conv_s8)
    assert any(lw.pad_top < 0 <= lw.pad_left for lw in starts.values()), starts
    assert any(lw.pad_left < 0 and (lw.out_w - 1) + 3 > lw.in_w + lw.pad_left for lw in starts.values()), starts
    _check_report(c)
    return c


def test_patch_start_offsets_compile():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        c = _branch_compiled(Path(tmp), "qemu-m4")
    src = c.sources.files["src/model.c"]
    assert "use_cmsis = 0" in src and "mcu_conv_s8(" in src


@pytest.mark.parametrize("board", ["host", "qemu-m4"])
def test_patch_start_offsets_bit_exact(board, tmp_path):
    """Per patch: CMSIS-NN with the H offset as a pointer offset, the portable kernel where W cannot be."""
    _cmsis_dir()
    c = _branch_compiled(tmp_path, board)
    if board == "host":
        # under ASan (CMSIS-NN included): the pointer offsets keep every read inside the region buffers
        assert verify_host(c, c.calib[:2], build_dir=tmp_path / "b", references=(), sanitize=True).bit_exact
        return
    x_q, outs, run, _ = build_and_run_board(c, c.calib[:2], tmp_path / "fw")
    for a, b in zip(outs, simulate(c, x_q)):
        assert np.array_equal(a.reshape(-1), b.reshape(-1))


def test_kernel_target_auto_keeps_board_and_lean():
    t = KernelTarget(get_board("qemu-m4"), "cmsis-nn", lean=True)
    assert t.auto() == KernelTarget(get_board("qemu-m4"), "auto", lean=True)


def test_report_says_why_a_layer_is_not_on_cmsis_nn():
    """Compile only (no CMSIS_NN_DIR needed): under --rounding single every layer keeps our fast kernels, each with
    CMSIS-NN's reason in the report, and the summary gives the share of MACs on CMSIS-NN."""
    from mcucompile.report import format_summary

    path = SHARED_MODELS / "kws_dscnn_int8.tflite"
    on = compile_model(path, CompileOptions(board="qemu-m4", kernels="cmsis-nn", progress=False))
    assert "(100.0% on CMSIS-NN)" in format_summary(on.report)
    off = compile_model(path, CompileOptions(board="qemu-m4", kernels="cmsis-nn", rounding="single", progress=False))
    weighted = [lay for lay in off.report.layers if lay.macs]
    assert weighted and all(not lay.kernel.startswith("cmsis_") for lay in weighted)
    assert all(lay.kernel_reason and lay.kernel_reason.startswith("CMSIS-NN: --rounding single") for lay in weighted), \
        [(lay.kernel, lay.kernel_reason) for lay in weighted]
    assert "(0.0% on CMSIS-NN)" in format_summary(off.report)
