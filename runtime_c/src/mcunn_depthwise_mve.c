/* Depthwise convolution (channel multiplier 1) for MVE (Helium, Cortex-M55): 16 channels per block, inputs
 * and weights widened to int16 on load, VMULLB / VMULLT (int16 x int16 -> int32, even and odd lanes) and
 * adds into four int32 accumulators; the input zero-point term folded into the bias at compile time, taps
 * outside the input read a row of zero points (whose products cancel their share of it). Compiled only with
 * integer MVE; empty elsewhere. */
#include "mcunn_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <stddef.h>

#include "mcunn_mve_support.h"

int32_t mcu_dwconv_mve_get_buffer_size_s8(const mcu_dims *input_dims)
{
    return input_dims->c;
}

/* Requantize the even (e) and odd (o) channel lanes of an 8-channel half-block at c, store n <= 8 lanes. */
static inline __attribute__((always_inline)) void store_half(int32x4_t e, int32x4_t o, int32_t c, int32_t n,
                                                             const int32_t *mult, const int32_t *shift,
                                                             int32_t out_offset, int32_t lo, int32_t hi,
                                                             int vector_ok, int8_t *out)
{
    const uint32x4_t even = vidupq_n_u32(0, 2); /* {0, 2, 4, 6}: word offsets of the even channels */
    const mve_pred16_t pe = vctp32q((uint32_t)((n + 1) >> 1)), po = vctp32q((uint32_t)(n >> 1));
    if (vector_ok)
    {
        const int32x4_t me = vldrwq_gather_shifted_offset_z_s32(mult + c, even, pe);
        const int32x4_t mo = vldrwq_gather_shifted_offset_z_s32(mult + c + 1, even, po);
        const int32x4_t se = vldrwq_gather_shifted_offset_z_s32(shift + c, even, pe);
        const int32x4_t so = vldrwq_gather_shifted_offset_z_s32(shift + c + 1, even, po);
        e = mcu_mve_output(e, me, se, out_offset, lo, hi);
        o = mcu_mve_output(o, mo, so, out_offset, lo, hi);
    }
    else
    {
        int32_t ve[4], vo[4];
        vst1q_s32(ve, e);
        vst1q_s32(vo, o);
        for (int32_t j = 0; j < 4; j++)
        {
            if (2 * j < n)
            {
                ve[j] = MCU_CLAMP(mcu_requantize(ve[j], mult[c + 2 * j], shift[c + 2 * j]) + out_offset, lo, hi);
            }
            if (2 * j + 1 < n)
            {
                vo[j] = MCU_CLAMP(mcu_requantize(vo[j], mult[c + 2 * j + 1], shift[c + 2 * j + 1]) + out_offset, lo,
                                  hi);
            }
        }
        e = vld1q_s32(ve);
        o = vld1q_s32(vo);
    }
    int16x8_t y = vdupq_n_s16(0);
    y = vmovnbq_s32(y, e);
    y = vmovntq_s32(y, o);
    vstrbq_p_s16(out + c, y, vctp16q((uint32_t)n));
}

