"""Shared helpers: tiny ONNX model builders and the float / int8 / C checks every op test runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcucompile.api import CompileOptions, compile_model, verify_host
from mcucompile.frontend import load_onnx
from mcucompile.passes import canonicalize
from mcucompile.quant.simulate import run_float, to_logical, to_physical

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = Path(os.environ.get("MCUCOMPILE_SHARED_MODELS", REPO.parent / "shared" / "models" / "mlperf_tiny"))


def make_model(nodes, input_shape, output_names, inits: dict[str, np.ndarray], opset: int = 13,
               input_name: str = "x") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in output_names],
        [numpy_helper.from_array(v.astype(np.float32) if v.dtype == np.float64 else v, k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(m)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in m.graph.output:
        if out.name in known and known[out.name].type.tensor_type.HasField("shape"):
            out.CopyFrom(known[out.name])
    onnx.checker.check_model(m)
    return m


def ort_run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def check_float(path: Path, x: np.ndarray, rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Our float IR path equals onnxruntime."""
    g = canonicalize(load_onnx(path))
    ref = ort_run(path, x)
    res = run_float(g, {g.inputs[0]: to_physical(g, g.inputs[0], x)})
    for name, r in zip(g.outputs, ref):
        ours = to_logical(g, name, res[name])
        np.testing.assert_allclose(ours.reshape(r.shape), r, rtol=rtol, atol=atol)


def check_int8(path: Path, input_shape, tmp_path: Path, samples: int = 4, seed: int = 0, calib=None):
    """Compile with calibration data, build for the host: C output must equal the simulator byte for byte."""
    rng = np.random.default_rng(seed)
    if calib is None:
        calib = rng.standard_normal((16,) + tuple(input_shape[1:])).astype(np.float32)
    cpath = tmp_path / "calib.npy"
    np.save(cpath, calib)
    compiled = compile_model(path, CompileOptions(board="host", calib=str(cpath), progress=False))
    res = verify_host(compiled, calib[:samples], build_dir=tmp_path / "host")
    assert res.bit_exact, f"C differs from simulator in {res.mismatched_bytes} bytes\n{compiled.graph.to_text()}"
    return compiled, res


def save(model: onnx.ModelProto, tmp_path: Path, name: str = "m.onnx") -> Path:
    p = tmp_path / name
    onnx.save(model, str(p))
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
