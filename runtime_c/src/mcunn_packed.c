/* Convolutions on packed 4- / 2-bit feature maps with int8 weights: portable reference loops (layout and
 * arithmetic in mcunn_packed.h). Each output byte is assembled in a register and stored once, so no scratch
 * and no int8 copy of the input is needed. */
#include <stddef.h>
#include <string.h>

#include "mcunn_packed.h"
#include "mcunn_packed_entry.h"
#include "mcunn_packed_support.h"

int32_t mcu_packed_pixel_bytes(int32_t channels, int32_t bits)
{
    return (channels * bits + 7) / 8;
}

static int bits_ok(int32_t bits)
{
    return bits == 8 || bits == 4 || bits == 2;
}

/* Output byte assembly: values of one pixel in channel order, stored when a byte is full or the pixel ends. */
typedef struct
{
    uint8_t *out;
    uint32_t byte;
    int32_t bits, per_byte;
} packed_writer;

static inline void writer_put(packed_writer *wr, int32_t oc, int32_t last, int32_t y)
{
    if (wr->bits == 8)
    {
        wr->out[oc] = (uint8_t)y;
        return;
    }
    const int32_t f = oc % wr->per_byte;
    wr->byte |= ((uint32_t)y & ((1u << wr->bits) - 1u)) << (f * wr->bits);
    if (f == wr->per_byte - 1 || oc == last)
    {
        wr->out[oc / wr->per_byte] = (uint8_t)wr->byte;
        wr->byte = 0;
    }
}

static mcu_status conv_packed(int32_t in_bits, const mcu_conv_params *cp, const mcu_per_channel_quant_params *q,
                              int32_t out_bits, const mcu_dims *in, const uint8_t *input, const mcu_dims *filt,
                              const int8_t *filter, const int32_t *bias, const mcu_dims *out, uint8_t *output)
{
    const int32_t in_h = in->h, in_w = in->w, in_c = in->c;
    const int32_t k_h = filt->h, k_w = filt->w, k_c = filt->c;
    const int32_t out_h = out->h, out_w = out->w, out_c = out->c;
    const int32_t groups = cp->groups;
    if (!bits_ok(in_bits) || !bits_ok(out_bits) || groups < 1 || k_c * groups != in_c || out_c % groups != 0 ||
        filt->n != out_c)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t in_px = mcu_packed_pixel_bytes(in_c, in_bits), out_px = mcu_packed_pixel_bytes(out_c, out_bits);
    const int32_t out_c_per_group = out_c / groups, in_offset = cp->input_offset;
    int32_t lo, hi;
    mcu_packed_range(out_bits, cp->activation.min, cp->activation.max, &lo, &hi);
    for (int32_t b = 0; b < in->n; b++)
    {
        const uint8_t *in_b = input + b * in_h * in_w * in_px;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t y0 = oy * cp->stride.h - cp->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t x0 = ox * cp->stride.w - cp->padding.w;
                packed_writer wr = {output + ((b * out_h + oy) * out_w + ox) * out_px, 0, out_bits, 8 / out_bits};
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    const int32_t ic0 = (oc / out_c_per_group) * k_c;
                    const int8_t *w_oc = filter + oc * k_h * k_w * k_c;
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < k_h; ky++)
                    {
                        const int32_t iy = y0 + ky * cp->dilation.h;
                        if (iy < 0 || iy >= in_h)
                        {
                            continue; /* the zero point: contributes 0 */
                        }
                        for (int32_t kx = 0; kx < k_w; kx++)
                        {
                            const int32_t ix = x0 + kx * cp->dilation.w;
                            if (ix < 0 || ix >= in_w)
                            {
                                continue;
                            }
                            const uint8_t *px = in_b + (iy * in_w + ix) * in_px;
                            const int8_t *pw = w_oc + (ky * k_w + kx) * k_c;
                            for (int32_t ic = 0; ic < k_c; ic++)
                            {
                                acc += (mcu_packed_get(px, ic0 + ic, in_bits) + in_offset) * pw[ic];
                            }
                        }
                    }
                    int32_t y = mcu_requantize(acc, q->multiplier[oc], q->shift[oc]) + cp->output_offset;
                    writer_put(&wr, oc, out_c - 1, MCU_CLAMP(y, lo, hi));
                }
            }
        }
    }
    return MCU_OK;
}

