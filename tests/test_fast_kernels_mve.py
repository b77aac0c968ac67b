"""The MVE (Helium) kernels in compiled models: chosen per layer on boards with MVE (qemu-m55) ahead of the DSP
ones, bit-exact with the simulator on qemu-m55 in both roundings, the same bytes as ``--kernels portable``,
every layer that is not on a fast kernel with its reason.

The kernels themselves are tested against the portable ones shape by shape in tests/test_c_kernels_mve.py;
this module tests what the compiler makes of them: the selection (1x1 without im2col where every tap lies
inside the input, the im2col kernel elsewhere), the laid-out weights and folded biases, scratch in the plan,
the patched stage's start offsets and partial regions, and the report.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from onnx import helper

from conftest import SHARED_MODELS, make_model, save
from mcucompile.api import CompileOptions, build_and_run_board, compile_model
from mcucompile.api.verify import simulate
from test_fast_kernels import CASES, DSP_CALLS, OFF

BOARD = "qemu-m55"
#: C functions of the MVE kernels, as the generated model.c calls them
MVE_CALLS = ("mcu_conv_1x1_mve_s8(", "mcu_conv_mve_s8(", "mcu_dwconv_mve_s8(", "mcu_dwconv_3x3_mve_s8(",
             "mcu_fully_connected_mve_s8(")
WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


def _compile(name: str, kernels: str = "auto", **opts):
    path, calib, patch = CASES[name]
    return compile_model(path, CompileOptions(board=BOARD, calib=calib, progress=False, patch=patch, kernels=kernels,
                                              **opts))


def _run(compiled, tmp_path, samples: int = 2):
    """The C outputs on qemu-m55 for the first calibration samples, and the simulator's."""
    x_q, outs, _, _ = build_and_run_board(compiled, compiled.calib[:samples], tmp_path)
    return outs, simulate(compiled, x_q)


def _assert_bit_exact(outs, sim, what: str) -> None:
    assert len(outs) == len(sim)
    for a, b in zip(outs, sim):
        assert np.array_equal(a.reshape(-1), b.reshape(-1)), f"{what}: the qemu-m55 build differs from the simulator"


def _check_report(compiled, min_share: float) -> None:
    rep = compiled.report
    assert rep.kernels == "auto"
    assert rep.fast_mac_share >= min_share, [(lay.name, lay.kernel, lay.kernel_reason) for lay in rep.layers]
    for lay in rep.layers:
        # every layer not on a fast kernel says why; a fast one has no reason
        assert bool(lay.kernel_reason) != lay.fast_kernel, (lay.name, lay.kernel, lay.kernel_reason)
        if lay.op in WEIGHTED or lay.op == "add":
            assert lay.fast_kernel and lay.kernel.endswith("_mve"), (lay.name, lay.kernel, lay.kernel_reason)


@pytest.mark.parametrize("name", list(CASES))
def test_mve_kernels_bit_exact_on_qemu_m55_and_same_bytes_as_portable(name, tmp_path):
    fast = _compile(name)
    _check_report(fast, 0.99)
    src = fast.sources.files["src/model.c"]
    assert any(f in src for f in MVE_CALLS) and '#include "mcunn_mve.h"' in src
    # the MVE kernels come first: no DSP call is left where an MVE one runs every weighted layer
    assert not any(f in src for f in DSP_CALLS)
    if name == "vww_patched":
        assert fast.patch is not None and fast.patch.stage_len == 8
        stage = [lay for lay in fast.report.layers if lay.index < fast.report.stage_layers]
        assert stage and all(lay.fast_kernel for lay in stage if lay.macs)
    if name == "resnet8":
        assert [lay.kernel for lay in fast.report.layers if lay.op == "add"] == ["add_mve"] * 3
        assert fast.report.fast_mac_share > 0.999
    if name in ("vww", "resnet8"):
        kinds = {lay.kernel for lay in fast.report.layers if lay.op == "conv2d"}
        assert "conv_1x1_mve" in kinds and "conv_mve" in kinds, kinds
    if name in ("kws", "vww", "vww_patched"):
        # every depthwise layer is 3x3 without left shifts: the two-pixel kernel, called directly
        assert {lay.kernel for lay in fast.report.layers if lay.op == "depthwise_conv2d"} == {"depthwise_conv_3x3_mve"}
    outs, sim = _run(fast, tmp_path / "auto")
    _assert_bit_exact(outs, sim, name)
    if name == "kws":
        # the firmware links only the kernels its layers call: not the general depthwise kernel (other windows,
        # per-pixel paths) nor, with double rounding, any scalar output stage
        nm = subprocess.run(["arm-none-eabi-nm", str(next((tmp_path / "auto").rglob("firmware.elf")))],
                            capture_output=True, text=True, check=True).stdout
        assert "mcu_dwconv_3x3_mve_s8" in nm
        for absent in ("mcu_dwconv_mve_s8", "dw_pixel_any", "dw_half_any", "store_half_scalar", "store_quad_scalar"):
            assert absent not in nm, absent
    portable = _compile(name, "portable")
    assert portable.report.fast_mac_share == 0.0
    assert {lay.kernel_reason for lay in portable.report.layers} == {"--kernels portable"}
    assert not any(f in portable.sources.files["src/model.c"] for f in MVE_CALLS)
    p_outs, _ = _run(portable, tmp_path / "portable")
    for a, b in zip(outs, p_outs):
        assert a.tobytes() == b.tobytes(), f"{name}: auto and portable kernels give different bytes"


