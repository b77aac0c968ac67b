"""Parametric ReLU with one slope per channel (ONNX ``PRelu``, TFLite ``PRELU``): y = x for x >= 0, else
alpha[c] * x, the channel being the innermost (physical) axis; a single slope is broadcast.

Integer semantics are TFLite Micro's int8 PRELU reference (other bitwidths are refused with the reason): the slope is an int8 tensor with its own per-tensor
scale and zero point, and there are two requantizations, an identity path for (x - zp_in) >= 0 with
multiplier s_in / s_out and an alpha path for the negative side, multiplying (x - zp_in) by
(alpha - zp_alpha) with multiplier s_in * s_alpha / s_out; the result is offset by the output zero
point and clamped to int8.

Patch rule: elementwise, so any region; an input buffer larger than the output region is read through
a cropped copy, as for the other elementwise ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.bitwidth import saturate
from ..arith.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..errors import UserError
from ..ir import Tensor
from ..ir.graph import int_dtype
from .base import OpDef, activation_quant, quantize_values, register, require_bits, shape_error, tensor_bits
from .kernel import Kernel, KernelArgs, KernelCost, base_counts, prod, read, write


@dataclass(frozen=True)
class PreluAttrs:
    """No attributes: the slope is input 1, a constant of shape [C] (or [1], one slope for all); a front end
    gives a slope varying along other axes as it is (broadcasting to the input), and ``supports`` refuses it."""


@dataclass(frozen=True)
class PreluParams:
    input_offset: int  # -zp_in
    alpha_offset: int  # -zp_alpha
    output_offset: int  # zp_out
    identity_mult: int  # s_in / s_out
    identity_shift: int
    alpha_mult: int  # s_in * s_alpha / s_out
    alpha_shift: int


def _prelu_access(args: KernelArgs):
    """mcu_prelu_s8: input and output dims equal (size elements each), alpha_len slopes (C or 1)."""
    in_d, out_d, alpha_len = args.in_dims[0], args.out_dims, args.context["alpha_len"]
    contract = []
    if tuple(in_d) != tuple(out_d):
        contract.append(f"input dims {list(in_d)} and output dims {list(out_d)} differ")
    if alpha_len not in (1, in_d[3]):
        contract.append(f"{alpha_len} slopes for {in_d[3]} channels")
    return [read(args.inputs[0], prod(in_d), "input"), read(args.inputs[1], alpha_len, "slopes"),
            write(args.output, prod(out_d), "output")], contract


PRELU = Kernel("prelu.c.j2", _prelu_access, KernelCost(
    ("calls", "outputs"), {"calls": 60.0, "outputs": 52.0}, base_counts,
    note="added after the fit: set by hand from two layers of a conv -> prelu -> resize net on qemu-m4 "
         "(per-layer counts of mcucompile bench, layer by layer), within 1.5% on those layers"))


@register
class Prelu(OpDef):
    name = "prelu"
    inplace = True
    patch_crops_operands = True

    def patch_problem(self, node, graph):
        return None  # one element in, one element out: any region

    def infer_shapes(self, node, in_shapes):
        x, alpha = in_shapes[0], in_shapes[1]
        # the slope broadcasts to the input (right-aligned, numpy rules, one way); supports() takes [C] or [1]
        if not x or len(alpha) > len(x) or any(a not in (1, d) for a, d in zip(alpha[::-1], x[::-1])):
            raise shape_error(node, f"slope of shape {list(alpha)} does not broadcast to the input {list(x)} "
                                    f"(one slope per channel: [{x[-1] if x else '?'}], or [1])")
        return [tuple(x)]

    def supports(self, node, graph):
        x, alpha = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        if len(alpha.shape) == 1 and alpha.shape[0] in (1, x.shape[-1]):
            return None
        shape = tuple(x.shape)
        full = np.broadcast_to(np.asarray(alpha.data, np.float64).reshape((1,) * (len(shape) - len(alpha.shape))
                                                                           + tuple(alpha.shape)), shape)
        varying = [a for a in range(len(shape)) if shape[a] > 1 and np.ptp(full, axis=a).max() > 0]
        names = f" ({', '.join('NHWC'[a] for a in varying)})" if len(shape) == 4 and varying else ""
        return (f"the slope alpha varies along axes {varying}{names} of the input: only one slope per channel "
                "or a single slope is supported; share it over the other axes (a Keras PReLU: shared_axes=[1, 2])")

    def eval_float(self, node, graph, inputs):
        x = inputs[0].astype(np.float64)
        a = np.ravel(inputs[1]).astype(np.float64)
        return [np.where(x >= 0, x, x * a).astype(np.float32)]

    def quantize(self, node, ctx):
        x, alpha = node.inputs
        in_q = ctx.quant[x]
        out = node.outputs[0]
        out_q = ctx.from_range(out)
        ctx.quant[out] = out_q
        require_bits(node, ctx, 8, "TFLite Micro's PRELU algorithm (mcu_prelu_s8)")
        t = ctx.tensor(alpha)
        if t.qdata is not None and t.quant is not None:  # a pre-quantized model's own int8 slope
            if not t.quant.is_per_tensor or t.quant.bits != 8:
                raise UserError(f"{node.source or node.op} node '{node.name}': slope '{t.origin or alpha}' is quantized "
                                "per channel or not to int8; TFLite's int8 PRELU takes one int8 scale and zero point "
                                "for the slope: re-quantize the model with a per-tensor slope")
            a_q, a_int = t.quant, t.qdata.astype(np.int8)
        else:
            a = np.ravel(t.data).astype(np.float64)
            a_q = activation_quant(float(a.min()), float(a.max()))
            a_int = quantize_values(a, a_q)
        qt = Tensor(alpha + "_q", (int(a_int.size),), int_dtype(a_q.bits), np.ravel(a_int).astype(np.int8), a_q)
        ctx.new_tensors[qt.name] = qt
        ctx.quant[qt.name] = a_q
        # as TFLite Micro's CalculatePreluParams, in double from the (float32) scales
        m1, s1 = quantize_multiplier(in_q.s / out_q.s)
        m2, s2 = quantize_multiplier(in_q.s * a_q.s / out_q.s)
        p = PreluParams(-in_q.zp, -a_q.zp, out_q.zp, m1, s1, m2, s2)
        return [node.replace(inputs=(x, qt.name), params=p)]

    def eval_int(self, node, graph, inputs):
        p = node.params
        x = inputs[0].astype(np.int64) + p.input_offset
        a = np.ravel(inputs[1]).astype(np.int64) + p.alpha_offset
        pos = multiply_by_quantized_multiplier(x, p.identity_mult, p.identity_shift, graph.rounding)
        neg = multiply_by_quantized_multiplier(x * a, p.alpha_mult, p.alpha_shift, graph.rounding)
        return [saturate(np.where(x >= 0, pos, neg) + p.output_offset, tensor_bits(graph, node.outputs[0]))]

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size

    def kernel(self, node, graph, board=None):
        return PRELU.call({"p": node.params, "alpha_len": int(graph.tensors[node.inputs[1]].size)})
