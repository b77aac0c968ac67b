/* Depthwise convolution with SIMD32 (DSP extension), channel multiplier 1.
 *
 * SMLAD adds two products, but depthwise channels never mix, so the pair is taken along the window: one
 * SMLAD multiplies channel c at taps t and t+1. Four channels of two taps are two input words; PKHBT/PKHTB
 * regroup them per channel pair and SXTAB16 widens them with the input offset added (so the bias stays the
 * model's and skipped taps need no correction). The weights are stored at compile time in exactly that
 * order (compiler/ops/fast_layout.py), so each weight word is one LDR and two SXTB16. Taps outside the
 * input read a row of zero points from scratch: (zp + input_offset) = 0 contributes nothing, and border and
 * interior pixels run the same code. */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

int32_t mcu_dwconv_dsp_get_buffer_size_s8(const mcu_dims *input_dims)
{
    return (input_dims->c + 3) & ~3;
}

/* Four channels of one output pixel: taps[t] + c is channel c of tap t. */
static inline void dw_group4(const int8_t *const *taps, int32_t n_taps, int32_t c, const int8_t *w, int32_t off2,
                             int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t t = 0;
    for (; t + 1 < n_taps; t += 2)
    {
        const int32_t x = mcu_read_s8x4(taps[t] + c), y = mcu_read_s8x4(taps[t + 1] + c);
        const int32_t lo = mcu_pkhbt16(x, y); /* x0 x1 y0 y1 */
        const int32_t hi = mcu_pkhtb16(y, x); /* x2 x3 y2 y3 */
        const int32_t w01 = mcu_read_s8x4(w), w23 = mcu_read_s8x4(w + 4);
        w += 8;
        a0 = mcu_smlad(mcu_sxtab16(off2, lo), mcu_sxtb16(w01), a0);
        a1 = mcu_smlad(mcu_sxtab16_ror8(off2, lo), mcu_sxtb16_ror8(w01), a1);
        a2 = mcu_smlad(mcu_sxtab16(off2, hi), mcu_sxtb16(w23), a2);
        a3 = mcu_smlad(mcu_sxtab16_ror8(off2, hi), mcu_sxtb16_ror8(w23), a3);
    }
    if (t < n_taps)
    {
        const int32_t x = mcu_read_s8x4(taps[t] + c), wl = mcu_read_s8x4(w);
        const int32_t xe = mcu_sxtab16(off2, x), xo = mcu_sxtab16_ror8(off2, x); /* (c0, c2), (c1, c3) */
        const int32_t we = mcu_sxtb16(wl), wo = mcu_sxtb16_ror8(wl);
        a0 = mcu_smlabb(xe, we, a0);
        a2 = mcu_smlatt(xe, we, a2);
        a1 = mcu_smlabb(xo, wo, a1);
        a3 = mcu_smlatt(xo, wo, a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

mcu_status mcu_dwconv_dsp_s8(const mcu_context *ctx,
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
    const mcu_dw_conv_params *dp = dw_params;
    const int32_t c = input_dims->c, kh = filter_dims->h, kw = filter_dims->w, n_taps = kh * kw;
    if (dp->ch_mult != 1 || output_dims->c != c || filter_dims->c != c || n_taps > MCU_DWCONV_DSP_MAX_TAPS)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_dwconv_dsp_get_buffer_size_s8(input_dims))
    {
        return MCU_ARG_ERROR;
    }
    int8_t *zero_points = (int8_t *)ctx->buf;
    memset(zero_points, (int8_t)(-dp->input_offset), (size_t)c);
    const int32_t off2 = mcu_dup16(dp->input_offset);
    const int32_t c4 = c & ~3, oh = output_dims->h, ow = output_dims->w;
    const int32_t in_h = input_dims->h, in_w = input_dims->w;
    const int32_t oo = dp->output_offset, lo = dp->activation.min, hi = dp->activation.max;
    const int8_t *tail_w = filter + c4 * n_taps;
    const int8_t *taps[MCU_DWCONV_DSP_MAX_TAPS];
    int8_t *out = output;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + b * in_h * in_w * c;
        for (int32_t oy = 0; oy < oh; oy++)
        {
            const int32_t y0 = oy * dp->stride.h - dp->padding.h;
            for (int32_t ox = 0; ox < ow; ox++, out += c)
            {
                const int32_t x0 = ox * dp->stride.w - dp->padding.w;
                for (int32_t ky = 0, t = 0; ky < kh; ky++)
                {
                    const int32_t iy = y0 + ky * dp->dilation.h;
                    for (int32_t kx = 0; kx < kw; kx++, t++)
                    {
                        const int32_t ix = x0 + kx * dp->dilation.w;
                        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                        taps[t] = inside ? in_b + (iy * in_w + ix) * c : zero_points;
                    }
                }
                const int8_t *w = filter;
                for (int32_t ch = 0; ch < c4; ch += 4, w += 4 * n_taps)
                {
                    int32_t acc[4];
                    for (int32_t i = 0; i < 4; i++)
                    {
                        acc[i] = bias ? bias[ch + i] : 0;
                    }
                    dw_group4(taps, n_taps, ch, w, off2, acc);
                    for (int32_t i = 0; i < 4; i++)
                    {
                        out[ch + i] = mcu_dsp_requantize_s8(acc[i], quant_params->multiplier[ch + i],
                                                            quant_params->shift[ch + i], oo, lo, hi);
                    }
                }
                for (int32_t ch = c4; ch < c; ch++)
                {
                    /* the last c % 4 channels, each with its taps contiguous */
                    const int8_t *wt = tail_w + (ch - c4) * n_taps;
                    int32_t acc = bias ? bias[ch] : 0;
                    for (int32_t t = 0; t < n_taps; t++)
                    {
                        acc += (taps[t][ch] + dp->input_offset) * wt[t];
                    }
                    out[ch] = mcu_dsp_requantize_s8(acc, quant_params->multiplier[ch], quant_params->shift[ch], oo,
                                                    lo, hi);
                }
            }
        }
    }
    return MCU_OK;
}
