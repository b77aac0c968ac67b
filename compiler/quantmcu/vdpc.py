"""Value-driven patch classification (VDPC): the outlier threshold from calibration, and the run-time
dispatch the device decides with it.

A patch is an outlier patch when its region of the checked map holds a value with |q - zp| > threshold
(``ops/outlier_check.py``); it then runs the 8-bit chain, every other patch the low-bit chain. Options
(:class:`VdpcOptions`, defaults documented there and in docs/quantmcu.md):

- ``rule``: ``percentile`` (the threshold is the ``parameter``-th percentile of |q - zp| over the whole
  calibration maps; default 99.9) or ``sigma`` (mean + ``parameter`` standard deviations of |q - zp|;
  default k = 3); the threshold is that value rounded down, so "above the threshold" is "above the rule's
  value" for integers;
- ``max_outlier_share``: a cap on the share of calibration patches the threshold flags (default 0.5 with the
  rule's default parameter): above it the threshold is raised to the per-patch maxima's quantile that flags
  that share (synthetic or uniform calibration data puts the p99.9 value in nearly every patch);
- ``location``: where the check looks: ``first_map`` (default: the first map the stage makes, as the patch
  makes it: the probe chain runs the stage's first layer, then checks) or ``input`` (the patch's input
  region, before any layer runs), or ``auto``: the one of the two with the lower bound on the low-bit chain's
  stage BitOPs (:func:`choose_location`, from the same statistics: the check at the input lets the first map
  go low, the check at the first map may flag fewer patches), decided before the bitwidth search.

:func:`plan_vdpc` measures the statistics (``stats.stage_stats``) and returns a :class:`VdpcPlan`: the map,
its zero point, the threshold and the share of outlier patches on the calibration data;
:func:`runtime_dispatch` turns it into the schedule's ``RuntimeDispatch``; :func:`check_instructions` is the
check's cost by its kernel's cost model, :func:`check_problems` the memory soundness of what the dispatch adds,
:func:`compare_rules` measures how well options separate outlier patches on held-out inputs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..ir import Graph
from ..memory import ArenaPlan
from ..ops.kernel import Geometry
from ..ops.outlier_check import MAX_THRESHOLD
from ..patch.planner import PatchPlan, node_macs_region
from ..schedule.safety import plan_problems
from ..schedule.schedule import RuntimeDispatch, Schedule
from .stats import MapStats, StageStats, stage_maps, stage_stats

RULES = ("percentile", "sigma")
LOCATIONS = ("first_map", "input", "auto")
#: the places the check can look (``auto`` chooses one of them)
PLACES = ("first_map", "input")
#: each rule's default parameter: percentile 99.9 (the top 0.1% of values: the outliers VDPC keeps at 8 bits),
#: sigma k = 3
DEFAULT_PARAMETER = {"percentile": 99.9, "sigma": 3.0}
#: the share cap with the rule's default parameter: at most half of the calibration patches are outlier patches
#: (see :attr:`VdpcOptions.share_cap`)
DEFAULT_MAX_OUTLIER_SHARE = 0.5


@dataclass(frozen=True)
class VdpcOptions:
    """How VDPC finds its threshold and where the check looks (see the module docstring).

    ``parameter`` None: the rule's default (:data:`DEFAULT_PARAMETER`); ``location`` "auto": chosen per stage
    by :func:`choose_location`.

    ``max_outlier_share``: the cap on the share of calibration patches the threshold may flag. When the rule's
    threshold flags more, :func:`plan_vdpc` raises it to the lowest value that flags at most that share (a
    quantile of the per-patch maxima; :func:`capped_threshold`) and says so (``VdpcPlan.rule_threshold``). None:
    :data:`DEFAULT_MAX_OUTLIER_SHARE` with the rule's default parameter, no cap with an explicit ``parameter``
    (a user's percentile or k is taken literally); a number in (0, 1] caps whatever the parameter (1: never).
    ``fixed_threshold``: the threshold itself (0..255), rule and cap not applied: what ``plan_quantmcu`` passes
    on once it has set the threshold on its plan, so that every later plan (the joint search's candidates, its
    winner) checks against the same value the guard judged."""

    rule: str = "percentile"
    parameter: float | None = None
    location: str = "first_map"
    max_outlier_share: float | None = None
    fixed_threshold: int | None = None

    def __post_init__(self):
        if self.rule not in RULES:
            raise UserError(f"VDPC outlier rule '{self.rule}' is not one of {', '.join(RULES)}; fix: choose one of them")
        if self.location not in LOCATIONS:
            raise UserError(f"VDPC check location '{self.location}' is not one of {', '.join(LOCATIONS)}; "
                            "fix: choose one of them")
        v = self.value
        if not math.isfinite(v):
            raise UserError(f"VDPC {self.rule} parameter {v} is not a finite number; fix: give a number")
        if self.rule == "percentile" and not 0.0 < v <= 100.0:
            raise UserError(f"VDPC percentile {v} is outside (0, 100]; fix: give e.g. 99.9")
        if self.rule == "sigma" and v < 0.0:
            raise UserError(f"VDPC sigma factor {v} is negative; fix: give k >= 0 (e.g. 3)")
        c = self.max_outlier_share
        if c is not None and not (isinstance(c, (int, float)) and math.isfinite(c) and 0.0 < c <= 1.0):
            raise UserError(f"VDPC outlier share cap {c} is outside (0, 1]; fix: give a fraction, e.g. 0.5 (1: no cap)")
        t = self.fixed_threshold
        if t is not None and not (isinstance(t, (int, np.integer)) and 0 <= t <= MAX_THRESHOLD):
            raise UserError(f"VDPC fixed threshold {t} is not an integer in 0..{MAX_THRESHOLD}; fix: give one")

    @property
    def value(self) -> float:
        """The rule's parameter, the default filled in."""
        return float(DEFAULT_PARAMETER[self.rule] if self.parameter is None else self.parameter)

    @property
    def share_cap(self) -> float:
        """The cap in force: ``max_outlier_share``, or its default (see the class docstring); 1.0: no cap."""
        if self.max_outlier_share is not None:
            return float(self.max_outlier_share)
        return DEFAULT_MAX_OUTLIER_SHARE if self.parameter is None else 1.0


def capped_threshold(stats: MapStats, threshold: int, cap: float) -> int:
    """The lowest threshold >= ``threshold`` at which at most a ``cap`` share of the calibration (sample, patch)
    pairs are outlier patches (their region's max |q - zp| above it): ``threshold`` itself when it already
    flags no more; at most :data:`MAX_THRESHOLD` (which flags nothing).

    Parameters
    ----------
    stats : MapStats
        The checked map over the calibration set (its ``patch_max``).
    threshold : int
        The rule's threshold.
    cap : float
        The share in (0, 1].

    Returns
    -------
    int
    """
    pm = np.asarray(stats.patch_max).reshape(-1)
    if pm.size == 0:
        return int(threshold)
    # share flagged at t = share of maxima > t; counts of maxima per value 0..255, then the tail sums
    counts = np.bincount(np.clip(pm.astype(np.int64), 0, MAX_THRESHOLD), minlength=MAX_THRESHOLD + 1)
    above = (pm.size - np.cumsum(counts)) / pm.size  # above[t] = share of maxima > t
    for t in range(int(threshold), MAX_THRESHOLD + 1):
        if above[t] <= cap + 1e-12:
            return t
    return MAX_THRESHOLD


def threshold_of(stats: MapStats, options: VdpcOptions) -> int:
    """The integer threshold of ``options``' rule on one map's statistics (0..255).

    Parameters
    ----------
    stats : MapStats
        The checked map over the calibration set.
    options : VdpcOptions
        The rule and its parameter.

    Returns
    -------
    int
        The largest |q - zp| that is not an outlier.
    """
    if options.rule == "percentile":
        t = stats.percentile(options.value)
    else:
        mean, std = stats.mean_std()
        t = math.floor(mean + options.value * std)
    return int(min(MAX_THRESHOLD, max(0, t)))


@dataclass(frozen=True, eq=False)
class VdpcPlan:
    """The check VDPC puts in the patch loop, and what it does on the calibration data.

    ``outlier_patches``: bool [samples, patches], the patches the check flags on each calibration input;
    ``outlier_patch_share``: their share of all (sample, patch) pairs. ``stats``: the statistics it was planned
    from (when :func:`plan_vdpc` measures them, the checked map's only). ``rule_threshold``: the rule's own
    threshold when the share cap raised it (its share ``rule_share``), else None."""

    options: VdpcOptions
    tensor: str
    zero_point: int
    threshold: int
    outlier_patches: np.ndarray
    stats: StageStats
    rule_threshold: int | None = None
    rule_share: float | None = None

    @property
    def outlier_patch_share(self) -> float:
        return float(self.outlier_patches.mean()) if self.outlier_patches.size else 0.0

    @property
    def never_fires(self) -> bool:
        """The check cannot flag any patch on any input (threshold :data:`MAX_THRESHOLD`: no |q - zp| exceeds it),
        so the plan drops it and every patch runs the low-bit chain."""
        return self.threshold >= MAX_THRESHOLD

    @property
    def checked(self) -> str | None:
        """The map the check reads on the device, which must stay 8-bit (``tensor``); None when the check cannot
        fire (:attr:`never_fires`): the plan drops it and nothing reads that map at 8 bits."""
        return None if self.never_fires else self.tensor

    def note(self, synthetic: bool = False, name: str | None = None) -> str | None:
        """What the user should know about the threshold (one line), or None: the share cap raised it, or the
        check can never fire and is dropped. ``synthetic``: the calibration inputs were not the user's; ``name``:
        the checked map as the model names it (default: the IR's tensor name)."""
        hint = "; give --calib with real inputs" if synthetic else ""
        if self.rule_threshold is not None:
            cap = self.options.share_cap
            line = (f"QuantMCU: the VDPC {self.options.rule} {self.options.value:g} threshold {self.rule_threshold} "
                    f"flags {100 * self.rule_share:.0f}% of the calibration patches, over the {100 * cap:.0f}% cap: "
                    f"raised to {self.threshold} ({100 * self.outlier_patch_share:.0f}% flagged; the low-bit chain is "
                    "calibrated on the rest and the guard judges it)")
            if self.never_fires:
                line += ", at which the check never fires: it is dropped, every patch runs the low-bit chain"
            return line + hint
        if self.never_fires:
            return (f"QuantMCU: no calibration value of '{name or self.tensor}' exceeds the VDPC threshold {self.threshold} "
                    f"(|q - zp| <= {MAX_THRESHOLD} always): the check is dropped, every patch runs the low-bit chain")
        return None


def checked_map(graph: Graph, plan: PatchPlan, location: str) -> str:
    """The map the check of ``location`` reads: the stage input, or the first map the stage makes."""
    if location not in PLACES:
        raise ValueError(f"check location {location!r}: resolve 'auto' first (choose_location)")
    maps = stage_maps(graph, plan)
    inp = graph.inputs[0]
    if location == "input":
        if inp not in maps:
            raise UserError(f"the model input '{inp}' is not an 8-bit NHWC map, so VDPC cannot check it; "
                            "fix: use the check location first_map")
        return inp
    made = [m for m in maps if m not in (inp, plan.split)]
    if not made:
        raise UserError("the patched stage makes no 8-bit map before its output for VDPC to check; fix: use the "
                        "check location input, or a longer stage (a later split)")
    return made[0]


def plan_vdpc(graph: Graph, plan: PatchPlan, calib_q: np.ndarray, options: VdpcOptions = VdpcOptions(),
              stats: StageStats | None = None, values: dict[str, np.ndarray] | None = None) -> VdpcPlan:
    """The VDPC check of ``plan``'s stage calibrated on ``calib_q`` (int8 inputs, physical layout).

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and its patch plan.
    calib_q : numpy.ndarray
        int8 [N, ...] calibration inputs.
    options : VdpcOptions
        Rule, parameter and location.
    stats : StageStats, optional
        Statistics already measured on ``calib_q`` (else measured here).
    values : dict, optional
        The stage's values on ``calib_q`` (``vdqs.stage_values``) the statistics are measured from, when not given.

    Returns
    -------
    VdpcPlan
        Its ``options`` name the place the check looks (``auto`` resolved by :func:`choose_location`).
    """
    if len(calib_q) == 0:
        raise UserError("VDPC needs calibration data to set its threshold; fix: pass calibration samples")
    if stats is None and options.location != "auto":
        # the checked map's statistics are all a plan reads (VdpcPlan.stats holds that map only)
        stats = stage_stats(graph, plan, calib_q, values, only=(checked_map(graph, plan, options.location),))
    stats = stats if stats is not None else stage_stats(graph, plan, calib_q, values)
    if options.location == "auto":
        options = choose_location(graph, plan, calib_q, options, stats=stats)[0]
    tensor = checked_map(graph, plan, options.location)
    m = stats.map(tensor)
    if options.fixed_threshold is not None:
        t = int(options.fixed_threshold)
        return VdpcPlan(options, tensor, m.zero_point, t, m.outlier_patches(t), stats)
    t = threshold_of(m, options)
    raised = capped_threshold(m, t, options.share_cap)
    if raised == t:
        return VdpcPlan(options, tensor, m.zero_point, t, m.outlier_patches(t), stats)
    return VdpcPlan(options, tensor, m.zero_point, raised, m.outlier_patches(raised), stats, t,
                    float(m.outlier_patches(t).mean()))


def lowbit_bound(graph: Graph, plan: PatchPlan, vdpc: VdpcPlan, low_bits: int) -> float:
    """A lower bound on the expected stage BitOPs of a low-bit chain under ``vdpc``'s check: every map the chain may
    lower (made inside the stage, not the stage output, not the map the check reads: ``VdpcPlan.checked``) at
    ``low_bits``, each patch weighted by the share of calibration samples on which the check flags it (an outlier
    patch counted at 8 bits throughout: the probe before the check reads the 8-bit input in both places). Weight
    bits 8 x input bits, as ``lowbit.stage_bitops`` counts."""
    stage = graph.nodes[: plan.stage_len]
    lowerable = {m for m in stage_maps(graph, plan) if m not in (graph.inputs[0], plan.split, vdpc.checked)}
    share = vdpc.outlier_patches.mean(axis=0) if vdpc.outlier_patches.size else np.zeros(plan.patches)
    total = 0.0
    for p, regs in enumerate(plan.regions):
        eight = low = 0.0
        for n in stage:
            macs = node_macs_region(n, graph, regs[n.outputs[0]]) * 8
            bits = graph.tensors[n.inputs[0]].bits
            eight += macs * bits
            low += macs * (low_bits if n.inputs[0] in lowerable else bits)
        total += (1.0 - share[p]) * low + share[p] * eight
    return total


def choose_location(graph: Graph, plan: PatchPlan, calib_q: np.ndarray, options: VdpcOptions,
                    low_bits: int = 2, stats: StageStats | None = None) -> tuple[VdpcOptions, dict[str, float]]:
    """Where the check looks for ``location="auto"``: the place whose :func:`lowbit_bound` is lower (the most the
    bitwidth search can save there; ties: the first map, the cheaper check on VWW), from one set of statistics
    (both thresholds from the same calibration maps, so this costs a second threshold, not a second pass).
    Deterministic. The guard still decides how much of that room is taken.

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and its patch plan.
    calib_q : numpy.ndarray
        int8 [N, ...] calibration inputs.
    options : VdpcOptions
        The rule and parameter (its location is not read).
    low_bits : int
        The lowest bitwidth the search may give a map (``QuantmcuOptions.bits``' minimum).
    stats : StageStats, optional
        Statistics already measured on ``calib_q``.

    Returns
    -------
    (VdpcOptions, dict)
        ``options`` at the chosen place; the bound's saving (8-bit patching's stage BitOPs over the bound) at each
        place the stage allows.

    Raises
    ------
    UserError
        Neither place is possible on this stage (the reasons of :func:`checked_map`).
    """
    stats = stats if stats is not None else stage_stats(graph, plan, calib_q)
    savings: dict[str, float] = {}
    first_error = None
    for place in PLACES:
        concrete = dataclasses.replace(options, location=place)
        try:
            v = plan_vdpc(graph, plan, calib_q, concrete, stats)
        except UserError as e:  # this place does not exist on this stage (e.g. no map before the output)
            first_error = first_error or e
            continue
        eight = lowbit_bound(graph, plan, v, 8)
        savings[place] = eight / max(lowbit_bound(graph, plan, v, low_bits), 1e-300)
    if not savings:
        raise first_error
    best = max(PLACES, key=lambda pl: (savings.get(pl, -1.0), pl == "first_map"))
    return dataclasses.replace(options, location=best), savings


def runtime_dispatch(vdpc: VdpcPlan, outlier_chain: int = 0, inlier_chain: int = 1) -> RuntimeDispatch:
    """The schedule's run-time dispatch of ``vdpc``: outlier patches run ``outlier_chain`` (the 8-bit one),
    the others ``inlier_chain`` (the probe)."""
    return RuntimeDispatch(vdpc.tensor, vdpc.zero_point, vdpc.threshold, outlier_chain, inlier_chain)


def check_instructions(schedule: Schedule) -> float:
    """The instructions the run-time dispatch's check costs per inference by its kernel's cost model: one call
    per patch on the probe's region of the checked map (the whole region read: an inlier patch, the common
    case; an outlier patch stops earlier with the fast kernels). 0 without a run-time dispatch."""
    loop = schedule.loop
    if loop is None or loop.check is None:
        return 0.0
    ck, graph = loop.check, schedule.graph
    cost = ck.kernel.kernel.cost
    total = 0.0
    for regs in loop.plan.regions:
        r = regs[ck.tensor]
        counts = cost.counts(ck.node, graph, Geometry(r.h, r.w, r.h, r.w, 0, 0))
        total += sum(cost.coefficients.get(f, 0.0) * counts.get(f, 0.0) for f in cost.features)
    return total


def check_problems(schedule: Schedule, plan: ArenaPlan) -> list[str]:
    """Every violation of the plan safety check (``schedule.safety.plan_problems``) for ``schedule`` laid out by
    ``plan``: every chain of the loop in its exclusive group, and the run-time dispatch's check (its reads of
    the probe's region buffer) and move (the checked region into the outlier chain's buffer), from the kernels'
    own access patterns. Empty: sound. A thin wrapper kept for its callers."""
    return plan_problems(schedule.graph, plan, schedule=schedule)


@dataclass(frozen=True)
class RuleComparison:
    """One VDPC option measured on calibration and held-out inputs: its threshold, the share of outlier
    patches on each set, and how the flagged held-out patches match the patches that hold an extreme value
    of some map the stage makes (above that map's calibration ``extreme`` percentile): recall and
    precision (None when there is nothing to divide by)."""

    options: VdpcOptions
    tensor: str
    threshold: int
    share_calib: float
    share_test: float
    recall: float | None
    precision: float | None


def compare_rules(graph: Graph, plan: PatchPlan, calib_q: np.ndarray, test_q: np.ndarray,
                  candidates: tuple[VdpcOptions, ...], extreme: float = 99.9) -> tuple[RuleComparison, ...]:
    """How well each of ``candidates`` separates outlier patches (docs/quantmcu.md: the rule and location
    study on VWW).

    Parameters
    ----------
    graph, plan : Graph, PatchPlan
        The quantized graph and its patch plan.
    calib_q, test_q : numpy.ndarray
        int8 calibration inputs (thresholds, extremes) and held-out inputs (shares, recall, precision).
    candidates : tuple of VdpcOptions
        The options to compare.
    extreme : float
        The percentile of each map's calibration d = |q - zp| above which a value is extreme.

    Returns
    -------
    tuple of RuleComparison
    """
    sc, st = stage_stats(graph, plan, calib_q), stage_stats(graph, plan, test_q)
    made = [m.tensor for m in sc.maps if m.tensor != graph.inputs[0]]
    truth = np.zeros(st.maps[0].patch_max.shape, bool)
    for name in made:
        truth |= st.map(name).patch_max > sc.map(name).percentile(extreme)
    rows = []
    for o in candidates:
        v = plan_vdpc(graph, plan, calib_q, o, sc)
        flag = st.map(v.tensor).outlier_patches(v.threshold)
        hit = int((flag & truth).sum())
        rows.append(RuleComparison(o, v.tensor, v.threshold, v.outlier_patch_share, float(flag.mean()),
                                   hit / int(truth.sum()) if truth.any() else None,
                                   hit / int(flag.sum()) if flag.any() else None))
    return tuple(rows)
