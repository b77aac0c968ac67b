"""Elementwise functions of one integer input (sigmoid, tanh, hard-sigmoid, hard-swish, leaky relu, clamp,
requantize): each is a lookup table computed at compile time, one entry per input value (256 for an
int8 input, 16 for int4, 4 for int2), entry i holding f(qmin + i) with qmin the input's lowest value.

A table reproduces any integer -> integer function exactly, costs one load per element on the MCU, and
keeps the simulator and the C code trivially identical. The TFLite-semantics tables (TFLite Micro's
integer LOGISTIC / TANH / HARD_SWISH / QUANTIZE) exist for int8 only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arith import tflite_semantics
from ..arith.bitwidth import qrange, saturate
from ..arith.fixedpoint import (
    count_leading_zeros_u32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    softmax_params,
    wrap32,
)
from ..errors import UserError
from ..ir import Activation, Node, QuantParams, Tensor
from ..ir.graph import int_dtype
from .base import (OpDef, activation_bounds, dequantize_values, quantize_values, register, require_bits,
                   tensor_bits)
from .conv import apply_activation
from . import cmsis_nn, packed_kernels
from .kernel import (Kernel, KernelArgs, KernelCost, base_counts, kernel_target, prod, read, whole_outputs_counts,
                     write)

def _lut_access(args: KernelArgs):
    """mcu_lut_s8: size elements in and out, a 256-entry table indexed by (uint8)(x + 128); input and
    output dims must hold the same element count."""
    size = prod(args.in_dims[0])
    contract = [] if prod(args.out_dims) == size else [
        f"input dims {list(args.in_dims[0])} and output dims {list(args.out_dims)} differ in element count"]
    return [read(args.inputs[0], size, "input"), read(args.array("table"), 256, "table"),
            write(args.output, size, "output")], contract


def _softmax_access(args: KernelArgs):
    """mcu_softmax_s8: rows x row_size in and out; row_size >= 1, input left shift in [0, 30], and
    diff_min in [-2^31 / 2^shift, 0] (only differences >= diff_min are scaled by 2^shift)."""
    p = args.context["p"]
    rows, row_size, shift, diff_min = args.context["rows"], args.context["row_size"], p.shift, p.diff_min
    contract = []
    if row_size < 1:
        contract.append(f"rows of {row_size} elements (the kernel reads each row's first element)")
    if not 0 <= shift <= 30 or diff_min > 0 or diff_min * (1 << shift) < -(1 << 31):
        contract.append(f"input left shift {shift} with diff_min {diff_min}: (x - max) * 2^shift could overflow int32")
    n = rows * row_size
    return [read(args.inputs[0], n, "input"), write(args.output, n, "output")], contract


def _softmax_counts(node, graph, g):
    f = base_counts(node, graph, g)
    shape = graph.tensors[node.inputs[0]].shape
    f["elements"] = float(graph.tensors[node.inputs[0]].size)
    f["rows"] = float(graph.tensors[node.inputs[0]].size // max(1, shape[-1]))
    return f


LUT = Kernel("lut.c.j2", _lut_access, KernelCost(
    ("calls", "outputs"), {"calls": 47.785, "outputs": 5.997}, whole_outputs_counts))
SOFTMAX = Kernel("softmax.c.j2", _softmax_access, KernelCost(
    ("calls", "rows", "elements"), {"calls": 778.437, "rows": 0.0, "elements": 295.952}, _softmax_counts))


FUNCTIONS = {
    "identity": lambda x, a: x,
    "sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
    "hardsigmoid": lambda x, a: np.clip(a.alpha * x + a.beta, 0.0, 1.0),
    "hardswish": lambda x, a: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "leakyrelu": lambda x, a: np.where(x >= 0, x, a.alpha * x),
    "requantize": lambda x, a: x,
}

def fixed_output_quant(fn: str, bits: int) -> QuantParams | None:
    """Output params fixed as TFLite fixes them (at 8 bits: 1/256, -128 for [0, 1); 1/128, 0 for
    [-1, 1)), so the full output range is always used; None for functions whose range is not fixed."""
    qmin, _ = qrange(bits)
    if fn in ("sigmoid", "hardsigmoid"):
        return QuantParams.per_tensor(1.0 / (1 << bits), qmin, bits)
    if fn == "tanh":
        return QuantParams.per_tensor(1.0 / (1 << (bits - 1)), 0, bits)
    return None


@dataclass(frozen=True)
class UnaryAttrs:
    fn: str
    alpha: float = 0.0
    beta: float = 0.0
    activation: Activation = field(default_factory=Activation)
    #: "float": the table is the real function, rounded; "tflite": TFLite Micro's integer algorithm
    semantics: str = "float"


@dataclass(frozen=True, eq=False)
class LutParams:
    table: np.ndarray  # [2^in_bits] output values, entry i for input qmin + i (int8: (uint8)(x + 128))


def build_table(fn, in_q: QuantParams, out_q: QuantParams) -> np.ndarray:
    """f on every input value of ``in_q``'s bitwidth (ascending from qmin), quantized into ``out_q``."""
    qmin, qmax = qrange(in_q.bits)
    xs = np.arange(qmin, qmax + 1, dtype=np.int64)
    return quantize_values(fn(dequantize_values(xs, in_q)), out_q)


