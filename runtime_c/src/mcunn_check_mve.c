/* The outlier check with MVE (mcunn.h: mcu_outlier_check_mve_s8): x is an outlier exactly when x > h or x < l
 * (signed), with h = min(127, zp + t) and l = max(-128, zp - t). 16 values per step: the running signed maximum
 * (VMAX.S8) and minimum (VMIN.S8) in vectors, only for a bound that can be crossed (after a ReLU the zero
 * point is -128: only h counts, so the loop is VLDRB + VMAX); whole vectors unpredicated, the tail predicated
 * (inactive lanes keep the running values); one VMAXV / VMINV at the end. Compiled only with integer MVE;
 * empty elsewhere. */
#include "mcunn.h"
#include "mcunn_support.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <arm_mve.h>

mcu_status mcu_outlier_check_mve_s8(const mcu_context *ctx,
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
    int8x16_t mx = vdupq_n_s8(-128), mn = vdupq_n_s8(127);
    int32_t i = 0;
    if (high && low)
    {
        for (; i + 16 <= count; i += 16) /* whole vectors unpredicated: no VPR traffic in the loop */
        {
            const int8x16_t x = vld1q_s8(input + i);
            mx = vmaxq_s8(mx, x);
            mn = vminq_s8(mn, x);
        }
    }
    else if (high)
    {
        for (; i + 16 <= count; i += 16)
        {
            mx = vmaxq_s8(mx, vld1q_s8(input + i));
        }
    }
    else if (low)
    {
        for (; i + 16 <= count; i += 16)
        {
            mn = vminq_s8(mn, vld1q_s8(input + i));
        }
    }
    if ((high || low) && i < count)
    {
        const mve_pred16_t pred = vctp8q((uint32_t)(count - i));
        const int8x16_t x = vldrbq_z_s8(input + i, pred);
        mx = vmaxq_m_s8(mx, mx, x, pred);
        mn = vminq_m_s8(mn, mn, x, pred);
    }
    *output = (high && (int32_t)vmaxvq_s8(-128, mx) > h) || (low && (int32_t)vminvq_s8(127, mn) < l) ? 1 : 0;
    return MCU_OK;
}

#endif
