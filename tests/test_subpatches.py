"""QuantMCU's outlier patches as sub-patches (``patch.execute.plan_sub_patches``, ``PatchLoop.sub``): an outlier
patch runs the 8-bit chain as s x s sub-patches of itself, so that the 8-bit chain's buffers are those of a finer
grid and both chains fit the smaller arena the low-bit chain's packed maps need.

- the sub-patches of each patch tile its stage-output tile exactly (uneven where s does not divide it);
- the small patched CNN of test_quantmcu_chain.py (maps 4, 2, 4 bits) with a threshold that sends some patches
  to each chain and s = 2: the C on the host under ASan/UBSan and on qemu-m4 equal to the simulator byte for
  byte (qemu-m55 too); the peak SRAM below s = 1's; with every patch on the 8-bit chain the output equals the 8-bit model;
  stage BitOPs count the sub-patches' MACs (halo included); s = 1 generates exactly what it did before;
- ResNet-8's residual stage (crops through the add) with s = 2 on the host;
- the joint (split, grid, s) search (``quantmcu.search.choose_joint``).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from mcucompile.api import (
    CompileOptions,
    PatchOptions,
    build_and_run_board,
    compile_model,
    host_runner_source,
    library_dir,
    write_library,
)
from mcucompile.codegen import generate_c
from mcucompile.errors import UserError
from mcucompile.ir import Region
from mcucompile.patch.execute import plan_sub_patches
from mcucompile.quant.simulate import run_int
from mcucompile.quantmcu import (
    VdpcOptions,
    check_problems,
    plan_vdpc,
    stage_maps,
)
from mcucompile.quantmcu.lowbit import lowbit_schedule, stage_bitops
from mcucompile.targets.host import build_host, run_host
from test_quantmcu_chain import (
    _chain,
    _compiled,
    _inputs,
    _net,
    _resnet8_stage,
    _simulate,
)


@pytest.fixture(scope="module")
def host_net(tmp_path_factory):
    return _net(tmp_path_factory, "host")


@pytest.fixture(scope="module")
def host_chain(host_net):
    return _chain(host_net)[:2]


def test_sub_patches_tile_each_patch_exactly(host_net):
    g, plan = host_net.graph, host_net.patch
    split = plan.split
    sub = plan_sub_patches(g, plan, 2)
    sizes = set()
    for p, regs in enumerate(plan.regions):
        t = regs[split]
        cover = np.zeros((t.h, t.w), int)
        for q in sub.of_patch[p]:
            r = sub.plan.regions[q][split]
            cover[r.top - t.top : r.bottom - t.top, r.left - t.left : r.right - t.left] += 1
            sizes.add((r.h, r.w))
            # a sub-patch's regions are back-propagated: inside the patch's, smaller where the tile is
            for name, rr in sub.plan.regions[q].items():
                pr = regs[name]
                assert pr.top <= rr.top and rr.bottom <= pr.bottom and pr.left <= rr.left and rr.right <= pr.right
        assert (cover == 1).all(), (p, cover)
        assert len(sub.of_patch[p]) == 4
    assert len({h for h, _ in sizes}) > 1 and len({w for _, w in sizes}) > 1  # uneven sub-tiles (10 x 9 on 3 x 3)
    one = plan_sub_patches(g, plan, 1)
    assert one.plan.regions == plan.regions and one.plan.crops == plan.crops
    with pytest.raises(ValueError):
        plan_sub_patches(g, plan, 0)
    assert sub.plan.regions[0][split] == Region(0, 0, 2, 2)


def test_s1_generates_what_it_did(host_net, host_chain):
    """sub_patches=1 is the loop without sub-patches: same schedule, same arena, same C."""
    chain, vdpc = host_chain
    default = lowbit_schedule(chain, vdpc, host_net.target)
    one = _compiled(host_net, chain, vdpc, 1)
    assert one.schedule.loop.sub is None and one.plan == default[1]
    assert one.sources.files == generate_c(*default, "model").files
    assert "subpatches" not in one.sources.files["src/model.c"]


def test_sub_patches_bit_exact_on_host_and_smaller(host_net, host_chain, tmp_path):
    chain, vdpc = host_chain
    c1, c2 = _compiled(host_net, chain, vdpc, 1), _compiled(host_net, chain, vdpc, 2)
    loop = c2.schedule.loop
    assert loop.sub_plan is not None and loop.sub_patches_of == loop.sub.of_patch and not loop.check.resume
    xs = _inputs(c2)
    sim, taken = _simulate(c2, xs)
    assert 0 < (taken == 0).sum() < taken.size, taken  # some patches each way
    sim1, taken1 = _simulate(c1, xs)
    assert np.array_equal(taken, taken1)  # the same decisions; the 8-bit values computed differently, same result
    assert np.array_equal(sim, sim1)
    # the arena: the 8-bit chain's buffers are those of the finer grid
    assert c2.plan.arena_size < c1.plan.arena_size, (c2.plan.arena_size, c1.plan.arena_size)
    sizes1 = {b.name: b.size for b in c1.plan.buffers}
    for b in c2.plan.buffers:
        if b.name.endswith("@patch"):  # chain 0's region buffers
            assert b.size <= sizes1[b.name]
    assert check_problems(c2.schedule, c2.plan) == []  # the safety check walks the sub-patches with their regions
    assert check_problems(c1.schedule, c2.plan)  # whole patches through the sub-patches' buffers: refused
    out = write_library(c2, tmp_path / "lib")
    exe = build_host(library_dir(out, c2), host_runner_source(c2), tmp_path / "build", sanitize=True)
    dev = run_host(exe, [xs], [c2.graph.tensors[c2.graph.outputs[0]].size])[0]
    assert np.array_equal(dev, sim)
    # BitOPs: an outlier patch counts its sub-patches' MACs, halo included: above the loop without them
    b8, b2 = stage_bitops(c2.schedule, xs)
    _, b1 = stage_bitops(c1.schedule, xs)
    assert b8 == pytest.approx(host_net.patch.macs_patched * 64, rel=0.01) and b2 > b1


def test_every_patch_8bit_as_sub_patches_is_the_8bit_model(host_net, host_chain, tmp_path):
    chain, vdpc = host_chain
    c = _compiled(host_net, chain, vdpc, 2, threshold=0)
    xs = _inputs(c)
    sim, taken = _simulate(c, xs)
    g0 = host_net.graph
    ref = np.stack([run_int(g0, {g0.inputs[0]: x})[g0.outputs[0]].reshape(-1) for x in xs])
    assert (taken == 0).all() and np.array_equal(sim, ref)
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    assert np.array_equal(run_host(exe, [xs], [g0.tensors[g0.outputs[0]].size])[0], ref)


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m55"])
def test_sub_patches_bit_exact_on_qemu(board, tmp_path_factory, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    base = _net(tmp_path_factory, board)
    chain, vdpc, _ = _chain(base)
    c = _compiled(base, chain, vdpc, 2)
    assert "model_subpatches" in c.sources.files["src/model.c"]
    x_q, outs, _, _ = build_and_run_board(c, c.calib[:3], tmp_path)
    sim, taken = _simulate(c, x_q)
    assert np.array_equal(outs[0], sim)
    assert 0 < (taken == 0).sum() < taken.size, taken


def test_resnet8_residual_stage_as_sub_patches_on_host(tmp_path):
    """ResNet-8's stage (the residual add reads its operands through cropped copies) with the outlier patches as
    2 x 2 sub-patches: the sub plan's own crops, C under sanitizers equal to the simulator."""
    c0, chain, vdpc, xs = _resnet8_stage()
    g = c0.graph
    c = _compiled(c0, chain, vdpc, 2)
    assert c.schedule.loop.sub.plan.crops  # the add's operands cropped in the sub-patches too
    sim, taken = _simulate(c, xs)
    assert 0 < (taken == 0).sum() < taken.size, taken
    ref = np.stack([run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in xs])
    c8 = _compiled(c0, chain, vdpc, 2, threshold=0)
    assert np.array_equal(_simulate(c8, xs)[0], ref)
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    assert np.array_equal(run_host(exe, [xs], [c.graph.tensors[c.graph.outputs[0]].size])[0], sim)