static mcu_status dwconv_packed(int32_t in_bits, const mcu_dw_conv_params *dp,
                                const mcu_per_channel_quant_params *q, int32_t out_bits, const mcu_dims *in,
                                const uint8_t *input, const mcu_dims *filt, const int8_t *filter,
                                const int32_t *bias, const mcu_dims *out, uint8_t *output)
{
    const int32_t in_h = in->h, in_w = in->w, in_c = in->c;
    const int32_t k_h = filt->h, k_w = filt->w;
    const int32_t out_h = out->h, out_w = out->w, out_c = out->c, mult = dp->ch_mult;
    if (!bits_ok(in_bits) || !bits_ok(out_bits) || mult < 1 || in_c * mult != out_c || filt->c != out_c)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t in_px = mcu_packed_pixel_bytes(in_c, in_bits), out_px = mcu_packed_pixel_bytes(out_c, out_bits);
    int32_t lo, hi;
    mcu_packed_range(out_bits, dp->activation.min, dp->activation.max, &lo, &hi);
    for (int32_t b = 0; b < in->n; b++)
    {
        const uint8_t *in_b = input + b * in_h * in_w * in_px;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int32_t y0 = oy * dp->stride.h - dp->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                const int32_t x0 = ox * dp->stride.w - dp->padding.w;
                packed_writer wr = {output + ((b * out_h + oy) * out_w + ox) * out_px, 0, out_bits, 8 / out_bits};
                for (int32_t oc = 0; oc < out_c; oc++)
                {
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < k_h; ky++)
                    {
                        const int32_t iy = y0 + ky * dp->dilation.h;
                        if (iy < 0 || iy >= in_h)
                        {
                            continue;
                        }
                        for (int32_t kx = 0; kx < k_w; kx++)
                        {
                            const int32_t ix = x0 + kx * dp->dilation.w;
                            if (ix < 0 || ix >= in_w)
                            {
                                continue;
                            }
                            const int32_t x = mcu_packed_get(in_b + (iy * in_w + ix) * in_px, oc / mult, in_bits);
                            acc += (x + dp->input_offset) * filter[(ky * k_w + kx) * out_c + oc];
                        }
                    }
                    int32_t y = mcu_requantize(acc, q->multiplier[oc], q->shift[oc]) + dp->output_offset;
                    writer_put(&wr, oc, out_c - 1, MCU_CLAMP(y, lo, hi));
                }
            }
        }
    }
    return MCU_OK;
}

#define MCU_PACKED_CONV(name, in_bits)                                                                          \
    MCU_PACKED_CONV_SIGNATURE(name)                                                                             \
    {                                                                                                           \
        (void)ctx;                                                                                              \
        (void)bias_dims;                                                                                        \
        return conv_packed(in_bits, conv_params, quant_params, output_bits, input_dims, input, filter_dims,    \
                           filter, bias, output_dims, output);                                                  \
    }

#define MCU_PACKED_DWCONV(name, in_bits)                                                                        \
    MCU_PACKED_DWCONV_SIGNATURE(name)                                                                           \
    {                                                                                                           \
        (void)ctx;                                                                                              \
        (void)bias_dims;                                                                                        \
        return dwconv_packed(in_bits, dw_params, quant_params, output_bits, input_dims, input, filter_dims,    \
                             filter, bias, output_dims, output);                                                \
    }

MCU_PACKED_CONV(mcu_conv_a4w8_s8, 4)
MCU_PACKED_CONV(mcu_conv_a2w8_s8, 2)
MCU_PACKED_CONV(mcu_conv_a8w8_s8, 8)
MCU_PACKED_DWCONV(mcu_dwconv_a4w8_s8, 4)
MCU_PACKED_DWCONV(mcu_dwconv_a2w8_s8, 2)
MCU_PACKED_DWCONV(mcu_dwconv_a8w8_s8, 8)

/* --- pooling, add, pad, lookup: whole pixels, values unpacked one at a time ----------------------------- */

