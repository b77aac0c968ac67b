"""QuantMCU's low-bit chain: the stage's own copy at the bitwidths chosen per feature map, for the patches
VDPC lets through (docs/quantmcu.md, "low-bit chain").

Given a patched compile (graph, :class:`PatchPlan`), a VDPC plan (its threshold and, on the calibration
data, which patches are outliers) and a bitwidth per feature map of the stage ({map: 8 | 4 | 2}):

- each map below 8 bits gets its own tensor (``<map>__a<bits>``, packed storage, the same region in every
  patch) with per-tensor params calibrated on the calibration set's **no-outlier patches** only (the values
  the 8-bit model computes there, dequantized), the clipping range chosen by quantization MSE over those
  values (``quant/methods.py``'s histogram and MSE search at the map's bit range) rather than min/max;
- each stage node whose input or output params change is copied and requantized for them (conv and depthwise:
  multipliers, zero points, clamps and a bias rescaled into its own constant; add: its rescales; pooling and
  pad keep their input's params, so the map they make follows a lowered input map: its bits and params, unless
  another bitwidth is given for it), so the packed kernels read
  and write the packed maps directly, with the output width each layer's map has;
- the stage output keeps the 8-bit model's tensor and params: the rest of the network is unchanged;
- maps kept at 8 bits keep the 8-bit model's tensor and params (in particular the map VDPC checks, which the
  low-bit chain makes as the probe, so the check and the outlier chain's resume see the 8-bit values).

The outlier chain is the 8-bit stage; :func:`lowbit_schedule` builds the patch loop with both chains
(chain 0: 8-bit, chain 1: low-bit), the run-time dispatch and the arena plan (the chains' buffers exclusive);
:func:`lowbit_only_schedule` the loop of the low-bit chain alone (a check that cannot fire is dropped).
:func:`stage_bitops` prices a schedule on given inputs. With ``per_channel=True`` a one-sided map between
convolutions gets one scale per channel (one zero point), folded into the consumers' int8 weights at compile
time (the chain's own copy).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..arith.bitwidth import qrange
from ..arith.fixedpoint import quantize_multiplier, quantize_multiplier_array
from ..errors import UserError
from ..ir import Graph, Node, QuantParams
from ..ir.graph import int_dtype
from ..memory.planner import ArenaPlan
from ..ops.base import activation_bounds, activation_quant, op_def
from ..ops.conv import ConvParams
from ..ops.elementwise import ADD_LEFT_SHIFT, AddParams
from ..ops.pooling import PoolParams
from ..patch.execute import plan_sub_patches
from ..patch.memory import plan_memory_patched
from ..patch.planner import PatchPlan, node_macs_region, np_region
from ..quant.methods import CalibrationRule, Histogram, choose_range
from ..quant.simulate import run_nodes
from ..schedule.schedule import Dispatch, Schedule, build_schedule, run_schedule_int
from .stats import stage_maps
from .vdpc import VdpcPlan, runtime_dispatch

#: the bitwidths a feature map of the low-bit chain may have
BITS = (8, 4, 2)
#: histogram bins of the MSE clipping search
HIST_BINS = 2048


@dataclass(frozen=True, eq=False)
class LowbitChain:
    """The low-bit chain of a patched stage.

    ``graph``: the model graph with the chain's own tensors added (packed maps, rescaled biases); ``plan``: the
    patch plan with their regions; ``nodes``: the chain, one node per stage node (in order); ``bits`` and
    ``quant``: each stage map's bitwidth and, below 8 bits, its params; ``tensor_of``: the chain's tensor of
    each stage map; ``calib_values``: how many no-outlier patch values each map was calibrated on."""

    graph: Graph
    plan: PatchPlan
    nodes: tuple[Node, ...]
    bits: dict[str, int]
    quant: dict[str, QuantParams]
    tensor_of: dict[str, str]
    calib_values: dict[str, int]
    channel_scales: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    flash_bytes: int = 0
    #: maps a pooling or pad layer makes that take their lowered input map's bits and params: {map: that input}
    follows: dict[str, str] = dataclasses.field(default_factory=dict)


def lowbit_name(tensor: str, bits: int) -> str:
    """The low-bit chain's tensor for stage map ``tensor`` at ``bits`` bits."""
    return f"{tensor}__a{bits}"


