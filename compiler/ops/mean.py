"""MEAN over H, W with TFLite Micro's integer semantics (QuantizedMeanOrSum): the raw int8 sum minus
in_zp * count, requantized once by a multiplier that folds in 1/count. Output params may differ from
the input's (unlike average pooling). Used for TFLite MEAN and for a global average pool at output params
of its own (QDQ models); ONNX ReduceMean over H, W maps to average pooling, over other axes to this op,
which refuses them (supports)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.tflite_semantics import mean_hw, mean_params
from .base import OpDef, register, require_bits, shape_error
from .kernel import Kernel, KernelArgs, KernelCost, base_counts, read, write


@dataclass(frozen=True)
class MeanAttrs:
    """The (physical) axes averaged over, as the model states them; the output keeps them as size 1. The
    kernel averages over H, W of a 4-D map only (``supports``)."""

    axes: tuple[int, ...] = (1, 2)


def _mean_access(args: KernelArgs):
    """mcu_mean_hw_s8: the whole [N, H, W, C] input, output [N, 1, 1, C]."""
    n, h, w, c = args.in_dims[0]
    contract = [] if tuple(args.out_dims) == (n, 1, 1, c) else [
        f"output dims {list(args.out_dims)} are not [{n}, 1, 1, {c}]"]
    return [read(args.inputs[0], n * h * w * c, "input"), write(args.output, n * c, "output")], contract


def _mean_counts(node, graph, g):
    f = base_counts(node, graph, g)
    f["outputs"] = float(graph.tensors[node.outputs[0]].size)
    f["elements"] = float(graph.tensors[node.inputs[0]].size)
    return f


MEAN = Kernel("mean.c.j2", _mean_access, KernelCost(
    ("calls", "outputs", "elements"), {"calls": 136.0, "outputs": 84.0, "elements": 6.0}, _mean_counts,
    note="not in the measured models (only TFLite's MEAN makes it): set by hand from avg_pool, whose loop it "
         "shares"))


@register
class Mean(OpDef):
    name = "mean"

    def infer_shapes(self, node, in_shapes):
        x, axes = in_shapes[0], node.attrs.axes
        if any(not 0 <= a < len(x) for a in axes) or len(set(axes)) != len(axes):
            raise shape_error(node, f"axes {list(axes)} for a {len(x)}-D input")
        return [tuple(1 if a in axes else d for a, d in enumerate(x))]

    def supports(self, node, graph):
        rank = len(graph.tensors[node.inputs[0]].shape)
        if rank != 4 or tuple(sorted(node.attrs.axes)) != (1, 2):
            # a 4-D map is N, H, W, C here whatever the model's layout: name the axes so an NCHW model's
            # author recognizes their own (their axis 1 is C, axis 3 here)
            letters = ", ".join("NHWC"[a] for a in sorted(node.attrs.axes))
            names = f" ({letters}; its axes are N, H, W, C)" if rank == 4 else ""
            return (f"a mean over axes {sorted(node.attrs.axes)} of a {rank}-D tensor{names}: only the spatial axes "
                    "(1, 2) of a 4-D tensor are supported (H and W)")
        return None

    def eval_float(self, node, graph, inputs):
        return [inputs[0].mean(axis=tuple(node.attrs.axes), keepdims=True).astype(np.float32)]

    def quantize(self, node, ctx):
        require_bits(node, ctx, 8, "TFLite Micro's integer MEAN")
        in_q = ctx.quant[node.inputs[0]]
        out_q = ctx.from_range(node.outputs[0])
        ctx.quant[node.outputs[0]] = out_q
        _, h, w, _ = ctx.tensor(node.inputs[0]).shape
        return [node.replace(params=mean_params(in_q.s, in_q.zp, out_q.s, out_q.zp, h * w))]

    def eval_int(self, node, graph, inputs):

        return [mean_hw(inputs[0], node.params, keep_dims=True, rounding=graph.rounding)]

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size

    def kernel(self, node, graph, board=None):
        return MEAN.call({"p": node.params})
