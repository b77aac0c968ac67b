"""Bit-exact numpy models of TFLite Micro's int8 reference kernels.

Every function here reproduces, bit for bit, what the TFLM *reference* kernels compute (the kernels
the ``tflite_micro`` Python interpreter runs and that ``tests/test_tflite_semantics.py`` checks
against), including the float arithmetic of their ``Prepare`` step (float32 vs double, rounding of
``std::round``, truncating C division and casts). The arithmetic is reimplemented from the kernel
descriptions; nothing here calls TFLite.

Ops and the TFLM code path each follows:

* LOGISTIC int8 (``logistic_common.cc`` Prepare + ``reference_integer_ops::Logistic``):
  gemmlowp fixed-point ``logistic`` on a Q4.27 input, output fixed at scale 1/256, zero point -128.
* TANH int8 (``tanh.cc`` + ``reference_integer_ops::Tanh``): gemmlowp ``tanh`` on Q4.27, output
  written as if scale were 1/128 and zero point 0 (the kernel ignores the output tensor's params).
* HARD_SWISH int8 (``hard_swish_common.cc`` + ``reference_ops::HardSwish<int8_t>``): 16-bit
  fixed-point path with two Q15 multipliers (Prepare divides the scales in double).
* QUANTIZE int8 -> int8 (``quantize_common.cc`` + ``reference_ops::Requantize``): one
  ``MultiplyByQuantizedMultiplier`` with multiplier ``in_scale / out_scale`` (computed in double).
* QUANTIZE float -> int8 (``reference_ops::AffineQuantize``): ``round(x / (float)scale) + zp`` with
  a float32 division and ``std::round`` (halves away from zero), then a clamp.
* DEQUANTIZE int8 -> float (``reference_ops::Dequantize``): ``(float)((double)scale * (q - zp))``.
* MEAN int8 (``reduce_common.cc`` EvalMeanHelper -> ``reference_ops::QuantizedMeanOrSum``): TFLM
  has had a single int8 MEAN path since 2023 (the old same-scale ``Mean`` / 4-D ``integer_ops::Mean``
  fast paths are gone), used whatever the input/output params and ``keep_dims``.
* AVERAGE_POOL_2D int8 (``reference_integer_ops::AveragePool``): sum of the *raw* int8 taps inside
  the image (padding taps are not counted), round-half-away integer division by the tap count,
  clamp to the activation range. Input and output params must be equal (Prepare checks it).

All integer work is done on int64 numpy arrays holding the exact C values (int32 / int16
intermediates are wrapped or saturated exactly where C would).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    MultiplierRangeError,
    mult_by_pot_saturating,
    multiply_by_quantized_multiplier,
    one_over_one_plus_x_for_x_in_0_1,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

INT8_ALL = np.arange(-128, 128, dtype=np.int64)  # table index i holds input q = i - 128

__all__ = [
    "LogisticParams", "HardSwishParams", "MeanParams",
    "tflite_quantize_multiplier", "logistic_params", "logistic_table", "tanh_params", "tanh_table",
    "hard_swish_params", "hard_swish_table", "hard_swish_apply", "requantize_table", "quantize_float", "dequantize",
    "mean_params", "mean_hw", "average_pool", "same_padding",
]


# ---------------------------------------------------------------------------------------------
# small exact helpers
# ---------------------------------------------------------------------------------------------

def wrap32(x):
    x = np.asarray(x, np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _wrap16(x):
    x = np.asarray(x, np.int64)
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _c_div(a, b):
    """C integer division (truncates toward zero)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _std_round(x: float) -> float:
    """std::round on a double: halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x) if abs(x) < 2.0 ** 52 else x


def tflite_quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double rounding build): real ~= m * 2^(shift-31), m in [2^30, 2^31).

    Unlike the compiler's own use of ``fixedpoint.quantize_multiplier`` this never raises: TFLM accepts shift > 30.
    """
    return quantize_multiplier(float(real), strict=False)


def _frexp_multiplier(real: float) -> tuple[int, int]:
    """The LOGISTIC/TANH Prepare variant: frexp + round, no renormalisation and no flush to zero.

    q * 2^31 cannot round up to 2^31 here because ``real`` is a float32 scale times 2^27.
    """
    q, shift = math.frexp(float(real))
    return int(_std_round(q * (1 << 31))), shift