def _check_bits(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, bits: dict[str, int]) -> dict[str, int]:
    maps = [m for m in stage_maps(graph, plan) if m not in (graph.inputs[0], plan.split)]
    for name, b in bits.items():
        if name not in maps:
            raise UserError(f"'{name}' is not an 8-bit feature map made inside the patched stage (those are "
                            f"{maps}); fix: give bits for those maps only (the input and the stage output stay 8-bit)")
        if b not in BITS:
            raise UserError(f"bitwidth {b} for map '{name}': fix: use one of {list(BITS)}")
    if vdpc.checked is not None and bits.get(vdpc.checked, 8) != 8:  # (a check that cannot fire is dropped)
        raise UserError(f"the VDPC check reads '{vdpc.tensor}', which the low-bit chain makes as the probe, so it must "
                        "stay at 8 bits; fix: keep that map at 8 bits or check at the input")
    return {m: int(bits.get(m, 8)) for m in maps}


#: ops whose output keeps its input's params (no requantization): a map one of them makes follows its input map
KEEPS_PARAMS = ("max_pool2d", "avg_pool2d", "pad")


def _following_maps(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, full: dict[str, int],
                    given: dict[str, int]) -> dict[str, str]:
    """{map: the lowered map whose bits and params it takes}: the maps a pooling or pad layer makes (in a row of
    them, from the first one's input) when that input is lowered and the map itself is one the chain may lower
    with no other bitwidth given for it (not given, 8, or the same bits). The stage output and the checked map
    (while the check can fire) stay 8-bit (their layer then refuses a lowered input, as before)."""
    follows: dict[str, str] = {}
    for n in graph.nodes[: plan.stage_len]:
        if n.op not in KEEPS_PARAMS:
            continue
        out, root = n.outputs[0], follows.get(n.inputs[0], n.inputs[0])
        if out not in full or out == vdpc.checked or full.get(root, 8) == 8:
            continue
        if given.get(out, 8) in (8, full[root]):
            follows[out] = root
    return follows


def inlier_values(graph: Graph, plan: PatchPlan, calib_q: np.ndarray, outliers: np.ndarray,
                  maps: list[str], keep_channels: bool = False) -> dict[str, np.ndarray]:
    """The real values (dequantized from the 8-bit model) of each map in ``maps`` over the regions of the
    calibration patches that are not outliers (``outliers``: bool [samples, patches], VDPC's decision); flat, or
    [values, channels] with ``keep_channels``."""
    inp, k = graph.inputs[0], plan.stage_len
    shape = graph.tensors[inp].shape
    parts: dict[str, list[np.ndarray]] = {m: [] for m in maps}
    for s, x in enumerate(calib_q):
        values = run_nodes(graph, graph.nodes[:k], {inp: np.asarray(x).reshape(shape)}, integer=True)
        for m in maps:
            q = graph.tensors[m].quant
            v = (np.asarray(values[m], np.float64) - q.zp) * q.s
            for p, regs in enumerate(plan.regions):
                if not outliers[s, p]:
                    parts[m].append(np_region(v, regs[m]).reshape(-1, v.shape[-1]))
    out = {m: (np.concatenate(v) if v else np.zeros((0, graph.tensors[m].shape[-1]))) for m, v in parts.items()}
    return out if keep_channels else {m: v.reshape(-1) for m, v in out.items()}


@dataclass(frozen=True, eq=False)
class InlierCounts:
    """The values :func:`inlier_values` takes of one map (``keep_channels=True``), held as counts: ``counts[c, i]``
    is how many of them in channel c are the 8-bit model's integer ``i - 128`` (int8). Their real values are
    ``table[i]`` = (i - 128 - zero point) x scale, the very float64 arithmetic ``inlier_values`` does per value, so
    whatever is computed value by value (min, max, histogram bins, quantized codes, entropy) is computed once per
    (channel, integer) and weighted by its count, with the same result; ``size`` = ``values.size``."""

    counts: np.ndarray
    table: np.ndarray

    @staticmethod
    def of_table(counts: np.ndarray, zero_point: int, scale: float) -> InlierCounts:
        table = (np.arange(-128, 128, dtype=np.int8).astype(np.float64) - zero_point) * scale
        return InlierCounts(np.asarray(counts, np.int64), table)

    @property
    def size(self) -> int:
        return int(self.counts.sum())

    @property
    def channels(self) -> int:
        return int(self.counts.shape[0])


