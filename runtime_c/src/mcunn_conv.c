/* Convolutions: standard / grouped and depthwise, int8, NHWC. Portable reference loops. */
#include <stddef.h>

#include "mcunn.h"
#include "mcunn_support.h"

int32_t mcu_conv_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims)
{
    (void)input_dims;
    (void)filter_dims;
    return 0;
}

mcu_status mcu_conv_s8(const mcu_context *ctx,
                       const mcu_conv_params *conv_params,
                       const mcu_per_channel_quant_params *quant_params,
                       const mcu_dims *input_dims,
                       const int8_t *input,
                       const mcu_dims *filter_dims,
                       const int8_t *filter,
                       const mcu_dims *bias_dims,
                       const int32_t *bias,
                       const mcu_dims *output_dims,
                       int8_t *output)
{
    (void)ctx;
    (void)bias_dims;
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w, k_c = filter_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const int32_t groups = conv_params->groups;
    if (groups < 1 || k_c * groups != in_c || out_c % groups != 0 || filter_dims->n != out_c)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t out_c_per_group = out_c / groups;
    const int32_t in_offset = conv_params->input_offset;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t y0 = oy * conv_params->stride.h - conv_params->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t x0 = ox * conv_params->stride.w - conv_params->padding.w;
                /* kernel columns inside the image; with dilation 1 a kernel row is then one contiguous run of
                 * (kx_end - kx_begin) * k_c bytes in both the input and the weights */
                int32_t kx_begin = 0, kx_end = k_w;
                while (kx_begin < k_w && x0 + kx_begin * conv_params->dilation.w < 0)
                {
                    kx_begin++;
                }
                while (kx_end > kx_begin && x0 + (kx_end - 1) * conv_params->dilation.w >= in_w)
                {
                    kx_end--;
                }
                const int32_t contiguous = conv_params->dilation.w == 1 && groups == 1;
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    const int32_t ic0 = (oc / out_c_per_group) * k_c;
                    const int8_t *w_oc = filter + (int32_t)oc * k_h * k_w * k_c;
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < k_h; ky++)
                    {
                        const int32_t iy = y0 + ky * conv_params->dilation.h;
                        if (iy < 0 || iy >= in_h)
                        {
                            continue;
                        }
                        if (contiguous)
                        {
                            const int8_t *px = in_b + (iy * in_w + x0 + kx_begin) * in_c;
                            const int8_t *pw = w_oc + (ky * k_w + kx_begin) * k_c;
                            const int32_t n = (kx_end - kx_begin) * k_c;
                            for (int32_t i = 0; i < n; i++)
                            {
                                acc += (px[i] + in_offset) * pw[i];
                            }
                            continue;
                        }
                        for (int32_t kx = kx_begin; kx < kx_end; kx++)
                        {
                            const int32_t ix = x0 + kx * conv_params->dilation.w;
                            const int8_t *px = in_b + (iy * in_w + ix) * in_c + ic0;
                            const int8_t *pw = w_oc + (ky * k_w + kx) * k_c;
                            for (int32_t ic = 0; ic < k_c; ic++)
                            {
                                acc += (px[ic] + in_offset) * pw[ic];
                            }
                        }
                    }
                    acc = mcu_requantize(acc, quant_params->multiplier[oc], quant_params->shift[oc]);
                    acc += conv_params->output_offset;
                    acc = MCU_CLAMP(acc, conv_params->activation.min, conv_params->activation.max);
                    output[((b * out_h + oy) * out_w + ox) * out_c + oc] = (int8_t)acc;
                }
            }
        }
    }
    return MCU_OK;
}

int32_t mcu_dwconv_get_buffer_size_s8(const mcu_dims *output_dims)
{
    return output_dims->c * (int32_t)sizeof(int32_t);
}

/* Depthwise with one int32 accumulator per output channel in scratch: taps outer, channels inner, so the
 * innermost loop walks input and weights contiguously. */
static void dwconv_channels_inner(const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params,
                                  const mcu_dims *input_dims,
                                  const int8_t *input,
                                  const mcu_dims *filter_dims,
                                  const int8_t *filter,
                                  const int32_t *bias,
                                  const mcu_dims *output_dims,
                                  int8_t *output,
                                  int32_t *acc)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const int32_t mult = dw_params->ch_mult, in_offset = dw_params->input_offset;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t y0 = oy * dw_params->stride.h - dw_params->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t x0 = ox * dw_params->stride.w - dw_params->padding.w;
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    acc[oc] = bias ? bias[oc] : 0;
                }
                for (int32_t ky = 0; ky < k_h; ky++)
                {
                    const int32_t iy = y0 + ky * dw_params->dilation.h;
                    if (iy < 0 || iy >= in_h)
                    {
                        continue;
                    }
                    for (int32_t kx = 0; kx < k_w; kx++)
                    {
                        const int32_t ix = x0 + kx * dw_params->dilation.w;
                        if (ix < 0 || ix >= in_w)
                        {
                            continue;
                        }
                        const int8_t *px = in_b + (iy * in_w + ix) * in_c;
                        const int8_t *pw = filter + (ky * k_w + kx) * out_c;
                        if (mult == 1)
                        {
                            for (int32_t c = 0; c < out_c; c++)
                            {
                                acc[c] += (px[c] + in_offset) * pw[c];
                            }
                        }
                        else
                        {
                            for (int32_t oc = 0; oc < out_c; oc++)
                            {
                                acc[oc] += (px[oc / mult] + in_offset) * pw[oc];
                            }
                        }
                    }
                }
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * out_c;
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    int32_t y = mcu_requantize(acc[oc], quant_params->multiplier[oc], quant_params->shift[oc]);
                    y += dw_params->output_offset;
                    out_px[oc] = (int8_t)MCU_CLAMP(y, dw_params->activation.min, dw_params->activation.max);
                }
            }
        }
    }
}

mcu_status mcu_dwconv_s8(const mcu_context *ctx,
                         const mcu_dw_conv_params *dw_params,
                         const mcu_per_channel_quant_params *quant_params,
                         const mcu_dims *input_dims,
                         const int8_t *input,
                         const mcu_dims *filter_dims,
                         const int8_t *filter,
                         const mcu_dims *bias_dims,
                         const int32_t *bias,
                         const mcu_dims *output_dims,
                         int8_t *output)
{
    (void)bias_dims;
    const int32_t out_c = output_dims->c, mult = dw_params->ch_mult;
    if (mult < 1 || input_dims->c * mult != out_c || filter_dims->c != out_c)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_dwconv_get_buffer_size_s8(output_dims))
    {
        return MCU_ARG_ERROR; /* the per-channel accumulators live in the caller's scratch */
    }
    dwconv_channels_inner(dw_params, quant_params, input_dims, input, filter_dims, filter, bias, output_dims, output,
                          (int32_t *)ctx->buf);
    return MCU_OK;
}
