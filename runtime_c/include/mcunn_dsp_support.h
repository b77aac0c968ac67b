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

/* The hand-scheduled inner loops (inline assembly) need 12-14 registers: only with optimisation, where gcc
 * does not pin a frame pointer (at -O0 it cannot allocate them); elsewhere the C loops with the same
 * intrinsics run. -DMCU_DSP_NO_ASM selects the C loops everywhere. */
#if MCU_DSP_NATIVE && defined(__OPTIMIZE__) && !defined(MCU_DSP_NO_ASM)
#define MCU_DSP_ASM 1
#else
#define MCU_DSP_ASM 0
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
static inline int32_t mcu_ssat8(int32_t x) { return __ssat(x, 8); }
/* gcc 12 builds these two with UXTH + ORR (two instructions) from the C below; PKHBT / PKHTB are one */
static inline int32_t mcu_pkhbt16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t mcu_pkhtb16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
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
static inline int32_t mcu_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
static inline int32_t mcu_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcu_hi16(a) * mcu_hi16(b)));
}

/** Low halfword of a, low halfword of b in the top (PKHBT a, b, LSL #16). */
static inline int32_t mcu_pkhbt16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

/** High halfword of b in the bottom, high halfword of a on top (PKHTB a, b, ASR #16). */
static inline int32_t mcu_pkhtb16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFF0000u) | ((uint32_t)b >> 16));
}

#endif

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

/** Per-channel requantization constants, derived once per channel and used for every pixel. */
typedef struct
{
    int32_t multiplier; /**< Q31 multiplier, in [2^30, 2^31). */
    int32_t left;       /**< max(shift, 0). */
    int32_t right;      /**< max(-shift, 0), in [0, 31]. */
    uint32_t round_lo;  /**< Low word of 2^30 + 2^(30 + right) (both roundings as one addend; right >= 1). */
    uint32_t round_hi;  /**< Its high word. */
    uint32_t borrow;    /**< All ones when taking 2^31 from round_lo borrows from the high word (right >= 2). */
} mcu_dsp_requant;

static inline mcu_dsp_requant mcu_dsp_requant_of(int32_t multiplier, int32_t shift)
{
    mcu_dsp_requant r;
    r.multiplier = multiplier;
    r.left = shift > 0 ? shift : 0;
    r.right = shift > 0 ? 0 : -shift;
    /* 2^(30 + right) = 2^(right - 1) * 2^31 split into words without a 64-bit variable shift; right = 0 does
     * not use them */
    const uint32_t half = r.right > 0 ? 1u << (r.right - 1) : 0u;
    r.round_lo = 0x40000000u | (half << 31);
    r.round_hi = half >> 1;
    r.borrow = r.right >= 2 ? 0xFFFFFFFFu : 0u;
    return r;
}

/**
 * acc * multiplier * 2^(shift - 31) with TFLite's double rounding, bit-exact with mcu_requantize().
 *
 * TFLite: high = SRDHM(x, m) = floor((x * m + 2^30) / 2^31) (gemmlowp's nudge-and-truncate equals this for
 * every multiplier in [2^30, 2^31), where it cannot saturate), then a divide by 2^r rounding halves away from
 * zero, which is floor((high + 2^(r-1) - [high < 0]) / 2^r). Nested floors of integer divisions compose, so
 * for r >= 1 the result is floor((x * m + 2^30 + 2^(30+r) - [x < 0] * 2^31) / 2^(31+r)): one 64-bit
 * multiply-accumulate and the high word shifted by r - 1. ([high < 0] may differ from [x < 0] only when
 * high = 0, where both give 0.) r = 0 is high itself.
 */
