"""Float IR -> integer IR with TFLite's integer scheme (per-channel int8 weights, per-tensor activations).

Activations are 8-bit unless ``bits`` asks another width for a tensor (4 and 2 bits are packed feature
maps); each quantized activation's dtype follows its params' bits (``int8``, ``int4``, ``int2``).

Every op quantizes itself (its module's ``quantize``); this driver adds what holds for all of them:

- **int32 safety of weighted layers.** A layer with per-channel int8 weights and an int32 bias
  (conv, depthwise, fully connected) accumulates ``bias + sum(w * (x - zp))`` in int32. When a channel's
  weights are near zero (pruned or dead channels: float VWW has weights below 1e-20), the symmetric
  scale ``max|w| / 127`` is tiny, the bias ``b / (input scale * weight scale)`` no longer fits int32 and
  the accumulator overflows (undefined behaviour in C). As TFLite's converter does
  (``AdjustWeightsForBiasScale``), such a channel's weight scale is raised until its bias is at most
  2^30, and further if needed until the accumulator bound (:func:`fixedpoint.accumulator_bound`) fits
  int32 for every input value (at the input's bits). Channels that fit keep the op's own scale, so other models do not change.
  The bound is then checked for every weighted layer, the model's own (TFLite / QDQ) parameters
  included; a layer that cannot be made safe is a UserError naming it.
- **Requantization that cannot wrap.** A multiplier >= 1 shifts the accumulator left before the Q31
  multiply, which wraps int32 for large accumulators; and one >= 2^30 has no Q31 form at all. Both come
  from an output range too narrow for the layer's inputs (a dead ReLU calibrated to [0, 0]). Where the
  range is mcucompile's own calibration it is widened upwards from its low end until neither can happen
  (TFLite's converter likewise widens near-zero ranges); a model's own scales are kept, and a multiplier
  they make unrepresentable is a UserError naming the layer and the tensors whose scales cause it.
- **The model's own params are the output's.** Where a pre-quantized model (QDQ) fixes an output's
  params and the op writes others (a max pool whose Q/DQ pair differs from its input's, an op with a
  fixed output format), one requantizing node maps the op's output to the model's params
  (:func:`requantize_to_presets`); a QDQ bias written at another scale than input scale x weight scale
  is requantized from its real values (:func:`bias_at_product_scale`).
- **What calibration must supply.** :func:`calibration_needs` names the activations of a partly
  quantized graph whose params no Q/DQ pair and no op fixes: only those are calibrated.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..arith import tflite_semantics
from ..arith.bitwidth import qrange, saturate
from ..arith.fixedpoint import (
    INT32_MAX,
    MAX_SHIFT,
    MultiplierRangeError,
    accumulator_bound,
    input_span,
    round_half_away,
)
from ..errors import UserError
from ..ir import Graph, Node, QuantParams, Tensor
from ..ir.graph import int_dtype
from ..ops import op_def
from ..ops.base import QuantContext
from ..ops.conv import WEIGHT_BITS, WEIGHT_MAX
from ..ops.unary import LutParams, UnaryAttrs

# TFLite's AdjustWeightsForBiasScale keeps |quantized bias| below INT32_MAX / 2: room for the products
BIAS_LIMIT = INT32_MAX / 2


def quantize_graph(graph: Graph, ranges: dict[str, tuple[float, float]], bits: dict[str, int] | None = None) -> Graph:
    """Quantize every node; activation params come from ``ranges`` (see quant.calibrate), at the
    bitwidth ``bits`` gives for an activation (IR tensor name -> 8, 4 or 2; 8 for the others).

    Raises
    ------
    UserError
        A layer whose requantization multiplier is not representable, or whose int32 accumulator could
        overflow with the model's own quantization parameters (or with any weight scale).
    """
    # a copy (ranges too narrow for a layer get widened), with the ranges the model's own params represent
    ctx = QuantContext(graph, {**ranges, **preset_ranges(graph)} if ranges else PresetRanges(preset_ranges(graph)),
                       bits)
    for name in graph.inputs:
        ctx.quant[name] = ctx.from_range(name)
    nodes = []
    for n in graph.nodes:
        bias_at_product_scale(n, ctx)
        quantized = requantize_to_presets(_quantize_node(n, ctx), ctx)
        for q in quantized:
            check_accumulators(q, ctx, n)
        nodes.extend(quantized)
    tensors = dict(graph.tensors)
    tensors.update(ctx.new_tensors)
    for name, q in ctx.quant.items():
        t = tensors[name]
        if not t.is_const:
            tensors[name] = dataclasses.replace(t, dtype=int_dtype(q.bits), quant=q)
    return graph.replace(nodes=tuple(nodes), tensors=tensors).pruned()


def preset_ranges(graph: Graph) -> dict[str, tuple[float, float]]:
    """The real range each activation's own (QDQ) params represent, by ONNX tensor: an op that derives
    its output from its inputs' ranges (concat) then sees the model's params, not a calibration of them."""
    out = {}
    for t in graph.tensors.values():
        if t.quant is not None and not t.is_const and t.quant.is_per_tensor:
            qmin, qmax = qrange(t.quant.bits)
            out[t.origin or t.name] = (float((qmin - t.quant.zp) * t.quant.s), float((qmax - t.quant.zp) * t.quant.s))
    return out


class PresetRanges(dict):
    """The ranges a pre-quantized model's own params represent, when no calibration ran: false in a
    boolean test (QuantContext.range_of then reports a tensor without params as the model's fault, not
    as a missing calibration), while an op that derives its output from its inputs' ranges (concat)
    still finds its inputs'."""

    def __bool__(self) -> bool:
        return False


