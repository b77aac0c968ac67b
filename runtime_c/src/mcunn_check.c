/* The outlier check of value-driven patch classification (VDPC, mcunn.h: mcu_outlier_check_s8): whether any
 * value of a region buffer lies more than a threshold from the zero point. A pure integer comparison, so the
 * decision equals the simulator's (compiler/ops/outlier_check.py: outlier_decision) on every input. */
#include "mcunn.h"

mcu_status mcu_outlier_check_s8(const mcu_context *ctx,
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
    /* |x - zp| > t  <=>  x < zp - t  or  x > zp + t (int32: no overflow) */
    const int32_t lo = zp - t;
    const int32_t hi = zp + t;
    int32_t outlier = 0;
    for (int32_t i = 0; i < count; i++)
    {
        const int32_t x = input[i];
        if (x < lo || x > hi)
        {
            outlier = 1;
            break; /* one outlier decides the patch */
        }
    }
    *output = outlier;
    return MCU_OK;
}
