/**
 * @file mcunn_support.h
 * @brief Fixed-point helpers with TFLite's (gemmlowp) rounding; internal to the kernels.
 */
#ifndef MCUNN_SUPPORT_H
#define MCUNN_SUPPORT_H

#include <stdint.h>

#include "mcunn_config.h"

#define MCU_Q31_MAX ((int32_t)0x7FFFFFFF)
#define MCU_Q31_MIN ((int32_t)(-0x7FFFFFFF - 1))
#define MCU_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MCU_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MCU_CLAMP(x, lo, hi) MCU_MIN(MCU_MAX((x), (lo)), (hi))

/** Saturating rounding doubling high multiply (gemmlowp / VQRDMULH). */
static inline int32_t mcu_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == b && a == MCU_Q31_MIN)
    {
        return MCU_Q31_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/** Rounding divide by 2^exponent, halves away from zero; exponent in [0, 31]. */
static inline int32_t mcu_divide_by_pow2(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/**
 * x * multiplier * 2^(shift - 31): with TFLite's double rounding (its default, TFLite Micro's and
 * CMSIS-NN's), or, when the library is generated with MCU_SINGLE_ROUNDING 1 (mcunn_config.h), rounded
 * once, half up, as TFLite's TFLITE_SINGLE_ROUNDING build and CMSIS-NN's CMSIS_NN_USE_SINGLE_ROUNDING:
 * the exact product rounded to nearest, as ONNX QDQ semantics and onnxruntime compute it.
 */
static inline int32_t mcu_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#if MCU_SINGLE_ROUNDING
    const int32_t total = 31 - shift; /* shift in [-31, 30]: total in [1, 62] */
    const int64_t product = (int64_t)x * (int64_t)multiplier + ((int64_t)1 << (total - 1));
    return (int32_t)(product >> total);
#else
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mcu_divide_by_pow2(mcu_doubling_high_mult(shifted, multiplier), right);
#endif
}

/** x * 2^exponent saturated to int32. */
static inline int32_t mcu_mult_by_pow2_sat(int32_t x, int32_t exponent)
{
    const int32_t thresh = (int32_t)((1LL << (31 - exponent)) - 1);
    if (x > thresh)
    {
        return MCU_Q31_MAX;
    }
    if (x < -thresh)
    {
        return MCU_Q31_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

#endif /* MCUNN_SUPPORT_H */
