/* Depthwise convolution with SIMD32 (DSP extension), channel multiplier 1.
 *
 * SMLAD adds two products, but depthwise channels never mix, so the pair is taken along the window: one
 * SMLAD multiplies channel c at taps t and t+1. Four channels of two taps are two input words; PKHBT/PKHTB
 * regroup them per channel pair and SXTB16 widens them. The weights are stored at compile time in exactly
 * that order (compiler/ops/fast_layout.py), so each weight word is one LDR and two SXTB16. The input offset
 * is folded into the bias at compile time (bias + input_offset * sum of the channel's taps); taps outside
 * the input read a row of zero points from scratch, whose products -input_offset * w cancel their share of
 * the folded term, so border and interior pixels run the same code and every tap is exact.
 *
 * Two output pixels at a time: the MAC loop leaves their accumulators on the stack (a chunk of channels)
 * and the output stage requantizes both with each channel's constants derived once. */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

#define DW_CHUNK 32 /* channels per chunk, a multiple of 4 */

int32_t mcu_dwconv_dsp_get_buffer_size_s8(const mcu_dims *input_dims)
{
    return (input_dims->c + 3) & ~3;
}

/* Four channels of one output pixel: taps[t] + c is channel c of tap t; acc[0..3] in and out. */
static inline __attribute__((always_inline)) void dw_group4(const int8_t *const *taps, int32_t n_taps, int32_t c,
                                                            const int8_t *w, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t pairs = n_taps >> 1;
    const int8_t *const *tp = taps;
#if MCU_DSP_ASM
    /* gcc's schedule of the C below takes 28 instructions per pair of taps and 19 for the last tap; these take
     * 19 (8 MACs, 13 registers) and 11 */
    int32_t p0, p1, lo, t, u;
    if (pairs)
    {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[p0], %[p1], [%[tp]], #8\n\t"
            "ldr %[p0], [%[p0], %[c]]\n\t"
            "ldr %[p1], [%[p1], %[c]]\n\t"
            "pkhbt %[lo], %[p0], %[p1], lsl #16\n\t" /* x0 x1 y0 y1 */
            "pkhtb %[p0], %[p1], %[p0], asr #16\n\t" /* x2 x3 y2 y3 */
            "ldr %[p1], [%[w]], #4\n\t"
            "sxtb16 %[t], %[lo]\n\t"
            "sxtb16 %[u], %[p1]\n\t"
            "smlad %[a0], %[t], %[u], %[a0]\n\t"
            "sxtb16 %[t], %[lo], ror #8\n\t"
            "sxtb16 %[u], %[p1], ror #8\n\t"
            "smlad %[a1], %[t], %[u], %[a1]\n\t"
            "ldr %[p1], [%[w]], #4\n\t"
            "sxtb16 %[t], %[p0]\n\t"
            "sxtb16 %[u], %[p1]\n\t"
            "smlad %[a2], %[t], %[u], %[a2]\n\t"
            "sxtb16 %[t], %[p0], ror #8\n\t"
            "sxtb16 %[u], %[p1], ror #8\n\t"
            "smlad %[a3], %[t], %[u], %[a3]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [tp] "+r"(tp), [w] "+r"(w),
              [n] "+r"(pairs), [p0] "=&r"(p0), [p1] "=&r"(p1), [lo] "=&r"(lo), [t] "=&r"(t), [u] "=&r"(u)
            : [c] "r"(c)
            : "cc", "memory");
    }
    if (n_taps & 1)
    {
        /* the last tap alone: one SMLABB / SMLATT per channel */
        __asm__ volatile(
            "ldr %[p0], [%[tp]]\n\t"
            "ldr %[p1], [%[w]]\n\t"
            "ldr %[p0], [%[p0], %[c]]\n\t"
            "sxtb16 %[t], %[p0]\n\t"
            "sxtb16 %[u], %[p1]\n\t"
            "smlabb %[a0], %[t], %[u], %[a0]\n\t"
            "smlatt %[a2], %[t], %[u], %[a2]\n\t"
            "sxtb16 %[t], %[p0], ror #8\n\t"
            "sxtb16 %[u], %[p1], ror #8\n\t"
            "smlabb %[a1], %[t], %[u], %[a1]\n\t"
            "smlatt %[a3], %[t], %[u], %[a3]\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p0] "=&r"(p0), [p1] "=&r"(p1),
              [t] "=&r"(t), [u] "=&r"(u)
            : [tp] "r"(tp), [w] "r"(w), [c] "r"(c)
            : "memory");
    }
