"""The DSP (SIMD32) kernels in compiled models: chosen per layer on boards with the DSP extension, bit-exact
with the simulator on qemu-m4 and qemu-m7 (qemu-m55 runs its MVE kernels: tests/test_fast_kernels_mve.py), the same bytes as ``--kernels portable``, every layer that
is not on a fast kernel with its reason, and host builds portable.

The kernels themselves are tested against the portable ones shape by shape in tests/test_c_kernels.py; this
module tests what the compiler makes of them: the selection, the laid-out constants, scratch in the plan,
the patched stage's start offsets and partial regions, and the report.
"""

from __future__ import annotations

import numpy as np
import pytest

from onnx import helper

from conftest import REPO, SHARED_MODELS, make_model, save
from mcucompile.api import CompileOptions, PatchOptions, build_and_run_board, compile_model, verify_host
from mcucompile.api.verify import simulate
from mcucompile.cli import _add_compile_args, _options
from mcucompile.errors import UserError

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
MNIST_CALIB = str(REPO / "models" / "mnist" / "mnist_calib_200.npz")
OFF = PatchOptions(mode="off")
#: (model, calibration, patch options): MNIST, the four MLPerf Tiny int8 models layer by layer, and VWW
#: patched (a forced plan: start offsets and partial regions in every stage layer)
CASES = {
    "mnist": (MNIST, MNIST_CALIB, OFF),
    "kws": (SHARED_MODELS / "kws_dscnn_int8.tflite", None, OFF),
    "resnet8": (SHARED_MODELS / "resnet8_int8.tflite", None, OFF),
    "vww": (SHARED_MODELS / "vww_mbv1_025_int8.tflite", None, OFF),
    "ad": (SHARED_MODELS / "ad_autoencoder_int8.tflite", None, OFF),
    "vww_patched": (SHARED_MODELS / "vww_mbv1_025_int8.tflite", None, PatchOptions(mode="forced", split=8, patches=5)),
}
#: C functions of the fast kernels, as the generated model.c calls them
DSP_CALLS = ("mcu_conv_dsp_s8(", "mcu_dwconv_dsp_s8(", "mcu_fully_connected_dsp_s8(")


def _compile(name: str, board: str, kernels: str = "auto"):
    path, calib, patch = CASES[name]
    return compile_model(path, CompileOptions(board=board, calib=calib, progress=False, patch=patch, kernels=kernels))


def _run(compiled, tmp_path, samples: int = 2):
    """The C outputs on the compiled board for the first calibration samples, and the simulator's."""
    x_q, outs, _, _ = build_and_run_board(compiled, compiled.calib[:samples], tmp_path)
    return outs, simulate(compiled, x_q)


def _check_report(compiled, min_share: float) -> None:
    rep = compiled.report
    assert rep.kernels == "auto"
    assert rep.fast_mac_share >= min_share, [(lay.name, lay.kernel, lay.kernel_reason) for lay in rep.layers]
    for lay in rep.layers:
        # every layer not on a fast kernel says why; a fast one has no reason
        assert bool(lay.kernel_reason) != lay.fast_kernel, (lay.name, lay.kernel, lay.kernel_reason)
        if lay.op in ("conv2d", "depthwise_conv2d", "fully_connected"):
            assert lay.fast_kernel, (lay.name, lay.kernel_reason)
            assert lay.kernel.endswith("_dsp")
    js = rep.to_json_dict()
    assert js["fast_mac_share"] == pytest.approx(rep.fast_mac_share)
    assert all("kernel_reason" in lay for lay in js["layers"])


