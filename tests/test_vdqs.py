"""VDQS (compiler/quantmcu/vdqs.py), the bitwidth search of the low-bit chain with its guard, on a small patched
CNN built here (conv a | dw b | max pool p | pw c | dw/s2 d | conv e = the split | pw | global average pool):

- the guard backs off a step that breaks a floor set just above what that step gives, and freezes its map;
- guard "off" chooses what the entropy score alone chooses, and the entropy-only choice of a guarded search is
  the unguarded walk stopped at the guarded search's BitOPs;
- a map whose layers refuse low bits of its own (the pooled p: a max pool keeps its input's params) is skipped, not
  searched; it follows its input b when b goes low (``LowbitChain.follows``);
- deterministic: two runs give the same steps and bits;
- the fast evaluation (layer by layer, tiles assembled) equals ``run_schedule_int`` of ``lowbit_schedule`` byte
  for byte for a mix of chains, and its BitOPs model equals ``stage_bitops_taken``;
- option errors are ``UserError`` s naming the flag.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import make_model, save
from mcucompile.api import CompileOptions, PatchOptions, compile_model, quantize_input
from mcucompile.errors import UserError
from mcucompile.quantmcu import VdpcOptions, plan_vdpc
from mcucompile.quantmcu.lowbit import (
    build_lowbit_chain,
    inlier_values,
    lowbit_schedule,
    stage_bitops_taken,
)
from mcucompile.quantmcu.options import QuantmcuOptions
from mcucompile.quantmcu.vdqs import (
    BitopsModel,
    batched_inlier_values,
    fast_outputs,
    held_back,
    searchable_maps,
    split_calibration,
    stage_values,
    vdqs,
)
from mcucompile.schedule.schedule import run_schedule_int
from onnx import helper

STAGE = 6  # IR layers in the stage: conv a | dw b | max pool p | pw c | dw/s2 d | conv e (the split)


def small_net(tmp_path_factory, board: str = "host", samples: int = 32):
    """The small patched CNN (3x3 grid, forced), compiled with ``samples`` synthetic calibration inputs."""
    rng = np.random.default_rng(5)

    def w(*s):
        return (rng.standard_normal(s) * 0.35).astype(np.float32)

    def conv(x, y, wn, k, group=1, stride=1):
        return [helper.make_node("Conv", [x, wn], [y + "_"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                                 strides=[stride, stride]), helper.make_node("Relu", [y + "_"], [y])]

    nodes = (conv("x", "a", "w0", 3) + conv("a", "b", "w1", 3, group=6)
             + [helper.make_node("MaxPool", ["b"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])]
             + conv("p", "c", "w2", 1) + conv("c", "d", "w3", 3, group=8, stride=2) + conv("d", "e", "w4", 3)
             + conv("e", "f", "w5", 1) + [helper.make_node("GlobalAveragePool", ["f"], ["y"])])
    inits = {"w0": w(6, 3, 3, 3), "w1": w(6, 1, 3, 3), "w2": w(8, 6, 1, 1), "w3": w(8, 1, 3, 3),
             "w4": w(12, 8, 3, 3), "w5": w(10, 12, 1, 1)}
    path = save(make_model(nodes, [1, 3, 20, 18], ["y"], inits), tmp_path_factory.mktemp("vdqs"), "net.onnx")
    return path, compile_model(path, CompileOptions(board=board, progress=False, calib_samples=samples,
                                                    patch=PatchOptions(mode="forced", split=STAGE, patches=3)))


def by_origin(g, name):
    return next(t for t, v in g.tensors.items() if v.origin == name)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    _, c = small_net(tmp_path_factory)
    calib = quantize_input(c, c.calib)
    return c, calib


def _search(net, **kw):
    c, calib = net
    o = QuantmcuOptions(**kw)
    cal, held = split_calibration(calib, o.holdout)
    vdpc = plan_vdpc(c.graph, c.patch, cal, o.vdpc)
    return vdqs(c.graph, c.patch, vdpc, cal, held, o), vdpc, cal, held


def test_split_is_deterministic_and_refuses_too_few():
    x = np.arange(10)[:, None]
    cal, held = split_calibration(x, 0.25)
    assert held[:, 0].tolist() == [2, 7] and cal[:, 0].tolist() == [0, 1, 3, 4, 5, 6, 8, 9]  # spread over the order
    cal, held = split_calibration(np.arange(100)[:, None], 0.5)
    assert held[:, 0].tolist() == list(range(1, 100, 2))  # every second sample: class-sorted data on both sides
    assert [len(p) for p in split_calibration(x[:2], 0.9)] == [1, 1]
    with pytest.raises(UserError, match="at least 2 calibration samples"):
        split_calibration(x[:1], 0.25)


def test_skips_maps_the_layers_refuse(net):
    r, vdpc, *_ = _search(net, guard="off")
    g = net[0].graph
    b, p, c, d = (by_origin(g, n) for n in "bpcd")
    assert vdpc.tensor == by_origin(g, "a")
    assert set(searchable_maps(g, net[0].patch, vdpc)) == {b, p, c, d}
    assert set(r.skipped) == {p}  # max pooling keeps its input's params: p may not go low alone, it follows b
    assert "keeps its input's params" in r.skipped[p]
    assert r.bits[p] == 8 and r.chain.follows == {p: b} and r.chain.bits[p] == r.chain.bits[b] < 8
    assert {s.map for s in r.steps} <= {b, c, d}
    assert r.bits[c] < 8 and r.bits[d] < 8  # the guard off: the walk goes to the bottom of the bit set
    assert r.bits == r.entropy_only  # guard off: the entropy score alone's choice
    assert all(s.accepted for s in r.steps) and [s.bits for s in r.steps if s.map == c] == [4, 2]


def test_guard_backs_off_a_step_that_breaks_its_floor(net):
    free, *_ = _search(net, guard="off")
    first = free.steps[0]
    assert np.isfinite(first.quality)
    # a floor just above what the first step gives: the same first step, now refused, its map frozen at 8
    r, *_ = _search(net, guard="sqnr", floor=first.quality + 0.01)
    assert (r.steps[0].map, r.steps[0].bits, r.steps[0].accepted) == (first.map, first.bits, False)
    assert r.steps[0].quality == pytest.approx(first.quality)
    assert r.bits[first.map] == 8 and first.map in r.frozen
    assert all(s.quality >= first.quality + 0.01 for s in r.steps if s.accepted)
    assert all(s.map != first.map for s in r.steps[1:])  # frozen: never tried again
    # a floor just below: accepted
    r2, *_ = _search(net, guard="sqnr", floor=first.quality - 0.01)
    assert r2.steps[0].accepted and r2.bits[first.map] == first.bits
    # the entropy score alone, stopped at the guarded search's BitOPs: a prefix of the unguarded walk
    model = BitopsModel.of(net[0].graph, net[0].patch, plan_vdpc(net[0].graph, net[0].patch,
                                                                  split_calibration(net[1], 0.25)[0]))
    reached = r.bitops / r.bitops_8bit
    walk = {m: 8 for m in free.bits}
    for s in free.steps:
        if model.bitops(walk) / model.bitops_8bit() <= reached:
            break
        walk[s.map] = s.bits
    assert r.entropy_only == walk


def test_bitops_target_stops_the_search(net):
    free, *_ = _search(net, guard="off")
    ratio = free.steps[0].bitops_ratio
    r, *_ = _search(net, guard="off", bitops_target=ratio)
    assert len(r.steps) == 1 and r.bitops / r.bitops_8bit == pytest.approx(ratio)


def test_deterministic(net):
    a, *_ = _search(net)
    b, *_ = _search(net)
    assert a.bits == b.bits and a.steps == b.steps and a.entropy_only == b.entropy_only
    assert a.quality == b.quality and a.seconds > 0


def test_fast_evaluation_equals_the_patch_loop(net):
    """Layer by layer with tiles assembled == run_schedule_int of the dispatching loop, byte for byte, on a mix of
    chains (per tensor and per channel), with inputs on which some patches take each chain; and the BitOPs model
    equals stage_bitops_taken."""
    c, calib = net
    g, plan = c.graph, c.patch
    cal, _ = split_calibration(calib, 0.25)
    vdpc = plan_vdpc(g, plan, cal, VdpcOptions())
    m = vdpc.stats.map(vdpc.tensor)
    median = int(np.median(m.patch_max))  # about half the patches each way
    vdpc = dataclasses.replace(vdpc, threshold=median, outlier_patches=m.outlier_patches(median))
    rng = np.random.default_rng(2)
    shape = tuple(g.tensors[g.inputs[0]].shape)
    xs = np.concatenate([calib[-4:].reshape((-1,) + shape[1:]), rng.integers(-128, 128, (3,) + shape[1:]).astype(np.int8)])
    held = held_back(g, plan, vdpc, xs)
    assert 0 < held.outliers.sum() < held.outliers.size
    model = BitopsModel.of(g, plan, vdpc)
    cmap, dmap = by_origin(g, "c"), by_origin(g, "d")
    # the search's calibration values, batched: lowbit's, value for value, in the same order
    mine = batched_inlier_values(g, plan, stage_values(g, plan, cal), vdpc.outlier_patches, [cmap, dmap])
    theirs = inlier_values(g, plan, cal, vdpc.outlier_patches, [cmap, dmap], keep_channels=True)
    assert all(np.array_equal(mine[m], theirs[m]) and mine[m].size for m in (cmap, dmap))
    params = {False: {}, True: {}}  # one params cache per setting, as VDQS shares one
    previous = {False: None, True: None}  # the last chain's stage values: the next one reuses what agrees
    for bits, pc in [({cmap: 4, dmap: 2}, False), ({cmap: 2}, True), ({dmap: 4}, True), ({}, False),
                     ({cmap: 4, dmap: 4}, True), ({cmap: 4, dmap: 2}, True), ({cmap: 4}, False)]:
        chain = build_lowbit_chain(g, plan, vdpc, bits, cal, per_channel=pc, params=params[pc])
        schedule, _ = lowbit_schedule(chain, vdpc, c.target)
        keep: list = []
        fast = fast_outputs(chain, held, previous[pc], keep)
        previous[pc] = keep[0]
        for x, f in zip(xs, fast):
            taken: list[int] = []
            ref = run_schedule_int(schedule, {g.inputs[0]: x}, taken)
            assert set(ref) == set(f)
            for o in ref:
                assert f[o].dtype == ref[o].dtype and np.array_equal(f[o], ref[o]), (bits, pc)
        taken = [[0 if o else 1 for o in row] for row in vdpc.outlier_patches]
        b8, b = stage_bitops_taken(schedule, taken)
        assert model.bitops_8bit() == pytest.approx(b8, rel=1e-12)
        assert model.bitops(bits) == pytest.approx(b, rel=1e-12)
    # outlier patches as 2 x 2 sub-patches: the same outputs (their values are the 8-bit ones), their own BitOPs
    sub_model = BitopsModel.of(g, plan, vdpc, 2)
    for bits in ({cmap: 4, dmap: 2}, {}):
        chain = build_lowbit_chain(g, plan, vdpc, bits, cal, per_channel=True, params=params[True])
        schedule, _ = lowbit_schedule(chain, vdpc, c.target, 2)
        assert schedule.loop.sub is not None
        for x, f in zip(xs, fast_outputs(chain, held)):
            ref = run_schedule_int(schedule, {g.inputs[0]: x})
            assert all(np.array_equal(f[o], ref[o]) for o in ref)
        b8, b = stage_bitops_taken(schedule, [[0 if o else 1 for o in row] for row in vdpc.outlier_patches])
        assert sub_model.bitops(bits) == pytest.approx(b, rel=1e-12) and sub_model.bitops_8bit() == pytest.approx(b8)
        assert sub_model.bitops(bits) > model.bitops(bits)  # the sub-patches' extra halo


@pytest.mark.parametrize("kw, match", [
    ({"bits": (4, 2)}, "--qm-bits"), ({"bits": (8, 3)}, "--qm-bits"), ({"lam": 1.5}, "--qm-lambda"),
    ({"guard": "mse"}, "--qm-guard"), ({"floor": float("nan")}, "--qm-floor"),
    ({"guard": "agreement", "floor": 98.0}, "--qm-floor"), ({"holdout": 1.0}, "--qm-holdout"),
    ({"bitops_target": 0.0}, "--qm-bitops-target"), ({"clipping": "max"}, "--qm-clipping"),
])
def test_option_errors(kw, match):
    with pytest.raises(UserError, match=match):
        QuantmcuOptions(**kw)


def test_jackknife_error_of_the_sqnr_by_hand():
    """sqnr_se_db: the leave-one-out SQNRs' spread, as the jackknife defines it, computed here sample by sample."""
    from mcucompile.quantmcu.vdqs import sqnr_db, sqnr_se_db

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((12, 10))
    out = ref + rng.standard_normal((12, 10)) * np.linspace(0.01, 0.5, 12)[:, None]  # unequal noise per sample
    loo = np.array([sqnr_db(np.delete(ref, i, 0), np.delete(out, i, 0)) for i in range(12)])
    want = np.sqrt(11 / 12 * np.sum((loo - loo.mean()) ** 2))
    assert sqnr_se_db(ref, out) == pytest.approx(want, rel=1e-9) and want > 0.1
    assert sqnr_se_db(ref, ref) == 0.0 and sqnr_se_db(ref[:1], out[:1]) == 0.0
    # all the noise in one sample: leaving it out leaves (almost) none, so one sample decides: a large error
    one = ref.copy()
    one[3] += 0.1
    assert sqnr_se_db(ref, one) > 30