class _RangeProbe(dict):
    """Ranges that answer every tensor (a placeholder [-1, 1] for the unknown ones) and record which
    unknown tensors an op asked for: what a real calibration must supply."""

    def __init__(self, known: dict[str, tuple[float, float]]):
        super().__init__(known)
        self.asked: set[str] = set()

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        self.asked.add(key)
        return (-1.0, 1.0)

    def __bool__(self) -> bool:
        return True


def calibration_needs(graph: Graph) -> set[str]:
    """The ONNX tensors (origins) of a pre-quantized graph whose params must come from calibration: the
    activations without Q/DQ params whose op does not fix them (a softmax or sigmoid output, a max pool
    or reshape that keeps its input's) and asks for a calibrated range. Found by quantizing the graph
    once with placeholder ranges (the ops' own quantize decides, no op list here). Empty for a fully
    quantized model."""
    if all(t.quant is not None for t in graph.tensors.values() if not t.is_const):
        return set()
    probe = _RangeProbe(preset_ranges(graph))
    ctx = QuantContext(graph, probe)
    for name in graph.inputs:
        ctx.quant[name] = ctx.from_range(name)
    for n in graph.nodes:
        bias_at_product_scale(n, ctx)
        requantize_to_presets(_quantize_node(n, ctx), ctx)
    return probe.asked


def requantize_to_presets(quantized: list[Node], ctx: QuantContext) -> list[Node]:
    """Where a node's output carries the model's own params (QDQ) but the op wrote others, the op writes
    an intermediate tensor and one requantizing node (TFLite's QUANTIZE table) maps it to the model's."""
    out: list[Node] = []
    for q in quantized:
        fixed = []
        for name in q.outputs:
            preset = ctx.preset(name)
            got = ctx.quant.get(name)
            if preset is None or got is None or got.same_as(preset):
                continue
            if not (preset.is_per_tensor and got.is_per_tensor and preset.bits == got.bits == 8):
                raise UserError(f"{q.source or q.op} node '{q.name}': output '{name}' carries the model's params but "
                                "the op writes other ones, and only per-tensor int8 tensors can be requantized; "
                                "re-quantize the model per tensor at 8 bits")
            mid = f"{name}__op"
            t = ctx.tensor(name)
            ctx.new_tensors[mid] = Tensor(mid, t.shape, int_dtype(8), None, got, t.origin)
            ctx.quant[mid] = got
            ctx.quant[name] = preset
            table = tflite_semantics.requantize_table(got.s, got.zp, preset.s, preset.zp)
            fixed.append(Node(f"{q.name}_requant", "unary", (mid,), (name,), UnaryAttrs("identity", semantics="requantize"),
                              LutParams(table), "requantize"))
            q = q.replace(outputs=tuple(mid if o == name else o for o in q.outputs))
        out.append(q)
        out.extend(fixed)
    return out