@pytest.mark.parametrize("name", list(CASES))
def test_dsp_kernels_bit_exact_on_qemu_m4_and_same_bytes_as_portable(name, tmp_path):
    fast = _compile(name, "qemu-m4")
    _check_report(fast, 0.99)
    src = fast.sources.files["src/model.c"]
    assert any(f in src for f in DSP_CALLS) and '#include "mcunn_dsp.h"' in src
    if name == "vww_patched":
        assert fast.patch is not None and fast.patch.stage_len == 8
        stage = [lay for lay in fast.report.layers if lay.index < fast.report.stage_layers]
        assert stage and all(lay.fast_kernel for lay in stage if lay.macs)
    if name == "resnet8":
        assert [lay.kernel for lay in fast.report.layers if lay.op == "add"] == ["add_dsp"] * 3
    outs, sim = _run(fast, tmp_path / "auto")
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1)), f"{name}: the DSP build differs from the simulator"
    portable = _compile(name, "qemu-m4", "portable")
    assert portable.report.fast_mac_share == 0.0
    assert {lay.kernel_reason for lay in portable.report.layers} == {"--kernels portable"}
    assert not any(f in portable.sources.files["src/model.c"] for f in DSP_CALLS)
    p_outs, _ = _run(portable, tmp_path / "portable")
    for a, b in zip(outs, p_outs):
        assert a.tobytes() == b.tobytes(), f"{name}: auto and portable kernels give different bytes"


@pytest.mark.parametrize("name,board", [("kws", "qemu-m7")])
def test_dsp_kernels_bit_exact_on_m7(name, board, tmp_path):
    """(qemu-m55 takes its MVE kernels ahead of the DSP ones: tests/test_fast_kernels_mve.py.)"""
    c = _compile(name, board)
    _check_report(c, 0.99)
    outs, sim = _run(c, tmp_path)
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1)), f"{name} on {board} differs from the simulator"


def test_host_builds_stay_portable():
    c = _compile("mnist", "host")
    assert c.report.fast_mac_share == 0.0
    assert {lay.kernel_reason for lay in c.report.layers} == {"no DSP extension on host"}
    src = c.sources.files["src/model.c"]
    assert "mcunn_dsp.h" not in src and not any(f in src for f in DSP_CALLS)


def test_dsp_layouts_replace_the_model_weights_in_flash():
    """The laid-out weights replace the model's (not both in flash); the folded depthwise bias replaces its bias."""
    c = _compile("mnist", "qemu-m4")
    weights = c.sources.files["src/model_weights.c"]
    portable = _compile("mnist", "qemu-m4", "portable").sources.files["src/model_weights.c"]
    n_fast = sum(1 for line in weights.splitlines() if line.startswith("const int8_t"))
    n_port = sum(1 for line in portable.splitlines() if line.startswith("const int8_t"))
    assert n_fast == n_port  # one int8 weights array per weighted layer in both
    assert "_weights[" in weights and "_weights[" not in portable


def test_kernels_option_is_validated_and_reaches_the_cli():
    with pytest.raises(UserError, match="--kernels"):
        CompileOptions(kernels="fastest")
    import argparse

    p = argparse.ArgumentParser()
    _add_compile_args(p)
    assert _options(p.parse_args(["m.onnx", "--kernels", "portable"])).kernels == "portable"
    assert _options(p.parse_args(["m.onnx"])).kernels == "auto"
    assert _options(p.parse_args(["m.onnx", "--kernels", "cmsis-nn"])).kernels == "cmsis-nn"
    with pytest.raises(SystemExit):
        p.parse_args(["m.onnx", "--kernels", "fastest"])


