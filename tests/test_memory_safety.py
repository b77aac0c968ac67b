"""The plan's memory-safety check (issue 8, finding 4): every kernel's reads and writes, computed from
its documented access pattern, lie inside the buffers the plan allotted and inside the arena. It passes
on every real model and plan kind, and it catches corrupted plans and contradictory shapes."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, PatchOptions, compile_model
from mcucompile.ir import Tensor
from mcucompile.memory import plan_memory
from mcucompile.memory.planner import scratch_buffer
from mcucompile.patch.memory import region_buffer
from mcucompile.schedule.safety import PlanSafetyError, check_plan_memory, plan_problems, plan_steps
from mcucompile.ops import op_def

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
VWW = SHARED_MODELS / "vww_mbv1_025_float.onnx"
RESNET8 = SHARED_MODELS / "resnet8_float.onnx"
MLPERF = ["resnet8", "vww_mbv1_025", "kws_dscnn", "ad_autoencoder"]
REAL = ([MNIST] + [SHARED_MODELS / f"{m}_float.onnx" for m in MLPERF]
        + [SHARED_MODELS / f"{m}_int8.tflite" for m in MLPERF])


def _compile(path, **patch):
    return compile_model(path, CompileOptions(board="host", progress=False, patch=PatchOptions(**patch)))


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_models_layer_by_layer_are_safe(path):
    c = _compile(path, mode="off")
    check_plan_memory(c.graph, c.plan)
    steps = plan_steps(c.graph, c.plan)
    assert len(steps) == sum(1 for n in c.graph.nodes if not op_def(n).alias) == len(c.report.layers)
    assert all(s.accesses for s in steps)


PATCHED = [(VWW, 4, 3, False), (VWW, 12, 8, False), (VWW, 8, 5, True), (RESNET8, 4, 2, False), (RESNET8, 8, 4, True)]


@pytest.fixture(scope="module")
def patched():
    return {(p.name, k, n, b): _compile(p, mode="forced", split=k, patches=n, input_by_patch=b)
            for p, k, n, b in PATCHED}


@pytest.mark.parametrize("case", PATCHED, ids=lambda c: f"{c[0].stem}-{c[1]}x{c[2]}{'-by-patch' if c[3] else ''}")
def test_real_patched_plans_are_safe(patched, case):
    path, k, n, by_patch = case
    c = patched[(path.name, k, n, by_patch)]
    assert c.patch is not None and c.patch.stage_len == k
    check_plan_memory(c.graph, c.plan, c.patch)
    labels = [s.label for s in plan_steps(c.graph, c.plan, c.patch)]
    first = "input filled by the application" if by_patch else "input region copy"
    assert sum(first in label for label in labels) == c.patch.patches
    assert sum("paste into" in label for label in labels) == c.patch.patches
    if path == RESNET8:
        assert any("crop of" in label for label in labels), "the residual add reads a cropped copy"


def assert_unsafe(graph, plan, pattern, patch=None):
    """check_plan_memory refuses the plan, and one of its findings matches ``pattern``."""
    with pytest.raises(PlanSafetyError, match="unsafe memory plan"):
        check_plan_memory(graph, plan, patch)
    problems = plan_problems(graph, plan, patch)
    assert any(re.search(pattern, p) for p in problems), "\n".join(problems)


def _replace_buffer(plan, name, **changes):
    buffers = tuple(dataclasses.replace(b, **changes) if b.name == name else b for b in plan.buffers)
    return dataclasses.replace(plan, buffers=buffers)


@pytest.fixture(scope="module")
def mnist():
    return _compile(MNIST, mode="off")


def test_shrunk_buffer_is_caught(mnist):
    g, plan = mnist.graph, mnist.plan
    conv = next(n for n in g.nodes if n.op == "conv2d")
    out = plan.roots[conv.outputs[0]]
    size = next(b.size for b in plan.buffers if b.name == out)
    bad = _replace_buffer(plan, out, size=size - 16)
    assert_unsafe(g, bad, rf"writes output at arena bytes .* outside its buffer '{out}'")


def test_shifted_offset_is_caught(mnist):
    g, plan = mnist.graph, mnist.plan
    t = g.nodes[1].inputs[0]
    bad = dataclasses.replace(plan, offsets={**plan.offsets, t: plan.offsets[t] + 32})
    assert_unsafe(g, bad, "outside its buffer")


def test_buffer_moved_onto_a_live_one_is_caught(mnist):
    """Both stay inside the arena and are consistent with their offsets: only the overlap is wrong."""
    g, plan = mnist.graph, mnist.plan
    first = next(n for n in g.nodes if not op_def(n).alias)
    src, dst = plan.roots[first.inputs[0]], plan.roots[first.outputs[0]]
    dst_off = next(b.offset for b in plan.buffers if b.name == dst)
    bad = _replace_buffer(plan, src, offset=dst_off)  # the (smaller) input onto the output it is read into
    bad = dataclasses.replace(bad, offsets={**bad.offsets, **{t: dst_off for t, r in plan.roots.items() if r == src}})
    assert_unsafe(g, bad, rf"over '{src}'")


def test_buffer_past_the_arena_is_caught(mnist):
    g, plan = mnist.graph, mnist.plan
    last = max(plan.buffers, key=lambda b: b.offset + b.size)
    bad = _replace_buffer(plan, last.name, offset=plan.arena_size - last.size + 16)
    bad = dataclasses.replace(bad, offsets={**bad.offsets, **{t: bad.offsets[t] + (plan.arena_size - last.size + 16 -
                                                                                    last.offset)
                                                              for t, r in plan.roots.items() if r == last.name}})
    assert_unsafe(g, bad, "leaves the arena")


def test_dead_buffer_is_caught(mnist):
    g, plan = mnist.graph, mnist.plan
    t = plan.roots[g.nodes[0].outputs[0]]
    bad = _replace_buffer(plan, t, last=0)
    assert_unsafe(g, bad, rf"in '{t}' at step 1, but it lives in steps 0..0")


def test_short_scratch_is_caught():
    c = _compile(SHARED_MODELS / "kws_dscnn_int8.tflite", mode="off")
    dw = next(n for n in c.graph.nodes if n.op == "depthwise_conv2d")
    name = scratch_buffer(dw)
    bad = _replace_buffer(c.plan, name, size=16)
    assert_unsafe(c.graph, bad, rf"writes scratch .* outside its buffer '{name}'")


def test_declared_shape_contradicting_the_op_is_caught():
    """Finding 4 in miniature: the tensor a fully connected layer reads is declared smaller than its
    weights' depth. The planner sizes the buffer from the declared shape; the kernel reads what the
    weights say. The planner cannot see it; the check does."""
    c = _compile(SHARED_MODELS / "kws_dscnn_int8.tflite", mode="off")
    g = c.graph
    fc = next(n for n in g.nodes if n.op == "fully_connected")
    tensors, name = dict(g.tensors), fc.inputs[0]
    while True:  # the FC's input and, through reshapes (aliases), the buffer it lives in
        t = tensors[name]
        tensors[name] = dataclasses.replace(t, shape=t.shape[:-1] + (t.shape[-1] // 4,))
        producer = g.producer(name)
        if producer is None or not op_def(producer).alias:
            break
        name = producer.inputs[0]
    bad = g.replace(tensors=tensors)
    assert_unsafe(bad, plan_memory(bad), rf"'{fc.name}' \(fully_connected\): reads input at arena bytes")


def test_short_weights_are_caught(mnist):
    g = mnist.graph
    conv = next(n for n in g.nodes if n.op == "conv2d")
    w = g.tensors[conv.inputs[1]]
    short = Tensor(w.name, w.shape, w.dtype, w.data.reshape(-1)[:-8].copy(), w.quant)
    bad = g.replace(tensors={**g.tensors, w.name: short})
    assert_unsafe(bad, mnist.plan, rf"reads weights bytes .* of 'const:{w.name}'")


def test_patched_region_buffer_and_crop_corruption_is_caught(patched):
    c = patched[(RESNET8.name, 4, 2, False)]
    g, plan, patch = c.graph, c.plan, c.patch
    split = region_buffer(patch.split)
    size = next(b.size for b in plan.buffers if b.name == split)
    assert_unsafe(g, _replace_buffer(plan, split, size=size // 2), rf"patch \d+: .*outside its buffer '{split}'", patch)
    crop = next(b for b in plan.buffers if "@crop" in b.name)
    shifted = dataclasses.replace(plan, offsets={**plan.offsets, crop.name: crop.offset + 16})
    assert_unsafe(g, shifted, rf"crop of .* outside its buffer '{crop.name}'", patch)


def test_by_patch_input_region_corruption_is_caught(patched):
    c = patched[(VWW.name, 8, 5, True)]
    inp = region_buffer(c.graph.inputs[0])
    size = next(b.size for b in c.plan.buffers if b.name == inp)
    assert_unsafe(c.graph, _replace_buffer(c.plan, inp, size=size - 32),
                  rf"input filled by the application: writes input patch .*'{inp}'", c.patch)


def test_kernel_argument_contract_is_checked(mnist):
    """A call the kernel itself would refuse (MCU_ARG_ERROR at run time) is a plan bug too."""
    g = mnist.graph
    conv = next(n for n in g.nodes if n.op == "conv2d" and n is not g.nodes[0])
    w = g.tensors[conv.inputs[1]]
    cout, kh, kw, cin = w.shape
    wrong = Tensor(w.name, (cout, kh, kw, cin // 2), w.dtype, np.zeros((cout, kh, kw, cin // 2), np.int8), w.quant)
    assert_unsafe(g.replace(tensors={**g.tensors, w.name: wrong}), mnist.plan, "MCU_ARG_ERROR")


def test_every_kernel_template_has_an_access_pattern():
    """Each template is called by one declared kernel implementation (ops.kernel.Kernel), which states its
    access pattern; the check itself keeps no table of kernels."""
    from mcucompile.codegen.generate import TEMPLATES
    from mcucompile.ops import KERNELS

    templates = {p.name for p in (TEMPLATES / "kernels").glob("*.c.j2")} - {"crop.c.j2"}  # crop: patch steps
    assert templates == set(KERNELS)
    assert all(callable(k.access) for k in KERNELS.values())
    safety = (REPO / "compiler" / "schedule" / "safety.py").read_text()
    assert ".c.j2" not in safety


def test_a_kernel_without_an_implementation_is_refused(mnist, monkeypatch):
    """A KernelCall naming a template no Kernel declares has no known access pattern: a bug, reported."""
    from mcucompile.ops import KernelCall

    conv = next(n for n in mnist.graph.nodes if n.op == "conv2d")
    monkeypatch.setattr(type(op_def(conv)), "kernel", lambda self, node, graph, board=None: KernelCall("new_kernel.c.j2"))
    with pytest.raises(PlanSafetyError, match="new_kernel.c.j2.*no declared implementation"):
        check_plan_memory(mnist.graph, mnist.plan)


def test_one_template_one_kernel_implementation():
    """A second implementation behind a template another module declares is refused: each would state
    its own access pattern for the same C call."""
    from mcucompile.ops import KERNELS, Kernel, KernelCost

    before = dict(KERNELS)
    with pytest.raises(ValueError, match="conv.c.j2.*declared by mcucompile.ops.conv"):
        Kernel("conv.c.j2", lambda args: ([], []), KernelCost((), {}, lambda node, graph, g: {}))
    assert KERNELS == before
