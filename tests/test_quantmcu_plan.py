"""QuantMCU through the compile pipeline (compiler/quantmcu/plan.py, the hook in api/compile.py): compile_model with
``CompileOptions(quantmcu=...)`` on the small patched CNN of tests/test_vdqs.py:

- the result is present and consistent (bits per map, the checked map 8-bit, BitOPs below 8-bit patching's, the
  sample split, the schedule and arena the generated code uses);
- the generated C on the host (ASan + UBSan) equals the simulator's ``run_schedule_int`` byte for byte;
- ``--quantmcu`` on a compile without a patch plan is a one-line ``UserError`` naming the cause and the fix; a
  non-QuantmcuOptions value is refused.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
from conftest import SHARED_MODELS
from mcucompile.api import (
    CompileOptions,
    PatchOptions,
    compile_model,
    host_runner_source,
    library_dir,
    quantize_input,
    write_library,
)
from mcucompile.errors import UserError
from mcucompile.quantmcu import QuantmcuOptions, check_problems
from mcucompile.quant.simulate import run_int
from mcucompile.schedule.schedule import run_schedule_int
from mcucompile.targets.host import build_host, run_host
from test_vdqs import STAGE, by_origin, small_net

FORCED = PatchOptions(mode="forced", split=STAGE, patches=3)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path, _ = small_net(tmp_path_factory)
    return path


def _compile(path, **kw):
    return compile_model(path, CompileOptions(board="host", progress=False, calib_samples=32, patch=FORCED,
                                              quantmcu=QuantmcuOptions(**kw)))


def test_result_present_and_consistent(model):
    c = _compile(model)
    r = c.quantmcu
    assert r is not None and c.schedule is r.schedule and c.plan is r.arena and c.patch is r.plan
    assert c.graph is r.schedule.graph and r.chain.graph is c.graph
    assert (r.calib_samples, r.holdout_samples) == (16, 16)
    assert r.plan.split == r.base_plan.split and r.plan.grid == r.base_plan.grid == 3
    names = [m.name for m in r.feature_maps]
    assert names[0] == c.graph.inputs[0] and names[-1] == r.plan.split
    checked = [m for m in r.feature_maps if m.checked]
    assert [m.name for m in checked] == [r.checked_map] and checked[0].bits == 8
    low = {m.name: m.bits for m in r.feature_maps if m.bits < 8}
    assert low == {m: b for m, b in r.chain.bits.items() if b < 8}
    assert low, "the small CNN keeps 35 dB with its maps c and d at 2 bits: the guard lets them go low"
    for m in r.feature_maps:
        assert len(m.scales) in (1, c.graph.tensors[m.name].shape[-1])
    assert r.bitops < r.bitops_8bit == r.bitops_8bit_own_plan
    assert r.bitops_model - r.bitops == pytest.approx(r.bitops_model_8bit - r.bitops_8bit)
    assert r.quality["sqnr"] >= 20.0 and 0.0 <= r.quality["agreement"] <= 1.0
    assert r.steps and r.search_seconds > 0 and 0 < r.outlier_patch_share < 1
    assert check_problems(r.schedule, r.arena) == []
    assert by_origin(c.graph, "b") in r.entropy_only
    # the pooled map p follows b: its bits and params (the max pool keeps its input's), said in a note
    b, p = by_origin(c.graph, "b"), by_origin(c.graph, "p")
    assert r.chain.follows == {p: b} and r.chain.bits[p] == r.chain.bits[b] < 8
    assert r.chain.quant[p] is r.chain.quant[b] and not any("refuse lower" in n for n in c.warnings)
    assert sum("map 'p' follows its pooled / padded input 'b'" in n for n in c.warnings) == 1


def test_report_json_with_every_map_at_8_bits(model):
    """A floor nothing reaches: every step backed off, every map at 8 bits, the outputs equal the 8-bit model's
    (SQNR +inf): still a valid result, and report.json serialises it."""
    c = _compile(model, floor=1000.0)
    r = c.quantmcu
    assert all(m.bits == 8 for m in r.feature_maps) and r.steps and not any(s.accepted for s in r.steps)
    assert r.quality == {"sqnr": float("inf"), "agreement": 1.0, "sqnr_low": float("inf"), "agreement_low": 1.0}
    assert r.bitops == pytest.approx(r.bitops_8bit)
    assert any("every feature map stays at 8 bits" in n for n in c.warnings)
    text = json.dumps(c.report.to_json_dict())
    assert '"quantmcu"' in text


def test_generated_c_equals_the_simulator_on_host(model, tmp_path):
    c = _compile(model, guard="off")  # every map it can lower at 2 bits
    r = c.quantmcu
    assert sorted(r.chain.bits.values()) == [2, 2, 2, 2, 8]  # a (checked) at 8; p (pooled) follows b
    g = c.graph
    rng = np.random.default_rng(4)
    shape = (4,) + tuple(g.tensors[g.inputs[0]].shape[1:])
    xs = np.concatenate([quantize_input(c, c.calib[-3:]).reshape((-1,) + shape[1:]),
                         rng.integers(-128, 128, shape).astype(np.int8)])
    sims, taken = [], []
    for x in xs:
        t: list[int] = []
        sims.append(run_schedule_int(c.schedule, {g.inputs[0]: x}, t)[g.outputs[0]].reshape(-1))
        taken.append(t)
    taken = np.array(taken)
    assert 0 < (taken == 0).sum() < taken.size, taken  # both chains ran
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    dev = run_host(exe, [xs], [g.tensors[g.outputs[0]].size])[0]
    assert np.array_equal(dev, np.stack(sims))
    calls = set(re.findall(r"status = (mcu_\w+)\(", c.sources.files["src/model.c"]))
    assert {"mcu_outlier_check_s8", "mcu_conv_a2w8_s8", "mcu_dwconv_a2w8_s8", "mcu_max_pool_packed_s8"} <= calls, calls


def test_sub_patches_given(model):
    """--qm-sub-patches 2: the outlier patches' 8-bit chain as 2 x 2 sub-patches in the loop, and in the BitOPs."""
    whole, sub = _compile(model, guard="off").quantmcu, _compile(model, guard="off", sub_patches=2).quantmcu
    assert (whole.sub_patches, sub.sub_patches) == (1, 2) and sub.schedule.loop.sub is not None
    assert whole.schedule.loop.sub is None and sub.chain.bits == whole.chain.bits
    assert sub.bitops > whole.bitops and sub.bitops_8bit == whole.bitops_8bit
    assert sub.arena.arena_size <= whole.arena.arena_size


