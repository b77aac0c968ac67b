"""The kernels for packed 4- and 2-bit activations (runtime_c/include/mcunn_packed.h, compiler/ops/packed_kernels.py).

Kernel by kernel (tests/c_kernels/packed_cases.py): every (input bits, output bits) pair of {8, 4, 2} (sub-byte
in or out), conv and depthwise, portable and DSP, on random layers (odd sizes, strides, dilations, paddings,
start offsets with partial output regions, zero points, channel counts on and off the values per byte and the
SIMD block, several output chunks, groups and channel multipliers) against the simulator's bytes, on the host
under ASan + UBSan and on qemu-m4, qemu-m7 and qemu-m55.

In a compiled network: the stage maps of a small CNN made 4 and 2 bits (each producer writes the packed map,
each consumer reads it directly: no pack / unpack layer), layer by layer and patched, the C bit-exact with the
simulator on the host (sanitizers) and on qemu-m4; the kernel each layer takes, with its reason, the packed
buffers in the arena and the plan safety check seeing their sizes.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_model, save
from mcucompile.api import (
    CompileOptions,
    PatchOptions,
    build_and_run_board,
    compile_model,
    host_runner_source,
    library_dir,
    write_library,
)
from mcucompile.arith.bitwidth import pixel_bytes
from mcucompile.arith.fixedpoint import quantize_multiplier, quantize_multiplier_array
from mcucompile.codegen import generate_c
from mcucompile.ir import QuantParams
from mcucompile.ir.graph import int_dtype
from mcucompile.memory import plan_memory
from mcucompile.ops.base import activation_bounds, op_def
from mcucompile.ops.conv import ConvParams
from mcucompile.ops.elementwise import ADD_LEFT_SHIFT, AddParams
from mcucompile.ops.kernel import KernelTarget
from mcucompile.ops.pack import packed_quant
from mcucompile.ops.packed_kernels import packed_problem
from mcucompile.ops.pooling import PoolParams
from mcucompile.ops.unary import LutParams, Unary, build_table
from mcucompile.patch import plan_patches
from mcucompile.patch.cost import estimate_instructions, kernel_of
from mcucompile.patch.execute import run_int_patched
from mcucompile.patch.memory import plan_memory_patched, region_buffer
from mcucompile.quant.simulate import run_int
from mcucompile.schedule.safety import PlanSafetyError, check_plan_memory
from mcucompile.schedule.schedule import build_schedule
from mcucompile.targets.host import build_host, run_host
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent / "c_kernels"))
import harness
import packed_cases

SEED = 14
PER_PAIR = 4  # 4 conv + 4 depthwise cases per bit pair: 64 cases
MAIN = harness.HERE / "packed_main.c"


def _need_arm_tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "qemu-system-arm)")


@pytest.fixture(scope="module")
def cases():
    return packed_cases.random_cases(SEED, PER_PAIR) + packed_cases.dsp_edge_cases(SEED)


@pytest.fixture(scope="module")
def cases_c(cases, tmp_path_factory):
    return packed_cases.write_cases(cases, SEED, tmp_path_factory.mktemp("packed_cases") / "cases.c")


def test_cases_cover_what_the_kernels_branch_on(cases):
    """The random layers reach every path: sub-byte channel counts on and off the values per byte and the
    4-block, start offsets, partial regions, chunks past 32 channels, groups / multipliers (portable only)."""
    assert {(c.in_bits, c.out_bits) for c in cases} == set(packed_cases.BIT_PAIRS)
    cin = [c.in_dims[3] for c in cases]
    assert any(v % 4 == 0 for v in cin) and any(v % 4 for v in cin) and any(v % 2 for v in cin)
    assert any(min(c.pad) < 0 for c in cases) and any(max(c.pad) > 0 for c in cases)
    assert any(c.out_dims[3] > 32 for c in cases if c.has_fast)
    assert any(not c.has_fast for c in cases) and sum(c.has_fast for c in cases) > len(cases) // 2
    assert any(c.dilation != (1, 1) for c in cases) and any(c.stride != (1, 1) for c in cases)
    # the SIMD32 output stage: a sub-byte output clamped to its whole width with every shift in [-23, -2] is
    # packed in registers (pk_store_sat), its whole bytes then a partial last byte; other clamps or shifts stage
    # int8 first
    fast_sub = [c for c in cases if c.has_fast and c.out_bits < 8]
    for bits in (4, 2):
        sat = [c for c in fast_sub if c.out_bits == bits and _sat_store(c)]
        assert any(c.out_dims[3] % (8 // bits) for c in sat) and any(c.out_dims[3] % (8 // bits) == 0 for c in sat)
        assert any(c.out_dims[3] > 32 for c in sat)
        assert any(not _sat_store(c) for c in fast_sub if c.out_bits == bits)
    assert any(not all(-23 <= s <= -2 for s in c.shift) for c in fast_sub)
    # ... and the same register-packed output with some shifts in [-1, 2] (right 1, right 0 with left shifts:
    # each channel branches on its shift), on both kernel kinds at both widths, outputs not all saturated
    for bits in (4, 2):
        for kind in ("conv", "dwconv"):
            high = [c for c in fast_sub if c.out_bits == bits and c.kind == packed_cases.KIND[kind] and
                    _sat_store(c, any_shift=True) and not _sat_store(c)]
            assert {-1, 0, 1, 2} <= {int(s) for c in high for s in c.shift}, (bits, kind)
            assert any(c.out_dims[3] % (8 // bits) for c in high), (bits, kind)
    # the gathered window (C_in % 4) of the SIMD32 conv at every input width; int8 rows as runs (dilation 1,
    # clipped at both edges) and tap by tap (dilated)
    gathered = [c for c in cases if c.has_fast and c.kind == packed_cases.KIND["conv"] and c.in_dims[3] % 4]
    assert {c.in_bits for c in gathered} == {8, 4, 2}
    a8 = [c for c in gathered if c.in_bits == 8]
    assert any(c.dilation[1] > 1 for c in a8) and any(c.dilation[1] == 1 and c.pad[1] > 0 for c in a8)
    assert any(c.dilation[1] == 1 and c.pad[1] < 0 for c in a8)
    # the direct window (C_in % 4 == 0) of the SIMD32 conv: kernel rows unpacked as runs (8 fields per load from
    # 16 values on) clipped at an edge, one-column windows tap by tap, dilated windows tap by tap
    direct = [c for c in cases if c.has_fast and c.kind == packed_cases.KIND["conv"] and c.in_dims[3] % 4 == 0]
    for bits in (4, 2):
        d = [c for c in direct if c.in_bits == bits]
        assert any(c.filter_dims[2] > 1 and c.dilation[1] == 1 and c.in_dims[3] * c.filter_dims[2] >= 16 for c in d)
        assert any(c.filter_dims[2] > 1 and c.dilation[1] == 1 and c.pad[1] > 0 for c in d)
        assert any(c.filter_dims[2] == 1 for c in d) and any(c.dilation[1] > 1 for c in d)
    # the depthwise tap-pair loops at every input width, with and without an odd last tap, on both kernel kinds
    dw = [c for c in cases if c.has_fast and c.kind == packed_cases.KIND["dwconv"]]
    for bits in (8, 4, 2):
        taps = {c.filter_dims[1] * c.filter_dims[2] % 2 for c in dw if c.in_bits == bits and c.in_dims[3] >= 4}
        assert taps == {0, 1}, (bits, taps)


def _sat_store(c, any_shift: bool = False) -> bool:
    """pk_store_sat's condition: the clamp is the output width's range, every shift foldable (``any_shift``:
    every shift in [-23, 30], its per-channel branch)."""
    q = 1 << (c.out_bits - 1)
    top = 30 if any_shift else -2
    return (max(c.act[0], -q), min(c.act[1], q - 1)) == (-q, q - 1) and all(-23 <= s <= top for s in c.shift)


def test_kernels_equal_the_simulator_on_host_under_sanitizers(cases, cases_c, tmp_path):
    exe = harness.build_host([cases_c, MAIN], tmp_path / "pk", sanitize=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, harness.failures(res.stdout) + res.stderr[-3000:]
    assert f"MCU PACKED CASES {len(cases)} failed 0" in res.stdout


@pytest.mark.parametrize("board_name", ["qemu-m4", "qemu-m7", "qemu-m55"])
def test_kernels_equal_the_simulator_on_emulated_cores(board_name, cases, cases_c, tmp_path):
    """The DSP versions with the real SIMD32 instructions (M55: its DSP extension, which a layer its MVE packed
    kernels do not take runs; those are tested in test_packed_mve.py)."""
    _need_arm_tools()
    from mcucompile.boards import get_board
    from mcucompile.targets.firmware import run_qemu

    board = get_board(board_name)
    elf = harness.build_firmware(board, [cases_c, MAIN], tmp_path / board_name)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                                       check=False).stdout
    assert "smlad" in dis and "sxtab16" in dis
    run = run_qemu(elf, board, timeout=120)
    assert run.status == 0, harness.failures(run.log)
    assert f"MCU PACKED CASES {len(cases)} failed 0" in run.log, harness.failures(run.log)


def test_the_harness_catches_wrong_bytes(cases, tmp_path):
    """A DSP kernel given the model's weight order, and a portable case whose expected byte is off by one bit,
    are both reported: the comparison can fail."""
    fast = next(i for i, c in enumerate(cases) if c.has_fast and c.filter_dims[0] > 1 and c.kind == 0)
    slow = next(i for i, c in enumerate(cases) if i != fast)
    broken = list(cases)
    broken[fast] = dataclasses.replace(cases[fast], fast_filter=cases[fast].filter)
    wrong = cases[slow].expected.copy()
    wrong[0] ^= 1
    broken[slow] = dataclasses.replace(cases[slow], expected=wrong)
    src = packed_cases.write_cases(broken, SEED, tmp_path / "cases.c")
    exe = harness.build_host([src, MAIN], tmp_path / "pk", sanitize=False)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=False).stdout
    assert f"FAIL case {fast} " in out and "DSP bytes differ" in out
    assert f"FAIL case {slow} " in out and "portable bytes differ" in out
    assert "failed 2" in out


# --- a compiled network with 4- and 2-bit stage maps ---------------------------------------------------------

#: the stage maps' bits: conv (a8 -> a4), depthwise (a4 -> a2), pointwise (a2 -> a4), depthwise s2 (a4 -> a4),
#: conv (a4 -> a2), pointwise (a2 -> a8, 36 channels), then int8
MAP_BITS = {"a": 4, "b": 2, "c": 4, "d": 4, "e": 2}
STAGE = 6  # the split: the pointwise layer writing 'f' (int8)


def _net(tmp_path_factory, board: str):
    rng = np.random.default_rng(3)

    def w(*s):
        return (rng.standard_normal(s) * 0.35).astype(np.float32)

    def conv(x, y, wn, k, group=1, stride=1):
        return [helper.make_node("Conv", [x, wn], [y + "_"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                                 strides=[stride, stride]), helper.make_node("Relu", [y + "_"], [y])]

    nodes = (conv("x", "a", "w0", 3) + conv("a", "b", "w1", 3, group=6) + conv("b", "c", "w2", 1)
             + conv("c", "d", "w3", 3, group=8, stride=2) + conv("d", "e", "w4", 3) + conv("e", "f", "w5", 1)
             + conv("f", "g", "w6", 3, group=36) + [helper.make_node("GlobalAveragePool", ["g"], ["y"])])
    inits = {"w0": w(6, 3, 3, 3), "w1": w(6, 1, 3, 3), "w2": w(8, 6, 1, 1), "w3": w(8, 1, 3, 3),
             "w4": w(12, 8, 3, 3), "w5": w(36, 12, 1, 1), "w6": w(36, 1, 3, 3)}
    path = save(make_model(nodes, [1, 3, 19, 17], ["y"], inits), tmp_path_factory.mktemp("pknet"), "net.onnx")
    return compile_model(path, CompileOptions(board=board, progress=False, calib_samples=16,
                                              patch=PatchOptions(mode="off")))


def lower_maps(graph, bits: dict[str, int]):
    """The graph with the activation tensors named in ``bits`` (by their ONNX names) at those bitwidths: packed
    params (``packed_quant``: scale * 2^(8-b)), the layers producing and consuming them requantized for them
    (conv / depthwise: multipliers, zero points, clamps, bias rescaled; add: its rescales; pooling and pad keep
    their input's params; lookups: the table over the input's values), so each consumer reads the packed map
    itself."""
    names = {next(name for name, t in graph.tensors.items() if t.origin == onnx_name): b for onnx_name, b in bits.items()}
    tensors = dict(graph.tensors)
    for name, b in names.items():
        t = tensors[name]
        tensors[name] = dataclasses.replace(t, dtype=int_dtype(b), quant=packed_quant(t.quant, b))
    nodes = []
    for n in graph.nodes:
        if not (set(n.inputs) | set(n.outputs)) & set(names):
            nodes.append(n)
            continue
        in_q, out_q = tensors[n.inputs[0]].quant, tensors[n.outputs[0]].quant
        if n.op in ("conv2d", "depthwise_conv2d"):
            wscale = np.asarray(tensors[n.inputs[1]].quant.scale, np.float64)
            bt = tensors[n.inputs[2]]
            new_scale = in_q.s * wscale
            bias = np.clip(np.round(bt.data.astype(np.float64) * np.asarray(bt.quant.scale) / new_scale),
                           -(2**31), 2**31 - 1).astype(np.int32)
            tensors[bt.name] = dataclasses.replace(bt, data=bias, qdata=None, quant=QuantParams(
                new_scale, np.zeros(len(new_scale), np.int64), 0, 32))
            mult, shift = quantize_multiplier_array(new_scale / out_q.s)
            lo, hi = activation_bounds(n.attrs.activation, out_q)
            n = n.replace(params=ConvParams(-in_q.zp, out_q.zp, lo, hi, mult, shift))
        elif n.op == "add":  # as Add.quantize, for the operands' and output's new params
            q1, q2 = in_q, tensors[n.inputs[1]].quant
            twice_max = 2 * max(q1.s, q2.s)
            (m1, s1), (m2, s2) = quantize_multiplier(q1.s / twice_max), quantize_multiplier(q2.s / twice_max)
            mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * out_q.s))
            lo, hi = activation_bounds(n.attrs.activation, out_q)
            n = n.replace(params=AddParams(-q1.zp, -q2.zp, out_q.zp, m1, s1, m2, s2, mo, so, ADD_LEFT_SHIFT, lo, hi))
        elif n.op in ("max_pool2d", "avg_pool2d", "pad"):  # the output keeps the input's params and bits
            assert in_q.same_as(out_q), n.name
            if n.op != "pad":
                n = n.replace(params=PoolParams(*activation_bounds(n.attrs.activation, out_q)))
        elif n.op == "unary":  # the table over the input's 2^bits values, into the output's params
            n = n.replace(params=LutParams(build_table(lambda x, n=n: Unary()._f(n, x), in_q, out_q)))
        else:
            raise AssertionError(f"lower_maps: no rule for {n.op}")
        nodes.append(n)
    g = graph.replace(nodes=tuple(nodes), tensors=tensors)
    g.validate()
    return g


@pytest.fixture(scope="module")
def host_net(tmp_path_factory):
    return _net(tmp_path_factory, "host")


@pytest.fixture(scope="module")
def m4_net(tmp_path_factory):
    return _net(tmp_path_factory, "qemu-m4")


def _samples(g, n=2, seed=5):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (n,) + tuple(g.tensors[g.inputs[0]].shape), dtype=np.int64).astype(np.int8)


def _rebuild(compiled, graph, patch=None):
    """``compiled`` with its graph replaced: plan, safety check, schedule and C for the same kernel target."""
    target = compiled.target
    if patch is None:
        plan = plan_memory(graph, target)
    else:
        plan = plan_memory_patched(graph, patch, board=target)
    check_plan_memory(graph, plan, patch, target)
    schedule = build_schedule(graph, patch, board=target)
    sources = generate_c(schedule, plan, "model")
    return dataclasses.replace(compiled, graph=graph, plan=plan, patch=patch, schedule=schedule, sources=sources)


def _calls(c) -> list[str]:
    return re.findall(r"status = (mcu_\w+)\(", c.sources.files["src/model.c"])


def _host_outputs(c, x_q, tmp_path):
    out = write_library(c, tmp_path / "lib")
    exe = build_host(library_dir(out, c), host_runner_source(c), tmp_path / "build", sanitize=True)
    return run_host(exe, [x_q], [c.graph.tensors[c.graph.outputs[0]].size])


@pytest.mark.parametrize("patched", [False, True], ids=["layer_by_layer", "patched"])
def test_packed_network_on_host_is_bit_exact(host_net, patched, tmp_path):
    g = lower_maps(host_net.graph, MAP_BITS)
    stage = g.nodes[:STAGE]
    assert [g.tensors[n.outputs[0]].bits for n in stage] == [4, 2, 4, 4, 2, 8]
    patch = plan_patches(g, STAGE, 3) if patched else None
    c = _rebuild(host_net, g, patch)
    calls = _calls(c)
    # producers write and consumers read the packed maps themselves: no pack / unpack layer
    assert "mcu_pack_s8" not in calls and "mcu_unpack_s8" not in calls
    for fn in ("mcu_conv_a8w8_s8", "mcu_dwconv_a4w8_s8", "mcu_conv_a2w8_s8", "mcu_dwconv_a4w8_s8", "mcu_conv_a4w8_s8"):
        assert fn in calls, calls
    text = c.sources.files["src/model.c"]
    assert "#include \"mcunn_packed.h\"" in text
    x_q = _samples(g)
    ref = []
    for x in x_q:
        r = run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1)
        if patched:
            assert np.array_equal(run_int_patched(g, patch, {g.inputs[0]: x})[g.outputs[0]].reshape(-1), r)
        ref.append(r)
    assert np.array_equal(_host_outputs(c, x_q, tmp_path)[0], np.stack(ref))


def test_packed_maps_take_their_packed_size_in_the_arena(host_net):
    """Each lowered map's buffer is H * W * P(C, b) bytes (per patch: its largest region's), and the safety check
    sees that size: one byte short is caught."""
    g = lower_maps(host_net.graph, MAP_BITS)
    plan = plan_memory(g)
    for name in (n.outputs[0] for n in g.nodes[:STAGE - 1]):
        t = g.tensors[name]
        _, h, w, ch = t.shape
        assert t.nbytes == h * w * pixel_bytes(ch, t.bits) < h * w * ch
    first = g.nodes[0].outputs[0]
    buf = next(b for b in plan.buffers if b.name == plan.roots[first])
    short = dataclasses.replace(plan, buffers=tuple(dataclasses.replace(b, size=g.tensors[first].nbytes - 1)
                                                    if b is buf else b for b in plan.buffers))
    with pytest.raises(PlanSafetyError, match="writes output"):
        check_plan_memory(g, short)
    patch = plan_patches(g, STAGE, 3)
    pplan = plan_memory_patched(g, patch)
    size = next(b.size for b in pplan.buffers if b.name == region_buffer(first))
    biggest = max(r[first].h * r[first].w for r in patch.regions)
    assert size >= biggest * pixel_bytes(6, 4) and size < biggest * 6


def test_kernel_choice_and_reasons(host_net, m4_net):
    """Host: the portable packed kernels, each saying why (no DSP extension); qemu-m4: the DSP versions, fast, no
    reason; a grouped convolution on a packed input and --kernels portable fall back with the reason."""
    for compiled, dsp in ((host_net, False), (m4_net, True)):
        g = lower_maps(compiled.graph, MAP_BITS)
        for n in g.nodes[:STAGE]:
            call = op_def(n).kernel(n, g, compiled.target)
            name = call.kernel.name
            assert "packed" in name and name.endswith("_dsp") == dsp, (n.name, name)
            assert call.kernel.fast == dsp and bool(call.reason) == (not dsp), (n.name, call.reason)
            assert call.context["function"].startswith("mcu_conv" if n.op == "conv2d" else "mcu_dwconv")
        portable = op_def(g.nodes[1]).kernel(g.nodes[1], g, KernelTarget(compiled.board, "portable"))
        assert portable.kernel.name == "depthwise_conv_packed" and "--kernels portable" in portable.reason
    g = lower_maps(m4_net.graph, MAP_BITS)
    conv = g.nodes[2]  # pointwise, 2-bit input: as a grouped conv the SIMD32 kernel cannot take it
    grouped = conv.replace(attrs=dataclasses.replace(conv.attrs, groups=2))
    w = g.tensors[conv.inputs[1]]
    g2 = g.with_tensors([dataclasses.replace(w, shape=(w.shape[0], 1, 1, w.shape[3] // 2),
                                             data=w.data[..., : w.shape[3] // 2].copy())])
    call = op_def(grouped).kernel(grouped, g2, m4_net.target)
    assert call.kernel.name == "conv_packed" and "2 groups" in call.reason
    assert call.context["function"] == "mcu_conv_a2w8_s8"


@pytest.mark.parametrize("patched", [False, True], ids=["layer_by_layer", "patched"])
def test_packed_network_on_qemu_m4_is_bit_exact(m4_net, patched, tmp_path):
    _need_arm_tools()
    g = lower_maps(m4_net.graph, MAP_BITS)
    patch = plan_patches(g, STAGE, 3) if patched else None
    c = _rebuild(m4_net, g, patch)
    calls = _calls(c)
    for fn in ("mcu_conv_dsp_a8w8_s8", "mcu_dwconv_dsp_a4w8_s8", "mcu_conv_dsp_a2w8_s8", "mcu_conv_dsp_a4w8_s8"):
        assert fn in calls, calls
    x_q, outs, _, _ = build_and_run_board(c, c.calib[:2], tmp_path)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    assert np.array_equal(outs[0], np.stack(ref))  # one model output: [samples, size]


# --- pooling, add, pad and a lookup on packed maps --------------------------------------------------------

#: conv (a8 -> a4, 5 channels: a padding nibble), max pool, conv, residual add (the pooled map read through
#: a crop), average pool, pad, max pool, conv (a4 -> a2), sigmoid lookup (a2 -> a4), pointwise (a4 -> a8)
OPS_BITS = {"a": 4, "p": 4, "b": 4, "s": 4, "v": 4, "q": 4, "m": 4, "c": 2, "u": 4}
OPS_STAGE = 10  # the split: the pointwise layer writing 'f' (int8)


def _ops_net(tmp_path_factory, board: str):
    rng = np.random.default_rng(4)

    def w(*s):
        return (rng.standard_normal(s) * 0.35).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "w0"], ["a_"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["a_"], ["a"]),
             helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Conv", ["p", "w1"], ["b_"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["b_"], ["b"]),
             helper.make_node("Add", ["p", "b"], ["s"]),
             helper.make_node("AveragePool", ["s"], ["v"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Pad", ["v", "pads"], ["q"], mode="constant"),
             helper.make_node("MaxPool", ["q"], ["m"], kernel_shape=[2, 2]),
             helper.make_node("Conv", ["m", "w2"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Sigmoid", ["c"], ["u"]),
             helper.make_node("Conv", ["u", "w3"], ["f"], kernel_shape=[1, 1]),
             helper.make_node("GlobalAveragePool", ["f"], ["y"])]
    inits = {"w0": w(5, 3, 3, 3), "w1": w(5, 5, 3, 3), "w2": w(6, 5, 3, 3), "w3": w(10, 6, 1, 1),
             "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}
    path = save(make_model(nodes, [1, 3, 15, 13], ["y"], inits), tmp_path_factory.mktemp("pkops"), "ops.onnx")
    return compile_model(path, CompileOptions(board=board, progress=False, calib_samples=16,
                                              patch=PatchOptions(mode="off")))


@pytest.fixture(scope="module")
def host_ops(tmp_path_factory):
    return _ops_net(tmp_path_factory, "host")


@pytest.mark.parametrize("patched", [False, True], ids=["layer_by_layer", "patched"])
def test_packed_pool_add_pad_lookup_on_host_are_bit_exact(host_ops, patched, tmp_path):
    g = lower_maps(host_ops.graph, OPS_BITS)
    assert [n.op for n in g.nodes[:OPS_STAGE]] == ["conv2d", "max_pool2d", "conv2d", "add", "avg_pool2d", "pad",
                                                   "max_pool2d", "conv2d", "unary", "conv2d"]
    patch = plan_patches(g, OPS_STAGE, 2) if patched else None
    if patched:
        assert patch.crops  # the add reads the pooled map through a cropped copy of its packed region
    c = _rebuild(host_ops, g, patch)
    calls = _calls(c)
    for fn in ("mcu_max_pool_packed_s8", "mcu_add_table_packed_s8", "mcu_avg_pool_packed_s8", "mcu_pad_packed_s8",
               "mcu_lut_packed_s8", "mcu_conv_a4w8_s8"):
        assert fn in calls, calls
    x_q = _samples(g, n=3)
    ref = []
    for x in x_q:
        vals = run_int(g, {g.inputs[0]: x}, keep_all=True)
        assert all(np.ptp(vals[t]) > 0 for t in ("s", "v", "c", "u"))  # the packed maps carry information
        r = vals[g.outputs[0]].reshape(-1)
        if patched:
            assert np.array_equal(run_int_patched(g, patch, {g.inputs[0]: x})[g.outputs[0]].reshape(-1), r)
        ref.append(r)
    assert np.array_equal(_host_outputs(c, x_q, tmp_path)[0], np.stack(ref))


def test_the_cost_model_prices_the_packed_kernels(m4_net):
    """Every stage layer's packed kernel states its cost terms: the estimate of the lowered net is positive per
    layer and close to the int8 net's (the MAC loops are the int8 kernels'; unpacking adds to them)."""
    g8 = m4_net.graph
    g = lower_maps(g8, MAP_BITS)
    kernels = tuple(kernel_of(n, g, m4_net.target) for n in g.nodes)
    assert all("packed" in k.name for k in kernels[:STAGE])
    est = estimate_instructions(g, None, kernels)
    est8 = estimate_instructions(g8, None, tuple(kernel_of(n, g8, m4_net.target) for n in g8.nodes))
    assert all(v > 0 for v in est.layers[:STAGE])
    assert est8.total < est.total < 2.5 * est8.total


@pytest.mark.parametrize("board, conv, add", [("qemu-m4", "mcu_conv_dsp_a4w8_s8", "mcu_add_table_dsp_packed_s8"),
                                               ("qemu-m55", "mcu_conv_mve_a4w8_s8", "mcu_add_table_mve_packed_s8")])
def test_packed_pool_add_pad_lookup_patched_on_qemu(board, conv, add, tmp_path_factory, tmp_path):
    """The same stage patched on qemu-m4 and qemu-m55: the DSP (MVE) packed convolutions and add (through a crop;
    5 channels at 4 bits: pixel by pixel) next to the portable packed pooling, pad and lookup, bit-exact with the
    simulator."""
    _need_arm_tools()
    net = _ops_net(tmp_path_factory, board)
    g = lower_maps(net.graph, OPS_BITS)
    c = _rebuild(net, g, plan_patches(g, OPS_STAGE, 2))
    calls = _calls(c)
    assert conv in calls and add in calls and "mcu_lut_packed_s8" in calls, calls
    x_q, outs, _, _ = build_and_run_board(c, c.calib[:2], tmp_path)
    ref = [run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q]
    assert np.array_equal(outs[0], np.stack(ref))


def test_which_layers_can_take_packed_maps(host_net, host_ops, tmp_path_factory):
    """packed_problem: every layer of the two stages can read / write packed maps; an op without a packed kernel
    (multiply), a broadcasting add and a channel pad say why."""
    for net in (host_net, host_ops):
        assert all(packed_problem(n, net.graph) is None for n in net.graph.nodes if n.op != "mean")
    g = host_ops.graph
    add = next(n for n in g.nodes if n.op == "add")
    assert "no kernel for packed" in packed_problem(add.replace(op="mul"), g)
    pooled = next(n for n in g.nodes if n.op == "avg_pool2d" and g.tensors[n.outputs[0]].shape[1] == 1)
    assert "broadcast" in packed_problem(add.replace(inputs=(add.inputs[0], pooled.outputs[0])), g)
    pad = next(n for n in g.nodes if n.op == "pad")
    channel = pad.replace(attrs=dataclasses.replace(pad.attrs, pads=pad.attrs.pads[:3] + ((0, 2),)))
    assert "channels" in packed_problem(channel, g)
