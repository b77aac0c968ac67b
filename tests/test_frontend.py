"""Front end details: opsets 11-18, calibration from an image folder, layout handling."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, version_converter

from conftest import REPO, check_float, check_int8, make_model, save
from mcucompile.api import CompileOptions, compile_model, verify_host
from mcucompile.quant.calibrate import load_calibration

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"


def _opset_model(opset: int) -> onnx.ModelProto:
    rng = np.random.default_rng(opset)
    reduce = (helper.make_node("ReduceMean", ["p", "axes"], ["g"], keepdims=1) if opset >= 18
              else helper.make_node("ReduceMean", ["p"], ["g"], axes=[2, 3], keepdims=1))
    squeeze = (helper.make_node("Squeeze", ["g", "sq"], ["f"]) if opset >= 13
               else helper.make_node("Squeeze", ["g"], ["f"], axes=[2, 3]))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("Pad", ["r", "pads"], ["pd"]),
        helper.make_node("MaxPool", ["pd"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        reduce, squeeze,
        helper.make_node("Gemm", ["f", "fc", "b"], ["l"], transB=1),
        helper.make_node("Softmax", ["l"], ["y"], axis=1),
    ]
    inits = {"w": rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "lo": np.array(0, np.float32),
             "hi": np.array(6, np.float32), "pads": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64),
             "fc": rng.standard_normal((4, 6)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32)}
    if opset >= 18:
        inits["axes"] = np.array([2, 3], np.int64)
    if opset >= 13:
        inits["sq"] = np.array([2, 3], np.int64)
    return make_model(nodes, [1, 3, 9, 9], ["y"], inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 12, 13, 14, 15, 16, 17, 18])
def test_opsets_11_to_18(opset, tmp_path):
    p = save(_opset_model(opset), tmp_path)
    rng = np.random.default_rng(0)
    check_float(p, rng.standard_normal((1, 3, 9, 9)).astype(np.float32))
    check_int8(p, [1, 3, 9, 9], tmp_path)


@pytest.mark.parametrize("opset", [13, 15, 17])
def test_mnist_converted_to_newer_opsets(opset, tmp_path):
    model = version_converter.convert_version(onnx.load(str(MNIST)), opset)
    p = tmp_path / f"mnist_opset{opset}.onnx"
    onnx.save(model, str(p))
    with np.load(REPO / "models" / "mnist" / "mnist_test_2000.npz") as z:
        x = z["x"][:3].astype(np.float32) / 255.0
    check_float(p, x[:1])
    compiled = compile_model(p, CompileOptions(calib=str(REPO / "models" / "mnist" / "mnist_calib_200.npz"), progress=False))
    assert verify_host(compiled, x, build_dir=tmp_path / 'host').bit_exact


def test_calibration_from_image_folder(tmp_path):
    from PIL import Image

    with np.load(REPO / "models" / "mnist" / "mnist_test_2000.npz") as z:
        imgs = z["x"][:8, :, :, 0]
    folder = tmp_path / "images"
    folder.mkdir()
    for i, a in enumerate(imgs):
        Image.fromarray(np.kron(a, np.ones((2, 2), np.uint8))).save(folder / f"{i}.png")  # 56x56: resized to 28x28
    data = load_calibration(folder, (1, 28, 28, 1))
    assert data.shape == (8, 28, 28, 1) and 0.0 <= data.min() and data.max() <= 1.0
    assert np.mean(np.abs(data[0, :, :, 0] - imgs[0] / 255.0)) < 0.03  # bilinear resize of 2x2 blocks
    compiled = compile_model(MNIST, CompileOptions(calib=str(folder), progress=False))
    assert compiled.report.peak_sram_bytes > 0


def test_nhwc_exported_model_has_no_transposes():
    """tf2onnx graphs (NHWC input -> Transpose -> NCHW convs) compile without moving a byte."""
    compiled = compile_model(REPO.parent / "shared" / "models" / "mlperf_tiny" / "vww_mbv1_025_float.onnx",
                             CompileOptions(progress=False))
    assert "transpose" not in [n.op for n in compiled.graph.nodes]
