"""Compile options, as the command line gives them (the Python API validates them the same way)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..quant.calibrate import DEFAULT_CALIB_SAMPLES


@dataclass(frozen=True)
class CompileOptions:
    board: str = "nucleo"
    calib: str | None = None
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    name: str = "model"
    input_shapes: dict[str, tuple[int, ...]] | None = None
    progress: bool = True
    patch: str = "auto"  # auto: search (split, grid) for the lowest peak SRAM | off: layer by layer | forced
    split: int | None = None  # forced: number of layers in the per-patch stage
    patches: int | None = None  # forced: grid size n (n x n patches)
    sram_limit: int | None = None  # tighter SRAM budget than the board's
    max_patch_overhead: float | None = None  # cap on extra MACs of the stage (0.2 = 20%)
    input_by_patch: bool = False  # the application fills each input patch through a callback
    console: str | None = None  # firmware output: "uart" or "semihosting" (default: uart on real boards)
    optimize: str = "speed"  # speed: the fastest plan that fits the budget | memory: the lowest peak SRAM

    def __post_init__(self):
        """The Python API refuses what the command line refuses, with the same messages."""
        import math
        import re

        if not isinstance(self.calib_samples, int) or self.calib_samples < 1:
            raise UserError(f"calib_samples (--calib-samples) {self.calib_samples}: give a number of at least 1")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", str(self.name)):
            raise UserError(f"name (--name) {self.name!r}: give a C identifier, e.g. 'kws'")
        if self.patch not in ("auto", "off", "forced"):
            raise UserError(f"patch {self.patch!r}: give 'auto', 'off' or 'forced'")
        if self.optimize not in ("speed", "memory"):
            raise UserError(f"optimize (--optimize) {self.optimize!r}: give 'speed' or 'memory'")
        if self.sram_limit is not None and (not isinstance(self.sram_limit, int) or self.sram_limit < 1):
            raise UserError(f"sram_limit (--sram-limit) {self.sram_limit}: give a number of bytes of at least 1")
        if self.max_patch_overhead is not None and not (math.isfinite(self.max_patch_overhead)
                                                        and self.max_patch_overhead >= 0):
            raise UserError(f"max_patch_overhead (--max-patch-overhead) {self.max_patch_overhead}: give a finite "
                            "fraction of at least 0 (0.2 = 20% more MACs)")
        for flag, v in (("split (--split)", self.split), ("patches (--patches)", self.patches)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise UserError(f"{flag} {v}: give a number of at least 1")
        if self.console not in (None, "uart", "semihosting"):
            raise UserError(f"console (--console) {self.console!r}: give 'uart' or 'semihosting'")


