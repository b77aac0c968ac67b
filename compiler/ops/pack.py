"""Pack and unpack: an int8 feature map to a packed 4- or 2-bit one and back (per-patch mixed precision
stores low-bit maps packed; see ``arith/bitwidth.py`` for the layout).

No front end makes these ops: a precision search (or a test) inserts them into a quantized graph. Both
are a TFLite-style requantization of every element, so the simulator and the C kernels agree bit for
bit, and any pair of params is well defined:

    out = saturate(MultiplyByQuantizedMultiplier(in - zp_in, M(s_in / s_out)) + zp_out, out_bits)

The simulator holds the packed map unpacked (one value per element, int8 storage); the C kernels
(``mcu_pack_s8`` / ``mcu_unpack_s8``, runtime_c/src/mcunn_pack.c) read or write it packed: channels
innermost, k = 8 / b values per byte, element c at bit (c % k) * b of byte c // k, low bits first, each
pixel padded to a whole byte (``Tensor.pixel_bytes``).

The params :func:`packed_quant` chooses make the round trip as exact as b bits allow: the packed scale is
``s * 2^(8-b)`` (the requantization divides by 2^(8-b) with TFLite's double rounding, then saturates to
b bits), and unpacking to the original int8 params multiplies by 2^(8-b) exactly (multiplier 2^(8-b):
no rounding, no saturation).

Patch rule: elementwise, so any region; an operand larger than the output region is read through a
cropped copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.bitwidth import PACKED_BITS, pixel_bytes, qrange, saturate
from ..arith.fixedpoint import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
)
from ..ir import QuantParams
from .base import OpDef, register, tensor_bits
from .kernel import Kernel, KernelArgs, KernelCost, base_counts, prod, read, write


@dataclass(frozen=True)
class PackAttrs:
    """No attributes: the bitwidths are the tensors' own (output of ``pack``, input of ``unpack``)."""


@dataclass(frozen=True)
class PackParams:
    """One requantization, int8 <-> ``bits`` (the packed side's bits, 4 or 2)."""

    input_offset: int  # -zp_in
    output_offset: int  # zp_out
    multiplier: int  # Q31 multiplier of s_in / s_out
    shift: int
    bits: int


def pack_params(in_q: QuantParams, out_q: QuantParams) -> PackParams:
    """The requantization from ``in_q`` to ``out_q`` (one of them packed: 4 or 2 bits, the other 8)."""
    packed = out_q.bits if out_q.bits in PACKED_BITS else in_q.bits
    if packed not in PACKED_BITS or 8 not in (in_q.bits, out_q.bits):
        raise ValueError(f"pack/unpack convert int8 <-> {list(PACKED_BITS)}-bit, not {in_q.bits} -> {out_q.bits} bits")
    m, s = quantize_multiplier(in_q.s / out_q.s)
    return PackParams(-in_q.zp, out_q.zp, m, s, packed)


def packed_quant(q: QuantParams, bits: int) -> QuantParams:
    """The ``bits``-bit params that pack int8 params ``q`` by dropping the 8 - bits low bits: scale
    ``q.s * 2^(8-bits)``, zero point ``q.zp / 2^(8-bits)`` rounded half away from zero (in range)."""
    if bits not in PACKED_BITS:
        raise ValueError(f"packed maps have {list(PACKED_BITS)} bits, not {bits}")
    f = 1 << (8 - bits)
    qmin, qmax = qrange(bits)
    zp = int(np.clip(round_half_away(np.float64(q.zp) / f), qmin, qmax))
    return QuantParams.per_tensor(q.s * f, zp, bits)


def _requantize(node, graph, x: np.ndarray) -> np.ndarray:
    p: PackParams = node.params
    v = multiply_by_quantized_multiplier(np.asarray(x, np.int64) + p.input_offset, p.multiplier, p.shift, graph.rounding)
    return saturate(v + p.output_offset, tensor_bits(graph, node.outputs[0]))


def _pack_access(args: KernelArgs, packed_output: bool):
    """mcu_pack_s8 / mcu_unpack_s8: input and output dims equal (element dims), bits 4 or 2; the int8 side
    is C bytes per pixel, the packed side pixel_bytes(C, bits) (padded to a whole byte)."""
    in_d, out_d, bits = args.in_dims[0], args.out_dims, args.context["p"].bits
    contract = []
    if tuple(in_d) != tuple(out_d):
        contract.append(f"input dims {list(in_d)} and output dims {list(out_d)} differ")
    if bits not in PACKED_BITS:
        contract.append(f"{bits} bits (the kernels pack 4 or 2)")
        return [], contract
    pixels = prod(in_d[:3])
    wide, packed = pixels * in_d[3], pixels * pixel_bytes(in_d[3], bits)
    n_read, n_written = (wide, packed) if packed_output else (packed, wide)
    return [read(args.inputs[0], n_read, "input"), write(args.output, n_written, "output")], contract


_BY_HAND = ("test-only so far (no front end makes them): set by hand, not measured: one requantization and a "
            "shift / mask per element, as lut plus mcu_requantize")
PACK = Kernel("pack.c.j2", lambda args: _pack_access(args, packed_output=True), KernelCost(
    ("calls", "outputs"), {"calls": 60.0, "outputs": 30.0}, base_counts, note=_BY_HAND), packed=True)
UNPACK = Kernel("unpack.c.j2", lambda args: _pack_access(args, packed_output=False), KernelCost(
    ("calls", "outputs"), {"calls": 60.0, "outputs": 30.0}, base_counts, note=_BY_HAND), packed=True)


class _Requantize(OpDef):
    """Shared by pack and unpack: same shape, one element in, one element out."""

    patch_crops_operands = True
    implementation: Kernel

    def patch_problem(self, node, graph):
        return None  # one element in, one element out: any region

    def infer_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0])]

    def eval_float(self, node, graph, inputs):
        return [np.asarray(inputs[0], np.float32)]  # the real value is kept (up to the precision lost)

    def quantize(self, node, ctx):
        # never reached from a front end; a pass that inserts these ops sets the params itself
        in_q, out = ctx.quant[node.inputs[0]], node.outputs[0]
        out_q = ctx.from_range(out)
        ctx.quant[out] = out_q
        return [node.replace(params=pack_params(in_q, out_q))]

    def eval_int(self, node, graph, inputs):
        return [_requantize(node, graph, inputs[0])]

    def kernel(self, node, graph, board=None):
        return self.implementation.call({"p": node.params, "channels": int(graph.tensors[node.outputs[0]].shape[-1])})


@register
class Pack(_Requantize):
    """int8 -> packed ``bits`` (the output tensor is int4 / int2)."""

    name = "pack"
    implementation = PACK


@register
class Unpack(_Requantize):
    """packed ``bits`` (the input tensor is int4 / int2) -> int8."""

    name = "unpack"
    implementation = UNPACK
