"""Binary elementwise ops with numpy broadcasting: ``add`` (residuals) and ``mul`` (squeeze-excite).

Integer semantics are TFLite's reference kernels: Add rescales both inputs to a common 2^20-scaled
fixed point before summing; Mul requantizes the product of the offset inputs once; the result saturates
to the output's bits. Constant operands are 8-bit.

Kernels: the portable ``mcu_add_s8`` / ``mcu_mul_s8`` (with broadcasting), and for an add whose operands have the
output's shape (residual adds) ``mcu_add_mve_s8`` on cores with MVE (Cortex-M55), ``mcu_add_dsp_s8`` (a flat loop,
one SMLAL per requantization) on cores with the DSP extension.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedError
from ..ir import Activation, Tensor
from ..ir.graph import int_dtype
from ..arith.bitwidth import requantize
from ..arith.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from .base import OpDef, activation_bounds, quantize_values, register, shape_error, tensor_bits
from .conv import apply_activation
from . import cmsis_nn, packed_kernels
from .kernel import Kernel, KernelArgs, KernelCost, kernel_target, prod, read, whole_outputs_counts, write

ADD_LEFT_SHIFT = 20


@dataclass(frozen=True)
class ElementwiseAttrs:
    activation: Activation = field(default_factory=Activation)


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    input1_mult: int
    input1_shift: int
    input2_mult: int
    input2_shift: int
    output_mult: int
    output_shift: int
    left_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_mult: int
    output_shift: int
    act_min: int
    act_max: int


def _quantize_const_operands(node, ctx):
    """Constant operands become int8 tensors with their own per-tensor params."""
    names = []
    for name in node.inputs:
        t = ctx.tensor(name)
        if t.is_const and t.qdata is not None and t.quant is not None:
            if t.quant.bits != 8:
                # the kernels read 8-bit operands; a wider constant would be truncated
                raise UnsupportedError(f"{node.source or node.op} node '{node.name}': constant operand '{name}' is "
                                       f"{t.quant.bits}-bit; only 8-bit constant operands are supported: "
                                       "re-quantize the model with int8 constants")
            qt = Tensor(name + "_q", t.shape, int_dtype(t.quant.bits), t.qdata.astype(np.int8), t.quant)
            ctx.new_tensors[qt.name] = qt
            ctx.quant[qt.name] = t.quant
            names.append(qt.name)
        elif t.is_const and t.dtype == "float32":
            lo, hi = float(t.data.min()), float(t.data.max())
            from .base import activation_quant

            q = activation_quant(lo, hi)
            qt = Tensor(name + "_q", t.shape, int_dtype(q.bits), quantize_values(t.data, q), q)
            ctx.new_tensors[qt.name] = qt
            ctx.quant[qt.name] = q
            names.append(qt.name)
        else:
            names.append(name)
    return tuple(names)


def broadcast_dims(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The operand's 4-D shape after right-aligning it to the output (1 where broadcast)."""
    s = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    if len(s) > 4:
        lead = int(np.prod(s[:-3]))
        s = (lead,) + tuple(s[-3:])
    return tuple((1,) * (4 - len(s)) + s)  # type: ignore[return-value]


def _binary_access(args: KernelArgs):
    """mcu_add_s8 / mcu_mul_s8: each input within its dims (broadcast dims of 1), output dims whole."""
    if args.patched:
        d1, d2, out_d = args.in_dims[0], args.in_dims[1], args.out_dims
    else:
        d1, d2, out_d = args.context["in1_dims"], args.context["in2_dims"], args.context["out_dims"]
    contract = [f"input dims {list(d)} do not broadcast to {list(out_d)}" for d in (d1, d2)
                if any(a not in (b, 1) for a, b in zip(d, out_d))]
    return [read(args.inputs[0], prod(d1), "input 1"), read(args.inputs[1], prod(d2), "input 2"),
            write(args.output, prod(out_d), "output")], contract


ADD = Kernel("add.c.j2", _binary_access, KernelCost(
    ("calls", "outputs"), {"calls": 229.532, "outputs": 179.397}, whole_outputs_counts))