def _weighted(values) -> tuple[np.ndarray, np.ndarray | None]:
    """(distinct real values, their counts) of ``values`` (an :class:`InlierCounts`, all channels together), or
    (the flat values, None) for an array."""
    if isinstance(values, InlierCounts):
        w = values.counts.sum(axis=0)
        return values.table[w > 0], w[w > 0]
    return np.asarray(values).reshape(-1), None


def _channel(values, k: int):
    """Channel ``k`` of ``values`` ([n, channels] array or :class:`InlierCounts`), as :func:`_weighted` takes it."""
    if isinstance(values, InlierCounts):
        w = values.counts[k]
        return values.table[w > 0], w[w > 0]
    return values[:, k], None


def inlier_counts(graph: Graph, plan: PatchPlan, values: dict[str, np.ndarray], outliers: np.ndarray,
                  maps) -> dict[str, InlierCounts]:
    """:func:`inlier_values` (``keep_channels=True``) as :class:`InlierCounts`, from the stage values already taken
    (``vdqs.stage_values``: every map, the samples stacked along N): per map and channel, how many of those values
    are each 8-bit integer (the values themselves follow from the integer: the same ones, counted)."""
    out = {}
    for m in maps:
        q = graph.tensors[m].quant
        v = np.asarray(values[m])
        c = v.shape[-1]
        offset = np.arange(c, dtype=np.int64) * 256 + 128  # channel ch's integer i counts at ch * 256 + i + 128
        counts = np.zeros(c * 256, np.int64)
        for p, regs in enumerate(plan.regions):
            keep = ~outliers[:, p]
            if not keep.any():
                continue
            r = np_region(v, regs[m])[keep].reshape(-1, c)
            counts += np.bincount((r.astype(np.int64) + offset).reshape(-1), minlength=c * 256)
        out[m] = InlierCounts.of_table(counts.reshape(c, 256), q.zp, q.s)
    return out


#: how the low-bit chain's ranges are chosen: by quantization MSE (the default), or min/max (for comparison)
CLIPPINGS = ("mse", "minmax")


def _histogram(lo: float, hi: float, v: np.ndarray, w: np.ndarray | None) -> Histogram:
    hist = Histogram(lo, hi, HIST_BINS)
    if w is None:
        hist.add(v)
        return hist
    # Histogram.add with each value counted w times: the same bin per value, the counts exact (integers below 2^53)
    idx = ((np.asarray(v, np.float64).ravel() - hist.lo) * (len(hist.counts) / (hist.hi - hist.lo))).astype(np.int64)
    hist.counts += np.bincount(np.clip(idx, 0, len(hist.counts) - 1), weights=np.asarray(w, np.float64),
                               minlength=len(hist.counts))
    return hist


def mse_quant(values, bits: int, clipping: str = "mse") -> QuantParams:
    """Per-tensor ``bits``-bit params for ``values``: the range that minimises the quantization MSE (clipping
    included) over them, searched as ``--calibration mse`` does (``clipping="minmax"``: their min/max).
    ``values``: an array, an :class:`InlierCounts` (all its channels) or a pair (distinct values, counts)."""
    v, w = values if isinstance(values, tuple) else _weighted(values)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    hist = _histogram(lo, hi, v, w)
    qmin, qmax = qrange(bits)
    a, b = choose_range(CalibrationRule(clipping), lo, hi, hist, qmin, qmax)
    return activation_quant(a, b, bits)


