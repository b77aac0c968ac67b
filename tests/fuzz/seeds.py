"""Seed models for the fuzzer: small ONNX graphs built here, the repository's MNIST model, the MLPerf
Tiny models in shared/ (float ONNX, QDQ ONNX, int8 .tflite) and the small .tflite op models in
tests/data/tflite/.

Every seed compiles cleanly (exit 0) at the commit that adds it; a seed that does not is a finding of
its own, so ``check_seeds`` in the runner reports it apart from the mutants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = Path(os.environ.get("MCUCOMPILE_SHARED_MODELS", REPO.parent / "shared" / "models" / "mlperf_tiny"))
TFLITE_DATA = REPO / "tests" / "data" / "tflite"


@dataclass(frozen=True)
class Seed:
    """One seed model: its name, format (``onnx`` or ``tflite``) and file bytes."""

    name: str
    fmt: str
    data: bytes


def _model(nodes, x_shape, outputs, inits: dict[str, np.ndarray], opset: int = 13) -> bytes:
    graph = helper.make_graph(
        nodes, "seed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # declared shapes everywhere (outputs and value_info), so shape mutations have something to contradict
    m = onnx.shape_inference.infer_shapes(m)
    onnx.checker.check_model(m)
    return m.SerializeToString()


def _f32(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def small_onnx_seeds() -> list[Seed]:
    """Tiny float and QDQ graphs covering the ONNX converters (built deterministically)."""
    rng = np.random.default_rng(8)
    seeds = []
    # conv -> relu -> maxpool -> flatten -> gemm -> softmax
    seeds.append(Seed("cnn", "onnx", _model([
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f1"], axis=1),
        helper.make_node("Gemm", ["f1", "w2", "b2"], ["g1"], transB=1),
        helper.make_node("Softmax", ["g1"], ["y"], axis=1),
    ], (1, 2, 8, 8), ["y"], {"w1": _f32(rng, 4, 2, 3, 3), "b1": _f32(rng, 4), "w2": _f32(rng, 5, 64),
                            "b2": _f32(rng, 5)})))
    # depthwise conv + batchnorm + residual add + clip + global average pool
    seeds.append(Seed("dw_residual", "onnx", _model([
        helper.make_node("Conv", ["x", "dw"], ["d1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("BatchNormalization", ["d1", "g", "be", "mu", "var"], ["bn"], epsilon=1e-5),
        helper.make_node("Add", ["bn", "x"], ["a1"]),
        helper.make_node("Clip", ["a1", "lo", "hi"], ["c1"]),
        helper.make_node("GlobalAveragePool", ["c1"], ["y"]),
    ], (1, 4, 6, 6), ["y"], {"dw": _f32(rng, 4, 1, 3, 3), "g": np.abs(_f32(rng, 4)) + 0.5, "be": _f32(rng, 4),
                            "mu": _f32(rng, 4), "var": np.abs(_f32(rng, 4)) + 0.5,
                            "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)})))
    # pad + strided conv + sigmoid + concat + average pool + reshape + matmul
    seeds.append(Seed("concat_pool", "onnx", _model([
        helper.make_node("Pad", ["x", "pads"], ["px"], mode="constant"),
        helper.make_node("Conv", ["px", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Sigmoid", ["c1"], ["s1"]),
        helper.make_node("Conv", ["px", "w2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Concat", ["s1", "c2"], ["cat"], axis=1),
        helper.make_node("AveragePool", ["cat"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["ap", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "wm"], ["y"]),
    ], (1, 3, 9, 9), ["y"], {"pads": np.array([0, 0, 1, 1, 0, 0, 0, 0], np.int64), "w1": _f32(rng, 3, 3, 3, 3),
                            "w2": _f32(rng, 2, 3, 3, 3), "shape": np.array([1, -1], np.int64),
                            "wm": _f32(rng, 20, 6)})))
    # QDQ: quantized input, int8 conv weights, int32 bias, requantized output
    qnodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], axis=0),
        helper.make_node("Conv", ["xd", "wd", "bd"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("QuantizeLinear", ["r1", "ys", "yz"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
    ]
    ws = (np.abs(rng.standard_normal(3)) * 0.01 + 0.005).astype(np.float32)
    xs = np.float32(0.02)
    seeds.append(Seed("qdq_conv", "onnx", _model(qnodes, (1, 2, 6, 6), ["y"], {
        "xs": np.array(xs, np.float32), "xz": np.array(-3, np.int8),
        "wq": rng.integers(-127, 128, (3, 2, 3, 3)).astype(np.int8), "ws": ws, "wz": np.zeros(3, np.int8),
        "bq": rng.integers(-500, 500, 3).astype(np.int32), "bs": (ws * xs).astype(np.float32),
        "bz": np.zeros(3, np.int32), "ys": np.array(0.05, np.float32), "yz": np.array(-128, np.int8)})))
    return seeds


def file_seeds(include_large: bool = True) -> list[Seed]:
    """Seed files on disk: MNIST, the MLPerf Tiny models (when shared/ is present), the small .tflite ops."""
    paths = [REPO / "models" / "mnist" / "mnist_cnn.onnx"]
    tiny = ["kws_dscnn", "resnet8", "ad_autoencoder"] + (["vww_mbv1_025"] if include_large else [])
    for name in tiny:
        for suffix in ("_float.onnx", "_int8_qdq.onnx", "_int8.tflite"):
            paths.append(SHARED_MODELS / f"{name}{suffix}")
    paths += sorted(p for p in TFLITE_DATA.glob("*.tflite") if not p.name.startswith(("lstm", "int16")))
    seeds = []
    for p in paths:
        if p.exists():
            seeds.append(Seed(p.stem, "tflite" if p.suffix == ".tflite" else "onnx", p.read_bytes()))
    return seeds


def all_seeds(include_large: bool = True) -> list[Seed]:
    """Every seed, small built ones first; deterministic order."""
    return small_onnx_seeds() + file_seeds(include_large)
