"""A packed 4- or 2-bit feature map between two test-only steps, ``pack`` and ``unpack`` (issue 9, item 1):
conv -> pack (int4 / int2) -> unpack -> conv -> ... inserted into a compiled net, through tensor sizes,
the arena plan, patch region buffers, the plan safety check, code generation and the host C (under
ASan + UBSan), bit-exact with the simulator; and the C kernels' bytes against the numpy layout
(arith/bitwidth.py)."""

from __future__ import annotations

import dataclasses
import re
import subprocess

import numpy as np
import pytest
from conftest import REPO, make_model, save
from mcucompile.api import (
    CompileOptions,
    PatchOptions,
    compile_model,
    host_runner_source,
    library_dir,
    write_library,
)
from mcucompile.arith.bitwidth import pack, pixel_bytes, qrange, unpack
from mcucompile.codegen import generate_c
from mcucompile.ir import Node, Tensor
from mcucompile.ir.graph import int_dtype
from mcucompile.memory import plan_memory
from mcucompile.memory.planner import ALIGN
from mcucompile.ops.pack import PackAttrs, pack_params, packed_quant
from mcucompile.patch import plan_patches
from mcucompile.patch.execute import run_int_patched
from mcucompile.patch.memory import plan_memory_patched, region_buffer
from mcucompile.patch.planner import region_bytes
from mcucompile.quant.simulate import run_int
from mcucompile.schedule.safety import PlanSafetyError, check_plan_memory, plan_problems
from mcucompile.schedule.schedule import build_schedule
from mcucompile.targets.host import CFLAGS, build_host, find_compiler, run_host
from onnx import helper

C0 = 5  # channels of the packed map: 4 bits -> 3 bytes per pixel (a padding nibble), 2 bits -> 2 bytes


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """conv(3->5) relu, conv(5->8) relu, conv stride 2, global average pool: compiled layer by layer."""
    rng = np.random.default_rng(9)

    def w(*s):
        return (rng.standard_normal(s) * 0.4).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w1"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Conv", ["br", "w2"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["c"], ["y"])]
    inits = {"w0": w(C0, 3, 3, 3), "w1": w(8, C0, 3, 3), "w2": w(6, 8, 3, 3)}
    path = save(make_model(nodes, [1, 3, 13, 11], ["y"], inits), tmp_path_factory.mktemp("packed"), "net.onnx")
    return compile_model(path, CompileOptions(board="host", progress=False, calib_samples=16, patch=PatchOptions(mode="off")))


def with_packed_map(graph, bits: int):
    """The graph with pack (int8 -> ``bits``) and unpack (back to the same int8 params) after the first
    conv; the later consumers read the unpacked copy. Returns (graph, packed tensor name)."""
    conv = graph.nodes[0]
    assert conv.op == "conv2d"
    a = graph.tensors[conv.outputs[0]]
    q_packed = packed_quant(a.quant, bits)
    packed = Tensor(a.name + f"_s{bits}", a.shape, int_dtype(bits), quant=q_packed)
    back = Tensor(a.name + "_u8", a.shape, "int8", quant=a.quant)
    nodes = [conv,
             Node("pack", "pack", (a.name,), (packed.name,), PackAttrs(), pack_params(a.quant, q_packed), "test"),
             Node("unpack", "unpack", (packed.name,), (back.name,), PackAttrs(), pack_params(q_packed, a.quant),
                  "test")]
    for n in graph.nodes[1:]:
        nodes.append(n.replace(inputs=tuple(back.name if i == a.name else i for i in n.inputs)))
    g = graph.replace(nodes=tuple(nodes)).with_tensors([packed, back])
    g.validate()
    return g, packed.name