def _folded_weights(wt, factor: np.ndarray, name: str):
    """Weights ``wt`` (int8, per output channel along ``quant.axis``, input channels last) for an input whose
    channel c has scale ``factor[c]`` x the tensor's nominal scale: depthwise (channels on the quant axis) only
    their scales change; otherwise each output channel is requantized to int8 (symmetric, max / 127)."""
    axis, last = wt.quant.axis, len(wt.shape) - 1
    wscale = np.asarray(wt.quant.scale, np.float64)
    if axis == last:
        q, scale = np.asarray(wt.data), wscale * factor
    else:
        shape = [1] * len(wt.shape)
        shape[axis] = -1
        real = np.asarray(wt.data, np.float64) * wscale.reshape(shape) * factor
        red = tuple(a for a in range(len(wt.shape)) if a != axis)
        scale = np.maximum(np.abs(real).max(axis=red), 1e-30) / 127.0
        q = np.clip(np.round(real / scale.reshape(shape)), -127, 127).astype(np.int8)
    return dataclasses.replace(wt, name=name, data=q, qdata=None,
                               quant=QuantParams(scale, np.zeros(len(scale), np.int64), axis, wt.quant.bits))


def _per_channel_scales(values: np.ndarray, bits: int, clipping: str, stage, m: str, graph: Graph) -> np.ndarray | None:
    """Per-channel scales of map ``m`` (``values``: [n, channels] real values) with one zero point (qmin), or
    None when the map does not allow them: a value below 0 (one zero point needs one-sided channels), a producer
    or consumer other than conv / depthwise (add and pooling take one scale), a depthwise consumer with a channel
    multiplier, or a fused clamp that would differ between channels."""
    if values.size == 0 or _weighted(values)[0].min() < 0:
        return None
    qmin, qmax = qrange(bits)
    prod = [n for n in stage if m in n.outputs]
    cons = [n for n in stage if m in n.inputs]
    if not prod or any(n.op not in ("conv2d", "depthwise_conv2d") for n in prod + cons):
        return None
    c = values.channels if isinstance(values, InlierCounts) else values.shape[1]
    if any(n.op == "depthwise_conv2d" and graph.tensors[n.inputs[1]].shape[-1] != c for n in cons):
        return None
    scales = np.array([mse_quant(_channel(values, k), bits, clipping).s for k in range(c)], np.float64)
    # a dead channel (all zeros after a ReLU) would get a vanishing scale and an out-of-range multiplier; its
    # values are the zero point at any scale, so a floor costs nothing
    scales = np.maximum(scales, scales.max() / 256.0)
    bounds = {activation_bounds(prod[0].attrs.activation, QuantParams.per_tensor(float(sc), qmin, bits)) for sc in scales}
    return scales if bounds == {(qmin, qmax)} or len(bounds) == 1 else None


def _requantized(node: Node, graph: Graph, tensors: dict, renamed: dict[str, str],
                 channel_scale: dict[str, np.ndarray] | None = None) -> tuple[Node, list]:
    """``node`` reading and writing the chain's tensors (``renamed``: stage map -> chain tensor), requantized
    for their params; also the new constants it needs. ``channel_scale``: chain tensors with per-channel scales
    (the tensor's own scale is nominal): the producer's multipliers take them, the consumer's weights fold them."""
    channel_scale = channel_scale or {}
    inputs = tuple(renamed.get(i, i) for i in node.inputs)
    outputs = tuple(renamed.get(o, o) for o in node.outputs)
    if inputs == node.inputs and outputs == node.outputs:
        return node, []
    in_q, out_q = tensors[inputs[0]].quant, tensors[outputs[0]].quant
    extra = []
    if node.op in ("conv2d", "depthwise_conv2d"):
        if inputs[0] in channel_scale:
            wt = _folded_weights(tensors[inputs[1]], channel_scale[inputs[0]] / in_q.s, f"{inputs[1]}__{outputs[0]}")
            extra.append(wt)
            tensors[wt.name] = wt
            inputs = (inputs[0], wt.name) + inputs[2:]
        wscale = np.asarray(tensors[inputs[1]].quant.scale, np.float64)
        new_scale = in_q.s * wscale
        if len(inputs) > 2 and inputs[2]:
            bt = tensors[inputs[2]]
            bias = np.clip(np.round(bt.data.astype(np.float64) * np.asarray(bt.quant.scale) / new_scale),
                           -(2**31), 2**31 - 1).astype(np.int32)
            nb = dataclasses.replace(bt, name=f"{bt.name}__{outputs[0]}", data=bias, qdata=None,
                                     quant=QuantParams(new_scale, np.zeros(len(new_scale), np.int64), 0, 32))
            extra.append(nb)
            inputs = inputs[:2] + (nb.name,) + inputs[3:]
        out_scale = channel_scale.get(outputs[0], out_q.s)
        mult, shift = quantize_multiplier_array(new_scale / out_scale)
        lo, hi = activation_bounds(node.attrs.activation, out_q)  # per channel: equal in every channel (checked)
        params = ConvParams(-in_q.zp, out_q.zp, lo, hi, mult, shift)
    elif node.op == "add":  # as Add.quantize, for the operands' and output's params
        q1, q2 = in_q, tensors[inputs[1]].quant
        twice_max = 2 * max(q1.s, q2.s)
        (m1, s1), (m2, s2) = quantize_multiplier(q1.s / twice_max), quantize_multiplier(q2.s / twice_max)
        mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * out_q.s))
        lo, hi = activation_bounds(node.attrs.activation, out_q)
        params = AddParams(-q1.zp, -q2.zp, out_q.zp, m1, s1, m2, s2, mo, so, ADD_LEFT_SHIFT, lo, hi)
    elif node.op in ("max_pool2d", "avg_pool2d", "pad"):
        if not in_q.same_as(out_q):
            raise UserError(f"layer '{node.name}' ({node.op}) keeps its input's params, so its output map needs its "
                            "input's bits; fix: give both maps the same bitwidth")
        params = node.params if node.op == "pad" else PoolParams(*activation_bounds(node.attrs.activation, out_q))
    else:
        raise UserError(f"layer '{node.name}' ({node.op}) has no low-bit requantization rule; fix: keep its input and "
                        "output maps at 8 bits")
    return node.replace(inputs=inputs, outputs=outputs, params=params), extra