def requantize_node(name: str, src: str, target: QuantParams, ctx) -> Node:
    """A lookup node that maps ``src`` into ``target``'s params (used where params must agree)."""
    out = f"{name}_out"
    t = ctx.tensor(src)
    ctx.new_tensors[out] = Tensor(out, t.shape, int_dtype(target.bits), None, target, t.origin)
    ctx.quant[out] = target
    table = build_table(lambda x: x, ctx.quant[src], target)
    return Node(name, "unary", (src,), (out,), UnaryAttrs("identity"), LutParams(table), "requantize")


def _tflite_table(sem, fn: str, in_q: QuantParams, out_q: QuantParams, rounding: str = "double") -> np.ndarray:
    """The table of TFLite Micro's integer algorithm for ``fn``."""
    if fn == "sigmoid":
        return sem.logistic_table(in_q.s, in_q.zp)
    if fn == "tanh":
        return sem.tanh_table(in_q.s, in_q.zp, out_q.s, out_q.zp)
    if fn == "hardswish":
        return sem.hard_swish_table(in_q.s, in_q.zp, out_q.s, out_q.zp)
    if fn in ("identity", "requantize"):
        return sem.requantize_table(in_q.s, in_q.zp, out_q.s, out_q.zp, rounding)
    raise ValueError(f"no TFLite integer algorithm for '{fn}'")


@register
class Unary(OpDef):
    name = "unary"
    inplace = True
    fuses_activation = True
    patch_crops_operands = True

    def patch_problem(self, node, graph):
        return None  # one element in, one element out: any region

    def infer_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0])]

    def _f(self, node, x):
        return apply_activation(FUNCTIONS[node.attrs.fn](x, node.attrs), node.attrs.activation)

    def eval_float(self, node, graph, inputs):
        return [self._f(node, inputs[0].astype(np.float64)).astype(np.float32)]

    def quantize(self, node, ctx):
        in_q = ctx.quant[node.inputs[0]]
        out = node.outputs[0]
        out_q = ctx.preset(out) or fixed_output_quant(node.attrs.fn, ctx.activation_bits(out)) or ctx.from_range(out)
        ctx.quant[out] = out_q
        if node.attrs.semantics in ("requantize", "tflite"):
            require_bits(node, ctx, 8, "TFLite's integer algorithm")
        if node.attrs.semantics == "requantize":
            table = tflite_semantics.requantize_table(in_q.s, in_q.zp, out_q.s, out_q.zp, ctx.graph.rounding)
        elif node.attrs.semantics == "tflite":
            if node.attrs.fn in ("sigmoid", "tanh") and in_q.s < 2.0 ** -28:
                # TFLite Micro's LOGISTIC / TANH Prepare turns in_scale * 2^27 into a left shift, which must
                # not be negative; so tiny input scales have no int8 algorithm
                raise UserError(f"{node.source or node.op} node '{node.name}': input scale {in_q.s:g} is below 2^-28, "
                                "where TFLite's int8 LOGISTIC / TANH algorithm has no valid parameters; the "
                                "model's quantization is broken: re-convert it")
            table = _tflite_table(tflite_semantics, node.attrs.fn, in_q, out_q, ctx.graph.rounding)
            lo, hi = activation_bounds(node.attrs.activation, out_q)
            table = saturate(table, out_q.bits, lo, hi)
        else:
            table = build_table(lambda x: self._f(node, x), in_q, out_q)
        return [node.replace(params=LutParams(table))]

    def eval_int(self, node, graph, inputs):
        bits = tensor_bits(graph, node.inputs[0])
        table = node.params.table
        if len(table) != 1 << bits:
            raise ValueError(f"lookup node '{node.name}': {len(table)} entries for a {bits}-bit input")
        idx = inputs[0].astype(np.int64) - qrange(bits)[0]  # entry i holds f(qmin + i)
        return [table[idx]]

    def macs(self, node, graph):
        return 0

    def kernel(self, node, graph, board=None):
        in_bits, out_bits = tensor_bits(graph, node.inputs[0]), tensor_bits(graph, node.outputs[0])
        if min(in_bits, out_bits) < 8:  # a packed 4- / 2-bit map in or out: a 2^in_bits-entry table
            return packed_kernels.lut_call({"table": node.params.table}, in_bits, out_bits)
        return LUT.call({"table": node.params.table})


