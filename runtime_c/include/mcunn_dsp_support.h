/**
 * @file mcunn_dsp_support.h
 * @brief SIMD32 building blocks of the DSP kernels (mcunn_dsp.h); internal to the kernels.
 *
 * On Armv7E-M / Armv8-M with the DSP extension (`__ARM_FEATURE_DSP`: Cortex-M4, M7, M33, M55) these are
 * the ACLE intrinsics of gcc's arm_acle.h (one instruction each). Everywhere else (host, Cortex-M0+) they
 * are portable C with the same results, so the same kernel source runs, and is tested under
 * AddressSanitizer / UBSan, on the host. Lane arithmetic wraps like the hardware's (through uint32_t), so
 * no C signed overflow is possible in the emulation.
 */
#ifndef MCUNN_DSP_SUPPORT_H
#define MCUNN_DSP_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "mcunn_support.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MCU_DSP_NATIVE 1
#else
#define MCU_DSP_NATIVE 0
#endif

/** 4 int8 from any address (unaligned word load: LDR on M4/M7, which allow it; never LDRD/LDM). */
static inline int32_t mcu_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/** 2 int8 from any address, in the low half. */
static inline int32_t mcu_read_s8x2(const int8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return (int32_t)v;
}

#if MCU_DSP_NATIVE

static inline int32_t mcu_sxtb16(int32_t x) { return __sxtb16(x); }
static inline int32_t mcu_sxtab16(int32_t a, int32_t x) { return __sxtab16(a, x); }
/* bytes 1 and 3: SXTB16 with its rotate operand (gcc does not fold a separate rotate into SXTB16) */
static inline int32_t mcu_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t mcu_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
static inline int32_t mcu_smlad(int32_t a, int32_t b, int32_t acc) { return __smlad(a, b, acc); }
static inline int32_t mcu_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t mcu_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }

#else /* portable emulation */

static inline int32_t mcu_lane_s8(int32_t x, int byte) { return (int32_t)(int8_t)(uint8_t)((uint32_t)x >> (8 * byte)); }
static inline int32_t mcu_lo16(int32_t x) { return (int32_t)(int16_t)(uint16_t)(uint32_t)x; }
static inline int32_t mcu_hi16(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16); }
static inline int32_t mcu_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t mcu_sxtb16(int32_t x) { return mcu_pack16(mcu_lane_s8(x, 0), mcu_lane_s8(x, 2)); }
static inline int32_t mcu_sxtb16_ror8(int32_t x) { return mcu_pack16(mcu_lane_s8(x, 1), mcu_lane_s8(x, 3)); }
static inline int32_t mcu_sxtab16(int32_t a, int32_t x)
{
    return mcu_pack16(mcu_lo16(a) + mcu_lane_s8(x, 0), mcu_hi16(a) + mcu_lane_s8(x, 2));
}
static inline int32_t mcu_sxtab16_ror8(int32_t a, int32_t x)
{
    return mcu_pack16(mcu_lo16(a) + mcu_lane_s8(x, 1), mcu_hi16(a) + mcu_lane_s8(x, 3));
}
static inline int32_t mcu_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcu_lo16(a) * mcu_lo16(b)) + (uint32_t)(mcu_hi16(a) * mcu_hi16(b)));
}
static inline int32_t mcu_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcu_lo16(a) * mcu_lo16(b)));
}
static inline int32_t mcu_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcu_hi16(a) * mcu_hi16(b)));
}

#endif

/** Low halfword of a, low halfword of b in the top (PKHBT a, b, LSL #16); gcc emits PKHBT for this. */
static inline int32_t mcu_pkhbt16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

/** High halfword of b in the bottom, high halfword of a on top (PKHTB a, b, ASR #16). */
static inline int32_t mcu_pkhtb16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFF0000u) | ((uint32_t)b >> 16));
}

/** Two int16 lanes that both hold v (the input offset for SXTAB16). */
static inline int32_t mcu_dup16(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xFFFFu) * 0x10001u);
}

/** Sum of a + b in int32 with the hardware's wrap-around. */
static inline int32_t mcu_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/**
 * Requantized, offset and clamped output: TFLite's double rounding, bit-exact with mcu_requantize()
 * (the doubling high multiply as (x * m + 2^30) >> 31, equal to gemmlowp's nudge-and-truncate for every
 * x and every multiplier in [2^30, 2^31)), then the clamp to [act_min, act_max].
 */
static inline int8_t mcu_dsp_requantize_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_offset,
                                           int32_t act_min, int32_t act_max)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t x = (int32_t)((uint32_t)acc << left);
    const int32_t high = (int32_t)(((int64_t)x * multiplier + (1LL << 30)) >> 31);
    int32_t y = mcu_divide_by_pow2(high, right) + out_offset;
    y = y < act_min ? act_min : y;
    y = y > act_max ? act_max : y;
    return (int8_t)y;
}

#endif /* MCUNN_DSP_SUPPORT_H */
