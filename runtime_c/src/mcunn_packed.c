/* Convolutions on packed 4- / 2-bit feature maps with int8 weights: portable reference loops (layout and
 * arithmetic in mcunn_packed.h). Each output byte is assembled in a register and stored once, so no scratch
 * and no int8 copy of the input is needed. */
#include <stddef.h>

#include "mcunn_packed.h"
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
    mcu_status name(const mcu_context *ctx, const mcu_conv_params *conv_params,                                \
                    const mcu_per_channel_quant_params *quant_params, int32_t output_bits,                      \
                    const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,              \
                    const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,                       \
                    const mcu_dims *output_dims, uint8_t *output)                                               \
    {                                                                                                           \
        (void)ctx;                                                                                              \
        (void)bias_dims;                                                                                        \
        return conv_packed(in_bits, conv_params, quant_params, output_bits, input_dims, input, filter_dims,    \
                           filter, bias, output_dims, output);                                                  \
    }

#define MCU_PACKED_DWCONV(name, in_bits)                                                                        \
    mcu_status name(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,                               \
                    const mcu_per_channel_quant_params *quant_params, int32_t output_bits,                      \
                    const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,              \
                    const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,                       \
                    const mcu_dims *output_dims, uint8_t *output)                                               \
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