#: TFLite's int8 softmax writes probabilities at scale 1/256, zero point -128 (the 8-bit range is [0, 1))
SOFTMAX_OUTPUT_QUANT = QuantParams.per_tensor(1.0 / 256, -128)


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass(frozen=True)
class SoftmaxParams:
    mult: int
    shift: int
    diff_min: int


@register
class Softmax(OpDef):
    """Softmax over the last (physical) axis; int8 as TFLite / CMSIS-NN (gemmlowp fixed point)."""

    name = "softmax"

    def infer_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0])]

    def eval_float(self, node, graph, inputs):
        x = inputs[0].astype(np.float64) * node.attrs.beta
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]

    def quantize(self, node, ctx):
        """TFLite's int8 softmax writes scale 1/256, zero point -128. A model that fixes other output params
        (onnxruntime's quantizer picks e.g. 1/255 from the calibrated [0, 1] range) gets that softmax into
        an intermediate tensor and one requantizing lookup table to its own params: at most one rounding
        more than a softmax that wrote those params directly (docs/onnx-qdq.md)."""
        require_bits(node, ctx, 8, "TFLite's integer softmax")
        in_q = ctx.quant[node.inputs[0]]
        out = node.outputs[0]
        params = SoftmaxParams(*softmax_params(node.attrs.beta, in_q.s))
        out_q = ctx.preset(out) or SOFTMAX_OUTPUT_QUANT
        if out_q.same_as(SOFTMAX_OUTPUT_QUANT):
            ctx.quant[out] = out_q
            return [node.replace(params=params)]
        if not out_q.is_per_tensor or out_q.bits != 8:
            raise UserError(f"softmax node '{node.name}': output quantized {'per channel' if not out_q.is_per_tensor else f'at {out_q.bits} bits'}; "
                            "mcucompile's softmax writes one per-tensor int8 scale: re-quantize the model per tensor at 8 bits")
        t = ctx.tensor(out)
        mid = f"{out}_softmax"
        ctx.new_tensors[mid] = Tensor(mid, t.shape, int_dtype(8), None, SOFTMAX_OUTPUT_QUANT, t.origin)
        ctx.quant[mid] = SOFTMAX_OUTPUT_QUANT
        ctx.quant[out] = out_q
        table = build_table(lambda x: x, SOFTMAX_OUTPUT_QUANT, out_q)
        requant = Node(f"{node.name}_requant", "unary", (mid,), (out,), UnaryAttrs("identity"), LutParams(table),
                       node.source)
        return [node.replace(outputs=(mid,), params=params), requant]

    def eval_int(self, node, graph, inputs):
        p = node.params
        x = inputs[0].astype(np.int64)
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        diff = x - x.max(axis=1, keepdims=True)
        valid = diff >= p.diff_min
        scaled = saturating_rounding_doubling_high_mul(diff * (1 << p.shift), p.mult)
        exps = exp_on_negative_values(np.where(valid, scaled, 0))
        sum_exp = np.where(valid, rounding_divide_by_pot(exps, 12), 0).sum(axis=1, keepdims=True)
        headroom = count_leading_zeros_u32(sum_exp)
        shifted = np.where(sum_exp > 0, (sum_exp << headroom) & 0xFFFFFFFF, 0)
        shifted_scale = one_over_one_plus_x_for_x_in_0_1(wrap32(shifted - (1 << 31)))
        bits_over_unit = 12 - headroom + 23
        zp = SOFTMAX_OUTPUT_QUANT.zp  # also the output's qmin: an underflowed exponential is probability 0
        res = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exps), bits_over_unit) + zp
        out = saturate(np.where(valid, res, zp), tensor_bits(graph, node.outputs[0]))
        return [out.reshape(shape)]

    def kernel(self, node, graph, board=None):
        shape = graph.tensors[node.inputs[0]].shape
        ctx = {"rows": int(np.prod(shape[:-1], dtype=np.int64)), "row_size": shape[-1], "p": node.params}
        if kernel_target(board).kernels == "cmsis-nn":
            target = kernel_target(board)
            return cmsis_nn.softmax_call(node, graph, target, ctx, lambda: self.kernel(node, graph, target.auto()))
        return SOFTMAX.call(ctx)