/* One output pixel: all channels, from its T tap pointers. */
static inline __attribute__((always_inline)) void dw_pixel(const int8_t *const *tap, int32_t taps, int32_t ch,
                                                           const int8_t *filter, const int32_t *bias,
                                                           const int32_t *mult, const int32_t *shift,
                                                           int32_t out_offset, int32_t lo, int32_t hi,
                                                           int vector_ok, int8_t *out)
{
    for (int32_t c = 0; c < ch; c += 16)
    {
        const int32_t r = ch - c < 16 ? ch - c : 16;
        const mve_pred16_t p0 = vctp16q((uint32_t)r), p1 = vctp16q((uint32_t)(r > 8 ? r - 8 : 0));
        const int8_t *w = filter + c * taps;
        int32x4_t e0, o0, e1, o1;
        if (bias)
        {
            e0 = vldrwq_s32(bias + c);
            o0 = vldrwq_s32(bias + c + 4);
            e1 = vldrwq_s32(bias + c + 8);
            o1 = vldrwq_s32(bias + c + 12);
        }
        else
        {
            e0 = o0 = e1 = o1 = vdupq_n_s32(0);
        }
        if (r == 16)
        {
            for (int32_t t = 0; t < taps; t++)
            {
                const int8_t *x = tap[t] + c;
                const int16x8_t x0 = vldrbq_s16(x), x1 = vldrbq_s16(x + 8);
                const int16x8_t w0 = vldrbq_s16(w), w1 = vldrbq_s16(w + 8);
                w += 16;
                e0 = vaddq_s32(e0, vmullbq_int_s16(x0, w0));
                o0 = vaddq_s32(o0, vmulltq_int_s16(x0, w0));
                e1 = vaddq_s32(e1, vmullbq_int_s16(x1, w1));
                o1 = vaddq_s32(o1, vmulltq_int_s16(x1, w1));
            }
        }
        else
        {
            for (int32_t t = 0; t < taps; t++)
            {
                const int8_t *x = tap[t] + c;
                const int16x8_t x0 = vldrbq_z_s16(x, p0), x1 = vldrbq_z_s16(x + 8, p1);
                const int16x8_t w0 = vldrbq_z_s16(w, p0), w1 = vldrbq_z_s16(w + 8, p1);
                w += r;
                e0 = vaddq_s32(e0, vmullbq_int_s16(x0, w0));
                o0 = vaddq_s32(o0, vmulltq_int_s16(x0, w0));
                e1 = vaddq_s32(e1, vmullbq_int_s16(x1, w1));
                o1 = vaddq_s32(o1, vmulltq_int_s16(x1, w1));
            }
        }
        store_half(e0, o0, c, r < 8 ? r : 8, mult, shift, out_offset, lo, hi, vector_ok, out);
        if (r > 8)
        {
            store_half(e1, o1, c + 8, r - 8, mult, shift, out_offset, lo, hi, vector_ok, out);
        }
    }
}

mcu_status mcu_dwconv_mve_s8(const mcu_context *ctx,
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
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, taps = kh * kw;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    if (dw_params->ch_mult != 1 || output_dims->c != ch || filter_dims->c != ch || taps > MCU_DWCONV_MVE_MAX_TAPS ||
        taps < 1 || out_h < 0 || out_w < 0 || ctx == NULL || ctx->buf == NULL ||
        ctx->size < mcu_dwconv_mve_get_buffer_size_s8(input_dims))
    {
        return MCU_ARG_ERROR;
    }
    int8_t *zp_row = (int8_t *)ctx->buf;
    const int8x16_t zp = vdupq_n_s8((int8_t)(-dw_params->input_offset));
    for (int32_t i = 0; i < ch; i += 16)
    {
        vstrbq_p_s8(zp_row + i, zp, vctp8q((uint32_t)(ch - i)));
    }
    const int32_t *mult = quant_params->multiplier, *shift = quant_params->shift;
    const int vector_ok = mcu_mve_requant_vector_ok(shift, ch);
    const int32_t out_offset = dw_params->output_offset, lo = dw_params->activation.min,
                  hi = dw_params->activation.max;
    const int8_t *tap[MCU_DWCONV_MVE_MAX_TAPS];
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t y0 = oy * dw_params->stride.h - dw_params->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t x0 = ox * dw_params->stride.w - dw_params->padding.w;
                int32_t t = 0;
                for (int32_t ky = 0; ky < kh; ky++)
                {
                    const int32_t iy = y0 + ky * dw_params->dilation.h;
                    const int row_in = iy >= 0 && iy < in_h;
                    for (int32_t kx = 0; kx < kw; kx++, t++)
                    {
                        const int32_t ix = x0 + kx * dw_params->dilation.w;
                        tap[t] = row_in && ix >= 0 && ix < in_w ? in_b + (iy * in_w + ix) * ch : zp_row;
                    }
                }
                int8_t *out = output + ((b * out_h + oy) * out_w + ox) * ch;
                if (taps == 9)
                {
                    /* 3x3 (and every other 9-tap window): the tap loop with a constant count, unrolled */
                    dw_pixel(tap, 9, ch, filter, bias, mult, shift, out_offset, lo, hi, vector_ok, out);
                }
                else
                {
                    dw_pixel(tap, taps, ch, filter, bias, mult, shift, out_offset, lo, hi, vector_ok, out);
                }
            }
        }
    }
    return MCU_OK;
}

#else
typedef int mcu_dwconv_mve_unused; /* ISO C: no empty translation unit */
#endif
