"""Ops that move bytes without arithmetic: reshape (an alias), transpose, concat and pad.

All keep the input's quantization; concat requantizes an input only when its params differ (the
quantizer inserts a ``requantize`` lookup table in front of it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..arith.bitwidth import saturate
from ..ir import Activation, Region
from .spatial import as_nhwc
from . import packed_kernels
from .base import OpDef, c_dims, register, shape_error, tensor_bits
from .kernel import Access, Kernel, KernelArgs, KernelCost, base_counts, prod, read, write


def _same_quant(node, ctx):
    ctx.quant[node.outputs[0]] = ctx.quant[node.inputs[0]]
    return [node]


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]


@register
class Reshape(OpDef):
    name = "reshape"
    alias = True

    def infer_shapes(self, node, in_shapes):
        shape = tuple(node.attrs.shape)
        if any(d < 1 for d in shape) or int(np.prod(shape, dtype=np.int64)) != int(np.prod(in_shapes[0], dtype=np.int64)):
            raise shape_error(node, f"cannot reshape {list(in_shapes[0])} to {list(shape)}")
        return [shape]

    def eval_float(self, node, graph, inputs):
        return [inputs[0].reshape(node.attrs.shape)]

    eval_int = eval_float
    quantize = staticmethod(_same_quant)


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...]


def _dims4(shape, perm):
    pad = 4 - len(shape)
    s = (1,) * pad + tuple(shape)
    p = tuple(range(pad)) + tuple(a + pad for a in perm)
    return s, p


def _transpose_access(args: KernelArgs):
    """mcu_transpose_s8: every element of input_dims in, the same count out."""
    n = prod(args.context["in_shape"])
    perm = tuple(args.context["perm"])
    contract = [] if sorted(perm) == [0, 1, 2, 3] else [f"perm {list(perm)} is not a permutation of 4 axes"]
    return [read(args.inputs[0], n, "input"), write(args.output, n, "output")], contract


def _transpose_counts(node, graph, g):
    f = base_counts(node, graph, g)
    f["elements"] = float(graph.tensors[node.inputs[0]].size)
    return f


TRANSPOSE = Kernel("transpose.c.j2", _transpose_access, KernelCost(
    ("calls", "elements"), {"calls": 0.0, "elements": 5.98}, _transpose_counts))


@register
class Transpose(OpDef):
    name = "transpose"

    def infer_shapes(self, node, in_shapes):
        if sorted(node.attrs.perm) != list(range(len(in_shapes[0]))):
            raise shape_error(node, f"perm {list(node.attrs.perm)} is not a permutation of the {len(in_shapes[0])} axes")
        return [tuple(in_shapes[0][a] for a in node.attrs.perm)]

    def eval_float(self, node, graph, inputs):
        return [np.ascontiguousarray(inputs[0].transpose(node.attrs.perm))]

    eval_int = eval_float
    quantize = staticmethod(_same_quant)

    def kernel(self, node, graph, board=None):
        shape, perm = _dims4(graph.tensors[node.inputs[0]].shape, node.attrs.perm)
        if len(shape) > 4:
            raise ValueError("transpose of more than 4 dims")
        return TRANSPOSE.call({"in_shape": shape, "perm": perm})


@dataclass(frozen=True)
class ConcatAttrs:
    """The (physical) axis joined along, and a clamp the model fuses into the concatenation (the kernel
    copies bytes and applies none: ``supports``)."""

    axis: int
    activation: Activation = field(default_factory=Activation)


def _concat_access(args: KernelArgs):
    """mcu_concat_s8 once per input: outer rows of in_row bytes, written at offset in rows of out_row (each
    call checks offset >= 0 and offset + in_row <= out_row; the parts together must fill the row)."""
    outer = args.out_dims[1] * args.out_dims[2] if args.patched else args.context["outer"]
    out_row, acc, offset = args.context["out_row"], [], 0
    for k, part in enumerate(args.context["parts"]):
        acc.append(read(args.inputs[k], outer * part, f"input {k}"))
        if outer > 0 and part > 0:
            acc.append(Access(args.output, offset, (outer - 1) * out_row + offset + part, True, f"output part {k}"))
        offset += part
    contract = [] if offset == out_row else [f"parts sum to {offset} bytes per row, output rows have {out_row}"]
    return acc, contract


def _concat_counts(node, graph, g):
    f = base_counts(node, graph, g)
    parts = [i for i in node.inputs if i]
    a = node.attrs.axis
    whole = graph.tensors[node.outputs[0]].shape
    # one memcpy per input and outer row: a channel concat of a 4-D map has one row per pixel
    outer = g.out_h * g.out_w if a == len(whole) - 1 and len(whole) == 4 else prod(whole[:a])
    f["calls"] = float(len(parts))
    f["rows"] = float(outer * len(parts))
    f["bytes"] = float(f["outputs"] if len(whole) == 4 else graph.tensors[node.outputs[0]].size)
    return f


CONCAT = Kernel("concat.c.j2", _concat_access, KernelCost(
    ("calls", "rows", "bytes"), {"calls": 48.856, "rows": 35.961, "bytes": 1.237}, _concat_counts))


@register
class Concat(OpDef):
    name = "concat"
    patch_crops_operands = True

    def patch_problem(self, node, graph):
        return None if node.attrs.axis == 3 else "it concatenates along H or W, not channels"

    def supports(self, node, graph):
        if not node.attrs.activation.is_identity:
            return ("a fused activation: the concatenation kernel copies bytes and applies none; "
                    "apply the activation as a layer of its own")
        return None

    def infer_shapes(self, node, in_shapes):
        a = node.attrs.axis
        rank = len(in_shapes[0])
        if not 0 <= a < rank:
            raise shape_error(node, f"axis {a} out of range for {rank}-D inputs")
        for s in in_shapes[1:]:
            if len(s) != rank or any(d != e for k, (d, e) in enumerate(zip(s, in_shapes[0])) if k != a):
                raise shape_error(node, f"inputs of shapes {[list(x) for x in in_shapes]} differ outside axis {a}")
        out = list(in_shapes[0])
        out[a] = sum(s[a] for s in in_shapes)
        return [tuple(out)]

    def eval_float(self, node, graph, inputs):
        return [np.concatenate(inputs, axis=node.attrs.axis)]

    eval_int = eval_float

    def quantize(self, node, ctx):
        from .unary import requantize_node

        from .base import activation_quant

        out = node.outputs[0]
        # the model's own output params (QDQ, TFLite) when it has them: each input is requantized once,
        # straight into them; else params covering every input's range
        qo = ctx.preset(out)
        if qo is None:
            lo = min(ctx.range_of(i)[0] for i in node.inputs)
            hi = max(ctx.range_of(i)[1] for i in node.inputs)
            qo = activation_quant(lo, hi, ctx.activation_bits(out))
        ctx.quant[out] = qo
        nodes, inputs = [], []
        for i, name in enumerate(node.inputs):
            if ctx.quant[name].same_as(qo):
                inputs.append(name)
                continue
            rq = requantize_node(f"{node.name}_requant{i}", name, qo, ctx)
            nodes.append(rq)
            inputs.append(rq.outputs[0])
        return nodes + [node.replace(inputs=tuple(inputs))]

    def kernel(self, node, graph, board=None):
        a = node.attrs.axis
        out_shape = graph.tensors[node.outputs[0]].shape
        outer = int(np.prod(out_shape[:a], dtype=np.int64))
        inner = int(np.prod(out_shape[a + 1 :], dtype=np.int64))
        parts = [graph.tensors[i].shape[a] * inner for i in node.inputs]
        return CONCAT.call({"outer": outer, "out_row": out_shape[a] * inner, "parts": parts})


@dataclass(frozen=True)
class PadAttrs:
    """(before, after) per physical axis (negative: the model crops), the real value padded with and the
    model's padding mode; the kernel pads with zeros (the zero point) only (``supports``)."""

    pads: tuple[tuple[int, int], ...]
    value: float = 0.0
    mode: str = "constant"


