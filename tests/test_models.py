"""End to end on real models: the four MLPerf Tiny float models and the MNIST example."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, compile_model, verify_host

MLPERF = ["resnet8_float", "vww_mbv1_025_float", "kws_dscnn_float", "ad_autoencoder_float"]


@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_float_models_bit_exact(name, tmp_path):
    path = SHARED_MODELS / f"{name}.onnx"
    compiled = compile_model(path, CompileOptions(board="nucleo", progress=False))
    res = verify_host(compiled, compiled.calib[:16], build_dir=tmp_path)
    print(f"\n{name}: {res.format()}")
    assert res.bit_exact
    assert res.outputs[0].cosine > 0.95
    rep = compiled.report
    assert rep.peak_sram_bytes == compiled.plan.arena_size > 0
    assert rep.macs == sum(layer.macs for layer in rep.layers) > 0


def test_mnist_int8_accuracy_within_one_point(tmp_path):
    """Measured by the compiled C on 2,000 real MNIST test images, not by the simulator."""
    m = REPO / "models" / "mnist"
    compiled = compile_model(m / "mnist_cnn.onnx", CompileOptions(calib=str(m / "mnist_calib_200.npz"), progress=False))
    with np.load(m / "mnist_test_2000.npz") as z:
        x, y = z["x"].astype(np.float32) / 255.0, z["y"]
    res = verify_host(compiled, x, y, build_dir=tmp_path)
    print(f"\nmnist: {res.format()}")
    assert res.bit_exact
    assert res.accuracy_float > 0.95
    assert res.accuracy_float - res.accuracy_int8 <= 0.01
