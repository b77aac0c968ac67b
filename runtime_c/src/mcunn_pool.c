/* Max and average pooling over H, W, int8 (TFLite semantics: padded taps are ignored). */
#include "mcunn.h"
#include "mcunn_support.h"

/* One window loop for both pools: only what is done with the valid (non-padded) taps differs. An average
 * window always has a tap here: mcu_avg_pool_s8 checks that before calling. */
static void pool_s8(const mcu_pool_params *pp,
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
                        /* TFLite rounding: half away from zero */
                        y = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    }
                    y = MCU_CLAMP(y, pp->activation.min, pp->activation.max);
                    output[((b * output_dims->h + oy) * output_dims->w + ox) * ch + c] = (int8_t)y;
                }
}

/* Whether the window starting at x0 (one axis) has a tap inside [0, size): the loops above run
 * k from max(0, -x0) to min(kernel, size - x0). */
static int axis_has_tap(int32_t x0, int32_t kernel, int32_t size)
{
    return MCU_MAX(0, -x0) < MCU_MIN(kernel, size - x0);
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
    pool_s8(pool_params, input_dims, input, filter_dims, output_dims, output, 1);
    return MCU_OK;
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
    if (input_dims->n > 0 && input_dims->c > 0) /* else no window is evaluated */
    {
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            if (output_dims->w > 0 &&
                !axis_has_tap(oy * pool_params->stride.h - pool_params->padding.h, filter_dims->h, input_dims->h))
            {
                return MCU_ARG_ERROR; /* a window with no tap: its mean is undefined */
            }
        }
        for (int32_t ox = 0; ox < output_dims->w; ox++)
        {
            if (output_dims->h > 0 &&
                !axis_has_tap(ox * pool_params->stride.w - pool_params->padding.w, filter_dims->w, input_dims->w))
            {
                return MCU_ARG_ERROR;
            }
        }
    }
    pool_s8(pool_params, input_dims, input, filter_dims, output_dims, output, 0);
    return MCU_OK;
}

mcu_status mcu_mean_hw_s8(const mcu_context *ctx,
                          const mcu_mean_params *mean_params,
                          const mcu_per_tensor_quant_params *quant_params,
                          const mcu_dims *input_dims,
                          const int8_t *input,
                          const mcu_dims *output_dims,
                          int8_t *output)
{
    (void)ctx;
    if (output_dims->n != input_dims->n || output_dims->h != 1 || output_dims->w != 1 ||
        output_dims->c != input_dims->c)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t hw = input_dims->h * input_dims->w, ch = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
        for (int32_t c = 0; c < ch; c++)
        {
            uint32_t acc = 0u; /* int32 accumulation that wraps, as TFLite's */
            for (int32_t i = 0; i < hw; i++)
            {
                acc += (uint32_t)(int32_t)input[(b * hw + i) * ch + c];
            }
            const int32_t shifted = (int32_t)(acc - (uint32_t)mean_params->input_offset);
            const int32_t y =
                mcu_requantize(shifted, quant_params->multiplier, quant_params->shift) + mean_params->output_offset;
            output[b * ch + c] = (int8_t)MCU_CLAMP(y, -128, 127);
        }
    return MCU_OK;
}
