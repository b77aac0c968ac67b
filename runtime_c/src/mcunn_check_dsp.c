/* The outlier check with SIMD32 (mcunn.h: mcu_outlier_check_dsp_s8). x is an outlier exactly when x > h or
 * x < l (signed), with h = min(127, zp + t) and l = max(-128, zp - t). SSUB8 compares four values with a
 * bound at once (its GE flags: the lanes within it) and SEL keeps those lanes of a running mask that starts at
 * all ones, so a lane of the mask turns zero at the first outlier in it: per word LDR, then SSUB8 + SEL per
 * bound that can be crossed. A side with no bound to cross (h = 127 or l = -128: after a ReLU the zero point
 * is -128, so only h counts) costs nothing, and a check that can never fire reads nothing. The mask is tested
 * once per 32-byte block (early exit). Word loads from a 4-byte boundary (the bytes before it scalar), so gcc
 * pairs them into LDRD; the last bytes scalar. Without the DSP extension SSUB8 + SEL are emulated in C with
 * the same result. */
#include <string.h>

#include "mcunn.h"
#include "mcunn_dsp_support.h"

/* keep's lanes where the signed byte of a is <= the one of b, zero elsewhere */
static inline uint32_t mcu_check_keep_le(uint32_t keep, uint32_t a, uint32_t b)
{
#if MCU_DSP_NATIVE
    uint32_t t;
    __asm__("ssub8 %[t], %[b], %[a]\n\t"
            "sel %[keep], %[keep], %[zero]"
            : [keep] "+r"(keep), [t] "=&r"(t)
            : [a] "r"(a), [b] "r"(b), [zero] "r"(0u));
    return keep;
#else
    for (uint32_t k = 0; k < 32u; k += 8u)
    {
        if ((int8_t)(uint8_t)(a >> k) > (int8_t)(uint8_t)(b >> k))
        {
            keep &= ~(0xFFu << k);
        }
    }
    return keep;
#endif
}

#if MCU_DSP_ASM
/* One lane test in the assembly loop: SSUB8 sets GE where the word's value x is within the bound (h - x >= 0 /
 * x - l >= 0), SEL keeps those lanes of the mask k and zeroes the others. */
#define MCU_CHECK_HI(x) "ssub8 %[t], %[h], %[" x "]\n\tsel %[k], %[k], %[z]\n\t"
#define MCU_CHECK_LO(x) "ssub8 %[t], %[" x "], %[l]\n\tsel %[k], %[k], %[z]\n\t"
#define MCU_CHECK_BOTH(x) MCU_CHECK_HI(x) MCU_CHECK_LO(x)
/* 32 bytes per step (four LDRD), the mask tested once per step: from [p] (4-aligned) up to end (p + a whole,
 * nonzero number of steps), or past the first step with an outlier */
#define MCU_CHECK_LOOP(TEST)                                                                                 \
    __asm__ volatile("1:\n\t"                                                                              \
                     "ldrd %[a], %[b], [%[p]], #8\n\t"                                                      \
                     "ldrd %[c], %[d], [%[p]], #8\n\t" TEST("a") TEST("b") TEST("c") TEST("d")             \
                     "ldrd %[a], %[b], [%[p]], #8\n\t"                                                      \
                     "ldrd %[c], %[d], [%[p]], #8\n\t" TEST("a") TEST("b") TEST("c") TEST("d")             \
                     "cmn %[k], #1\n\t"                                                                     \
                     "bne 2f\n\t"                                                                           \
                     "cmp %[p], %[e]\n\t"                                                                   \
                     "bcc 1b\n\t"                                                                           \
                     "2:\n\t"                                                                               \
                     : [k] "+r"(keep), [p] "+r"(q), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d),  \
                       [t] "=&r"(t)                                                                          \
                     : [h] "r"(h4), [l] "r"(l4), [z] "r"(0u), [e] "r"(end)                                   \
                     : "cc", "memory")
#endif

/* the words of [p, p + 4 * words) (p 4-aligned) against the bounds the flags name; all ones: no outlier. Stops
 * after the first 32-byte block that holds one. */
static inline __attribute__((always_inline)) uint32_t mcu_check_words(const int8_t *p, int32_t words, uint32_t h4,
                                                                    uint32_t l4, int high, int low)
{
    uint32_t keep = 0xFFFFFFFFu;
    int32_t i = 0;
#if MCU_DSP_ASM
    if (words >= 8)
    {
        const int8_t *q = p;
        const int8_t *end = q + 32 * (words / 8);
        uint32_t a, b, c, d, t;
        if (high && low)
        {
            MCU_CHECK_LOOP(MCU_CHECK_BOTH);
        }
        else if (high)
        {
            MCU_CHECK_LOOP(MCU_CHECK_HI);
        }
        else
        {
            MCU_CHECK_LOOP(MCU_CHECK_LO);
        }
        i = (int32_t)(q - p) / 4;
    }
#endif
    for (; i < words && keep == 0xFFFFFFFFu; i++)
    {
        uint32_t w;
        memcpy(&w, (const int8_t *)__builtin_assume_aligned(p, 4) + 4 * i, 4);
        keep = high ? mcu_check_keep_le(keep, w, h4) : keep;
        keep = low ? mcu_check_keep_le(keep, l4, w) : keep;
    }
    return keep;
}

mcu_status mcu_outlier_check_dsp_s8(const mcu_context *ctx,
                                    const mcu_outlier_check_params *check_params,
                                    const mcu_dims *input_dims,
                                    const int8_t *input,
                                    const mcu_dims *output_dims,
                                    int32_t *output)
{
    (void)ctx;
    (void)output_dims;
    const int32_t zp = check_params->zero_point;
    const int32_t t = check_params->threshold;
    if (zp < -128 || zp > 127 || t < 0 || t > 255 || input_dims->n < 0 || input_dims->h < 0 || input_dims->w < 0 ||
        input_dims->c < 0)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t count = input_dims->n * input_dims->h * input_dims->w * input_dims->c;
    const int32_t h = MCU_MIN(127, zp + t);
    const int32_t l = MCU_MAX(-128, zp - t);
    const int high = h < 127, low = l > -128;
    int32_t found = 0;
    if (high || low)
    {
        const int8_t *p = input;
        int32_t left = count;
        while (left > 0 && ((uintptr_t)p & 3u) != 0u && !found)
        {
            found = *p > h || *p < l;
            p++;
            left--;
        }
        const int32_t words = left / 4;
        if (!found && words > 0)
        {
            const uint32_t h4 = (uint32_t)(uint8_t)(int8_t)h * 0x01010101u;
            const uint32_t l4 = (uint32_t)(uint8_t)(int8_t)l * 0x01010101u;
            const uint32_t keep = high && low ? mcu_check_words(p, words, h4, l4, 1, 1)
                                  : high      ? mcu_check_words(p, words, h4, l4, 1, 0)
                                              : mcu_check_words(p, words, h4, l4, 0, 1);
            found = keep != 0xFFFFFFFFu;
        }
        p += 4 * words;
        left -= 4 * words;
        while (left > 0 && !found)
        {
            found = *p > h || *p < l;
            p++;
            left--;
        }
    }
    *output = found ? 1 : 0;
    return MCU_OK;
}
