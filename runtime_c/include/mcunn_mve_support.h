/**
 * @file mcunn_mve_support.h
 * @brief MVE (Helium) building blocks of the kernels of mcunn_mve.h; internal to the kernels. Only for
 *        builds with integer MVE (`__ARM_FEATURE_MVE & 1`: Cortex-M55 and other Armv8.1-M cores).
 *
 * The vector requantization is bit-exact with mcu_requantize() (mcunn_support.h), in both rounding modes of
 * mcunn_config.h:
 *
 * - double rounding (TFLite's): gemmlowp's SRDHM, nudge-and-truncate, equals floor((2 x m + 2^31) / 2^32)
 *   for every product (write x m = q 2^31 + r: both are q + [r >= 2^30]), which is VQRDMULH, saturation at
 *   x = m = INT32_MIN included; the left shift wraps (VSHL, as the portable uint32 shift); the divide by 2^r
 *   rounding halves away from zero is floor((h + 2^(r-1) - [h < 0]) / 2^r): VQADD of -1 for a negative h
 *   (|h| <= |x| < 2^31 for m < 2^31, so no saturation can occur) then VRSHL by -r (the rounding right shift,
 *   computed without intermediate overflow).
 * - single rounding: for shift <= -1, floor((x m + 2^(30 - shift)) / 2^(31 - shift)) is the rounding shift
 *   by -shift of floor(x m / 2^31) (nested floors of integer divisions compose): VQDMULH then VRSHL. A
 *   shift >= 0 needs the 64-bit product (no wrap in the portable kernel): mcu_mve_requant_vector_ok() says
 *   when a layer has one, and the kernels take the scalar mcu_requantize() for it.
 */
#ifndef MCUNN_MVE_SUPPORT_H
#define MCUNN_MVE_SUPPORT_H

#include <stdint.h>

#include "mcunn_support.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/** Four core registers as the lanes of a vector: with optimisation two VMOV Qd[2], Qd[0], Rt, Rt2 (as GNU as
 *  takes it, Rt goes to lane 0 and Rt2 to lane 2; the kernel tests check the order); -DMCU_MVE_NO_ASM or -O0: the
 *  intrinsics. */
static inline __attribute__((always_inline)) int32x4_t mcu_mve_lanes4(int32_t a0, int32_t a1, int32_t a2, int32_t a3)
{
#if defined(__OPTIMIZE__) && !defined(MCU_MVE_NO_ASM)
    int32x4_t r;
    __asm__("vmov %q[r][2], %q[r][0], %[a0], %[a2]\n\t"
            "vmov %q[r][3], %q[r][1], %[a1], %[a3]"
            : [r] "=&w"(r)
            : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3));
    return r;
#else
    int32x4_t r = vdupq_n_s32(a0);
    r = vsetq_lane_s32(a1, r, 1);
    r = vsetq_lane_s32(a2, r, 2);
    return vsetq_lane_s32(a3, r, 3);
#endif
}

/** 1 when the vector requantization is exact for every shift[j], j < n (always with double rounding). */
static inline int mcu_mve_requant_vector_ok(const int32_t *shift, int32_t n)
{
#if MCU_SINGLE_ROUNDING
    for (int32_t j = 0; j < n; j++)
    {
        if (shift[j] > -1)
        {
            return 0;
        }
    }
#else
    (void)shift;
    (void)n;
#endif
    return 1;
}

/** x * mult * 2^(shift - 31) per lane, bit-exact with mcu_requantize() (see the file comment). */
static inline __attribute__((always_inline)) int32x4_t mcu_mve_requantize(int32x4_t x, int32x4_t mult,
                                                                          int32x4_t shift)
{
#if MCU_SINGLE_ROUNDING
    return vrshlq_s32(vqdmulhq_s32(x, mult), shift);
#else
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t right = vminq_s32(shift, zero); /* -r, r >= 0 */
    const int32x4_t h = vqrdmulhq_s32(vshlq_s32(x, vmaxq_s32(shift, zero)), mult);
    const int32x4_t fix = vshrq_n_s32(vandq_s32(h, right), 31); /* -1 where h < 0 and r > 0 */
    return vrshlq_s32(vqaddq_s32(h, fix), right);
#endif
}

/** 1 when every shift[j], j < n, is <= 0 (no left shift: nearly every layer) and the vector path is exact. */
static inline int mcu_mve_shifts_right_only(const int32_t *shift, int32_t n)
{
    for (int32_t j = 0; j < n; j++)
    {
        if (shift[j] > 0)
        {
            return 0;
        }
    }
    return mcu_mve_requant_vector_ok(shift, n);
}

/** mcu_mve_requantize() for lanes whose shift is <= 0 (mcu_mve_shifts_right_only()): no left shift. */
static inline __attribute__((always_inline)) int32x4_t mcu_mve_requantize_right(int32x4_t x, int32x4_t mult,
                                                                                int32x4_t shift)
{
#if MCU_SINGLE_ROUNDING
    return vrshlq_s32(vqdmulhq_s32(x, mult), shift);
#else
    const int32x4_t h = vqrdmulhq_s32(x, mult);
    return vrshlq_s32(vqaddq_s32(h, vshrq_n_s32(vandq_s32(h, shift), 31)), shift);
#endif
}

/** The same with one channel's constants for every lane (4 pixels of one channel). */
static inline __attribute__((always_inline)) int32x4_t mcu_mve_requantize_n(int32x4_t x, int32_t mult,
                                                                            int32_t shift)
{
#if MCU_SINGLE_ROUNDING
    return vrshlq_s32(vqdmulhq_n_s32(x, mult), vdupq_n_s32(shift));
#else
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : shift;
    const int32x4_t h = vqrdmulhq_n_s32(vshlq_s32(x, vdupq_n_s32(left)), mult);
    const int32x4_t fix = vshrq_n_s32(vandq_s32(h, vdupq_n_s32(right)), 31);
    return vrshlq_s32(vqaddq_s32(h, fix), vdupq_n_s32(right));
#endif
}

/** Scalar fallback of one lane (single rounding with shift >= 0), mcu_requantize() itself. */
static inline int32x4_t mcu_mve_requantize_scalar(int32x4_t x, const int32_t *mult, const int32_t *shift, int32_t n)
{
    int32_t v[4];
    vst1q_s32(v, x);
    for (int32_t j = 0; j < n && j < 4; j++)
    {
        v[j] = mcu_requantize(v[j], mult[j], shift[j]);
    }
    return vld1q_s32(v);
}

/** Requantized, offset and clamped lanes (int32, in [lo, hi]). */
static inline __attribute__((always_inline)) int32x4_t mcu_mve_output(int32x4_t acc, int32x4_t mult, int32x4_t shift,
                                                                      int32_t out_offset, int32_t lo, int32_t hi)
{
    int32x4_t y = vaddq_n_s32(mcu_mve_requantize(acc, mult, shift), out_offset);
    return vminq_s32(vmaxq_s32(y, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

#endif /* __ARM_FEATURE_MVE */

#endif /* MCUNN_MVE_SUPPORT_H */