def _aligned(n: int) -> int:
    """A buffer's size as the planner places it (rounded up to its alignment)."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _samples(g, n=3, seed=4):
    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(g.tensors[g.inputs[0]].shape)
    return rng.integers(-128, 128, shape, dtype=np.int64).astype(np.int8)


def _host_outputs(compiled, graph, plan, schedule, x_q, tmp_path):
    sources = generate_c(schedule, plan, "model")
    c = dataclasses.replace(compiled, graph=graph, plan=plan, patch=schedule.loop.plan if schedule.loop else None,
                            schedule=schedule, sources=sources)
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    return sources, run_host(exe, [x_q], [graph.tensors[graph.outputs[0]].size])[0]


@pytest.mark.parametrize("bits", [4, 2])
def test_packed_map_layer_by_layer(net, bits, tmp_path):
    g, t4 = with_packed_map(net.graph, bits)
    t = g.tensors[t4]
    _, h, w, c = t.shape
    # (a) sizes: the packed tensor and its arena buffer take pixel_bytes per pixel, not C
    assert t.packed and t.pixel_bytes == pixel_bytes(C0, bits) == (3 if bits == 4 else 2)
    assert t.nbytes == h * w * t.pixel_bytes < h * w * c
    plan = plan_memory(g)
    buf = next(b for b in plan.buffers if b.name == plan.roots[t4])
    assert buf.size == _aligned(t.nbytes) < _aligned(h * w * c)

    # (d) the safety check passes, and sees the packed size: one byte less is caught
    check_plan_memory(g, plan)
    short = dataclasses.replace(plan, buffers=tuple(dataclasses.replace(b, size=t.nbytes - 1) if b is buf else b
                                                    for b in plan.buffers))
    with pytest.raises(PlanSafetyError):
        check_plan_memory(g, short)
    assert any(re.search(rf"layer 1 'pack' \(pack\): writes output .* outside its buffer '{buf.name}'", p)
               for p in plan_problems(g, short))

    # the simulator: the round trip loses only the low bits (values requantized to b bits and back)
    x_q = _samples(g)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    a_name = g.nodes[0].outputs[0]
    vals = run_int(g, {g.inputs[0]: x_q[0]}, keep_all=True)
    q, q4 = g.tensors[a_name].quant, t.quant
    lo, hi = qrange(bits)
    assert lo <= vals[t4].min() and vals[t4].max() <= hi and np.ptp(vals[t4]) > 0
    step = 1 << (8 - bits)
    back = vals[a_name + "_u8"].astype(np.int64)
    assert np.all((back - q.zp) == (vals[t4].astype(np.int64) - q4.zp) * step)  # unpack is exact

    # (b) host C, layer by layer: bit-exact with the simulator
    sources, c_outs = _host_outputs(net, g, plan, build_schedule(g), x_q, tmp_path)
    text = sources.files["src/model.c"]
    assert "mcu_pack_s8(" in text and "mcu_unpack_s8(" in text and "(uint8_t *)MODEL_ACT(" in text
    assert np.array_equal(c_outs, np.stack(ref))


def test_packed_map_in_the_patch_stage(net, tmp_path):
    g, t4 = with_packed_map(net.graph, 4)
    # stage: conv, pack, unpack, conv (the split, int8) on a 3x3 grid; the packed map lives per patch
    patch = plan_patches(g, 4, 3)
    assert patch.split == g.nodes[3].outputs[0] and patch.patches == 9
    plan = plan_memory_patched(g, patch)
    t = g.tensors[t4]

    # (c) region buffers hold packed pixels: the largest region's h * w * pixel_bytes (3 B), not * C (5 B)
    regions = [regs[t4] for regs in patch.regions]
    assert len({(r.h, r.w) for r in regions}) > 1  # border and inner patches differ in size
    biggest = max(r.h * r.w for r in regions)
    size = next(b.size for b in plan.buffers if b.name == region_buffer(t4))
    assert biggest * t.pixel_bytes == max(region_bytes(g, t4, r) for r in regions)
    assert size == _aligned(biggest * t.pixel_bytes) < _aligned(biggest * C0)
    assert t4 not in plan.offsets  # never whole: only its region buffer exists

    # (d) safe, and a region buffer one byte short is caught
    check_plan_memory(g, plan, patch)
    short = dataclasses.replace(plan, buffers=tuple(dataclasses.replace(b, size=biggest * t.pixel_bytes - 1)
                                                    if b.name == region_buffer(t4) else b for b in plan.buffers))
    problems = plan_problems(g, short, patch)
    assert any(re.search(rf"patch \d: layer 1 'pack' \(pack\): writes output .* outside its buffer "
                         rf"'{re.escape(region_buffer(t4))}'", p) for p in problems), "\n".join(problems)

    # simulator: patched equals layer by layer; host C equals both
    x_q = _samples(g)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    for x, r in zip(x_q, ref):
        assert np.array_equal(run_int_patched(g, patch, {g.inputs[0]: x})[g.outputs[0]].reshape(-1), r)
    sources, c_outs = _host_outputs(net, g, plan, build_schedule(g, patch), x_q, tmp_path)
    assert "mcu_pack_s8(" in sources.files["src/model.c"]
    assert np.array_equal(c_outs, np.stack(ref))


_KERNEL_MAIN = r"""
#include <stdio.h>
#include "mcunn.h"
int main(void)
{
    static const int8_t in[%(n)d] = { %(values)s };
    static uint8_t packed[%(nbytes)d];
    static int8_t back[%(n)d];
    const mcu_pack_params to = { 0, 0, 1073741824, 1, %(bits)d };   /* x * 1: values already in range */
    const mcu_pack_params from = { 0, 0, 1073741824, 1, %(bits)d };
    const mcu_dims dims = { 1, %(h)d, %(w)d, %(c)d };
    const mcu_dims bad = { 1, %(h)d, %(w)d, %(c)d + 1 };
    if (mcu_pack_s8(NULL, &to, &dims, in, &dims, packed) != MCU_OK ||
        mcu_unpack_s8(NULL, &from, &dims, packed, &dims, back) != MCU_OK ||
        mcu_pack_s8(NULL, &to, &dims, in, &bad, packed) != MCU_ARG_ERROR)
        return 1;
    for (int i = 0; i < %(nbytes)d; i++) printf("%%d ", packed[i]);
    printf("\n");
    for (int i = 0; i < %(n)d; i++) printf("%%d ", back[i]);
    printf("\n");
    return 0;
}
"""


@pytest.mark.parametrize("bits,channels", [(4, 8), (4, 5), (2, 7), (2, 8)])
def test_c_kernels_follow_the_numpy_layout(bits, channels, tmp_path):
    """mcu_pack_s8 writes exactly arith.bitwidth.pack's bytes (padding bits zero) and mcu_unpack_s8 reads
    them back; a layout both kernels got wrong the same way would pass the model tests, not this one."""
    lo, hi = qrange(bits)
    h, w = 2, 3
    v = np.random.default_rng(bits * 10 + channels).integers(lo, hi + 1, (h, w, channels))
    v.flat[:2] = lo, hi
    expected = pack(v, bits)
    main = tmp_path / "main.c"
    main.write_text(_KERNEL_MAIN % {"n": v.size, "values": ", ".join(map(str, v.ravel())), "nbytes": expected.size,
                                    "bits": bits, "h": h, "w": w, "c": channels})
    exe = tmp_path / "k"
    rt = REPO / "runtime_c"
    subprocess.run([find_compiler(), *CFLAGS, "-I", str(rt / "include"), str(rt / "src" / "mcunn_pack.c"), str(main),
                    "-o", str(exe)], check=True, capture_output=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    packed = np.array(lines[0].split(), np.uint8).reshape(expected.shape)
    assert np.array_equal(packed, expected)
    assert np.array_equal(unpack(packed, bits, channels), v)
    assert np.array_equal(np.array(lines[1].split(), np.int64), v.ravel())


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    """conv(3->5) relu, conv(5->5), add(first conv, second conv), conv stride 2, global average pool."""
    rng = np.random.default_rng(1)

    def w(*s):
        return (rng.standard_normal(s) * 0.4).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w1"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["ar", "b"], ["s"]),
             helper.make_node("Conv", ["s", "w2"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["c"], ["y"])]
    inits = {"w0": w(C0, 3, 3, 3), "w1": w(C0, C0, 3, 3), "w2": w(6, C0, 3, 3)}
    path = save(make_model(nodes, [1, 3, 13, 11], ["y"], inits), tmp_path_factory.mktemp("residual"), "res.onnx")
    return compile_model(path, CompileOptions(board="host", progress=False, calib_samples=16, patch=PatchOptions(mode="off")))


def test_packed_operand_read_through_a_crop(residual, tmp_path):
    """One packed map, two unpacks: one feeds a 3x3 conv (needs a halo), one the residual add (needs only the
    output region), so the add's unpack reads a cropped copy of the packed region buffer."""
    g = residual.graph
    conv0, conv1, add = g.nodes[0], g.nodes[1], g.nodes[2]
    a = g.tensors[conv0.outputs[0]]
    q4 = packed_quant(a.quant, 4)
    packed = Tensor(a.name + "_s4", a.shape, "int4", quant=q4)
    u1, u2 = (Tensor(a.name + f"_u{k}", a.shape, "int8", quant=a.quant) for k in (1, 2))
    nodes = (conv0, Node("pack", "pack", (a.name,), (packed.name,), PackAttrs(), pack_params(a.quant, q4), "test"),
             Node("unpack1", "unpack", (packed.name,), (u1.name,), PackAttrs(), pack_params(q4, a.quant), "test"),
             Node("unpack2", "unpack", (packed.name,), (u2.name,), PackAttrs(), pack_params(q4, a.quant), "test"),
             conv1.replace(inputs=(u1.name,) + conv1.inputs[1:]),
             add.replace(inputs=tuple(u2.name if i == a.name else i for i in add.inputs))) + g.nodes[3:]
    g = g.replace(nodes=nodes).with_tensors([packed, u1, u2])
    g.validate()
    patch = plan_patches(g, 6, 3)
    assert patch.crops == ((3, 0),)  # unpack2 reads the packed map through a crop
    plan = plan_memory_patched(g, patch)
    check_plan_memory(g, plan, patch)
    x_q = _samples(g)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    for x, r in zip(x_q, ref):
        assert np.array_equal(run_int_patched(g, patch, {g.inputs[0]: x})[g.outputs[0]].reshape(-1), r)
    _, c_outs = _host_outputs(residual, g, plan, build_schedule(g, patch), x_q, tmp_path)
    assert np.array_equal(c_outs, np.stack(ref))


