"""The generated C of real models under AddressSanitizer + UndefinedBehaviorSanitizer (issue 8).

Each model is compiled, built for the host with -fsanitize=address,undefined -fno-sanitize-recover=all
and run on a few inputs: any sanitizer finding fails the run, and the outputs must equal the simulator
byte for byte. Two negative tests show the sanitizers do see what they are here for: float VWW
quantized without the weight scale floor overflows its int32 accumulators (finding 3), and an arena
made too small reads past its end.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, PatchOptions, compile_model, verify_host
from mcucompile.codegen import generate_c
from mcucompile.schedule.schedule import build_schedule

MNIST = REPO / "models" / "mnist"
VWW = SHARED_MODELS / "vww_mbv1_025_float.onnx"
RESNET8 = SHARED_MODELS / "resnet8_float.onnx"


def _sanitizers_work(tmp_path_factory) -> str | None:
    """None when the host compiler builds and runs an ASan + UBSan program, else why not."""
    cc = next((c for c in ("gcc", "cc", "clang") if shutil.which(c)), None)
    if cc is None:
        return "no host C compiler"
    d = tmp_path_factory.mktemp("asan-probe")
    (d / "p.c").write_text("int main(void) { return 0; }\n")
    res = subprocess.run([cc, "-fsanitize=address,undefined", str(d / "p.c"), "-o", str(d / "p")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        return f"{cc} cannot build with -fsanitize=address,undefined (libasan/libubsan missing?)"
    if subprocess.run([str(d / "p")], capture_output=True).returncode != 0:
        return "sanitized programs do not run here (ASan needs ptrace-free address space)"
    return None


@pytest.fixture(scope="module", autouse=True)
def sanitizers(tmp_path_factory):
    why = _sanitizers_work(tmp_path_factory)
    if why is not None:
        pytest.skip(f"sanitizer runs need a host compiler with ASan/UBSan: {why}")


def _check(compiled, samples, tmp_path, references=None):
    res = verify_host(compiled, samples, build_dir=tmp_path / "out", sanitize=True, references=references)
    assert res.bit_exact, res.format()
    return res


def test_mnist_under_sanitizers(tmp_path):
    c = compile_model(MNIST / "mnist_cnn.onnx", CompileOptions(board="host", calib=str(MNIST / "mnist_calib_200.npz"),
                                                               progress=False))
    with np.load(MNIST / "mnist_test_2000.npz") as z:
        x = z["x"][:4].astype(np.float32) / 255.0
    res = _check(c, x, tmp_path)
    assert res.outputs[0].top1_agreement == 1.0


def test_float_vww_under_sanitizers(tmp_path):
    """Finding 3: this run died in mcu_conv_s8 with 'signed integer overflow' before the scale floor."""
    c = compile_model(VWW, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))
    res = _check(c, c.calib[:2], tmp_path)
    assert res.outputs[0].cosine > 0.95


@pytest.mark.parametrize("name", ["kws_dscnn_int8", "resnet8_int8"])
def test_int8_tflite_under_sanitizers(name, tmp_path):
    c = compile_model(SHARED_MODELS / f"{name}.tflite", CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))
    _check(c, c.calib[:3], tmp_path, references=("none",))


def test_patched_plan_under_sanitizers(tmp_path):
    """ResNet-8 in 2x2 patches over 4 layers: region buffers, negative padding, the residual crop."""
    c = compile_model(RESNET8, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="forced", split=4, patches=2)))
    assert c.patch is not None and c.patch.crops
    _check(c, c.calib[:2], tmp_path)


def test_input_by_patch_plan_under_sanitizers(tmp_path):
    """VWW with the input filled patch by patch through the host runner's model_fill_input_patch."""
    c = compile_model(VWW, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="forced", split=8, patches=5, input_by_patch=True)))
    assert c.patch is not None and c.patch.input_by_patch
    _check(c, c.calib[:2], tmp_path)


def test_ubsan_sees_the_accumulator_overflow_of_unsafe_scales(tmp_path, monkeypatch):
    """Without the weight scale floor (and its check), float VWW's near-zero channels saturate their
    biases and the int32 accumulator overflows on every input: UBSan must stop the run."""
    import mcucompile.quant.quantize as quantize

    monkeypatch.setattr(quantize, "int32_safe_weights", lambda node, quantized, ctx: None)
    monkeypatch.setattr(quantize, "check_accumulators", lambda q, ctx, source: None)
    c = compile_model(VWW, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))
    with pytest.raises(RuntimeError, match=r"mcunn_conv\.c:\d+:\d+: runtime error: signed integer overflow"):
        verify_host(c, c.calib[:1], build_dir=tmp_path / "out", sanitize=True)


def test_asan_sees_an_arena_too_small(tmp_path):
    """Generated code for a plan whose arena is 64 bytes short: the sanitizers must report it (UBSan's
    bounds check on the arena array fires first, ASan's global-buffer-overflow otherwise)."""
    c = compile_model(MNIST / "mnist_cnn.onnx", CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))
    short = dataclasses.replace(c.plan, activations_size=c.plan.arena_size - 64)
    bad = dataclasses.replace(c, plan=short, sources=generate_c(build_schedule(c.graph), short, c.options.name))
    found = r"AddressSanitizer: global-buffer-overflow|runtime error: index \d+ out of bounds for type 'uint8_t \[\d+\]'"
    with pytest.raises(RuntimeError, match=found):
        verify_host(bad, c.calib[:1], build_dir=tmp_path / "out", sanitize=True)
