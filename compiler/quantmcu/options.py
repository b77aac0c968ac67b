"""QuantMCU's options (``--quantmcu`` and the method's own flags) and what a QuantMCU compile produces.

The contract between the method (``plan.py``: VDPC, VDQS with its guard, the joint patch and bitwidth search)
and its consumers (the compile pipeline, report.json's ``quantmcu`` object, the summary, ``--plot``, ``verify``
and the benchmark). Every choice of docs/quantmcu.md is an option here with its documented default; the Python
API refuses what the command line refuses, with the same one-line messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import UserError
from .vdpc import VdpcOptions

#: activation bitwidths a feature map of the low-bit chain may take
BIT_CHOICES = (8, 4, 2)
#: guard metrics: output SQNR (dB) or top-1 agreement, both against the 8-bit model on held-back samples
GUARD_METRICS = ("sqnr", "agreement")
#: each guard metric's default floor
DEFAULT_FLOOR = {"sqnr": 20.0, "agreement": 0.98}
CLIPPINGS = ("mse", "minmax")


@dataclass(frozen=True)
class QuantmcuOptions:
    """How QuantMCU plans the per-patch stage.

    - ``vdpc``: the outlier rule, its parameter, the cap on the share of outlier patches (0.5 with the rule's
      default parameter: a threshold that flags more is raised, with a note) and where the on-device check looks
      (:class:`VdpcOptions`; a threshold of 255 cannot fire, so the plan then drops the check);
    - ``bits``: the bitwidths VDQS may give a feature map (8 always among them);
    - ``lam``: lambda of the VDQS score S = -lambda * entropy loss + (1 - lambda) * BitOPs saved (normalised);
    - ``bitops_target``: stop once stage BitOPs are at most this fraction of 8-bit patching's (None: go on
      while the guard holds);
    - ``guard``: the guard's metric, ``floor``: its floor (None: the metric's default, :data:`DEFAULT_FLOOR`);
      ``guard`` "off" runs the entropy score alone (for comparison);
    - ``holdout``: the share of the calibration samples held back for the guard (the rest calibrate);
    - ``clipping``: the low-bit ranges by quantization MSE or min/max; ``per_channel``: per-channel scales
      where a map allows them;
    - ``sub_patches``: an outlier patch runs its 8-bit chain as s x s sub-patches (None: searched).
    """

    vdpc: VdpcOptions = field(default_factory=VdpcOptions)
    bits: tuple[int, ...] = BIT_CHOICES
    lam: float = 0.5
    bitops_target: float | None = None
    guard: str = "sqnr"
    floor: float | None = None
    holdout: float = 0.5
    clipping: str = "mse"
    per_channel: bool = True
    sub_patches: int | None = None

    def __post_init__(self):
        if not isinstance(self.vdpc, VdpcOptions):
            raise UserError(f"vdpc: give a VdpcOptions, not {type(self.vdpc).__name__}")
        bits = tuple(self.bits)
        if not bits or any(b not in BIT_CHOICES for b in bits) or 8 not in bits or len(set(bits)) != len(bits):
            raise UserError(f"QuantMCU bitwidths (--qm-bits) {','.join(map(str, bits))}: give distinct values of "
                            "8, 4 and 2, 8 among them (e.g. 8,4,2 or 8,4)")
        if not (isinstance(self.lam, (int, float)) and math.isfinite(self.lam) and 0.0 <= self.lam <= 1.0):
            raise UserError(f"QuantMCU lambda (--qm-lambda) {self.lam}: give a number in [0, 1] (default 0.5)")
        if self.bitops_target is not None and not (math.isfinite(self.bitops_target) and 0.0 < self.bitops_target <= 1.0):
            raise UserError(f"QuantMCU BitOPs target (--qm-bitops-target) {self.bitops_target}: give a fraction of "
                            "8-bit patching's stage BitOPs in (0, 1], e.g. 0.45")
        if self.guard not in GUARD_METRICS + ("off",):
            raise UserError(f"QuantMCU guard (--qm-guard) {self.guard!r}: give 'sqnr', 'agreement' or 'off'")
        if self.floor is not None:
            if not math.isfinite(self.floor):
                raise UserError(f"QuantMCU guard floor (--qm-floor) {self.floor}: give a finite number")
            if self.guard == "agreement" and not 0.0 <= self.floor <= 1.0:
                raise UserError(f"QuantMCU agreement floor (--qm-floor) {self.floor}: give a fraction in [0, 1], "
                                "e.g. 0.98")
        if not (math.isfinite(self.holdout) and 0.0 < self.holdout < 1.0):
            raise UserError(f"QuantMCU holdout (--qm-holdout) {self.holdout}: give a fraction in (0, 1), e.g. 0.25")
        if self.clipping not in CLIPPINGS:
            raise UserError(f"QuantMCU clipping (--qm-clipping) {self.clipping!r}: give 'mse' or 'minmax'")
        if self.sub_patches is not None and (not isinstance(self.sub_patches, int) or not 1 <= self.sub_patches <= 4):
            raise UserError(f"QuantMCU sub-patches (--qm-sub-patches) {self.sub_patches}: give 1 to 4")
        object.__setattr__(self, "bits", bits)

    @property
    def guard_floor(self) -> float | None:
        """The guard's floor, its default filled in (None with the guard off)."""
        if self.guard == "off":
            return None
        return float(DEFAULT_FLOOR[self.guard] if self.floor is None else self.floor)


