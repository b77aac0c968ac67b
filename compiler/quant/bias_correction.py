"""Empirical bias correction: fold each weighted layer's mean per-channel error into its int32 bias.

Rounding weights to int8 and activations to their steps shifts the mean of a layer's output channel
(Nagel et al. 2019, "Data-Free Quantization", section 4.2; Finkelstein et al. 2019): a bias the next
layers amplify. Over the calibration samples, layer by layer in graph order (so each correction sees the
corrected layers before it), the real value the integer layer computes before its requantization,
``(acc) * s_in * s_w`` = conv(dequantized int input, dequantized int8 weights) + dequantized bias, is
compared with the float layer on the float input; the mean difference per output channel, in units of
the bias scale, is subtracted from the int32 bias (the median over samples of each sample's channel
mean, so that a few calibration samples clipped upstream do not set it). The comparison is before the
fused activation and before the output's saturation, so a ReLU's clipped negatives do not bias the mean.

Only the int32 biases change: scales, zero points, multipliers and the integer kernels stay as they
are, so the C code stays bit-exact with the simulator. A layer whose corrected bias could overflow its
int32 accumulator keeps its bias.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..arith.fixedpoint import INT32_MAX, accumulator_bound, round_half_away
from ..ir import Activation, Graph, Node, Tensor
from ..ops import op_def
from ..ops.base import dequantize_values
from ..progress import Progress
from .simulate import eval_node, node_inputs, to_physical

#: ops whose node is (input, int8 weights, int32 bias) with the bias added per output channel (last axis)
WEIGHTED_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")
#: at most this many calibration samples (the correction is a mean: a few dozen samples settle it)
MAX_SAMPLES = 64


def correct_biases(float_graph: Graph, graph: Graph, samples: np.ndarray,
                   progress: bool = False) -> tuple[Graph, dict[str, float]]:
    """``graph`` (quantized from ``float_graph``) with bias-corrected weighted layers.

    Parameters
    ----------
    float_graph : the float IR the quantized graph was made from (same node and tensor names)
    graph : the quantized graph
    samples : calibration inputs, logical layout, [N, ...] (the first :data:`MAX_SAMPLES` are used)
    progress : a progress bar on a terminal (one step per layer)

    Returns
    -------
    (graph, {node name: mean |correction| in output LSBs}) for the layers corrected.
    """
    samples = samples[:MAX_SAMPLES]
    name_in = graph.inputs[0]
    q_in = graph.tensors[name_in].quant
    from ..ops.base import quantize_values

    xf = [to_physical(float_graph, float_graph.inputs[0], s[None]) for s in samples]
    ints = [{name_in: quantize_values(x, q_in)} for x in xf]
    floats = [{float_graph.inputs[0]: x} for x in xf]
    float_nodes = {n.name: n for n in float_graph.nodes}
    fpos = {n.name: i for i, n in enumerate(float_graph.nodes)}
    done_float = 0
    tensors = dict(graph.tensors)
    corrected: dict[str, float] = {}
    with Progress(progress).step("bias correction", total=len(graph.nodes)) as step:
        for k, node in enumerate(graph.nodes):
            fnode = float_nodes.get(node.name)
            if node.op in WEIGHTED_OPS and fnode is not None and node.outputs[0] in float_graph.tensors:
                # the float values up to and including this node's float twin
                upto = fpos[fnode.name] + 1
                for fv in floats:
                    for fn in float_graph.nodes[done_float:upto]:
                        fv.update(zip(fn.outputs, eval_node(float_graph, fn, node_inputs(float_graph, fn, fv), False)))
                done_float = max(done_float, upto)
                g = graph.replace(tensors=tensors)
                delta = _mean_error(g, node, float_graph, fnode, ints, floats)
                if delta is not None:
                    b_name = node.inputs[2]
                    b = tensors[b_name]
                    new_q = (np.asarray(b.data, np.int64) - delta).astype(np.int64)
                    if _safe(g, node, new_q):
                        tensors[b_name] = dataclasses.replace(b, data=new_q.astype(np.int32))
                        out_s = graph.tensors[node.outputs[0]].quant.s
                        corrected[node.name] = float(np.mean(np.abs(delta * np.asarray(b.quant.scale, np.float64)))
                                                     / out_s)
            g = graph.replace(tensors=tensors)
            for iv in ints:
                iv.update(zip(node.outputs, eval_node(g, node, node_inputs(g, node, iv), True)))
            step.update(k + 1)
    return graph.replace(tensors=tensors), corrected


def _mean_error(g: Graph, node: Node, fg: Graph, fnode: Node, ints: list[dict], floats: list[dict]) -> np.ndarray | None:
    """Mean per-channel difference, in int32 bias units, between the integer layer's real pre-activation
    and the float layer's; None when the node does not have the expected form."""
    if len(node.inputs) < 3 or not node.inputs[2] or node.inputs[0] not in g.tensors:
        return None
    x_name, w_name, b_name = node.inputs[:3]
    w, b = g.tensors[w_name], g.tensors[b_name]
    if w.quant is None or w.quant.axis is None or b.dtype != "int32":
        return None
    axis = int(w.quant.axis)
    shape = [1] * w.data.ndim
    shape[axis] = -1
    w_real = np.asarray(w.data, np.float64) * np.asarray(w.quant.scale, np.float64).reshape(shape)
    bias_scale = np.asarray(b.quant.scale, np.float64).reshape(-1)
    probe_w = Tensor(w_name + "__real", w.shape, "float32", w_real.astype(np.float32))
    no_act = dataclasses.replace(node.attrs, activation=Activation())
    q_probe = Node(node.name, node.op, (x_name, probe_w.name), node.outputs, no_act, None, node.source)
    gq = g.replace(tensors={**g.tensors, probe_w.name: probe_w})
    f_probe = fnode.replace(inputs=fnode.inputs[:2], attrs=dataclasses.replace(fnode.attrs, activation=Activation()))
    q_x = g.tensors[x_name].quant
    per_sample = []
    for iv, fv in zip(ints, floats):
        x_real = dequantize_values(iv[x_name], q_x).astype(np.float32)
        yq = op_def(node).eval_float(q_probe, gq, [x_real, probe_w.data])[0]
        yf = op_def(fnode).eval_float(f_probe, fg, node_inputs(fg, f_probe, fv))[0]
        diff = np.asarray(yq, np.float64) - np.asarray(yf, np.float64)
        diff = diff.reshape(-1, diff.shape[-1])
        if diff.shape[-1] != len(bias_scale):
            return None
        per_sample.append(diff.mean(axis=0))
    # the median over samples of each sample's channel mean: a few calibration samples whose values an
    # earlier layer clipped (outliers beyond a percentile range) would otherwise pull every channel's
    # bias towards their clipping error, which the other inputs do not have
    err = np.median(np.stack(per_sample), axis=0)
    # the int bias's own rounding error belongs to the mean too
    b_float = fg.tensors[fnode.inputs[2]].data if len(fnode.inputs) > 2 and fnode.inputs[2] else None
    if b_float is not None:
        err += np.asarray(b.data, np.float64) * bias_scale - np.asarray(b_float, np.float64).reshape(-1)
    return round_half_away(err / bias_scale).astype(np.int64)


def _safe(g: Graph, node: Node, bias_q: np.ndarray) -> bool:
    """The corrected bias keeps the layer's int32 guarantees (see quant.quantize): |bias| <= 2^30, the
    accumulator bound within int32, and the requantization's left shift unable to wrap it."""
    w = g.tensors[node.inputs[1]]
    q_x = g.tensors[node.inputs[0]].quant
    if np.any(np.abs(bias_q) > INT32_MAX // 2):
        return False
    bound = accumulator_bound(w.data, bias_q, int(w.quant.axis), q_x.zp, q_x.bits).astype(np.float64)
    shift = np.broadcast_to(np.asarray(getattr(node.params, "shift", 0), np.int64), bound.shape)
    return bool(np.all(bound * 2.0 ** np.maximum(shift, 0) <= INT32_MAX))
