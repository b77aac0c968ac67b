"""Calibration methods (quant.methods): each rule's range on a known distribution, the expected ordering of
errors on a model with a long-tailed activation, options and per-tensor overrides through compile, the CLI
and report.json, bias correction, and bit-exact C on the host with a non-default method."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

from conftest import make_model, save

from mcucompile.api import CompileOptions, PatchOptions, compile_model, verify_host
from mcucompile.api.library import quantize_input
from mcucompile.api.verify import agreement, onnx_reference, simulate
from mcucompile.cli import main
from mcucompile.errors import UserError
from mcucompile.ops.base import dequantize_values
from mcucompile.quant.methods import (CalibrationOptions, CalibrationRule, Histogram, TensorOverride,
                                      calibration_options, choose_range, quantization_mse)

OFF = PatchOptions(mode="off")


def _hist(v: np.ndarray, bins: int = 8192) -> Histogram:
    h = Histogram(float(v.min()), float(v.max()), bins)
    h.add(v)
    return h


# --- the rules on known samples -------------------------------------------------------------------------

def test_minmax_is_the_data_range():
    v = np.random.default_rng(0).normal(size=10_000)
    assert choose_range(CalibrationRule("minmax"), v.min(), v.max(), None) == (v.min(), v.max())


@pytest.mark.parametrize("p", [99.0, 99.9])
def test_percentile_of_a_known_sample(p):
    v = np.random.default_rng(1).uniform(0.0, 10.0, 200_000)
    lo, hi = choose_range(CalibrationRule("percentile", p), v.min(), v.max(), _hist(v))
    width = 10.0 / 8192
    assert lo == v.min()  # a one-sided tensor keeps its low end
    assert np.percentile(v, p) <= hi <= np.percentile(v, p) + 2 * width
    # a signed tensor is clipped on both sides
    s = np.random.default_rng(2).normal(size=200_000)
    lo, hi = choose_range(CalibrationRule("percentile", p), s.min(), s.max(), _hist(s))
    assert np.percentile(s, 100 - p) - 0.01 <= lo <= np.percentile(s, 100 - p) + 0.01
    assert np.percentile(s, p) - 0.01 <= hi <= np.percentile(s, p) + 0.01


def test_mse_clips_a_heavy_tail_and_minimises_the_error():
    rng = np.random.default_rng(3)
    v = rng.laplace(size=1_000_000)  # b = 1: max ~ ln(1e6) = 13.8
    h = _hist(v, 8192)
    lo, hi = choose_range(CalibrationRule("mse", 8192), v.min(), v.max(), h)
    # the 8-bit MSE optimum of a Laplace distribution clips at about 9.9 b (Banner et al. 2019)
    assert 8.0 < hi < 0.85 * v.max() and -0.85 * abs(v.min()) < lo < -8.0
    err = quantization_mse(h, lo, hi, -128, 127)
    assert err < 0.9 * quantization_mse(h, v.min(), v.max(), -128, 127)
    assert err <= quantization_mse(h, lo, 1.1 * hi, -128, 127) and err <= quantization_mse(h, lo, 0.9 * hi, -128, 127)


def test_kl_is_finite_and_sane():
    rng = np.random.default_rng(4)
    relu = np.maximum(rng.normal(size=100_000), 0.0)
    lo, hi = choose_range(CalibrationRule("kl"), relu.min(), relu.max(), _hist(relu, 2048))
    assert lo == 0.0 and 2.0 < hi <= relu.max() and np.isfinite(hi)
    s = rng.normal(size=100_000)
    lo, hi = choose_range(CalibrationRule("kl"), s.min(), s.max(), _hist(s, 2048))
    assert s.min() <= lo < -2.0 and 2.0 < hi <= s.max()


@pytest.mark.parametrize("text, error", [
    ("histogram", "calibration method"), ("percentile:abc", "must be a number"), ("percentile:20", "above 50"),
    ("minmax:3", "no parameter"), ("mse:10", "histogram bins"),
])
def test_bad_rules_are_user_errors(text, error):
    with pytest.raises(UserError, match=error):
        CalibrationRule.parse(text)


def test_rule_text_round_trips():
    assert str(CalibrationRule.parse("percentile")) == "percentile:99.99"
    assert str(CalibrationRule.parse("MSE")) == "mse:2048"
    assert CalibrationRule.parse("entropy") == CalibrationRule("kl")
    assert CalibrationRule.parse("percentile:99.9") == CalibrationRule("percentile", 99.9)


# --- a model with a long-tailed activation --------------------------------------------------------------

HIDDEN = "h"


def _long_tail_model(tmp_path):
    """x [1, 256] in [-1, 1] -> h = Relu(x W1) [1, 32] -> y = h W2 [1, 10]. W1's columns are sign patterns,
    so a calibration sample aligned with column 0 drives h[0] to 16 where typical values stay below 2."""
    rng = np.random.default_rng(5)
    w1 = np.sign(rng.standard_normal((256, 32))).astype(np.float32) / 16
    w2 = rng.standard_normal((32, 10)).astype(np.float32) / 4
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]), helper.make_node("Relu", ["a"], [HIDDEN]),
             helper.make_node("MatMul", [HIDDEN, "w2"], ["y"])]
    path = save(make_model(nodes, [1, 256], ["y"], {"w1": w1, "w2": w2}), tmp_path)
    calib = rng.uniform(-1, 1, (64, 256)).astype(np.float32)
    calib[0] = np.sign(w1[:, 0])  # the outlier sample
    np.save(tmp_path / "calib.npy", calib)
    test = rng.uniform(-1, 1, (200, 256)).astype(np.float32)
    return path, tmp_path / "calib.npy", test


def _compile(path, calib, **cal):
    """Compiled with exactly the calibration given (auto=False: min/max unless a rule is given)."""
    return compile_model(path, CompileOptions(board="host", progress=False, patch=OFF, calib=str(calib),
                                              calibration=CalibrationOptions(**{"auto": False, **cal})))


def _sqnr(compiled, path, test) -> float:
    g = compiled.graph
    q = g.tensors[g.outputs[0]].quant
    y = dequantize_values(simulate(compiled, quantize_input(compiled, test))[0], q)
    return agreement(y, onnx_reference(path, test)[0])[1]


def _hidden_range(compiled) -> tuple[float, float]:
    t = next(t for t in compiled.graph.tensors.values() if t.origin == HIDDEN)
    return (-128 - t.quant.zp) * t.quant.s, (127 - t.quant.zp) * t.quant.s


def test_methods_beat_minmax_on_a_long_tail(tmp_path):
    path, calib, test = _long_tail_model(tmp_path)
    # each rule on the long-tailed tensor only (the output's 640 calibration values are too few for a
    # 2048-bin KL histogram: that is another test's business)
    sqnr = {m: _sqnr(_compile(path, calib, overrides=(TensorOverride(HIDDEN, rule=CalibrationRule.parse(m)),)),
                     path, test) for m in ("minmax", "percentile:99.9", "mse", "kl")}
    # the outlier sets min/max's step ~8x coarser than the typical values need: percentile and KL clip it
    # and are closer to float; MSE minimises the calibration data's error, the outlier's included (its
    # squared clipping error outweighs the rounding of the rest), so it keeps about min/max's range here
    assert all(np.isfinite(v) for v in sqnr.values())
    for m in ("percentile:99.9", "kl"):
        assert sqnr[m] > sqnr["minmax"] + 3.0, sqnr
    assert sqnr["mse"] > sqnr["minmax"] - 0.5, sqnr


# --- options, overrides, report.json, CLI -------------------------------------------------------------

def test_override_changes_only_the_named_tensor(tmp_path):
    path, calib, _ = _long_tail_model(tmp_path)
    base = _compile(path, calib)
    over = _compile(path, calib, overrides=(TensorOverride(HIDDEN, range=(0.0, 3.0)),))
    lo, hi = _hidden_range(over)
    assert abs(lo) < 1e-6 and abs(hi - 3.0) < 1e-6
    changed = [n for n, t in base.graph.tensors.items() if not t.is_const and t.quant is not None
               and not t.quant.same_as(over.graph.tensors[n].quant)]
    assert [base.graph.tensors[n].origin for n in changed] == [HIDDEN]
    rule = _compile(path, calib, overrides=(TensorOverride(HIDDEN, rule=CalibrationRule("percentile", 99.0)),))
    assert _hidden_range(rule)[1] < _hidden_range(base)[1]
    cal = rule.report.to_json_dict()["calibration"]["tensors"]
    assert cal[HIDDEN]["rule"] == "percentile:99" and cal["y"]["rule"] == "minmax"


def test_cli_options_reach_report_json(tmp_path):
    path, calib, _ = _long_tail_model(tmp_path)
    out = tmp_path / "out"
    rc = main([str(path), "--board", "host", "--calib", str(calib), "--quiet", "-o", str(out),
               "--calibration", "percentile:99.9", "--tensor-range", f"{HIDDEN}=0,2.5"])
    assert rc == 0
    cal = json.loads((out / "report.json").read_text())["calibration"]
    assert cal["method"] == "percentile:99.9" and cal["bias_correction"] is False
    assert cal["tensors"][HIDDEN] == {"rule": "range", "range": [0.0, 2.5], "data_range": cal["tensors"][HIDDEN]["data_range"]}
    assert cal["tensors"][HIDDEN]["data_range"][1] > 10
    assert cal["tensors"]["y"]["rule"] == "percentile:99.9"
    assert cal["tensors"]["x"]["rule"] == "minmax"  # the input keeps its data's domain


def test_quant_config_file(tmp_path):
    path, calib, _ = _long_tail_model(tmp_path)
    cfg = tmp_path / "q.toml"
    cfg.write_text(f'calibration = "mse"\nbias_correction = true\n[tensors."{HIDDEN}"]\nrange = [0.0, 4.0]\n')
    opts = calibration_options(config=cfg, tensor_rules=[f"y=percentile:99"])
    assert opts.rule == CalibrationRule("mse") and opts.bias_correction
    c = _compile(path, calib, rule=opts.rule, overrides=opts.overrides, bias_correction=opts.bias_correction)
    cal = c.report.to_json_dict()["calibration"]
    assert cal["tensors"][HIDDEN]["range"] == [0.0, 4.0] and cal["tensors"]["y"]["rule"] == "percentile:99"
    bad = tmp_path / "bad.json"
    bad.write_text('{"tensors": {"h": {"range": [1]}}}')
    with pytest.raises(UserError, match="range must be"):
        calibration_options(config=bad)


def test_unknown_tensor_is_a_one_line_error_naming_the_closest(tmp_path, capsys):
    path, calib, _ = _long_tail_model(tmp_path)
    rc = main([str(path), "--board", "host", "--calib", str(calib), "--quiet", "-o", str(tmp_path / "o"),
               "--tensor-calibration", "hh=mse"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith("mcucompile: error: tensor 'hh' is not a calibrated tensor") and "'h'" in err
    rc = main([str(path), "--board", "host", "--calib", str(calib), "--quiet", "-o", str(tmp_path / "o"),
               "--calibration", "entrop"])
    assert rc == 2 and "did you mean" in capsys.readouterr().err


# --- bias correction ---------------------------------------------------------------------------------

def _biased_rounding_model(tmp_path):
    """y = x W [1, 64] -> [1, 8] with x in [0, 1] (mean 0.5) and weights that all round the same way:
    each channel's int8 rounding error adds up over the 64 taps into a mean output shift."""
    rng = np.random.default_rng(6)
    k = rng.integers(0, 100, (64, 8)).astype(np.float64)
    w = (k + 0.45) / 127.0
    w[0] = 1.0  # max |w| = 127 steps: the scale is exactly 1/127 and every other tap rounds 0.45 down
    path = save(make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [1, 64], ["y"],
                           {"w": w.astype(np.float32)}), tmp_path)
    calib = rng.uniform(0, 1, (64, 64)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    return path, tmp_path / "calib.npy", rng.uniform(0, 1, (200, 64)).astype(np.float32)


def _channel_mean_error(compiled, path, test) -> np.ndarray:
    g = compiled.graph
    q = g.tensors[g.outputs[0]].quant
    y = dequantize_values(simulate(compiled, quantize_input(compiled, test))[0], q)
    return np.abs((y - onnx_reference(path, test)[0].reshape(y.shape)).mean(axis=0))


def test_bias_correction_removes_the_mean_channel_error(tmp_path):
    path, calib, test = _biased_rounding_model(tmp_path)
    before = _channel_mean_error(_compile(path, calib), path, test)
    corrected = _compile(path, calib, bias_correction=True)
    after = _channel_mean_error(corrected, path, test)
    step = corrected.graph.tensors[corrected.graph.outputs[0]].quant.s
    assert before.mean() > 1.5 * step  # the rounding bias: more than an output step
    assert after.mean() < 0.25 * before.mean() and after.max() < step
    cal = corrected.report.to_json_dict()["calibration"]
    assert cal["bias_correction"] is True and cal["bias_corrected_layers"] == 1


def test_non_default_calibration_is_bit_exact_on_host(tmp_path):
    path, calib, test = _long_tail_model(tmp_path)
    c = _compile(path, calib, rule=CalibrationRule("mse"), bias_correction=True,
                 overrides=(TensorOverride("y", rule=CalibrationRule("kl")),))
    res = verify_host(c, test[:8], build_dir=tmp_path / "b")
    assert res.bit_exact and res.mismatched_bytes == 0


def test_default_with_real_data_is_percentile_with_bias_correction(tmp_path):
    """Nothing chosen: --calib data gets percentile:99.99 with bias correction (measured closer to float on every
    model with real inputs, bench/calibration.py); synthetic data and an explicit --calibration minmax get min/max."""
    path, calib, _ = _long_tail_model(tmp_path)
    for args, method, bc in ((["--calib", str(calib)], "percentile:99.99", True),
                             ([], "minmax", False),
                             (["--calib", str(calib), "--calibration", "minmax"], "minmax", False)):
        out = tmp_path / f"out{len(args)}{method[:3]}"
        assert main([str(path), "--board", "host", "--quiet", "-o", str(out), *args]) == 0
        cal = json.loads((out / "report.json").read_text())["calibration"]
        assert (cal["method"], cal["bias_correction"]) == (method, bc), (args, cal["method"], cal["bias_correction"])