#: relative difference of a QDQ bias's scale from input scale x weight scale taken as float32 rounding
BIAS_SCALE_RTOL = 1e-4


def bias_at_product_scale(n: Node, ctx: QuantContext) -> None:
    """A pre-quantized int32 bias is kept only at scale input scale x weight scale (what onnxruntime and
    TFLite write, up to float32 rounding); at any other scale its real values are requantized to that
    scale (one rounding, as for a float bias), so the accumulator adds the bias the model means."""
    if len(n.inputs) < 3 or not n.inputs[2] or not n.inputs[1] or n.inputs[0] not in ctx.quant:
        return
    b, w = ctx.tensor(n.inputs[2]), ctx.tensor(n.inputs[1])
    if not (b.is_const and w.is_const and b.qdata is not None and b.quant is not None):
        return
    want = ctx.quant[n.inputs[0]].s * (np.asarray(w.quant.scale, np.float64).reshape(-1)
                                        if w.qdata is not None and w.quant is not None else np.nan)
    have = np.asarray(b.quant.scale, np.float64).reshape(-1)
    if np.all(np.isfinite(want)) and np.allclose(have, want, rtol=BIAS_SCALE_RTOL, atol=0):
        return
    # the tensor's float data are already the bias's real values (the dequantized constant)
    ctx.new_tensors[b.name] = dataclasses.replace(b, qdata=None, quant=None)


def _quantize_node(n: Node, ctx: QuantContext) -> list[Node]:
    """The op's own quantization, redone with raised weight scales where its scales would overflow and
    with a wider output range where the calibrated one is too narrow for a representable multiplier or
    for the requantization's left shift (only ranges mcucompile calibrated; a model's own stay)."""
    for attempt in range(3):
        try:
            quantized = _quantize_with_safe_weights(n, ctx)
        except MultiplierRangeError as e:
            out = ctx.quant.get(n.outputs[0])
            wider = out is not None and out.is_per_tensor and e.real > 1.0 and math.isfinite(e.real)
            if attempt == 2 or not (wider and _widen_output(n, ctx, out.s * e.real / 2.0**(MAX_SHIFT - 1))):
                raise UserError(_multiplier_message(n, ctx, e)) from None
            continue
        need = [s for q in quantized if (s := headroom_scale(q, ctx)) is not None]
        if not need or attempt == 2 or not _widen_output(n, ctx, max(need)):
            return quantized
    return quantized


def _quantize_with_safe_weights(n: Node, ctx: QuantContext) -> list[Node]:
    quantized = op_def(n).quantize(n, ctx)
    safe = int32_safe_weights(n, quantized, ctx)
    if safe is None:
        return quantized
    # hand the op pre-quantized weights (as a TFLite model would), then take them back so no other node
    # reading the same float weights sees this layer's scales
    ctx.new_tensors[safe.name] = safe
    try:
        return op_def(n).quantize(n, ctx)
    finally:
        del ctx.new_tensors[safe.name]


