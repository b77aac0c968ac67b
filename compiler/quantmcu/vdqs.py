"""VDQS: the bitwidth search of the low-bit chain, with its quality guard (docs/quantmcu.md, "VDQS").

Every map the low-bit chain may lower (made inside the per-patch stage, not the stage output, not the map
VDPC checks) starts at 8 bits. At each step every candidate (map, the next lower bitwidth of
``QuantmcuOptions.bits``) is scored

    S = -lambda * Omega + (1 - lambda) * Phi

- Phi: the stage BitOPs the step saves (:class:`BitopsModel`: the expectation over the calibration samples'
  patch chains, exactly as ``lowbit.stage_bitops_taken`` counts them), divided by the largest saving among
  the step's candidates;
- Omega: the entropy the map loses, H8 - Hb (Shannon entropy, bits per value, of the map's quantized values
  over the calibration patches VDPC does not flag: the 8-bit model's values, and the same values quantized with
  the low-bit chain's calibrated params at the candidate's bits: per tensor or per channel as the chain
  has them; never below 0), divided by the largest loss among the step's candidates.

Both terms are thus in [0, 1] on every step and lambda weighs them as equals at 0.5 (a fixed normalisation,
e.g. by the stage's BitOPs, would leave Phi an order of magnitude below Omega and lambda meaningless). The
best score is taken (ties: the map made first, then the higher bitwidth), and validated by the guard: the
model's output on the held-back calibration samples (a ``holdout`` share spread over them, :func:`split_calibration`)
against the 8-bit model's, by output SQNR (dB) or top-1 agreement, must stay at or above the floor, and it is the
metric's lower bound that must (the estimate minus :data:`GUARD_SE` jackknife standard errors over the held-back
samples, :func:`output_quality`): a step that breaks it is backed off and its map frozen at its current bits. The search stops when no candidate is
left or, with ``bitops_target``, once stage BitOPs are at most that fraction of 8-bit patching's.

The entropy score alone (no guard, the same greedy order) is run too, to the same stage BitOPs as the guarded
search reached (or to the target), and its quality measured: what the guard is worth.

The guard's evaluation is exact and fast (:func:`fast_outputs`): patch-by-patch values equal layer-by-layer
values on every region, so a chain's stage output is its nodes run layer by layer on whole maps, assembled
tile by tile (an outlier patch's tile from the 8-bit stage output: it runs, or resumes into, the 8-bit chain)
in the patch loop's order, then the rest of the network; the 8-bit run of the held-back samples is cached
(:class:`HeldBack`). It equals ``run_schedule_int`` of ``lowbit_schedule`` byte for byte (tests/test_vdqs.py).
Deterministic: no randomness, a fixed order and fixed tie-breaks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..arith.bitwidth import qrange, storage_dtype
from ..errors import UserError
from ..ir import Graph
from ..ops.outlier_check import outlier_decision
from ..patch.execute import plan_sub_patches
from ..patch.planner import PatchPlan, node_macs_region, np_region
from ..quant.simulate import BATCHED_OPS  # noqa: F401 (part of this module's API)
from ..schedule.schedule import build_schedule
from .blas import run_batched
from .lowbit import InlierCounts, LowbitChain, build_lowbit_chain, inlier_counts  # noqa: F401 (inlier_counts: API)
from .options import QuantmcuOptions, SearchStep
from .stats import stage_maps
from .vdpc import VdpcPlan, runtime_dispatch


def split_calibration(calib_q: np.ndarray, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    """The calibration samples split deterministically: (the ones to calibrate on; a ``holdout`` share, at least
    one, held back for the guard), the held-back ones spread evenly over the samples' order (every second one at
    0.5), so data sorted by class or by scene still puts every kind on both sides.

    Raises
    ------
    UserError
        Fewer than 2 samples (nothing would be left on one side).
    """
    n = len(calib_q)
    if n < 2:
        raise UserError(f"QuantMCU needs at least 2 calibration samples (it calibrates on some and guards the search "
                        f"on the others), got {n}; fix: give more (--calib with real inputs, or --calib-samples)")
    held = min(n - 1, max(1, round(holdout * n)))
    back = np.zeros(n, bool)
    back[np.floor((np.arange(held) + 0.5) * n / held).astype(int)] = True
    return calib_q[~back], calib_q[back]


def searchable_maps(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan) -> tuple[str, ...]:
    """The maps VDQS may lower, in the order the stage makes them: made inside the stage, not the stage output
    (it keeps the 8-bit model's params) and not the map the VDPC check reads (``vdpc.checked``: it must stay 8-bit;
    None when the check cannot fire and is dropped)."""
    keep = (graph.inputs[0], plan.split, vdpc.checked)
    return tuple(m for m in stage_maps(graph, plan) if m not in keep)


def entropy_bits(q: np.ndarray) -> float:
    """Shannon entropy (bits per value) of the integer values ``q``."""
    q = np.asarray(q).reshape(-1)
    if q.size == 0:
        return 0.0
    counts = np.bincount((q - q.min()).astype(np.int64))
    p = counts[counts > 0] / q.size
    return float(-(p * np.log2(p)).sum())


def _counted_entropy(codes: np.ndarray, counts: np.ndarray) -> float:
    """:func:`entropy_bits` of the values that hold ``codes[i]`` ``counts[i]`` times (the same counts, in the same
    order, so the same sum)."""
    present = counts > 0
    q, w = codes[present], counts[present]
    total = int(w.sum())
    if total == 0:
        return 0.0
    per = np.bincount((q - q.min()).astype(np.int64), weights=w.astype(np.float64)).astype(np.int64)
    p = per[per > 0] / total
    return float(-(p * np.log2(p)).sum())


def quantized_entropy(values, graph: Graph, tensor: str, chain: LowbitChain | None = None) -> float:
    """Entropy of ``values`` (real, [n, channels]: the 8-bit model's values of map ``tensor``, or the same as
    ``lowbit.InlierCounts``: each code computed once per (channel, integer) and counted) quantized as ``chain`` holds
    the map (its own params below 8 bits, per channel where it has them), or at the model's 8-bit params (``chain``
    None, or the map at 8 bits in it)."""
    counted = isinstance(values, InlierCounts)
    b = chain.bits.get(tensor, 8) if chain is not None else 8
    if b == 8:
        q8 = graph.tensors[tensor].quant
        if counted:
            return _counted_entropy(np.rint(values.table / q8.s) + q8.zp, values.counts.sum(axis=0))
        return entropy_bits(np.rint(values / q8.s) + q8.zp)
    qp = chain.quant[tensor]
    scale = chain.channel_scales.get(tensor)
    scale = np.asarray(scale, np.float64) if scale is not None else qp.s
    lo, hi = qrange(b)
    if counted:
        if np.ndim(scale):  # [channels, 256]: channel c's integers at its own scale
            codes = np.clip(np.rint(values.table[None, :] / scale[:, None]) + qp.zp, lo, hi)
            return _counted_entropy(codes.reshape(-1), values.counts.reshape(-1))
        return _counted_entropy(np.clip(np.rint(values.table / scale) + qp.zp, lo, hi), values.counts.sum(axis=0))
    return entropy_bits(np.clip(np.rint(values / scale) + qp.zp, lo, hi))


@dataclass(frozen=True, eq=False)
class BitopsModel:
    """Stage BitOPs of the dispatching patch loop for any bitwidths of the maps, without building it.

    ``macs[j, p]``: the MACs of the loop's step j (alias nodes run none) on patch p's region; ``inputs[j]``: the
    stage map (or input) step j reads first; ``after``: the probe's steps before the check (the schedule's
    ``CheckStep``); ``outlier_fixed[p]``: what an outlier patch's 8-bit chain costs after the probe (from the
    check on when it resumes, all of it when not, or all of it on each of its sub-patches' regions);
    ``outlier_share[p]``: the share of the calibration samples on which VDPC flags patch p. Counts as
    ``lowbit.stage_bitops_taken`` does: weight bits 8 x the input's bits; an inlier patch runs the low-bit chain,
    an outlier patch the probe's first ``after`` steps, then the 8-bit chain."""

    macs: np.ndarray
    inputs: tuple[str, ...]
    input_bits: np.ndarray
    after: int
    outlier_fixed: np.ndarray
    outlier_share: np.ndarray

    @staticmethod
    def of(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, sub_patches: int = 1) -> BitopsModel:
        """The model of ``plan``'s loop dispatched by ``vdpc`` (outlier patches as ``sub_patches`` x
        ``sub_patches`` sub-patches when > 1, as ``lowbit_schedule`` runs them)."""
        sub = plan_sub_patches(graph, plan, sub_patches, chain=0) if sub_patches > 1 else None
        schedule = build_schedule(graph, plan, chains=2, dispatch=runtime_dispatch(vdpc, 0, 1), sub=sub)
        loop = schedule.loop
        nodes = [st.node for st in loop.chains[0].steps]

        def macs_on(p: PatchPlan) -> np.ndarray:
            return np.array([[node_macs_region(n, graph, regs[n.outputs[0]]) for regs in p.regions] for n in nodes],
                            np.float64).reshape(len(nodes), p.patches)

        macs = macs_on(plan)
        inputs = tuple(n.inputs[0] for n in nodes)
        bits8 = np.array([graph.tensors[i].bits for i in inputs], np.float64)
        eight = macs * 8 * bits8[:, None]
        a = loop.check.after
        if sub is not None:  # from the start, on each sub-patch's regions (their extra halo included)
            per_sub = (macs_on(sub.plan) * 8 * bits8[:, None]).sum(axis=0)
            fixed = np.array([per_sub[list(qs)].sum() for qs in sub.of_patch], np.float64)
        else:
            fixed = eight[a:].sum(axis=0) if loop.check.resume else eight.sum(axis=0)
        share = vdpc.outlier_patches.mean(axis=0) if vdpc.outlier_patches.size else np.zeros(plan.patches)
        return BitopsModel(macs, inputs, bits8, a, fixed, np.asarray(share, np.float64))

    def bitops_8bit(self) -> float:
        """8-bit patching's stage BitOPs (every patch, every step at 8 x its input's bits)."""
        return float((self.macs * 8 * self.input_bits[:, None]).sum())

    def bitops(self, bits: dict[str, int]) -> float:
        """The expected stage BitOPs with the maps at ``bits`` ({map: bits}; others at their own)."""
        low_bits = np.array([bits.get(i, b) for i, b in zip(self.inputs, self.input_bits)], np.float64)
        low = self.macs * 8 * low_bits[:, None]  # [steps, patches]
        outlier = low[: self.after].sum(axis=0) + self.outlier_fixed
        inlier = low.sum(axis=0)
        return float(((1.0 - self.outlier_share) * inlier + self.outlier_share * outlier).sum())