def _add_mve_access(args: KernelArgs):
    """mcu_add_mve_s8: both inputs and the output with the same dims (no broadcast), size elements each."""
    if args.patched:
        d1, d2, out_d = args.in_dims[0], args.in_dims[1], args.out_dims
    else:
        d1, d2, out_d = args.context["in1_dims"], args.context["in2_dims"], args.context["out_dims"]
    contract = [f"input dims {list(d)} differ from the output's {list(out_d)} (the kernel does not broadcast)"
                for d in (d1, d2) if tuple(d) != tuple(out_d)]
    return [read(args.inputs[0], prod(d1), "input 1"), read(args.inputs[1], prod(d2), "input 2"),
            write(args.output, prod(out_d), "output")], contract


ADD_MVE = Kernel("add_mve.c.j2", _add_mve_access, KernelCost(
    ("calls", "outputs"), {"calls": 124.0, "outputs": 13.75}, whole_outputs_counts,
    note="from resnet8's three adds on qemu-m55 (16384, 8192, 4096 elements: exact to 0.1%)"),
    fast=True, header="mcunn_mve.h")
def _add_dsp_access(args: KernelArgs):
    """mcu_add_dsp_s8: as mcu_add_mve_s8, both inputs and the output with the same dims (no broadcast)."""
    return _add_mve_access(args)


ADD_DSP = Kernel("add_dsp.c.j2", _add_dsp_access, KernelCost(
    ("calls", "outputs"), {"calls": 250.0, "outputs": 49.0}, whole_outputs_counts,
    note="from resnet8's three adds on qemu-m4 (16384, 8192, 4096 elements: exact to 0.1%)"),
    fast=True, header="mcunn_dsp.h")
MUL = Kernel("mul.c.j2", _binary_access, KernelCost(
    ("calls", "outputs"), {"calls": 271.846, "outputs": 110.405}, whole_outputs_counts))


class _Binary(OpDef):
    fuses_activation = True
    inplace = True
    patch_crops_operands = True

    def patch_problem(self, node, graph):
        out = graph.tensors[node.outputs[0]].shape
        if any(graph.tensors[i].is_const for i in node.inputs if i):
            return "one operand is a constant (a broadcast over the whole map)"
        if any(graph.tensors[i].shape != out for i in node.inputs if i):
            return "it broadcasts an operand over H or W"
        return None

    def infer_shapes(self, node, in_shapes):
        try:
            return [tuple(np.broadcast_shapes(*in_shapes))]
        except ValueError:
            raise shape_error(node, f"operands of shapes {[list(s) for s in in_shapes]} do not broadcast") from None

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def _kernel_dims(self, node, graph):
        out = graph.tensors[node.outputs[0]].shape
        return {
            "in1_dims": broadcast_dims(graph.tensors[node.inputs[0]].shape, out),
            "in2_dims": broadcast_dims(graph.tensors[node.inputs[1]].shape, out),
            "out_dims": broadcast_dims(out, out),
        }


def add_terms(p: AddParams, operand: int, bits: int, rounding: str) -> np.ndarray:
    """Operand ``operand``'s (0 or 1) rescaled value for each of its 2^bits values, as ``Add.eval_int`` computes it
    before the sum: entry ``x - qmin`` = MultiplyByQuantizedMultiplier((x + offset) << left_shift), int32."""
    offset, mult, shift = ((p.input1_offset, p.input1_mult, p.input1_shift) if operand == 0 else
                           (p.input2_offset, p.input2_mult, p.input2_shift))
    x = np.arange(-(1 << (bits - 1)), 1 << (bits - 1), dtype=np.int64)
    return multiply_by_quantized_multiplier((x + offset) << p.left_shift, mult, shift, rounding).astype(np.int32)


