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

int32_t mcu_dwconv_3x3_mve_get_buffer_size_s8(const mcu_dims *input_dims)
{
    return input_dims->c;
}

/* Output stage of a half-block: the even (e) and odd (o) channel lanes of channels c..c+n-1 (n <= 8, `full`:
 * n == 8, constant at each instantiation) requantized with their channels' constants, offset, clamped,
 * interleaved back into channel order and stored at out + c. */
typedef struct
{
    const int32_t *mult, *shift;
    int32_t out_offset;
    int32x4_t lo, hi;
    int vector_ok;
    int right_only; /* mcu_mve_shifts_right_only() */
} dw_out;

#if MCU_SINGLE_ROUNDING
/* The output stage with mcu_requantize() per lane (single rounding with a shift >= 0): out of line, rare; with
 * double rounding the vector path is always exact and this is not built. */
__attribute__((noinline)) static void store_half_scalar(int32x4_t e, int32x4_t o, int32_t c, int32_t n,
                                                        const dw_out *q, int8_t *out)
{
    int32_t ve[4], vo[4];
    vst1q_s32(ve, e);
    vst1q_s32(vo, o);
    for (int32_t j = 0; j < 4; j++)
    {
        if (2 * j < n)
        {
            out[c + 2 * j] = (int8_t)MCU_CLAMP(mcu_requantize(ve[j], q->mult[c + 2 * j], q->shift[c + 2 * j]) +
                                                   q->out_offset,
                                               vgetq_lane_s32(q->lo, 0), vgetq_lane_s32(q->hi, 0));
        }
        if (2 * j + 1 < n)
        {
            out[c + 2 * j + 1] = (int8_t)MCU_CLAMP(mcu_requantize(vo[j], q->mult[c + 2 * j + 1],
                                                                  q->shift[c + 2 * j + 1]) + q->out_offset,
                                                   vgetq_lane_s32(q->lo, 0), vgetq_lane_s32(q->hi, 0));
        }
    }
}
#endif

static inline __attribute__((always_inline)) void store_half(int32x4_t e, int32x4_t o, int32_t c, int32_t n, int full,
                                                             int right_only, const dw_out *q, int8_t *out)
{
    const uint32x4_t even = vidupq_n_u32(0, 2); /* {0, 2, 4, 6}: word offsets of the even channels */
#if MCU_SINGLE_ROUNDING
    if (!q->vector_ok)
    {
        store_half_scalar(e, o, c, n, q, out);
        return;
    }
#endif
    if (full && right_only)
    {
        const int32x4_t me = vldrwq_gather_shifted_offset_s32(q->mult + c, even);
        const int32x4_t mo = vldrwq_gather_shifted_offset_s32(q->mult + c + 1, even);
        const int32x4_t se = vldrwq_gather_shifted_offset_s32(q->shift + c, even);
        const int32x4_t so = vldrwq_gather_shifted_offset_s32(q->shift + c + 1, even);
        e = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(e, me, se), q->out_offset), q->lo), q->hi);
        o = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(o, mo, so), q->out_offset), q->lo), q->hi);
    }
    else if (full)
    {
        const int32x4_t me = vldrwq_gather_shifted_offset_s32(q->mult + c, even);
        const int32x4_t mo = vldrwq_gather_shifted_offset_s32(q->mult + c + 1, even);
        const int32x4_t se = vldrwq_gather_shifted_offset_s32(q->shift + c, even);
        const int32x4_t so = vldrwq_gather_shifted_offset_s32(q->shift + c + 1, even);
        e = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize(e, me, se), q->out_offset), q->lo), q->hi);
        o = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize(o, mo, so), q->out_offset), q->lo), q->hi);
    }
    else
    {
        const mve_pred16_t pe = vctp32q((uint32_t)((n + 1) >> 1)), po = vctp32q((uint32_t)(n >> 1));
        const int32x4_t me = vldrwq_gather_shifted_offset_z_s32(q->mult + c, even, pe);
        const int32x4_t mo = vldrwq_gather_shifted_offset_z_s32(q->mult + c + 1, even, po);
        const int32x4_t se = vldrwq_gather_shifted_offset_z_s32(q->shift + c, even, pe);
        const int32x4_t so = vldrwq_gather_shifted_offset_z_s32(q->shift + c + 1, even, po);
        e = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize(e, me, se), q->out_offset), q->lo), q->hi);
        o = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize(o, mo, so), q->out_offset), q->lo), q->hi);
    }
    int16x8_t y = vreinterpretq_s16_s32(e);
    y = vmovntq_s32(y, o); /* even lanes keep e's low halves; odd lanes take o's */
    if (full)
    {
        vstrbq_s16(out + c, y);
    }
    else
    {
        vstrbq_p_s16(out + c, y, vctp16q((uint32_t)n));
    }
}

