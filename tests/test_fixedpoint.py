"""The vectorised fixed-point arithmetic (arith/fixedpoint.py) against gemmlowp's formulas written out in Python
integers, element by element, on the edge cases: extreme multipliers and shifts, int32 limits, exact halves,
values beyond int32 (the C's wrap), int32 and int64 inputs, per-tensor and per-channel parameters, blocks.

The fast implementation takes shortcuts (one shift for the doubling high multiply, a sign term for the rounding
divide, in-place passes block by block); these tests are what says the shortcuts are the same function.
"""

from __future__ import annotations

import numpy as np
import pytest

from mcucompile.arith import fixedpoint
from mcucompile.arith.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)


def _wrap32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul, as its C++ reads."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = ab + nudge
    return q // (1 << 31) if q >= 0 else -((-q) // (1 << 31))  # C's division truncates toward zero


def _rdbpot(x: int, e: int) -> int:
    """gemmlowp RoundingDivideByPOT, as its C++ reads."""
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def _mbqm(x: int, m: int, shift: int, rounding: str) -> int:
    """TFLite MultiplyByQuantizedMultiplier (double rounding) and its TFLITE_SINGLE_ROUNDING build."""
    if rounding == "single":
        total = 31 - shift
        return (x * m + (1 << (total - 1))) >> total
    left, right = max(shift, 0), max(-shift, 0)
    return _rdbpot(_srdhm(_wrap32(x * (1 << left)), m), right)


#: int32 accumulators at the edges: the limits, around 0, around powers of two, and odd values
EDGE_X = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -65537, -65536, -3, -2, -1, 0, 1, 2,
          3, 65535, 65536, (1 << 30) - 1, 1 << 30, INT32_MAX - 1, INT32_MAX]
#: multipliers: zero, the extremes of [2^30, 2^31) and INT32_MIN (the doubling high multiply's overflow)
EDGE_M = [0, 1, 1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX - 1, INT32_MAX, INT32_MIN]
EDGE_SHIFT = [-31, -30, -17, -8, -1, 0, 1, 2, 7, 30]


def _grid(rng: np.random.Generator, extra: int = 2000) -> np.ndarray:
    """EDGE_X plus small odd values (x * 2^30 is an exact half of the doubling high multiply), values around
    multiples of 2^29, and random int32 values."""
    halves = list(range(-41, 42, 2)) + [(k << 29) + d for k in range(-4, 4) for d in (-1, 0, 1)]
    rand = rng.integers(INT32_MIN, INT32_MAX, extra, endpoint=True)
    values = np.array(EDGE_X + halves + list(rand), np.int64)
    return values[(values >= INT32_MIN) & (values <= INT32_MAX)]


def test_doubling_high_mul_equals_gemmlowp():
    rng = np.random.default_rng(0)
    a = _grid(rng, 300)
    for b in EDGE_M + list(rng.integers(INT32_MIN, INT32_MAX, 5)):
        got = saturating_rounding_doubling_high_mul(a, np.int64(b))
        assert got.dtype == np.int64
        assert got.tolist() == [_srdhm(int(v), int(b)) for v in a], b
    # both operands arrays, the overflow in some lanes only
    b = np.resize(np.array(EDGE_M, np.int64), a.shape)
    assert saturating_rounding_doubling_high_mul(a, b).tolist() == [_srdhm(int(x), int(y)) for x, y in zip(a, b)]
    assert int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX


