"""The compile report as typed data: what report.json holds, what the summary prints and bench reads.

Every class is a frozen dataclass whose fields carry the values; ``to_json_dict()`` gives report.json's
structure, with its key names and key order (users and tools read that file, so the names are kept even
where the attribute is named differently, e.g. ``TflmArena.arena_bytes`` -> ``tflm_arena_bytes``).
Tuples become lists in the JSON; optional parts follow today's file: a key that was only written when a
value exists (``memory_profile.patched``, ``tflm_arena_note``) is still only written then.
"""

from __future__ import annotations

from dataclasses import dataclass


def _json_regions(regions: tuple["PatchRegion", ...]) -> dict[str, list[int]]:
    return {r.tensor: [r.top, r.left, r.bottom, r.right] for r in regions}


@dataclass(frozen=True)
class IOTensor:
    """A model input or output as the application sees it: int8 params and the layout permutation."""

    name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    layout_perm: tuple[int, ...]  # empty when the C layout is the model's

    def to_json_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "scale": self.scale, "zero_point": self.zero_point,
                "layout_perm": list(self.layout_perm)}


@dataclass(frozen=True)
class LayerReport:
    """One layer (a node that runs a kernel; aliases such as reshape are not layers)."""

    index: int
    name: str
    op: str
    source: str  # the model's op types it was made from, e.g. "Conv+Relu"
    input_shapes: tuple[tuple[int, ...], ...]  # activation inputs only
    output_shape: tuple[int, ...]
    macs: int
    arena_offset: int  # of its output (-1: not in the arena)
    input_offsets: tuple[int, ...]
    bitwidth: int  # of its output
    weight_bitwidth: int
    param_bytes: int  # flash of its constants and parameter arrays
    kernel: str | None  # the kernel implementation the schedule chose (None without a schedule)
    kernel_reason: str | None = None  # why it is not a fast kernel (None: it is, or no schedule)
    fast_kernel: bool = False  # an optimised implementation (ops.kernel.Kernel.fast), not the portable one

    def to_json_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "op": self.op, "source": self.source,
                "input_shapes": [list(s) for s in self.input_shapes], "output_shape": list(self.output_shape),
                "macs": self.macs, "arena_offset": self.arena_offset, "input_offsets": list(self.input_offsets),
                "bitwidth": self.bitwidth, "weight_bitwidth": self.weight_bitwidth, "param_bytes": self.param_bytes,
                "kernel": self.kernel, "kernel_reason": self.kernel_reason, "fast_kernel": self.fast_kernel}


@dataclass(frozen=True)
class MemoryProfile:
    """Bytes live at each step, layer by layer and (when a patch plan is taken) patched."""

    layerwise: tuple[int, ...]
    patched: tuple[int, ...] | None = None

    def to_json_dict(self) -> dict:
        out: dict = {"layerwise": list(self.layerwise)}
        if self.patched is not None:
            out["patched"] = list(self.patched)
        return out


@dataclass(frozen=True)
class PatchCandidate:
    """One (split, grid) the patch search tried."""

    stage_len: int
    grid: int
    peak: int  # bytes
    overhead: float  # recomputed MACs, a fraction of the model's
    instructions: int  # estimated by the cost model

    def to_json_dict(self) -> dict:
        return {"stage_len": self.stage_len, "grid": self.grid, "peak": self.peak, "overhead": self.overhead,
                "instructions": self.instructions}


@dataclass(frozen=True)
class PatchRegion:
    """The rows [top, bottom) and columns [left, right) of a tensor one patch computes or reads."""

    tensor: str
    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True)
