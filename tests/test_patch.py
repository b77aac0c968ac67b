"""Patch-based inference (MCUNetV2): patched execution equals layer-by-layer execution byte for byte,
the patched memory plan is sound, and the search picks the fastest plan that fits (--optimize speed,
the default) or the lowest peak (--optimize memory), and says what the other choice would give."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import REPO, SHARED_MODELS, make_model, save
from mcucompile.api import CompileOptions, PatchOptions, compile_model, quantize_input, verify_board
from mcucompile.errors import UserError
from mcucompile.memory.planner import plan_memory
from mcucompile.patch.memory import plan_memory_patched
from mcucompile.patch import candidate_splits, plan_patches
from mcucompile.patch.cost import estimate_instructions
from mcucompile.patch.execute import run_int_patched
from mcucompile.patch.search import choose_patching
from mcucompile.report import plan_choice_report
from mcucompile.report.summary import plan_choice_line
from mcucompile.quant.simulate import run_int

sys.path.insert(0, str(REPO / "models" / "mbv2"))
from make_mbv2 import build as build_mbv2  # noqa: E402

VWW = SHARED_MODELS / "vww_mbv1_025_float.onnx"
RESNET8 = SHARED_MODELS / "resnet8_float.onnx"


def _layerwise(path, **kw):
    return compile_model(path, CompileOptions(board="host", progress=False, **kw, patch=PatchOptions(mode="off")))


def _synthetic(tmp_path, kind: str):
    """Small nets with stride 2, odd sizes, padding, depthwise chains and residual adds."""
    rng = np.random.default_rng(hash(kind) % 1000)

    def w(*s):
        return (rng.standard_normal(s) * 0.4).astype(np.float32)

    if kind == "odd_stride2_dw":
        nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["a"], ["ar"]),
                 helper.make_node("Conv", ["ar", "w1"], ["b"], kernel_shape=[3, 3], group=6, pads=[1, 1, 1, 1]),
                 helper.make_node("Conv", ["b", "w2"], ["c"], kernel_shape=[5, 5], group=6, strides=[2, 2], pads=[2, 1, 2, 1]),
                 helper.make_node("Conv", ["c", "w3"], ["d"], kernel_shape=[1, 1]),
                 helper.make_node("MaxPool", ["d"], ["e"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                 helper.make_node("GlobalAveragePool", ["e"], ["y"])]
        inits = {"w0": w(6, 3, 3, 3), "w1": w(6, 1, 3, 3), "w2": w(6, 1, 5, 5), "w3": w(8, 6, 1, 1)}
        shape = [1, 3, 37, 29]
    elif kind == "residual":
        nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["a"], ["ar"]),
                 helper.make_node("Conv", ["ar", "w1"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["b"], ["br"]),
                 helper.make_node("Conv", ["br", "w2"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 helper.make_node("Add", ["ar", "c"], ["s"]),
                 helper.make_node("Conv", ["s", "w3"], ["d"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
                 helper.make_node("HardSwish", ["d"], ["e"]),
                 helper.make_node("Conv", ["e", "w4"], ["f"], kernel_shape=[1, 1]),
                 helper.make_node("Add", ["e", "f"], ["g"]),
                 helper.make_node("AveragePool", ["g"], ["h"], kernel_shape=[2, 2], strides=[2, 2]),
                 helper.make_node("Flatten", ["h"], ["y"])]
        inits = {"w0": w(8, 3, 3, 3), "w1": w(8, 8, 3, 3), "w2": w(8, 8, 3, 3), "w3": w(12, 8, 3, 3), "w4": w(12, 12, 1, 1)}
        shape = [1, 3, 23, 31]
    else:  # concat of two branches after a pad
        nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 helper.make_node("Conv", ["a", "w1"], ["b1"], kernel_shape=[1, 1]),
                 helper.make_node("Conv", ["a", "w2"], ["b2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 helper.make_node("Concat", ["b1", "b2"], ["c"], axis=1),
                 helper.make_node("Sigmoid", ["c"], ["d"]),
                 helper.make_node("Conv", ["d", "w3"], ["e"], kernel_shape=[3, 3], strides=[2, 2]),
                 helper.make_node("GlobalMaxPool", ["e"], ["y"])]
        inits = {"w0": w(4, 2, 3, 3), "w1": w(3, 4, 1, 1), "w2": w(5, 4, 3, 3), "w3": w(6, 8, 3, 3)}
        shape = [1, 2, 19, 17]
    p = save(make_model(nodes, shape, ["y"], inits, opset=14), tmp_path, f"{kind}.onnx")
    return p


@pytest.fixture(scope="module")
def mbv2_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("mbv2") / "mbv2.onnx"
    onnx.save(build_mbv2(128, 0.35), str(p))
    return p


def _sim_equal(compiled, splits=None, grids=range(2, 9), samples=2):
    g = compiled.graph
    x_q = quantize_input(compiled, compiled.calib[:samples])
    refs = [run_int(g, {g.inputs[0]: x}) for x in x_q]
    ks = splits or candidate_splits(g)
    checked = 0
    for k in ks:
        for n in grids:
            plan = plan_patches(g, k, n)
            for x, ref in zip(x_q, refs):
                out = run_int_patched(g, plan, {g.inputs[0]: x})
                for o in g.outputs:
                    assert np.array_equal(out[o], ref[o]), f"split {k} grid {n}: patched differs"
            checked += 1
    return checked


def test_patched_equals_layerwise_in_simulator_vww():
    c = _layerwise(VWW)
    ks = candidate_splits(c.graph)
    assert _sim_equal(c, [ks[0], ks[1], ks[3], ks[7], ks[11]]) == 35


def test_patched_equals_layerwise_in_simulator_resnet8():
    c = _layerwise(RESNET8)
    assert candidate_splits(c.graph) == [1, 4, 8, 12]
    assert _sim_equal(c, [1, 4, 8]) == 21


@pytest.mark.parametrize("kind", ["odd_stride2_dw", "residual", "concat"])
def test_patched_equals_layerwise_synthetic(kind, tmp_path):
    c = _layerwise(_synthetic(tmp_path, kind))
    assert len(candidate_splits(c.graph)) >= 3
    assert _sim_equal(c, samples=3) >= 10


def _patched_c_on_qemu(path, tmp_path, board="qemu-m7", **patch):
    c = compile_model(path, CompileOptions(board=board, progress=False, patch=PatchOptions(**patch)))
    assert c.patch is not None
    res = verify_board(c, c.calib[:2], out_dir=tmp_path / "fw")
    assert res.bit_exact, res.format()
    return c


@pytest.mark.parametrize("split,grid", [(2, 2), (4, 3), (8, 5), (12, 8)])
def test_patched_c_on_qemu_vww(split, grid, tmp_path):
    _patched_c_on_qemu(VWW, tmp_path, mode="forced", split=split, patches=grid)


@pytest.mark.parametrize("split,grid,by_patch", [(4, 2, False), (8, 4, True), (8, 7, False)])
def test_patched_c_on_qemu_resnet8(split, grid, by_patch, tmp_path):
    c = _patched_c_on_qemu(RESNET8, tmp_path, mode="forced", split=split, patches=grid, input_by_patch=by_patch)
    assert bool(c.patch.crops), "the residual add reads a cropped copy"


@pytest.mark.parametrize("kind", ["odd_stride2_dw", "residual", "concat"])
def test_patched_c_on_qemu_synthetic(kind, tmp_path):
    path = _synthetic(tmp_path, kind)
    g = _layerwise(path).graph
    for k, n in [(candidate_splits(g)[1], 3), (candidate_splits(g)[-1], 2)]:
        _patched_c_on_qemu(path, tmp_path / f"{k}_{n}", mode="forced", split=k, patches=n, input_by_patch=(n == 2))


def _check_plan_sound(c):
    plan = c.plan
    for i, a in enumerate(plan.buffers):
        for b in plan.buffers[i + 1 :]:
            if not (a.last < b.first or b.last < a.first):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, f"{a} overlaps {b}"
    header = c.sources.files["include/model.h"]
    assert f"#define MODEL_ARENA_SIZE {plan.arena_size}\n" in header
    assert plan.arena_size == c.report.peak_sram_bytes
    assert plan.arena_size >= max(plan.live_bytes())


@pytest.mark.parametrize("path_kind", ["vww", "resnet8", "mbv2"])
def test_patched_memory_plan_is_sound_and_lower(path_kind, mbv2_path):
    path = {"vww": VWW, "resnet8": RESNET8, "mbv2": mbv2_path}[path_kind]
    c = compile_model(path, CompileOptions(board="host", progress=False, patch=PatchOptions(optimize="memory")))
    assert c.patch is not None
    _check_plan_sound(c)
    rep = c.report
    assert rep.peak_sram_bytes < rep.peak_sram_layerwise_bytes
    assert len(rep.memory_profile.patched) > 0 and len(rep.memory_profile.layerwise) > 0
    # the search result is at least as good as every (split, grid) it tried, and equals forcing it
    tried = rep.patch_candidates
    assert rep.peak_sram_bytes == min(t.peak for t in tried)
    best = rep.patch_plan
    forced = compile_model(path, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="forced", optimize="memory", split=best.stage_layers, patches=best.grid)))
    assert forced.report.peak_sram_bytes == rep.peak_sram_bytes
    for t in tried[:: max(1, len(tried) // 6)]:
        plan = plan_patches(c.graph, t.stage_len, t.grid)
        assert plan_memory_patched(c.graph, plan).arena_size == t.peak >= rep.peak_sram_bytes


def test_overhead_cap_is_respected():
    c = compile_model(VWW, CompileOptions(board="host", progress=False, patch=PatchOptions(max_overhead=0.05, optimize="memory")))
    pp = c.report.patch_plan
    assert pp is None or pp.overhead <= 0.05
    assert all(t.overhead <= 0.05 for t in c.report.patch_candidates)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True)


def test_vww_fits_40k_by_patching_and_verifies_on_qemu_m4(tmp_path):
    res = _cli(VWW, "--board", "nucleo-f446re", "--sram-limit", "40000", "-o", tmp_path / "out", "--plot", tmp_path / "mem.png")
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["peak_sram_bytes"] <= 40000 < rep["peak_sram_layerwise_bytes"]
    assert "layer by layer it would be" in res.stdout
    assert (tmp_path / "mem.png").stat().st_size > 5000
    layerwise = _cli(VWW, "--board", "nucleo-f446re", "--sram-limit", "40000", "--no-patch", "-o", tmp_path / "lw")
    assert layerwise.returncode == 2 and "SRAM: needs 64,512 B layer by layer" in layerwise.stderr
    res = _cli("verify", VWW, "--board", "qemu-m4", "--sram-limit", "40000", "-n", "2")
    assert res.returncode == 0 and "bit-exact" in res.stdout, res.stdout + res.stderr


def test_cannot_fit_even_patched_says_best_peak(tmp_path):
    res = _cli(VWW, "--board", "nucleo-f446re", "--sram-limit", "12000", "-o", tmp_path / "out")
    assert res.returncode == 2
    assert "even patched" in res.stderr and "the --sram-limit of 12,000 B" in res.stderr
    assert not (tmp_path / "out").exists()


def test_bad_split_is_a_clear_error(tmp_path):
    res = _cli(RESNET8, "--split", "3", "--patches", "2", "-o", tmp_path / "out")
    assert res.returncode == 2 and "--split 3 is not a valid split point; valid: [1, 4, 8, 12]" in res.stderr


# --optimize: speed (the default) takes the fastest plan that fits, memory the lowest peak

def test_speed_default_runs_layer_by_layer_when_it_fits():
    """Person-detect-like: float VWW fits a 320 KB board whole, so the default does not patch it."""
    c = compile_model(VWW, CompileOptions(board="nucleo-f746zg", progress=False))
    assert c.patch is None
    assert c.report.peak_sram_bytes == c.report.peak_sram_layerwise_bytes == 64_512
    choice = choose_patching(c.graph, 327_680)
    assert choice.plan is None and choice.optimize == "speed" and choice.chosen.fits
    assert choice.chosen.instructions == choice.layerwise_instructions == estimate_instructions(c.graph).total
    alt = choice.alternative  # what --optimize memory would take
    assert alt.grid and alt.fits and alt.peak < choice.chosen.peak and alt.instructions > choice.chosen.instructions


@pytest.mark.parametrize("path", [VWW, RESNET8])
def test_speed_below_the_layerwise_peak_picks_the_fastest_plan_that_fits(path):
    g = _layerwise(path).graph
    layerwise = plan_memory(g).arena_size
    lowest = choose_patching(g, layerwise - 1, optimize="memory")
    budget = (lowest.chosen.peak + layerwise) // 2
    choice = choose_patching(g, budget)
    assert choice.plan is not None and choice.arena.arena_size == choice.chosen.peak <= budget < layerwise
    fitting = [c for c in choice.tried if c.peak <= budget]
    assert len(fitting) >= 2
    fastest = min(fitting, key=lambda c: (c.instructions, c.peak, c.overhead))
    assert (choice.plan.stage_len, choice.plan.grid) == (fastest.stage_len, fastest.grid)
    assert choice.chosen.instructions == fastest.instructions == estimate_instructions(g, choice.plan).total
    assert choice.alternative == lowest.chosen  # what --optimize memory takes
    assert choice.chosen.instructions <= lowest.chosen.instructions


def test_speed_is_much_faster_than_the_lowest_peak_when_both_fit():
    """ResNet-8's lowest-peak plan recomputes most of the model; between that peak and the layer-by-layer
    peak a cheaper plan fits."""
    g = _layerwise(RESNET8).graph
    lowest = choose_patching(g, 1 << 30, optimize="memory").chosen
    choice = choose_patching(g, lowest.peak + (plan_memory(g).arena_size - lowest.peak) // 2)
    assert choice.chosen.instructions < 0.6 * lowest.instructions


@pytest.mark.parametrize("path_kind", ["vww", "resnet8", "mbv2"])
def test_memory_reproduces_the_lowest_peak_choice(path_kind, mbv2_path):
    path = {"vww": VWW, "resnet8": RESNET8, "mbv2": mbv2_path}[path_kind]
    g = _layerwise(path).graph
    choice = choose_patching(g, 1 << 30, optimize="memory")
    best = min(choice.tried, key=lambda c: (c.peak, c.overhead))  # the rule before --optimize existed
    assert best.peak < choice.layerwise_peak
    assert (choice.plan.stage_len, choice.plan.grid, choice.arena.arena_size) == (best.stage_len, best.grid, best.peak)
    assert choice.alternative.layerwise and choice.alternative.fits  # speed: layer by layer fits


def test_nothing_fits_reports_the_lowest_peak_in_both_modes():
    g = _layerwise(VWW).graph
    for optimize in ("speed", "memory"):
        choice = choose_patching(g, 12_000, optimize=optimize)
        best = min(choice.tried, key=lambda c: (c.peak, c.overhead))
        assert (choice.plan.stage_len, choice.plan.grid) == (best.stage_len, best.grid)
        assert not choice.chosen.fits and choice.alternative == choice.chosen


def test_unknown_objective_is_a_user_error():
    g = _layerwise(VWW).graph
    with pytest.raises(UserError, match="use 'speed'.*or 'memory'"):
        choose_patching(g, 1 << 20, optimize="fast")


def test_summary_line_says_what_the_other_choice_gives():
    g = _layerwise(VWW).graph
    speed = plan_choice_report(choose_patching(g, 327_680))
    assert speed.optimize == "speed" and speed.chosen.estimated_instructions == speed.layerwise_instructions
    assert speed.alternative_optimize == "memory"
    assert plan_choice_line(speed) == ("optimized for speed: layer by layer, 64,512 B, ~74.7 M instr; --optimize memory: "
                                       "39,008 B (8x8 patches over 4 layers), ~85.1 M instr (+14%)")
    memory = plan_choice_report(choose_patching(g, 327_680, optimize="memory"))
    assert plan_choice_line(memory) == ("optimized for memory: 8x8 patches over 4 layers, 39,008 B, ~85.1 M instr; "
                                        "--optimize speed: 64,512 B (layer by layer), ~74.7 M instr (-12%)")
    same = plan_choice_report(choose_patching(g, 40_000))
    assert plan_choice_line(same).endswith("; --optimize memory would choose the same")
    forced = plan_choice_report(choose_patching(g, 327_680, "forced", 4, 8))
    assert forced.alternative is None
    assert plan_choice_line(forced) == ("forced plan: 8x8 patches over 4 layers, ~85.1 M instr; layer by layer "
                                        "~74.7 M instr (-12%)")
    assert plan_choice_line(plan_choice_report(choose_patching(g, 327_680, "off"))) == ""


def test_cli_default_and_optimize_memory_on_a_board_that_fits(tmp_path):
    res = _cli(VWW, "--board", "nucleo-f746zg", "-o", tmp_path / "speed")
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "speed" / "report.json").read_text())
    assert rep["patch_plan"] is None and rep["optimize"] == "speed"
    assert rep["plan_choice"]["alternative"]["peak_sram_bytes"] == 39_008
    assert "optimized for speed: layer by layer, 64,512 B" in res.stdout
    assert "layer by layer (the fastest plan that fits)" in res.stdout
    res = _cli(VWW, "--board", "nucleo-f746zg", "--optimize", "memory", "-o", tmp_path / "memory")
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "memory" / "report.json").read_text())
    assert rep["patch_plan"]["grid"] == 8 and rep["optimize"] == "memory"
    assert "--optimize speed: 64,512 B (layer by layer)" in res.stdout


def _summary(compiled, choice) -> str:
    from mcucompile.report import build_report, format_summary

    return format_summary(build_report(compiled.graph, choice.arena, compiled.board, "m.onnx", choice=choice))


def test_summary_says_why_it_runs_layer_by_layer():
    vww = _layerwise(VWW)
    g = vww.graph
    assert "layer by layer (the fastest plan that fits)" in _summary(vww, choose_patching(g, 1 << 20))
    capped = _summary(vww, choose_patching(g, 1 << 20, max_overhead=0.0, optimize="memory"))
    assert "layer by layer (no patch plan within --max-patch-overhead 0 lowers the peak)" in capped
    assert "layer by layer (patching off)" in _summary(vww, choose_patching(g, 1 << 20, "off"))
    ad = _layerwise(SHARED_MODELS / "ad_autoencoder_float.onnx")  # fully connected from its input on
    text = _summary(ad, choose_patching(ad.graph, 1 << 20))
    assert "layer by layer (the model has no split point for patching)" in text
    assert "optimized for speed: layer by layer" in text and "--optimize memory would choose the same" in text


def test_speed_with_the_input_by_patch_takes_the_fastest_patch_plan():
    """--input-by-patch means the input is never whole in SRAM: layer by layer does not qualify, even
    when it fits."""
    g = _layerwise(VWW).graph
    choice = choose_patching(g, 1 << 20, input_by_patch=True)
    assert choice.plan is not None and choice.plan.input_by_patch
    fastest = min(choice.tried, key=lambda c: (c.instructions, c.peak, c.overhead))
    assert (choice.plan.stage_len, choice.plan.grid) == (fastest.stage_len, fastest.grid)
    assert choice.chosen.instructions > choice.layerwise_instructions


def test_mnist_patches_through_its_input_reshape_and_flatten(tmp_path):
    """MNIST starts with a reshape that changes nothing (28x28x1 -> 28x28x1) and ends its feature extractor in a
    pooling that a flatten views for the classifier: the no-op reshape goes (so a stage can start at the input),
    and a stage that ends at the pooling keeps its output alive through the flatten's reader (the safety check
    refused this plan before). Its lowest-peak plan takes at most a third of the layer-by-layer peak, bit-exact on qemu-m4."""
    mnist, calib = REPO / "models" / "mnist" / "mnist_cnn.onnx", str(REPO / "models" / "mnist" / "mnist_calib_200.npz")
    layer = compile_model(mnist, CompileOptions(board="qemu-m4", calib=calib, progress=False,
                                                patch=PatchOptions(mode="off")))
    assert layer.graph.nodes[0].op != "reshape"
    g = layer.graph
    splits = candidate_splits(g)
    last = splits[-1]
    assert g.nodes[last].op == "reshape", "the last split ends right before the flatten"
    low = compile_model(mnist, CompileOptions(board="qemu-m4", calib=calib, progress=False,
                                              patch=PatchOptions(optimize="memory")))
    assert low.plan.arena_size * 3 <= layer.plan.arena_size
    for c in (low, compile_model(mnist, CompileOptions(board="qemu-m4", calib=calib, progress=False,
                                                       patch=PatchOptions(mode="forced", split=last, patches=3)))):
        res = verify_board(c, c.calib[:2], out_dir=tmp_path / f"fw{c.patch.stage_len}_{c.patch.grid}")
        assert res.bit_exact, res.format()



def _fixpoint_plan(g, k, n, input_by_patch=False):
    """plan_patches without its cache and with the regions back-propagated to a fixed point (no one-pass rule)."""
    from mcucompile.patch import planner

    stage = g.nodes[:k]
    plan = planner._plan_patches(g, k, n, input_by_patch)
    regions = tuple(planner._regions_for_patch(g, stage, plan.split, r[plan.split], ordered=False) for r in plan.regions)
    return plan, regions


@pytest.mark.parametrize("kind", ["odd_stride2_dw", "residual", "concat"])
def test_one_pass_regions_equal_the_fixed_point(kind, tmp_path):
    g = _layerwise(_synthetic(tmp_path, kind)).graph
    for k in candidate_splits(g):
        for n in (1, 2, 3, 5):
            plan, regions = _fixpoint_plan(g, k, n)
            assert plan.regions == regions, f"split {k} grid {n}"


def test_plan_cache_is_keyed_by_everything_a_plan_reads(tmp_path):
    """plan_patches memoizes per graph: a repeated call gives the same plan, and every argument and every change
    of the graph (another graph object, a tensor or node replaced in place) gives the plan computed afresh."""
    import dataclasses

    from mcucompile.patch import planner

    g = _layerwise(_synthetic(tmp_path, "residual")).graph
    k = candidate_splits(g)[-1]
    a = plan_patches(g, k, 3)
    assert plan_patches(g, k, 3) is a
    for args in ((k, 2, False), (k, 3, True), (candidate_splits(g)[0], 3, False)):
        p = plan_patches(g, *args)
        assert (p.stage_len, p.grid, p.input_by_patch) == args
        assert p == planner._plan_patches(g, *args)
    # the first conv's kernel widened: its input regions grow (another graph: its own plans); then a tensor replaced
    # in the graph's dict in place (nodes and tensors are immutable: the dict is what can change)
    first = g.nodes[0]
    win = first.attrs.window
    wide = first.replace(attrs=dataclasses.replace(first.attrs, window=dataclasses.replace(
        win, kernel=(win.kernel[0] + 2, win.kernel[1] + 2))))
    g2 = g.replace(nodes=(wide,) + g.nodes[1:])
    b = plan_patches(g2, k, 3)
    assert b == planner._plan_patches(g2, k, 3, False) and b.regions != a.regions
    assert plan_patches(g, k, 3) is a  # the first graph's plans stay its own
    t = g.tensors[g.inputs[0]]
    g.tensors[t.name] = dataclasses.replace(t)  # the same content, another object: the stamp misses
    calls = []
    real = planner._plan_patches
    try:
        planner._plan_patches = lambda *a_: calls.append(a_) or real(*a_)
        c = plan_patches(g, k, 3)
    finally:
        planner._plan_patches = real
    assert calls and c == a and c is not a