/* Half-block (8 channels c..c+n-1, n <= 8) of one pixel over its `taps` tap pointers, accumulated from the folded
 * bias (even/odd layout); weights of tap t at w + t * stride. `full` (n == 8) and `taps` are constant at each
 * instantiation (the 3x3 one is unrolled). */
static inline __attribute__((always_inline)) void dw_half(const int8_t *const *tap, int32_t taps, int32_t c,
                                                          const int8_t *w, int32_t stride, const int32_t *bias,
                                                          int32_t n, int full, int right_only, const dw_out *q,
                                                          int8_t *out)
{
    int32x4_t e = vdupq_n_s32(0), o = vdupq_n_s32(0);
    if (bias)
    {
        e = vldrwq_s32(bias + c);
        o = vldrwq_s32(bias + c + 4);
    }
    const mve_pred16_t p = vctp16q((uint32_t)n);
#pragma GCC unroll 9
    for (int32_t t = 0; t < taps; t++)
    {
        const int16x8_t x = full ? vldrbq_s16(tap[t] + c) : vldrbq_z_s16(tap[t] + c, p);
        const int16x8_t k = full ? vldrbq_s16(w) : vldrbq_z_s16(w, p);
        w += stride; /* a post-indexed load */
        e = vaddq_s32(e, vmullbq_int_s16(x, k));
        o = vaddq_s32(o, vmulltq_int_s16(x, k));
        /* the sums as they go: without this gcc re-associates the adds, keeps all 18 products live and spills
         * them (8 Q registers); the memory clobber keeps the next taps' loads from being hoisted above */
        __asm__ volatile("" : "+w"(e), "+w"(o) : : "memory");
    }
    store_half(e, o, c, n, full, right_only, q, out);
}

/* dw_half() for any half (n <= 8 channels, any tap count, predicated loads): out of line, for channel tails
 * and windows other than 3x3. */
__attribute__((noinline)) static void dw_half_any(const int8_t *const *tap, int32_t taps, int32_t c, const int8_t *w,
                                                  int32_t stride, const int32_t *bias, int32_t n, const dw_out *q,
                                                  int8_t *out)
{
    if (q->right_only)
    {
        dw_half(tap, taps, c, w, stride, bias, n, 0, 1, q, out);
    }
    else
    {
        dw_half(tap, taps, c, w, stride, bias, n, 0, 0, q, out);
    }
}

/* One output pixel: all channels, from its T tap pointers; 16-channel weight blocks (mcunn_mve.h), each as
 * two halves of 8. */
static inline __attribute__((always_inline)) void dw_pixel(const int8_t *const *tap, int32_t taps, int32_t ch,
                                                           const int8_t *filter, const int32_t *bias,
                                                           int right_only, const dw_out *q, int8_t *out)
{
    int32_t c = 0;
    for (; c + 16 <= ch; c += 16)
    {
        const int8_t *w = filter + c * taps;
        if (right_only)
        {
            dw_half(tap, taps, c, w, 16, bias, 8, 1, 1, q, out);
            dw_half(tap, taps, c + 8, w + 8, 16, bias, 8, 1, 1, q, out);
        }
        else
        {
            dw_half_any(tap, taps, c, w, 16, bias, 8, q, out);
            dw_half_any(tap, taps, c + 8, w + 8, 16, bias, 8, q, out);
        }
    }
    if (c < ch)
    {
        const int32_t r = ch - c;
        const int8_t *w = filter + c * taps;
        if (r >= 8)
        {
            dw_half_any(tap, taps, c, w, r, bias, 8, q, out);
            if (r > 8)
            {
                dw_half_any(tap, taps, c + 8, w + 8, r, bias, r - 8, q, out);
            }
        }
        else
        {
            dw_half_any(tap, taps, c, w, r, bias, r, q, out);
        }
    }
}

/* Separate functions so the 3x3 instantiation keeps its constant tap count. */
__attribute__((noinline)) static void dw_pixel_3x3(const int8_t *const *tap, int32_t ch, const int8_t *filter,
                                                   const int32_t *bias, const dw_out *q, int8_t *out)
{
    dw_pixel(tap, 9, ch, filter, bias, q->right_only, q, out);
}