#else
    for (; pairs > 0; pairs--, tp += 2)
    {
        const int32_t x = mcu_read_s8x4(tp[0] + c), y = mcu_read_s8x4(tp[1] + c);
        const int32_t lo = mcu_pkhbt16(x, y); /* x0 x1 y0 y1 */
        const int32_t hi = mcu_pkhtb16(y, x); /* x2 x3 y2 y3 */
        const int32_t w01 = mcu_read_s8x4(w), w23 = mcu_read_s8x4(w + 4);
        w += 8;
        a0 = mcu_smlad(mcu_sxtb16(lo), mcu_sxtb16(w01), a0);
        a1 = mcu_smlad(mcu_sxtb16_ror8(lo), mcu_sxtb16_ror8(w01), a1);
        a2 = mcu_smlad(mcu_sxtb16(hi), mcu_sxtb16(w23), a2);
        a3 = mcu_smlad(mcu_sxtb16_ror8(hi), mcu_sxtb16_ror8(w23), a3);
    }
    if (n_taps & 1)
    {
        const int32_t x = mcu_read_s8x4(tp[0] + c), wl = mcu_read_s8x4(w);
        const int32_t xe = mcu_sxtb16(x), xo = mcu_sxtb16_ror8(x); /* (c0, c2), (c1, c3) */
        const int32_t we = mcu_sxtb16(wl), wo = mcu_sxtb16_ror8(wl);
        a0 = mcu_smlabb(xe, we, a0);
        a2 = mcu_smlatt(xe, we, a2);
        a1 = mcu_smlabb(xo, wo, a1);
        a3 = mcu_smlatt(xo, wo, a3);
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* The n channels [c0, c0 + n) of one output pixel into acc[0 .. n). */
static void __attribute__((noinline)) dw_pixel_chunk(const int8_t *const *taps, int32_t n_taps, int32_t c0,
                                                     int32_t n, int32_t c4, const int8_t *filter,
                                                     const int8_t *tail_w, const int32_t *bias, int32_t *acc)
{
    int32_t j = 0;
    const int32_t groups_end = c4 - c0 < n ? c4 - c0 : n;
    const int8_t *w = filter + c0 * n_taps;
    for (; j < groups_end; j += 4, w += 4 * n_taps)
    {
        if (bias)
        {
            memcpy(acc + j, bias + c0 + j, 4 * sizeof(int32_t));
        }
        else
        {
            memset(acc + j, 0, 4 * sizeof(int32_t));
        }
        dw_group4(taps, n_taps, c0 + j, w, acc + j);
    }
    for (; j < n; j++)
    {
        /* the last C % 4 channels, each with its taps contiguous */
        const int32_t ch = c0 + j;
        const int8_t *wt = tail_w + (ch - c4) * n_taps;
        int32_t a = bias ? bias[ch] : 0;
        for (int32_t t = 0; t < n_taps; t++)
        {
            a = mcu_add_wrap(a, taps[t][ch] * wt[t]); /* wrapping, as SMLAD's */
        }
        acc[j] = a;
    }
}

/* Tap pointers of output pixel (b, oy, ox): the input pixel, or the zero-point row outside the input. */
static inline void dw_taps(const int8_t **taps, const mcu_dw_conv_params *dp, const mcu_dims *in,
                           const mcu_dims *filter, const int8_t *in_b, const int8_t *zero_points, int32_t oy,
                           int32_t ox)
{
    const int32_t y0 = oy * dp->stride.h - dp->padding.h, x0 = ox * dp->stride.w - dp->padding.w;
    for (int32_t ky = 0, t = 0; ky < filter->h; ky++)
    {
        const int32_t iy = y0 + ky * dp->dilation.h;
        const int row_inside = iy >= 0 && iy < in->h;
        for (int32_t kx = 0; kx < filter->w; kx++, t++)
        {
            const int32_t ix = x0 + kx * dp->dilation.w;
            taps[t] = row_inside && ix >= 0 && ix < in->w ? in_b + (iy * in->w + ix) * in->c : zero_points;
        }
    }
}

typedef struct
{
    const mcu_dw_conv_params *dp;
    const mcu_per_channel_quant_params *q;
    const mcu_dims *in, *filter, *out;
    const int8_t *input, *filter_data, *zero_points;
    const int32_t *bias;
    int8_t *out_data;
    int foldable; /* mcu_dsp_shifts_foldable() over every channel */
} dw_args;

static void dw_run(const dw_args *a, int full)
{
    const int32_t c = a->in->c, n_taps = a->filter->h * a->filter->w, c4 = c & ~3;
    const int32_t oh = a->out->h, ow = a->out->w, pixels = oh * ow;
    const int8_t *tail_w = a->filter_data + c4 * n_taps;
    const int8_t *taps_a[MCU_DWCONV_DSP_MAX_TAPS], *taps_b[MCU_DWCONV_DSP_MAX_TAPS];
    int32_t acc_a[DW_CHUNK], acc_b[DW_CHUNK], acc[2 * DW_CHUNK];
    for (int32_t b = 0; b < a->in->n; b++)
    {
        const int8_t *in_b = a->input + b * a->in->h * a->in->w * c;
        for (int32_t p = 0; p < pixels; p += 2)
        {
            /* a last single pixel is computed twice and stored twice at the same place */
            const int32_t q = p + 1 < pixels ? p + 1 : p;
            dw_taps(taps_a, a->dp, a->in, a->filter, in_b, a->zero_points, p / ow, p % ow);
            dw_taps(taps_b, a->dp, a->in, a->filter, in_b, a->zero_points, q / ow, q % ow);
            int8_t *o_a = a->out_data + ((b * pixels) + p) * c, *o_b = a->out_data + ((b * pixels) + q) * c;
            for (int32_t c0 = 0; c0 < c; c0 += DW_CHUNK)
            {
                const int32_t n = c - c0 < DW_CHUNK ? c - c0 : DW_CHUNK;
                dw_pixel_chunk(taps_a, n_taps, c0, n, c4, a->filter_data, tail_w, a->bias, acc_a);
                dw_pixel_chunk(taps_b, n_taps, c0, n, c4, a->filter_data, tail_w, a->bias, acc_b);
                for (int32_t j = 0; j < n; j++)
                {
                    acc[2 * j] = acc_a[j];
                    acc[2 * j + 1] = acc_b[j];
                }
                mcu_dsp_store_pairs(acc, n, a->q->multiplier + c0, a->q->shift + c0, a->dp->output_offset,
                                    a->dp->activation.min, a->dp->activation.max, o_a + c0, o_b + c0, full,
                                    a->foldable);
            }
        }
    }
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
    const int32_t c = input_dims->c, n_taps = filter_dims->h * filter_dims->w;
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
    const dw_args a = {dp, quant_params, input_dims, filter_dims, output_dims, input, filter, zero_points, bias,
                       output, mcu_dsp_shifts_foldable(quant_params->shift, c)};
    dw_run(&a, dp->activation.min == -128 && dp->activation.max == 127);
    return MCU_OK;
}