def build_lowbit_chain(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, bits: dict[str, int],
                       calib_q: np.ndarray, clipping: str = "mse", per_channel: bool = False,
                       inliers: dict[str, np.ndarray] | None = None,
                       params: dict | None = None) -> LowbitChain:
    """The low-bit chain of ``plan``'s stage at ``bits`` per map, calibrated on the no-outlier patches.

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and its patch plan (the 8-bit chain).
    vdpc : VdpcPlan
        The check (``plan_vdpc``) on ``calib_q``: its outlier patches are left out of the calibration.
    bits : dict
        {stage map: 8 | 4 | 2}; maps not named stay at 8 bits.
    calib_q : numpy.ndarray
        int8 [N, ...] calibration inputs (those VDPC was planned on).
    clipping : str
        ``"mse"`` (default) or ``"minmax"`` (:data:`CLIPPINGS`).
    per_channel : bool
        Per-channel scales (one zero point) where the map allows them (:func:`_per_channel_ok`): each channel's
        range chosen on its own values, the producer's multipliers per channel, the scales folded into the
        consumers' weights (a copy the chain carries: ``LowbitChain.flash_bytes``); else per tensor.
    inliers : dict, optional
        The calibration values already taken (:func:`inlier_values` on ``calib_q`` and VDPC's outlier patches,
        ``keep_channels=True``, or the same as :class:`InlierCounts`) for at least the maps lowered: a search
        building many chains takes them once.
    params : dict, optional
        A cache this call reads and fills: {(map, bits): (per-tensor params, per-channel scales or None)}. A map's
        params depend only on its own calibration values, bits, ``clipping`` and ``per_channel``, so one dict
        serves every chain built with the same ``calib_q``, VDPC plan, clipping and per_channel.

    Returns
    -------
    LowbitChain
    """
    if clipping not in CLIPPINGS:
        raise UserError(f"low-bit clipping {clipping!r}: fix: use one of {list(CLIPPINGS)}")
    full = _check_bits(graph, plan, vdpc, bits)
    follows = _following_maps(graph, plan, vdpc, full, bits)
    full.update({m: full[root] for m, root in follows.items()})
    if vdpc.outlier_patches.shape != (len(calib_q), plan.patches):
        raise ValueError("the VDPC plan was measured on other calibration inputs than calib_q")
    low = [m for m, b in full.items() if b < 8]
    if inliers is not None and all(m in inliers for m in low):
        values = {m: inliers[m] for m in low}
    else:
        values = inlier_values(graph, plan, calib_q, vdpc.outlier_patches, low, keep_channels=True)
    tensors = dict(graph.tensors)
    renamed, quant, channel_scale = {}, {}, {}
    stage = graph.nodes[: plan.stage_len]
    for m in low:
        if values[m].size == 0:
            raise UserError("every calibration patch is an outlier patch, so the low-bit chain has nothing to be "
                            "calibrated on; fix: a higher VDPC threshold (rule parameter) or more calibration data")
        key = (m, full[m])
        if m in follows:  # a pooled / padded map: its input's params (the op does not requantize)
            q, per = quant[follows[m]], None
        elif params is not None and key in params:
            q, per = params[key]
        else:
            q = mse_quant(values[m] if isinstance(values[m], InlierCounts) else values[m].reshape(-1), full[m],
                          clipping)
            per = _per_channel_scales(values[m], full[m], clipping, stage, m, graph) if per_channel else None
            if per is not None:
                q = QuantParams.per_tensor(float(per.max()), qrange(full[m])[0], full[m])  # nominal
            if params is not None:
                params[key] = (q, per)
        t = tensors[m]
        name = lowbit_name(m, full[m])
        if per is not None:
            channel_scale[name] = per
        new = dataclasses.replace(t, name=name, dtype=int_dtype(full[m]), quant=q)
        tensors[new.name] = new
        renamed[m], quant[m] = new.name, q
    nodes, extra = [], []
    for n in stage:
        if op_def(n).alias and (set(n.inputs) | set(n.outputs)) & set(renamed):
            raise UserError(f"layer '{n.name}' ({n.op}) is a view of its input; fix: keep its maps at 8 bits")
        node, more = _requantized(n, graph, tensors, renamed, channel_scale)
        for t in more:
            tensors[t.name] = t
        nodes.append(node)
        extra += more
    g = graph.replace(tensors=tensors)
    regions = tuple({**r, **{renamed[m]: r[m] for m in renamed}} for r in plan.regions)
    lp = dataclasses.replace(plan, regions=regions)
    flash = sum(t.nbytes for t in extra)
    return LowbitChain(g, lp, tuple(nodes), full, quant, {m: renamed.get(m, m) for m in full},
                       {m: int(values[m].size) for m in low},
                       {m: channel_scale[renamed[m]] for m in low if renamed[m] in channel_scale}, flash, follows)