def _widen_output(n: Node, ctx: QuantContext, min_scale: float) -> bool:
    """Widen the calibrated range of ``n``'s output so its scale is at least ``min_scale`` (upwards from
    its low end, as TFLite widens near-zero ranges); False when that range is not ours to change or is
    wide enough already (widening would not help)."""
    out = n.outputs[0]
    key = ctx.graph.tensors[out].origin or out
    if ctx.preset(out) is not None or key not in ctx.ranges or not math.isfinite(min_scale):
        return False
    lo, hi = ctx.ranges[key]
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmin, qmax = qrange(ctx.activation_bits(out))
    width = float(qmax - qmin) * min_scale * (1.0 + 1e-6)
    if hi - lo >= width:
        return False
    ctx.ranges[key] = (lo, lo + width)
    return True


def headroom_scale(q: Node, ctx: QuantContext) -> float | None:
    """The smallest output scale with which ``q``'s requantization cannot wrap, or None when it cannot.

    A multiplier >= 1 (shift > 0) makes the kernel shift the accumulator left before the Q31 multiply;
    in int32 that wraps (C and TFLite alike) once |acc| * 2^shift > INT32_MAX, turning a saturated
    output into garbage. That happens when the output range is narrow for its inputs: a dead ReLU whose
    calibrated range is [0, 0]. A scale with 2^shift <= INT32_MAX / bound for every channel is safe."""
    wb = _weighted(q, ctx)
    shift = getattr(q.params, "shift", None)
    if wb is None or shift is None:
        return None
    w, b = wb
    in_q = ctx.quant[q.inputs[0]]
    bound = accumulator_bound(w.data, b.data, int(w.quant.axis), in_q.zp, in_q.bits).astype(np.float64)
    shift = np.broadcast_to(np.asarray(shift, np.int64), bound.shape)
    if np.all(bound * 2.0 ** np.maximum(shift, 0) <= INT32_MAX):
        return None
    # 2^shift <= 2^L with L = floor(log2(INT32_MAX / bound)) <=> multiplier < 2^L
    room = np.floor(np.log2(INT32_MAX / np.maximum(bound, 1.0)))
    in_s = ctx.quant[q.inputs[0]].s
    return float(np.max(in_s * np.asarray(w.quant.scale, np.float64).reshape(-1) / 2.0**room))


def _weighted(q: Node, ctx: QuantContext) -> tuple[Tensor, Tensor] | None:
    """(int8 per-channel weights, int32 bias) of a quantized node that has them, else None."""
    if len(q.inputs) < 3 or not q.inputs[1] or not q.inputs[2]:
        return None
    w, b = ctx.tensor(q.inputs[1]), ctx.tensor(q.inputs[2])
    if not (w.is_const and b.is_const and w.dtype == int_dtype(WEIGHT_BITS) and b.dtype == "int32"):
        return None
    if w.quant is None or w.quant.axis is None:
        return None
    return w, b


