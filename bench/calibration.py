#!/usr/bin/env python3
"""Benchmark (measures, asserts nothing): how close each calibration method brings mcucompile's int8 model to
the float model, next to TFLite's converter (the MLPerf Tiny int8 .tflite run exactly as TFLite Micro runs
it: our simulator, bit-exact with TFLite Micro) on the same inputs.

Per model and method (with and without --bias-correction): SQNR of the int8 output against the float
model's (primary; onnxruntime float as the signal), top-1 agreement with the float model, and for MNIST the
labelled accuracy. Inputs:

- VWW (real): crops of scikit-image's photos (tools/photo_crops.py), 100 calibration crops from one half of
  every photo, 200 test crops from the other half (no pixel shared), 96x96 in [0, 1]. "VWW+outliers"
  calibrates on the same photos plus two saturated synthetic images (colorwheel, logo): the situation of
  issue 12, where one crop of saturated hues sets the first map's min/max 3x wider than real photos do.
- MNIST (real): models/mnist, 200 calibration images, the 2,000 labelled test images. No TFLite int8 model.
- ResNet-8 ("real-ish"): the same photo crops at 32x32, 0..255 (not CIFAR-10, which is not offline).
- KWS, AD (synthetic only): uniform over the input range of the model's own int8 TFLite release;
  no real MFCC / spectrogram data is offline.

Usage: python bench/calibration.py [--models vww,mnist] [--methods minmax,mse] [--no-bias-correction]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from mcucompile.api import CompileOptions, PatchOptions, compile_model  # noqa: E402
from mcucompile.api.library import quantize_input  # noqa: E402
from mcucompile.api.verify import agreement, onnx_reference, simulate  # noqa: E402
from mcucompile.ops.base import dequantize_values  # noqa: E402
from mcucompile.quant.methods import CalibrationOptions, CalibrationRule  # noqa: E402
from mcucompile.quant.simulate import to_logical  # noqa: E402
from photo_crops import PHOTOS, photo_crops  # noqa: E402

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"
MNIST = REPO / "models" / "mnist"
METHODS = ("minmax", "percentile:99.99", "percentile:99.9", "mse", "kl")
OFF = PatchOptions(mode="off")


def synthetic(name: str, shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    c = compile_model(SHARED / f"{name}_int8.tflite", CompileOptions(board="host", progress=False, patch=OFF))
    q = c.graph.tensors[c.graph.inputs[0]].quant
    lo, hi = (-128 - q.zp) * q.s, (127 - q.zp) * q.s
    return np.random.default_rng(seed).uniform(lo, hi, (n, *shape)).astype(np.float32)


def datasets(names: list[str]) -> dict:
    """name -> (float model, int8 tflite or None, calibration, test inputs, labels or None, data kind)."""
    out = {}
    for name in names:
        if name == "vww":
            out[name] = (SHARED / "vww_mbv1_025_float.onnx", SHARED / "vww_mbv1_025_int8.tflite",
                         photo_crops(100, (96, 96), "calib"), photo_crops(200, (96, 96), "test"), None, "real")
        elif name == "vww+outliers":
            out[name] = (SHARED / "vww_mbv1_025_float.onnx", SHARED / "vww_mbv1_025_int8.tflite",
                         photo_crops(100, (96, 96), "calib", photos=PHOTOS + ("colorwheel", "logo")),
                         photo_crops(200, (96, 96), "test"), None, "real")
        elif name == "mnist":
            test = np.load(MNIST / "mnist_test_2000.npz")
            out[name] = (MNIST / "mnist_cnn.onnx", None, np.load(MNIST / "mnist_calib_200.npz")["x"].astype(np.float32),
                         test["x"].astype(np.float32) / 255.0, test["y"], "real")
        elif name == "resnet8":
            out[name] = (SHARED / "resnet8_float.onnx", SHARED / "resnet8_int8.tflite",
                         255.0 * photo_crops(100, (32, 32), "calib"), 255.0 * photo_crops(200, (32, 32), "test"), None,
                         "real-ish (photo crops)")
        elif name == "kws":
            out[name] = (SHARED / "kws_dscnn_float.onnx", SHARED / "kws_dscnn_int8.tflite",
                         synthetic("kws_dscnn", (49, 10, 1), 100, 0), synthetic("kws_dscnn", (49, 10, 1), 200, 1), None,
                         "synthetic")
        elif name == "ad":
            out[name] = (SHARED / "ad_autoencoder_float.onnx", SHARED / "ad_autoencoder_int8.tflite",
                         synthetic("ad_autoencoder", (640,), 100, 0), synthetic("ad_autoencoder", (640,), 200, 1), None,
                         "synthetic")
    return out


def int8_outputs(compiled, x: np.ndarray) -> np.ndarray:
    """The simulator's (= the C code's) output, dequantized, logical layout, [N, size]."""
    g = compiled.graph
    name = g.outputs[0]
    q = g.tensors[name].quant
    outs = simulate(compiled, quantize_input(compiled, x))[0]
    return np.stack([to_logical(g, name, dequantize_values(o.reshape(g.tensors[name].shape), q)).reshape(-1)
                     for o in outs])


def row(label: str, y: np.ndarray, ref: np.ndarray, labels, seconds: float | None) -> str:
    top1, sqnr, _ = agreement(y, ref)
    acc = f"{100 * np.mean(y.argmax(1) == labels):6.2f}%" if labels is not None else "      -"
    t = f"{seconds:6.1f}" if seconds is not None else "     -"
    return f"  {label:<31} {sqnr:8.2f} {100 * top1:8.2f}% {acc} {t}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vww,vww+outliers,mnist,resnet8,kws,ad")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--no-bias-correction", action="store_true", help="skip the bias-corrected rows")
    args = p.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, tflite, calib, test, labels, kind) in datasets(args.models.split(",")).items():
            if not model.exists():
                print(f"{name}: model missing ({model})")
                continue
            calib_path = Path(tmp) / f"{name}_calib.npy"
            np.save(calib_path, calib)
            ref = onnx_reference(model, test)[0].reshape(len(test), -1)
            print(f"\n{name}: {kind} inputs, {len(calib)} calibration / {len(test)} test")
            print(f"  {'quantization':<31} {'SQNR dB':>8} {'top-1 agr':>9} {'accuracy':>7} {'time s':>6}")
            if labels is not None:
                print(f"  {'float (onnxruntime)':<31} {'inf':>8} {100.0:8.2f}% {100 * np.mean(ref.argmax(1) == labels):6.2f}%")
            if tflite is not None and tflite.exists():
                c = compile_model(tflite, CompileOptions(board="host", progress=False, patch=OFF))
                print(row("TFLite converter (int8)", int8_outputs(c, test), ref, labels, None))
            if name.startswith("vww"):
                # issue 12's comparison: the default without --calib (32 synthetic uniform samples)
                c = compile_model(model, CompileOptions(board="host", progress=False, patch=OFF))
                print(row("minmax, synthetic (no --calib)", int8_outputs(c, test), ref, labels, None))
            c = compile_model(model, CompileOptions(board="host", progress=False, patch=OFF, calib=str(calib_path)))
            cal = c.report.calibration
            print(row(f"default ({cal.method}{' + b.c.' if cal.bias_correction else ''})", int8_outputs(c, test),
                      ref, labels, None))
            for bc in (False,) if args.no_bias_correction else (False, True):
                for method in args.methods.split(","):
                    t0 = time.time()
                    opts = CalibrationOptions(CalibrationRule.parse(method), bias_correction=bc, auto=False)
                    c = compile_model(model, CompileOptions(board="host", progress=False, patch=OFF,
                                                            calib=str(calib_path), calibration=opts))
                    dt = time.time() - t0
                    print(row(f"{method}{' + bias corr.' if bc else ''}", int8_outputs(c, test), ref, labels, dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