def _calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """tflite::CalculateInputRadius (float build)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


# ---------------------------------------------------------------------------------------------
# gemmlowp fixed point (int32 raw), generic in the number of integer bits
# ---------------------------------------------------------------------------------------------

_mul = saturating_rounding_doubling_high_mul


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """gemmlowp: exp(a) for a Q0.31 in [-1/4, 0)."""
    x = wrap32(a + (1 << 28))  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap32(_mul(wrap32(x4_over_4 + x3), 715827883) + x2), 1)
    return wrap32(1895147668 + _mul(1895147668, wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def _exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values for a Q(integer_bits).(31-integer_bits) input a <= 0; Q0.31 out."""
    a = np.asarray(a, np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap32((a & (one_quarter - 1)) - one_quarter)
    # Rescale<0>: saturating left shift by integer_bits (never saturates for values in [-1/4, 0)).
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        mult_by_pot_saturating(a_mod_quarter_minus_one_quarter, integer_bits) if integer_bits else
        a_mod_quarter_minus_one_quarter)
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, _mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp: (1 - a) / (1 + a), a Q0.31 in (0, 1), Newton-Raphson; Q0.31 out."""
    a = np.asarray(a, np.int64)
    s = a + INT32_MAX
    half_denominator = _c_div(s + np.where(s >= 0, 1, -1), 2)
    x = wrap32(1515870810 + _mul(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - _mul(half_denominator, x))
        x = wrap32(x + mult_by_pot_saturating(_mul(x, one_minus), 2))
    return mult_by_pot_saturating(wrap32(x - (1 << 29)), 2)


def _gemmlowp_logistic(a, integer_bits: int):
    """gemmlowp::logistic on a raw Q(integer_bits) int32; raw Q0.31 out."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_a = np.where(positive, a, wrap32(-a))
    pos = one_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(wrap32(-abs_a), integer_bits))
    neg = wrap32(INT32_MAX - pos)
    return np.where(a == 0, 1 << 30, np.where(positive, pos, neg))


def _gemmlowp_tanh(a, integer_bits: int):
    """gemmlowp::tanh on a raw Q(integer_bits) int32; raw Q0.31 out."""
    a = np.asarray(a, np.int64)
    negative = a < 0
    n = np.where(negative, a, wrap32(-a))
    # neg_tanh_on_negative_values: exp_on_negative_values(ExactMulByPot<1>(n)) -> one more integer bit
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap32(-t), t))


# ---------------------------------------------------------------------------------------------
# LOGISTIC / TANH
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogisticParams:
    """What TFLM's LOGISTIC/TANH Prepare stores for an int8 input (``OpDataLogistic``)."""

    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def logistic_params(in_scale: float, in_zp: int) -> LogisticParams:
    """CalculateArithmeticOpDataLogistic (int8): kInputIntegerBits = 4.

    input_real_multiplier = (double)in_scale * 2^27; (q, shift) = frexp(.);
    input_multiplier = round(q * 2^31); input_left_shift = shift;
    input_range_radius = floor(15 * 2^27 / 2^shift).
    """
    real = float(np.float32(in_scale)) * float(1 << 27)
    mult, shift = _frexp_multiplier(real)
    return LogisticParams(int(in_zp), mult, shift, _calculate_input_radius(4, shift, 31))


tanh_params = logistic_params  # TANH int8 Prepare computes the same four numbers


def _logistic_or_tanh_q0(q, p: LogisticParams, fn):
    x = np.asarray(q, np.int64) - p.input_zero_point
    in_q4 = multiply_by_quantized_multiplier(x, p.input_multiplier, p.input_left_shift)
    return x, fn(in_q4, 4)


def logistic_table(in_scale: float, in_zp: int) -> np.ndarray:
    """TFLM int8 LOGISTIC output for every input q = -128..127 (index q + 128).

    Per element: x = q - zp; x <= -radius -> -128; x >= radius -> 127; otherwise
    y = gemmlowp::logistic(Q4.27 MultiplyByQuantizedMultiplier(x, mult, left_shift)) (Q0.31),
    out = clamp(RoundingDivideByPOT(y, 23) - 128, -128, 127). Output params are 1/256, -128.
    """
    p = logistic_params(in_scale, in_zp)
    x, y = _logistic_or_tanh_q0(INT8_ALL, p, _gemmlowp_logistic)
    out = np.clip(rounding_divide_by_pot(y, 31 - 8) - 128, -128, 127)
    out = np.where(x <= -p.input_range_radius, -128, np.where(x >= p.input_range_radius, 127, out))
    return out.astype(np.int8)