def test_guard_holds_the_lower_bound_to_its_floor(net, monkeypatch):
    """The guard compares the metric minus GUARD_SE standard errors with its floor: the steps record that bound;
    with no margin they record the estimate; a floor between the two refuses a step the estimate would keep."""
    import mcucompile.quantmcu.vdqs as vdqs_module

    r1, *_ = _search(net, guard="off")
    monkeypatch.setattr(vdqs_module, "GUARD_SE", 0.0)
    r0, *_ = _search(net, guard="off")
    first0, first1 = r0.steps[0], r1.steps[0]
    assert (first0.map, first0.bits) == (first1.map, first1.bits)
    assert first1.quality < first0.quality  # the bound is below the estimate
    assert r1.quality["sqnr_low"] <= r1.quality["sqnr"] and r1.quality["agreement_low"] <= r1.quality["agreement"]
    monkeypatch.setattr(vdqs_module, "GUARD_SE", 1.0)
    floor = (first0.quality + first1.quality) / 2
    r, *_ = _search(net, guard="sqnr", floor=floor)
    assert not r.steps[0].accepted and r.bits[first1.map] == 8


def test_inlier_counts_give_what_the_values_give(net):
    """The search holds the calibration values as counts per (channel, 8-bit integer) (``inlier_counts``): every
    result it draws from them is the values' own, exactly: each map's size, min/max and MSE params per tensor and per
    channel, the chain they calibrate (params, scales, calib_values), and the entropy at 8 bits and at low bits (per
    tensor and per channel); fails if a count, a weight or a channel is lost."""
    from mcucompile.quantmcu.lowbit import InlierCounts, _per_channel_scales, mse_quant
    from mcucompile.quantmcu.vdqs import inlier_counts, quantized_entropy

    c, calib = net
    g, plan = c.graph, c.patch
    cal, _ = split_calibration(calib, 0.25)
    vdpc = plan_vdpc(g, plan, cal, VdpcOptions())
    m = vdpc.stats.map(vdpc.tensor)
    median = int(np.median(m.patch_max))
    vdpc = dataclasses.replace(vdpc, threshold=median, outlier_patches=m.outlier_patches(median))
    assert 0 < vdpc.outlier_patches.sum() < vdpc.outlier_patches.size
    maps = [by_origin(g, n) for n in ("b", "c", "d")]
    values = stage_values(g, plan, cal)
    arrays = batched_inlier_values(g, plan, values, vdpc.outlier_patches, maps)
    counts = inlier_counts(g, plan, values, vdpc.outlier_patches, maps)
    stage = g.nodes[: plan.stage_len]
    for name in maps:
        a, k = arrays[name], counts[name]
        assert isinstance(k, InlierCounts) and k.size == a.size and k.channels == a.shape[1]
        for bits in (4, 2):
            for clipping in ("mse", "minmax"):
                qa, qk = mse_quant(a.reshape(-1), bits, clipping), mse_quant(k, bits, clipping)
                assert (qa.s, qa.zp) == (qk.s, qk.zp)
                pa = _per_channel_scales(a, bits, clipping, stage, name, g)
                pk = _per_channel_scales(k, bits, clipping, stage, name, g)
                assert (pa is None) == (pk is None) and (pa is None or np.array_equal(pa, pk))
        assert quantized_entropy(a, g, name) == quantized_entropy(k, g, name)
    per_channel_seen = False
    for bits, pc in [({maps[1]: 4, maps[2]: 2}, False), ({maps[1]: 2}, True), ({maps[2]: 4}, True),
                     ({maps[0]: 4}, True)]:
        ca = build_lowbit_chain(g, plan, vdpc, bits, cal, per_channel=pc, inliers=arrays)
        ck = build_lowbit_chain(g, plan, vdpc, bits, cal, per_channel=pc, inliers=counts)
        assert ca.calib_values == ck.calib_values and ca.bits == ck.bits
        assert {t: (q.s, q.zp) for t, q in ca.quant.items()} == {t: (q.s, q.zp) for t, q in ck.quant.items()}
        assert ca.channel_scales.keys() == ck.channel_scales.keys()
        assert all(np.array_equal(ca.channel_scales[t], ck.channel_scales[t]) for t in ca.channel_scales)
        per_channel_seen |= bool(ck.channel_scales)
        for name in bits:
            assert quantized_entropy(arrays[name], g, name, ca) == quantized_entropy(counts[name], g, name, ck)
    assert per_channel_seen  # the per-channel entropy path ran