def _pad_access(args: KernelArgs):
    """mcu_pad_s8: fills the whole output, copies the input at ``before``; before + input <= output."""
    if args.patched:
        in_d, out_d, before = args.in_dims[0], args.out_dims, (0, args.pads[0], args.pads[1], 0)
    else:
        in_d, out_d, before = args.context["in_shape"], args.context["out_shape"], args.context["before"]
    contract = [] if all(b >= 0 and b + i <= o for b, i, o in zip(before, in_d, out_d)) else [
        f"input {list(in_d)} at {list(before)} leaves the output {list(out_d)}"]
    return [read(args.inputs[0], prod(in_d), "input"), write(args.output, prod(out_d), "output")], contract


def _pad_counts(node, graph, g):
    f = base_counts(node, graph, g)
    c_in = as_nhwc(tuple(graph.tensors[node.inputs[0]].shape))[3]
    f["bytes"] = f["outputs"]
    f["rows"] = float(g.in_h * g.in_w)  # one memcpy per input pixel
    f["in_bytes"] = float(g.in_h * g.in_w * c_in)
    return f


PAD = Kernel("pad.c.j2", _pad_access, KernelCost(
    ("calls", "bytes", "rows", "in_bytes"), {"calls": 144.831, "bytes": 0.204, "rows": 41.78, "in_bytes": 1.095},
    _pad_counts))


