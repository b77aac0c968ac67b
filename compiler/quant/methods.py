"""Calibration methods: how an activation's int8 range is chosen from its values on the calibration data.

A rule is a method and its parameter, written as on the command line (``--calibration percentile:99.99``):

- ``minmax``: the smallest and largest value seen (TFLite's converter, onnxruntime's MinMax). One outlier
  sample sets the step size for every other value.
- ``percentile[:P]``: the P-th percentile of the values (and the (100 - P)-th for the low end of a signed
  tensor); default P = 99.99.
- ``mse[:BINS]``: the clipping range, searched over the histogram, that minimises the mean squared
  quantization error (rounding inside the range plus clipping outside it) of the tensor's values.
- ``kl[:BINS]``: TensorRT's entropy calibration: the clipping threshold on |x| whose quantized
  distribution has the smallest Kullback-Leibler divergence from the clipped reference distribution.

``BINS`` is the histogram resolution (default 2048). Every method keeps 0 inside the range (the
asymmetric int8 params of :func:`mcucompile.ops.base.activation_quant`) and never widens past min/max.
Per-tensor overrides (:class:`TensorOverride`) give one tensor its own rule or an explicit range; the
integer pipeline does not change, only the ranges that become scales and zero points.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

METHODS = ("minmax", "percentile", "mse", "kl")
#: other names users know the methods by (TensorRT: entropy; onnxruntime: MinMax, Percentile, Entropy)
ALIASES = {"entropy": "kl", "min-max": "minmax", "min_max": "minmax"}
#: the parameter each method takes and its default (None: the method takes none)
METHOD_DEFAULTS: dict[str, float | None] = {"minmax": None, "percentile": 99.99, "mse": 2048, "kl": 2048}
#: the default rule, chosen by measurement (bench/calibration.py, docs/calibration.md)
DEFAULT_METHOD = "minmax"
#: histogram bins when a method does not say
DEFAULT_BINS = 2048
#: the calibration with real data when none is chosen: (rule, bias correction)
REAL_DATA_DEFAULT = ("percentile:99.99", True)


@dataclass(frozen=True)
class CalibrationRule:
    """A calibration method and its parameter (percentile P, or histogram bins for mse / kl)."""

    method: str = DEFAULT_METHOD
    param: float | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"calibration method {self.method!r}: give one of {', '.join(METHODS)} (e.g. "
                            "--calibration percentile:99.99)")
        if self.param is not None:
            p = self.param
            if self.method == "minmax":
                raise UserError(f"calibration minmax takes no parameter (got {p:g}); give 'minmax'")
            if self.method == "percentile" and not (math.isfinite(p) and 50.0 < p <= 100.0):
                raise UserError(f"calibration percentile:{p:g}: give a percentile above 50 and at most 100, e.g. "
                                "percentile:99.99")
            if self.method in ("mse", "kl") and not (math.isfinite(p) and p == int(p) and 256 <= p <= 65536):
                raise UserError(f"calibration {self.method}:{p:g}: the parameter is the histogram bins, a whole "
                                f"number from 256 to 65536 (default {DEFAULT_BINS})")

    @property
    def value(self) -> float | None:
        """The parameter in effect (the method's default when none was given)."""
        return self.param if self.param is not None else METHOD_DEFAULTS[self.method]

    @property
    def needs_histogram(self) -> bool:
        return self.method != "minmax"

    def __str__(self) -> str:
        v = self.value
        return self.method if v is None else f"{self.method}:{v:g}"

    @staticmethod
    def parse(text: str) -> "CalibrationRule":
        """``"mse"``, ``"percentile:99.9"``, ... -> a rule (UserError for anything else)."""
        method, sep, param = str(text).strip().partition(":")
        method = method.strip().lower()
        method = ALIASES.get(method, method)
        if method not in METHODS:
            close = difflib.get_close_matches(method, METHODS + tuple(ALIASES), 1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"calibration method {text!r}{hint}: give one of {', '.join(METHODS)}, optionally with "
                            "a parameter, e.g. percentile:99.99 or mse")
        if not sep:
            return CalibrationRule(method)
        try:
            value = float(param)
        except ValueError:
            raise UserError(f"calibration {text!r}: the parameter after ':' must be a number, e.g. "
                            "percentile:99.99") from None
        return CalibrationRule(method, value)


@dataclass(frozen=True)
class TensorOverride:
    """One named tensor's own calibration: a rule, or an explicit real range [lo, hi]."""

    name: str
    rule: CalibrationRule | None = None
    range: tuple[float, float] | None = None

    def __post_init__(self):
        if (self.rule is None) == (self.range is None):
            raise UserError(f"tensor '{self.name}': give either a calibration rule or a range, not both or neither")
        if self.range is not None:
            lo, hi = self.range
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise UserError(f"tensor range {self.name}={lo:g},{hi:g}: give finite LO,HI with LO < HI, e.g. "
                                f"{self.name}=0,6")


@dataclass(frozen=True)
class CalibrationOptions:
    """How mcucompile chooses activation ranges of the tensors it calibrates.

    ``rule``: the rule for every tensor (``--calibration``); ``overrides``: per-tensor rules or ranges
    (``--tensor-calibration``, ``--tensor-range``, ``--quant-config``), by the tensor's model name;
    ``bias_correction``: fold each weighted layer's mean per-channel output error on the calibration data
    into its int32 bias (``--bias-correction``)."""

    rule: CalibrationRule = field(default_factory=CalibrationRule)
    overrides: tuple[TensorOverride, ...] = ()
    bias_correction: bool = False
    #: nothing was chosen (no --calibration, --bias-correction or config rule): with real calibration data
    #: (--calib) a float ONNX model takes :data:`REAL_DATA_DEFAULT` instead of min/max (see :meth:`for_data`)
    auto: bool = True

    def __post_init__(self):
        if not isinstance(self.rule, CalibrationRule):
            raise UserError(f"calibration rule: give a CalibrationRule, not {type(self.rule).__name__}")
        seen = set()
        for o in self.overrides:
            if o.name in seen:
                raise UserError(f"tensor '{o.name}' has two calibration overrides; give each tensor once")
            seen.add(o.name)

    def for_data(self, real_data: bool) -> "CalibrationOptions":
        """The options in effect. Nothing chosen and real calibration data: percentile 99.99 with bias correction,
        measured closer to float than min/max on every model with real inputs here (VWW photo crops, MNIST,
        ResNet-8 on photo crops; bench/calibration.py and docs/calibration.md); on synthetic data (no --calib)
        min/max, whose range at least covers what the samples reach."""
        if not (self.auto and real_data and self.rule == CalibrationRule() and not self.bias_correction):
            return self
        return dataclasses.replace(self, rule=CalibrationRule.parse(REAL_DATA_DEFAULT[0]), bias_correction=True)

    def rule_for(self, name: str) -> CalibrationRule | None:
        """The override rule of tensor ``name`` (None: no rule override)."""
        return next((o.rule for o in self.overrides if o.name == name and o.rule is not None), None)

    def range_for(self, name: str) -> tuple[float, float] | None:
        return next((o.range for o in self.overrides if o.name == name and o.range is not None), None)

    @property
    def needs_histogram(self) -> bool:
        return self.rule.needs_histogram or any(o.rule is not None and o.rule.needs_histogram for o in self.overrides)


def parse_tensor_assignments(values: list[str] | None, flag: str) -> list[tuple[str, str]]:
    """``["NAME=VALUE", ...]`` -> [(name, value)], split at the last '=' (tensor names hold ':' and '/')."""
    out = []
    for v in values or []:
        name, sep, value = v.rpartition("=")
        if not sep or not name or not value:
            raise UserError(f"{flag} '{v}' is not NAME=VALUE (e.g. {flag} 'model/activation/Relu:0=mse')")
        out.append((name, value))
    return out


def parse_range(text: str, name: str, where: str) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in text.split(","))
    except ValueError:
        raise UserError(f"{where} {name}={text}: give the range as LO,HI (e.g. {name}=0,6)") from None
    return lo, hi


