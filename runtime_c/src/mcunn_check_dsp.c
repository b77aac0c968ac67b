/* The outlier check with SIMD32 (mcunn.h: mcu_outlier_check_dsp_s8). Each int8 x becomes its unsigned offset
 * u = x + 128 (EOR 0x80 per byte); x is an outlier exactly when u > hi or u < lo, with hi = min(255, zp + 128 +
 * t) and lo = max(0, zp + 128 - t), so UQSUB8(u, hi) | UQSUB8(lo, u) has a nonzero byte exactly where a value
 * is an outlier. OR-accumulated over 16-byte blocks, tested once per block (early exit); the last bytes
 * scalar. Without the DSP extension UQSUB8 is emulated in C with the same result. */
#include <string.h>

#include "mcunn.h"
#include "mcunn_dsp_support.h"

static inline uint32_t mcu_check_uqsub8(uint32_t a, uint32_t b)
{
#if MCU_DSP_NATIVE
    return (uint32_t)__uqsub8(a, b);
#else
    uint32_t r = 0;
    for (uint32_t k = 0; k < 32u; k += 8u)
    {
        const uint32_t x = (a >> k) & 0xFFu;
        const uint32_t y = (b >> k) & 0xFFu;
        r |= (x > y ? x - y : 0u) << k;
    }
    return r;
#endif
}

static inline uint32_t mcu_check_word(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* unaligned LDR on M4/M7 */
    return v ^ 0x80808080u;
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
    const int32_t uz = zp + 128;
    const uint32_t hi = (uint32_t)MCU_MIN(255, uz + t);
    const uint32_t lo = (uint32_t)MCU_MAX(0, uz - t);
    const uint32_t hi4 = hi * 0x01010101u;
    const uint32_t lo4 = lo * 0x01010101u;
    const int8_t *p = input;
    int32_t left = count;
    uint32_t acc = 0;
    while (left >= 16 && acc == 0)
    {
        const uint32_t a = mcu_check_word(p), b = mcu_check_word(p + 4), c = mcu_check_word(p + 8),
                       d = mcu_check_word(p + 12);
        acc = mcu_check_uqsub8(a, hi4) | mcu_check_uqsub8(lo4, a) | mcu_check_uqsub8(b, hi4) |
              mcu_check_uqsub8(lo4, b) | mcu_check_uqsub8(c, hi4) | mcu_check_uqsub8(lo4, c) |
              mcu_check_uqsub8(d, hi4) | mcu_check_uqsub8(lo4, d);
        p += 16;
        left -= 16;
    }
    while (left >= 4 && acc == 0)
    {
        const uint32_t a = mcu_check_word(p);
        acc = mcu_check_uqsub8(a, hi4) | mcu_check_uqsub8(lo4, a);
        p += 4;
        left -= 4;
    }
    while (left > 0 && acc == 0)
    {
        const uint32_t u = (uint32_t)((int32_t)*p + 128);
        acc = (u > hi || u < lo) ? 1u : 0u;
        p++;
        left--;
    }
    *output = acc != 0 ? 1 : 0;
    return MCU_OK;
}
