"""The MSE clipping search (quant/methods.py ``_mse_range``) computes its 200 candidate ranges together, on the
non-empty bins only; it must choose exactly what the one-range-at-a-time loop over ``quantization_mse`` chooses,
and each range's error must be that function's, bit for bit (the choice compares errors within 1e-9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcucompile.quant import methods
from mcucompile.quant.methods import Histogram, _mse_grid, _mse_range, quantization_mse


def _loop_range(hist: Histogram, lo: float, hi: float, qmin: int, qmax: int) -> tuple[float, float]:
    """The search written out: one quantization_mse call per factor."""
    def shrunk(f):
        return (lo * f if lo < 0 else lo), (hi * f if hi > 0 else hi)

    best, best_f = math.inf, 1.0
    for f in np.linspace(1.0, 1.0 / 200, 200):
        e = quantization_mse(hist, *shrunk(f), qmin, qmax)
        if e < best * (1 - 1e-9):
            best, best_f = e, float(f)
    return shrunk(best_f)


def _cases():
    rng = np.random.default_rng(0)
    relu8 = (np.clip(np.round(np.maximum(rng.standard_normal(20000), 0) * 30), 0, 255)) * 0.047  # 8-bit values
    yield "dequantized 8-bit ReLU map", relu8
    yield "dense gaussian", rng.standard_normal(30000) * 2.5
    yield "long tail", np.concatenate([rng.exponential(1.0, 5000), [60.0, 75.0]])
    yield "negative only", -np.abs(rng.standard_normal(3000))
    yield "one non-zero value", np.concatenate([np.zeros(500), [0.37]])
    yield "constant zero", np.zeros(100)
    yield "two spikes", np.repeat([-1.5, 4.0], [700, 20])


@pytest.mark.parametrize("name,values", list(_cases()), ids=[c[0] for c in _cases()])
@pytest.mark.parametrize("bits", [8, 4, 2])
def test_mse_range_equals_the_one_by_one_loop(name, values, bits, monkeypatch):
    lo, hi = float(values.min()), float(values.max())
    hist = Histogram(lo, hi, 2048)
    hist.add(values)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert _mse_range(hist, lo, hi, qmin, qmax) == _loop_range(hist, lo, hi, qmin, qmax)
    ranges = [(lo * f, hi * f) for f in np.linspace(1.0, 1 / 200, 37)] + [(lo, hi), (0.0, 0.0), (-1e-3, 2e-3)]
    want = [quantization_mse(hist, a, b, qmin, qmax) for a, b in ranges]
    assert _mse_grid(hist, ranges, qmin, qmax) == want
    monkeypatch.setattr(methods, "_MSE_BLOCK", 100)  # blocks of a few ranges, a last partial one
    assert _mse_grid(hist, ranges, qmin, qmax) == want