static inline int32_t mcu_dsp_requantize(int32_t acc, mcu_dsp_requant r)
{
#if MCU_SINGLE_ROUNDING
    /* one rounding, half up (mcunn_config.h): the exact product rounded at bit 31 - shift */
    const int32_t total = 31 - (r.left - r.right);
    return (int32_t)(((int64_t)acc * r.multiplier + ((int64_t)1 << (total - 1))) >> total);
#else
    const int32_t x = (int32_t)((uint32_t)acc << r.left);
    if (r.right == 0)
    {
        return (int32_t)(((int64_t)x * r.multiplier + (1LL << 30)) >> 31);
    }
    /* the addend with - [x < 0] * 2^31 folded in: bit 31 of the low word flips (0x4.. <-> 0xC..) and, when it
     * was clear, a negative x borrows 1 from the high word; the whole sum is then one SMLAL */
    const uint32_t lo = r.round_lo ^ ((uint32_t)x & 0x80000000u);
    const uint32_t hi = r.round_hi + ((uint32_t)(x >> 31) & r.borrow);
    const int64_t t = (int64_t)(((uint64_t)hi << 32) | lo) + (int64_t)x * r.multiplier;
    return (int32_t)(t >> 32) >> (r.right - 1);
#endif
}

#if MCU_SINGLE_ROUNDING
#define MCU_DSP_ROUND_WORDS(lo, hi, rh, x) "mov %[" lo "], #0\n\t" "mov %[" hi "], %[" rh "]\n\t"
#else
#define MCU_DSP_ROUND_WORDS(lo, hi, rh, x)                                                                      \
    "and %[" lo "], %[" x "], #0x80000000\n\t"                                                                 \
    "eor %[" lo "], %[" lo "], #0x40000000\n\t"                                                                \
    "add %[" hi "], %[" rh "], %[" x "], asr #31\n\t"
#endif

/** Requantized, offset and clamped to [lo, hi]. */
static inline int8_t mcu_dsp_output_s8(int32_t acc, mcu_dsp_requant r, int32_t out_offset, int32_t lo, int32_t hi)
{
    int32_t y = mcu_dsp_requantize(acc, r) + out_offset;
    y = y < lo ? lo : y;
    y = y > hi ? hi : y;
    return (int8_t)y;
}

/** Requantized and offset, saturated to [-128, 127] (one SSAT): the clamp when it is the full int8 range. */
static inline int8_t mcu_dsp_output_full_s8(int32_t acc, mcu_dsp_requant r, int32_t out_offset)
{
    return (int8_t)mcu_ssat8(mcu_dsp_requantize(acc, r) + out_offset);
}

/**
 * Output stage of a block of pixels: n channels of `rows` (1 or 2) pixels whose accumulators are acc[0][j],
 * acc[1][j], requantized with channel j's constants (derived once for both pixels) and stored at out[0][j],
 * out[1][j]. Kept apart from the MAC loops so that neither fights the other for registers. `full` (constant at
 * each instantiation): the clamp is the int8 range, one SSAT.
 */
static inline __attribute__((always_inline)) int8_t mcu_dsp_clamp_s8(int32_t y, int32_t lo, int32_t hi, int full)
{
    if (full)
    {
        return (int8_t)mcu_ssat8(y);
    }
    y = y < lo ? lo : y;
    return (int8_t)(y > hi ? hi : y);
}

/* mcu_dsp_requantize() for shift <= -2 (right >= 2, left = 0: every layer whose scale is below 1/2, nearly
 * all of them): round_lo is 2^30, the borrow always applies, round_hi = 2^(right - 2). */
static inline int32_t mcu_dsp_requantize_r2(int32_t x, int32_t multiplier, uint32_t round_hi, int32_t right_m1)
{
#if MCU_SINGLE_ROUNDING
    /* one rounding: + 2^(30 + right) = round_hi * 2^32, nothing in the low word, no sign term */
    const uint32_t lo = 0u, hi = round_hi;
#else
    const uint32_t lo = 0x40000000u ^ ((uint32_t)x & 0x80000000u);
    const uint32_t hi = round_hi + (uint32_t)(x >> 31);
#endif
    const int64_t t = (int64_t)(((uint64_t)hi << 32) | lo) + (int64_t)x * multiplier;
    return (int32_t)(t >> 32) >> right_m1;
}