def test_pre_quantized_model_takes_calib_for_quantmcu(tmp_path):
    """An int8 .tflite model keeps its own scales; with --quantmcu its --calib samples are QuantMCU's calibration and
    the compile's (``Compiled.calib``, what verify takes by default), not random int8 inputs."""
    path = SHARED_MODELS / "vww_mbv1_025_int8.tflite"
    if not path.exists():
        pytest.skip(f"the MLPerf Tiny models are not at {SHARED_MODELS}")
    x = np.random.default_rng(0).uniform(0, 1, (16, 96, 96, 3)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    c = compile_model(path, CompileOptions(board="host", progress=False, calib=str(tmp_path / "calib.npy"),
                                           patch=PatchOptions(mode="forced", split=4, patches=3),
                                           quantmcu=QuantmcuOptions(guard="off")))
    assert np.array_equal(c.calib, x) and (c.quantmcu.calib_samples, c.quantmcu.holdout_samples) == (8, 8)
    assert any("--calib used by QuantMCU only" in n for n in c.warnings)
    assert any(m.bits < 8 for m in c.quantmcu.feature_maps)


def test_quantmcu_under_a_budget_no_plan_reaches_names_the_budget():
    """KWS: no patch plan beats its 16,256 B layer by layer; under a smaller --sram-limit the refusal says the
    model does not fit that budget either way, not only that a plan could be forced."""
    path = SHARED_MODELS / "kws_dscnn_int8.tflite"
    if not path.exists():
        pytest.skip(f"the MLPerf Tiny models are not at {SHARED_MODELS}")
    with pytest.raises(UserError) as e:
        compile_model(path, CompileOptions(board="host", progress=False, sram_limit=10_000, calib_samples=8,
                                           quantmcu=QuantmcuOptions()))
    msg = str(e.value)
    assert "\n" not in msg and "16,256 B" in msg and "does not fit the 10,000 B budget" in msg, msg
    assert "fix: a larger --sram-limit" in msg and "--split/--patches" in msg


def test_quantmcu_without_a_patch_plan_is_one_line(model):
    with pytest.raises(UserError) as e:
        compile_model(model, CompileOptions(board="host", progress=False, calib_samples=8,
                                            quantmcu=QuantmcuOptions()))
    msg = str(e.value)
    assert "\n" not in msg and "fits layer by layer" in msg and "fix: give --sram-limit below" in msg
    assert "--split/--patches" in msg
    with pytest.raises(UserError, match=r"patching is off \(--no-patch\); fix: drop --no-patch"):
        compile_model(model, CompileOptions(board="host", progress=False, calib_samples=8,
                                            patch=PatchOptions(mode="off"), quantmcu=QuantmcuOptions()))


def test_quantmcu_option_type_is_checked():
    with pytest.raises(UserError, match="quantmcu: give a QuantmcuOptions"):
        CompileOptions(quantmcu={"guard": "sqnr"})


def test_joint_search_through_compile_takes_fewer_patches(tmp_path_factory, tmp_path):
    """compile_model with an SRAM limit: 8-bit patching needs a 4 x 4 grid; QuantMCU's joint search fits 2 x 2 in
    the same budget with 2-bit maps and the outlier patches as 2 x 2 sub-patches, takes it (the guard off: nothing
    to back off), says so and what it costs; the C equals the simulator on the host under the sanitizers."""
    from mcucompile.quantmcu import VdpcOptions
    from test_subpatches import _wide_net

    path = _wide_net(tmp_path_factory).model_path
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 0.2, (24, 3, 29, 27)).astype(np.float32)
    for s in range(0, 24, 3):  # a rare bright pixel: the check at the input flags its patch
        x[s, :, rng.integers(0, 29), rng.integers(0, 27)] = 1.0
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=x)

    def compile_(n=None, **kw):
        patch = PatchOptions(mode="forced", split=4, patches=n, input_by_patch=True) if n else PatchOptions(input_by_patch=True)
        return compile_model(path, CompileOptions(board="host", calib=str(calib), progress=False, patch=patch, **kw))

    budget = compile_(4).plan.arena_size
    assert compile_(3).plan.arena_size > budget
    eight = compile_(sram_limit=budget)
    assert eight.quantmcu is None and (eight.patch.stage_len, eight.patch.grid) == (4, 4)
    c = compile_(sram_limit=budget, quantmcu=QuantmcuOptions(vdpc=VdpcOptions("percentile", 99.9, "input"),
                                                              guard="off", bits=(8, 2)))
    r = c.quantmcu
    assert (r.base_plan.stage_len, r.base_plan.grid) == (4, 4)
    assert c.patch is r.plan and r.plan.grid < 4 and r.sub_patches > 1 and c.plan.arena_size <= budget
    assert r.bitops_8bit_own_plan == r.base_plan.macs_patched * 64 and r.bitops < r.bitops_8bit_own_plan
    assert any("joint search took" in n for n in r.notes) and any("joint search took" in n for n in c.warnings)
    # the cost model's view of both plans, in report.json too; the warning says when QuantMCU's is the slower
    assert r.expected_instructions > 0 and r.expected_instructions_8bit > 0
    slower = r.expected_instructions > 1.005 * r.expected_instructions_8bit
    assert slower == any("more instructions than 8-bit patching" in n for n in r.notes)
    g = c.graph
    xs = quantize_input(c, x[:6]).reshape((6,) + tuple(g.tensors[g.inputs[0]].shape[1:]))
    sims, taken = [], []
    for xi in xs:
        t: list[int] = []
        sims.append(run_schedule_int(c.schedule, {g.inputs[0]: xi}, t)[g.outputs[0]].reshape(-1))
        taken.append(t)
    assert 0 < (np.array(taken) == 0).sum() < np.array(taken).size, taken  # both chains ran
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    assert np.array_equal(run_host(exe, [xs], [g.tensors[g.outputs[0]].size])[0], np.stack(sims))