class PatchPlanReport:
    """The patch plan taken: split, grid, MACs with and without recomputation, and each patch's regions."""

    split_layer: int
    split_tensor: str
    stage_layers: int
    grid: int
    row_bounds: tuple[int, ...]
    col_bounds: tuple[int, ...]
    macs_stage_layerwise: int
    macs_stage_patched: int
    overhead_macs: int
    overhead: float  # rounded to 4 digits, as report.json has always given it
    input_by_patch: bool
    regions: tuple[tuple[PatchRegion, ...], ...]  # one tuple per patch, row-major

    def to_json_dict(self) -> dict:
        return {"split_layer": self.split_layer, "split_tensor": self.split_tensor, "stage_layers": self.stage_layers,
                "grid": self.grid, "row_bounds": list(self.row_bounds), "col_bounds": list(self.col_bounds),
                "macs_stage_layerwise": self.macs_stage_layerwise, "macs_stage_patched": self.macs_stage_patched,
                "overhead_macs": self.overhead_macs, "overhead": self.overhead, "input_by_patch": self.input_by_patch,
                "regions": [_json_regions(p) for p in self.regions]}


@dataclass(frozen=True)
class PlanEstimate:
    """A plan as an objective picks it (``grid`` 0: layer by layer), with its estimated cost."""

    plan: str  # "layer by layer" or "5x5 patches over 12 layers"
    stage_layers: int
    grid: int
    peak_sram_bytes: int
    estimated_instructions: int
    overhead: float  # rounded to 4 digits
    fits: bool  # within the SRAM budget

    def to_json_dict(self) -> dict:
        return {"plan": self.plan, "stage_layers": self.stage_layers, "grid": self.grid,
                "peak_sram_bytes": self.peak_sram_bytes, "estimated_instructions": self.estimated_instructions,
                "overhead": self.overhead, "fits": self.fits}


@dataclass(frozen=True)
class PlanChoiceReport:
    """How the plan was chosen (``optimize``) and what the other objective (``alternative_optimize``) would
    take; ``alternative`` is None when the plan was forced or patching was off."""

    optimize: str  # "speed" or "memory"
    alternative_optimize: str
    budget_bytes: int
    max_patch_overhead: float | None
    candidates_tried: int
    cost_model: str  # what the instruction estimates were fitted on
    chosen: PlanEstimate
    alternative: PlanEstimate | None
    layerwise_instructions: int  # estimated, layer by layer (report.json: estimated_instructions_layerwise)

    def to_json_dict(self) -> dict:
        alt = None if self.alternative is None else {"optimize": self.alternative_optimize,
                                                     **self.alternative.to_json_dict()}
        return {"optimize": self.optimize, "budget_bytes": self.budget_bytes,
                "max_patch_overhead": self.max_patch_overhead, "candidates_tried": self.candidates_tried,
                "cost_model": self.cost_model, "chosen": self.chosen.to_json_dict(), "alternative": alt}


@dataclass(frozen=True)
class TflmArena:
    """TFLite Micro's arena for the same .tflite model, measured for comparison (``arena_bytes`` None:
    not measured, ``note`` says why)."""

    arena_bytes: int | None
    note: str | None = None


@dataclass(frozen=True)
class QuantizationReport:
    """Where each activation tensor's quantization parameters came from, by the tensor names the user knows
    (the ONNX / TFLite name when the IR renamed it): the model carried them (``from_model``), mcucompile
    calibrated them, or an op fixes them (e.g. a softmax or sigmoid output)."""

    from_model: tuple[str, ...]
    calibrated: tuple[str, ...]
    fixed: tuple[str, ...]

    @property
    def partly_quantized(self) -> bool:
        """Some params came from the model and some were calibrated: the summary says which."""
        return bool(self.from_model) and bool(self.calibrated)

    def to_json_dict(self) -> dict:
        return {"model": list(self.from_model), "calibrated": list(self.calibrated), "fixed": list(self.fixed)}


@dataclass(frozen=True)
class TensorCalibration:
    """How one calibrated tensor's range was chosen: the rule (e.g. "mse:2048", "minmax", "range" for an
    explicit override), the range chosen and the min/max of the calibration data."""

    name: str
    rule: str
    range: tuple[float, float]
    data_range: tuple[float, float]

    def to_json_dict(self) -> dict:
        return {"rule": self.rule, "range": [_sig(v) for v in self.range],
                "data_range": [_sig(v) for v in self.data_range]}


def _sig(v: float) -> float:
    """Six significant digits: report.json stays readable and stable across float summation orders."""
    return float(f"{float(v):.6g}")


