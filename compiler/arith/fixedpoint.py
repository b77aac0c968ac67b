"""TFLite / gemmlowp fixed-point arithmetic in numpy, vectorised and exact.

These are the integer semantics of TFLite's reference kernels (and of CMSIS-NN, which matches them):
multipliers are Q31 values with a power-of-two shift, products round with "doubling high multiply"
and then "rounding divide by power of two" (round half away from zero). Every function takes and
returns int64 arrays holding int32 values, so intermediate products never overflow.

Requantization has two roundings (:data:`ROUNDINGS`), as TFLite has: ``"double"``, its default (and
TFLite Micro's and CMSIS-NN's), and ``"single"``, its ``TFLITE_SINGLE_ROUNDING`` build (CMSIS-NN's
``CMSIS_NN_USE_SINGLE_ROUNDING``): one 64-bit product rounded once, half up. Single rounding is the
exact real product ``x * real_multiplier`` rounded to nearest (up to the Q31 multiplier's precision and
the direction of exact halves), which is what ONNX's QDQ semantics (a float op, then QuantizeLinear)
and onnxruntime compute.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
# shift in [-31, 30]: kernels shift the accumulator left by at most 30 bits (TFLite's single-rounding limit)
MAX_SHIFT = 30


class MultiplierRangeError(ValueError):
    """A real multiplier that no Q31 multiplier with a shift in [-31, 30] represents (``real``)."""

    def __init__(self, message: str, real: float):
        super().__init__(message)
        self.real = real


def round_half_away(x):
    """std::round: halves away from zero (numpy's round is half-to-even)."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float, strict: bool = True) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31).

    ``strict`` refuses shifts above 30 (the kernels' left shift would overflow int32) with
    :class:`MultiplierRangeError`; TFLite Micro itself accepts them, so its semantics module passes
    strict=False. Multipliers below 2^-32 flush to zero, as TFLite's QuantizeMultiplier does (every
    product rounds to 0 anyway). NaN or infinite values are refused (no scale gives them), and with
    ``strict`` negative ones too (scales are positive)."""
    if not math.isfinite(real) or (strict and real < 0.0):
        raise MultiplierRangeError(f"requantization multiplier {real} is not a finite non-negative number", real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if strict and shift > MAX_SHIFT:
        raise MultiplierRangeError(f"requantization multiplier {real:.6g} is too large for int32 fixed point "
                                   f"(at most 2^{MAX_SHIFT})", real)
    return q_fixed, shift


def quantize_multiplier_array(reals) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier (strict) over an array: (multipliers, shifts) as int64 arrays; a refusal names
    the largest multiplier (the one a wider output range must bring into range)."""
    reals = np.ravel(np.asarray(reals, np.float64))
    if reals.size and np.all(np.isfinite(reals)):
        quantize_multiplier(float(reals.max()))
    pairs = [quantize_multiplier(float(r)) for r in reals]
    return (np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64))


def input_span(input_zero_point: int, input_bits: int = 8) -> int:
    """max |x - zp| over every ``input_bits``-bit input x (127 - zp or zp + 128 at 8 bits)."""
    qmin, qmax = -(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1
    return max(qmax - int(input_zero_point), int(input_zero_point) - qmin)


def accumulator_bound(weights: np.ndarray, bias: np.ndarray, axis: int, input_zero_point: int,
                      input_bits: int = 8) -> np.ndarray:
    """Per output channel, the largest |bias + sum(w * (x - zp))| over every ``input_bits``-bit input x.

    This is what an int32 accumulator of conv / depthwise / fully connected must hold (C's signed
    overflow is undefined behaviour); partial sums in any order are bounded by the same value.
    ``weights`` int8 with output channels along ``axis``, ``bias`` int32 per channel."""
    w = np.abs(np.moveaxis(np.asarray(weights, np.int64), axis, 0).reshape(weights.shape[axis], -1)).sum(axis=1)
    return np.abs(np.asarray(bias, np.int64).reshape(-1)) + input_span(input_zero_point, input_bits) * w


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul (arm_nn_doubling_high_mult).

    gemmlowp adds a nudge of 2^30 (1 - 2^30 below zero) and divides by 2^31 truncating toward zero; for a
    negative product p that is ceil((p + 1 - 2^30) / 2^31) = floor((p + 2^30) / 2^31), the same as for a
    non-negative one, so the whole is ``(a * b + 2^30) >> 31`` (two passes over the data instead of a select
    between two divisions); the one overflow, INT32_MIN x INT32_MIN, saturates to INT32_MAX."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    res = np.asarray(a * b)
    res += 1 << 30
    res >>= 31
    if np.any(a == INT32_MIN) and np.any(b == INT32_MIN):
        res = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, res)
    return res.astype(np.int64, copy=False)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, halves away from zero (exponent in [0, 62]).

    gemmlowp rounds up when the remainder exceeds half the divisor minus one (minus none below zero); that is
    ``(x + 2^(e-1) - [x < 0]) >> e`` for e >= 1 and x itself for e = 0."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    shape = np.broadcast_shapes(x.shape, exponent.shape)
    out = np.array(np.broadcast_to(x, shape), np.int64)
    _RoundingShift(exponent).apply(out)
    return out[()] if out.ndim == 0 else out  # a scalar for scalars, as numpy's own operators give