# --- the joint search -------------------------------------------------------------------------------------

def _wide_net(tmp_path_factory):
    """A stage whose maps are wide and at full resolution, its output a quarter of them with few channels: the
    stage's region buffers make the peak (input filled by patch), so the packed maps' saving is the peak's."""
    from conftest import make_model, save
    from onnx import helper

    rng = np.random.default_rng(5)

    def w(*s):
        return (rng.standard_normal(s) * 0.3).astype(np.float32)

    def conv(x, y, wn, k, group=1, stride=1):
        return [helper.make_node("Conv", [x, wn], [y + "_"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                                 strides=[stride, stride]), helper.make_node("Relu", [y + "_"], [y])]

    nodes = (conv("x", "a", "w0", 3) + conv("a", "b", "w1", 3, group=16) + conv("b", "c", "w2", 1)
             + conv("c", "d", "w3", 3, stride=2) + conv("d", "e", "w4", 1) + [helper.make_node("GlobalAveragePool", ["e"], ["y"])])
    inits = {"w0": w(16, 3, 3, 3), "w1": w(16, 1, 3, 3), "w2": w(16, 16, 1, 1), "w3": w(4, 16, 3, 3), "w4": w(4, 4, 1, 1)}
    path = save(make_model(nodes, [1, 3, 29, 27], ["y"], inits), tmp_path_factory.mktemp("wide"), "wide.onnx")
    return compile_model(path, CompileOptions(board="qemu-m4", progress=False, calib_samples=16, patch=PatchOptions(
        mode="forced", split=4, patches=2, input_by_patch=True)))


def _spiky_inputs(compiled, n=12, seed=2):
    """Small values with a rare spike in some inputs: the check at the input flags a few patches."""
    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(compiled.graph.tensors[compiled.graph.inputs[0]].shape)
    x = rng.integers(-30, 31, shape).astype(np.int8)
    for s in range(0, n, 3):
        x[s, 0, rng.integers(0, shape[2]), rng.integers(0, shape[3]), :] = 120
    return x


def test_joint_search_turns_low_bits_into_fewer_patches(tmp_path_factory):
    from mcucompile.patch.memory import plan_memory_patched
    from mcucompile.patch.planner import plan_patches
    from mcucompile.quantmcu.search import build_joint, choose_joint

    c = _wide_net(tmp_path_factory)
    g = c.graph
    calib = _spiky_inputs(c)
    peaks8 = {n: plan_memory_patched(g, plan_patches(g, 4, n, True), board=c.target).arena_size for n in range(2, 6)}
    # the budget 8-bit patching needs a 4 x 4 grid for (3 x 3 does not fit)
    budget = peaks8[4]
    assert peaks8[3] > budget and peaks8[2] > budget
    maps = [m for m in stage_maps(g, plan_patches(g, 4, 1)) if m not in (g.inputs[0], "d")]
    options = VdpcOptions("percentile", 99.9, "input")
    choice = choose_joint(g, budget, c.target, {m: 2 for m in maps}, options, calib, splits=[4], input_by_patch=True)
    win = choice.winner
    assert choice.fits and win.fits and choice.peak <= budget
    assert choice.plan.grid < 4 and choice.sub_patches > 1, choice  # fewer patches, the outlier ones as sub-patches
    assert 0 < win.outlier_share < 0.5
    eight = next(t for t in choice.tried if (t.grid, t.sub_patches) == (4, 1))
    print(f"8-bit patching 4x4: {eight.instructions_8bit:.0f} instructions (estimated); joint {choice.plan.grid}x"
          f"{choice.plan.grid} s={choice.sub_patches}: {choice.instructions:.0f} expected, peak {choice.peak} B of {budget}")
    assert choice.instructions == min(t.instructions for t in choice.tried if t.fits)
    # every (grid, s) of the split is accounted for: tried with its peak, or skipped only after a smaller s fit
    for n in range(2, 9):
        got = sorted(t.sub_patches for t in choice.tried if t.grid == n)
        assert got and got == list(range(1, len(got) + 1)), (n, got)
        if len(got) < 3:
            assert next(t for t in choice.tried if (t.grid, t.sub_patches) == (n, got[-1])).fits
    # the winner calibrated: its arena is what the sizing chain predicted
    _, _, schedule, arena = build_joint(g, choice, options, calib, c.target)
    assert arena.arena_size == choice.peak and schedule.loop.sub.factor == choice.sub_patches
    # refusals are named: the first map is the output of a one-layer stage, so it cannot be checked there
    first = choose_joint(g, 1 << 20, c.target, {m: 2 for m in maps}, VdpcOptions("percentile", 99.9, "first_map"),
                         calib, input_by_patch=True)
    refused = [t for t in first.tried if t.stage_len == 1]
    assert refused and all(t.refused and "checked map" in t.refused for t in refused)
    with pytest.raises(UserError, match="use one of"):
        choose_joint(g, budget, c.target, {maps[0]: 3}, options, calib)
    with pytest.raises(UserError, match="no candidate stage makes"):
        choose_joint(g, budget, c.target, {"y": 4}, options, calib)
    checked_first = choose_joint(g, budget, c.target, {"a": 4}, VdpcOptions("percentile", 99.9, "first_map"), calib,
                                 splits=[4], input_by_patch=True)
    assert checked_first.checked == "a" and "kept at 8 bits" in checked_first.notes[0]
    assert all(dict(t.bits).get("a", 8) == 8 for t in checked_first.tried)


def test_joint_search_with_a_check_that_cannot_fire_sizes_the_low_bit_chain_alone(tmp_path_factory):
    """A threshold of 255 (the check dropped, as plan_quantmcu fixes it): every candidate is sized as
    lowbit_only_schedule lays the loop out (no 8-bit chain, no sub-patches, no outlier share), so at 8-bit
    patching's budget a coarser grid fits than with a check that can fire (254); the checked map is lowered when
    asked (nothing reads it at 8 bits); build_joint builds that loop, its arena the predicted peak, and it runs
    the low-bit chain on every patch, equal to the one-chain loop of that chain."""
    from mcucompile.patch.memory import plan_memory_patched
    from mcucompile.patch.planner import plan_patches
    from mcucompile.quantmcu.lowbit import lowbit_only_schedule
    from mcucompile.quantmcu.search import build_joint, choose_joint
    from mcucompile.schedule.schedule import run_schedule_int

    c = _wide_net(tmp_path_factory)
    g = c.graph
    calib = _spiky_inputs(c)
    budget = plan_memory_patched(g, plan_patches(g, 4, 4, True), board=c.target).arena_size
    maps = [m for m in stage_maps(g, plan_patches(g, 4, 1)) if m not in (g.inputs[0], "d")]
    bits = {m: 2 for m in maps}

    def joint(t, subs=(1, 2, 3)):
        options = VdpcOptions("percentile", 99.9, "first_map", fixed_threshold=t)
        return options, choose_joint(g, budget, c.target, bits, options, calib, splits=[4], subs=subs,
                                     input_by_patch=True)

    options, never = joint(255)
    _, fires = joint(254, subs=(1,))
    assert never.fits and never.checked == "a" and dict(never.winner.bits)["a"] == 2 and not never.notes
    assert all(t.sub_patches == 1 and t.outlier_share == 0.0 for t in never.tried)
    peaks = {t.grid: t.peak for t in never.tried}
    assert all(peaks[t.grid] < t.peak for t in fires.tried if t.grid in peaks)  # no 8-bit chain to hold
    assert never.plan.grid < 4
    vdpc, chain, schedule, arena = build_joint(g, never, options, calib, c.target)
    assert vdpc.never_fires and arena.arena_size == never.peak and not schedule.loop.runtime
    assert chain.bits["a"] == 2
    x = calib[:1].reshape(tuple(g.tensors[g.inputs[0]].shape))
    taken: list[int] = []
    out = run_schedule_int(schedule, {g.inputs[0]: x}, taken)[g.outputs[0]]
    alone, _ = lowbit_only_schedule(chain, c.target, one_chain=True)
    assert taken == [1] * never.plan.patches
    assert np.array_equal(out, run_schedule_int(alone, {g.inputs[0]: x})[g.outputs[0]])


def test_joint_pricing_is_the_cost_model(tmp_path_factory):
    """With no map lowered (both chains 8-bit) and no sub-patches, a candidate's expected instructions are 8-bit
    patching's estimate plus the check (``quantmcu.check_instructions``) plus the outlier patches' move; and the
    per-chain, per-patch pricing adds up to ``estimate_instructions``."""
    from mcucompile.patch.cost import (
        chain_patch_instructions,
        coefficient_table,
        estimate_instructions,
        kernel_of,
        patch_copy_instructions,
    )
    from mcucompile.patch.planner import plan_patches
    from mcucompile.quantmcu import check_instructions, runtime_dispatch
    from mcucompile.quantmcu.search import choose_joint
    from mcucompile.schedule.schedule import build_schedule

    c = _wide_net(tmp_path_factory)
    g = c.graph
    plan = plan_patches(g, 4, 3, True)
    ks = tuple(kernel_of(n, g, c.target) for n in g.nodes)
    table = coefficient_table(ks)
    est = estimate_instructions(g, plan, ks, table)
    per = chain_patch_instructions(g, plan, tuple(g.nodes[:4]), ks[:4], table)
    io = patch_copy_instructions(g, plan, table)
    overhead = table["invoke"]["layer_calls"] * 4 * plan.patches  # the per-layer hooks, inside the chain's rows
    assert sum(map(sum, per)) - overhead == pytest.approx(sum(est.layers[:4]), rel=1e-9)
    assert sum(a + b for a, b in io) + sum(est.layers[4:]) + overhead <= est.total + 1
    calib = _spiky_inputs(c)
    options = VdpcOptions("percentile", 99.9, "input")
    choice = choose_joint(g, 1 << 20, c.target, {}, options, calib, splits=[4], grids=(3,), subs=(1,),
                          input_by_patch=True)
    cand = choice.tried[0]
    vdpc = plan_vdpc(g, plan, calib, options)
    sched = build_schedule(g, plan, chains=2, dispatch=runtime_dispatch(vdpc, 0, 1), board=c.target)
    check = check_instructions(sched)
    assert check > 0 and sched.loop.check.after == 0  # at the input: an outlier patch resumes from the copy
    extra = cand.instructions - cand.instructions_8bit - check
    assert 0 <= extra < 0.01 * cand.instructions_8bit, (cand, check)  # the moves of the few outlier patches


def test_joint_winner_built_from_values_taken_is_the_same(tmp_path_factory):
    """What plan_quantmcu hands the joint search's winner (the 8-bit stage's values on the calibration samples of
    another split, the 8-bit run of the held-back samples on another plan; the threshold fixed) gives the winner's
    check, chain and guard run exactly as measured afresh; fails if a reused value belongs to another stage."""
    import dataclasses

    from mcucompile.patch.planner import plan_patches
    from mcucompile.quantmcu.search import build_joint, choose_joint
    from mcucompile.quantmcu.vdqs import held_back, stage_values

    c = _wide_net(tmp_path_factory)
    g = c.graph
    calib = _spiky_inputs(c)
    cal, held = calib[:8], calib[8:]
    maps = [m for m in stage_maps(g, plan_patches(g, 4, 1)) if m not in (g.inputs[0], "d")]
    options = VdpcOptions("percentile", 99.9, "input")
    choice = choose_joint(g, 1 << 20, c.target, {m: 2 for m in maps}, options, cal, splits=[4], input_by_patch=True)
    ref_v, ref_chain, _, ref_arena = build_joint(g, choice, options, cal, c.target, per_channel=True)
    fixed = dataclasses.replace(options, fixed_threshold=ref_v.threshold)
    again = choose_joint(g, 1 << 20, c.target, {m: 2 for m in maps}, fixed, cal, splits=[4], input_by_patch=True)
    assert again.tried == choice.tried and again.threshold == choice.threshold
    for k in (2, 4):  # a shorter stage's values (the winner's further layers run from them), the winner's own
        other = plan_patches(g, k, 3, True)
        values = stage_values(g, other, cal)
        v, chain, _, arena = build_joint(g, choice, options, cal, c.target, per_channel=True, values=values)
        assert (v.tensor, v.threshold) == (ref_v.tensor, ref_v.threshold)
        assert np.array_equal(v.outlier_patches, ref_v.outlier_patches)
        assert chain.calib_values == ref_chain.calib_values and chain.bits == ref_chain.bits
        assert {m: (q.s, q.zp) for m, q in chain.quant.items()} == {m: (q.s, q.zp) for m, q in ref_chain.quant.items()}
        assert all(np.array_equal(chain.channel_scales[m], s) for m, s in ref_chain.channel_scales.items())
        assert arena.arena_size == ref_arena.arena_size
        fresh = held_back(g, choice.plan, v, held)
        reused = held_back(g, choice.plan, v, held, held_back(g, other, v, held))
        assert fresh.stage8.keys() == reused.stage8.keys()
        assert all(np.array_equal(fresh.stage8[t], reused.stage8[t]) for t in fresh.stage8)
        assert np.array_equal(fresh.outliers, reused.outliers)
        assert all(np.array_equal(a[o], b[o]) for a, b in zip(fresh.outputs8, reused.outputs8) for o in a)
    # another set of samples is not reused
    other = held_back(g, choice.plan, ref_v, cal[:4])
    not_reused = held_back(g, choice.plan, ref_v, held, other)
    assert all(np.array_equal(a[o], b[o]) for a, b in zip(fresh.outputs8, not_reused.outputs8) for o in a)
    assert all(np.array_equal(fresh.stage8[t], not_reused.stage8[t]) for t in fresh.stage8)