def overrides_from_cli(ranges: list[str] | None, rules: list[str] | None) -> list[TensorOverride]:
    """``--tensor-range NAME=LO,HI`` and ``--tensor-calibration NAME=RULE`` -> overrides."""
    out = [TensorOverride(n, range=parse_range(v, n, "--tensor-range"))
           for n, v in parse_tensor_assignments(ranges, "--tensor-range")]
    out += [TensorOverride(n, rule=CalibrationRule.parse(v))
            for n, v in parse_tensor_assignments(rules, "--tensor-calibration")]
    return out


def load_quant_config(path: str | Path) -> tuple[CalibrationRule | None, list[TensorOverride], bool | None]:
    """A quantization config file (.json or .toml)::

        calibration = "mse"              # optional: the rule for every tensor
        bias_correction = true           # optional
        [tensors."model/activation/Relu:0"]
        range = [0.0, 4.0]               # an explicit range, or
        calibration = "percentile:99.9"  # a rule for this tensor

    Returns (rule or None, overrides, bias_correction or None)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--quant-config {path}: no such file; give a .json or .toml file")
    text = path.read_text(errors="replace")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise UserError(f"--quant-config {path} is not valid {kind} ({' '.join(str(e).split())[:120]}); fix the "
                        "file (see docs/calibration.md)") from None
    if not isinstance(data, dict):
        raise UserError(f"--quant-config {path}: expected a table with 'calibration' and/or 'tensors'")
    unknown = sorted(set(data) - {"calibration", "bias_correction", "tensors"})
    if unknown:
        raise UserError(f"--quant-config {path}: unknown key '{unknown[0]}'; the keys are calibration, "
                        "bias_correction and tensors")
    rule = CalibrationRule.parse(data["calibration"]) if "calibration" in data else None
    bc = data.get("bias_correction")
    if bc is not None and not isinstance(bc, bool):
        raise UserError(f"--quant-config {path}: bias_correction must be true or false")
    tensors = data.get("tensors", {})
    if not isinstance(tensors, dict):
        raise UserError(f"--quant-config {path}: 'tensors' must map tensor names to {{range = [lo, hi]}} or "
                        "{calibration = \"mse\"}")
    overrides = []
    for name, spec in tensors.items():
        if not isinstance(spec, dict) or not spec or set(spec) - {"range", "calibration"} or len(spec) != 1:
            raise UserError(f"--quant-config {path}: tensor '{name}' needs exactly one of range = [lo, hi] or "
                            "calibration = \"RULE\"")
        if "range" in spec:
            r = spec["range"]
            if not (isinstance(r, list) and len(r) == 2 and all(isinstance(v, (int, float)) for v in r)):
                raise UserError(f"--quant-config {path}: tensor '{name}' range must be [lo, hi] (two numbers)")
            overrides.append(TensorOverride(name, range=(float(r[0]), float(r[1]))))
        else:
            overrides.append(TensorOverride(name, rule=CalibrationRule.parse(spec["calibration"])))
    return rule, overrides, bc


def check_override_names(options: CalibrationOptions, calibrated: set[str], fixed: set[str] = frozenset()) -> None:
    """Every override must name a tensor mcucompile calibrates: a typo would be ignored silently. The
    message names the closest calibrated tensors."""
    for o in options.overrides:
        if o.name in calibrated:
            continue
        if o.name in fixed:
            raise UserError(f"tensor '{o.name}' has its quantization fixed by the model or by its op, not "
                            "calibrated; overrides apply to calibrated tensors only")
        close = difflib.get_close_matches(o.name, sorted(calibrated), 3, 0.4)
        hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
        raise UserError(f"tensor '{o.name}' is not a calibrated tensor of the model{hint} (report.json lists "
                        "them under quantization_sources.calibrated)")


class Histogram:
    """Values of one tensor over the calibration data: min, max, and a histogram of fixed bins over
    [lo, hi] (the min/max of a first pass), filled batch by batch."""

    def __init__(self, lo: float, hi: float, bins: int):
        self.lo, self.hi = float(min(lo, 0.0)), float(max(hi, 0.0))
        if self.hi - self.lo <= 0:
            self.hi = self.lo + 1e-8
        self.counts = np.zeros(int(bins), np.float64)

    def add(self, v: np.ndarray) -> None:
        idx = ((np.asarray(v, np.float64).ravel() - self.lo) * (len(self.counts) / (self.hi - self.lo))).astype(np.int64)
        self.counts += np.bincount(np.clip(idx, 0, len(self.counts) - 1), minlength=len(self.counts))

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, len(self.counts) + 1)

    @property
    def centers(self) -> np.ndarray:
        e = self.edges
        return (e[:-1] + e[1:]) / 2


def choose_range(rule: CalibrationRule, lo: float, hi: float, hist: Histogram | None,
                 qmin: int = -128, qmax: int = 127) -> tuple[float, float]:
    """The range ``rule`` chooses for a tensor whose values span [lo, hi] with histogram ``hist`` (None
    for minmax), for an integer range [qmin, qmax]. Always within [min(lo, 0), max(hi, 0)]."""
    if rule.method == "minmax" or hist is None or hist.counts.sum() == 0:
        return float(lo), float(hi)
    if rule.method == "percentile":
        return _percentile_range(hist, float(rule.value), lo, hi)
    if rule.method == "mse":
        return _mse_range(hist, lo, hi, qmin, qmax)
    return _kl_range(hist, lo, hi, qmax - qmin + 1)


def _percentile_range(hist: Histogram, p: float, lo: float, hi: float) -> tuple[float, float]:
    cdf = np.cumsum(hist.counts) / hist.counts.sum()
    edges = hist.edges
    # the upper edge of the first bin whose cumulative share reaches p: never below the true p-th value
    up = float(edges[1 + int(np.searchsorted(cdf, p / 100.0))]) if p < 100 else hi
    down = float(edges[int(np.searchsorted(cdf, 1.0 - p / 100.0, side="right"))]) if p < 100 else lo
    low = max(lo, min(down, 0.0)) if lo < 0 else lo  # a one-sided tensor keeps its low end (0 for a ReLU)
    return low, min(hi, max(up, 0.0))


def quantization_mse(hist: Histogram, lo: float, hi: float, qmin: int, qmax: int) -> float:
    """Mean squared error of quantizing the histogram's values (at bin centres) to [qmin, qmax] with the
    asymmetric params of range [lo, hi], clipping included (what ``activation_quant`` would choose)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / (qmax - qmin)
    zp = np.clip(np.floor(qmin - lo / scale + 0.5), qmin, qmax)
    c = hist.centers
    q = np.clip(np.floor(c / scale + 0.5) + zp, qmin, qmax)  # rounding direction at .5 does not move the MSE
    err = (q - zp) * scale - c
    # values spread over a bin: the rounding error of a bin narrower than a step is step^2 / 12 on average,
    # which bin centres miss; add the bin's own spread so that fine steps are not undercounted
    width = (hist.hi - hist.lo) / len(hist.counts)
    inside = (q > qmin) & (q < qmax)
    spread = np.where(inside, min(width, scale) ** 2 / 12.0, 0.0)
    return float(np.sum(hist.counts * (err**2 + spread)) / hist.counts.sum())