def tanh_table(in_scale: float, in_zp: int, out_scale: float = 1.0 / 128, out_zp: int = 0) -> np.ndarray:
    """TFLM int8 TANH output for every input q = -128..127 (index q + 128).

    Same input handling as LOGISTIC (same params), then y = gemmlowp::tanh(Q4.27) (Q0.31) and
    out = clamp(RoundingDivideByPOT(y, 24), -128, 127). The kernel never reads the output tensor's
    params: it always writes scale 1/128, zero point 0 (what the converter produces). ``out_scale``
    and ``out_zp`` are accepted for symmetry and ignored, exactly as TFLM ignores them.
    """
    del out_scale, out_zp
    p = tanh_params(in_scale, in_zp)
    x, y = _logistic_or_tanh_q0(INT8_ALL, p, _gemmlowp_tanh)
    out = np.clip(rounding_divide_by_pot(y, 31 - 7), -128, 127)
    out = np.where(x <= -p.input_range_radius, -128, np.where(x >= p.input_range_radius, 127, out))
    return out.astype(np.int8)


# ---------------------------------------------------------------------------------------------
# HARD_SWISH
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HardSwishParams:
    """tflite::HardSwishParams as TFLM's HardSwishPrepare fills it for int8."""

    input_zero_point: int
    output_zero_point: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int


def _downscale_int32_to_int16_multiplier(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def hard_swish_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                      float32_division: bool = False) -> HardSwishParams:
    """HardSwishPrepare (int8).

    hires_input_scale  = (1.0f / 128.0f) * in_scale                    (float32, exact)
    output_multiplier  = (double)hires_input_scale / (double)out_scale  (double division)
    reluish_multiplier = (double)hires_input_scale / (3.0 / 32768.0)    (double division)
    each -> QuantizeMultiplier -> (m32, exponent);
    m16 = m32 >= INT32_MAX - 2^15 ? 32767 : (m32 + 2^15) >> 16         (DownScaleInt32ToInt16Multiplier)
    TFLM requires output_multiplier_exponent <= 0.

    The installed TFLM (tflite-micro 0.dev20261023; checked in its machine code and against the
    interpreter) divides in double. TFLM sources up to at least August 2026 wrote
    ``static_cast<double>(hires_input_scale / output_scale)``, a float32 division; pass
    ``float32_division=True`` to model those builds. The two differ by one LSB of the int16 output
    multiplier for roughly one (in_scale, out_scale) pair in a thousand, which moves about one output
    byte of the 256 (the reluish multiplier never differs: x / 3 can't sit that close to a
    rounding midpoint).
    """
    f32 = np.float32
    hires = f32(f32(1.0) / f32(128.0)) * f32(in_scale)
    if float32_division:
        out_real = float(f32(hires / f32(out_scale)))
        rel_real = float(f32(hires / (f32(3.0) / f32(32768.0))))
    else:
        out_real = float(hires) / float(f32(out_scale))
        rel_real = float(hires) / (3.0 / 32768.0)
    out_m32, out_e = tflite_quantize_multiplier(out_real)
    rel_m32, rel_e = tflite_quantize_multiplier(rel_real)
    if out_e > 0:
        raise MultiplierRangeError("TFLite Micro's HARD_SWISH needs output_multiplier_exponent <= 0, but "
                                   f"in_scale {in_scale:g} / 128 / out_scale {out_scale:g} >= 1", out_real)
    return HardSwishParams(int(in_zp), int(out_zp), _downscale_int32_to_int16_multiplier(rel_m32), rel_e,
                           _downscale_int32_to_int16_multiplier(out_m32), out_e)


