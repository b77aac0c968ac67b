"""mcucompile debug: the layer that loses the accuracy comes first and the option it suggests fixes it; on an
emulated board, a kernel broken in one element is named by layer, patch and element."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, PatchOptions, compile_model
from mcucompile.api.debug import debug_model
from mcucompile.cli import main

MNIST = REPO / "models" / "mnist"
# min/max without bias correction: bias correction folds the error of a layer's inputs into its bias, so its own
# SQNR would then also carry the upstream error it compensates
DATA = ["--calib", str(MNIST / "mnist_calib_200.npz"), "--data", str(MNIST / "mnist_test_2000.npz"),
        "--scale", str(1 / 255), "--quiet", "--calibration", "minmax"]
RELU1 = "mnist_cnn_1/relu1_1/Relu:0"  # the first conv's output (ReLU fused)


def debug_json(capsys, *args) -> dict:
    rc = main(["debug", str(MNIST / "mnist_cnn.onnx"), *DATA, "--json", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def test_debug_puts_the_bad_layer_first_and_its_suggestion_fixes_it(capsys):
    good = debug_json(capsys, "-n", "100")
    assert good["layers"][0]["tensor"] != RELU1
    bad = debug_json(capsys, "-n", "100", "--tensor-range", f"{RELU1}=-60,60")  # a range 10x too wide
    first = bad["layers"][0]
    assert first["tensor"] == RELU1 and first["op"] == "conv2d", bad["layers"][:2]
    assert first["range_use"] < 0.2 and first["suggestion"].startswith(f"--tensor-calibration {RELU1}=mse")
    # the layers after it suffer in cumulative SQNR, but not in their own
    assert all(layer["own_sqnr"] > first["own_sqnr"] + 10 for layer in bad["layers"][1:] if layer["own_sqnr"] != "inf")
    option = first["suggestion"].split()[1]
    fixed = debug_json(capsys, "-n", "100", "--tensor-calibration", option)
    (o_bad,), (o_fixed,) = bad["outputs"], fixed["outputs"]
    assert o_fixed["sqnr"] > o_bad["sqnr"] + 10, (o_bad, o_fixed)
    assert o_fixed["agreement"] > o_bad["agreement"], (o_bad, o_fixed)
    layer = next(x for x in fixed["layers"] if x["tensor"] == RELU1)
    assert layer["own_sqnr"] > first["own_sqnr"] + 10 and layer["range_use"] > 0.5


def test_debug_prints_a_table_and_adds_its_section_to_report_html(capsys, tmp_path):
    out = tmp_path / "out"
    rc = main(["debug", str(MNIST / "mnist_cnn.onnx"), *DATA, "-n", "10", "-o", str(out)])
    text, err = capsys.readouterr()
    assert rc == 0, err
    assert "output 'softmax': SQNR" in text and "float reference: onnxruntime" in text
    assert re.search(r"^\s+\d+\s+mnist_cnn_1/\S+\s+conv2d\s+8\s", text, re.M), text
    page = (out / "report.html").read_text()
    assert "Debug on host" in page and "own SQNR" in page
    assert main([str(MNIST / "mnist_cnn.onnx"), "--board", "host", *DATA[:2], "-o",
                 str(out), "--quiet"]) == 0  # the folder stays a valid mcucompile output


def test_debug_int8_tflite_compares_with_litert_tensor_by_tensor(capsys):
    rc = main(["debug", str(SHARED_MODELS / "kws_dscnn_int8.tflite"), "--quiet", "-n", "3", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out)
    assert {x["reference"] for x in res["layers"]} == {"float simulator"}
    assert len(res["layers"]) >= 10 and res["outputs"][0]["sqnr"] != "inf"
    # tensor by tensor equal to LiteRT's reference kernels (the bit-exact pipeline, seen per layer)
    assert all(x["litert_match"] == 1.0 for x in res["layers"]), [(x["index"], x["litert_match"]) for x in res["layers"]]
    # the float reference of an int8 model is its own graph with dequantized weights: each layer's own error is
    # its output rounding and clipping, never the wild values raw integer weights would give
    assert all(x["own_sqnr"] == "inf" or x["own_sqnr"] > 5 for x in res["layers"]), res["layers"]


def _break_layer(layer: int):
    """An edit of the generated model.c: flip one bit of element 17 of ``layer``'s output right after it ran
    (in the patch loop: in every patch; the first is where debug must point)."""
    def edit(project):
        src = project / "lib" / "model" / "src" / "model.c"
        text = src.read_text()
        pattern = re.compile(rf"(MODEL_END\({layer}, (MODEL_ACT\(\d+\)), [^;]*\);)")
        assert pattern.search(text), f"no MODEL_END({layer}, ...) in model.c"
        src.write_text(pattern.sub(lambda m: f"{m.group(2)}[17] ^= 1;\n{m.group(1)}", text, count=1))
    return edit


@pytest.fixture(scope="module")
def patched_resnet8():
    opts = CompileOptions(board="qemu-m4", progress=False, patch=PatchOptions(mode="forced", split=4, patches=2))
    compiled = compile_model(SHARED_MODELS / "resnet8_float.onnx", opts)
    assert compiled.schedule.loop is not None and compiled.schedule.loop.plan.stage_len == 4
    return compiled, compiled.calib[:2]


def test_device_debug_is_bit_exact_patch_by_patch(patched_resnet8, tmp_path):
    compiled, x = patched_resnet8
    res = debug_model(compiled, x, out_dir=tmp_path / "fw")
    assert res.device is not None and res.device.bit_exact, res.format()
    assert res.device.dumps == 4 * 4 + (res.device.layers - 4)  # 4 stage layers in each of 4 patches
    assert "bit-exact with the simulator" in res.format()


@pytest.mark.parametrize("layer,in_stage", [(6, False), (2, True)])
def test_device_debug_names_the_broken_layer_and_element(patched_resnet8, tmp_path, layer, in_stage):
    compiled, x = patched_resnet8
    res = debug_model(compiled, x, out_dir=tmp_path / "fw", edit_project=_break_layer(layer))
    m = res.device.mismatch
    assert m is not None and m.layer == layer and m.element == 17, res.format()
    assert (m.patch == 0) if in_stage else (m.patch is None)
    assert m.device == m.simulator ^ 1 if m.simulator >= 0 else (m.device & 0xFF) == ((m.simulator & 0xFF) ^ 1)
    c = compiled.graph.tensors[compiled.graph.nodes[layer].outputs[0]].shape[3]
    assert m.coords[3] == 17 % c
    assert f"layer {layer} '{compiled.graph.nodes[layer].name}'" in res.format()


@pytest.mark.parametrize("threshold", [0, 255])  # every patch an outlier (the 8-bit chain), none (the probe's)
def test_device_debug_with_a_runtime_dispatched_stage(tmp_path, threshold):
    """A VDPC stage (the device picks each patch's chain): compared patch by patch along the chains the device
    took (its MCU CHAIN lines equal to the simulator's), bit-exact; a bit flipped after the stage is still named."""
    from test_vdpc import _dispatched

    from mcucompile.api.debug import device_check
    from mcucompile.schedule.schedule import RuntimeDispatch

    c0 = compile_model(SHARED_MODELS / "resnet8_float.onnx", CompileOptions(
        board="qemu-m4", progress=False, patch=PatchOptions(mode="forced", split=4, patches=3)))
    tensor = c0.graph.nodes[0].outputs[0]
    c = _dispatched(c0, RuntimeDispatch(tensor, c0.graph.tensors[tensor].quant.zp, threshold, 0, 1))
    res = device_check(c, c.calib[0], tmp_path / "fw")
    assert res.bit_exact and "patch by patch along the chain each took" in res.note, res
    assert "the device reported the same chains" in res.note, res
    assert res.dumps == 9 * 4 + len(c.schedule.rest.steps)  # every patch's 4 stage layers, then the rest
    res = device_check(c, c.calib[0], tmp_path / "fw2", edit_project=_break_layer(6))
    assert res.mismatch is not None and res.mismatch.layer == 6 and res.mismatch.element == 17