def _metric(v: float) -> float | None:
    """A quality figure for report.json: six significant digits; None (null) where it is not finite (an SQNR
    of identical outputs is infinite; JSON has no infinity)."""
    import math

    return _sig(v) if math.isfinite(v) else None


@dataclass(frozen=True)
class CalibrationReport:
    """The calibration of the tensors mcucompile calibrated (quant.methods): the rule for all, whether
    bias correction ran (and on how many layers), and each tensor's rule and range."""

    method: str
    bias_correction: bool
    tensors: tuple[TensorCalibration, ...]
    corrected_layers: int = 0

    def to_json_dict(self) -> dict:
        return {"method": self.method, "bias_correction": self.bias_correction,
                "bias_corrected_layers": self.corrected_layers,
                "tensors": {t.name: t.to_json_dict() for t in self.tensors}}


#: a feature map's scales are listed in report.json up to this many (one per channel); above it, their count
#: and range (``scale_count``, ``scale_range``)
SCALES_LISTED = 16


@dataclass(frozen=True)
class FeatureMapReport:
    """One feature map of the QuantMCU low-bit chain: ``name`` as the model names it (``tensor``: the IR's),
    its bits, its scales (one per tensor, or one per channel) and zero point; ``checked``: the map the on-device
    outlier check reads (kept 8-bit); ``role``: "input" (the stage's input), "map" (made inside the stage, the
    maps VDQS chooses bits for) or "output" (the stage output, in the 8-bit model's params)."""

    name: str
    tensor: str
    bits: int
    scales: tuple[float, ...]
    zero_point: int
    checked: bool
    role: str = "map"

    def to_json_dict(self) -> dict:
        out: dict = {"name": self.name, "tensor": self.tensor, "role": self.role, "bits": self.bits}
        if len(self.scales) <= SCALES_LISTED:
            out["scales"] = [_sig(s) for s in self.scales]
        else:
            out["scale_count"] = len(self.scales)
            out["scale_range"] = [_sig(min(self.scales)), _sig(max(self.scales))]
        out["zero_point"] = self.zero_point
        out["checked"] = self.checked
        return out


@dataclass(frozen=True)
class SearchStepReport:
    """One step of the VDQS search: lower ``map`` (the model's name) to ``bits``; its score, the stage BitOPs
    it gives as a fraction of 8-bit patching's, the guard's metric on the held-back samples, kept or not."""

    map: str
    bits: int
    score: float
    bitops_ratio: float
    quality: float
    accepted: bool

    def to_json_dict(self) -> dict:
        return {"map": self.map, "bits": self.bits, "score": _sig(self.score), "bitops_ratio": _sig(self.bitops_ratio),
                "quality": _metric(self.quality), "accepted": self.accepted}


@dataclass(frozen=True)
class QuantmcuPlanReport:
    """A patch plan as QuantMCU reports it: the split layer (its index) and tensor, the stage's layers, the
    grid and (the plan taken) the s x s sub-patches an outlier patch's 8-bit chain runs as."""

    split_layer: int
    split_tensor: str
    stage_layers: int
    grid: int
    sub_patches: int | None = None

    def to_json_dict(self) -> dict:
        out: dict = {"split_layer": self.split_layer, "split_tensor": self.split_tensor,
                     "stage_layers": self.stage_layers, "grid": self.grid}
        if self.sub_patches is not None:
            out["sub_patches"] = self.sub_patches
        return out