def lowbit_schedule(chain: LowbitChain, vdpc: VdpcPlan, board=None, sub_patches: int = 1) -> tuple[Schedule, ArenaPlan]:
    """The patch loop with chain 0 the 8-bit stage (outlier patches) and chain 1 ``chain`` (the probe, the
    others), dispatched at run time by ``vdpc``'s check, and its arena plan (the chains' buffers exclusive).
    ``board``: a Board or KernelTarget (None: portable). ``sub_patches``: s > 1 runs an outlier patch's 8-bit
    chain as s x s sub-patches of it (``patch.execute.plan_sub_patches``), from the input up, so that the 8-bit
    chain's buffers are those of the finer grid and the arena the packed maps allow holds both chains."""
    g, plan = chain.graph, chain.plan
    chains = (tuple(g.nodes[: plan.stage_len]), chain.nodes)
    sub = plan_sub_patches(g, plan, sub_patches, chain=0) if sub_patches > 1 else None
    schedule = build_schedule(g, plan, chains=chains, dispatch=runtime_dispatch(vdpc, 0, 1), board=board, sub=sub)
    return schedule, plan_memory_patched(g, plan, chains=chains, board=board, sub=sub)


def lowbit_only_schedule(chain: LowbitChain, board=None, one_chain: bool = False) -> tuple[Schedule, ArenaPlan]:
    """The patch loop in which every patch runs the low-bit chain, decided at compile time (no check), and its
    arena plan: what a check that cannot fire (threshold ``ops.outlier_check.MAX_THRESHOLD``: no |q - zp| exceeds
    it) leaves of :func:`lowbit_schedule`. It computes what the dispatching loop computes when its check lets
    every patch through (the probe is the low-bit chain), without the check, its branch and its hook test.

    Parameters
    ----------
    chain : LowbitChain
        The low-bit chain.
    board : Board or KernelTarget, optional
        The kernels (None: portable).
    one_chain : bool
        False (default): two chains, both the low-bit one, and a compile-time ``Dispatch`` sending every patch to
        chain 1 (the low-bit chain's number in :func:`lowbit_schedule`). Both are sized by the low-bit tensors in
        their exclusive groups, so the arena holds no 8-bit buffer; two chains because ``api/verify.py`` and
        ``api/debug.py`` simulate a loop of several chains through the schedule but a one-chain loop layer by
        layer, as the graph's own 8-bit layers. True: the low-bit chain alone as chain 0 (the same arena, no second
        copy of the loop's calls in flash), for when verify and debug simulate any loop whose nodes are not the
        graph's through the schedule.

    Returns
    -------
    (Schedule, ArenaPlan)
    """
    g, plan = chain.graph, chain.plan
    if one_chain:
        chains: tuple = (chain.nodes,)
        dispatch = None
    else:
        chains = (chain.nodes, chain.nodes)
        dispatch = Dispatch((1,) * plan.patches)
    schedule = build_schedule(g, plan, chains=chains, dispatch=dispatch, board=board)
    return schedule, plan_memory_patched(g, plan, chains=chains, board=board)


