"""MEAN over H, W with TFLite Micro's integer semantics (QuantizedMeanOrSum): the raw int8 sum minus
in_zp * count, requantized once by a multiplier that folds in 1/count. Output params may differ from
the input's (unlike average pooling). Used for TFLite MEAN; ONNX ReduceMean maps to average pooling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.tflite_semantics import mean_hw, mean_params
from .base import OpDef, register, require_bits, require_rank
from .kernel import Kernel, KernelArgs, KernelCost, base_counts, read, write


@dataclass(frozen=True)
class MeanAttrs:
    pass


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
        require_rank(node, in_shapes[0], 4, "input")
        n, _, _, c = in_shapes[0]
        return [(n, 1, 1, c)]

    def eval_float(self, node, graph, inputs):
        return [inputs[0].mean(axis=(1, 2), keepdims=True).astype(np.float32)]

    def quantize(self, node, ctx):
        require_bits(node, ctx, 8, "TFLite Micro's integer MEAN")
        in_q = ctx.quant[node.inputs[0]]
        out_q = ctx.from_range(node.outputs[0])
        ctx.quant[node.outputs[0]] = out_q
        _, h, w, _ = ctx.tensor(node.inputs[0]).shape
        return [node.replace(params=mean_params(in_q.s, in_q.zp, out_q.s, out_q.zp, h * w))]

    def eval_int(self, node, graph, inputs):

        return [mean_hw(inputs[0], node.params, keep_dims=True)]

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size

    def kernel(self, node, graph, board=None):
        return MEAN.call({"p": node.params})