def _mse_range(hist: Histogram, lo: float, hi: float, qmin: int, qmax: int) -> tuple[float, float]:
    """Shrink [lo, hi] towards 0 by a common factor to the MSE minimum, on a grid of 200 factors from
    1/200 to 1.

    Each factor's error is :func:`quantization_mse`'s, bit for bit: the per-factor scalars (scale, zero point,
    spread) are computed as it computes them, the bins of all factors at once ([factors, bins], the same
    element-wise operations), and each factor's sum over its own row (the same reduction as on a 1-D array),
    so the factor chosen is the one the one-by-one loop chooses (tests/test_calibration_mse.py)."""
    def shrunk(f: float) -> tuple[float, float]:
        # an end on the same side of 0 as the other (a one-sided tensor's low end) is kept as it is
        return (lo * f if lo < 0 else lo), (hi * f if hi > 0 else hi)

    factors = np.linspace(1.0, 1.0 / 200, 200)
    errors = _mse_grid(hist, [shrunk(float(f)) for f in factors], qmin, qmax)
    best, best_f = math.inf, 1.0
    for f, e in zip(factors, errors):
        if e < best * (1 - 1e-9):
            best, best_f = e, float(f)
    a, b = shrunk(best_f)
    return float(a), float(b)


#: elements per block of :func:`_mse_grid` (its temporaries stay in the cache)
_MSE_BLOCK = 1 << 15


