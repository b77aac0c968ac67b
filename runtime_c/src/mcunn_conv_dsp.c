/* Convolutions with SIMD32 (DSP extension): 1x1 without im2col, and the general im2col kernel. Both block
 * 2 output pixels x 2 output channels so that each weight word and each input word feeds two SMLADs, with
 * four accumulators and a handful of pointers, which fits Cortex-M4's 13 free registers without spilling
 * (checked in the disassembly). Weights come in the layout compiler/ops/fast_layout.py writes at compile
 * time; see mcunn_dsp.h for each layout. */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

#define MCU_ROUND4(x) (((x) + 3) & ~3)

/* ---------------------------------------------------------------------------------------------------------
 * 1x1, raw int8 input: the input offset is folded into the bias at compile time, so the input is used as it
 * is (SXTB16 gives bytes 0, 2 and, rotated, 1, 3; the weights are in natural order and split the same way).
 * ------------------------------------------------------------------------------------------------------ */

/* One channel pair of two pixels over cin bytes (cin a multiple of 4). */
static inline void conv1x1_block_2x2(const int8_t *pa, const int8_t *pb, const int8_t *w, int32_t blocks,
                                     int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    for (int32_t k = 0; k < blocks; k++)
    {
        const int32_t xa = mcu_read_s8x4(pa), xb = mcu_read_s8x4(pb);
        pa += 4;
        pb += 4;
        const int32_t ae = mcu_sxtb16(xa), ao = mcu_sxtb16_ror8(xa);
        const int32_t be = mcu_sxtb16(xb), bo = mcu_sxtb16_ror8(xb);
        const int32_t w0 = mcu_read_s8x4(w), w1 = mcu_read_s8x4(w + 4);
        w += 8;
        int32_t we = mcu_sxtb16(w0), wo = mcu_sxtb16_ror8(w0);
        a00 = mcu_smlad(ae, we, a00);
        a00 = mcu_smlad(ao, wo, a00);
        a10 = mcu_smlad(be, we, a10);
        a10 = mcu_smlad(bo, wo, a10);
        we = mcu_sxtb16(w1);
        wo = mcu_sxtb16_ror8(w1);
        a01 = mcu_smlad(ae, we, a01);
        a01 = mcu_smlad(ao, wo, a01);
        a11 = mcu_smlad(be, we, a11);
        a11 = mcu_smlad(bo, wo, a11);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* One channel of two pixels. */
static inline void conv1x1_block_2x1(const int8_t *pa, const int8_t *pb, const int8_t *w, int32_t blocks,
                                     int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t k = 0; k < blocks; k++)
    {
        const int32_t xa = mcu_read_s8x4(pa), xb = mcu_read_s8x4(pb), w0 = mcu_read_s8x4(w);
        pa += 4;
        pb += 4;
        w += 4;
        const int32_t we = mcu_sxtb16(w0), wo = mcu_sxtb16_ror8(w0);
        a0 = mcu_smlad(mcu_sxtb16(xa), we, a0);
        a0 = mcu_smlad(mcu_sxtb16_ror8(xa), wo, a0);
        a1 = mcu_smlad(mcu_sxtb16(xb), we, a1);
        a1 = mcu_smlad(mcu_sxtb16_ror8(xb), wo, a1);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* Input of output pixel p (batch, row, column in output order). */
static inline const int8_t *conv1x1_pixel(const int8_t *input, const mcu_conv_params *cp, const mcu_dims *in,
                                          const mcu_dims *out, int32_t p)
{
    const int32_t ox = p % out->w, rest = p / out->w;
    const int32_t oy = rest % out->h, b = rest / out->h;
    const int32_t iy = oy * cp->stride.h - cp->padding.h, ix = ox * cp->stride.w - cp->padding.w;
    return input + ((b * in->h + iy) * in->w + ix) * in->c;
}

/* Requantizes and stores the 2 x 2 block (pixel a: acc[0], acc[1]; pixel b: acc[2], acc[3]). */
static inline void store_2x2(const int32_t *acc, const mcu_per_channel_quant_params *q, int32_t oc, int32_t oo,
                             int32_t lo, int32_t hi, int8_t *out_a, int8_t *out_b, int32_t pair_channels,
                             int32_t store_b)
{
    const int32_t m0 = q->multiplier[oc], s0 = q->shift[oc];
    out_a[oc] = mcu_dsp_requantize_s8(acc[0], m0, s0, oo, lo, hi);
    if (store_b)
    {
        out_b[oc] = mcu_dsp_requantize_s8(acc[2], m0, s0, oo, lo, hi);
    }
    if (pair_channels)
    {
        const int32_t m1 = q->multiplier[oc + 1], s1 = q->shift[oc + 1];
        out_a[oc + 1] = mcu_dsp_requantize_s8(acc[1], m1, s1, oo, lo, hi);
        if (store_b)
        {
            out_b[oc + 1] = mcu_dsp_requantize_s8(acc[3], m1, s1, oo, lo, hi);
        }
    }
}

int32_t mcu_conv_1x1_dsp_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims)
{
    (void)input_dims;
    (void)filter_dims;
    return 0;
}

mcu_status mcu_conv_1x1_dsp_s8(const mcu_context *ctx,
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
    const int32_t cin = input_dims->c, cout = output_dims->c;
    const int32_t oh = output_dims->h, ow = output_dims->w;
    const mcu_conv_params *cp = conv_params;
    if (filter_dims->h != 1 || filter_dims->w != 1 || filter_dims->c != cin || filter_dims->n != cout ||
        cp->groups != 1 || cin % 4 != 0)
    {
        return MCU_ARG_ERROR;
    }
    if (oh > 0 && ow > 0)
    {
        /* every tap inside the input: the folded bias assumes all of them contribute */
        const int32_t y0 = -cp->padding.h, x0 = -cp->padding.w;
        const int32_t y1 = (oh - 1) * cp->stride.h + y0, x1 = (ow - 1) * cp->stride.w + x0;
        if (y0 < 0 || x0 < 0 || y1 >= input_dims->h || x1 >= input_dims->w)
        {
            return MCU_ARG_ERROR;
        }
    }
    const int32_t pixels = input_dims->n * oh * ow, blocks = cin / 4;
    const int32_t oo = cp->output_offset, lo = cp->activation.min, hi = cp->activation.max;
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t has_b = p + 1 < pixels;
        const int8_t *pa = conv1x1_pixel(input, cp, input_dims, output_dims, p);
        const int8_t *pb = has_b ? conv1x1_pixel(input, cp, input_dims, output_dims, p + 1) : pa;
        int8_t *out_a = output + p * cout, *out_b = out_a + cout;
        const int8_t *w = filter;
        int32_t oc = 0;
        for (; oc + 1 < cout; oc += 2)
        {
            int32_t acc[4];
            acc[0] = acc[2] = bias ? bias[oc] : 0;
            acc[1] = acc[3] = bias ? bias[oc + 1] : 0;
            conv1x1_block_2x2(pa, pb, w, blocks, acc);
            w += 2 * cin;
            store_2x2(acc, quant_params, oc, oo, lo, hi, out_a, out_b, 1, has_b);
        }
        if (oc < cout)
        {
            int32_t acc[4];
            acc[0] = acc[1] = bias ? bias[oc] : 0;
            conv1x1_block_2x1(pa, pb, w, blocks, acc);
            acc[2] = acc[1];
            store_2x2(acc, quant_params, oc, oo, lo, hi, out_a, out_b, 0, has_b);
        }
    }
    return MCU_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * General convolution: the two pixels' windows are widened to int16 with the input offset added (SXTAB16,
 * as cheap as SXTB16) into scratch, in natural order, K padded with zeros to a multiple of 4. The weights
 * are stored with bytes 1 and 2 of each 4-block swapped, so SXTB16 on a weight word gives elements (0, 1)
 * and the rotated one (2, 3): exactly the int16 pairs of the widened window. Taps outside the input are
 * 0 after the offset, as TFLite's padding.
 * ------------------------------------------------------------------------------------------------------ */

/* n int8 -> int16 with the offset added, natural order. */
static void widen_run(int16_t *dst, const int8_t *src, int32_t n, int32_t offset)
{
    const int32_t off2 = mcu_dup16(offset);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
    {
        const int32_t x = mcu_read_s8x4(src + i);
        const int32_t e = mcu_sxtab16(off2, x), o = mcu_sxtab16_ror8(off2, x);
        const int32_t w01 = mcu_pkhbt16(e, o), w23 = mcu_pkhtb16(o, e);
        memcpy(dst + i, &w01, 4);
        memcpy(dst + i + 2, &w23, 4);
    }
    for (; i < n; i++)
    {
        dst[i] = (int16_t)(src[i] + offset);
    }
}

/* The window of output pixel p as K4 int16. */
static void im2col_widen(int16_t *col, const int8_t *input, const mcu_conv_params *cp, const mcu_dims *in,
                         const mcu_dims *filter, const mcu_dims *out, int32_t p, int32_t k4)
{
    const int32_t cin = in->c, kh = filter->h, kw = filter->w;
    const int32_t ox = p % out->w, rest = p / out->w;
    const int32_t oy = rest % out->h, b = rest / out->h;
    const int32_t y0 = oy * cp->stride.h - cp->padding.h, x0 = ox * cp->stride.w - cp->padding.w;
    const int32_t dh = cp->dilation.h, dw = cp->dilation.w;
    const int8_t *in_b = input + b * in->h * in->w * cin;
    int16_t *dst = col;
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int32_t iy = y0 + ky * dh;
        if (iy < 0 || iy >= in->h)
        {
            memset(dst, 0, (size_t)(kw * cin) * sizeof(int16_t));
            dst += kw * cin;
            continue;
        }
        if (dw == 1)
        {
            int32_t kx_b = x0 < 0 ? -x0 : 0, kx_e = in->w - x0 < kw ? in->w - x0 : kw;
            kx_b = kx_b > kw ? kw : kx_b;
            kx_e = kx_e < kx_b ? kx_b : kx_e;
            memset(dst, 0, (size_t)(kx_b * cin) * sizeof(int16_t));
            widen_run(dst + kx_b * cin, in_b + (iy * in->w + x0 + kx_b) * cin, (kx_e - kx_b) * cin,
                      cp->input_offset);
            memset(dst + kx_e * cin, 0, (size_t)((kw - kx_e) * cin) * sizeof(int16_t));
            dst += kw * cin;
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++, dst += cin)
        {
            const int32_t ix = x0 + kx * dw;
            if (ix < 0 || ix >= in->w)
            {
                memset(dst, 0, (size_t)cin * sizeof(int16_t));
            }
            else
            {
                widen_run(dst, in_b + (iy * in->w + ix) * cin, cin, cp->input_offset);
            }
        }
    }
    memset(dst, 0, (size_t)(k4 - (int32_t)(dst - col)) * sizeof(int16_t));
}