@register
class Add(_Binary):
    name = "add"

    def eval_float(self, node, graph, inputs):
        return [apply_activation(inputs[0] + inputs[1], node.attrs.activation).astype(np.float32)]

    def quantize(self, node, ctx):
        inputs = _quantize_const_operands(node, ctx)
        q1, q2 = ctx.quant[inputs[0]], ctx.quant[inputs[1]]
        out = node.outputs[0]
        qo = ctx.from_range(out)
        ctx.quant[out] = qo
        twice_max = 2 * max(q1.s, q2.s)
        m1, s1 = quantize_multiplier(q1.s / twice_max)
        m2, s2 = quantize_multiplier(q2.s / twice_max)
        mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * qo.s))
        lo, hi = activation_bounds(node.attrs.activation, qo)
        p = AddParams(-q1.zp, -q2.zp, qo.zp, m1, s1, m2, s2, mo, so, ADD_LEFT_SHIFT, lo, hi)
        return [node.replace(inputs=inputs, params=p)]

    def eval_int(self, node, graph, inputs):
        p = node.params
        a = (inputs[0].astype(np.int64) + p.input1_offset) << p.left_shift
        b = (inputs[1].astype(np.int64) + p.input2_offset) << p.left_shift
        a = multiply_by_quantized_multiplier(a, p.input1_mult, p.input1_shift, graph.rounding)
        b = multiply_by_quantized_multiplier(b, p.input2_mult, p.input2_shift, graph.rounding)
        y = requantize(a + b, p.output_mult, p.output_shift, p.output_offset, tensor_bits(graph, node.outputs[0]),
                       p.act_min, p.act_max, graph.rounding)
        return [y]

    def kernel(self, node, graph, board=None):
        ctx = self._kernel_dims(node, graph)
        ctx["p"] = node.params
        bits = tuple(tensor_bits(graph, t) for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
        if min(bits) < 8:  # a packed 4- / 2-bit operand or output
            terms = tuple(add_terms(node.params, k, bits[k], graph.rounding) for k in (0, 1))
            return packed_kernels.add_call(ctx, bits, terms, kernel_target(board))
        if kernel_target(board).kernels == "cmsis-nn":
            target = kernel_target(board)
            return cmsis_nn.add_call(node, graph, target, ctx, lambda: self.kernel(node, graph, target.auto()))
        target = kernel_target(board)
        same = ctx["in1_dims"] == ctx["in2_dims"] == ctx["out_dims"]
        if target.mve_problem() is None:
            return ADD_MVE.call(ctx) if same else ADD.call(
                ctx, reason="an operand is broadcast (mcu_add_mve_s8 takes equal shapes)")
        why = target.dsp_problem()
        if why is None and not same:
            why = "an operand is broadcast (mcu_add_dsp_s8 takes equal shapes)"
        if why is None and not 0 <= node.params.left_shift <= 23:
            why = f"left shift {node.params.left_shift} (mcu_add_dsp_s8 takes 0..23)"
        return ADD_DSP.call(ctx) if why is None else ADD.call(ctx, reason=why)


@register
class Mul(_Binary):
    name = "mul"

    def eval_float(self, node, graph, inputs):
        return [apply_activation(inputs[0] * inputs[1], node.attrs.activation).astype(np.float32)]

    def quantize(self, node, ctx):
        inputs = _quantize_const_operands(node, ctx)
        q1, q2 = ctx.quant[inputs[0]], ctx.quant[inputs[1]]
        out = node.outputs[0]
        qo = ctx.from_range(out)
        ctx.quant[out] = qo
        mo, so = quantize_multiplier(q1.s * q2.s / qo.s)
        lo, hi = activation_bounds(node.attrs.activation, qo)
        p = MulParams(-q1.zp, -q2.zp, qo.zp, mo, so, lo, hi)
        return [node.replace(inputs=inputs, params=p)]

    def eval_int(self, node, graph, inputs):
        p = node.params
        a = inputs[0].astype(np.int64) + p.input1_offset
        b = inputs[1].astype(np.int64) + p.input2_offset
        y = requantize(a * b, p.output_mult, p.output_shift, p.output_offset, tensor_bits(graph, node.outputs[0]),
                       p.act_min, p.act_max, graph.rounding)
        return [y]

    def kernel(self, node, graph, board=None):
        ctx = self._kernel_dims(node, graph)
        ctx["p"] = node.params
        if kernel_target(board).kernels == "cmsis-nn":
            target = kernel_target(board)
            return cmsis_nn.mul_call(node, graph, target, ctx, lambda: self.kernel(node, graph, target.auto()))
        return MUL.call(ctx)
