/* Convolutions with SIMD32 (DSP extension): 1x1 without im2col, and the general im2col kernel. Both block
 * 2 output pixels x 2 output channels so that each weight word and each input word feeds two SMLADs. The
 * work for one pixel pair (every output channel, requantization and stores included) is one non-inlined
 * function with few live values, so gcc keeps the 4 accumulators, the 4 input pairs and the 3 pointers of the
 * inner loop in Cortex-M4's registers (checked in the disassembly: no stack traffic in the loop). Weights
 * come in the layouts compiler/ops/fast_layout.py writes at compile time; see mcunn_dsp.h. */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"
#include "mcunn_conv_dsp_pair.h"

#define MCU_ROUND4(x) (((x) + 3) & ~3)

/* What the output stage of a pixel pair needs, gathered once per call. */
typedef struct
{
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t cout, blocks, out_offset, act_min, act_max;
    int foldable; /* mcu_dsp_shifts_foldable() over every channel */
} conv_out;

static inline conv_out conv_out_of(const mcu_conv_params *cp, const mcu_per_channel_quant_params *q,
                                   const int32_t *bias, int32_t cout, int32_t blocks)
{
    conv_out o;
    o.bias = bias;
    o.multiplier = q->multiplier;
    o.shift = q->shift;
    o.cout = cout;
    o.blocks = blocks;
    o.out_offset = cp->output_offset;
    o.act_min = cp->activation.min;
    o.act_max = cp->activation.max;
    o.foldable = mcu_dsp_shifts_foldable(q->shift, cout);
    return o;
}

/* Output channels per chunk: the MAC loop leaves the chunk's accumulators of both pixels on the stack
 * (2 x 32 int32) and the output stage requantizes them; a multiple of 2 so channel pairs stay whole. */
#define CONV_CHUNK 32

/* The clamp is the full int8 range (one SSAT in the output stage). */
#define CONV_FULL_RANGE(o) ((o)->act_min == -128 && (o)->act_max == 127)

/* ---------------------------------------------------------------------------------------------------------
 * 1x1, raw int8 input: the input offset is folded into the bias at compile time, so the input is used as it
 * is (SXTB16 gives bytes 0, 2 and, rotated, 1, 3; the weights are in natural order and split the same way).
 * ------------------------------------------------------------------------------------------------------ */