def test_quantmcu_fits_below_8bit_patchings_lowest_peak_with_scratch_free_kernels(model):
    """Below the lowest peak 8-bit patching reaches on an M7 (2,496 B with the scratch-free kernels), QuantMCU's
    joint search still fits 2-bit maps with sub-patches, but only without the DSP kernels' scratch: the compile
    retries with the scratch-free kernels for the layers whose scratch lies above the budget (all layers if that
    is not enough), as 8-bit patching does, and says so."""
    from mcucompile.quantmcu import VdpcOptions

    def compile_(**kw):
        return compile_model(model, CompileOptions(board="nucleo", progress=False, calib_samples=32, sram_limit=2450,
                                                   **kw))

    with pytest.raises(UserError, match="does not fit"):
        compile_()
    # threshold 254 (the rule's 255 at the uniform input never fires: the plan would drop the 8-bit chain and fit
    # without sub-patches, with the DSP kernels' scratch)
    c = compile_(quantmcu=QuantmcuOptions(vdpc=VdpcOptions(location="input", fixed_threshold=254), guard="off"))
    assert c.plan.arena_size <= 2450 and (c.target.lean or c.target.lean_layers) and c.quantmcu.sub_patches > 1
    dropped = compile_(quantmcu=QuantmcuOptions(vdpc=VdpcOptions(location="input"), guard="off"))
    assert dropped.quantmcu.vdpc.never_fires and dropped.plan.arena_size <= 2450
    assert not dropped.target.lean and not dropped.target.lean_layers
    assert any("scratch would take QuantMCU's peak SRAM" in w for w in c.warnings)
    assert any(w.startswith("8-bit patching does not fit the 2,450 B budget (its plan: ") and "QuantMCU's plan" in w
               for w in c.warnings), c.warnings
    assert any(w.startswith("8-bit patching does not fit the 2,450 B budget") for w in dropped.warnings)