def test_safety_refuses_a_kernel_that_reads_a_packed_map_as_bytes(net, monkeypatch):
    """The plan safety check names a layer whose kernel takes one value per byte but is handed a packed map (an
    op whose kernel() forgets the packed case: here the final pooling made to return its int8 kernel), and a view
    that would regroup a packed map's channels, instead of letting them read past the map."""
    from mcucompile.ops import op_def
    from mcucompile.schedule.safety import packed_map_problems

    g = net.graph
    last = g.nodes[-1]
    src = last.inputs[0]
    t = g.tensors[src]
    q = packed_quant(t.quant, 4)
    packed = Tensor(src + "_s4", t.shape, int_dtype(4), quant=q)
    nodes = list(g.nodes[:-1]) + [
        Node("pack", "pack", (src,), (packed.name,), PackAttrs(), pack_params(t.quant, q), "test"),
        last.replace(inputs=(packed.name,) + tuple(last.inputs[1:]))]
    g2 = g.replace(nodes=tuple(nodes)).with_tensors([packed])
    assert packed_map_problems(g) == [] and packed_map_problems(g2) == []  # the packed pooling kernel takes it
    int8_call = op_def(last).kernel(last, g, None)
    monkeypatch.setattr(type(op_def(last)), "kernel", lambda self, node, graph, board=None: int8_call)
    problems = packed_map_problems(g2)
    assert len(problems) == 1 and f"'{last.name}' ({last.op})" in problems[0] and packed.name in problems[0], problems
    with pytest.raises(PlanSafetyError, match="takes one value per byte, not the packed map"):
        check_plan_memory(g2, plan_memory(g2))