class _RoundingShift:
    """rounding_divide_by_pot by a fixed ``exponent``, in place on int64 arrays it broadcasts against."""

    def __init__(self, exponent: np.ndarray):
        self.exponent = exponent
        self.any = bool(np.any(exponent))
        self.half = (np.int64(1) << exponent) >> 1
        # e = 0 takes no rounding term, not even the -1 below zero
        self.sign_mask = None if np.all(exponent > 0) else -(exponent > 0).astype(np.int64)

    def apply(self, x: np.ndarray) -> None:
        if not self.any:
            return
        adj = np.right_shift(x, 63)  # -1 below zero, else 0
        if self.sign_mask is not None:
            adj &= self.sign_mask
        adj += self.half
        x += adj
        x >>= self.exponent


#: requantization roundings: TFLite's default (two roundings) and its single-rounding build
ROUNDINGS = ("double", "single")

#: elements per block of :func:`multiply_by_quantized_multiplier`: its several passes over a block stay in the
#: cache (about 3x faster on large maps than whole-array passes, which are memory bound)
_BLOCK = 1 << 15


def multiply_by_quantized_multiplier(x, multiplier, shift, rounding: str = "double"):
    """TFLite MultiplyByQuantizedMultiplier, as arm_nn_requantize: ``x * multiplier * 2^(shift - 31)``
    with TFLite's double rounding, or (``rounding="single"``) rounded once, half up, as TFLite's
    TFLITE_SINGLE_ROUNDING build: ``(x * multiplier + 2^(30 - shift)) >> (31 - shift)`` in 64 bits.

    Returns int64. With double rounding ``x * 2^max(shift, 0)`` wraps to int32 first, as the C does (an
    int32 ``x``, a kernel's accumulator, needs no wrap). Multipliers and shifts per tensor or per last axis
    (channel) run block by block over the rows; every step works in place (tests/test_fixedpoint.py holds
    this equal to gemmlowp's formulas written out, element by element)."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.dtype.itemsize > 4 or x.dtype == np.uint32 or rounding == "single":
        x = np.asarray(x, np.int64)
    multiplier = np.asarray(multiplier, np.int64)
    shift = np.asarray(shift, np.int64)
    req = _Requantizer(multiplier, shift, rounding)
    per_channel = x.ndim >= 1 and all(a.ndim <= 1 and a.size in (1, x.shape[-1]) for a in (multiplier, shift))
    if not per_channel or x.size <= _BLOCK:
        shape = np.broadcast_shapes(x.shape, multiplier.shape, shift.shape)
        out = np.empty(shape, np.int64)
        req.apply(np.broadcast_to(x, shape), out)
        return out[()] if out.ndim == 0 else out
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    out = np.empty(flat.shape, np.int64)
    step = max(1, _BLOCK // c)
    for a in range(0, len(flat), step):
        req.apply(flat[a : a + step], out[a : a + step])
    return out.reshape(x.shape)


def requantize_saturated(x, multiplier, shift, output_offset: int, lo: int, hi: int, dtype,
                         rounding: str = "double", bias=None) -> np.ndarray:
    """``clip(multiply_by_quantized_multiplier(x, ...) + output_offset, lo, hi)`` as ``dtype``, block by block
    (what ``arith.bitwidth.requantize`` computes, without three more passes over an int64 copy of the map);
    multipliers and shifts per tensor or per last axis. ``bias`` (per last axis, or one value): added to ``x``
    first, in 64 bits, block by block (``x`` may then hold integers in floats, a matrix product's sums, exact): the
    same as requantizing ``x.astype(int64) + bias``."""
    x = np.asarray(x)
    multiplier = np.asarray(multiplier, np.int64)
    shift = np.asarray(shift, np.int64)
    per_channel = x.ndim >= 1 and all(a.ndim <= 1 and a.size in (1, x.shape[-1]) for a in (multiplier, shift))
    if bias is not None:
        bias = np.asarray(bias, np.int64)
        per_channel = per_channel and bias.ndim <= 1 and bias.size in (1, x.shape[-1])
    if not per_channel or x.size <= _BLOCK:
        if bias is not None:
            x = np.asarray(x, np.int64) + bias
        v = multiply_by_quantized_multiplier(x, multiplier, shift, rounding) + output_offset
        return np.clip(v, lo, hi).astype(dtype)
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    if bias is None and (x.dtype.kind not in "iu" or x.dtype.itemsize > 4 or x.dtype == np.uint32
                         or rounding == "single"):
        x = np.asarray(x, np.int64)
    req = _Requantizer(multiplier, shift, rounding)
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    out = np.empty(flat.shape, dtype)
    step = max(1, _BLOCK // c)
    tmp = np.empty((step, c), np.int64)

    def tiled(v):  # a per-channel constant over a block: same-shape passes (a broadcast row costs ~3x)
        return np.ascontiguousarray(np.broadcast_to(v, (step, c))) if np.ndim(v) else v

    def rows(v, k):
        return v[:k] if np.ndim(v) else v

    if bias is not None:
        bias_t, with_bias = tiled(bias), np.empty((step, c), np.int64)

    def block_of(a):
        block = flat[a : a + step]
        if bias is None:
            return block
        xb = with_bias[: len(block)]
        np.copyto(xb, block, casting="unsafe")  # integers (in floats: exact ones) to int64
        xb += rows(bias_t, len(block))
        return xb

    fused = req.fused(output_offset)
    if fused is not None:
        keep, add, total = (tiled(v) for v in fused)
        mult = tiled(req.multiplier)
        sign = np.empty((step, c), np.int64)
        for a in range(0, len(flat), step):
            block = block_of(a)
            k = len(block)
            t, sg = tmp[:k], sign[:k]
            np.multiply(block.astype(np.int32, copy=False), rows(mult, k), out=t, dtype=np.int64)  # int32 wrap
            t += 1 << 30
            np.right_shift(t, 63, out=sg)  # -1 where q < 0
            sg <<= 31
            if keep is not None:
                sg &= rows(keep, k)
            t += sg
            t += rows(add, k)
            t >>= rows(total, k)
            np.clip(t, lo, hi, out=out[a : a + step], casting="unsafe")  # clamped into dtype's range: exact
        return out.reshape(x.shape)
    for a in range(0, len(flat), step):
        block = block_of(a)
        t = tmp[: len(block)]
        req.apply(block, t)
        t += output_offset
        np.clip(t, lo, hi, out=out[a : a + step], casting="unsafe")
    return out.reshape(x.shape)


class _Requantizer:
    """multiply_by_quantized_multiplier's per-call constants, applied to one block at a time."""

    def __init__(self, multiplier: np.ndarray, shift: np.ndarray, rounding: str):
        self.multiplier, self.rounding = multiplier, rounding
        if rounding == "single":
            self.total = 31 - shift
            self.nudge = np.int64(1) << (self.total - 1)
            return
        self.left = np.maximum(shift, 0)
        self.any_left = bool(np.any(self.left))
        self.min_multiplier = bool(np.any(multiplier == INT32_MIN))
        self.right = _RoundingShift(np.maximum(-shift, 0))

    def fused(self, output_offset: int):
        """The double rounding with ``output_offset`` added as one rounded shift of the 64-bit product, or None
        (a left shift, an INT32_MIN multiplier, single rounding, or an offset too large for 64 bits).

        With P = x * multiplier and e the right shift, the high multiply is q = floor((P + 2^30) / 2^31) and the
        rounding shift floor((q + h - [q < 0]) / 2^e), h = 2^(e-1) (for e >= 1; q itself for e = 0). As
        floor(floor(y / a) / b) = floor(y / ab) for positive integers a, b, that is, with the offset o added,
        ``floor((P + 2^30 - 2^31 [P + 2^30 < 0] + h 2^31 + o 2^(31+e)) / 2^(31+e))`` (q < 0 exactly when
        P + 2^30 < 0). Returns (``keep``: None when every e >= 1, else a mask that drops the -2^31 where e = 0,
        ``add``: h 2^31 + o 2^(31+e), ``total``: 31 + e), per channel or per tensor as the shifts are.
        |P| <= 2^62, so every sum fits int64 when (|o| + 1) 2^(31+e) <= 2^62."""
        if self.rounding != "double" or self.any_left or self.min_multiplier:
            return None
        e = self.right.exponent
        if (abs(int(output_offset)) + 1) << (31 + int(np.max(e, initial=0))) > (1 << 62):
            return None
        return self.right.sign_mask, (self.right.half << 31) + (np.int64(output_offset) << (31 + e)), 31 + e

    def apply(self, x: np.ndarray, out: np.ndarray) -> None:
        if self.rounding == "single":
            np.multiply(x, self.multiplier, out=out, dtype=np.int64)
            out += self.nudge
            out >>= self.total
            return
        if self.any_left:
            x = np.left_shift(x, self.left, dtype=np.int64)
        shifted = x.astype(np.int32, copy=False)  # int32 wrap of x * 2^left, as in C
        # saturating_rounding_doubling_high_mul, in place
        np.multiply(shifted, self.multiplier, out=out, dtype=np.int64)
        out += 1 << 30
        out >>= 31
        if self.min_multiplier:
            out[...] = np.where((shifted == INT32_MIN) & (self.multiplier == INT32_MIN), INT32_MAX, out)
        self.right.apply(out)


def mult_by_pot_saturating(x, exponent: int):
    """arm_nn_mult_by_power_of_two: x * 2^exponent saturated to int32."""
    x = np.asarray(x, np.int64)
    thresh = (1 << (31 - exponent)) - 1
    res = x << exponent
    res = ((res + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    res = np.where(x > thresh, INT32_MAX, res)
    res = np.where(x < -thresh, INT32_MIN, res)
    return res


def exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values for a Q5.26 input (5 integer bits), result Q0.31."""
    a = np.asarray(a, np.int64)
    mul = saturating_rounding_doubling_high_mul
    shift = 24
    val_mod_minus_quarter = (a & ((1 << shift) - 1)) - (1 << shift)
    remainder = val_mod_minus_quarter - a
    x = wrap32((val_mod_minus_quarter << 5) + (1 << 28))
    x2 = mul(x, x)
    inner = wrap32(rounding_divide_by_pot(mul(x2, x2), 2) + mul(x2, x))
    inner = wrap32(rounding_divide_by_pot(wrap32(mul(inner, 715827883) + x2), 1))
    result = wrap32(1895147668 + mul(1895147668, wrap32(x + inner)))
    for constant in (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242):
        result = np.where((remainder & (1 << shift)) != 0, mul(result, constant), result)
        shift += 1
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson), Q0.31 in, Q2.29 out scaled by 2."""
    a = np.asarray(a, np.int64)
    mul = saturating_rounding_doubling_high_mul
    s = a + INT32_MAX
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))
    x = wrap32(1515870810 + mul(half_denominator, -1010580540))
    one_q29 = 1 << 29
    for _ in range(3):
        x = wrap32(x + mult_by_pot_saturating(mul(x, wrap32(one_q29 - mul(half_denominator, x))), 2))
    return mult_by_pot_saturating(x, 1)


def wrap32(x):
    x = np.asarray(x, np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def count_leading_zeros_u32(x):
    """CLZ of the low 32 bits (32 for zero)."""
    x = np.asarray(x, np.int64) & 0xFFFFFFFF
    bit_length = np.zeros(x.shape, np.int64)
    for b in range(32):
        bit_length = np.where((x >> b) != 0, b + 1, bit_length)
    return 32 - bit_length


def softmax_params(beta: float, input_scale: float, integer_bits: int = 5) -> tuple[int, int, int]:
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius: (multiplier, left_shift, diff_min)."""
    real = min(beta * input_scale * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise MultiplierRangeError("softmax input scale too small for TFLite's integer softmax", real)
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << shift)
    return mult, shift, -int(math.floor(max_input_rescaled))