def _run_both_ways(c, xs):
    """The simulator's outputs of ``xs`` and the chain each patch took; both chains must have run."""
    g = c.graph
    sims, taken = [], []
    for x in xs:
        t: list[int] = []
        sims.append(run_schedule_int(c.schedule, {g.inputs[0]: x}, t)[g.outputs[0]].reshape(-1))
        taken.append(t)
    taken = np.array(taken)
    assert 0 < (taken == 0).sum() < taken.size, taken  # both chains ran
    return np.stack(sims), taken


def _bright_pixel_calib(folder):
    """Dim inputs, a rare bright pixel in every third: the check at the input flags the patches that hold one."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 0.2, (24, 3, 20, 18)).astype(np.float32)
    for s in range(0, 24, 3):
        x[s, :, rng.integers(0, 20), rng.integers(0, 18)] = 1.0
    np.savez(folder / "calib.npz", x=x)
    return folder / "calib.npz", x


@pytest.mark.parametrize("board", ["host", "qemu-m4"])
def test_check_location_auto_lowers_the_first_map(model, board, tmp_path):
    """--qm-check-at auto: the place with the larger bound on the saving (here the input: the first map can then go
    low) is chosen before the search and said in a note; the first map is lowered, the result equals the check given
    at the input, and the generated C equals the simulator with both chains taken (host under ASan/UBSan; qemu-m4
    with the DSP check and packed kernels)."""
    from mcucompile.quantmcu import VdpcOptions

    if board != "host":
        for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} not installed")

    calib, x = _bright_pixel_calib(tmp_path)

    def compile_(location):
        return compile_model(model, CompileOptions(board=board, progress=False, calib=str(calib), patch=FORCED,
                                                   quantmcu=QuantmcuOptions(vdpc=VdpcOptions(location=location),
                                                                            guard="off")))

    c = compile_("auto")
    r, g = c.quantmcu, c.graph
    assert r.checked_map == g.inputs[0] and r.options.vdpc.location == "auto" and r.vdpc.options.location == "input"
    note = next(n for n in r.notes if "--qm-check-at auto checks the stage input" in n)
    first = g.nodes[0].outputs[0]
    assert r.chain.bits[first] < 8 and "checking the first map" in note
    explicit = compile_("input").quantmcu
    assert explicit.chain.bits == r.chain.bits and explicit.bitops == pytest.approx(r.bitops)
    assert r.bitops < compile_("first_map").quantmcu.bitops
    xs = quantize_input(c, x[:6]).reshape((6,) + tuple(g.tensors[g.inputs[0]].shape[1:]))
    sims, _ = _run_both_ways(c, xs)
    dev = _device_outputs(c, xs, board, tmp_path)
    if board != "host":
        assert "mcu_outlier_check_dsp_s8(" in c.sources.files["src/model.c"]
    assert np.array_equal(dev, sims)
    calls = set(re.findall(r"status = (mcu_\w+)\(", c.sources.files["src/model.c"]))
    assert any(re.fullmatch(r"mcu_conv(_dsp)?_a8w8_s8", k) for k in calls), calls  # the first conv writes low bits
    assert "mcu_max_pool_packed_s8" in calls and r.chain.bits[by_origin(g, "p")] < 8  # the pooled map too


def test_pooled_map_follows_its_lowered_input(model):
    """build_lowbit_chain: the max pool's output p takes its input b's bits and params when b goes low (not given, or
    given the same bits); p lower on its own, or at other bits than b, is still the pool's UserError."""
    from mcucompile.quantmcu.lowbit import build_lowbit_chain, lowbit_name
    from mcucompile.quantmcu.vdqs import split_calibration

    c = _compile(model, guard="off")
    r, g = c.quantmcu, c.graph
    cal, _ = split_calibration(quantize_input(c, c.calib), r.options.holdout)
    b, p, cc = (by_origin(g, n) for n in "bpc")

    def chain(bits):
        return build_lowbit_chain(g, r.base_plan, r.vdpc, bits, cal)

    for bits in ({b: 4}, {b: 4, p: 4}, {b: 2, p: 8}):
        ch = chain(bits)
        assert ch.follows == {p: b} and ch.bits[p] == ch.bits[b] == bits[b] and ch.quant[p] is ch.quant[b]
        pool = next(n for n in ch.nodes if n.op == "max_pool2d")
        assert (pool.inputs[0], pool.outputs[0]) == (lowbit_name(b, bits[b]), lowbit_name(p, bits[b]))
    assert chain({cc: 4}).follows == {} and chain({cc: 4}).bits[p] == 8
    for bits in ({p: 4}, {b: 4, p: 2}):
        with pytest.raises(UserError, match="keeps its input's params"):
            chain(bits)