def test_the_safety_check_reads_the_dsp_kernels_contracts():
    """The plan safety check sees the DSP calls' own facts: laid-out weights read from the call's array, scratch
    written, and a call passed too little scratch (or a grouped conv) is a contract violation."""
    from mcucompile.ops import op_def
    from mcucompile.ops.kernel import KernelArgs, KernelTarget
    from mcucompile.ops.spatial import as_nhwc
    from mcucompile.schedule.safety import plan_problems, plan_steps

    c = _compile("vww_patched", "qemu-m4")
    target = KernelTarget(c.board, "auto")
    assert plan_problems(c.graph, c.plan, c.patch, target) == []
    roles = {(a.role, a.pointer.split(":")[0]) for st in plan_steps(c.graph, c.plan, c.patch, target)
             for a in st.accesses}
    assert ("weights", "array") in roles and any(r == "scratch" for r, _ in roles)
    node = next(n for n in c.graph.nodes if n.op == "conv2d")
    call = op_def(node).kernel(node, c.graph, target)
    assert call.kernel.fast and call.scratch_bytes > 0
    dims = as_nhwc(tuple(c.graph.tensors[node.inputs[0]].shape))
    out = as_nhwc(tuple(c.graph.tensors[node.outputs[0]].shape))
    args = KernelArgs(node, c.graph, call.context, tuple(node.inputs), node.outputs[0], (dims,), out,
                      node.attrs.window.pads[:2], False, "s", call.scratch_bytes - 4)
    _, contract = call.kernel.access(args)
    assert any("scratch" in v for v in contract)
    grouped = KernelArgs(node, c.graph, {**call.context, "groups": 2}, tuple(node.inputs), node.outputs[0],
                         (dims,), out, node.attrs.window.pads[:2], False, "s", call.scratch_bytes)
    assert any("groups" in v for v in call.kernel.access(grouped)[1])


def test_layers_the_dsp_kernels_refuse_fall_back_with_the_reason(tmp_path):
    """A grouped convolution and a depthwise convolution with channel multiplier 2 run the portable kernels,
    each with its reason, next to DSP layers (3 input channels, an odd 5 outputs), all bit-exact on qemu-m4."""
    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w1"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
             helper.make_node("Conv", ["b", "w2"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=6),
             helper.make_node("Conv", ["c", "w3"], ["y"], kernel_shape=[1, 1])]
    inits = {"w0": w(6, 3, 3, 3), "w1": w(6, 3, 3, 3), "w2": w(12, 1, 3, 3), "w3": w(5, 12, 1, 1)}
    path = save(make_model(nodes, [1, 3, 9, 11], ["y"], inits), tmp_path, "fallback.onnx")
    c = compile_model(path, CompileOptions(board="qemu-m4", calib_samples=4, progress=False, patch=OFF))
    got = [(lay.op, lay.kernel, lay.kernel_reason) for lay in c.report.layers]
    assert got == [("conv2d", "conv_dsp", None),
                   ("conv2d", "conv", "2 groups (grouped convolution runs the portable kernel)"),
                   ("depthwise_conv2d", "depthwise_conv", "channel multiplier 2"),
                   ("conv2d", "conv_dsp", None)], got
    assert 0 < c.report.fast_mac_share < 1
    outs, sim = _run(c, tmp_path / "fw")
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1))


def test_dsp_sources_under_sanitizers_on_the_host(tmp_path):
    """The qemu-m4 library (DSP calls) built for this PC, where the intrinsics are portable C, under ASan and
    UBSan: bit-exact with the simulator and no finding (patched: start offsets and partial regions)."""
    c = _compile("vww_patched", "qemu-m4")
    assert c.report.fast_mac_share > 0.99
    res = verify_host(c, c.calib[:1], build_dir=tmp_path, sanitize=True, references=())
    assert res.bit_exact, res.format()