/* Two pixels (tap arrays ta, tb; outputs oa, ob) of one half-block of n <= 8 channels at c, 3x3, every shift
 * <= 0: each weight vector and each channel's constants loaded once for both. `full` (n == 8; loads and stores
 * without predicates) is constant at each instantiation. */
static inline __attribute__((always_inline)) void dw_half_pair_3x3(const int8_t *const *ta, const int8_t *const *tb,
                                                                   int32_t c, const int8_t *w, int32_t stride,
                                                                   const int32_t *bias, int32_t n, int full,
                                                                   const dw_out *q, int8_t *oa, int8_t *ob)
{
    const mve_pred16_t p = vctp16q((uint32_t)n);
    int32x4_t ea = vdupq_n_s32(0), oda = ea;
    if (bias)
    {
        /* K16(C) entries: a tail's lanes past C are 0, in bounds */
        ea = vldrwq_s32(bias + c);
        oda = vldrwq_s32(bias + c + 4);
    }
    int32x4_t eb = ea, odb = oda;
#pragma GCC unroll 9
    for (int32_t t = 0; t < 9; t++)
    {
        const int16x8_t k = full ? vldrbq_s16(w) : vldrbq_z_s16(w, p);
        w += stride;
        const int16x8_t xa = full ? vldrbq_s16(ta[t] + c) : vldrbq_z_s16(ta[t] + c, p);
        ea = vaddq_s32(ea, vmullbq_int_s16(xa, k));
        oda = vaddq_s32(oda, vmulltq_int_s16(xa, k));
        const int16x8_t xb = full ? vldrbq_s16(tb[t] + c) : vldrbq_z_s16(tb[t] + c, p);
        eb = vaddq_s32(eb, vmullbq_int_s16(xb, k));
        odb = vaddq_s32(odb, vmulltq_int_s16(xb, k));
        /* as in dw_half(): the sums in order, no loads hoisted (8 Q registers) */
        __asm__ volatile("" : "+w"(ea), "+w"(oda), "+w"(eb), "+w"(odb) : : "memory");
    }
    const uint32x4_t even = vidupq_n_u32(0, 2);
    const mve_pred16_t pe = vctp32q((uint32_t)((n + 1) >> 1)), po = vctp32q((uint32_t)(n >> 1));
    const int32x4_t me = full ? vldrwq_gather_shifted_offset_s32(q->mult + c, even)
                              : vldrwq_gather_shifted_offset_z_s32(q->mult + c, even, pe);
    const int32x4_t se = full ? vldrwq_gather_shifted_offset_s32(q->shift + c, even)
                              : vldrwq_gather_shifted_offset_z_s32(q->shift + c, even, pe);
    ea = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(ea, me, se), q->out_offset), q->lo), q->hi);
    eb = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(eb, me, se), q->out_offset), q->lo), q->hi);
    const int32x4_t mo = full ? vldrwq_gather_shifted_offset_s32(q->mult + c + 1, even)
                              : vldrwq_gather_shifted_offset_z_s32(q->mult + c + 1, even, po);
    const int32x4_t so = full ? vldrwq_gather_shifted_offset_s32(q->shift + c + 1, even)
                              : vldrwq_gather_shifted_offset_z_s32(q->shift + c + 1, even, po);
    oda = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(oda, mo, so), q->out_offset), q->lo), q->hi);
    odb = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(odb, mo, so), q->out_offset), q->lo), q->hi);
    const int16x8_t ya = vmovntq_s32(vreinterpretq_s16_s32(ea), oda), yb = vmovntq_s32(vreinterpretq_s16_s32(eb), odb);
    if (full)
    {
        vstrbq_s16(oa + c, ya);
        vstrbq_s16(ob + c, yb);
    }
    else
    {
        vstrbq_p_s16(oa + c, ya, p);
        vstrbq_p_s16(ob + c, yb, p);
    }
}

/* A full half-block pair of the last C % 16 channels (weights at stride C % 16 >= 8): out of line. */
__attribute__((noinline)) static void dw_half_pair_3x3_rest(const int8_t *const *ta, const int8_t *const *tb,
                                                            int32_t c, const int8_t *w, int32_t stride,
                                                            const int32_t *bias, const dw_out *q, int8_t *oa,
                                                            int8_t *ob)
{
    dw_half_pair_3x3(ta, tb, c, w, stride, bias, 8, 1, q, oa, ob);
}