@pytest.mark.parametrize("board", ["host", "qemu-m4"])
def test_check_that_cannot_fire_is_dropped(model, board, tmp_path):
    """A VDPC threshold at MAX_THRESHOLD (|q - zp| never exceeds it): the plan runs no check (none in the generated
    C), every patch runs the low-bit chain by a compile-time dispatch, a note says so, the map the check would
    read is lowered with the others (nothing reads it at 8 bits; the summary and report.json flag no checked
    map), the arena is no larger than the dispatching loop's at threshold 254, that loop equals the low-bit chain
    alone wherever its check lets every patch through, and the C equals the simulator (host under ASan/UBSan;
    qemu-m4)."""
    if board != "host":
        for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} not installed")
    from mcucompile.ops.outlier_check import MAX_THRESHOLD
    from mcucompile.quantmcu import VdpcOptions

    def compile_(t):
        return compile_model(model, CompileOptions(board=board, progress=False, calib_samples=32, patch=FORCED,
                                                   quantmcu=QuantmcuOptions(guard="off",
                                                                            vdpc=VdpcOptions(fixed_threshold=t))))

    c, dispatching = compile_(MAX_THRESHOLD), compile_(MAX_THRESHOLD - 1)
    r, loop = c.quantmcu, c.schedule.loop
    assert r.vdpc.never_fires and r.outlier_patch_share == 0.0 and r.sub_patches == 1
    assert not loop.runtime and loop.check is None and loop.dispatch.chain_of_patch == (1,) * loop.plan.patches
    from mcucompile.api.verify import chain_names
    assert chain_names(loop, True) == ("chain 0 (a copy of chain 1, not taken)",
                                       "chain 1 (low-bit, every patch: no check, it could not fire)")
    assert any(b < 8 for b in r.chain.bits.values())
    # the checked map goes low with the rest (guard off: VDQS lowers every map it may); with the check it stays 8
    assert r.chain.bits[r.vdpc.tensor] < 8 and not any(fm.checked for fm in r.feature_maps)
    d = dispatching.quantmcu
    assert d.chain.bits[d.vdpc.tensor] == 8 and [fm.name for fm in d.feature_maps if fm.checked] == [d.vdpc.tensor]
    from mcucompile.report.summary import quantmcu_lines
    lines = quantmcu_lines(c.report.quantmcu)
    assert "(checked)" not in lines[0] and lines[1].strip().startswith("no outlier check: it could not fire"), lines
    if board == "host":  # debug's note says every patch runs the low-bit chain (no per-patch choice on the device)
        from mcucompile.api.debug import debug_model
        assert any("every patch runs the low-bit chain (no outlier check" in n
                   for n in debug_model(c, c.calib[:2]).notes)
    assert any("the check is dropped, every patch runs the low-bit chain" in n for n in c.warnings), c.warnings
    assert not any(w.startswith("8-bit patching does not fit") for w in c.warnings)  # no budget: it fits
    src = c.sources.files["src/model.c"]
    assert "mcu_outlier_check" not in src and re.search(r"mcu_conv(_dsp)?_a2w8_s8\(", src)
    assert dispatching.schedule.loop.runtime and "mcu_outlier_check" in dispatching.sources.files["src/model.c"]
    assert c.plan.arena_size <= dispatching.plan.arena_size
    assert check_problems(c.schedule, c.plan) == []
    # BitOPs: every patch on the low-bit chain, against 8-bit patching's on the same plan
    assert r.bitops < r.bitops_8bit == dispatching.quantmcu.bitops_8bit
    g = c.graph
    rng = np.random.default_rng(6)
    shape = (3,) + tuple(g.tensors[g.inputs[0]].shape[1:])
    xs = np.concatenate([quantize_input(c, c.calib[-2:]).reshape((-1,) + shape[1:]),
                         rng.integers(-128, 128, shape).astype(np.int8)])
    sims = []
    for x in xs:
        t: list[int] = []
        sims.append(run_schedule_int(c.schedule, {g.inputs[0]: x}, t)[g.outputs[0]].reshape(-1))
        assert t == [1] * loop.plan.patches
    sims = np.stack(sims)
    # the dispatching loop computes what its low-bit chain alone computes (lowbit_only_schedule, as a dropped check
    # runs it) wherever its check lets every patch through; the 8-bit model differs
    from mcucompile.quantmcu.lowbit import lowbit_only_schedule
    alone, _ = lowbit_only_schedule(d.chain, dispatching.target)
    through = 0
    for x in xs:
        t = []
        z = run_schedule_int(dispatching.schedule, {g.inputs[0]: x}, t)[g.outputs[0]].reshape(-1)
        if t == [1] * loop.plan.patches:
            through += 1
            assert np.array_equal(z, run_schedule_int(alone, {g.inputs[0]: x})[g.outputs[0]].reshape(-1))
    assert through > 0
    eight = np.stack([run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in xs])
    assert not np.array_equal(sims, eight)  # the low-bit chain ran
    dev = _device_outputs(c, xs, board, tmp_path)
    assert np.array_equal(dev, sims)


