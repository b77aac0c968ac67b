"""Bitwidth as a value: storage sizes of 8/4/2-bit tensors (packed, each pixel padded to a byte), region
and arena sizes from them, one saturate helper, the packing's numpy reference (the spec the C follows),
and a small model quantized with 4- and 2-bit feature maps through quantizer, simulator, patch regions
and arena plan."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from onnx import helper

from conftest import make_model, save

from mcucompile.arith.bitwidth import pack, pixel_bytes, qrange, saturate, storage_dtype, unpack
from mcucompile.arith.fixedpoint import accumulator_bound
from mcucompile.errors import UnsupportedError
from mcucompile.frontend import load_onnx
from mcucompile.ir import Graph, QuantParams, Region, Tensor
from mcucompile.ir.graph import int_dtype, storage_bytes
from mcucompile.memory.planner import ALIGN, plan_memory
from mcucompile.ops.base import quantize_values
from mcucompile.passes import canonicalize
from mcucompile.patch.execute import run_int_patched
from mcucompile.patch.planner import max_region_bytes, plan_patches, region_bytes
from mcucompile.quant.calibrate import calibrate
from mcucompile.quant.quantize import quantize_graph
from mcucompile.quant.simulate import from_storage, run_float, run_int, storage_of, to_physical


def _t(shape, dtype, bits=None):
    q = None if bits is None else QuantParams.per_tensor(0.1, 0, bits)
    return Tensor("t", tuple(shape), dtype, None, q)


# --- sizes --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, c, per_pixel", [
    ("int8", 3, 3), ("int8", 5, 5),
    ("int4", 1, 1), ("int4", 2, 1), ("int4", 3, 2), ("int4", 5, 3), ("int4", 16, 8),
    ("int2", 1, 1), ("int2", 4, 1), ("int2", 5, 2), ("int2", 3, 1), ("int2", 9, 3),
])
def test_nbytes_pads_each_pixel_to_a_byte(dtype, c, per_pixel):
    t = _t((1, 7, 5, c), dtype)
    assert t.pixel_bytes == per_pixel
    assert t.nbytes == 7 * 5 * per_pixel
    assert t.packed == (dtype != "int8")


def test_nbytes_of_whole_byte_types_and_other_ranks():
    assert _t((1, 4, 4, 3), "int32").nbytes == 4 * 48
    assert _t((1, 4, 4, 3), "float32").nbytes == 4 * 48
    assert _t((2, 10), "int4").nbytes == 2 * 5  # the innermost axis is packed whatever the rank
    assert _t((5,), "int2").nbytes == 2
    assert _t((5,), "uint8").nbytes == 5
    assert storage_bytes((3, 3), "int16") == 18


def test_dtype_follows_the_bits():
    assert [int_dtype(b) for b in (32, 16, 8, 4, 2)] == ["int32", "int16", "int8", "int4", "int2"]
    with pytest.raises(ValueError):
        int_dtype(3)
    assert _t((1, 2, 2, 3), "int4", 4).bits == 4


def test_a_packed_tensor_must_carry_its_bits():
    ok = _t((1, 2, 2, 3), "int4", 4)
    Graph("g", (), {"t": ok}, ("t",), ("t",)).validate()  # consistent: no error
    for bad in (_t((1, 2, 2, 3), "int4", 8), _t((1, 2, 2, 3), "int2")):
        with pytest.raises(ValueError, match="int"):
            Graph("g", (), {"t": bad}, ("t",), ("t",)).validate()


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("c", [1, 3, 5, 8])
def test_ir_sizes_equal_the_packed_bytes(bits, c):
    """ir computes sizes without arith (they sit side by side): both must describe the same layout."""
    lo, hi = qrange(bits)
    x = np.random.default_rng(c).integers(lo, hi + 1, (1, 6, 4, c))
    t = _t(x.shape, int_dtype(bits))
    assert pack(x, bits).size == t.nbytes
    assert pixel_bytes(c, bits) == t.pixel_bytes


def test_region_bytes_of_a_4_bit_map():
    g = Graph("g", (), {"m": Tensor("m", (1, 10, 12, 3), "int4", None, QuantParams.per_tensor(0.1, 0, 4))}, (), ())
    r = Region(2, 3, 7, 11)  # 5 rows x 8 columns
    assert region_bytes(g, "m", r) == 5 * 8 * 2  # 3 channels at 4 bits: 2 bytes per pixel
    # byte-addressable: the region's bytes inside the packed map are the packed region (whole-byte runs)
    x = np.random.default_rng(0).integers(-8, 8, (1, 10, 12, 3))
    packed = pack(x, 4)
    inside = packed[:, r.top:r.bottom, r.left:r.right, :]
    assert inside.size == region_bytes(g, "m", r)
    assert np.array_equal(inside, pack(x[:, r.top:r.bottom, r.left:r.right, :], 4))


# --- saturate -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits, lo, hi", [(8, -128, 127), (4, -8, 7), (2, -2, 1)])
def test_saturate_to_the_bits_range(bits, lo, hi):
    assert qrange(bits) == (lo, hi)
    v = np.array([-1000, lo - 1, lo, 0, hi, hi + 1, 1000], np.int64)
    out = saturate(v, bits)
    assert out.dtype == np.int8
    assert out.tolist() == [lo, lo, lo, 0, hi, hi, hi]
    # a fused activation's bounds narrow it further, never widen it
    assert saturate(v, bits, 0, 1000).tolist() == [0, 0, 0, 0, hi, hi, hi]


def test_saturate_wider_bits_and_refusals():
    assert saturate(np.array([70000]), 16).tolist() == [32767] and storage_dtype(16) == np.int16
    assert storage_dtype(32) == np.int32
    with pytest.raises(ValueError):
        saturate(np.array([1]), 5)


# --- packing: the spec the C follows -----------------------------------------------------------------

def test_pack_layout_low_bits_first_pixel_padded():
    # 4 bits: element 0 in the low nibble; the 3rd element of a pixel starts a new byte, padding zero
    assert pack(np.array([[1, -1, 3]]), 4).tolist() == [[0xF1, 0x03]]
    # 2 bits: four fields per byte from bit 0 up; 5 channels take 2 bytes
    assert pack(np.array([[1, -2, 0, 1, 1]]), 2).tolist() == [[0b01_00_10_01, 0b01]]
    # pixels never share a byte: two pixels of 3 channels at 4 bits are 4 bytes, not 3
    assert pack(np.array([[1, 2, 3], [4, 5, 6]]), 4).tolist() == [[0x21, 0x03], [0x54, 0x06]]
    assert pack(np.array([-128, 127]), 8).tolist() == [0x80, 0x7F]


@pytest.mark.parametrize("bits", [8, 4, 2, 16])
def test_pack_unpack_round_trip(bits):
    lo, hi = qrange(bits)
    rng = np.random.default_rng(bits)
    for c in (1, 2, 3, 5, 7, 16):
        x = rng.integers(lo, hi + 1, (2, 3, 4, c))
        raw = pack(x, bits)
        assert raw.dtype == np.uint8 and raw.shape == (2, 3, 4, pixel_bytes(c, bits) if bits <= 8 else 2 * c)
        back = unpack(raw, bits, c)
        assert back.dtype == storage_dtype(bits) and np.array_equal(back, x)


def test_pack_refuses_values_outside_the_bits():
    with pytest.raises(ValueError, match="4 bits"):
        pack(np.array([8]), 4)
    with pytest.raises(ValueError, match="bytes per pixel"):
        unpack(np.zeros((2, 2), np.uint8), 4, 5)


def test_accumulator_bound_is_bits_aware():
    w, b = np.ones((2, 3), np.int8), np.zeros(2, np.int32)
    assert accumulator_bound(w, b, 0, 0).tolist() == [3 * 128] * 2
    assert accumulator_bound(w, b, 0, 0, 4).tolist() == [3 * 8] * 2
    assert accumulator_bound(w, b, 0, -2, 2).tolist() == [3 * 3] * 2  # max |x + 2| for x in [-2, 1]


# --- a model with 4- and 2-bit feature maps -----------------------------------------------------------

@pytest.fixture(scope="module")
def low_bit(tmp_path_factory):
    """x [1,3,8,8] -> conv 3x3 + relu (4-bit map, 3 channels) -> sigmoid (2-bit map) -> conv 1x1 (8-bit out)."""
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Sigmoid", ["r1"], ["s1"]),
        helper.make_node("Conv", ["s1", "w2", "b2"], ["y"], kernel_shape=[1, 1]),
    ]
    inits = {"w1": rng.standard_normal((3, 3, 3, 3)).astype(np.float32) * 0.3,
             "b1": rng.standard_normal(3).astype(np.float32) * 0.1,
             "w2": rng.standard_normal((4, 3, 1, 1)).astype(np.float32),
             "b2": rng.standard_normal(4).astype(np.float32) * 0.1}
    path = save(make_model(nodes, [1, 3, 8, 8], ["y"], inits), tmp_path_factory.mktemp("lowbit"))
    g = canonicalize(load_onnx(path))
    samples = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)  # logical (NCHW) layout
    ranges = calibrate(path, g, samples, progress=False)
    conv1, sig = g.nodes[0], g.nodes[1]
    assert (conv1.op, sig.op) == ("conv2d", "unary"), g.to_text()
    four, two = conv1.outputs[0], sig.outputs[0]
    q = quantize_graph(g, ranges, bits={four: 4, two: 2})
    return LowBit(g, q, four, two, samples, ranges)


@dataclass(frozen=True)
class LowBit:
    g: Graph  # float
    q: Graph  # quantized with a 4-bit and a 2-bit map
    four: str
    two: str
    samples: np.ndarray
    ranges: dict


def test_quantized_dtypes_follow_the_bits(low_bit):
    g, q, four, two = low_bit.g, low_bit.q, low_bit.four, low_bit.two
    assert (q.tensors[four].dtype, q.tensors[four].quant.bits) == ("int4", 4)
    assert (q.tensors[two].dtype, q.tensors[two].quant.bits) == ("int2", 2)
    assert q.tensors[q.inputs[0]].dtype == "int8" and q.tensors[q.outputs[0]].dtype == "int8"
    assert q.tensors[four].nbytes == 8 * 8 * 2 and q.tensors[two].nbytes == 8 * 8 * 1
    # sigmoid's output params are fixed as TFLite fixes them, at 2 bits: [0, 1) in steps of 1/4
    assert q.tensors[two].quant.same_as(QuantParams.per_tensor(0.25, -2, 2))
    lut = q.nodes[1]
    assert lut.op == "unary" and len(lut.params.table) == 16  # one entry per 4-bit input value
    q.validate()
    # the default stays 8-bit everywhere
    q8 = quantize_graph(g, low_bit.ranges)
    assert {t.dtype for t in q8.tensors.values() if not t.is_const} == {"int8"}


def test_simulator_saturates_to_each_maps_bits(low_bit):
    g, q, four, two = low_bit.g, low_bit.q, low_bit.four, low_bit.two
    x_float = to_physical(g, g.inputs[0], low_bit.samples[:1])
    x = quantize_values(x_float, q.tensors[q.inputs[0]].quant)
    vals = run_int(q, {q.inputs[0]: x}, keep_all=True)
    m4, m2 = vals[four], vals[two]
    assert m4.dtype == np.int8 and m4.min() >= -8 and m4.max() <= 7
    assert m2.min() >= -2 and m2.max() <= 1
    assert len(np.unique(m4)) > 3  # not a degenerate map
    # the 4-bit map is the float map rounded to its 16 levels (within a step: the input is 8-bit)
    f = run_float(g, {g.inputs[0]: x_float}, keep_all=True)[four]
    s4 = q.tensors[four].quant
    assert np.max(np.abs((m4.astype(np.float64) - s4.zp) * s4.s - np.clip(f, 0, 15 * s4.s))) <= 1.01 * s4.s
    # its bytes in memory: packed, and back
    raw = storage_of(q, four, m4)
    assert raw.size == q.tensors[four].nbytes == 128
    assert np.array_equal(from_storage(q, four, raw), m4)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def test_arena_gives_a_4_bit_map_its_packed_size(low_bit):
    q, four, two = low_bit.q, low_bit.four, low_bit.two
    plan = plan_memory(q)
    sizes = {b.name: b.size for b in plan.buffers}
    assert sizes[plan.roots[four]] == _aligned(8 * 8 * 2) == 128  # not 8 * 8 * 3 = 192 as int8
    assert sizes[plan.roots[two]] == _aligned(8 * 8 * 1)
    # an int2 map is never written over an int4 one (element layouts differ), even where sizes agree
    assert plan.roots[two] != plan.roots[four]


def test_patch_regions_of_a_4_bit_map(low_bit):
    q, four, two = low_bit.q, low_bit.four, low_bit.two
    plan = plan_patches(q, 2, 2)  # conv, sigmoid patch by patch on a 2 x 2 grid of the 2-bit map
    biggest = max(reg[four].h * reg[four].w for reg in plan.regions)
    assert max_region_bytes(q, plan, four) == biggest * 2
    assert max_region_bytes(q, plan, two) == max(reg[two].h * reg[two].w for reg in plan.regions)
    # a copy of the 2-bit map's region laid out as the 4-bit map's pixels
    assert max_region_bytes(q, plan, two, layout_of=four) == 2 * max_region_bytes(q, plan, two)


def test_int8_only_algorithms_refuse_other_bits(tmp_path):
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1), helper.make_node("Softmax", ["h"], ["y"])]
    path = save(make_model(nodes, [1, 6], ["y"], {"w": rng.standard_normal((5, 6)).astype(np.float32)}), tmp_path)
    g = canonicalize(load_onnx(path))
    ranges = calibrate(path, g, rng.standard_normal((4, 6)).astype(np.float32), progress=False)
    quantize_graph(g, ranges)  # 8-bit: fine
    with pytest.raises(UnsupportedError, match="4-bit.*softmax"):
        quantize_graph(g, ranges, bits={g.nodes[0].outputs[0]: 4})


def test_patched_stage_equals_layer_by_layer_at_low_bits(low_bit):
    """The stage (conv with padding, lookup) run patch by patch on 4- and 2-bit maps gives the same
    values as layer by layer: local padding and regions do not depend on the bits."""
    g, q = low_bit.g, low_bit.q
    for k in range(3):
        x = quantize_values(to_physical(g, g.inputs[0], low_bit.samples[k:k + 1]), q.tensors[q.inputs[0]].quant)
        want = run_int(q, {q.inputs[0]: x})
        for grid in (2, 3):
            got = run_int_patched(q, plan_patches(q, 2, grid), {q.inputs[0]: x})
            for o in q.outputs:
                assert np.array_equal(got[o], want[o]), (k, grid, o)