@dataclass(frozen=True)
class FeatureMapChoice:
    """One feature map of the per-patch stage as the low-bit chain holds it: ``name`` is the 8-bit model's
    tensor; ``scales`` one per tensor or one per channel; ``checked``: the map VDPC's check reads (8-bit)."""

    name: str
    bits: int
    scales: tuple[float, ...]
    zero_point: int
    checked: bool = False


@dataclass(frozen=True)
class SearchStep:
    """One step VDQS tried: lower ``map`` to ``bits`` (its score), the stage BitOPs that gives as a fraction of
    8-bit patching's, the guard's metric on the held-back samples, and whether the guard kept it."""

    map: str
    bits: int
    score: float
    bitops_ratio: float
    quality: float
    accepted: bool


@dataclass(frozen=True, eq=False)
class QuantmcuResult:
    """What a QuantMCU compile chose and measured (report.json's ``quantmcu`` object is built from it).

    ``schedule`` / ``arena``: the patch loop with both chains and its arena plan (what code generation takes);
    ``plan``: the chosen split and grid; ``base_plan``: 8-bit patching's own best plan under the same budget;
    ``sub_patches``: an outlier patch's 8-bit chain runs as s x s sub-patches (1: the whole patch).
    BitOPs (definitions in docs/quantmcu.md) are expectations over the calibration samples' patch chains:
    ``bitops_8bit`` / ``bitops``: stage, 8-bit patching on the same split and grid vs this plan;
    ``bitops_8bit_own_plan``: 8-bit patching at ``base_plan``; ``*_model``: over all layers. ``quality``: the
    guard's metrics (``sqnr`` dB, ``agreement``) against the 8-bit model on the held-back samples;
    ``entropy_only``: the bits the entropy score alone would have chosen (no guard) and ``entropy_only_quality``
    its quality; ``steps``: every step the search tried, in order (the trade-off curve the guard walks).
    ``quality["sqnr"]`` is +inf when the outputs equal the 8-bit model's (e.g. every map kept at 8 bits).
    Added after the contract: ``chain``: the low-bit chain (``lowbit.LowbitChain``: its graph, bits, params);
    ``notes``: what the user should know (maps the layers refuse to lower, maps the guard froze, every map at
    8 bits); ``holdout_samples`` / ``calib_samples``: how the calibration samples were split."""

    options: QuantmcuOptions
    schedule: object
    arena: object
    plan: object
    base_plan: object
    sub_patches: int
    vdpc: object
    feature_maps: tuple[FeatureMapChoice, ...]
    outlier_patch_share: float
    bitops_8bit: float
    bitops: float
    bitops_model_8bit: float
    bitops_model: float
    bitops_8bit_own_plan: float
    quality: dict[str, float]
    search_seconds: float
    entropy_only: dict[str, int]
    entropy_only_quality: dict[str, float]
    steps: tuple[SearchStep, ...]
    flash_bytes: int
    chain: object = None
    notes: tuple[str, ...] = ()
    holdout_samples: int = 0
    #: the cost model's instructions per inference, expected over the calibration samples' patch chains, of this
    #: plan and of 8-bit patching's own plan (None: no joint search priced them)
    expected_instructions: float | None = None
    expected_instructions_8bit: float | None = None
    calib_samples: int = 0

    @property
    def checked_map(self) -> str:
        return self.vdpc.tensor

    @property
    def threshold(self) -> int:
        return self.vdpc.threshold