#: samples per batch of :func:`run_batched` (bounds the im2col copies: ~100 MB on VWW's first layers)
BATCH = 25


def stage_values(graph: Graph, plan: PatchPlan, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the 8-bit stage on ``inputs`` (int8, the model input's layout), the samples stacked along N."""
    inp, k = graph.inputs[0], plan.stage_len
    shape = tuple(graph.tensors[inp].shape)
    xs = np.asarray(inputs).reshape((len(inputs),) + shape[1:])
    parts = []
    for a in range(0, len(xs), BATCH):
        chunk = xs[a: a + BATCH]
        parts += run_batched(graph, graph.nodes[:k], {inp: chunk}, len(chunk))
    return {name: np.concatenate([d[name] for d in parts]) for name in parts[0]} if parts else {}


def batched_inlier_values(graph: Graph, plan: PatchPlan, values: dict[str, np.ndarray], outliers: np.ndarray,
                          maps) -> dict[str, np.ndarray]:
    """``lowbit.inlier_values(..., keep_channels=True)`` from the stage values already taken (:func:`stage_values`):
    the same values in the same order (sample by sample, patch by patch)."""
    out = {}
    for m in maps:
        q = graph.tensors[m].quant
        v = (np.asarray(values[m], np.float64) - q.zp) * q.s
        c = v.shape[-1]
        parts = [np_region(v[s: s + 1], regs[m]).reshape(-1, c) for s in range(len(v))
                 for p, regs in enumerate(plan.regions) if not outliers[s, p]]
        out[m] = np.concatenate(parts) if parts else np.zeros((0, c))
    return out


@dataclass(frozen=True, eq=False)
class HeldBack:
    """The held-back calibration samples and the 8-bit model's run of them (cached once per search):
    ``stage8`` every map of the 8-bit stage (the samples stacked along N), ``outputs8`` the model's outputs of
    each sample, ``outliers`` bool [samples, patches] the check's decisions (on the 8-bit values of the checked
    map, as the device decides)."""

    graph: Graph
    plan: PatchPlan
    inputs: np.ndarray
    stage8: dict[str, np.ndarray]
    outputs8: tuple[dict[str, np.ndarray], ...]
    outliers: np.ndarray

    @property
    def inlier_samples(self) -> np.ndarray:
        """The samples with a patch the low-bit chain runs (the others' outputs are the 8-bit model's)."""
        return np.flatnonzero(~self.outliers.all(axis=1))


def extend_stage_values(graph: Graph, k: int, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`stage_values` of the stage ``graph.nodes[:k]`` from those of another stage of the same samples
    (``values``): the tensors the longer one made that this one makes, and this one's further nodes run from them
    (a node's values depend on the nodes before it only)."""
    inp = graph.inputs[0]
    have = 0
    while have < len(graph.nodes) and all(o in values for o in graph.nodes[have].outputs):
        have += 1
    names = [inp] + [o for nd in graph.nodes[:k] for o in nd.outputs]
    if have >= k:
        return {t: values[t] for t in names}
    n = len(values[inp])
    feeds = {t: values[t] for t in [inp] + [o for nd in graph.nodes[:have] for o in nd.outputs]}
    parts = []
    for a in range(0, n, BATCH):
        chunk = {t: v[a: a + BATCH] for t, v in feeds.items()}
        parts += run_batched(graph, graph.nodes[have:k], chunk, len(chunk[inp]))
    return {t: np.concatenate([d[t] for d in parts]) for t in names}


def held_back(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, inputs: np.ndarray,
              base: HeldBack | None = None) -> HeldBack:
    """The 8-bit run of ``inputs`` (int8, the model input's layout) and the check's decisions on them. ``base``:
    the run of the same inputs on another plan of ``graph``: the model's outputs are the same (the 8-bit model's),
    and its stage values give this stage's (:func:`extend_stage_values`)."""
    inp, k = graph.inputs[0], plan.stage_len
    shape = tuple(graph.tensors[inp].shape)
    n = len(inputs)
    xs = np.asarray(inputs).reshape((n,) + shape[1:])
    if base is not None and base.graph is graph and np.array_equal(base.inputs, xs):
        stage8 = extend_stage_values(graph, k, base.stage8)
        outs = list(base.outputs8)
    else:
        stage8 = stage_values(graph, plan, xs)
        split = stage8[plan.split].astype(storage_dtype(graph.tensors[plan.split].bits))
        outs = []
        for a in range(0, n, BATCH):
            outs += run_batched(graph, graph.nodes[k:], {plan.split: split[a: a + BATCH]}, len(split[a: a + BATCH]))
    checked = stage8[vdpc.tensor]
    flags = [[outlier_decision(np_region(checked[s: s + 1], regs[vdpc.tensor]), vdpc.zero_point, vdpc.threshold)
              for regs in plan.regions] for s in range(n)]
    return HeldBack(graph, plan, xs, stage8, tuple({o: d[o] for o in graph.outputs} for d in outs),
                    np.array(flags, bool).reshape(n, plan.patches))


@dataclass(frozen=True, eq=False)
class StageRun:
    """A chain's stage on the held-back samples that have an inlier patch (``HeldBack.inlier_samples``): its nodes
    and every value they made, those samples stacked along N (what a later chain that shares a prefix reuses)."""

    nodes: tuple
    values: dict[str, np.ndarray]


def _signature(node) -> tuple:
    # a chain node's computation is fixed by the tensors it reads and writes: their names carry the map and its
    # bits, and a map's params at given bits are calibrated once (the search shares lowbit's params cache)
    return node.op, tuple(node.inputs), tuple(node.outputs)


def fast_outputs(chain: LowbitChain, held: HeldBack, reference: StageRun | None = None,
                 keep: list | None = None) -> list[dict[str, np.ndarray]]:
    """The model's outputs on the held-back samples with ``chain`` as the low-bit chain of the dispatching patch
    loop: exactly ``run_schedule_int(lowbit_schedule(chain, vdpc)[0], ...)`` (see the module docstring).

    A chain node that computes what a node of ``reference`` (default: the 8-bit stage) computed, reading values
    this chain has not changed, takes the reference's values instead of running. ``keep``, when given, receives
    this chain's :class:`StageRun` (to be a later call's reference). Needs the chains built with one params cache
    (as VDQS builds them) for the reuse to be exact."""
    graph, plan = held.graph, held.plan
    inp, k, split = graph.inputs[0], plan.stage_len, plan.split
    dtype = storage_dtype(graph.tensors[split].bits)
    out: list[dict[str, np.ndarray]] = list(held.outputs8)
    todo = held.inlier_samples  # a sample whose patches all run 8-bit keeps its output
    n = len(todo)
    if n == 0:
        if keep is not None:
            keep.append(StageRun(tuple(chain.nodes), {}))
        return out
    if reference is None:
        reference = StageRun(tuple(graph.nodes[:k]), {t: v[todo] for t, v in held.stage8.items()})
    values = {inp: held.inputs[todo]}
    clean = {inp}
    nodes = []
    for j, node in enumerate(chain.nodes):
        ref = reference.nodes[j] if j < len(reference.nodes) else None
        reads = {i for i in node.inputs if i and not chain.graph.tensors[i].is_const}
        if (not nodes and ref is not None and _signature(ref) == _signature(node) and reads <= clean
                and all(o in reference.values for o in node.outputs)):
            values.update({o: reference.values[o] for o in node.outputs})
            clean |= set(node.outputs)
        else:  # from the first node that differs on, the chain runs (in a linear stage all later nodes read it)
            nodes.append(node)
    stage = []
    for a in range(0, n, BATCH):
        stage += run_batched(chain.graph, nodes, {t: v[a: a + BATCH] for t, v in values.items()}, len(todo[a: a + BATCH]))
    made = {t: np.concatenate([d[t] for d in stage]) for t in stage[0]}
    if keep is not None:
        keep.append(StageRun(tuple(chain.nodes), made))
    low = made[split].astype(dtype)
    eight = held.stage8[split][todo].astype(dtype)
    flags = held.outliers[todo]
    whole = np.zeros((n,) + tuple(graph.tensors[split].shape[1:]), dtype)
    for p, regs in enumerate(plan.regions):  # the loop's order: a later patch's tile written last
        r = regs[split]
        tile = (slice(None), slice(r.top, r.bottom), slice(r.left, r.right), slice(None))
        whole[tile] = np.where(flags[:, p, None, None, None], eight[tile], low[tile])
    rest = []
    for a in range(0, n, BATCH):
        rest += run_batched(graph, graph.nodes[k:], {split: whole[a: a + BATCH]}, len(whole[a: a + BATCH]))
    for i, s in enumerate(todo):
        out[s] = {o: rest[i][o] for o in graph.outputs}
    return out


def sqnr_db(reference: np.ndarray, output: np.ndarray) -> float:
    """Output SQNR in dB: signal power of ``reference`` over the power of ``output - reference`` (all samples
    and elements together); +inf when they are equal."""
    noise = float(np.sum((np.asarray(output, np.float64) - reference) ** 2))
    signal = float(np.sum(np.asarray(reference, np.float64) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


#: the guard judges a step by a lower bound of its metric on the held-back samples: the estimate minus this many
#: jackknife standard errors. The held-back samples are few, so the estimate is noisy, and a greedy walk that
#: stops at the last step above the floor keeps the steps the noise flattered: on VWW the aggregate SQNR of the
#: held-back crops overrated the test crops by 1.0 dB on average (-4.2 to +0.9 dB over 17 chains), the bound was at
#: or below the test crops' SQNR on 13 of them (docs/quantmcu.md, "VDQS")
GUARD_SE = 1.0


def sqnr_se_db(reference: np.ndarray, output: np.ndarray) -> float:
    """Jackknife standard error (dB) of :func:`sqnr_db` over the samples (rows): leave-one-out aggregates. 0 for
    fewer than 2 samples or no noise at all; a sample holding all the noise makes its leave-one-out SQNR very high
    (the noise floored at 1e-12 of the signal), so the error is large: one sample decides."""
    ref, out = np.asarray(reference, np.float64), np.asarray(output, np.float64)
    n = len(ref)
    noise_i = np.sum((out - ref) ** 2, axis=1)
    signal_i = np.sum(ref**2, axis=1)
    noise, signal = float(noise_i.sum()), float(signal_i.sum())
    if n < 2 or noise == 0.0 or signal <= 0.0:
        return 0.0
    loo_noise = np.maximum(noise - noise_i, 1e-12 * signal)
    loo_signal = np.maximum(signal - signal_i, 1e-300)
    theta = 10.0 * np.log10(loo_signal / loo_noise)
    return float(math.sqrt((n - 1) / n * float(np.sum((theta - theta.mean()) ** 2))))


def output_quality(graph: Graph, reference: list[dict[str, np.ndarray]],
                   outputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """``sqnr`` (dB) and top-1 ``agreement`` of ``outputs`` against ``reference`` (integer model outputs per
    sample), on the model's first output dequantized; ``sqnr_low`` / ``agreement_low``: each minus
    :data:`GUARD_SE` jackknife standard errors over the samples (what the guard compares with its floor,
    :func:`guard_value`)."""
    name = graph.outputs[0]
    q = graph.tensors[name].quant

    def real(values):
        return np.stack([(np.asarray(v[name], np.float64).reshape(-1) - q.zp) * q.s for v in values])

    ref, out = real(reference), real(outputs)
    same = ref.argmax(axis=1) == out.argmax(axis=1)
    sqnr, agreement = sqnr_db(ref, out), float(same.mean())
    # the jackknife error of a mean is the samples' standard deviation over sqrt(n)
    agree_se = float(np.std(same.astype(np.float64), ddof=1) / math.sqrt(len(same))) if len(same) > 1 else 0.0
    return {"sqnr": sqnr, "agreement": agreement, "sqnr_low": sqnr - GUARD_SE * sqnr_se_db(ref, out),
            "agreement_low": agreement - GUARD_SE * agree_se}


def guard_value(quality: dict[str, float], metric: str) -> float:
    """What the guard compares with its floor: the lower bound of ``metric`` ("sqnr" or "agreement") when
    ``quality`` has it (:func:`output_quality`), else the metric itself."""
    return quality.get(f"{metric}_low", quality[metric])


@dataclass(frozen=True, eq=False)
class VdqsResult:
    """What the search chose: ``bits`` per searchable map, its ``chain`` (calibrated as the options say) and its
    ``quality`` on the held-back samples; ``steps`` every step tried in order; ``entropy_only`` /
    ``entropy_only_quality`` the entropy score alone's choice; ``bitops_8bit`` / ``bitops`` stage BitOPs
    (expectations over the calibration samples' chains); ``frozen``: maps a backed-off step froze;
    ``skipped``: maps whose layers refuse to lower them (further), with the reason; ``seconds``: the search's time."""

    bits: dict[str, int]
    chain: LowbitChain
    quality: dict[str, float]
    steps: tuple[SearchStep, ...]
    entropy_only: dict[str, int]
    entropy_only_quality: dict[str, float]
    bitops_8bit: float
    bitops: float
    frozen: tuple[str, ...]
    skipped: dict[str, str]
    seconds: float
    chains: dict = field(default_factory=dict, repr=False)  # every chain built, by bits (a later step reuses)
    #: patches of the held-back samples the low-bit chain runs, of all their patches (none: the guard saw nothing)
    held_inlier_patches: int = 0
    held_patches: int = 0
    #: the 8-bit run of the held-back samples the guard judged on (a later plan of the same samples reuses it)
    held: HeldBack | None = field(default=None, repr=False)


class _Search:
    """The state the guarded and the entropy-only searches share: chains built and their quality, by bits."""

    def __init__(self, graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, calib_q: np.ndarray, held: HeldBack,
                 options: QuantmcuOptions, values: dict[str, np.ndarray] | None = None):
        self.graph, self.plan, self.vdpc, self.calib_q, self.held, self.options = graph, plan, vdpc, calib_q, held, options
        self.maps = searchable_maps(graph, plan, vdpc)
        self.ladder = tuple(sorted(options.bits, reverse=True))
        self.model = BitopsModel.of(graph, plan, vdpc, options.sub_patches or 1)
        self.base = self.model.bitops_8bit()
        values = stage_values(graph, plan, calib_q) if values is None else values
        self.inliers = inlier_counts(graph, plan, values, vdpc.outlier_patches, self.maps)
        self.chains: dict[tuple, LowbitChain] = {}
        self.params: dict = {}  # each map's params at each bitwidth, calibrated once (lowbit's cache)
        self.qualities: dict[tuple, dict[str, float]] = {}
        self.runs: dict[tuple, StageRun] = {}  # the stage values of the state the guarded walk stands on
        self.entropy8 = {m: quantized_entropy(self.inliers[m], graph, m) for m in self.maps}
        self.omega: dict[tuple[str, int], float] = {}
        self.skipped: dict[str, str] = {}
        for m in self.maps:  # a map whose layers refuse low bits is left out of the search, with the reason
            lower = [b for b in self.ladder if b < 8]
            for b in lower:
                try:
                    single = self.chain({m: b})
                except UserError as e:
                    self.skipped[m] = str(e)
                    break
                self.omega[(m, b)] = max(0.0, self.entropy8[m] - quantized_entropy(self.inliers[m], graph, m, single))

    def key(self, bits: dict[str, int]) -> tuple:
        return tuple((m, bits.get(m, 8)) for m in self.maps)

    def chain(self, bits: dict[str, int]) -> LowbitChain:
        k = self.key(bits)
        if k not in self.chains:
            low = {m: b for m, b in bits.items() if b < 8}
            self.chains[k] = build_lowbit_chain(self.graph, self.plan, self.vdpc, low, self.calib_q,
                                                self.options.clipping, self.options.per_channel, self.inliers,
                                                self.params)
        return self.chains[k]

    def quality(self, bits: dict[str, int], reference: dict[str, int] | None = None) -> dict[str, float]:
        """The guard's metrics of ``bits``; the stage values of ``reference`` (a state evaluated before and kept
        in ``runs``) are reused where the chains agree, and those of ``bits`` kept."""
        k = self.key(bits)
        if k not in self.qualities:
            ref = self.runs.get(self.key(reference)) if reference is not None else None
            keep: list = []
            outs = fast_outputs(self.chain(bits), self.held, ref, keep)
            self.runs[k] = keep[0]
            self.qualities[k] = output_quality(self.graph, list(self.held.outputs8), outs)
        return self.qualities[k]

    def ratio(self, bits: dict[str, int]) -> float:
        return self.model.bitops(bits) / self.base if self.base else 1.0

    def candidates(self, bits: dict[str, int], frozen: set[str]) -> list[tuple[str, int, float]]:
        """(map, bits, score) of every step possible from ``bits``, in the maps' order."""
        steps = []
        for m in self.maps:
            if m in frozen:
                continue
            lower = [b for b in self.ladder if b < bits[m]]
            if lower and (m, lower[0]) in self.omega:  # else the map's layers refuse that bitwidth (skipped)
                steps.append((m, lower[0]))
        if not steps:
            return []
        now = self.model.bitops(bits)
        saved = [now - self.model.bitops({**bits, m: b}) for m, b in steps]
        lost = [self.omega[(m, b)] for m, b in steps]
        top_saved, top_lost = max(saved), max(lost)
        lam = float(self.options.lam)
        out = []
        for (m, b), s, o in zip(steps, saved, lost):
            phi = s / top_saved if top_saved > 0 else 0.0
            omega = o / top_lost if top_lost > 0 else 0.0
            out.append((m, b, -lam * omega + (1.0 - lam) * phi))
        return out

    def greedy(self, guard: bool, stop_ratio: float | None) -> tuple[dict[str, int], list[SearchStep], set[str]]:
        """The greedy walk: with ``guard``, each step validated on the held-back samples; stops at ``stop_ratio``
        (stage BitOPs over 8-bit patching's) or when nothing is left."""
        options = self.options
        metric = options.guard if options.guard != "off" else "sqnr"
        floor = options.guard_floor
        bits = {m: 8 for m in self.maps}
        frozen: set[str] = set()
        steps: list[SearchStep] = []
        while stop_ratio is None or self.ratio(bits) > stop_ratio:
            cands = self.candidates(bits, frozen)
            if not cands:
                break
            # the best score; ties: the map made first, then the higher bitwidth (candidates are in map order)
            m, b, score = max(cands, key=lambda c: c[2])
            new = {**bits, m: b}
            try:
                self.chain(new)
            except UserError as e:  # a combination the layers refuse (each map alone was accepted)
                self.skipped.setdefault(m, str(e))
                frozen.add(m)
                continue
            if not guard:
                steps.append(SearchStep(m, b, score, self.ratio(new), math.nan, True))
                bits = new
                continue
            q = guard_value(self.quality(new, bits), metric)
            ok = floor is None or q >= floor
            steps.append(SearchStep(m, b, score, self.ratio(new), q, ok))
            if ok:
                self.runs.pop(self.key(bits), None)  # only the state the walk stands on is a reference
                bits = new
            else:
                self.runs.pop(self.key(new), None)
                frozen.add(m)
        return bits, steps, frozen


def vdqs(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, calib_q: np.ndarray, held_q: np.ndarray,
         options: QuantmcuOptions, values: dict[str, np.ndarray] | None = None) -> VdqsResult:
    """The bitwidths of the low-bit chain (see the module docstring).

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and its patch plan (the 8-bit chain).
    vdpc : VdpcPlan
        The check, planned on ``calib_q``.
    calib_q, held_q : numpy.ndarray
        int8 samples in the model input's layout: those the chain calibrates on (VDPC's), and those the guard
        holds back (:func:`split_calibration`).
    options : QuantmcuOptions
        Bit set, lambda, BitOPs target, guard metric and floor, clipping, per-channel scales.
    values : dict, optional
        :func:`stage_values` of ``calib_q`` already taken (else the stage runs here).

    Returns
    -------
    VdqsResult
    """
    t0 = time.perf_counter()
    if len(held_q) == 0:
        raise ValueError("VDQS needs held-back samples for its guard")
    if vdpc.outlier_patches.size and vdpc.outlier_patches.all():
        raise UserError("every calibration patch is an outlier patch, so the low-bit chain has nothing to be "
                        "calibrated on; fix: a higher VDPC threshold (rule parameter) or more calibration data")
    held = held_back(graph, plan, vdpc, held_q)
    search = _Search(graph, plan, vdpc, calib_q, held, options, values)
    # with the guard off (no floor) every step is kept; its metric is still measured: the curve the search walks
    bits, steps, frozen = search.greedy(True, options.bitops_target)
    if options.guard != "off":
        stop = options.bitops_target if options.bitops_target is not None else search.ratio(bits)
        entropy_only, _, _ = search.greedy(False, stop)
    else:
        entropy_only = bits
    chain = search.chain(bits)
    return VdqsResult(dict(bits), chain, search.quality(bits), tuple(steps), dict(entropy_only),
                      search.quality(entropy_only), search.base, search.model.bitops(bits),
                      tuple(m for m in search.maps if m in frozen), dict(search.skipped), time.perf_counter() - t0,
                      dict(search.chains), int((~held.outliers).sum()), int(held.outliers.size), held)