@pytest.mark.parametrize("model", ["kws_dscnn_int8.tflite", "resnet8_int8.tflite"])
def test_mve_kernels_bit_exact_with_single_rounding(model, tmp_path):
    """Single rounding (ONNX QDQ semantics; here forced on the .tflite: KWS runs all four weighted MVE kernels,
    resnet8 the im2col, 1x1 and add ones): the MVE kernels' requantization paths equal the simulator."""
    c = compile_model(SHARED_MODELS / model, CompileOptions(board=BOARD, progress=False, patch=OFF, rounding="single"))
    assert c.graph.rounding == "single"
    _check_report(c, 0.99)
    outs, sim = _run(c, tmp_path)
    _assert_bit_exact(outs, sim, f"{model} single rounding")


def test_layers_the_mve_kernels_refuse_fall_back_with_the_reason(tmp_path):
    """A grouped convolution and a depthwise convolution with channel multiplier 2 run the portable kernels, each
    with its reason; a padded 1x1 convolution (taps outside the input) runs the im2col kernel, an unpadded one the
    1x1 kernel, a 3-channel first layer and an odd 5-output layer the MVE kernels; all bit-exact on qemu-m55."""
    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w1"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
             helper.make_node("Conv", ["b", "w2"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=6),
             helper.make_node("Conv", ["c", "w3"], ["d"], kernel_shape=[1, 1], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["d", "w4"], ["y"], kernel_shape=[1, 1], strides=[2, 2])]
    inits = {"w0": w(6, 3, 3, 3), "w1": w(6, 3, 3, 3), "w2": w(12, 1, 3, 3), "w3": w(20, 12, 1, 1),
             "w4": w(5, 20, 1, 1)}
    path = save(make_model(nodes, [1, 3, 9, 11], ["y"], inits), tmp_path, "fallback.onnx")
    c = compile_model(path, CompileOptions(board=BOARD, calib_samples=4, progress=False, patch=OFF))
    got = [(lay.op, lay.kernel, lay.kernel_reason) for lay in c.report.layers]
    assert got == [("conv2d", "conv_mve", None),
                   ("conv2d", "conv", "2 groups (grouped convolution runs the portable kernel)"),
                   ("depthwise_conv2d", "depthwise_conv", "channel multiplier 2"),
                   ("conv2d", "conv_mve", None),
                   ("conv2d", "conv_1x1_mve", None)], got
    assert 0 < c.report.fast_mac_share < 1
    outs, sim = _run(c, tmp_path / "fw")
    _assert_bit_exact(outs, sim, "fallback model")


def test_the_safety_check_reads_the_mve_kernels_contracts():
    """The plan safety check sees the MVE calls' own facts: laid-out weights and folded biases read from the call's
    arrays, scratch written; too little scratch, a grouped conv or a 1x1 call with a tap outside its input is a
    contract violation."""
    from mcucompile.ops import op_def
    from mcucompile.ops.kernel import KernelArgs, KernelTarget
    from mcucompile.ops.spatial import as_nhwc
    from mcucompile.schedule.safety import plan_problems, plan_steps

    c = _compile("vww_patched")
    target = KernelTarget(c.board, "auto")
    assert plan_problems(c.graph, c.plan, c.patch, target) == []
    roles = {(a.role, a.pointer.split(":")[0]) for st in plan_steps(c.graph, c.plan, c.patch, target)
             for a in st.accesses}
    assert {("weights", "array"), ("bias", "array")} <= roles and any(r == "scratch" for r, _ in roles)

    def args_of(node, call, pads, scratch_bytes, **ctx):
        dims = as_nhwc(tuple(c.graph.tensors[node.inputs[0]].shape))
        out = as_nhwc(tuple(c.graph.tensors[node.outputs[0]].shape))
        return KernelArgs(node, c.graph, {**call.context, **ctx}, tuple(node.inputs), node.outputs[0], (dims,), out,
                          pads, False, "s", scratch_bytes)

    calls = [(n, op_def(n).kernel(n, c.graph, target)) for n in c.graph.nodes if n.op in WEIGHTED]
    general = next((n, k) for n, k in calls if k.name == "conv_mve")
    node, call = general
    assert call.kernel.fast and call.scratch_bytes > 0
    pads = node.attrs.window.pads[:2]
    assert call.kernel.access(args_of(node, call, pads, call.scratch_bytes))[1] == []
    assert any("scratch" in v for v in call.kernel.access(args_of(node, call, pads, call.scratch_bytes - 1))[1])
    assert any("groups" in v for v in call.kernel.access(args_of(node, call, pads, call.scratch_bytes, groups=2))[1])
    node, call = next((n, k) for n, k in calls if k.name == "conv_1x1_mve")
    assert call.scratch_bytes == 0
    assert any("outside" in v for v in call.kernel.access(args_of(node, call, (1, 0), 0))[1])
    node, call = next((n, k) for n, k in calls if k.name == "depthwise_conv_3x3_mve")
    pads = node.attrs.window.pads[:2]
    assert call.kernel.access(args_of(node, call, pads, call.scratch_bytes))[1] == []
    assert any("scratch" in v for v in call.kernel.access(args_of(node, call, pads, call.scratch_bytes - 1))[1])
    left = np.array(call.context["shift"]).copy()
    left[0] = 1
    assert any("left shift" in v for v in call.kernel.access(args_of(node, call, pads, call.scratch_bytes,
                                                                     shift=left))[1])
    assert any(k.name == "fully_connected_mve" for _, k in calls)


