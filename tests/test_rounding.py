"""Requantization rounding: TFLite's double rounding and its single-rounding build, in the simulator and
in the C runtime, and which one a model gets (``--rounding auto``).

Single rounding must be the exact product rounded to nearest (halves up), which is what ONNX's QDQ
semantics and onnxruntime compute; the C must equal the simulator in both modes, bit for bit.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_MODELS
from mcucompile.api import CompileOptions, compile_model, verify_host
from mcucompile.arith.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from mcucompile.errors import UserError
from mcucompile.paths import runtime_dir
from mcucompile.targets.host import SANITIZE_FLAGS, find_compiler

REPO = Path(__file__).resolve().parents[1]


def _cases(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random accumulators with the multipliers and shifts real layers have (and the extremes)."""
    rng = np.random.default_rng(seed)
    reals = np.exp(rng.uniform(np.log(2.0**-30), np.log(2.0**4), n))
    ms, ss = zip(*(quantize_multiplier(float(r)) for r in reals))
    x = rng.integers(-(1 << 24), 1 << 24, n)
    x[:8] = [0, 1, -1, (1 << 31) - 1, -(1 << 31), 12345, -12345, 1 << 20]
    m, s = np.array(ms, np.int64), np.array(ss, np.int64)
    # x * 2^shift must fit int32 for double rounding (the quantizer guarantees it for real layers)
    x = np.where(s > 0, np.clip(x, -(1 << (31 - np.maximum(s, 1))), (1 << (31 - np.maximum(s, 1))) - 1), x)
    return x, m, s


def test_single_rounding_is_the_exact_product_rounded_half_up():
    x, m, s = _cases()
    got = multiply_by_quantized_multiplier(x, m, s, "single")
    for xi, mi, si, g in zip(x.tolist(), m.tolist(), s.tolist(), got.tolist()):
        exact = Fraction(xi * mi, 1 << (31 - si))
        want = (exact + Fraction(1, 2)).__floor__()
        assert g == want, (xi, mi, si)


def test_double_and_single_rounding_differ_only_by_one_and_rarely():
    x, m, s = _cases(20000, seed=1)
    d = multiply_by_quantized_multiplier(x, m, s, "double")
    g = multiply_by_quantized_multiplier(x, m, s, "single")
    assert np.max(np.abs(d - g)) <= 1
    assert 0 < np.mean(d != g) < 0.05  # they do differ (else the mode would be untested), seldom


@pytest.mark.parametrize("single", [0, 1])
def test_c_requantize_equals_the_simulator(tmp_path, single):
    """mcu_requantize() of the runtime, built as a generated library builds it (mcunn_config.h), on the
    same cases, under ASan/UBSan."""
    x, m, s = _cases()
    rounding = "single" if single else "double"
    want = multiply_by_quantized_multiplier(x, m, s, rounding)
    inc = tmp_path / "include"  # the runtime headers with this library's mcunn_config.h, as library_files writes
    inc.mkdir()
    for h in (runtime_dir() / "include").glob("*.h"):
        (inc / h.name).write_text(h.read_text())
    (inc / "mcunn_config.h").write_text(f"#define MCU_SINGLE_ROUNDING {single}\n")
    rows = ",\n".join(f"{{{a}, {b}, {c}}}" for a, b, c in zip(x.tolist(), m.tolist(), s.tolist()))
    (tmp_path / "t.c").write_text(
        "#include <stdio.h>\n#include \"mcunn_support.h\"\n"
        f"static const int32_t cases[][3] = {{{rows}}};\n"
        "int main(void) { for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) "
        "printf(\"%ld\\n\", (long)mcu_requantize(cases[i][0], cases[i][1], cases[i][2])); return 0; }\n")
    exe = tmp_path / "t"
    subprocess.run([find_compiler(), "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *SANITIZE_FLAGS,
                    "-I", str(inc), str(tmp_path / "t.c"), "-o", str(exe)],
                   check=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    got = np.array([int(v) for v in res.stdout.split()], np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(int(x[i]), int(m[i]), int(s[i]), int(got[i]), int(want[i])) for i in bad[:5]]


def test_auto_rounding_follows_the_model(tmp_path):
    """.tflite and tf2onnx's QDQ twins: TFLite's double rounding (bit-exact with TFLite Micro); float ONNX:
    double; a QDQ model from onnxruntime's quantizer: single (ONNX QDQ semantics); --rounding overrides."""
    import onnx

    twin = SHARED_MODELS / "kws_dscnn_int8_qdq.onnx"
    assert compile_model(twin, CompileOptions(board="host", progress=False)).graph.rounding == "double"
    assert compile_model(SHARED_MODELS / "kws_dscnn_int8.tflite",
                         CompileOptions(board="host", progress=False)).graph.rounding == "double"
    m = onnx.load(str(twin))
    m.producer_name = "onnx.quantize"  # what onnxruntime.quantization.quantize_static writes
    ort_made = tmp_path / "kws_ort.onnx"
    onnx.save(m, str(ort_made))
    compiled = compile_model(ort_made, CompileOptions(board="host", progress=False))
    assert compiled.graph.rounding == "single"
    assert "#define MCU_SINGLE_ROUNDING 1" in _config(compiled)
    forced = compile_model(ort_made, CompileOptions(board="host", progress=False, rounding="double"))
    assert forced.graph.rounding == "double" and "#define MCU_SINGLE_ROUNDING 0" in _config(forced)
    with pytest.raises(UserError, match="rounding"):
        CompileOptions(rounding="nearest")


def _config(compiled) -> str:
    from mcucompile.api.library import library_files

    return library_files(compiled)["include/mcunn_config.h"]


def test_single_rounding_model_is_bit_exact_in_c_and_closer_to_onnxruntime(tmp_path):
    """The same QDQ model in both modes: C bit-exact with the simulator each time; single rounding agrees
    with onnxruntime's QDQ execution at least as well byte for byte."""
    import onnx

    m = onnx.load(str(SHARED_MODELS / "kws_dscnn_int8_qdq.onnx"))
    m.producer_name = "onnx.quantize"
    path = tmp_path / "kws_ort.onnx"
    onnx.save(m, str(path))
    x = np.random.default_rng(3).uniform(-100, 20, (12, 49, 10, 1)).astype(np.float32)
    within = {}
    for rounding in ("double", "single"):
        compiled = compile_model(path, CompileOptions(board="host", progress=False, rounding=rounding))
        res = verify_host(compiled, x, references=("onnxruntime-qdq",), build_dir=tmp_path / rounding)
        assert res.bit_exact, res.format()
        within[rounding] = res.golden["onnxruntime-qdq"]
    assert within["single"] <= within["double"]
