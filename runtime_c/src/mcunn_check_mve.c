/* The outlier check with MVE (mcunn.h: mcu_outlier_check_mve_s8): 16 values per step, each as its unsigned
 * offset u = x + 128 (VEOR 0x80), |x - zp| = VABD.U8(u, zp + 128) exactly (in [0, 255]), the running maximum
 * in a vector (VMAX; whole vectors unpredicated, the tail predicated: inactive lanes keep the maximum), one VMAXV at the end. Compiled only
 * with integer MVE; empty elsewhere. */
#include "mcunn.h"

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
    const uint8x16_t bias = vdupq_n_u8(0x80u);
    const uint8x16_t uz = vdupq_n_u8((uint8_t)(zp + 128));
    uint8x16_t m = vdupq_n_u8(0);
    const uint8_t *p = (const uint8_t *)input;
    int32_t i = 0;
    for (; i + 16 <= count; i += 16) /* whole vectors unpredicated: no VPR traffic in the loop */
    {
        m = vmaxq_u8(m, vabdq_u8(veorq_u8(vld1q_u8(p + i), bias), uz));
    }
    if (i < count)
    {
        const mve_pred16_t pred = vctp8q((uint32_t)(count - i));
        const uint8x16_t u = veorq_u8(vldrbq_z_u8(p + i, pred), bias);
        m = vmaxq_m_u8(m, m, vabdq_u8(u, uz), pred);
    }
    *output = (int32_t)vmaxvq_u8(0, m) > t ? 1 : 0;
    return MCU_OK;
}

#endif