def _step_bitops(graph: Graph, plan: PatchPlan, node: Node, p: int) -> int:
    """BitOPs of ``node`` in patch p: its MACs on the patch's region x 8 weight bits x its input's bits."""
    out = plan.regions[p][node.outputs[0]]
    return node_macs_region(node, graph, out) * 8 * graph.tensors[node.inputs[0]].bits


def stage_bitops(schedule: Schedule, inputs: np.ndarray) -> tuple[float, float]:
    """Stage BitOPs (the per-patch stage, summed over patches) of the 8-bit chain alone and of ``schedule``'s
    dispatching loop, averaged over ``inputs`` (int8, the model input's layout). A patch counts the layers it
    executes: the probe's up to the check, then (an outlier patch) the outlier chain's from where it resumes, or
    all of it when it runs from the start, or all of it on each of its sub-patches (their regions: the extra
    halo included) when the loop runs it as sub-patches.

    Returns
    -------
    (bitops_8bit, bitops) : tuple of float
    """
    loop = schedule.loop
    if loop is None:
        raise ValueError("stage BitOPs need a patch loop")
    taken = []
    if loop.runtime:
        for x in inputs:
            t: list[int] = []
            run_schedule_int(schedule, {schedule.graph.inputs[0]: x}, t)
            taken.append(t)
    return stage_bitops_taken(schedule, taken)


def stage_bitops_taken(schedule: Schedule, taken: list[list[int]]) -> tuple[float, float]:
    """:func:`stage_bitops` from the chains the patches took on each input (``run_schedule_int(..., taken)``)."""
    loop = schedule.loop
    g, plan = schedule.graph, loop.plan
    steps = [[st.node for st in ch.steps] for ch in loop.chains]
    P = plan.patches
    per_patch = [[[_step_bitops(g, plan, n, p) for n in ch] for p in range(P)] for ch in steps]
    # 8-bit patching: the model's own stage nodes (chain 0 of a one-chain low-bit loop is not the 8-bit stage)
    eight = [n for n in g.nodes[: plan.stage_len] if not op_def(n).alias]
    base = float(sum(_step_bitops(g, plan, n, p) for n in eight for p in range(P)))
    if not loop.runtime:
        return base, float(sum(sum(per_patch[loop.chain_of(p)][p]) for p in range(P)))
    d, ck, sub = loop.dispatch, loop.check, loop.sub
    if sub is not None:  # the sub-patches' own regions, for the chain that runs them
        per_sub = [sum(_step_bitops(g, sub.plan, n, q) for n in steps[sub.chain]) for q in range(sub.plan.patches)]
    total = 0.0
    for chosen in taken:
        for p, c in enumerate(chosen):
            if c == d.inlier_chain:
                total += sum(per_patch[c][p])
            else:
                probe = sum(per_patch[d.inlier_chain][p][: ck.after])
                if sub is not None and c == sub.chain:
                    total += probe + sum(per_sub[q] for q in sub.of_patch[p])
                else:
                    total += probe + sum(per_patch[c][p][ck.after:] if ck.resume else per_patch[c][p])
    return base, total / max(len(taken), 1)
