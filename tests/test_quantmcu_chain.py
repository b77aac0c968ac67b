"""QuantMCU's low-bit chain (compiler/quantmcu/lowbit.py): a patched small CNN whose stage maps are made 4 and
2 bits in the low-bit chain, calibrated on the no-outlier patches with MSE clipping, dispatched at run time
against the 8-bit chain by the VDPC check:

- the chain's own tensors (packed, their own params), the stage output and the rest of the network in the
  8-bit model's params, the packed kernels called with their output widths;
- the simulator's schedule run against the generated C on the host (ASan + UBSan) and on qemu-m4: bit-exact,
  with the device's per-patch chain decisions equal to the simulator's, and a threshold that sends some patches
  to each chain (and one that sends every patch to the 8-bit chain: then the output equals the 8-bit model);
- the arena plan: the chains exclusive, the packed maps at their packed sizes; the plan safety check on both
  chains, the check and the move, and plans it must refuse (a chain-1 buffer over a live buffer of its chain or
  outside the loop, the check's buffer or the move's destination too small, bytes kept for a later read);
- stage BitOPs: 8-bit patching against the dispatching loop, as the definition counts them;
- ResNet-8's stage (the residual add reading a packed map) at 4 bits, checked at the input, on the host.
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest
from conftest import SHARED_MODELS, make_model, save
from mcucompile.api import (
    CompileOptions,
    PatchOptions,
    build_and_run_board,
    compile_model,
    host_runner_source,
    library_dir,
    quantize_input,
    write_library,
)
from mcucompile.codegen import generate_c
from mcucompile.errors import UserError
from mcucompile.memory.planner import ArenaPlan, Buffer
from mcucompile.ops.kernel import read, write
from mcucompile.patch.memory import region_buffer
from mcucompile.quant.simulate import run_int
from mcucompile.quantmcu import (
    VdpcOptions,
    check_problems,
    plan_vdpc,
    stage_maps,
    stage_stats,
)
from mcucompile.quantmcu.lowbit import build_lowbit_chain, lowbit_schedule, stage_bitops
from mcucompile.schedule.safety import (
    PlanSafetyError,
    Step,
    chain_buffers,
    check_plan_memory,
    plan_problems,
    plan_steps,
    steps_problems,
)
from mcucompile.schedule.schedule import run_schedule_int
from mcucompile.targets.host import build_host, run_host
from onnx import helper

STAGE = 10  # conv a | dw b | pw c | dw/s2 d | conv e (the split, int8)
BITS = {"b": 4, "c": 2, "d": 4}  # the stage maps' bits in the low-bit chain


def small_cnn_path(folder):
    """The small CNN (conv, dw, pw, dw/s2, conv, conv, global pool) as an ONNX file in ``folder``."""
    rng = np.random.default_rng(3)

    def w(*s):
        return (rng.standard_normal(s) * 0.35).astype(np.float32)

    def conv(x, y, wn, k, group=1, stride=1):
        return [helper.make_node("Conv", [x, wn], [y + "_"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                                 strides=[stride, stride]), helper.make_node("Relu", [y + "_"], [y])]

    nodes = (conv("x", "a", "w0", 3) + conv("a", "b", "w1", 3, group=6) + conv("b", "c", "w2", 1)
             + conv("c", "d", "w3", 3, group=8, stride=2) + conv("d", "e", "w4", 3) + conv("e", "f", "w5", 1)
             + [helper.make_node("GlobalAveragePool", ["f"], ["y"])])
    inits = {"w0": w(6, 3, 3, 3), "w1": w(6, 1, 3, 3), "w2": w(8, 6, 1, 1), "w3": w(8, 1, 3, 3),
             "w4": w(12, 8, 3, 3), "w5": w(10, 12, 1, 1)}
    return save(make_model(nodes, [1, 3, 19, 17], ["y"], inits), folder, "net.onnx")


def _net(tmp_path_factory, board: str):
    path = small_cnn_path(tmp_path_factory.mktemp("qmchain"))
    return compile_model(path, CompileOptions(board=board, progress=False, calib_samples=24,
                                              patch=PatchOptions(mode="forced", split=STAGE // 2, patches=3)))


def _by_origin(g, name):
    return next(t for t, v in g.tensors.items() if v.origin == name)


def _median_vdpc(g, plan, calib, check):
    """VDPC's plan checking at ``check`` ("first_map" or "input") with the median patch maximum on ``calib`` as
    the threshold: about half the calibration patches each way."""
    vdpc = plan_vdpc(g, plan, calib, VdpcOptions("percentile", 99.9, check))
    median = int(np.median(vdpc.stats.map(vdpc.tensor).patch_max))
    return dataclasses.replace(vdpc, threshold=median, outlier_patches=vdpc.stats.map(vdpc.tensor).outlier_patches(median))


def _chain(compiled, bits=None, per_channel=False):
    """The low-bit chain of ``compiled``'s stage (maps ``bits``, by ONNX name; BITS when None), calibrated with
    the median patch maximum as the threshold: (chain, vdpc, the quantized calibration set)."""
    g, plan = compiled.graph, compiled.patch
    calib = quantize_input(compiled, compiled.calib)
    vdpc = _median_vdpc(g, plan, calib, "first_map")
    chain = build_lowbit_chain(g, plan, vdpc, {_by_origin(g, k): v for k, v in (bits or BITS).items()}, calib,
                               per_channel=per_channel)
    return chain, vdpc, calib


def _compiled(base, chain, vdpc, s=1, threshold=None):
    """``base`` with ``chain`` dispatched against the 8-bit stage by ``vdpc`` (at ``threshold`` when given), the
    outlier patches as s x s sub-patches: its schedule, arena and generated C."""
    if threshold is not None:
        vdpc = dataclasses.replace(vdpc, threshold=threshold)
    schedule, arena = lowbit_schedule(chain, vdpc, base.target, sub_patches=s)
    return dataclasses.replace(base, graph=chain.graph, patch=chain.plan, plan=arena, schedule=schedule,
                               sources=generate_c(schedule, arena, "model"))


def _setup(compiled, threshold=None, bits=None, per_channel=False):
    # calibrated with the median patch maximum as the threshold (about half the calibration patches each way);
    # ``threshold``: the dispatch's, when another
    chain, vdpc, calib = _chain(compiled, bits, per_channel)
    if threshold is not None:
        vdpc = dataclasses.replace(vdpc, threshold=threshold)
    return _compiled(compiled, chain, vdpc), chain, vdpc, calib


def _simulate(c, xs):
    g = c.graph
    outs, taken = [], []
    for x in xs:
        t: list[int] = []
        outs.append(run_schedule_int(c.schedule, {g.inputs[0]: x}, t)[g.outputs[0]].reshape(-1))
        taken.append(t)
    return np.stack(outs), np.array(taken)


@pytest.fixture(scope="module")
def host_net(tmp_path_factory):
    return _net(tmp_path_factory, "host")


def _inputs(c, n=4, seed=1):
    rng = np.random.default_rng(seed)
    held = quantize_input(c, c.calib[:2])
    shape = (n,) + tuple(c.graph.tensors[c.graph.inputs[0]].shape)
    return np.concatenate([held.reshape((-1,) + shape[1:]), rng.integers(-128, 128, shape).astype(np.int8)])


def test_chain_tensors_params_and_kernels(host_net):
    c, chain, vdpc, _ = _setup(host_net)
    g0, g = host_net.graph, c.graph
    split = host_net.patch.split
    low = [n for n in chain.nodes if n.outputs[0] != split]
    assert [g.tensors[n.outputs[0]].bits for n in low][1:4] == [4, 2, 4]
    assert g.tensors[chain.nodes[-1].outputs[0]].name == split  # the stage output: the 8-bit model's tensor
    assert g.tensors[split].quant.same_as(g0.tensors[split].quant) and g.tensors[split].bits == 8
    assert chain.tensor_of[vdpc.tensor] == vdpc.tensor  # the checked map stays 8-bit
    for m, q in chain.quant.items():
        assert chain.calib_values[m] > 0
        # MSE clipping: the range is never wider than the no-outlier values' min/max
        assert q.bits == chain.bits[m]
    # the 8-bit chain is the model's stage, unchanged
    loop = c.schedule.loop
    assert [st.node for st in loop.chains[0].steps] == [n for n in g0.nodes[:host_net.patch.stage_len]
                                                         if not n.op.startswith("reshape")][: len(loop.chains[0].steps)]
    text = c.sources.files["src/model.c"]
    calls = re.findall(r"status = (mcu_\w+)\(", text)
    for fn in ("mcu_dwconv_a8w8_s8", "mcu_conv_a4w8_s8", "mcu_dwconv_a2w8_s8", "mcu_conv_a4w8_s8"):
        assert fn in calls, calls
    # arena: each chain's own region buffers, the packed maps at their packed size, the chains exclusive
    sizes = {b.name: b for b in c.plan.buffers}
    for m in chain.quant:
        t0, t1 = region_buffer(m, 0), region_buffer(chain.tensor_of[m], 1)
        assert sizes[t1].size < sizes[t0].size
        assert sizes[t0].group != sizes[t1].group
    check_plan_memory(c.graph, c.plan, schedule=c.schedule)  # both chains, the check and the move
    assert check_problems(c.schedule, c.plan) == []


def _moved(plan, name, offset):
    """``plan`` with buffer ``name`` (and the tensors living in it) at ``offset``: consistent, only misplaced."""
    old = next(b.offset for b in plan.buffers if b.name == name)
    buffers = tuple(dataclasses.replace(b, offset=offset) if b.name == name else b for b in plan.buffers)
    offsets = {t: o + offset - old if plan.roots.get(t, t) == name else o for t, o in plan.offsets.items()}
    return dataclasses.replace(plan, buffers=buffers, offsets=offsets)


def _resized(plan, name, size):
    return dataclasses.replace(plan, buffers=tuple(dataclasses.replace(b, size=size) if b.name == name else b
                                                   for b in plan.buffers))


def _overlap(a, b) -> bool:
    return a.offset < b.offset + b.size and b.offset < a.offset + a.size


def _live_together(a, b) -> bool:
    return a.first <= b.last and b.first <= a.last


def test_plan_safety_check_covers_both_chains_the_check_and_the_move(host_net):
    c, *_ = _setup(host_net)
    g, plan, s = c.graph, c.plan, c.schedule
    check_plan_memory(g, plan, schedule=s)
    n = c.patch.patches
    labels = [st.label for st in plan_steps(g, plan, schedule=s)]
    assert sum("chain 1: input region copy" in x for x in labels) == n  # the probe: the low-bit chain
    assert sum("outlier check of" in x for x in labels) == sum("move of" in x for x in labels) == n  # it resumes
    assert not any("chain 0: input region copy" in x for x in labels)  # the outlier chain takes over the region
    k = len(s.loop.chains[0].steps)
    assert sum(re.search(r"chain 1: layer \d+ ", x) is not None for x in labels) == n * k
    assert sum(re.search(r"chain 0: layer \d+ ", x) is not None for x in labels) == n * (k - s.loop.check.after)
    # the chains share bytes in this plan (their buffers exclusive), which the check allows: which chain a buffer
    # belongs to comes from the schedule
    buffers = list(plan.buffers)
    assert any(a.group == 0 and b.group == 1 and _overlap(a, b) and _live_together(a, b) for a in buffers for b in buffers)
    owner = chain_buffers(g, s)
    assert {owner[b.name] for b in buffers if b.group is not None} == {0, 1}
    assert all(owner.get(b.name) == b.group for b in buffers)
    # checked as one chain, the same plan is refused
    assert any(" over '" in m for m in steps_problems(plan_steps(g, plan, schedule=s), plan))


def test_plan_safety_check_refuses_broken_two_chain_plans(host_net):
    c, _, vdpc, _ = _setup(host_net)
    g, plan, s = c.graph, c.plan, c.schedule
    ck = s.loop.check

    def refused(bad, pattern):
        with pytest.raises(PlanSafetyError, match="unsafe memory plan"):
            check_plan_memory(g, bad, schedule=s)
        problems = plan_problems(g, bad, schedule=s)
        assert any(re.search(pattern, m) for m in problems), "\n".join(problems)

    # a chain-1 buffer moved onto a buffer of its own chain alive at the same time
    own = [b for b in plan.buffers if b.group == 1]
    a, b = next((a, b) for a in own for b in own if a.name < b.name and _live_together(a, b) and not _overlap(a, b)
                and b.offset + a.size <= plan.arena_size)
    overlap = rf"chain 1: .* over '({re.escape(a.name)}|{re.escape(b.name)})'"
    moved = _moved(plan, a.name, b.offset)
    refused(moved, overlap)
    # ... and labelled as chain 0's in the plan's groups: the check does not take the chains from the plan
    relabelled = dataclasses.replace(moved, buffers=tuple(dataclasses.replace(x, group=0) if x.name == a.name else x
                                                          for x in moved.buffers))
    refused(relabelled, overlap)
    # chain 1's input region moved onto the whole input (outside the loop, alive through the stage)
    x1 = region_buffer(g.inputs[0], 1)
    refused(_moved(plan, x1, plan.offsets[g.inputs[0]]), rf"chain 1: input region copy: writes .* over '{g.inputs[0]}'")
    # the check's buffer too small for the region it reads
    refused(_resized(plan, ck.buffer(), 8), rf"outlier check of '{vdpc.tensor}': reads .* outside its buffer "
                                            rf"'{re.escape(ck.buffer())}'")
    # the move's destination too small
    dst = region_buffer(ck.tensor, s.loop.dispatch.outlier_chain)
    refused(_resized(plan, dst, 8), rf"move of '{vdpc.tensor}' into chain 0: writes checked region .* outside its "
                                    rf"buffer '{re.escape(dst)}'")
    # the move's destination onto a buffer of the outlier chain alive at the move
    live = next(b for b in plan.buffers if b.group == 0 and b.name != dst and b.first <= ck.after <= b.last
                and b.offset + 8 <= plan.arena_size)
    refused(_moved(plan, dst, live.offset), rf"move of '{vdpc.tensor}' into chain 0: writes .* over "
                                            rf"'{re.escape(live.name)}'")


def test_kept_bytes_are_not_written_before_they_are_read():
    """``Step.keep``: bytes another chain has not read yet (a checked region an outlier chain still takes from
    the probe's buffer): a write of this step over them is refused although the buffers' groups differ."""
    plan = ArenaPlan((Buffer("src", 64, 0, 3, 0, 1), Buffer("dst", 64, 0, 3, 32, 0)), {"src": 0, "dst": 32},
                     {"src": "src", "dst": "dst"}, 96, 4)
    owner = {"src": 1, "dst": 0}
    step = Step(2, "chain 0: layer 1", (write("dst", 16, "output"),))
    assert steps_problems([step], plan, owner=owner) == []  # another chain's buffer: the chains are exclusive
    assert any("over 'src'" in m for m in steps_problems([step], plan))  # without chains: an overlap
    kept = dataclasses.replace(step, keep=(read("src", 64, "checked region"),))
    assert any("over checked region of 'src' [0, 64), not read yet" in m
               for m in steps_problems([kept], plan, owner=owner))
    far = dataclasses.replace(step, keep=(read("src", 16, "checked region"),))  # [0, 16): not touched by [32, 48)
    assert steps_problems([far], plan, owner=owner) == []


def test_bad_bits_are_user_errors(host_net):
    g = host_net.graph
    with pytest.raises(UserError, match="stay at 8 bits"):
        _setup(host_net, bits={"a": 4})
    with pytest.raises(UserError, match="use one of"):
        _setup(host_net, bits={"b": 3})
    with pytest.raises(UserError, match="not an 8-bit feature map"):
        _setup(host_net, bits={"f": 4})
    assert g is host_net.graph


def test_dispatch_both_ways_bit_exact_on_host(host_net, tmp_path):
    c, *_ = _setup(host_net)
    xs = _inputs(c)
    sim, taken = _simulate(c, xs)
    assert 0 < (taken == 0).sum() < taken.size, taken  # some patches each way
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    dev = run_host(exe, [xs], [c.graph.tensors[c.graph.outputs[0]].size])[0]
    assert np.array_equal(dev, sim)
    # every patch an outlier: the 8-bit chain everywhere, the 8-bit model's output
    c8, *_ = _setup(host_net, threshold=0)
    sim8, taken8 = _simulate(c8, xs)
    g0 = host_net.graph
    ref = np.stack([run_int(g0, {g0.inputs[0]: x})[g0.outputs[0]].reshape(-1) for x in xs])
    assert (taken8 == 0).all() and np.array_equal(sim8, ref)
    assert not np.array_equal(sim, ref)  # the low-bit chain ran: its patches differ from the 8-bit ones


def test_per_channel_scales_bit_exact_on_host(host_net, tmp_path):
    """Per-channel scales (one zero point) on the one-sided maps, folded into the consumers' weights: the chain
    carries its own weights, the C equals the simulator under sanitizers."""
    c, chain, _, _ = _setup(host_net, per_channel=True)
    c_pt, chain_pt, _, _ = _setup(host_net)
    check_plan_memory(c.graph, c.plan, schedule=c.schedule)
    assert chain.channel_scales and chain.flash_bytes > chain_pt.flash_bytes
    for m, sc in chain.channel_scales.items():
        assert len(sc) == c.graph.tensors[m].shape[-1] and len(np.unique(sc)) > 1
    xs = _inputs(c)
    sim, taken = _simulate(c, xs)
    assert 0 < (taken == 0).sum() < taken.size
    assert not np.array_equal(sim, _simulate(c_pt, xs)[0])
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    assert np.array_equal(run_host(exe, [xs], [c.graph.tensors[c.graph.outputs[0]].size])[0], sim)


def test_stage_bitops(host_net):
    c, *_ = _setup(host_net)
    xs = _inputs(c)
    b8, b = stage_bitops(c.schedule, xs)
    plan = host_net.patch
    assert b8 == pytest.approx(plan.macs_patched * 64, rel=0.01)
    assert 0 < b < b8
    c_none, *_ = _setup(host_net, threshold=255)  # every patch low-bit
    b8n, bn = stage_bitops(c_none.schedule, xs)
    assert bn < b and b8n == b8


def test_dispatch_bit_exact_on_qemu_m4(tmp_path_factory, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    c, *_ = _setup(_net(tmp_path_factory, "qemu-m4"))
    check_plan_memory(c.graph, c.plan, schedule=c.schedule)  # the DSP kernels' scratch, per chain
    text = c.sources.files["src/model.c"]
    assert "mcu_conv_dsp_a4w8_s8(" in text or "mcu_conv_dsp_a2w8_s8(" in text
    x_q, outs, _, _ = build_and_run_board(c, c.calib[:3], tmp_path)
    sim, taken = _simulate(c, x_q)
    assert np.array_equal(outs[0], sim)
    assert 0 < (taken == 0).sum() < taken.size, taken


def _resnet8_stage():
    """ResNet-8's stage (conv, conv, conv, residual add into the split; 3 x 3 patches) with its maps at 4 bits and
    the check at the input, and two inputs; the dispatch's threshold the middle of these inputs' distinct patch
    maxima (some patches each way): (the compiled 8-bit model, chain, vdpc, inputs)."""
    c0 = compile_model(SHARED_MODELS / "resnet8_int8.tflite", CompileOptions(
        board="host", progress=False, patch=PatchOptions(mode="forced", split=4, patches=3)))
    g, plan = c0.graph, c0.patch
    calib = quantize_input(c0, c0.calib)
    vdpc = _median_vdpc(g, plan, calib, "input")
    maps = [m for m in stage_maps(g, plan) if m not in (g.inputs[0], plan.split)]
    chain = build_lowbit_chain(g, plan, vdpc, {m: 4 for m in maps}, calib)
    xs = _inputs(c0, n=2)
    distinct = np.unique(stage_stats(g, plan, xs).map(vdpc.tensor).patch_max)
    vdpc = dataclasses.replace(vdpc, threshold=int(distinct[(len(distinct) - 1) // 2]))
    return c0, chain, vdpc, xs


def test_resnet8_residual_stage_bit_exact_on_host(tmp_path):
    """ResNet-8's stage (conv, conv, conv, residual add into the split) with its maps at 4 bits and the check at
    the input: the add requantized for a packed operand, C under sanitizers equal to the simulator."""
    c0, chain, vdpc, xs = _resnet8_stage()
    assert any(n.op == "add" and chain.graph.tensors[n.inputs[1]].bits == 4 for n in chain.nodes)
    c = _compiled(c0, chain, vdpc)
    check_plan_memory(c.graph, c.plan, schedule=c.schedule)
    sim, taken = _simulate(c, xs)
    assert 0 < (taken == 0).sum() < taken.size, taken
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    assert np.array_equal(run_host(exe, [xs], [c.graph.tensors[c.graph.outputs[0]].size])[0], sim)