def _mse_grid(hist: Histogram, ranges: list[tuple[float, float]], qmin: int, qmax: int) -> list[float]:
    """``[quantization_mse(hist, lo, hi, qmin, qmax) for lo, hi in ranges]``, many ranges at once.

    An empty bin's term is exactly +0.0 in quantization_mse's sum, so only the non-empty bins are computed (a map's
    8-bit values fill at most 256 of the 2048 bins) and put back in their places among zeros before each sum (one
    reduction along the rows: numpy sums each contiguous row as it sums that row alone, pairwise)."""
    scales, zps, spreads = [], [], []
    width = (hist.hi - hist.lo) / len(hist.counts)
    for lo, hi in ranges:  # the scalars exactly as quantization_mse computes them
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = max(hi - lo, 1e-12) / (qmax - qmin)
        scales.append(scale)
        zps.append(float(min(max(math.floor(qmin - lo / scale + 0.5), qmin), qmax)))  # np.clip(np.floor(.)), exact
        spreads.append(min(width, scale) ** 2 / 12.0)
    used = np.flatnonzero(hist.counts)
    c, counts = hist.centers[used], hist.counts[used]
    total = hist.counts.sum()
    step = max(1, _MSE_BLOCK // max(1, len(used)))
    out: list[float] = []
    for a in range(0, len(ranges), step):
        scale = np.array(scales[a : a + step], np.float64)[:, None]
        zp = np.array(zps[a : a + step], np.float64)[:, None]
        q = np.clip(np.floor(c / scale + 0.5) + zp, qmin, qmax)
        err = (q - zp) * scale - c
        inside = (q > qmin) & (q < qmax)
        spread = np.where(inside, np.array(spreads[a : a + step], np.float64)[:, None], 0.0)
        terms = np.zeros((len(scale), len(hist.counts)), np.float64)
        terms[:, used] = counts * (err**2 + spread)
        out += (np.sum(terms, axis=1) / total).tolist()  # a C-contiguous row's sum is the 1-D array's, bit for bit
    return out


def _kl_range(hist: Histogram, lo: float, hi: float, levels: int) -> tuple[float, float]:
    """TensorRT's entropy calibration on |x|: among thresholds T (bin edges of the |x| histogram), the one
    whose ``levels``-level quantization (half of them for a signed tensor) of the clipped distribution
    is closest in KL divergence to it, the zero bin flattened to its neighbour's count. Returns
    [max(lo, -T), min(hi, T)]."""
    centers = hist.centers
    amax = max(abs(lo), abs(hi))
    nb = len(hist.counts)
    a = np.zeros(nb)
    idx = np.clip((np.abs(centers) / amax * nb).astype(np.int64), 0, nb - 1)
    np.add.at(a, idx, hist.counts)
    # the spike of exact zeros (ReLU outputs, padding) would otherwise dominate the divergence and pull
    # the threshold far in; NVIDIA's pytorch-quantization flattens it the same way (bins[0] = bins[1])
    a[0] = a[1]
    signed = lo < 0 and hi > 0
    nq = levels // 2 if signed else levels - 1
    if nb <= nq:
        return lo, hi
    best, best_i = math.inf, nb
    for i in range(nq, nb + 1, max(1, (nb - nq) // 512)):
        p = a[:i].copy()
        p[-1] += a[i:].sum()  # outliers clipped into the last bin
        if p.sum() == 0:
            continue
        # merge i bins into nq levels, spread each level's count evenly over its non-empty bins
        groups = np.minimum((np.arange(i) * nq) // i, nq - 1)
        nz = p > 0
        level_sum = np.bincount(groups, a[:i], nq)
        level_nz = np.bincount(groups, nz.astype(np.float64), nq)
        q = np.where(nz, level_sum[groups] / np.maximum(level_nz[groups], 1), 0.0)
        ps, qs = p / p.sum(), q / max(q.sum(), 1e-30)
        m = ps > 0
        kl = float(np.sum(ps[m] * np.log(ps[m] / np.maximum(qs[m], 1e-12))))
        if kl < best:
            best, best_i = kl, i
    t = best_i / nb * amax
    return float(max(lo, -t)), float(min(hi, t))


def calibration_options(rule: str | None = None, tensor_ranges: list[str] | None = None,
                        tensor_rules: list[str] | None = None, config: str | Path | None = None,
                        bias_correction: bool = False) -> CalibrationOptions:
    """The command line's calibration flags as options: ``--quant-config`` first, then ``--calibration``
    and ``--bias-correction`` (which win over the file's), then ``--tensor-range`` /
    ``--tensor-calibration`` (which replace the file's entry for the same tensor)."""
    file_rule, file_overrides, file_bc = load_quant_config(config) if config else (None, [], None)
    cli = overrides_from_cli(tensor_ranges, tensor_rules)
    names = [o.name for o in cli]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise UserError(f"tensor '{dup}' is given twice (--tensor-range / --tensor-calibration); give each tensor once")
    merged = [o for o in file_overrides if o.name not in set(names)] + cli
    chosen = CalibrationRule.parse(rule) if rule else (file_rule or CalibrationRule())
    auto = not (rule or file_rule or bias_correction or file_bc)
    return CalibrationOptions(chosen, tuple(merged), bool(bias_correction or file_bc), auto)