/* Every output channel of the pixel pair (pa, pb); pb == pa and out_b == out_a for a single last pixel. */
static void __attribute__((noinline)) conv1x1_pair(const conv_out *o, const int8_t *pa,
                                                                    const int8_t *pb, const int8_t *w, int8_t *out_a,
                                                                    int8_t *out_b, int full)
{
    const int32_t blocks = o->blocks, cin = 4 * blocks;
    int32_t acc[2 * CONV_CHUNK]; /* pixel a, pixel b of channel j at 2j, 2j + 1 */
    for (int32_t c0 = 0; c0 < o->cout; c0 += CONV_CHUNK)
    {
        const int32_t n = o->cout - c0 < CONV_CHUNK ? o->cout - c0 : CONV_CHUNK;
        const int32_t *bias = o->bias ? o->bias + c0 : NULL;
        int32_t j = 0;
        for (; j + 1 < n; j += 2)
        {
            int32_t a00 = bias ? bias[j] : 0, a01 = bias ? bias[j + 1] : 0;
            int32_t a10 = a00, a11 = a01;
            const int8_t *xa = pa, *xb = pb;
            for (int32_t k = blocks; k > 0; k--)
            {
                const int32_t va = mcu_read_s8x4(xa), vb = mcu_read_s8x4(xb);
                xa += 4;
                xb += 4;
                const int32_t ae = mcu_sxtb16(va), ao = mcu_sxtb16_ror8(va);
                const int32_t be = mcu_sxtb16(vb), bo = mcu_sxtb16_ror8(vb);
                int32_t wv = mcu_read_s8x4(w);
                int32_t we = mcu_sxtb16(wv), wo = mcu_sxtb16_ror8(wv);
                a00 = mcu_smlad(ae, we, a00);
                a00 = mcu_smlad(ao, wo, a00);
                a10 = mcu_smlad(be, we, a10);
                a10 = mcu_smlad(bo, wo, a10);
                wv = mcu_read_s8x4(w + 4);
                w += 8;
                we = mcu_sxtb16(wv);
                wo = mcu_sxtb16_ror8(wv);
                a01 = mcu_smlad(ae, we, a01);
                a01 = mcu_smlad(ao, wo, a01);
                a11 = mcu_smlad(be, we, a11);
                a11 = mcu_smlad(bo, wo, a11);
            }
            acc[2 * j] = a00;
            acc[2 * j + 1] = a10;
            acc[2 * j + 2] = a01;
            acc[2 * j + 3] = a11;
        }
        if (j < n)
        {
            int32_t a0 = bias ? bias[j] : 0, a1 = a0;
            for (int32_t k = 0; k < cin; k += 4)
            {
                const int32_t va = mcu_read_s8x4(pa + k), vb = mcu_read_s8x4(pb + k), wv = mcu_read_s8x4(w + k);
                const int32_t we = mcu_sxtb16(wv), wo = mcu_sxtb16_ror8(wv);
                a0 = mcu_smlad(mcu_sxtb16(va), we, a0);
                a0 = mcu_smlad(mcu_sxtb16_ror8(va), wo, a0);
                a1 = mcu_smlad(mcu_sxtb16(vb), we, a1);
                a1 = mcu_smlad(mcu_sxtb16_ror8(vb), wo, a1);
            }
            acc[2 * j] = a0;
            acc[2 * j + 1] = a1;
        }
        mcu_dsp_store_pairs(acc, n, o->multiplier + c0, o->shift + c0, o->out_offset, o->act_min, o->act_max,
                            out_a + c0, out_b + c0, full, o->foldable);
    }
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
    const conv_out o = conv_out_of(cp, quant_params, bias, cout, cin / 4);
    const int full = CONV_FULL_RANGE(&o);
    const int32_t pixels = input_dims->n * oh * ow;
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t has_b = p + 1 < pixels;
        const int8_t *pa = conv1x1_pixel(input, cp, input_dims, output_dims, p);
        const int8_t *pb = has_b ? conv1x1_pixel(input, cp, input_dims, output_dims, p + 1) : pa;
        int8_t *out_a = output + p * cout, *out_b = has_b ? out_a + cout : out_a;
        conv1x1_pair(&o, pa, pb, filter, out_a, out_b, full);
    }
    return MCU_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * General convolution: the two pixels' windows are widened to int16 with the input offset added (SXTAB16,
 * as cheap as SXTB16) into scratch, in natural order, K zero-padded to a multiple of 4, and interleaved per
 * 4-block: words {a01, a23, b01, b23} (aN = element N of pixel a's block), so one pointer walks both windows.
 * The weights are stored with elements 1 and 2 of each 4-block swapped, so SXTB16 on a weight word gives
 * elements (0, 1) and the rotated one (2, 3): exactly the int16 pairs of the window. Taps outside the input
 * are 0 after the offset, as TFLite's padding.
 * ------------------------------------------------------------------------------------------------------ */

/* Widens the 4-blocks [i, i + n) (i and n multiples of 4) of pixel q's window from src (NULL: zeros) into the
 * interleaved windows: block b of pixel q is words 4b + 2q, 4b + 2q + 1. */
static inline void widen_blocks(int32_t *cols, int32_t q, int32_t i, const int8_t *src, int32_t n, int32_t off2)
{
    int32_t *dst = cols + i + 2 * q; /* block i / 4 starts at word 4 * (i / 4) = i */
    if (src == NULL)
    {
        for (int32_t k = 0; k < n; k += 4, dst += 4)
        {
            dst[0] = 0;
            dst[1] = 0;
        }
        return;
    }
    for (int32_t k = 0; k < n; k += 4, dst += 4)
    {
        const int32_t x = mcu_read_s8x4(src + k);
        const int32_t e = mcu_sxtab16(off2, x), o = mcu_sxtab16_ror8(off2, x);
        dst[0] = mcu_pkhbt16(e, o);
        dst[1] = mcu_pkhtb16(o, e);
    }
}

/* The window of output pixel p as pixel q of the interleaved windows (k4 elements). With C_in a multiple of
 * 4 every run of the window starts on a block and is widened straight from the input; otherwise the window
 * is first gathered as int8 into `stage` (k4 bytes), skipped taps and the padding to k4 holding the zero
 * point (so they widen to 0), and widened in one pass. */
static void im2col_widen(int32_t *cols, int8_t *stage, int32_t q, const int8_t *input, const mcu_conv_params *cp,
                         const mcu_dims *in, const mcu_dims *filter, const mcu_dims *out, int32_t p, int32_t k4)
{
    const int32_t cin = in->c, kh = filter->h, kw = filter->w;
    const int32_t ox = p % out->w, rest = p / out->w;
    const int32_t oy = rest % out->h, b = rest / out->h;
    const int32_t y0 = oy * cp->stride.h - cp->padding.h, x0 = ox * cp->stride.w - cp->padding.w;
    const int32_t dh = cp->dilation.h, dw = cp->dilation.w;
    const int32_t off2 = mcu_dup16(cp->input_offset);
    const int8_t *in_b = input + b * in->h * in->w * cin;
    const int direct = (cin & 3) == 0;
    const int8_t zp = (int8_t)(-cp->input_offset);
    if (!direct)
    {
        memset(stage, zp, (size_t)k4);
    }
    int32_t i = 0;
    for (int32_t ky = 0; ky < kh; ky++, i += kw * cin)
    {
        const int32_t iy = y0 + ky * dh;
        if (iy < 0 || iy >= in->h)
        {
            if (direct)
            {
                widen_blocks(cols, q, i, NULL, kw * cin, off2);
            }
            continue;
        }
        const int8_t *row = in_b + iy * in->w * cin;
        int32_t kx_b = 0, kx_e = kw;
        if (dw == 1)
        {
            /* the kernel row's columns inside the image are one contiguous run */
            kx_b = x0 < 0 ? -x0 : 0;
            kx_e = in->w - x0 < kw ? in->w - x0 : kw;
            kx_b = kx_b > kw ? kw : kx_b;
            kx_e = kx_e < kx_b ? kx_b : kx_e;
            if (direct)
            {
                widen_blocks(cols, q, i, NULL, kx_b * cin, off2);
                widen_blocks(cols, q, i + kx_b * cin, row + (x0 + kx_b) * cin, (kx_e - kx_b) * cin, off2);
                widen_blocks(cols, q, i + kx_e * cin, NULL, (kw - kx_e) * cin, off2);
            }
            else
            {
                const int8_t *src = row + (x0 + kx_b) * cin;
                int8_t *dst = stage + i + kx_b * cin;
                for (int32_t k = 0; k < (kx_e - kx_b) * cin; k++)
                {
                    dst[k] = src[k];
                }
            }
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++)
        {
            const int32_t ix = x0 + kx * dw;
            const int8_t *src = ix < 0 || ix >= in->w ? NULL : row + ix * cin;
            if (direct)
            {
                widen_blocks(cols, q, i + kx * cin, src, cin, off2);
            }
            else if (src)
            {
                for (int32_t k = 0; k < cin; k++)
                {
                    stage[i + kx * cin + k] = src[k];
                }
            }
        }
    }
    if (direct)
    {
        widen_blocks(cols, q, i, NULL, k4 - i, off2);
    }
    else
    {
        widen_blocks(cols, q, 0, stage, k4, off2);
    }
}

/* Every output channel of the pixel pair whose windows are in cols (out_b == out_a for a single last pixel,
 * whose window is then in both halves); the MAC loop is mcunn_conv_dsp_pair.h's. */
static void __attribute__((noinline)) conv_pair(const conv_out *o, const int32_t *cols,
                                                                 const int8_t *w, int8_t *out_a, int8_t *out_b,
                                                                 int full)
{
    const int32_t blocks = o->blocks; /* read once: the MAC loop's asm clobbers memory */
    int32_t acc[2 * CONV_CHUNK]; /* pixel a, pixel b of channel j at 2j, 2j + 1 */
    for (int32_t c0 = 0; c0 < o->cout; c0 += CONV_CHUNK)
    {
        const int32_t n = o->cout - c0 < CONV_CHUNK ? o->cout - c0 : CONV_CHUNK;
        w = mcu_conv_dsp_pair_macs(cols, blocks, w, o->bias ? o->bias + c0 : NULL, n, acc);
        mcu_dsp_store_pairs(acc, n, o->multiplier + c0, o->shift + c0, o->out_offset, o->act_min, o->act_max,
                            out_a + c0, out_b + c0, full, o->foldable);
    }
}


int32_t mcu_conv_dsp_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims)
{
    /* two widened windows of K4 int16, and K4 bytes to gather a window when C_in is not a multiple of 4 */
    const int32_t k4 = MCU_ROUND4(filter_dims->h * filter_dims->w * input_dims->c);
    return 2 * k4 * (int32_t)sizeof(int16_t) + (input_dims->c % 4 ? k4 : 0);
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
    const int32_t k4 = MCU_ROUND4(filter_dims->h * filter_dims->w * cin);
    int32_t *cols = (int32_t *)ctx->buf;
    int8_t *stage = (int8_t *)(cols + k4);
    const conv_out o = conv_out_of(cp, quant_params, bias, cout, k4 / 4);
    const int full = CONV_FULL_RANGE(&o);
    const int32_t pixels = input_dims->n * output_dims->h * output_dims->w;
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t has_b = p + 1 < pixels;
        im2col_widen(cols, stage, 0, input, cp, input_dims, filter_dims, output_dims, p, k4);
        /* a last single pixel is computed twice and stored twice at the same place */
        im2col_widen(cols, stage, 1, input, cp, input_dims, filter_dims, output_dims, has_b ? p + 1 : p, k4);
        int8_t *out_a = output + p * cout, *out_b = has_b ? out_a + cout : out_a;
        conv_pair(&o, cols, filter, out_a, out_b, full);
    }
    return MCU_OK;
}