@dataclass(frozen=True)
class QuantmcuReport:
    """What QuantMCU chose and measured (report.json's ``quantmcu`` object; docs/quantmcu.md, "Command line").

    BitOPs are per inference, expectations over the calibration samples' patch chains: stage (``bitops_8bit``:
    8-bit patching on the same split and grid; ``bitops``: this plan; ``bitops_8bit_own_plan``: 8-bit patching
    at its own best plan under the same budget) and model (``bitops_model*``). ``patch_outlier_share``: per
    patch (row-major over the grid), the share of calibration samples on which the check sent it to the 8-bit
    chain; ``quality``: the guard's metrics on the held-back samples against the 8-bit model."""

    options: tuple[tuple[str, object], ...]
    plan: QuantmcuPlanReport
    base_plan: QuantmcuPlanReport | None
    bitops_8bit: int
    bitops: int
    bitops_model_8bit: int
    bitops_model: int
    bitops_8bit_own_plan: int
    checked_map: str
    threshold: int
    outlier_patch_share: float
    patch_outlier_share: tuple[float, ...]
    feature_maps: tuple[FeatureMapReport, ...]
    guard: str
    floor: float | None
    quality: tuple[tuple[str, float], ...]
    entropy_only_bits: tuple[tuple[str, int], ...]
    entropy_only_quality: tuple[tuple[str, float], ...]
    search_steps: tuple[SearchStepReport, ...]
    search_seconds: float
    flash_bytes: int
    held_back_samples: int = 0  # the guard's samples (0: not given)
    calibration_samples: int = 0  # the samples VDPC and the low-bit chain were calibrated on
    notes: tuple[str, ...] = ()  # what the user should know about the search (e.g. maps frozen by the guard)
    #: the cost model's expected instructions per inference of this plan and of 8-bit patching's own (None: not priced)
    expected_instructions: int | None = None
    expected_instructions_8bit: int | None = None

    @staticmethod
    def _ratio(a: float, b: float) -> float:
        return a / b if b else 0.0

    @property
    def saving(self) -> float:
        """Stage BitOPs of 8-bit patching on the same split and grid over this plan's (2.0: half)."""
        return self._ratio(self.bitops_8bit, self.bitops)

    @property
    def saving_model(self) -> float:
        return self._ratio(self.bitops_model_8bit, self.bitops_model)

    @property
    def saving_own_plan(self) -> float:
        """Stage BitOPs of 8-bit patching at its own best plan over this plan's."""
        return self._ratio(self.bitops_8bit_own_plan, self.bitops)

    def quality_of(self, metric: str) -> float | None:
        return dict(self.quality).get(metric)

    def to_json_dict(self) -> dict:
        grid = self.plan.grid
        rows = [[_sig(v) for v in self.patch_outlier_share[r * grid:(r + 1) * grid]] for r in range(grid)]
        return {
            "options": dict(self.options),
            "plan": self.plan.to_json_dict(),
            "base_plan": self.base_plan.to_json_dict() if self.base_plan is not None else None,
            "bitops_8bit": self.bitops_8bit, "bitops": self.bitops, "saving": _sig(self.saving),
            "bitops_model_8bit": self.bitops_model_8bit, "bitops_model": self.bitops_model,
            "saving_model": _sig(self.saving_model),
            "bitops_8bit_own_plan": self.bitops_8bit_own_plan, "saving_own_plan": _sig(self.saving_own_plan),
            "expected_instructions": self.expected_instructions,
            "expected_instructions_8bit_own_plan": self.expected_instructions_8bit,
            "checked_map": self.checked_map, "threshold": self.threshold,
            "outlier_patch_share": _sig(self.outlier_patch_share), "patch_outlier_share": rows,
            "feature_maps": [m.to_json_dict() for m in self.feature_maps],
            "quality": {"guard": self.guard, "floor": self.floor, **{k: _metric(v) for k, v in self.quality},
                        "held_back_samples": self.held_back_samples, "calibration_samples": self.calibration_samples},
            "entropy_only": {"bits": dict(self.entropy_only_bits),
                             "quality": {k: _metric(v) for k, v in self.entropy_only_quality}},
            "search_steps": [s.to_json_dict() for s in self.search_steps],
            "search_seconds": round(self.search_seconds, 3),
            "flash_bytes": self.flash_bytes,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Report:
    """Everything report.json says about one compiled model (see :func:`mcucompile.report.build_report`)."""

    model: str  # the model path as given
    board: str
    peak_sram_bytes: int
    arena_bytes: int
    activation_bytes: int
    flash_bytes: int  # weights + code estimate
    weights_bytes: int
    code_bytes_estimate: int
    macs: int
    board_sram_bytes: int
    board_flash_bytes: int
    inputs: tuple[IOTensor, ...]
    outputs: tuple[IOTensor, ...]
    layers: tuple[LayerReport, ...]
    compiler_version: str
    notes: tuple[str, ...]
    source_format: str  # onnx (float, calibrated) | onnx-qdq | tflite
    peak_sram_layerwise_bytes: int
    memory_profile: MemoryProfile
    patch_candidates: tuple[PatchCandidate, ...]
    input_in_sram: str  # "whole" or "by patch (callback)"
    patch_plan: PatchPlanReport | None  # None: layer by layer
    plan_choice: PlanChoiceReport
    quantization: QuantizationReport
    tflm: TflmArena | None = None  # only for .tflite models
    rounding: str = "double"  # requantization rounding of the integer graph (arith.fixedpoint.ROUNDINGS)
    kernels: str = "auto"  # the --kernels policy (ops.kernel.KERNEL_POLICIES)
    calibration: CalibrationReport | None = None  # None: nothing calibrated (the model's own params)
    quantmcu: QuantmcuReport | None = None  # None: QuantMCU was not used (report.json has no such key then)

    @property
    def fast_mac_share(self) -> float:
        """Share of the model's MACs that run on fast kernels (0 to 1; 0 for a model without MACs)."""
        return sum(lay.macs for lay in self.layers if lay.fast_kernel) / self.macs if self.macs else 0.0

    @property
    def optimize(self) -> str:
        return self.plan_choice.optimize

    @property
    def estimated_instructions(self) -> int:
        """Instructions of one inference of the plan taken, estimated by the cost model: QuantMCU's expectation
        over the calibration samples' patch chains when it priced its plan, else the patch search's estimate
        (``plan_choice``, which describes how 8-bit patching chose)."""
        q = self.quantmcu
        if q is not None and q.expected_instructions is not None:
            return q.expected_instructions
        return self.plan_choice.chosen.estimated_instructions

    @property
    def estimated_instructions_layerwise(self) -> int:
        return self.plan_choice.layerwise_instructions

    @property
    def stage_layers(self) -> int:
        """Layers in the per-patch stage (0: layer by layer)."""
        return self.patch_plan.stage_layers if self.patch_plan is not None else 0

    def to_json_dict(self) -> dict:
        """report.json's content: plain dicts, lists, numbers and strings, ready for ``json.dumps``."""
        out = {
            "model": self.model, "board": self.board, "peak_sram_bytes": self.peak_sram_bytes,
            "arena_bytes": self.arena_bytes, "activation_bytes": self.activation_bytes,
            "flash_bytes": self.flash_bytes, "weights_bytes": self.weights_bytes,
            "code_bytes_estimate": self.code_bytes_estimate, "macs": self.macs,
            "board_sram_bytes": self.board_sram_bytes, "board_flash_bytes": self.board_flash_bytes,
            "inputs": [t.to_json_dict() for t in self.inputs], "outputs": [t.to_json_dict() for t in self.outputs],
            "layers": [lay.to_json_dict() for lay in self.layers],
            "compiler_version": self.compiler_version, "notes": list(self.notes), "source_format": self.source_format,
            "peak_sram_layerwise_bytes": self.peak_sram_layerwise_bytes,
            "memory_profile": self.memory_profile.to_json_dict(),
            "patch_candidates": [c.to_json_dict() for c in self.patch_candidates],
            "input_in_sram": self.input_in_sram,
            "patch_plan": self.patch_plan.to_json_dict() if self.patch_plan is not None else None,
            "optimize": self.optimize, "estimated_instructions": self.estimated_instructions,
            "estimated_instructions_layerwise": self.estimated_instructions_layerwise,
            "plan_choice": self.plan_choice.to_json_dict(),
        }
        if self.tflm is not None:
            out["tflm_arena_bytes"] = self.tflm.arena_bytes
            if self.tflm.note is not None:
                out["tflm_arena_note"] = self.tflm.note
        out["quantization_sources"] = self.quantization.to_json_dict()
        out["rounding"] = self.rounding
        out["kernels"] = self.kernels
        out["fast_mac_share"] = round(self.fast_mac_share, 6)
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_json_dict()
        if self.quantmcu is not None:
            out["quantmcu"] = self.quantmcu.to_json_dict()
        return out
