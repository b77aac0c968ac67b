"""Errors a user can cause: one clear line, exit code 2, no partial output folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from conftest import REPO, SHARED_MODELS, make_model, save

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_user_error(res, *fragments, out: Path | None = None):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mcucompile: error: ")
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    if out is not None:
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temporary folder left behind"


def test_missing_file(tmp_path):
    assert_user_error(run_cli(tmp_path / "nope.onnx", "-o", tmp_path / "out"), "not found", out=tmp_path / "out")


def test_not_onnx(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_text("this is not a protobuf at all\n" * 10)
    assert_user_error(run_cli(p, "-o", tmp_path / "out"), "not a valid ONNX model", out=tmp_path / "out")


def test_truncated_onnx(tmp_path):
    data = (SHARED_MODELS / "resnet8_float.onnx").read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 3])
    assert_user_error(run_cli(p, "-o", tmp_path / "out"), "not a valid ONNX model", out=tmp_path / "out")


def test_unsupported_op(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]), helper.make_node("Erf", ["c"], ["y"])]
    p = save(make_model(nodes, [1, 2, 4, 4], ["y"], {"w": np.ones((2, 2, 1, 1), np.float32)}), tmp_path)
    res = run_cli(p, "-o", tmp_path / "out")
    assert_user_error(res, "'Erf'", "Erf_1", "Supported ONNX ops:", "Conv", out=tmp_path / "out")


def test_dynamic_shape_that_cannot_be_pinned(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2, "H", "W"])],
                              [onnx.numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    p = save(m, tmp_path)
    assert_user_error(run_cli(p, "-o", tmp_path / "out"), "dynamic dimension 'H'", "--input-shape", out=tmp_path / "out")
    # ...and the fix the message names works
    ok = run_cli(p, "-o", tmp_path / "out", "--input-shape", "x=1,3,8,8", "--quiet")
    assert ok.returncode == 0, ok.stderr


def test_nan_weights(tmp_path):
    w = np.ones((2, 2, 1, 1), np.float32)
    w[1, 0, 0, 0] = np.nan
    p = save(make_model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])], [1, 2, 4, 4], ["y"], {"w": w}), tmp_path)
    assert_user_error(run_cli(p, "-o", tmp_path / "out"), "NaN or Inf", "'w'", out=tmp_path / "out")


def test_inf_weights(tmp_path):
    w = np.ones((2, 2, 1, 1), np.float32)
    w[0, 1, 0, 0] = np.inf
    p = save(make_model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])], [1, 2, 4, 4], ["y"], {"w": w}), tmp_path)
    assert_user_error(run_cli(p, "-o", tmp_path / "out"), "NaN or Inf", out=tmp_path / "out")


def test_calibration_wrong_shape(tmp_path):
    bad = tmp_path / "calib.npy"
    np.save(bad, np.zeros((10, 28, 28), np.float32))
    res = run_cli(MNIST, "--calib", bad, "-o", tmp_path / "out")
    assert_user_error(res, "calibration data", "[10, 28, 28]", "[N, 28, 28, 1]", out=tmp_path / "out")


def test_calibration_nan(tmp_path):
    bad = tmp_path / "calib.npy"
    a = np.zeros((4, 28, 28, 1), np.float32)
    a[0, 0, 0, 0] = np.nan
    np.save(bad, a)
    assert_user_error(run_cli(MNIST, "--calib", bad, "-o", tmp_path / "out"), "NaN", out=tmp_path / "out")


def test_unknown_board_lists_known_ones(tmp_path):
    res = run_cli(MNIST, "--board", "arduino-uno", "-o", tmp_path / "out")
    assert_user_error(res, "unknown board 'arduino-uno'", "nucleo-f746zg", "qemu-m7", out=tmp_path / "out")


def test_model_too_big_for_board(tmp_path):
    # one dense layer of 600 x 2000 int8 weights (1.2 MB) against the 512 KB flash of nucleo-f446re
    w = np.random.default_rng(0).standard_normal((600, 2000)).astype(np.float32)
    p = save(make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [1, 600], ["y"], {"w": w}), tmp_path)
    res = run_cli(p, "--board", "nucleo-f446re", "-o", tmp_path / "out")
    assert_user_error(res, "does not fit board 'nucleo-f446re'", "flash: needs", "board has 524,288 B", out=tmp_path / "out")


def test_existing_output_survives_a_failed_compile(tmp_path):
    out = tmp_path / "out"
    ok = run_cli(MNIST, "-o", out, "--quiet")
    assert ok.returncode == 0, ok.stderr
    before = sorted(p.name for p in out.rglob("*"))
    res = run_cli(tmp_path / "missing.onnx", "-o", out)
    assert res.returncode == 2
    assert sorted(p.name for p in out.rglob("*")) == before


def test_compile_writes_library_and_report(tmp_path):
    res = run_cli(SHARED_MODELS / "resnet8_float.onnx", "--board", "nucleo", "-o", tmp_path / "r8")
    assert res.returncode == 0, res.stderr
    assert "peak SRAM" in res.stdout and "flash" in res.stdout
    assert "warning: no --calib data given" in res.stderr
    assert "layer by layer (the fastest plan that fits)" in res.stdout  # the default optimizes for speed
    assert "--optimize memory:" in res.stdout  # and says what the lowest-SRAM plan would give
    import json

    rep = json.loads((tmp_path / "r8" / "report.json").read_text())
    for key in ("peak_sram_bytes", "flash_bytes", "macs", "layers"):
        assert key in rep
    for layer in rep["layers"]:
        assert {"op", "input_shapes", "output_shape", "macs", "arena_offset", "bitwidth"} <= set(layer)
    assert (tmp_path / "r8" / "lib" / "model" / "include" / "model.h").exists()
    assert (tmp_path / "r8" / "platformio.ini").exists() and (tmp_path / "r8" / "Makefile").exists()


def test_boards_command():
    res = run_cli("boards")
    assert res.returncode == 0
    for b in ("nucleo-f746zg", "nucleo-h743zi", "nucleo-f446re", "nucleo-l4r5zi", "qemu-m4", "qemu-m7", "qemu-m55"):
        assert b in res.stdout


def test_model_too_big_for_board_sram(tmp_path):
    # a 3x256x256 input expanded to 16 channels needs ~1 MB of activations; nucleo-f446re has 128 KB
    w = np.random.default_rng(0).standard_normal((16, 3, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    p = save(make_model([node], [1, 3, 256, 256], ["y"], {"w": w}), tmp_path)
    res = run_cli(p, "--board", "nucleo-f446re", "-o", tmp_path / "out")
    assert_user_error(res, "does not fit board 'nucleo-f446re'", "SRAM: needs", "131,072 B", out=tmp_path / "out")
