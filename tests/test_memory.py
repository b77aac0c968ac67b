"""Structural tests of the arena plan: no two live buffers overlap, the C arena equals the plan."""

from __future__ import annotations

import re

import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, PatchOptions, compile_model
from mcucompile.memory.planner import plan_memory

MODELS = [SHARED_MODELS / f"{n}.onnx" for n in ("resnet8_float", "vww_mbv1_025_float", "kws_dscnn_float", "ad_autoencoder_float")]
MODELS.append(REPO / "models" / "mnist" / "mnist_cnn.onnx")


@pytest.fixture(scope="module", params=MODELS, ids=lambda p: p.stem)
def compiled(request):
    return compile_model(request.param, CompileOptions(progress=False, patch=PatchOptions(mode="off")))


def test_no_two_live_buffers_overlap(compiled):
    plan = compiled.plan
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        assert a.offset % 16 == 0
        assert a.offset + a.size <= plan.activations_size
        for b in bufs[i + 1 :]:
            live_together = not (a.last < b.first or b.last < a.first)
            disjoint = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
            assert not live_together or disjoint, f"{a} overlaps {b}"


def test_every_tensor_read_lives_in_its_buffer(compiled):
    g, plan = compiled.graph, compiled.plan
    by_root = {b.name: b for b in plan.buffers}
    for step, n in enumerate(g.nodes):
        for t in list(n.inputs) + list(n.outputs):
            if not t or g.tensors[t].is_const:
                continue
            b = by_root[plan.roots[t]]
            assert b.first <= step <= b.last, f"{t} used at step {step} outside {b}"
            assert g.tensors[t].nbytes <= b.size


def test_c_arena_size_equals_plan(compiled):
    header = compiled.sources.files["include/model.h"]
    m = re.search(r"#define MODEL_ARENA_SIZE (\d+)", header)
    assert int(m.group(1)) == compiled.plan.arena_size == compiled.report.peak_sram_bytes


def test_plan_beats_one_buffer_per_tensor(compiled):
    g = compiled.graph
    total = sum(t.nbytes for t in g.tensors.values() if not t.is_const)
    assert compiled.plan.activations_size < total or len(compiled.plan.buffers) <= 2


def test_inplace_and_alias(compiled):
    g, plan = compiled.graph, compiled.plan
    for n in g.nodes:
        if n.op == "reshape":
            assert plan.offsets[n.outputs[0]] == plan.offsets[n.inputs[0]]
    assert plan_memory(g, compiled.target).offsets == plan.offsets  # deterministic (the kernels' own scratch)


def test_live_bytes_count_one_of_the_exclusive_chains():
    """Buffers of mutually exclusive groups (a patch loop's chains) overlap in steps but never live together: the
    profile counts the buffers of no group plus the largest group's, never their sum."""
    from mcucompile.memory.planner import ArenaPlan, Buffer

    bufs = (Buffer("in", 100, 0, 3, 0), Buffer("c0a", 40, 1, 2, 100, group=0), Buffer("c0b", 30, 2, 2, 140, group=0),
            Buffer("c1a", 50, 1, 2, 100, group=1), Buffer("out", 20, 3, 3, 200))
    plan = ArenaPlan(bufs, {b.name: b.offset for b in bufs}, {b.name: b.name for b in bufs}, 220, steps=4)
    assert plan.live_bytes() == [100, 150, 170, 120]