@register
class Pad(OpDef):
    name = "pad"

    def patch_problem(self, node, graph):
        p = node.attrs.pads
        if len(p) != 4 or p[0] != (0, 0) or p[3] != (0, 0):
            return "it pads the batch or channel axis"
        if len(graph.consumers(node.inputs[0])) != 1:
            return "its input is read by other layers too"
        return None

    def patch_input_region(self, node, graph, out, tensor):
        t, p = graph.tensors[tensor], node.attrs.pads
        return Region(out.top - p[1][0], out.left - p[2][0], out.bottom - p[1][0],
                      out.right - p[2][0]).clipped(t.shape[1], t.shape[2])

    def patch_local_pads(self, node, rin, rout):
        p = node.attrs.pads
        return max(0, p[1][0] - rout.top), max(0, p[2][0] - rout.left)

    def patch_local_node(self, node, lw, x):
        pads = node.attrs.pads
        after_h = lw.out_h - lw.in_h - lw.pad_top
        after_w = lw.out_w - lw.in_w - lw.pad_left
        local = dataclasses.replace(node.attrs, pads=(pads[0], (lw.pad_top, after_h), (lw.pad_left, after_w), pads[3]))
        return node.replace(attrs=local), x

    def kernel_dims(self, node, graph, call, patch_entry=None):
        L = super().kernel_dims(node, graph, call, patch_entry)
        if patch_entry is None:
            ctx = call.context
            L["pad_in"], L["pad_before"], L["pad_out"] = (c_dims(ctx["in_shape"]), c_dims(ctx["before"]),
                                                          c_dims(ctx["out_shape"]))
        else:
            L["pad_in"], L["pad_out"] = L["in_dims"][0], L["out_dims"]
            L["pad_before"] = f"{{0, {patch_entry}.pad_h, {patch_entry}.pad_w, 0}}"
        return L

    def infer_shapes(self, node, in_shapes):
        pads = node.attrs.pads
        out = tuple(d + a + b for d, (a, b) in zip(in_shapes[0], pads))
        if len(pads) != len(in_shapes[0]) or any(d < 1 for d in out):
            raise shape_error(node, f"pads {[list(p) for p in pads]} for a {len(in_shapes[0])}-D input "
                                    f"{list(in_shapes[0])} (one pair per axis, every output dimension at least 1)")
        return [out]

    def supports(self, node, graph):
        a = node.attrs
        if a.mode != "constant":
            return f"pad mode '{a.mode}': only constant padding with zeros is supported"
        if a.value != 0.0:
            return (f"it pads with the value {a.value:g}, not 0: the pad kernel fills with the zero point (the real "
                    "value 0) only; pad with zeros")
        if any(b < 0 or e < 0 for b, e in a.pads):
            return "negative pads (cropping): only padding (pads >= 0) is supported"
        return None

    def eval_float(self, node, graph, inputs):
        return [np.pad(inputs[0], node.attrs.pads, constant_values=node.attrs.value).astype(inputs[0].dtype)]

    def quantize(self, node, ctx):
        return _same_quant(node, ctx)

    def eval_int(self, node, graph, inputs):
        zp = graph.tensors[node.inputs[0]].quant.zp
        # the output keeps the input's params (and bits); the zero point fills the border
        return [saturate(np.pad(inputs[0], node.attrs.pads, constant_values=zp), tensor_bits(graph, node.inputs[0]))]

    def kernel(self, node, graph, board=None):
        shape = graph.tensors[node.inputs[0]].shape
        pad = 4 - len(shape)
        in4 = (1,) * pad + tuple(shape)
        pads = ((0, 0),) * pad + tuple(node.attrs.pads)
        out4 = tuple(d + a + b for d, (a, b) in zip(in4, pads))
        zp = graph.tensors[node.inputs[0]].quant.zp
        ctx = {"in_shape": in4, "out_shape": out4, "before": [a for a, _ in pads], "value": zp}
        bits = tensor_bits(graph, node.inputs[0])
        if bits < 8:  # a packed 4- / 2-bit map (padded along N, H, W; the output keeps its bits)
            return packed_kernels.pad_call(ctx, bits)
        return PAD.call(ctx)