static inline int32_t read_pair(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void conv_block_2x2(const int16_t *ca, const int16_t *cb, const int8_t *w, int32_t blocks,
                                  int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    for (int32_t k = 0; k < blocks; k++)
    {
        const int32_t x01 = read_pair(ca), x23 = read_pair(ca + 2);
        const int32_t y01 = read_pair(cb), y23 = read_pair(cb + 2);
        ca += 4;
        cb += 4;
        const int32_t w0 = mcu_read_s8x4(w), w1 = mcu_read_s8x4(w + 4);
        w += 8;
        int32_t wl = mcu_sxtb16(w0), wh = mcu_sxtb16_ror8(w0);
        a00 = mcu_smlad(x01, wl, a00);
        a00 = mcu_smlad(x23, wh, a00);
        a10 = mcu_smlad(y01, wl, a10);
        a10 = mcu_smlad(y23, wh, a10);
        wl = mcu_sxtb16(w1);
        wh = mcu_sxtb16_ror8(w1);
        a01 = mcu_smlad(x01, wl, a01);
        a01 = mcu_smlad(x23, wh, a01);
        a11 = mcu_smlad(y01, wl, a11);
        a11 = mcu_smlad(y23, wh, a11);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

static inline void conv_block_2x1(const int16_t *ca, const int16_t *cb, const int8_t *w, int32_t blocks,
                                  int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t k = 0; k < blocks; k++)
    {
        const int32_t w0 = mcu_read_s8x4(w);
        w += 4;
        const int32_t wl = mcu_sxtb16(w0), wh = mcu_sxtb16_ror8(w0);
        a0 = mcu_smlad(read_pair(ca), wl, a0);
        a0 = mcu_smlad(read_pair(ca + 2), wh, a0);
        a1 = mcu_smlad(read_pair(cb), wl, a1);
        a1 = mcu_smlad(read_pair(cb + 2), wh, a1);
        ca += 4;
        cb += 4;
    }
    acc[0] = a0;
    acc[1] = a1;
}

int32_t mcu_conv_dsp_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims)
{
    /* two widened windows of K4 int16 */
    return 2 * MCU_ROUND4(filter_dims->h * filter_dims->w * input_dims->c) * (int32_t)sizeof(int16_t);
}

mcu_status mcu_conv_dsp_s8(const mcu_context *ctx,
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
    (void)bias_dims;
    const mcu_conv_params *cp = conv_params;
    const int32_t cin = input_dims->c, cout = output_dims->c;
    if (cp->groups != 1 || filter_dims->c != cin || filter_dims->n != cout)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_conv_dsp_get_buffer_size_s8(input_dims, filter_dims))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t k4 = MCU_ROUND4(filter_dims->h * filter_dims->w * cin), blocks = k4 / 4;
    int16_t *col_a = (int16_t *)ctx->buf, *col_b = col_a + k4;
    const int32_t pixels = input_dims->n * output_dims->h * output_dims->w;
    const int32_t oo = cp->output_offset, lo = cp->activation.min, hi = cp->activation.max;
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t has_b = p + 1 < pixels;
        im2col_widen(col_a, input, cp, input_dims, filter_dims, output_dims, p, k4);
        const int16_t *cb = col_a;
        if (has_b)
        {
            im2col_widen(col_b, input, cp, input_dims, filter_dims, output_dims, p + 1, k4);
            cb = col_b;
        }
        int8_t *out_a = output + p * cout, *out_b = out_a + cout;
        const int8_t *w = filter;
        int32_t oc = 0;
        for (; oc + 1 < cout; oc += 2)
        {
            int32_t acc[4];
            acc[0] = acc[2] = bias ? bias[oc] : 0;
            acc[1] = acc[3] = bias ? bias[oc + 1] : 0;
            conv_block_2x2(col_a, cb, w, blocks, acc);
            w += 2 * k4;
            store_2x2(acc, quant_params, oc, oo, lo, hi, out_a, out_b, 1, has_b);
        }
        if (oc < cout)
        {
            int32_t acc[4];
            acc[0] = acc[1] = bias ? bias[oc] : 0;
            conv_block_2x1(col_a, cb, w, blocks, acc);
            acc[2] = acc[1];
            store_2x2(acc, quant_params, oc, oo, lo, hi, out_a, out_b, 0, has_b);
        }
    }
    return MCU_OK;
}
