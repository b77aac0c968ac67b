/* Max and average pooling over H, W, int8 (TFLite semantics: padded taps are ignored). */
#include "mcunn.h"
#include "mcunn_support.h"

/* One window loop for both pools: only what is done with the valid (non-padded) taps differs. */
static mcu_status pool_s8(const mcu_pool_params *pp,
                          const mcu_dims *input_dims,
                          const int8_t *input,
                          const mcu_dims *filter_dims,
                          const mcu_dims *output_dims,
                          int8_t *output,
                          int is_max)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
        for (int32_t oy = 0; oy < output_dims->h; oy++)
            for (int32_t ox = 0; ox < output_dims->w; ox++)
                for (int32_t c = 0; c < ch; c++)
                {
                    const int32_t y0 = oy * pp->stride.h - pp->padding.h;
                    const int32_t x0 = ox * pp->stride.w - pp->padding.w;
                    int32_t max = -128, sum = 0, count = 0;
                    for (int32_t ky = MCU_MAX(0, -y0); ky < MCU_MIN(filter_dims->h, in_h - y0); ky++)
                        for (int32_t kx = MCU_MAX(0, -x0); kx < MCU_MIN(filter_dims->w, in_w - x0); kx++)
                        {
                            const int32_t v = input[((b * in_h + y0 + ky) * in_w + x0 + kx) * ch + c];
                            max = MCU_MAX(max, v);
                            sum += v;
                            count++;
                        }
                    int32_t y = max;
                    if (!is_max)
                    {
                        if (count == 0)
                        {
                            return MCU_ARG_ERROR;
                        }
                        /* TFLite rounding: half away from zero */
                        y = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    }
                    y = MCU_CLAMP(y, pp->activation.min, pp->activation.max);
                    output[((b * output_dims->h + oy) * output_dims->w + ox) * ch + c] = (int8_t)y;
                }
    return MCU_OK;
}

mcu_status mcu_max_pool_s8(const mcu_context *ctx,
                           const mcu_pool_params *pool_params,
                           const mcu_dims *input_dims,
                           const int8_t *input,
                           const mcu_dims *filter_dims,
                           const mcu_dims *output_dims,
                           int8_t *output)
{
    (void)ctx;
    return pool_s8(pool_params, input_dims, input, filter_dims, output_dims, output, 1);
}

mcu_status mcu_avg_pool_s8(const mcu_context *ctx,
                           const mcu_pool_params *pool_params,
                           const mcu_dims *input_dims,
                           const int8_t *input,
                           const mcu_dims *filter_dims,
                           const mcu_dims *output_dims,
                           int8_t *output)
{
    (void)ctx;
    return pool_s8(pool_params, input_dims, input, filter_dims, output_dims, output, 0);
}

mcu_status mcu_mean_hw_s8(const int8_t *input, const mcu_dims *input_dims, int32_t input_offset, int32_t multiplier,
                          int32_t shift, int32_t output_zp, int8_t *output)
{
    const int32_t hw = input_dims->h * input_dims->w, ch = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
        for (int32_t c = 0; c < ch; c++)
        {
            uint32_t acc = 0u; /* int32 accumulation that wraps, as TFLite's */
            for (int32_t i = 0; i < hw; i++)
            {
                acc += (uint32_t)(int32_t)input[(b * hw + i) * ch + c];
            }
            const int32_t shifted = (int32_t)(acc - (uint32_t)input_offset);
            const int32_t y = mcu_requantize(shifted, multiplier, shift) + output_zp;
            output[b * ch + c] = (int8_t)MCU_CLAMP(y, -128, 127);
        }
    return MCU_OK;
}
