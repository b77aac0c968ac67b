"""Resize (nearest, integer factors) and PRelu (per-channel slope): the two ops added through the op seam.

- TFLite ``PRELU`` and ``RESIZE_NEAREST_NEIGHBOR`` models, built in memory with the flatbuffer helpers of
  tests/data/tflite/make_op_models.py, run under the TFLite Micro interpreter: our simulator equals it
  on every int8 input value (PRELU) / every byte (resize), and the host C equals the simulator;
- attribute combinations that are not replication by an integer factor are refused with the reason
  (TFLite align_corners where it does not replicate; ONNX modes, coordinate transforms and aspect policies)
  by the op (``supports``), one line naming the node through the CLI;
- both ops inside a forced patch plan (conv -> prelu -> resize -> conv ...): the patched simulator equals
  layer by layer, and the host C equals the simulator;
- the patch rule of resize: output rows [t, b) need input rows [t // s, ceil(b / s)).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, check_float, make_model, save
from mcucompile.api import CompileOptions, PatchOptions, compile_model, simulate, verify_host
from mcucompile.errors import UnsupportedError
from mcucompile.frontend import load_onnx
from mcucompile.ir import Region, Tensor
from mcucompile.ops import op_def
from mcucompile.passes import canonicalize
from mcucompile.patch.execute import run_int_patched
from mcucompile.patch.memory import region_buffer
from mcucompile.quant.simulate import run_int
from mcucompile.schedule.safety import plan_problems
from onnx import helper

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

DATA = REPO / "tests" / "data" / "tflite"


def _builders():
    spec = importlib.util.spec_from_file_location("make_op_models", DATA / "make_op_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # tflite_micro's schema module only, no TensorFlow
    return mod


MB = _builders()
FB = MB.fb
I8 = FB.TensorType.INT8


def _tflm(data: bytes, x: np.ndarray) -> np.ndarray:
    interp = runtime.Interpreter.from_bytes(data, arena_size=256 * 1024)
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def _compile_bytes(data: bytes, tmp_path, name: str, **kw):
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(data)
    return compile_model(p, CompileOptions(board="host", calib_samples=4, progress=False, **kw)), p


# ------------------------------------------------------------------------------------------------
# TFLite PRELU
# ------------------------------------------------------------------------------------------------

def prelu_model(shape, q_in, q_alpha, alpha: np.ndarray, q_out) -> bytes:
    tensors = [MB.tensor("input", shape, I8, 1, q_in), MB.tensor("alpha", alpha.shape, I8, 2, q_alpha),
               MB.tensor("output", shape, I8, 3, q_out)]
    return MB.single_op_model(FB.BuiltinOperator.PRELU, tensors, [0], [2], [0, 1], [2],
                              {2: alpha.astype(np.int8).tobytes()})


def _all_values(shape, rng) -> np.ndarray:
    """Every int8 value in every channel (h * w = 256), each channel in its own order."""
    n, h, w, c = shape
    assert h * w == 256
    x = np.stack([rng.permutation(np.arange(-128, 128)) for _ in range(c)], axis=-1)
    return x.reshape(n, h, w, c).astype(np.int8)


# (input scale, zp), (alpha scale, zp), alpha ints (shape: per channel [1, 1, C], or a single [1]), (output scale, zp)
PRELU_CASES = [
    ((0.05, 3), (0.01, 0), np.array([[[25, -30, 100]]]), (0.04, -10)),  # negative slope, slope > 1
    ((0.1, -128), (0.002, -20), np.array([[[127, -128, 0, 60]]]), (0.08, 20)),  # extreme alphas and zero points
    ((0.02, 40), (0.5, 0), np.array([3]), (0.03, 0)),  # one slope for all channels (x1.5)
    ((0.3, 0), (1 / 256, -128), np.array([[[-128, 0, 64, 127, 1]]]), (0.9, 127)),  # identity multiplier < 1/3
]


@pytest.mark.parametrize("case", range(len(PRELU_CASES)))
def test_tflite_prelu_equals_tflm_on_every_input(case, tmp_path):
    qi, qa, alpha, qo = PRELU_CASES[case]
    c = alpha.shape[-1] if alpha.ndim == 3 else 3
    shape = (1, 16, 16, c)
    data = prelu_model(shape, MB.qparams(*qi), MB.qparams(*qa), alpha, MB.qparams(*qo))
    compiled, _ = _compile_bytes(data, tmp_path, f"prelu{case}")
    assert [n.op for n in compiled.graph.nodes] == ["prelu"]
    x = _all_values(shape, np.random.default_rng(case))
    ref = _tflm(data, x)
    ours = simulate(compiled, x[None])[0].reshape(ref.shape)
    bad = np.argwhere(ours != ref)
    assert bad.size == 0, f"{len(bad)} differ, first at {bad[0]}: x={x[tuple(bad[0])]} TFLM {ref[tuple(bad[0])]} ours {ours[tuple(bad[0])]}"
    assert len(np.unique(ref)) > 40  # the case exercises the op, not a constant
    if case in (0, 2):
        res = verify_host(compiled, compiled.calib[:3], build_dir=tmp_path / "host")
        assert res.bit_exact and res.golden["tflite-micro"] == 0, res.format()


def test_tflite_prelu_alpha_over_hw_refused(tmp_path):
    alpha = np.arange(16 * 16 * 2).reshape(16, 16, 2) % 100  # Keras PReLU without shared_axes
    data = prelu_model((1, 16, 16, 2), MB.qparams(0.05, 0), MB.qparams(0.01, 0), alpha, MB.qparams(0.05, 0))
    with pytest.raises(UnsupportedError, match=r"alpha varies along axes \[1, 2, 3\].*shared_axes"):
        _compile_bytes(data, tmp_path, "prelu_hw")


# ------------------------------------------------------------------------------------------------
# TFLite RESIZE_NEAREST_NEIGHBOR
# ------------------------------------------------------------------------------------------------

def resize_model(shape, size, q_in, q_out, align_corners=False, half_pixel_centers=False) -> bytes:
    n, _, _, c = shape
    tensors = [MB.tensor("input", shape, I8, 1, q_in), MB.tensor("size", (2,), FB.TensorType.INT32, 2),
               MB.tensor("output", (n, size[0], size[1], c), I8, 3, q_out)]
    opts = FB.ResizeNearestNeighborOptionsT()
    opts.alignCorners = align_corners
    opts.halfPixelCenters = half_pixel_centers
    return MB.single_op_model(FB.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR, tensors, [0], [2], [0, 1], [2],
                              {2: np.array(size, np.int32).tobytes()}, FB.BuiltinOptions.ResizeNearestNeighborOptions,
                              opts)


@pytest.mark.parametrize("shape,size,align,half", [
    ((1, 5, 7, 3), (10, 21), False, False),
    ((1, 4, 3, 8), (12, 3), False, True),  # half-pixel centres at an integer scale still replicate
    ((1, 2, 3, 2), (4, 6), True, False),  # align_corners at x2 replicates (see the refusal below for x3)
    ((1, 6, 6, 1), (36, 6), False, False),
])
def test_tflite_resize_nearest_equals_tflm(shape, size, align, half, tmp_path):
    q = MB.qparams(0.07, -9)
    data = resize_model(shape, size, q, q, align, half)
    compiled, _ = _compile_bytes(data, tmp_path, "resize")
    assert [n.op for n in compiled.graph.nodes] == ["resize_nearest"]
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = rng.integers(-128, 128, shape).astype(np.int8)
        ref = _tflm(data, x)
        np.testing.assert_array_equal(simulate(compiled, x[None])[0].reshape(ref.shape), ref)
    res = verify_host(compiled, compiled.calib[:2], build_dir=tmp_path / "host")
    assert res.bit_exact and res.golden["tflite-micro"] == 0, res.format()


@pytest.mark.parametrize("shape,size,align,half,why", [
    ((1, 3, 3, 2), (9, 9), True, False, r"along H \(x3\) output 2 reads input 1, not 0"),
    ((1, 4, 4, 2), (6, 8), False, False, r"resizes H from 4 to 6, not by an integer factor"),
    ((1, 4, 4, 2), (2, 4), False, False, r"resizes H from 4 to 2"),
])
def test_tflite_resize_not_replication_refused(shape, size, align, half, why, tmp_path):
    q = MB.qparams(0.07, -9)
    with pytest.raises(UnsupportedError, match=rf"RESIZE_NEAREST_NEIGHBOR .*align_corners={align}.*{why}"):
        _compile_bytes(resize_model(shape, size, q, q, align, half), tmp_path, "bad_resize")


def test_tflite_resize_needs_equal_params(tmp_path):
    data = resize_model((1, 2, 2, 1), (4, 4), MB.qparams(0.07, -9), MB.qparams(0.05, -9))
    with pytest.raises(Exception, match="nearest resize copies bytes, so both must be equal"):
        _compile_bytes(data, tmp_path, "resize_q")


# ------------------------------------------------------------------------------------------------
# ONNX refusals and accepted modes
# ------------------------------------------------------------------------------------------------

def _resize_onnx(tmp_path, opset=13, scales=(1, 1, 2, 2), sizes=None, op="Resize", **attrs):
    stem = helper.make_node("Conv", ["x", "w0"], ["s"], kernel_shape=[1, 1])
    inits = {"w0": np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)}
    if op == "Upsample":
        inits["scales"] = np.array(scales, np.float32)
        node = helper.make_node("Upsample", ["s", "scales"], ["y"], **attrs)
    elif sizes is not None:
        inits["sizes"] = np.array(sizes, np.int64)
        node = helper.make_node("Resize", ["s", "", "", "sizes"], ["y"], **attrs)
    else:
        inits["scales"] = np.array(scales, np.float32)
        node = helper.make_node("Resize", ["s", "", "scales"], ["y"], **attrs)
    return save(make_model([stem, node], [1, 3, 4, 5], ["y"], inits, opset=opset), tmp_path)


@pytest.mark.parametrize("attrs,why", [
    ({"mode": "linear"}, r"mode 'linear'"),
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "round_prefer_ceil"},
     r"along H \(x2\) output 1 reads input 1, not 0"),
    ({"mode": "nearest", "coordinate_transformation_mode": "align_corners", "scales": (1, 1, 3, 3)},
     r"align_corners.*along H \(x3\) output 2 reads input 1, not 0"),
    ({"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn", "nearest_mode": "ceil"},
     r"output 0 reads input 1, not 0"),
    ({"mode": "nearest", "scales": (1, 1, 1.5, 2)}, r"resizes H from 4 to 6, not by an integer factor"),
    ({"mode": "nearest", "scales": (1, 2, 2, 2)}, r"batch or channel axis"),
    # the policy's own output size (8 x 10: one scale, the smaller ratio), as ONNX declares it; then refused
    ({"mode": "nearest", "sizes": (8, 12), "axes": [2, 3], "opset": 18, "keep_aspect_ratio_policy": "not_larger"},
     r"^Resize node 'Resize_1': keep_aspect_ratio_policy other than 'stretch'"),
])
def test_onnx_resize_not_replication_refused(attrs, why, tmp_path):
    attrs = dict(attrs)
    scales = attrs.pop("scales", (1, 1, 2, 2))
    p = _resize_onnx(tmp_path, scales=scales, sizes=attrs.pop("sizes", None), opset=attrs.pop("opset", 13), **attrs)
    with pytest.raises(UnsupportedError, match=why):
        canonicalize(load_onnx(p))


@pytest.mark.parametrize("kw", [
    dict(mode="nearest"),  # half_pixel + round_prefer_floor (the defaults): replication at integer scales
    dict(mode="nearest", scales=(1, 1, 3, 2), coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    dict(mode="nearest", scales=(1, 1, 4, 3), coordinate_transformation_mode="pytorch_half_pixel"),
    dict(mode="nearest", sizes=(1, 3, 8, 15), coordinate_transformation_mode="tf_half_pixel_for_nn",
         nearest_mode="floor"),
    dict(op="Upsample", opset=9, mode="nearest", scales=(1, 1, 2, 3)),
])
def test_onnx_resize_replicating_modes_match_onnxruntime(kw, tmp_path):
    p = _resize_onnx(tmp_path, **kw)
    check_float(p, np.random.default_rng(3).standard_normal((1, 3, 4, 5)).astype(np.float32))


def test_onnx_prelu_slope_along_w_refused(tmp_path):
    nodes = [helper.make_node("PRelu", ["x", "slope"], ["y"])]
    p = save(make_model(nodes, [1, 3, 4, 5], ["y"], {"slope": np.linspace(0, 1, 5).astype(np.float32)}), tmp_path)
    with pytest.raises(UnsupportedError, match=r"slope alpha varies along axes \[2\] \(W\)"):
        canonicalize(load_onnx(p))


def test_onnx_refusals_through_the_cli(tmp_path):
    """What a user sees of the ops' refusals (``supports``): one line naming the node, its ONNX op and the
    reason, exit status 2."""
    resize = _resize_onnx(tmp_path, mode="linear")
    prelu = save(make_model([helper.make_node("PRelu", ["x", "slope"], ["y"])], [1, 3, 4, 5], ["y"],
                            {"slope": np.linspace(0, 1, 5).astype(np.float32)}), tmp_path, "prelu.onnx")
    for model, want in ((resize, "mcucompile: error: Resize node 'Resize_1': mode 'linear'"),
                        (prelu, "mcucompile: error: PRelu node 'PRelu_0': the slope alpha varies along axes [2] (W)")):
        res = subprocess.run([sys.executable, "-m", "mcucompile", str(model), "--board", "host", "-o",
                              str(tmp_path / "out")], capture_output=True, text=True)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith(want), res.stderr
        assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# patch-based inference
# ------------------------------------------------------------------------------------------------

def test_resize_patch_rule():
    class G:  # the rule reads only the input's shape
        tensors = {"x": type("T", (), {"shape": (1, 5, 7, 3)})()}

    from mcucompile.ir import Node
    from mcucompile.ops.resize import ResizeAttrs

    node = Node("r", "resize_nearest", ("x",), ("y",), ResizeAttrs((3, 2)))
    d = op_def(node)
    assert d.patch_input_region(node, G, Region(4, 3, 11, 14), "x") == Region(1, 1, 4, 7)
    assert d.patch_input_region(node, G, Region(0, 0, 15, 14), "x") == Region(0, 0, 5, 7)
    assert d.patch_local_pads(node, Region(1, 1, 4, 7), Region(4, 3, 11, 14)) == (-1, -1)


def _patch_model(tmp_path):
    """conv -> prelu (+ conv 3x3 of the same input, added: the prelu reads a cropped copy in a patch) ->
    resize x2 -> conv 3x3 -> prelu (one slope) -> resize x(1, 2) -> conv (stride 2) -> global pool."""
    rng = np.random.default_rng(5)
    r = lambda *s: (rng.standard_normal(s) * 0.4).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["a", "s1"], ["b"]),
        helper.make_node("Conv", ["a", "wb"], ["a2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "a2"], ["m"]),
        helper.make_node("Resize", ["m", "", "sc1"], ["c"], mode="nearest"),
        helper.make_node("Conv", ["c", "w2"], ["d"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["d", "s2"], ["e"]),
        helper.make_node("Resize", ["e", "", "sc2"], ["f"], mode="nearest", coordinate_transformation_mode="asymmetric",
                         nearest_mode="floor"),
        helper.make_node("Conv", ["f", "w3"], ["g"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["g"], ["y"]),
    ]
    inits = {"w1": r(6, 3, 3, 3), "s1": np.array([0.1, -0.2, 0.5, 1.3, 0.0, 0.25], np.float32).reshape(6, 1, 1),
             "wb": r(6, 6, 3, 3), "sc1": np.array([1, 1, 2, 2], np.float32), "w2": r(5, 6, 3, 3),
             "s2": np.array([0.3], np.float32), "sc2": np.array([1, 1, 1, 2], np.float32), "w3": r(4, 5, 3, 3)}
    model = make_model(nodes, [1, 3, 7, 6], ["y"], inits)
    return save(model, tmp_path)


@pytest.mark.parametrize("split,grid", [(5, 2), (8, 3), (7, 4)])
def test_prelu_and_resize_in_the_patched_stage(split, grid, tmp_path):
    p = _patch_model(tmp_path)
    check_float(p, np.random.default_rng(0).standard_normal((1, 3, 7, 6)).astype(np.float32))
    c = compile_model(p, CompileOptions(board="host", calib_samples=8, progress=False, patch=PatchOptions(mode="forced", split=split, patches=grid)))
    assert c.patch is not None and c.patch.stage_len == split
    stage_ops = [n.op for n in c.graph.nodes[:split]]
    assert "prelu" in stage_ops and "resize_nearest" in stage_ops
    # the stage really reads inside a block: some patch starts at an odd row or column of a resize output
    resized = [n.outputs[0] for n in c.graph.nodes[:split] if n.op == "resize_nearest"]
    assert any(reg[t].top % 2 or reg[t].left % 2 for reg in c.patch.regions for t in resized)
    # the first prelu's input is also read by a 3x3 conv (a halo): the prelu reads a cropped copy
    assert any(c.graph.nodes[j].op == "prelu" for j, _ in c.patch.crops)
    g = c.graph
    x_q = np.random.default_rng(1).integers(-128, 128, (3,) + tuple(g.tensors[g.inputs[0]].shape)).astype(np.int8)
    for x in x_q:
        ref = run_int(g, {g.inputs[0]: x})
        out = run_int_patched(g, c.patch, {g.inputs[0]: x})
        for o in g.outputs:
            np.testing.assert_array_equal(out[o], ref[o])
    res = verify_host(c, c.calib[:3], build_dir=tmp_path / "host")
    assert res.bit_exact, res.format()


def test_plan_safety_models_resize_and_prelu(tmp_path):
    """The plan memory-safety check knows both kernels' access patterns: the forced patch plan is safe, and
    a resize input region buffer too short for the rows it reads, or a slope constant shorter than the
    channels, is caught."""
    c = compile_model(_patch_model(tmp_path), CompileOptions(board="host", calib_samples=4, progress=False, patch=PatchOptions(mode="forced", split=8, patches=3)))
    g, plan, patch = c.graph, c.plan, c.patch
    assert plan_problems(g, plan, patch) == []
    rz = next(n for n in g.nodes[:8] if n.op == "resize_nearest")
    src = region_buffer(rz.inputs[0])
    buffers = tuple(dataclasses.replace(b, size=b.size - 8) if b.name == src else b for b in plan.buffers)
    problems = plan_problems(g, dataclasses.replace(plan, buffers=buffers), patch)
    assert any(re.search(rf"\(resize_nearest\): reads input .*outside its buffer '{re.escape(src)}'", p)
               for p in problems), "\n".join(problems)
    pr = next(n for n in g.nodes if n.op == "prelu" and g.tensors[n.inputs[1]].size > 1)
    s = g.tensors[pr.inputs[1]]
    short = Tensor(s.name, (s.size - 1,), s.dtype, s.data[:-1].copy(), s.quant)
    problems = plan_problems(g.replace(tensors={**g.tensors, s.name: short}), plan, patch)
    assert any("reads slopes bytes" in p or "slopes for" in p for p in problems), "\n".join(problems)


def test_other_bitwidths_refused_with_the_reason(tmp_path):
    """Both kernels are int8 (TFLite Micro's PRELU algorithm; resize copies int8 pixels): a 4-bit
    activation around them is refused, naming the op, not miscompiled."""
    from mcucompile.passes import canonicalize
    from mcucompile.quant.calibrate import calibrate
    from mcucompile.quant.quantize import quantize_graph

    p = _patch_model(tmp_path)
    g = canonicalize(load_onnx(p))
    ranges = calibrate(p, g, np.random.default_rng(0).standard_normal((4, 3, 7, 6)).astype(np.float32),
                       progress=False)
    quantize_graph(g, ranges)  # 8-bit: fine
    prelu = next(n for n in g.nodes if n.op == "prelu")
    with pytest.raises(UnsupportedError, match="4-bit.*PRELU"):
        quantize_graph(g, ranges, bits={prelu.outputs[0]: 4})
    resize = next(n for n in g.nodes if n.op == "resize_nearest")
    with pytest.raises(UnsupportedError, match="4-bit.*mcu_resize_nearest_s8"):
        quantize_graph(g, ranges, bits={resize.inputs[0]: 4})


def test_patched_prelu_and_resize_clean_under_sanitizers(tmp_path):
    """The generated patch loop calling both kernels (start offsets, cropped copies) under ASan + UBSan."""
    c = compile_model(_patch_model(tmp_path), CompileOptions(board="host", calib_samples=4, progress=False, patch=PatchOptions(mode="forced", split=8, patches=3)))
    res = verify_host(c, c.calib[:2], build_dir=tmp_path / "asan", sanitize=True)
    assert res.bit_exact, res.format()