def test_the_search_simulates_on_one_blas_thread(net):
    """quantmcu.blas.run_batched: BLAS at one thread while it runs (restored after), the values of
    quant.simulate.run_batched byte for byte."""
    import threadpoolctl
    from mcucompile.quant import simulate
    from mcucompile.quantmcu import blas

    c, calib = net
    g = c.graph
    shape = tuple(g.tensors[g.inputs[0]].shape)
    xs = calib[:5].reshape((-1,) + shape[1:])

    def blas_threads():
        return [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]

    before = blas_threads()
    seen = []
    real = simulate.run_batched

    def spy(*a):
        seen.append(blas_threads())
        return real(*a)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulate, "run_batched", spy)
        mine = blas.run_batched(g, g.nodes, {g.inputs[0]: xs}, len(xs))
    assert before and seen and seen[0] and all(t == 1 for t in seen[0]) and blas_threads() == before
    theirs = real(g, g.nodes, {g.inputs[0]: xs}, len(xs))
    assert len(mine) == len(theirs) == len(xs)
    for a, b in zip(mine, theirs):
        assert set(a) == set(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_run_batched_takes_the_classifier_tail_on_the_whole_batch(tmp_path):
    """quant.simulate.run_batched runs a reshape (flatten), fully connected and softmax tail on the whole batch
    (batches() says so) and gives each sample what run_nodes gives it alone, byte for byte; a reshape that does
    not keep N = 1 first runs sample by sample."""
    from mcucompile.quant import simulate

    rng = np.random.default_rng(11)
    inits = {"w0": (rng.standard_normal((6, 3, 3, 3)) * 0.4).astype(np.float32),
             "w1": (rng.standard_normal((10, 6)) * 0.8).astype(np.float32), "b1": rng.standard_normal(10).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a_"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a_"], ["a"]), helper.make_node("GlobalAveragePool", ["a"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "w1", "b1"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["y"])]
    path = save(make_model(nodes, [1, 3, 8, 8], ["y"], inits), tmp_path, "tail.onnx")
    c = compile_model(path, CompileOptions(progress=False, calib_samples=8, patch=PatchOptions(mode="off")))
    g = c.graph
    assert {"reshape", "fully_connected", "softmax"} <= {n.op for n in g.nodes if simulate.batches(g, n)}
    shape = tuple(g.tensors[g.inputs[0]].shape)
    xs = rng.integers(-128, 128, (7,) + shape[1:]).astype(np.int8)
    xs[0] = 127  # saturating inputs: the softmax's largest logit at its limit
    got = simulate.run_batched(g, g.nodes, {g.inputs[0]: xs}, len(xs))
    for i, x in enumerate(xs):
        want = simulate.run_nodes(g, g.nodes, {g.inputs[0]: x[None]}, True)
        assert set(got[i]) == set(want)
        for k in want:
            assert got[i][k].dtype == want[k].dtype and np.array_equal(got[i][k], want[k]), k
    assert len({got[i][g.outputs[0]].tobytes() for i in range(len(xs))}) > 1  # the samples differ
    flat = next(n for n in g.nodes if n.op == "reshape")
    moved = dataclasses.replace(g.tensors[flat.outputs[0]], shape=(g.tensors[flat.outputs[0]].shape[1], 1))
    g2 = dataclasses.replace(g, tensors={**g.tensors, flat.outputs[0]: moved})
    assert not simulate.batches(g2, flat)
