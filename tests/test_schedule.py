"""The typed schedule: today's compile is a schedule with one chain; a patch loop of two chains with a
per-patch dispatch (test-only: patches of even and odd index run different chains) goes through the
simulator, the memory plan (the chains' buffers are mutually exclusive and share bytes), code generation
and the host C, and every output equals layer-by-layer execution."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import SHARED_MODELS

from mcucompile.api import CompileOptions, PatchOptions, compile_model, host_runner_source, library_dir, write_library
from mcucompile.codegen import generate_c
from mcucompile.patch.memory import plan_memory_patched, region_buffer
from mcucompile.quant.simulate import run_int
from mcucompile.schedule.schedule import Dispatch, build_schedule, run_schedule_int
from mcucompile.targets.host import build_host, run_host

RESNET8 = SHARED_MODELS / "resnet8_int8.tflite"


@pytest.fixture(scope="module")
def patched():
    # 4 stage layers (conv, conv, conv, add: the add reads a cropped copy) on a 3x3 grid (9 patches)
    return compile_model(RESNET8, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="forced", split=4, patches=3)))


def test_one_chain_schedule_is_the_compile(patched):
    s = build_schedule(patched.graph, patched.patch)
    assert s.loop is not None and len(s.loop.chains) == 1 and s.loop.dispatch is None
    stage = [st.node for st in s.loop.chains[0].steps]
    assert stage == list(patched.graph.nodes[: patched.patch.stage_len])
    assert [st.index for st in s.layers] == list(range(len(s.layers)))
    assert all(st.in_loop for st in s.loop.chains[0].steps) and not any(st.in_loop for st in s.rest.steps)
    assert s.loop.chains[0].steps[0].buffer(patched.graph.inputs[0]) == region_buffer(patched.graph.inputs[0])
    flat = build_schedule(patched.graph)
    assert flat.loop is None and len(flat.rest.steps) == len(s.layers)


def test_dispatch_must_name_a_chain_per_patch(patched):
    with pytest.raises(ValueError):
        build_schedule(patched.graph, patched.patch, chains=2, dispatch=Dispatch((0, 1)))
    with pytest.raises(ValueError):
        build_schedule(patched.graph, patched.patch, chains=2, dispatch=Dispatch((2,) * patched.patch.patches))


def test_two_chains_dispatched_by_patch_parity(patched, tmp_path):
    g, patch = patched.graph, patched.patch
    assert patch.crops and patch.patches == 9  # crop buffers and scratch are per chain too
    parity = Dispatch(tuple(p % 2 for p in range(patch.patches)))
    schedule = build_schedule(g, patch, chains=2, dispatch=parity)

    # memory: each chain has its own region buffers, in exclusive groups, and they share bytes
    one = plan_memory_patched(g, patch)
    two = plan_memory_patched(g, patch, chains=2)
    by_name = {b.name: b for b in two.buffers}
    chain1 = [b for b in two.buffers if b.group == 1]
    assert chain1 and all(b.name.endswith(("@patch1", ".1", "@scratch1")) for b in chain1)

    def overlaps(a, b):
        return a.offset < b.offset + b.size and b.offset < a.offset + a.size and not (a.last < b.first or b.last < a.first)

    shared = [(a.name, b.name) for a in chain1 for b in two.buffers if b.group == 0 and overlaps(a, b)]
    assert shared, "the chains' buffers never share bytes"
    assert two.arena_size == one.arena_size, "two exclusive chains cost no more SRAM than one"
    for b in two.buffers:  # buffers of one chain (or shared ones) never overlap while both live
        for c in two.buffers:
            if b.name < c.name and overlaps(b, c):
                assert b.group is not None and c.group is not None and b.group != c.group, (b, c)
    assert by_name[region_buffer(patch.split, 1)].group == 1

    # simulator: the dispatched loop equals layer by layer
    rng = np.random.default_rng(3)
    x_q = rng.integers(-128, 128, (3,) + tuple(g.tensors[g.inputs[0]].shape), dtype=np.int64).astype(np.int8)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    for x, r in zip(x_q, ref):
        assert np.array_equal(run_schedule_int(schedule, {g.inputs[0]: x})[g.outputs[0]].reshape(-1), r)

    # codegen + host C: a switch over the chains, and the same bytes
    sources = generate_c(schedule, two, "model")
    text = sources.files["src/model.c"]
    assert "switch (model_patch_chain[p])" in text and "case 1:" in text
    assert f"model_patch_chain[{patch.patches}] = {{ {', '.join(str(p % 2) for p in range(patch.patches))} }}" in text
    compiled = dataclasses.replace(patched, plan=two, sources=sources)
    out = write_library(compiled, tmp_path / "lib")
    exe = build_host(library_dir(out, compiled), host_runner_source(compiled), tmp_path / "build", sanitize=True)
    c_outs = run_host(exe, [x_q], [g.tensors[g.outputs[0]].size])[0]
    assert np.array_equal(c_outs, np.stack(ref))
