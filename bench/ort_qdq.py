#!/usr/bin/env python3
"""Benchmark (measures, asserts nothing): models quantized by onnxruntime's own ``quantize_static`` (QDQ)
compiled by mcucompile, our C on the host against onnxruntime running the same QDQ model as users run it
(the default session, which fuses Q/DQ pairs into QLinear kernels).

Per model and quantization: output top-1 agreement, SQNR (onnxruntime as the signal) and the share of
output bytes within 1 LSB; MNIST on its 2,000 labelled test images also the accuracy of our C, of
onnxruntime's QDQ execution and of the float model; ResNet-8 and KWS on 200 seeded synthetic inputs (no
real data for them is offline), uniform over the input range of the model's own int8 TFLite release
(ResNet-8: pixels 0..255; KWS: its MFCC range), since inputs outside the model's domain give outputs
whose top-1 is a near-tie. Calibration: 16 samples (MNIST: real training images; others seeded the
same way), as the issue's user did. Target: >= 99% top-1 agreement; MNIST accuracy within 1 point
of onnxruntime's QDQ accuracy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from mcucompile.api import CompileOptions, compile_model, verify_host  # noqa: E402
from mcucompile.api.verify import onnx_reference  # noqa: E402
from mcucompile.errors import UserError  # noqa: E402
from ort_quantize import quantize_with_onnxruntime  # noqa: E402

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"
MNIST = REPO / "models" / "mnist"
MODELS = {
    "mnist_cnn": MNIST / "mnist_cnn.onnx",
    "resnet8": SHARED / "resnet8_float.onnx",
    "kws_dscnn": SHARED / "kws_dscnn_float.onnx",
}
#: name -> (activations, per-channel weights, op types left in float)
VARIANTS = {
    "int8 per-channel": ("int8", True, ()),
    "uint8 per-tensor": ("uint8", False, ()),
    "int8, Add in float": ("int8", True, ("Add",)),
}
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm", "Add", "Mul", "Relu", "Clip", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "Concat", "Softmax", "Sigmoid", "Reshape", "Transpose", "Resize")


def data_for(name: str, path: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(calibration samples, test inputs, test labels or None), float32 in the model's input layout."""
    import onnx

    if name == "mnist_cnn":
        calib = np.load(MNIST / "mnist_calib_200.npz")["x"][:16].astype(np.float32)
        test = np.load(MNIST / "mnist_test_2000.npz")
        return calib, test["x"].astype(np.float32) / 255.0, test["y"]
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value or 1 for d in dims)[1:]
    lo, hi = input_domain(name)
    calib = np.random.default_rng(0).uniform(lo, hi, (16, *shape)).astype(np.float32)
    test = np.random.default_rng(1).uniform(lo, hi, (n, *shape)).astype(np.float32)
    return calib, test, None


def input_domain(name: str) -> tuple[float, float]:
    """The real input range of the model's int8 TFLite release (its input scale and zero point)."""
    compiled = compile_model(SHARED / f"{name}_int8.tflite", CompileOptions(board="host", progress=False))
    q = compiled.graph.tensors[compiled.graph.inputs[0]].quant
    return (-128 - q.zp) * q.s, (127 - q.zp) * q.s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("-n", "--samples", type=int, default=200, help="synthetic test inputs per model (default 200)")
    args = p.parse_args()
    print(f"{'model':<10} {'quantize_static':<19} {'inputs':>6} {'top-1 agr':>9} {'SQNR dB':>8} {'<=1 LSB':>8} "
          f"{'acc C':>7} {'acc ORT QDQ':>11} {'acc float':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = MODELS[name]
            if not path.exists():
                print(f"{name:<10} (model missing: {path})")
                continue
            calib, x, y = data_for(name, path, args.samples)
            acc_float = None
            if y is not None:
                acc_float = float(np.mean(onnx_reference(path, x)[0].reshape(len(y), -1).argmax(1) == y))
            for label, (acts, per_channel, floats) in VARIANTS.items():
                qdq = Path(tmp) / f"{name}_{acts}_{per_channel}_{len(floats)}.onnx"
                ops = tuple(o for o in QUANTIZED_OPS if o not in floats) if floats else None
                quantize_with_onnxruntime(path, qdq, calib, acts, per_channel, op_types=ops)
                calib_file = Path(tmp) / f"{name}_calib.npz"
                np.savez(calib_file, x=calib)  # for the float islands, as a user passes --calib
                try:
                    compiled = compile_model(qdq, CompileOptions(board="host", calib=str(calib_file), progress=False))
                    res = verify_host(compiled, x, y, references=("onnxruntime-qdq",))
                except UserError as e:
                    print(f"{name:<10} {label:<19} refused: {e}")
                    continue
                if not res.bit_exact:
                    print(f"{name:<10} {label:<19} C differs from the simulator in {res.mismatched_bytes} bytes")
                    continue
                o = res.outputs[0]
                acc = (f"{100 * res.accuracy_int8:6.2f}% {100 * res.accuracy_reference:10.2f}% {100 * acc_float:8.2f}%"
                       if y is not None else f"{'-':>7} {'-':>11} {'-':>9}")
                print(f"{name:<10} {label:<19} {len(x):>6} {100 * o.top1_agreement:8.1f}% {o.sqnr_db:8.1f} "
                      f"{100 * o.within_1lsb:7.2f}% {acc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
