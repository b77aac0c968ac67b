"""Compile options, as the command line gives them (the Python API validates them the same way)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..errors import UserError
from ..ops.kernel import KERNEL_POLICIES
from ..quant.calibrate import DEFAULT_CALIB_SAMPLES
from ..quant.methods import CalibrationOptions
from ..quantmcu.options import QuantmcuOptions


@dataclass(frozen=True)
class PatchOptions:
    """How the per-patch stage (patch-based inference) is chosen: ``mode`` "auto" (search every split and
    grid by ``optimize``: "speed", the fastest plan that fits, or "memory", the lowest peak), "off" (layer by
    layer) or "forced" (``split`` layers on a ``patches`` x ``patches`` grid); ``max_overhead`` caps the
    recomputed MACs (0.2 = 20% of the model's); ``input_by_patch``: the application fills each input patch
    through a callback."""

    mode: str = "auto"
    split: int | None = None
    patches: int | None = None
    max_overhead: float | None = None
    input_by_patch: bool = False
    optimize: str = "speed"

    def __post_init__(self):
        if self.mode not in ("auto", "off", "forced"):
            raise UserError(f"patch mode {self.mode!r}: give 'auto', 'off' or 'forced'")
        if self.optimize not in ("speed", "memory"):
            raise UserError(f"optimize (--optimize) {self.optimize!r}: give 'speed' or 'memory'")
        if self.max_overhead is not None and not (math.isfinite(self.max_overhead) and self.max_overhead >= 0):
            raise UserError(f"max_overhead (--max-patch-overhead) {self.max_overhead}: give a finite fraction of at "
                            "least 0 (0.2 = 20% more MACs)")
        for flag, v in (("split (--split)", self.split), ("patches (--patches)", self.patches)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise UserError(f"{flag} {v}: give a number of at least 1")
        if self.mode == "forced" and (self.split is None or self.patches is None):
            raise UserError("a forced patch plan needs both split (--split) and patches (--patches)")


@dataclass(frozen=True)
class CompileOptions:
    board: str = "nucleo"
    calib: str | None = None
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    name: str = "model"
    input_shapes: dict[str, tuple[int, ...]] | None = None
    progress: bool = True
    patch: PatchOptions = field(default_factory=PatchOptions)
    sram_limit: int | None = None  # tighter SRAM budget than the board's
    console: str | None = None  # firmware output: "uart" or "semihosting" (default: uart on real boards)
    #: requantization rounding (arith.fixedpoint): "auto" (TFLite's double rounding, except single
    #: rounding for ONNX QDQ models not converted from TFLite: ONNX QDQ semantics, as onnxruntime runs
    #: them), "double" or "single"
    rounding: str = "auto"
    #: kernel implementations (ops.kernel.KERNEL_POLICIES): "auto", the fastest mcucompile has for the board's
    #: core (the DSP extension's SIMD32 kernels on Cortex-M4/M7/M55), "portable", the reference C kernels, or
    #: "cmsis-nn", Arm's CMSIS-NN wherever it is bit-exact and "auto" elsewhere (ops/cmsis_nn.py; building
    #: needs CMSIS_NN_DIR)
    kernels: str = "auto"
    #: how calibrated activation ranges are chosen (quant.methods: --calibration, per-tensor overrides,
    #: --bias-correction); a model's own (QDQ / TFLite) params are never recalibrated
    calibration: CalibrationOptions = field(default_factory=CalibrationOptions)
    #: QuantMCU (--quantmcu): value-driven mixed precision in the per-patch stage (quantmcu/options.py); None: off
    quantmcu: QuantmcuOptions | None = None

    def __post_init__(self):
        """The Python API refuses what the command line refuses, with the same messages."""
        if not isinstance(self.calib_samples, int) or self.calib_samples < 1:
            raise UserError(f"calib_samples (--calib-samples) {self.calib_samples}: give a number of at least 1")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", str(self.name)):
            raise UserError(f"name (--name) {self.name!r}: give a C identifier, e.g. 'kws'")
        if not isinstance(self.patch, PatchOptions):
            raise UserError(f"patch: give a PatchOptions, not {type(self.patch).__name__}")
        if self.sram_limit is not None and (not isinstance(self.sram_limit, int) or self.sram_limit < 1):
            raise UserError(f"sram_limit (--sram-limit) {self.sram_limit}: give a number of bytes of at least 1")
        if self.console not in (None, "uart", "semihosting"):
            raise UserError(f"console (--console) {self.console!r}: give 'uart' or 'semihosting'")
        if self.rounding not in ("auto", "double", "single"):
            raise UserError(f"rounding (--rounding) {self.rounding!r}: give 'auto', 'double' or 'single'")
        if not isinstance(self.calibration, CalibrationOptions):
            raise UserError(f"calibration: give a CalibrationOptions, not {type(self.calibration).__name__}")
        if self.quantmcu is not None and not isinstance(self.quantmcu, QuantmcuOptions):
            raise UserError(f"quantmcu: give a QuantmcuOptions (or None), not {type(self.quantmcu).__name__}")
        if self.kernels not in KERNEL_POLICIES:
            choices = " or ".join(f"'{k}'" for k in KERNEL_POLICIES)
            raise UserError(f"kernels (--kernels) {self.kernels!r}: give {choices}")