def _srdhm16(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul<int16_t>."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    res = _wrap16(_c_div(ab + nudge, 1 << 15))
    return np.where((a == b) & (a == -32768), 32767, res)


def _sdhm16(a, b):
    """SaturatingDoublingHighMul<int16_t> (hard_swish.h): truncating, not rounding."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    res = _wrap16(_c_div(a * b, 1 << 15))
    return np.where((a == b) & (a == -32768), 32767, res)


def _rdbp16(x, exponent: int):
    """gemmlowp RoundingDivideByPOT<int16_t> (mask computed as int16 like the template does)."""
    x = np.asarray(x, np.int64)
    mask = int(_wrap16((1 << exponent) - 1))
    remainder = _wrap16(x & mask)
    threshold = (mask >> 1) + (x < 0)
    return _wrap16((x >> exponent) + (remainder > threshold))


def _saturating_left_shift16(x, amount: int):
    return np.clip(np.asarray(x, np.int64) * (1 << amount), -32768, 32767)


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLM int8 HARD_SWISH output for every input q = -128..127 (index q + 128).

    Per element (all int16 unless noted; see ``reference_ops::HardSwish``):
      v     = (q - in_zp) << 7                                   (hires input)
      pre   = SRDHM16(v, out_m16)                                 (input on pre-shift output scale)
      r     = v; if rel_e > 0: r = sat16(r << (rel_e - 1))
      r     = SRDHM16(r, rel_m16)
      if rel_e > 0: r = sat16(r << 1)  elif rel_e < 0: r = RDBP16(r, -rel_e)
      r     = (r + 32768) >> 1                                    (int arithmetic; [-1,1] -> [0,1])
      y     = trunc_toward_zero(r * pre / 2^15)                   (SaturatingDoublingHighMul)
      out   = clamp(RDBP16(y, -out_e) + out_zp, -128, 127)
    """
    return hard_swish_apply(INT8_ALL, hard_swish_params(in_scale, in_zp, out_scale, out_zp))


def hard_swish_apply(q, p: HardSwishParams) -> np.ndarray:
    """The HARD_SWISH int8 kernel on any int8 array, given Prepare's params (see ``hard_swish_table``)."""
    v = _wrap16(_wrap16(np.asarray(q, np.int64) - p.input_zero_point) * (1 << 7))
    pre = _srdhm16(v, p.output_multiplier_fixedpoint_int16)
    r = v
    e = p.reluish_multiplier_exponent
    if e > 0:
        r = _saturating_left_shift16(r, e - 1)
    r = _srdhm16(r, p.reluish_multiplier_fixedpoint_int16)
    if e > 0:
        r = _saturating_left_shift16(r, 1)
    if e < 0:
        r = _rdbp16(r, -e)
    r = _wrap16((r + (1 << 15)) >> 1)
    y = _sdhm16(r, pre)
    out = _wrap16(_rdbp16(y, -p.output_multiplier_exponent) + p.output_zero_point)
    return np.clip(out, -128, 127).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE
# ---------------------------------------------------------------------------------------------

def requantize_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                     rounding: str = "double") -> np.ndarray:
    """TFLM QUANTIZE int8 -> int8 for every input q = -128..127 (index q + 128).

    (m, s) = QuantizeMultiplier((double)in_scale / (double)out_scale)
    out = clamp(MultiplyByQuantizedMultiplier(q - in_zp, m, s) + out_zp, -128, 127)
    (the int8->int8 case has no same-scale shortcut; with equal scales m = 2^30, s = 1, an identity.)
    ``rounding``: TFLite's default ("double") or its single-rounding build (see arith.fixedpoint).
    """
    m, s = tflite_quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    out = multiply_by_quantized_multiplier(INT8_ALL - int(in_zp), m, s, rounding) + int(out_zp)
    return np.clip(out, -128, 127).astype(np.int8)


def quantize_float(x, scale: float, zp: int) -> np.ndarray:
    """TFLM QUANTIZE float32 -> int8 (AffineQuantize).

    out = clamp((int32)std::round(x / (float)scale) + zp, -128, 127); the division is float32 and
    the rounding is half away from zero on that float32 quotient. Out-of-int32-range quotients and
    NaN are undefined behaviour in C; here they saturate (NaN -> 0), as Cortex-M's VCVT does
    (x86 builds give INT32_MIN instead).
    """
    x = np.asarray(x, np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        v = (x / np.float32(scale)).astype(np.float64)
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)  # exact: v is a float32 value held in a double
    r = np.where(np.isnan(r), 0.0, np.clip(r, INT32_MIN, INT32_MAX)).astype(np.int64)
    return np.clip(wrap32(r + int(zp)), -128, 127).astype(np.int8)