static inline __attribute__((always_inline)) void mcu_dsp_store_rows(const int32_t *acc0, const int32_t *acc1,
                                                                     int32_t n, const int32_t *mult,
                                                                     const int32_t *shift, int32_t out_offset,
                                                                     int32_t lo, int32_t hi, int8_t *out0,
                                                                     int8_t *out1, int full)
{
    for (int32_t j = 0; j < n; j++)
    {
        const int32_t m = mult[j], s = shift[j];
        if (s <= -2)
        {
            const uint32_t round_hi = 1u << (-s - 2);
            const int32_t right_m1 = -s - 1;
            out0[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize_r2(acc0[j], m, round_hi, right_m1) + out_offset, lo, hi,
                                       full);
            if (acc1)
            {
                out1[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize_r2(acc1[j], m, round_hi, right_m1) + out_offset, lo,
                                           hi, full);
            }
            continue;
        }
        const mcu_dsp_requant r = mcu_dsp_requant_of(m, s);
        out0[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize(acc0[j], r) + out_offset, lo, hi, full);
        if (acc1)
        {
            out1[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize(acc1[j], r) + out_offset, lo, hi, full);
        }
    }
}

/** 1 when every shift[j], j < n, is in [-23, -2]: the range where mcu_dsp_store_pairs() may fold the output
 * offset into the rounding addend (|offset * 2^(right-1)| <= 2^29 cannot overflow the high word). */
static inline int mcu_dsp_shifts_foldable(const int32_t *shift, int32_t n)
{
    for (int32_t j = 0; j < n; j++)
    {
        if (shift[j] > -2 || shift[j] < -23)
        {
            return 0;
        }
    }
    return 1;
}

/**
 * Output stage of two pixels whose accumulators are interleaved, acc[2j] (pixel 0) and acc[2j + 1] (pixel 1)
 * for channel j < n: requantized with channel j's constants (derived once for both) and stored at out0[j],
 * out1[j]. `foldable` (mcu_dsp_shifts_foldable()) takes the assembly path on DSP cores: the offset folded
 * into the rounding addend (floor((h + o * 2^s) / 2^s) = floor(h / 2^s) + o exactly): per channel (two
 * outputs) 23 instructions with `full` (one SSAT each), 32 with a clamp to [lo, hi].
 */