def test_rounding_divide_by_pot_equals_gemmlowp():
    rng = np.random.default_rng(1)
    x = _grid(rng, 300)
    # exact halves and one past them, both signs, for every exponent
    for e in range(0, 32):
        xs = np.concatenate([x, np.array([s * ((k << e) + (1 << e >> 1) + d) for s in (1, -1) for k in (0, 1, 5)
                                          for d in (-1, 0, 1)], np.int64)])
        got = rounding_divide_by_pot(xs, e)
        assert got.tolist() == [_rdbpot(int(v), e) for v in xs], e
    # a per-channel exponent with zeros among them (no rounding term there, not even below zero)
    e = np.array([0, 1, 0, 5, 31, 2], np.int64)
    xs = np.resize(x, (len(x) // 6, 6))
    want = [[_rdbpot(int(v), int(k)) for v, k in zip(row, e)] for row in xs]
    assert rounding_divide_by_pot(xs, e).tolist() == want
    # a scalar x against an exponent array broadcasts; a scalar gives a scalar
    assert rounding_divide_by_pot(-7, e).tolist() == [_rdbpot(-7, int(k)) for k in e]
    assert np.ndim(rounding_divide_by_pot(-7, 2)) == 0 and int(rounding_divide_by_pot(-7, 2)) == _rdbpot(-7, 2)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_multiply_by_quantized_multiplier_equals_tflite_per_tensor(rounding):
    rng = np.random.default_rng(2)
    x = _grid(rng, 200)
    for m in EDGE_M[:-1] if rounding == "single" else EDGE_M:
        for shift in EDGE_SHIFT:
            want = [_mbqm(int(v), m, shift, rounding) for v in x]
            for xs in (x, x.astype(np.int32)):
                got = multiply_by_quantized_multiplier(xs, m, shift, rounding)
                assert got.dtype == np.int64 and got.tolist() == want, (m, shift, xs.dtype)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_multiply_by_quantized_multiplier_equals_tflite_per_channel_in_blocks(rounding, monkeypatch):
    """Per-channel parameters over a map larger than a block (blocks of a few rows, a last partial one), and
    (double rounding) values beyond int32, which it wraps as the C's int32 does."""
    monkeypatch.setattr(fixedpoint, "_BLOCK", 64)
    rng = np.random.default_rng(3)
    c = len(EDGE_SHIFT)
    m = np.array((EDGE_M[:-1] * 2)[:c], np.int64)
    shift = np.array(EDGE_SHIFT, np.int64)
    flat = _grid(rng, 500)
    if rounding == "double":  # single rounding takes int32 values only (its 64-bit product would overflow)
        flat = np.concatenate([flat, rng.integers(-(1 << 40), 1 << 40, 77)])
    x = np.resize(flat, (3, len(flat) // (3 * c) + 1, c))
    want = np.array([[[_mbqm(int(v), int(m[k]), int(shift[k]), rounding) for k, v in enumerate(px)] for px in row]
                     for row in x])
    got = multiply_by_quantized_multiplier(x, m, shift, rounding)
    assert got.shape == x.shape and np.array_equal(got, want)
    if rounding == "double":  # an int32 accumulator (wrapped already) gives the same
        assert np.array_equal(multiply_by_quantized_multiplier(x.astype(np.int32), m, shift), want)


def test_multiply_by_quantized_multiplier_shapes_and_scalars():
    x = np.arange(-6, 6, dtype=np.int64).reshape(2, 6)
    # a parameter that is not per channel (one per element) takes the whole-array path
    m = np.full((2, 6), 1 << 30, np.int64)
    assert multiply_by_quantized_multiplier(x, m, -1).tolist() == [[_mbqm(int(v), 1 << 30, -1, "double") for v in r]
                                                                     for r in x]
    # a scalar gives a scalar; an array of multipliers against a scalar broadcasts
    assert np.ndim(multiply_by_quantized_multiplier(-5, 1 << 30, -3)) == 0
    got = multiply_by_quantized_multiplier(1000, np.array(EDGE_M[:-1]), 0)
    assert got.tolist() == [_mbqm(1000, m_, 0, "double") for m_ in EDGE_M[:-1]]
    with pytest.raises(ValueError):
        multiply_by_quantized_multiplier(x, 1 << 30, 0, "nearest")



@pytest.mark.parametrize("per_channel", [True, False])
def test_requantize_saturated_in_one_rounded_shift_equals_tflite(per_channel, monkeypatch):
    """requantize_saturated's block path, the double rounding and the output offset as one rounded shift of the
    64-bit product (``_Requantizer.fused``), equals TFLite's two roundings element by element, then the offset and
    the clamp: right shifts 0 to 31 side by side (0: no rounding term), exact halves, both clamps hit, offsets at
    either end, values beyond int32 (wrapped as the C's int32); and where it does not apply (a left shift, an
    INT32_MIN multiplier, an offset too large for 64 bits) the two-rounding passes give the same."""
    monkeypatch.setattr(fixedpoint, "_BLOCK", 64)
    rng = np.random.default_rng(7)
    flat = np.concatenate([_grid(rng, 400), rng.integers(-(1 << 40), 1 << 40, 50), rng.integers(-300, 300, 200)])
    cases = [[0, -1, -2, -8, -17, -23, -20, 0, -5], [-3, 0, -31, -9, -12, -1, -20, -2, -6],  # -31: no offset fits
             [-4, 2, -1, 0, -7, -3, -9, -2, -6]]  # a left shift
    taken = []
    real_fused = fixedpoint._Requantizer.fused

    def spy(self, offset):
        got = real_fused(self, offset)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(fixedpoint._Requantizer, "fused", spy)
    seen = set()
    c = 9
    x = np.resize(flat, (2, len(flat) // (2 * c) + 1, c))
    mults = [[1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX, 1 << 30, INT32_MAX - 1, 1 << 30, 1, 0],
             [INT32_MIN] + list(rng.integers(1 << 30, INT32_MAX, 8)), list(rng.integers(1 << 30, INT32_MAX, 9))]
    for shifts, mults in [(s, m) for s in cases for m in mults]:
        shift = np.array(shifts if per_channel else shifts[1:2], np.int64)
        m = np.array(mults if per_channel else mults[1:2], np.int64)
        sh, mm = np.resize(shift, c), np.resize(m, c)
        for offset, lo, hi, dtype in [(-5, -128, 127, np.int8), (127, -128, 127, np.int8), (-128, -128, 90, np.int8),
                                      (3, -8, 7, np.int8), (0, -2, 1, np.int8), (1 << 40, -(1 << 20), 1 << 20, np.int32)]:
            want = np.array([[[min(hi, max(lo, _mbqm(int(v), int(mm[k]), int(sh[k]), "double") + offset))
                               for k, v in enumerate(px)] for px in row] for row in x], np.int64)
            taken.clear()
            got = fixedpoint.requantize_saturated(x, m, shift, offset, lo, hi, dtype)
            assert got.dtype == dtype and got.shape == x.shape and np.array_equal(got, want), (shifts, offset)
            fused = (shift.max() <= 0 and m.min() > INT32_MIN
                     and (abs(offset) + 1) * 2 ** (31 - int(shift.min())) <= 2 ** 62)
            assert taken == [fused], (shifts, offset)
            seen.add(fused)
    assert seen == {True, False}


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_requantize_saturated_adds_the_bias_block_by_block(rounding, monkeypatch):
    """requantize_saturated(x, ..., bias=b) equals requantizing x.astype(int64) + b (TFLite's formulas element by
    element), for int32 sums and for the same integers held in float32 / float64 (a matrix product's), per-channel
    and one bias, in blocks and whole; (double rounding) sums past int32 wrap as the C's int32 does; a left shift
    and a per-channel clamp at both ends."""
    monkeypatch.setattr(fixedpoint, "_BLOCK", 64)
    rng = np.random.default_rng(8)
    c = 6
    shift = np.array([-9, 0, -1, -20, 1, -5], np.int64) if rounding == "double" else np.array([-9, 0, -1, -20, -3, -5])
    m = rng.integers(1 << 30, INT32_MAX, c)
    x = rng.integers(-(1 << 23), 1 << 23, (3, 15, c)).astype(np.int64)
    x[0, :2] = (1 << 23) - 1
    x[1, :2] = -(1 << 23)
    near = 1 << 31 if rounding == "double" else 1 << 29  # single: sums within int32
    wrapped = False
    for bias in (rng.integers(-near, near, c), np.array([near - 5] * c), np.int64(-near), rng.integers(-99, 99, c)):
        b = np.resize(np.asarray(bias, np.int64), c)
        wrapped |= bool(np.any(np.abs(x + b) >= 1 << 31))
        want = np.array([[[min(100, max(-128, _mbqm(_wrap32(int(v) + int(b[k])) if rounding == "double"
                                                     else int(v) + int(b[k]), int(m[k]), int(shift[k]), rounding) - 3))
                           for k, v in enumerate(px)] for px in row] for row in x], np.int64)
        for xs in (x, x.astype(np.int32), x.astype(np.float32), x.astype(np.float64)):
            for block in (64, 1 << 20):  # block by block, and whole (the small-map path)
                monkeypatch.setattr(fixedpoint, "_BLOCK", block)
                got = fixedpoint.requantize_saturated(xs, m, shift, -3, -128, 100, np.int8, rounding, bias=bias)
                assert got.dtype == np.int8 and np.array_equal(got, want), (xs.dtype, block, bias)
    assert wrapped == (rounding == "double")