def int32_safe_weights(n: Node, quantized: list[Node], ctx: QuantContext) -> Tensor | None:
    """Float weights of ``n`` pre-quantized with scales whose bias and accumulator fit int32, or None
    when the op's own scales already do (or the weights are the model's own, which are left untouched).

    Per channel: scale = max(op's scale, 2|b| / (INT32_MAX * s_x), (|b| / s_x + R * sum|w|) / (INT32_MAX
    - 0.5 - R * K / 2)) with s_x the input scale, R = max|x - zp| and K the weights per channel: the first
    floor is TFLite's bias rule, the second makes ``|round(b / (s_x s))| + R * sum|round(w / s)|`` at
    most INT32_MAX whatever the rounding."""
    if len(n.inputs) < 2 or not n.inputs[1]:
        return None
    src = ctx.tensor(n.inputs[1])
    if not src.is_const or src.qdata is not None or src.dtype != "float32":
        return None
    found = [(q, wb) for q in quantized if (wb := _weighted(q, ctx)) is not None]
    if len(found) != 1:
        return None
    q, (wq, _) = found[0]
    axis = int(wq.quant.axis)
    scale = np.asarray(wq.quant.scale, np.float64).reshape(-1)
    cout = src.shape[axis]
    w = np.moveaxis(np.asarray(src.data, np.float64), axis, 0).reshape(cout, -1)
    b_name = n.inputs[2] if len(n.inputs) > 2 else ""
    bias = np.zeros(cout) if not b_name else np.abs(np.asarray(ctx.tensor(b_name).data, np.float64).reshape(-1))
    in_q = ctx.quant[q.inputs[0]]
    s_x, zp = in_q.s, in_q.zp
    x_span = input_span(zp, in_q.bits)
    k = w.shape[1]
    room = INT32_MAX - 0.5 - x_span * k / 2
    if room <= 0:
        raise UserError(
            f"layer '{n.name}' ({n.op}) sums {k:,} products per output channel: an int32 accumulator can "
            "overflow for some inputs whatever the weight scale; split the layer into smaller ones")
    bias_floor = bias / (BIAS_LIMIT * s_x)  # = 2|b| / (INT32_MAX * s_x)
    acc_floor = (bias / s_x + x_span * np.abs(w).sum(axis=1)) / room
    safe = np.maximum(scale, np.maximum(bias_floor, acc_floor))
    if not np.any(safe > scale):
        return None
    moved = saturate(round_half_away(w / safe[:, None]), WEIGHT_BITS, -WEIGHT_MAX, WEIGHT_MAX)
    shape = (cout,) + tuple(np.delete(src.shape, axis))
    qdata = np.moveaxis(moved.reshape(shape), 0, axis)
    return dataclasses.replace(src, quant=QuantParams(safe, np.zeros(cout, np.int64), axis), qdata=qdata)


def check_accumulators(q: Node, ctx: QuantContext, source: Node) -> None:
    """Raise UserError when some input value can overflow the int32 accumulator of ``q`` (a quantized
    node of ``source``) with the model's own parameters; with mcucompile's own scales that, or a
    requantization that can wrap, would be a bug (RuntimeError). A model's own multipliers >= 1 are
    kept as they are (TFLite Micro computes them the same way). Nodes without per-channel int8 weights
    and an int32 bias are not checked."""
    wb = _weighted(q, ctx)
    if wb is None:
        return
    w, b = wb
    in_q = ctx.quant[q.inputs[0]]
    bound = accumulator_bound(w.qdata if w.qdata is not None else w.data, b.data, int(w.quant.axis), in_q.zp,
                              in_q.bits)
    worst = int(np.argmax(bound))
    own = ctx.tensor(source.inputs[1]).qdata is None
    if own and ctx.preset(q.outputs[0]) is None and headroom_scale(q, ctx) is not None:
        raise RuntimeError(f"layer '{source.name}' ({source.op}): its requantization can wrap int32 although "
                           "mcucompile chose its output range")
    if bound[worst] <= INT32_MAX:
        return
    what = (f"output channel {worst} can overflow its int32 accumulator (|bias| + sum |w * (x - zero point)| up to "
            f"{int(bound[worst]):,} > {INT32_MAX:,})")
    if own:
        # int32_safe_weights chose these scales to make the bound hold: this is a compiler bug
        raise RuntimeError(f"layer '{source.name}' ({source.op}): {what} with mcucompile's own weight scales")
    raise UserError(
        f"layer '{source.name}' ({source.op}): with the model's own quantization parameters, {what}; requantize "
        "the model so that biases stay below 2^30 (TFLite's converter does), or give the float model and let "
        "mcucompile quantize it")


def _multiplier_message(n: Node, ctx: QuantContext, e: MultiplierRangeError) -> str:
    acts = [i for i in n.inputs if i and not ctx.tensor(i).is_const]
    names = " and ".join(f"'{t}'" for t in acts[:1] + list(n.outputs[:1]))
    if ctx.preset(n.outputs[0]) is not None:
        fix = f"the model's own scales of {names} give it; re-export the model with realistic ranges for them"
    else:
        fix = (f"the calibrated ranges of {names} give it; calibrate with representative data (--calib) that "
               "exercises this layer")
    return f"layer '{n.name}' ({n.op}): {e}; {fix}"
