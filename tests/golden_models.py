"""The reference model set whose int8 outputs are recorded (tools/record_golden.py) and must not change
under structural work: MNIST, the four MLPerf Tiny float models, the four int8 .tflite, and forced patch
plans of VWW and ResNet-8 (one with the input filled by patch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conftest import REPO, SHARED_MODELS

from mcucompile.api import CompileOptions, PatchOptions, compile_model, simulate

GOLDEN_FILE = REPO / "tests" / "data" / "golden" / "outputs.npz"
SAMPLES = 16
MNIST = REPO / "models" / "mnist"


@dataclass(frozen=True)
class GoldenCase:
    name: str
    model: Path
    options: dict = field(default_factory=dict)


def golden_cases() -> list[GoldenCase]:
    cases = [GoldenCase("mnist", MNIST / "mnist_cnn.onnx", {"calib": str(MNIST / "mnist_calib_200.npz")})]
    for m in ("kws_dscnn", "resnet8", "vww_mbv1_025", "ad_autoencoder"):
        cases.append(GoldenCase(f"{m}_float", SHARED_MODELS / f"{m}_float.onnx", {"calib_samples": 16}))
        cases.append(GoldenCase(f"{m}_int8", SHARED_MODELS / f"{m}_int8.tflite"))
    cases.append(GoldenCase("vww_patched_4x4", SHARED_MODELS / "vww_mbv1_025_int8.tflite",
                            {"patch": PatchOptions("forced", 4, 4)}))
    cases.append(GoldenCase("resnet8_patched_2x2_by_patch", SHARED_MODELS / "resnet8_float.onnx",
                            {"calib_samples": 16, "patch": PatchOptions("forced", 4, 2, input_by_patch=True)}))
    return cases


def compile_case(case: GoldenCase):
    return compile_model(case.model, CompileOptions(board="host", progress=False, **case.options))


def case_inputs(compiled) -> np.ndarray:
    """Deterministic int8 inputs in the physical layout: seeded uniform over the whole int8 range."""
    g = compiled.graph
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(20261201)
    return rng.integers(-128, 128, (SAMPLES,) + tuple(shape), dtype=np.int64).astype(np.int8)


def run_case(case: GoldenCase) -> list[np.ndarray]:
    compiled = compile_case(case)
    return simulate(compiled, case_inputs(compiled))


__all__ = ["GOLDEN_FILE", "GoldenCase", "case_inputs", "compile_case", "golden_cases", "run_case"]