/* The predicated half-block pair (the last C % 8 channels): out of line. */
__attribute__((noinline)) static void dw_half_pair_3x3_tail(const int8_t *const *ta, const int8_t *const *tb,
                                                            int32_t c, const int8_t *w, int32_t stride,
                                                            const int32_t *bias, int32_t n, const dw_out *q,
                                                            int8_t *oa, int8_t *ob)
{
    dw_half_pair_3x3(ta, tb, c, w, stride, bias, n, 0, q, oa, ob);
}

/* Two pixels of a 3x3 layer whose shifts are all <= 0 (ta == tb, oa == ob for a last single pixel): the halves of
 * the full 16-blocks (one copy of the unrolled code, in a loop), then the last C % 16 channels (weights at stride
 * C % 16): 8 of them as a full half, the rest predicated. */
__attribute__((noinline)) static void dw_pair_3x3(const int8_t *const *ta, const int8_t *const *tb, int32_t ch,
                                                  const int8_t *filter, const int32_t *bias, const dw_out *q,
                                                  int8_t *oa, int8_t *ob)
{
    const int32_t c16 = ch & ~15;
#pragma GCC unroll 1
    for (int32_t c = 0; c < c16; c += 8)
    {
        /* half h = c & 8 of block c & ~15: its weights start h bytes into the block's */
        dw_half_pair_3x3(ta, tb, c, filter + (c & ~15) * 9 + (c & 8), 16, bias, 8, 1, q, oa, ob);
    }
    if (c16 < ch)
    {
        const int32_t r = ch - c16;
        const int8_t *w = filter + c16 * 9;
        if (r >= 8)
        {
            /* 8 channels without predicates (layers of 8 or 24 channels) */
            dw_half_pair_3x3_rest(ta, tb, c16, w, r, bias, q, oa, ob);
            if (r > 8)
            {
                dw_half_pair_3x3_tail(ta, tb, c16 + 8, w + 8, r, bias, r - 8, q, oa, ob);
            }
        }
        else
        {
            dw_half_pair_3x3_tail(ta, tb, c16, w, r, bias, r, q, oa, ob);
        }
    }
}

/* The tap pointers of the window at (y0, x0): into the input, or the zero-point row outside it. */
static inline __attribute__((always_inline)) void window_taps(const int8_t **tap, const int8_t *in_b,
                                                              const int8_t *zp_row, const int32_t *tap_off,
                                                              int32_t y0, int32_t x0, int32_t kh, int32_t kw,
                                                              int32_t in_h, int32_t in_w, int32_t ch,
                                                              const mcu_dw_conv_params *p)
{
    const int32_t span_h = (kh - 1) * p->dilation.h, span_w = (kw - 1) * p->dilation.w;
    if (y0 >= 0 && x0 >= 0 && y0 + span_h < in_h && x0 + span_w < in_w)
    {
        const int8_t *base = in_b + (y0 * in_w + x0) * ch;
        for (int32_t t = 0; t < kh * kw; t++)
        {
            tap[t] = base + tap_off[t];
        }
        return;
    }
    int32_t t = 0;
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int32_t iy = y0 + ky * p->dilation.h;
        const int row_in = iy >= 0 && iy < in_h;
        for (int32_t kx = 0; kx < kw; kx++, t++)
        {
            const int32_t ix = x0 + kx * p->dilation.w;
            tap[t] = row_in && ix >= 0 && ix < in_w ? in_b + (iy * in_w + ix) * ch : zp_row;
        }
    }
}

__attribute__((noinline)) static void dw_pixel_any(const int8_t *const *tap, int32_t taps, int32_t ch, const int8_t *filter,
                         const int32_t *bias, const dw_out *q, int8_t *out)
{
    dw_pixel(tap, taps, ch, filter, bias, q->right_only, q, out);
}

/* What both entry points share: the argument checks, the zero-point row, the output constants and the tap
 * offsets; 0 on bad arguments. */