@pytest.mark.parametrize("case", ["budget", "memory"])
def test_lean_kernels_when_scratch_binds_or_memory_is_the_objective(case, tmp_path):
    """A model that fits with the portable kernels still fits when the DSP kernels' scratch would break the
    budget (resnet8 under a 49,400 B --sram-limit: the portable plan's peak is 49,152 B, the im2col scratch of
    the fast one adds 576 B: only the layer whose scratch lies above the budget goes scratch-free), and --optimize
    memory takes the scratch-free kernels everywhere (VWW: 1x1 convolutions on
    mcu_conv_1x1_dsp_s8, also per patch); bit-exact on qemu-m4 and each scratch-free fallback says why."""
    if case == "budget":
        path, opts = SHARED_MODELS / "resnet8_int8.tflite", dict(patch=OFF, sram_limit=49_400)
    else:
        path, opts = SHARED_MODELS / "vww_mbv1_025_int8.tflite", dict(patch=PatchOptions(optimize="memory"))
    c = compile_model(path, CompileOptions(board="qemu-m4", progress=False, **opts))
    portable = compile_model(path, CompileOptions(board="qemu-m4", progress=False, kernels="portable", **opts))
    assert c.report.peak_sram_bytes <= portable.report.peak_sram_bytes
    reasons = {lay.kernel_reason for lay in c.report.layers if lay.op in ("conv2d", "fully_connected")
               and not lay.fast_kernel}
    assert reasons and all("scratch-free kernels" in r for r in reasons), reasons
    if case == "memory":
        assert c.patch is not None
        assert any(lay.kernel == "conv_1x1_dsp" for lay in c.report.layers if lay.index < c.report.stage_layers)
        assert c.report.fast_mac_share > 0.9
    else:
        assert any("scratch" in w for w in c.warnings)
        # only the layers whose scratch lay above the budget lose their fast kernel: here one conv
        assert not c.target.lean and len(c.target.lean_layers) == 1
        slow = [lay for lay in c.report.layers if lay.op == "conv2d" and not lay.fast_kernel]
        assert len(slow) == 1 and sum(lay.op == "conv2d" and lay.fast_kernel for lay in c.report.layers) >= 6
        assert any("the 1 layer(s) whose scratch did not fit run a scratch-free kernel" in w for w in c.warnings)
    outs, sim = _run(c, tmp_path / "fw", samples=1)
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1))


def test_fully_connected_needs_no_scratch(tmp_path):
    """The DSP FC kernel widens its input in registers: AD (ten FC layers, the first 640 deep) keeps the portable
    plan's peak SRAM with every layer on the fast kernel (no scratch, no lean retry), bit-exact on qemu-m4."""
    c = _compile("ad", "qemu-m4")
    portable = _compile("ad", "qemu-m4", "portable")
    assert all(lay.kernel == "fully_connected_dsp" and lay.fast_kernel for lay in c.report.layers)
    assert c.report.peak_sram_bytes == portable.report.peak_sram_bytes
    assert not any("scratch" in w for w in c.warnings)
    src = c.sources.files["src/model.c"]
    assert "mcu_fully_connected_dsp_s8(" in src
    outs, sim = _run(c, tmp_path / "fw", samples=2)
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1))


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_adds_on_dsp_and_a_broadcast_add_falls_back(rounding, tmp_path):
    """A residual add (same shapes, 5 x 7 x 3: an odd element count) runs mcu_add_dsp_s8; an add broadcasting a
    pooled map over H and W runs mcu_add_s8 with its reason; bit-exact on qemu-m4 in both roundings."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["a", "x"], ["b"]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("GlobalAveragePool", ["br"], ["g"]),
             helper.make_node("Add", ["br", "g"], ["y"])]
    inits = {"w0": rng.normal(0, 0.5, (3, 3, 1, 1)).astype(np.float32)}
    path = save(make_model(nodes, [1, 3, 5, 7], ["y"], inits), tmp_path, "adds.onnx")
    c = compile_model(path, CompileOptions(board="qemu-m4", calib_samples=4, progress=False, patch=OFF,
                                           rounding=rounding))
    got = [(lay.op, lay.kernel, lay.kernel_reason) for lay in c.report.layers]
    assert got[1] == ("add", "add_dsp", None), got
    assert got[-1] == ("add", "add", "an operand is broadcast (mcu_add_dsp_s8 takes equal shapes)"), got
    outs, sim = _run(c, tmp_path / "fw", samples=4)
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1)), f"adds, {rounding} rounding"