def test_share_cap_raises_the_threshold_on_synthetic_data(model):
    """Synthetic (uniform) calibration puts the p99.9 value of the first map in 62% of the calibration patches:
    the default cap (50%) raises the threshold to the per-patch maxima's quantile that flags at most that share, a
    note says so and names --calib; an explicit --qm-outlier-param is taken literally (no cap), and an explicit
    cap applies to it too."""
    from mcucompile.quantmcu import VdpcOptions, plan_vdpc
    from mcucompile.quantmcu.vdpc import capped_threshold

    c = _compile(model)
    v = c.quantmcu.vdpc
    assert v.rule_threshold is not None and v.threshold > v.rule_threshold
    assert v.rule_share > 0.5 >= v.outlier_patch_share > 0.0
    m = v.stats.map(v.tensor)
    assert (m.patch_max > v.threshold - 1).mean() > 0.5  # the lowest such threshold
    assert capped_threshold(m, v.rule_threshold, 0.5) == v.threshold
    assert any(f"raised to {v.threshold}" in n and "over the 50% cap" in n for n in c.warnings), c.warnings
    assert c.quantmcu.options.vdpc.fixed_threshold is None  # the user's options as given
    cal = quantize_input(c, c.calib)[: c.quantmcu.calib_samples]
    literal = plan_vdpc(c.graph, c.patch, cal, VdpcOptions(parameter=99.9))
    assert literal.rule_threshold is None and literal.threshold == v.rule_threshold
    capped = plan_vdpc(c.graph, c.patch, cal, VdpcOptions(parameter=99.9, max_outlier_share=0.2))
    assert capped.threshold > v.threshold and capped.outlier_patch_share <= 0.2
    # synthetic calibration: the note and the refusal name --calib (the compile did not give one)
    assert "give --calib with real inputs" in v.note(synthetic=True)
    with pytest.raises(UserError, match="outside \\(0, 1\\]"):
        VdpcOptions(max_outlier_share=0.0)
    with pytest.raises(UserError, match="fixed threshold 256"):
        VdpcOptions(fixed_threshold=256)