static mcu_status pool_packed(const mcu_pool_params *pp, int32_t bits, const mcu_dims *in, const uint8_t *input,
                              const mcu_dims *filt, const mcu_dims *out, uint8_t *output, int is_max)
{
    const int32_t in_h = in->h, in_w = in->w, ch = in->c;
    if (!bits_ok(bits) || out->c != ch)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t px = mcu_packed_pixel_bytes(ch, bits);
    int32_t lo, hi;
    mcu_packed_range(bits, pp->activation.min, pp->activation.max, &lo, &hi);
    for (int32_t b = 0; b < in->n; b++)
        for (int32_t oy = 0; oy < out->h; oy++)
            for (int32_t ox = 0; ox < out->w; ox++)
            {
                const int32_t y0 = oy * pp->stride.h - pp->padding.h, x0 = ox * pp->stride.w - pp->padding.w;
                const int32_t ky0 = MCU_MAX(0, -y0), ky1 = MCU_MIN(filt->h, in_h - y0);
                const int32_t kx0 = MCU_MAX(0, -x0), kx1 = MCU_MIN(filt->w, in_w - x0);
                if (!is_max && (ky0 >= ky1 || kx0 >= kx1))
                {
                    return MCU_ARG_ERROR; /* a window with no tap: its mean is undefined */
                }
                packed_writer wr = {output + ((b * out->h + oy) * out->w + ox) * px, 0, bits, 8 / bits};
                for (int32_t c = 0; c < ch; c++)
                {
                    int32_t max = -128, sum = 0, count = 0;
                    for (int32_t ky = ky0; ky < ky1; ky++)
                        for (int32_t kx = kx0; kx < kx1; kx++)
                        {
                            const int32_t v =
                                mcu_packed_get(input + ((b * in_h + y0 + ky) * in_w + x0 + kx) * px, c, bits);
                            max = MCU_MAX(max, v);
                            sum += v;
                            count++;
                        }
                    /* TFLite rounding of the mean: half away from zero */
                    int32_t y = is_max ? max : (sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count);
                    writer_put(&wr, c, ch - 1, MCU_CLAMP(y, lo, hi));
                }
            }
    return MCU_OK;
}

mcu_status mcu_max_pool_packed_s8(const mcu_context *ctx, const mcu_pool_params *pool_params, int32_t bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const mcu_dims *output_dims, uint8_t *output)
{
    (void)ctx;
    return pool_packed(pool_params, bits, input_dims, input, filter_dims, output_dims, output, 1);
}

mcu_status mcu_avg_pool_packed_s8(const mcu_context *ctx, const mcu_pool_params *pool_params, int32_t bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const mcu_dims *output_dims, uint8_t *output)
{
    (void)ctx;
    return pool_packed(pool_params, bits, input_dims, input, filter_dims, output_dims, output, 0);
}

mcu_status mcu_add_packed_s8(const mcu_context *ctx, const mcu_add_params *p, int32_t input1_bits,
                             int32_t input2_bits, int32_t output_bits, const mcu_dims *input1_dims,
                             const uint8_t *input1, const mcu_dims *input2_dims, const uint8_t *input2,
                             const mcu_dims *output_dims, uint8_t *output)
{
    (void)ctx;
    const mcu_dims *d1 = input1_dims, *d2 = input2_dims, *o = output_dims;
    if (!bits_ok(input1_bits) || !bits_ok(input2_bits) || !bits_ok(output_bits) || d1->n != o->n ||
        d1->h != o->h || d1->w != o->w || d1->c != o->c || d2->n != o->n || d2->h != o->h || d2->w != o->w ||
        d2->c != o->c)
    {
        return MCU_ARG_ERROR; /* no broadcasting (a patched stage's adds have equal shapes) */
    }
    const int32_t ch = o->c, pixels = o->n * o->h * o->w;
    const int32_t px1 = mcu_packed_pixel_bytes(ch, input1_bits), px2 = mcu_packed_pixel_bytes(ch, input2_bits);
    const int32_t pxo = mcu_packed_pixel_bytes(ch, output_bits);
    int32_t lo, hi;
    mcu_packed_range(output_bits, p->activation.min, p->activation.max, &lo, &hi);
    for (int32_t i = 0; i < pixels; i++)
    {
        /* in place (output == an input of the same bits) is safe: a byte is stored after its values are read */
        packed_writer wr = {output + i * pxo, 0, output_bits, 8 / output_bits};
        for (int32_t c = 0; c < ch; c++)
        {
            const int32_t a = (mcu_packed_get(input1 + i * px1, c, input1_bits) + p->input1_offset) * (1 << p->left_shift);
            const int32_t b = (mcu_packed_get(input2 + i * px2, c, input2_bits) + p->input2_offset) * (1 << p->left_shift);
            const int32_t sa = mcu_requantize(a, p->input1_mult, p->input1_shift);
            const int32_t sb = mcu_requantize(b, p->input2_mult, p->input2_shift);
            const int32_t y = mcu_requantize(sa + sb, p->output_mult, p->output_shift) + p->output_offset;
            writer_put(&wr, c, ch - 1, MCU_CLAMP(y, lo, hi));
        }
    }
    return MCU_OK;
}