static int dw_setup(const mcu_context *ctx, const mcu_dw_conv_params *p, const mcu_per_channel_quant_params *qp,
                    const mcu_dims *input_dims, const mcu_dims *filter_dims, const mcu_dims *output_dims, dw_out *q,
                    int32_t *tap_off)
{
    const int32_t in_w = input_dims->w, ch = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, taps = kh * kw;
    if (p->ch_mult != 1 || output_dims->c != ch || filter_dims->c != ch || taps > MCU_DWCONV_MVE_MAX_TAPS ||
        taps < 1 || output_dims->h < 0 || output_dims->w < 0 || ctx == NULL || ctx->buf == NULL ||
        ctx->size < mcu_dwconv_mve_get_buffer_size_s8(input_dims))
    {
        return 0;
    }
    int8_t *zp_row = (int8_t *)ctx->buf;
    const int8x16_t zp = vdupq_n_s8((int8_t)(-p->input_offset));
    for (int32_t i = 0; i < ch; i += 16)
    {
        vstrbq_p_s8(zp_row + i, zp, vctp8q((uint32_t)(ch - i)));
    }
    q->mult = qp->multiplier;
    q->shift = qp->shift;
    q->out_offset = p->output_offset;
    q->lo = vdupq_n_s32(p->activation.min);
    q->hi = vdupq_n_s32(p->activation.max);
    q->vector_ok = mcu_mve_requant_vector_ok(q->shift, ch);
    q->right_only = mcu_mve_shifts_right_only(q->shift, ch);
    for (int32_t ky = 0, t = 0; ky < kh; ky++)
    {
        for (int32_t kx = 0; kx < kw; kx++, t++)
        {
            tap_off[t] = (ky * p->dilation.h * in_w + kx * p->dilation.w) * ch;
        }
    }
    return 1;
}

mcu_status mcu_dwconv_3x3_mve_s8(const mcu_context *ctx,
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
    dw_out q;
    int32_t tap_off[9];
    if (filter_dims->h != 3 || filter_dims->w != 3 ||
        !dw_setup(ctx, dw_params, quant_params, input_dims, filter_dims, output_dims, &q, tap_off) || !q.right_only)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t out_w = output_dims->w, pixels = output_dims->h * out_w;
    const int8_t *zp_row = (const int8_t *)ctx->buf;
    const int8_t *ta[9], *tb[9];
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * ch;
        int8_t *out_b = output + b * pixels * ch;
        /* pixels in output order, two at a time (a pair may span two output rows); an odd last pixel is computed
         * as both of a pair, stored twice at the same place */
        int32_t oy = 0, ox = 0;
        for (int32_t i = 0; i < pixels; i += 2)
        {
            const int32_t n = i + 1 < pixels ? 2 : 1;
#pragma GCC unroll 1
            for (int32_t j = 0; j < n; j++)
            {
                window_taps(j ? tb : ta, in_b, zp_row, tap_off, oy * dw_params->stride.h - dw_params->padding.h,
                            ox * dw_params->stride.w - dw_params->padding.w, 3, 3, in_h, in_w, ch, dw_params);
                if (++ox == out_w)
                {
                    ox = 0;
                    oy++;
                }
            }
            int8_t *oa = out_b + i * ch;
            dw_pair_3x3(ta, n == 2 ? tb : ta, ch, filter, bias, &q, oa, n == 2 ? oa + ch : oa);
        }
    }
    return MCU_OK;
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
    dw_out q;
    int32_t tap_off[MCU_DWCONV_MVE_MAX_TAPS]; /* a tap's offset from its window's first tap */
    if (!dw_setup(ctx, dw_params, quant_params, input_dims, filter_dims, output_dims, &q, tap_off))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t kh = filter_dims->h, kw = filter_dims->w, taps = kh * kw;
    if (kh == 3 && kw == 3 && q.right_only)
    {
        /* nearly every layer: two pixels per weight load */
        return mcu_dwconv_3x3_mve_s8(ctx, dw_params, quant_params, input_dims, input, filter_dims, filter, bias_dims,
                                     bias, output_dims, output);
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t out_w = output_dims->w, pixels = output_dims->h * out_w;
    const int8_t *zp_row = (const int8_t *)ctx->buf;
    const int8_t *tap[MCU_DWCONV_MVE_MAX_TAPS];
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * ch;
        int32_t oy = 0, ox = 0;
        for (int32_t i = 0; i < pixels; i++)
        {
            window_taps(tap, in_b, zp_row, tap_off, oy * dw_params->stride.h - dw_params->padding.h,
                        ox * dw_params->stride.w - dw_params->padding.w, kh, kw, in_h, in_w, ch, dw_params);
            int8_t *out = output + (b * pixels + i) * ch;
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            if (taps == 9)
            {
                dw_pixel_3x3(tap, ch, filter, bias, &q, out); /* every 9-tap window: unrolled */
            }
            else
            {
                dw_pixel_any(tap, taps, ch, filter, bias, &q, out);
            }
        }
    }
    return MCU_OK;
}

#else
typedef int mcu_dwconv_mve_unused; /* ISO C: no empty translation unit */
#endif