static inline __attribute__((always_inline)) void mcu_dsp_store_pairs(const int32_t *acc, int32_t n,
                                                                      const int32_t *mult, const int32_t *shift,
                                                                      int32_t out_offset, int32_t lo, int32_t hi,
                                                                      int8_t *out0, int8_t *out1, int full,
                                                                      int foldable)
{
#if MCU_DSP_ASM
    /* (1 + 2 * offset) << (right - 2) is the rounding addend's high word with the offset folded in (see
     * above); MCU_DSP_ROUND_WORDS(lo, hi, rh, x) sets the words SMLAL adds x * m to: double rounding's low word
     * 2^30 with bit 31 flipped for a negative x, which also borrows from the high word; single rounding's
     * (mcunn_config.h) 0 and rh */
    const int32_t oo2 = 1 + 2 * out_offset;
    if (full && foldable && n > 0)
    {
        int32_t m, rm1, rh, x, l, h;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[m], [%[pm]], #4\n\t"
            "ldr %[rm1], [%[ps]], #4\n\t"
            "mvn %[rm1], %[rm1]\n\t"            /* right - 1 = -shift - 1 */
            "sub %[x], %[rm1], #1\n\t"
            "lsl %[rh], %[oo2], %[x]\n\t"       /* (1 + 2 offset) 2^(right - 2) = 2^(right - 2) + offset 2^(right - 1) */
            "ldr %[x], [%[acc]], #4\n\t"
            MCU_DSP_ROUND_WORDS("l", "h", "rh", "x")
            "smlal %[l], %[h], %[x], %[m]\n\t"
            "asr %[h], %[h], %[rm1]\n\t"
            "ssat %[h], #8, %[h]\n\t"
            "strb %[h], [%[o0]], #1\n\t"
            "ldr %[x], [%[acc]], #4\n\t"
            MCU_DSP_ROUND_WORDS("l", "h", "rh", "x")
            "smlal %[l], %[h], %[x], %[m]\n\t"
            "asr %[h], %[h], %[rm1]\n\t"
            "ssat %[h], #8, %[h]\n\t"
            "strb %[h], [%[o1]], #1\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [acc] "+r"(acc), [pm] "+r"(mult), [ps] "+r"(shift), [o0] "+r"(out0), [o1] "+r"(out1), [n] "+r"(n),
              [m] "=&r"(m), [rm1] "=&r"(rm1), [rh] "=&r"(rh), [x] "=&r"(x), [l] "=&r"(l), [h] "=&r"(h)
            : [oo2] "r"(oo2)
            : "cc", "memory");
        return;
    }
    if (foldable && n > 0)
    {
        /* the same with the clamp to [lo, hi] (ReLU6 and other fused bounds), for both pixels at once in the
         * two halfwords of one register: SSUB16 sets the GE flags per halfword and SEL picks, so max and min
         * are two instructions each; the bounds come from memory (no register is left) */
        const int32_t bounds[3] = {oo2, (int32_t)((uint32_t)(lo & 0xFFFF) * 0x10001u),
                                   (int32_t)((uint32_t)(hi & 0xFFFF) * 0x10001u)};
        int32_t m, rm1, rh, x, l, h;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[m], [%[pm]], #4\n\t"
            "ldr %[rm1], [%[ps]], #4\n\t"
            "mvn %[rm1], %[rm1]\n\t"
            "sub %[x], %[rm1], #1\n\t"
            "ldr %[l], [%[b]]\n\t"
            "lsl %[rh], %[l], %[x]\n\t"
            "ldr %[x], [%[acc]], #4\n\t"
            MCU_DSP_ROUND_WORDS("l", "h", "rh", "x")
            "smlal %[l], %[h], %[x], %[m]\n\t"
            "asr %[h], %[h], %[rm1]\n\t"
            "ssat %[h], #8, %[h]\n\t"
            "ldr %[x], [%[acc]], #4\n\t"
            MCU_DSP_ROUND_WORDS("l", "rh", "rh", "x")
            "smlal %[l], %[rh], %[x], %[m]\n\t"
            "asr %[rh], %[rh], %[rm1]\n\t"
            "ssat %[rh], #8, %[rh]\n\t"
            "pkhbt %[h], %[h], %[rh], lsl #16\n\t" /* pixel 0 | pixel 1 */
            "ldr %[l], [%[b], #4]\n\t"
            "ssub16 %[x], %[h], %[l]\n\t"
            "sel %[h], %[h], %[l]\n\t"             /* max(y, lo) */
            "ldr %[l], [%[b], #8]\n\t"
            "ssub16 %[x], %[l], %[h]\n\t"
            "sel %[h], %[h], %[l]\n\t"             /* min(y, hi) */
            "strb %[h], [%[o0]], #1\n\t"
            "lsr %[h], %[h], #16\n\t"
            "strb %[h], [%[o1]], #1\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [acc] "+r"(acc), [pm] "+r"(mult), [ps] "+r"(shift), [o0] "+r"(out0), [o1] "+r"(out1), [n] "+r"(n),
              [m] "=&r"(m), [rm1] "=&r"(rm1), [rh] "=&r"(rh), [x] "=&r"(x), [l] "=&r"(l), [h] "=&r"(h)
            : [b] "r"(bounds)
            : "cc", "memory");
        return;
    }
#endif
    (void)foldable;
    for (int32_t j = 0; j < n; j++)
    {
        const int32_t m = mult[j], s = shift[j];
        const int32_t x0 = acc[2 * j], x1 = acc[2 * j + 1];
        if (s <= -2)
        {
            const uint32_t round_hi = 1u << (-s - 2);
            const int32_t right_m1 = -s - 1;
            out0[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize_r2(x0, m, round_hi, right_m1) + out_offset, lo, hi, full);
            out1[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize_r2(x1, m, round_hi, right_m1) + out_offset, lo, hi, full);
            continue;
        }
        const mcu_dsp_requant r = mcu_dsp_requant_of(m, s);
        out0[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize(x0, r) + out_offset, lo, hi, full);
        out1[j] = mcu_dsp_clamp_s8(mcu_dsp_requantize(x1, r) + out_offset, lo, hi, full);
    }
}

/** As mcu_dsp_output_s8() with the constants derived from (multiplier, shift) on the spot. */
static inline int8_t mcu_dsp_requantize_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_offset,
                                           int32_t lo, int32_t hi)
{
    return mcu_dsp_output_s8(acc, mcu_dsp_requant_of(multiplier, shift), out_offset, lo, hi);
}

#endif /* MCUNN_DSP_SUPPORT_H */