def test_portable_policy_and_lean_plans_on_m55():
    """``--kernels portable`` forces the reference on qemu-m55 too; a lean target (an SRAM budget the scratch
    breaks, --optimize memory) keeps the scratch-free MVE kernels (1x1, FC) and drops the im2col one, saying why."""
    from mcucompile.ops import op_def
    from mcucompile.ops.kernel import KernelTarget

    c = _compile("vww")
    lean = KernelTarget(c.board, "auto", lean=True)
    portable = KernelTarget(c.board, "portable")
    names = {}
    for n in c.graph.nodes:
        if n.op in WEIGHTED:
            call = op_def(n).kernel(n, c.graph, lean)
            names.setdefault(call.name, set()).add(call.reason)
            assert op_def(n).kernel(n, c.graph, portable).reason == "--kernels portable"
    assert names["conv_1x1_mve"] == {None} and names["fully_connected_mve"] == {None}
    assert names["depthwise_conv_3x3_mve"] == {None}
    assert all("scratch-free kernels" in r for r in names["conv"]), names


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_adds_on_mve_and_a_broadcast_add_falls_back(rounding, tmp_path):
    """A residual add (same shapes, a 5 x 7 x 3 map: 105 elements, a 1-lane tail) runs mcu_add_mve_s8; an add
    broadcasting a pooled map over H and W runs mcu_add_s8 with its reason; bit-exact on qemu-m55 in both
    roundings."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["a", "x"], ["b"]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("GlobalAveragePool", ["br"], ["g"]),
             helper.make_node("Add", ["br", "g"], ["y"])]
    inits = {"w0": rng.normal(0, 0.5, (3, 3, 1, 1)).astype(np.float32)}
    path = save(make_model(nodes, [1, 3, 5, 7], ["y"], inits), tmp_path, "adds.onnx")
    c = compile_model(path, CompileOptions(board=BOARD, calib_samples=4, progress=False, patch=OFF, rounding=rounding))
    got = [(lay.op, lay.kernel, lay.kernel_reason) for lay in c.report.layers]
    assert got[:2] == [("conv2d", "conv_1x1_mve", None), ("add", "add_mve", None)], got
    assert got[-1:] == [("add", "add", "an operand is broadcast (mcu_add_mve_s8 takes equal shapes)")], got
    outs, sim = _run(c, tmp_path / "fw", samples=4)
    _assert_bit_exact(outs, sim, f"adds, {rounding} rounding")


def test_depthwise_layers_take_the_3x3_kernel_or_the_general_one(tmp_path):
    """A 3x3 depthwise layer without left shifts calls mcu_dwconv_3x3_mve_s8 (13 channels: a predicated tail), a
    5x5 one mcu_dwconv_mve_s8, and so does a 3x3 layer with a left shift; bit-exact on qemu-m55."""
    import dataclasses

    from mcucompile.ops import op_def
    from mcucompile.ops.kernel import KernelTarget

    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=13),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w1"], ["y"], kernel_shape=[5, 5], pads=[2, 2, 2, 2], group=13)]
    inits = {"w0": rng.normal(0, 0.5, (13, 1, 3, 3)).astype(np.float32),
             "w1": rng.normal(0, 0.5, (13, 1, 5, 5)).astype(np.float32)}
    path = save(make_model(nodes, [1, 13, 7, 9], ["y"], inits), tmp_path, "dw.onnx")
    c = compile_model(path, CompileOptions(board=BOARD, calib_samples=4, progress=False, patch=OFF))
    got = [(lay.op, lay.kernel, lay.kernel_reason) for lay in c.report.layers]
    assert got == [("depthwise_conv2d", "depthwise_conv_3x3_mve", None),
                   ("depthwise_conv2d", "depthwise_conv_mve", None)], got
    outs, sim = _run(c, tmp_path / "fw", samples=3)
    _assert_bit_exact(outs, sim, "depthwise 3x3 and 5x5")
    node = next(n for n in c.graph.nodes if n.op == "depthwise_conv2d")
    shift = np.array(node.params.shift).copy()
    shift[3] = 2
    left = node.replace(params=dataclasses.replace(node.params, shift=shift))
    assert op_def(left).kernel(left, c.graph, KernelTarget(c.board, "auto")).name == "depthwise_conv_mve"