def dequantize(q, scale: float, zp: int) -> np.ndarray:
    """TFLM DEQUANTIZE int8 -> float32: (float)((double)scale * (q - zp))."""
    q = np.asarray(q, np.int64)
    return (float(np.float32(scale)) * (q - int(zp)).astype(np.float64)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# MEAN over H, W
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeanParams:
    """The integers TFLM's int8 MEAN uses for one reduction of ``num_elements`` values.

    ``multiplier``/``shift`` already include the 1/num_elements factor (what QuantizedMeanOrSum
    feeds to MultiplyByQuantizedMultiplier); ``base_multiplier``/``base_shift`` are
    QuantizeMultiplier(in_scale / out_scale) from Prepare, kept for reference.
    ``input_offset`` = in_zp * num_elements is subtracted from the raw int32 sum.
    """

    num_elements: int
    input_zero_point: int
    output_zero_point: int
    base_multiplier: int
    base_shift: int
    multiplier: int
    shift: int
    input_offset: int


def mean_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int, num_elements: int) -> MeanParams:
    """Prepare + the rescaling at the top of ``reference_ops::QuantizedMeanOrSum`` (compute_sum=false).

    (m0, s0) = QuantizeMultiplier((double)in_scale / (double)out_scale)
    k        = min(floor(log2(n)), 32, 31 + s0)          (63 - clz64(n), clamped)
    m        = (int32)(((int64)m0 << k) / n)            (truncating division)
    s        = s0 - k
    """
    n = int(num_elements)
    if n <= 0:
        raise ValueError("MEAN needs at least one element per output")
    m0, s0 = tflite_quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    k = min(n.bit_length() - 1, 32, 31 + s0)
    m = int(wrap32((m0 << k) // n))
    if not -31 <= s0 - k <= 30:  # the C requantization shifts by it: outside this range it is undefined
        raise MultiplierRangeError(f"the MEAN rescale in_scale {in_scale:g} / out_scale {out_scale:g} over {n} "
                                   f"elements needs a shift of {s0 - k}, outside [-31, 30]",
                                   float(in_scale) / float(out_scale))
    return MeanParams(n, int(in_zp), int(out_zp), m0, s0, m, s0 - k, int(in_zp) * n)


def mean_hw(x, params: MeanParams, keep_dims: bool = True, rounding: str = "double") -> np.ndarray:
    """TFLM int8 MEAN over axes (1, 2) of an NHWC tensor; returns [N,1,1,C] (or [N,C] without keep_dims).

    TFLM code path: EvalMeanHelper -> EvalIntegerMean -> QuantizedMeanOrSum, the only int8 path
    (equal or different input/output params, keep_dims true or false give the same numbers).
    Per output element (pseudo-C):

        int32_t acc = 0;                                   // int32 accumulation (wraps)
        for (h) for (w) acc += x[n][h][w][c];              // raw int8 values
        int32_t shifted = (int32_t)((int64_t)acc - (int64_t)in_zp * num_elements);
        int32_t out = MultiplyByQuantizedMultiplier(shifted, p.multiplier, p.shift) + out_zp;
        //  = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(shifted * (1 << max(p.shift, 0)),
        //                                                          p.multiplier), max(-p.shift, 0))
        y[n][c] = (int8_t)min(max(out, -128), 127);
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError("mean_hw expects an NHWC tensor")
    if x.shape[1] * x.shape[2] != params.num_elements:
        raise ValueError(f"params were made for {params.num_elements} elements, tensor has H*W = "
                         f"{x.shape[1] * x.shape[2]}")
    acc = wrap32(x.astype(np.int64).sum(axis=(1, 2)))
    shifted = wrap32(acc - params.input_offset)
    out = multiply_by_quantized_multiplier(shifted, params.multiplier, params.shift, rounding) + params.output_zero_point
    out = np.clip(out, -128, 127).astype(np.int8)
    return out[:, None, None, :] if keep_dims else out


# ---------------------------------------------------------------------------------------------
# AVERAGE_POOL_2D
# ---------------------------------------------------------------------------------------------

def same_padding(in_size: int, filter_size: int, stride: int) -> tuple[int, int]:
    """TFLite SAME padding: (out_size, pad_before); the odd extra pad goes after."""
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + filter_size - in_size, 0)
    return out, total // 2


def average_pool(x, filter_hw: tuple[int, int], stride_hw: tuple[int, int], padding: str = "SAME",
                 act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """TFLM int8 AVERAGE_POOL_2D (input and output params are equal; zero points never enter).

    Per output: acc = sum of the raw int8 taps that fall inside the image, count = their number,
    acc = acc > 0 ? (acc + count/2) / count : (acc - count/2) / count   (C truncating division),
    clamp to [act_min, act_max] (fused activation range, [-128, 127] for NONE).
    """
    x = np.asarray(x, np.int64)
    n, h, w, c = x.shape
    fh, fw = filter_hw
    sh, sw = stride_hw
    if padding.upper() == "SAME":
        oh, ph = same_padding(h, fh, sh)
        ow, pw = same_padding(w, fw, sw)
    elif padding.upper() == "VALID":
        oh, ph = (h - fh + sh) // sh, 0
        ow, pw = (w - fw + sw) // sw, 0
    else:
        raise ValueError(f"unknown padding {padding!r}")
    out = np.empty((n, oh, ow, c), np.int64)
    for oy in range(oh):
        y0 = oy * sh - ph
        ys = slice(max(y0, 0), min(y0 + fh, h))
        for ox in range(ow):
            x0 = ox * sw - pw
            xs = slice(max(x0, 0), min(x0 + fw, w))
            win = x[:, ys, xs, :]
            count = win.shape[1] * win.shape[2]
            acc = win.sum(axis=(1, 2))
            half = count // 2
            out[:, oy, ox, :] = np.where(acc > 0, _c_div(acc + half, count), _c_div(acc - half, count))
    return np.clip(out, act_min, act_max).astype(np.int8)