def test_joint_search_never_takes_a_stage_without_lowered_maps():
    """MNIST at its moderate budget (4,960 B): the joint search's fastest candidate was a 2-layer stage holding
    none of the maps VDQS lowered (both chains 8-bit, over 8-bit patching's peak); it must keep 8-bit patching's
    plan, whose maps it lowers, at 8-bit patching's peak."""
    from pathlib import Path

    mnist = Path(__file__).resolve().parents[1] / "models" / "mnist"
    calib = mnist / "mnist_calib_200.npz"
    opts = CompileOptions(board="qemu-m4", calib=str(calib), progress=False, sram_limit=4960)
    c8 = compile_model(mnist / "mnist_cnn.onnx", opts)
    cq = compile_model(mnist / "mnist_cnn.onnx", dataclasses.replace(opts, quantmcu=QuantmcuOptions()))
    q = cq.quantmcu
    assert any(m.bits < 8 for m in q.feature_maps), q.feature_maps
    assert (q.plan.stage_len, q.plan.grid) == (c8.patch.stage_len, c8.patch.grid)
    assert cq.plan.arena_size <= c8.plan.arena_size
    assert any("lower no map: kept 8-bit patching's" in w for w in cq.warnings), cq.warnings


def _device_outputs(c, xs, board: str, tmp_path):
    """The C's outputs of ``xs``: built for this PC under ASan/UBSan (``board`` "host"), or as firmware on the
    compiled board's QEMU."""
    g = c.graph
    size = g.tensors[g.outputs[0]].size
    if board == "host":
        out = write_library(c, tmp_path / "lib")
        exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
        return run_host(exe, [xs], [size])[0]
    from mcucompile.targets.firmware import build_firmware, outputs_as_arrays, run_qemu

    lib = write_library(c, tmp_path / "fw", xs)
    run = run_qemu(build_firmware(lib), c.board, timeout=300)
    assert run.status == 0, run.log[-2000:]
    return outputs_as_arrays(run, len(xs), [size])[0]