/* The table add's run, requantized as mcu_add_packed_s8() does (mcu_requantize()). */
static void add_table_run(const mcu_add_table_params *p, const int32_t *t1, const int32_t *t2, const int8_t *a,
                          const int8_t *b, int8_t *y, int32_t n, int32_t lo, int32_t hi)
{
    for (int32_t k = 0; k < n; k++)
    {
        const int32_t sum = (int32_t)((uint32_t)t1[a[k]] + (uint32_t)t2[b[k]]);
        const int32_t v = mcu_requantize(sum, p->output_mult, p->output_shift) + p->output_offset;
        y[k] = (int8_t)MCU_CLAMP(v, lo, hi);
    }
}

mcu_status mcu_add_table_packed_s8(const mcu_context *ctx, const mcu_add_table_params *p, int32_t input1_bits,
                                   int32_t input2_bits, int32_t output_bits, const mcu_dims *input1_dims,
                                   const uint8_t *input1, const mcu_dims *input2_dims, const uint8_t *input2,
                                   const mcu_dims *output_dims, uint8_t *output)
{
    (void)ctx;
    return mcu_packed_add_table(p, input1_bits, input2_bits, output_bits, input1_dims, input1, input2_dims, input2,
                                output_dims, output, mcu_packed_unpack_run, add_table_run, mcu_packed_store);
}

mcu_status mcu_pad_packed_s8(const mcu_context *ctx, const mcu_pad_params *pad_params, int32_t bits,
                             const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *output_dims,
                             uint8_t *output)
{
    (void)ctx;
    const mcu_dims *in = input_dims, *out = output_dims, *before = &pad_params->pre_pad;
    if (!bits_ok(bits) || before->n < 0 || before->h < 0 || before->w < 0 || before->c != 0 || in->c != out->c ||
        before->n + in->n > out->n || before->h + in->h > out->h || before->w + in->w > out->w)
    {
        return MCU_ARG_ERROR; /* packed pixels are padded along N, H, W only */
    }
    const int32_t px = mcu_packed_pixel_bytes(in->c, bits), pixels = out->n * out->h * out->w;
    if (pixels == 0)
    {
        return MCU_OK;
    }
    /* one pixel of zero points (padding bits 0) assembled in the first output pixel, copied to the others */
    packed_writer wr = {output, 0, bits, 8 / bits};
    for (int32_t c = 0; c < in->c; c++)
    {
        writer_put(&wr, c, in->c - 1, pad_params->pad_value);
    }
    for (int32_t i = 1; i < pixels; i++)
    {
        memcpy(output + i * px, output, (size_t)px);
    }
    for (int32_t n = 0; n < in->n; n++)
        for (int32_t h = 0; h < in->h; h++)
        {
            /* a row of the input is one run of whole pixels */
            const int32_t src = (n * in->h + h) * in->w * px;
            const int32_t dst = (((n + before->n) * out->h + h + before->h) * out->w + before->w) * px;
            memcpy(output + dst, input + src, (size_t)(in->w * px));
        }
    return MCU_OK;
}

mcu_status mcu_lut_packed_s8(const mcu_context *ctx, const int8_t *table, int32_t input_bits, int32_t output_bits,
                             const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *output_dims,
                             uint8_t *output)
{
    (void)ctx;
    if (table == NULL || !bits_ok(input_bits) || !bits_ok(output_bits) || input_dims->n != output_dims->n ||
        input_dims->h != output_dims->h || input_dims->w != output_dims->w || input_dims->c != output_dims->c)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t ch = input_dims->c, pixels = input_dims->n * input_dims->h * input_dims->w;
    const int32_t pxi = mcu_packed_pixel_bytes(ch, input_bits), pxo = mcu_packed_pixel_bytes(ch, output_bits);
    const int32_t qmin = -(1 << (input_bits - 1));
    for (int32_t i = 0; i < pixels; i++)
    {
        packed_writer wr = {output + i * pxo, 0, output_bits, 8 / output_bits};
        for (int32_t c = 0; c < ch; c++)
        {
            writer_put(&wr, c, ch - 1, table[mcu_packed_get(input + i * pxi, c, input_bits) - qmin]);
        }
    }
    return MCU_OK;
}
