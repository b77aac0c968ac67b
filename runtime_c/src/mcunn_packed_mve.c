/* Convolutions on packed 4- / 2-bit feature maps for MVE (Helium, Cortex-M55); arithmetic and layout in
 * mcunn_packed.h, the functions in mcunn_packed_mve.h.
 *
 * Sub-byte values are unpacked at the load stage into int8 lanes, never into an int8 copy of the map: a
 * VLDRB.U16 (4 bits: 8 bytes, one per halfword lane) or VLDRB.U32 (2 bits: 4 bytes, one per word lane)
 * fetches 16 fields, VSHL / VSLI move field k of each byte to the top of byte k of its lane and VSHR.S8
 * sign-extends them: 16 values in channel order for 3 (4 bits) or 5 (2 bits) ALU instructions. The input
 * offset is folded into the bias at compile time as for the int8 MVE kernels (taps outside the input hold the
 * zero point, whose products cancel their share of it), so the unpacked lanes are the raw values.
 *
 * Convolution (any window, groups 1): two output pixels' windows are unpacked into two int8 columns of
 * scratch (im2col), then the int8 matrix core of mcu_conv_mve_s8() (mcunn_mve_internal.h: VMLADAVA.S8, 2 rows x
 * 4 channels) computes them; a packed output is requantized into two int8 rows of scratch and packed (VSLI)
 * at the store.
 *
 * Depthwise (channel multiplier 1): 16 channels per block, each tap's 16 unpacked values times its 16 weights
 * with VMULLB.S8 / VMULLT.S8 into int16 products; sub-byte inputs sum them in int16 over up to 31 taps (4 bits:
 * |x w| <= 8 * 128, 31 of them < 2^15) or 127 (2 bits) before widening (VMOVLB / VMOVLT) into four int32
 * accumulators of channels 4j, 4j+1, 4j+2, 4j+3; int8 inputs widen every tap. The accumulators' lane order is
 * what the packed store wants: 2 bits pack with three VSLI, 4 and 8 bits after two VMOVNT. Sub-byte 3x3 layers
 * whose shifts are all <= 0 run two output pixels per block (each tap's weights loaded once for both).
 *
 * Compiled only with integer MVE; empty elsewhere. */
#include "mcunn_packed_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <stddef.h>

#include "mcunn_mve_internal.h"
#include "mcunn_mve_support.h"
#include "mcunn_packed.h"
#include "mcunn_packed_entry.h"
#include "mcunn_packed_support.h"

/* The building blocks are forced inline with optimisation (each copy specialised to its constant width, window
 * and tail); without it (-O0) they stay functions: forced inlining without constant folding would copy every
 * branch of every block into every caller (380 KB of code). */
#if defined(__OPTIMIZE__)
#define PM_INLINE static inline __attribute__((always_inline))
#else
#define PM_INLINE static
#endif

static int pm_bits_ok(int32_t bits)
{
    return bits == 8 || bits == 4 || bits == 2;
}

/* The 16 fields of a loaded vector (lane j: byte j, as 8 halfword lanes at 4 bits, 4 word lanes at 2 bits) as
 * int8 lanes in order: field k of each byte to the top of byte k of its lane, then VSHR.S8 sign-extends. */
PM_INLINE int8x16_t pm_spread4(uint16x8_t h)
{
    /* low byte of the lane: field 0 in bits 4-7; high byte: the whole byte (field 1 in bits 4-7) */
    return vshrq_n_s8(vreinterpretq_s8_u16(vsliq_n_u16(vshlq_n_u16(h, 4), h, 8)), 4);
}

PM_INLINE int8x16_t pm_spread2(uint32x4_t w)
{
    /* field k to bits 8k+6, 8k+7 */
    uint32x4_t t = vshlq_n_u32(w, 6);
    t = vsliq_n_u32(t, w, 12);
    t = vsliq_n_u32(t, w, 18);
    t = vsliq_n_u32(t, w, 24);
    return vshrq_n_s8(vreinterpretq_s8_u32(t), 6);
}

/* 16 values of a packed run starting at field 0 of byte src, as int8 lanes in order. `bits` is constant at each
 * inlined call. */
PM_INLINE int8x16_t pm_unpack16(const uint8_t *src, int32_t bits)
{
    if (bits == 4)
    {
        return pm_spread4(vldrbq_u16(src));
    }
    if (bits == 2)
    {
        return pm_spread2(vldrbq_u32(src));
    }
    return vldrbq_s8((const int8_t *)src);
}

/* The same for n < 16 values (lanes past n are 0; no byte past the run is read). */
PM_INLINE int8x16_t pm_unpack16_tail(const uint8_t *src, int32_t n, int32_t bits)
{
    if (bits == 4)
    {
        return pm_spread4(vldrbq_z_u16(src, vctp16q((uint32_t)(n + 1) >> 1)));
    }
    if (bits == 2)
    {
        return pm_spread2(vldrbq_z_u32(src, vctp32q((uint32_t)(n + 3) >> 2)));
    }
    return vldrbq_z_s8((const int8_t *)src, vctp8q((uint32_t)n));
}

/* n values of a packed run at src (field 0 of its first byte) as n int8 at dst. */
PM_INLINE void pm_unpack_run(int8_t *dst, const uint8_t *src, int32_t n, int32_t bits)
{
    int32_t i = 0;
    for (; i + 16 <= n; i += 16, dst += 16, src += 2 * bits)
    {
        vstrbq_s8(dst, pm_unpack16(src, bits));
    }
    if (i < n)
    {
        vstrbq_p_s8(dst, pm_unpack16_tail(src, n - i, bits), vctp8q((uint32_t)(n - i)));
    }
}

PM_INLINE void pm_fill(int8_t *dst, int8x16_t v, int32_t n)
{
    for (int32_t i = 0; i < n; i += 16)
    {
        vstrbq_p_s8(dst + i, v, vctp8q((uint32_t)(n - i)));
    }
}

/* n int8 values (already in the `bits` range) at src packed into P(n, bits) bytes at dst, padding bits 0. */
static void pm_pack_row(const int8_t *src, int32_t n, int32_t bits, uint8_t *dst)
{
    if (bits == 4)
    {
        for (int32_t i = 0; i < n; i += 16, dst += 8)
        {
            /* lanes past n load 0: the padding nibble of an odd count */
            const uint16x8_t h = vreinterpretq_u16_s8(vldrbq_z_s8(src + i, vctp8q((uint32_t)(n - i))));
            const uint16x8_t r = vsliq_n_u16(h, vshrq_n_u16(h, 8), 4); /* value 2j | value 2j+1 << 4 */
            vstrbq_p_u16(dst, r, vctp16q((uint32_t)(n - i + 1) >> 1));
        }
        return;
    }
    for (int32_t i = 0; i < n; i += 16, dst += 4)
    {
        const uint32x4_t w = vreinterpretq_u32_s8(vldrbq_z_s8(src + i, vctp8q((uint32_t)(n - i))));
        uint32x4_t r = vsliq_n_u32(w, vshrq_n_u32(w, 8), 2);
        r = vsliq_n_u32(r, vshrq_n_u32(w, 16), 4);
        r = vsliq_n_u32(r, vshrq_n_u32(w, 24), 6);
        vstrbq_p_u32(dst, r, vctp32q((uint32_t)(n - i + 3) >> 2));
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Convolution: im2col of two pixels, unpacked to int8, into the int8 matrix core.
 * ------------------------------------------------------------------------------------------------------ */

typedef struct
{
    const mcu_conv_params *cp;
    const mcu_dims *in, *filter;
    int32_t bits, in_px;
    int dense; /* C_in * bits a multiple of 8: a row of pixels is one packed run */
} pm_window;

/* The window of output pixel (oy, ox) of batch in_b as K int8 at dst, taps outside the input the zero point. */
PM_INLINE void pm_im2col_bits(const pm_window *w, const uint8_t *in_b, int32_t oy,
                              int32_t ox, int8_t *dst, int32_t bits)
{
    const mcu_conv_params *cp = w->cp;
    const int32_t in_h = w->in->h, in_w = w->in->w, cin = w->in->c, kh = w->filter->h, kw = w->filter->w;
    const int32_t y0 = oy * cp->stride.h - cp->padding.h, x0 = ox * cp->stride.w - cp->padding.w;
    if (kh == 1 && kw == 1 && y0 >= 0 && x0 >= 0 && y0 < in_h && x0 < in_w)
    {
        /* pointwise, the tap inside: one pixel */
        pm_unpack_run(dst, in_b + (y0 * in_w + x0) * w->in_px, cin, bits);
        return;
    }
    const int32_t dil_h = cp->dilation.h, dil_w = cp->dilation.w, row = kw * cin, in_px = w->in_px;
    const int8x16_t zp = vdupq_n_s8((int8_t)(-cp->input_offset));
    const int whole_rows = w->dense && dil_w == 1 && x0 >= 0 && x0 + kw <= in_w;
    for (int32_t ky = 0; ky < kh; ky++, dst += row)
    {
        const int32_t iy = y0 + ky * dil_h;
        if (iy < 0 || iy >= in_h)
        {
            pm_fill(dst, zp, row);
            continue;
        }
        const uint8_t *src = in_b + (iy * in_w + x0) * in_px;
        if (whole_rows)
        {
            pm_unpack_run(dst, src, row, bits); /* KW pixels without padding bits: one run */
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++)
        {
            const int32_t ix = x0 + kx * dil_w;
            if (ix < 0 || ix >= in_w)
            {
                pm_fill(dst + kx * cin, zp, cin);
            }
            else
            {
                pm_unpack_run(dst + kx * cin, src + kx * dil_w * in_px, cin, bits);
            }
        }
    }
}

static void pm_im2col(const pm_window *w, const uint8_t *in_b, int32_t oy, int32_t ox, int8_t *dst)
{
    /* the width as a constant: each copy unpacks without a branch per vector */
    if (w->bits == 4)
    {
        pm_im2col_bits(w, in_b, oy, ox, dst, 4);
    }
    else if (w->bits == 2)
    {
        pm_im2col_bits(w, in_b, oy, ox, dst, 2);
    }
    else
    {
        pm_im2col_bits(w, in_b, oy, ox, dst, 8);
    }
}

int32_t mcu_conv_mve_get_buffer_size_packed(const mcu_dims *input_dims, const mcu_dims *filter_dims,
                                            int32_t output_bits)
{
    (void)input_dims;
    const int32_t k = filter_dims->h * filter_dims->w * filter_dims->c;
    return 2 * k + (output_bits == 8 ? 0 : 2 * filter_dims->n);
}

static mcu_status conv_mve_packed(int32_t in_bits, const mcu_context *ctx, const mcu_conv_params *cp,
                                  const mcu_per_channel_quant_params *q, int32_t out_bits, const mcu_dims *in,
                                  const uint8_t *input, const mcu_dims *filt, const int8_t *filter,
                                  const int32_t *bias, const mcu_dims *out, uint8_t *output)
{
    const int32_t cin = in->c, cout = out->c, k = filt->h * filt->w * cin;
    if (!pm_bits_ok(in_bits) || !pm_bits_ok(out_bits) || cp->groups != 1 || filt->c != cin || filt->n != cout ||
        out->h < 0 || out->w < 0)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_conv_mve_get_buffer_size_packed(in, filt, out_bits))
    {
        return MCU_ARG_ERROR;
    }
    int8_t *col0 = (int8_t *)ctx->buf, *col1 = col0 + k, *stage = col1 + k;
    mcu_mve_mat m;
    m.weights = filter;
    m.bias = bias;
    m.mult = q->multiplier;
    m.shift = q->shift;
    m.k = k;
    m.cout = cout;
    m.out_offset = cp->output_offset;
    mcu_packed_range(out_bits, cp->activation.min, cp->activation.max, &m.lo, &m.hi);
    m.vector_ok = mcu_mve_requant_vector_ok(q->shift, cout);
    m.right_only = mcu_mve_shifts_right_only(q->shift, cout);
    const pm_window win = {cp, in, filt, in_bits, mcu_packed_pixel_bytes(cin, in_bits), (cin * in_bits) % 8 == 0};
    const int32_t in_px = win.in_px, out_px = mcu_packed_pixel_bytes(cout, out_bits);
    const int32_t out_w = out->w, pixels = out->h * out_w;
    for (int32_t b = 0; b < in->n; b++)
    {
        const uint8_t *in_b = input + b * in->h * in->w * in_px;
        uint8_t *out_b = output + b * pixels * out_px;
        int32_t oy = 0, ox = 0;
        for (int32_t i = 0; i < pixels; i += 2)
        {
            const int two = i + 1 < pixels;
            pm_im2col(&win, in_b, oy, ox, col0);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            if (two)
            {
                pm_im2col(&win, in_b, oy, ox, col1);
                if (++ox == out_w)
                {
                    ox = 0;
                    oy++;
                }
            }
            uint8_t *o0 = out_b + i * out_px;
            if (out_bits == 8)
            {
                mcu_mve_mat_mult(&m, col0, two ? col1 : NULL, (int8_t *)o0, two ? (int8_t *)o0 + cout : NULL);
                continue;
            }
            mcu_mve_mat_mult(&m, col0, two ? col1 : NULL, stage, two ? stage + cout : NULL);
            pm_pack_row(stage, cout, out_bits, o0);
            if (two)
            {
                pm_pack_row(stage + cout, cout, out_bits, o0 + out_px);
            }
        }
    }
    return MCU_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Depthwise, channel multiplier 1: 16 channels per block, int16 products summed over tap chunks.
 * ------------------------------------------------------------------------------------------------------ */

typedef struct
{
    const int32_t *bias, *mult, *shift;
    int32_t out_offset, lo, hi, bits, vector_ok, right_only;
} pm_dw_out;

/* The lanes j of channels 4j + k below n. */
PM_INLINE mve_pred16_t pm_lanes(int32_t k, int32_t n)
{
    return vctp32q(n > k ? (uint32_t)(n - k + 3) >> 2 : 0u);
}

/* Channels c + 4j + k (lanes j where 4j + k < n) of a per-channel int32 array; 0 past n. */
PM_INLINE int32x4_t pm_gather4(const int32_t *a, int32_t k, int32_t n, int full)
{
    const uint32x4_t idx = vidupq_n_u32(0, 4); /* {0, 4, 8, 12} */
    if (full)
    {
        return vldrwq_gather_shifted_offset_s32(a + k, idx);
    }
    return vldrwq_gather_shifted_offset_z_s32(a + k, idx, pm_lanes(k, n));
}

#if MCU_SINGLE_ROUNDING
/* mcu_requantize() per lane (single rounding with a shift >= 0: rare): out of line, once in flash. */
__attribute__((noinline)) static int32x4_t pm_requant_scalar(int32x4_t acc, const int32_t *mult, const int32_t *shift,
                                                              int32_t k, int32_t n)
{
    int32_t v[4];
    vst1q_s32(v, acc);
    for (int32_t j = 0; j < 4 && 4 * j + k < n; j++)
    {
        v[j] = mcu_requantize(v[j], mult[4 * j + k], shift[4 * j + k]);
    }
    return vld1q_s32(v);
}
#endif

/* Requantized, offset and clamped accumulator of channels c + 4j + k; lanes past n 0 (the padding bits). */
PM_INLINE int32x4_t pm_dw_requant(const pm_dw_out *o, int32x4_t acc, int32_t c,
                                  int32_t k, int32_t n, int full, int right_only)
{
#if MCU_SINGLE_ROUNDING
    if (!o->vector_ok)
    {
        acc = pm_requant_scalar(acc, o->mult + c, o->shift + c, k, n);
    }
    else
#endif
    {
        const int32x4_t mult = pm_gather4(o->mult + c, k, n, full), shift = pm_gather4(o->shift + c, k, n, full);
        acc = right_only ? mcu_mve_requantize_right(acc, mult, shift) : mcu_mve_requantize(acc, mult, shift);
    }
    acc = vminq_s32(vmaxq_s32(vaddq_n_s32(acc, o->out_offset), vdupq_n_s32(o->lo)), vdupq_n_s32(o->hi));
    return full ? acc : vpselq_s32(acc, vdupq_n_s32(0), pm_lanes(k, n));
}

/* Output stage of one block: a0..a3 hold channels c + 4j + 0..3; n <= 16 channels stored at `bits` from out
 * (the block's first byte). */
PM_INLINE void pm_dw_store(const pm_dw_out *o, int32x4_t a0, int32x4_t a1,
                           int32x4_t a2, int32x4_t a3, int32_t c, int32_t n,
                           int full, int right_only, uint8_t *out)
{
    a0 = pm_dw_requant(o, a0, c, 0, n, full, right_only);
    a1 = pm_dw_requant(o, a1, c, 1, n, full, right_only);
    a2 = pm_dw_requant(o, a2, c, 2, n, full, right_only);
    a3 = pm_dw_requant(o, a3, c, 3, n, full, right_only);
    if (o->bits == 2)
    {
        /* byte j of the block: channels 4j..4j+3, two bits each */
        uint32x4_t r = vsliq_n_u32(vreinterpretq_u32_s32(a2), vreinterpretq_u32_s32(a3), 2);
        r = vsliq_n_u32(vreinterpretq_u32_s32(a1), r, 2);
        r = vsliq_n_u32(vreinterpretq_u32_s32(a0), r, 2);
        if (full)
        {
            vstrbq_u32(out, r);
        }
        else
        {
            vstrbq_p_u32(out, r, vctp32q((uint32_t)(n + 3) >> 2));
        }
        return;
    }
    /* halfword lanes in channel order: even channels (2m) and odd ones (2m + 1) */
    const int16x8_t e = vmovntq_s32(vreinterpretq_s16_s32(a0), a2);
    const int16x8_t od = vmovntq_s32(vreinterpretq_s16_s32(a1), a3);
    if (o->bits == 4)
    {
        const uint16x8_t r = vsliq_n_u16(vreinterpretq_u16_s16(e), vreinterpretq_u16_s16(od), 4);
        if (full)
        {
            vstrbq_u16(out, r);
        }
        else
        {
            vstrbq_p_u16(out, r, vctp16q((uint32_t)(n + 1) >> 1));
        }
        return;
    }
    const int8x16_t y = vmovntq_s16(vreinterpretq_s8_s16(e), od);
    if (full)
    {
        vstrbq_s8((int8_t *)out, y);
    }
    else
    {
        vstrbq_p_s8((int8_t *)out, y, vctp8q((uint32_t)n));
    }
}

/* The int16 sums over taps [t0, t1) of one block: *se of channels 2m, *so of channels 2m + 1 (|x w| <=
 * 2^(bits-1) * 128, so up to 31 taps at 4 bits and 127 at 2 cannot overflow). */
PM_INLINE void pm_dw_sums(const uint8_t *const *tap, int32_t t0, int32_t t1,
                          int32_t cb, const int8_t *w, int32_t stride, int32_t n,
                          int full, int32_t bits, int16x8_t *se, int16x8_t *so)
{
    const mve_pred16_t p = vctp8q((uint32_t)n);
    int16x8_t e = vdupq_n_s16(0), o = vdupq_n_s16(0);
    w += t0 * stride;
#pragma GCC unroll 9
    for (int32_t t = t0; t < t1; t++)
    {
        const int8x16_t x = full ? pm_unpack16(tap[t] + cb, bits) : pm_unpack16_tail(tap[t] + cb, n, bits);
        const int8x16_t k = full ? vldrbq_s8(w) : vldrbq_z_s8(w, p);
        w += stride;
        e = vaddq_s16(e, vmullbq_int_s8(x, k));
        o = vaddq_s16(o, vmulltq_int_s8(x, k));
        /* the sums as they go (mcu_dwconv_mve_s8()'s trick): without this gcc hoists every tap's loads and
         * unpacking above the products and spills them to the stack; the memory clobber keeps them in order */
        __asm__ volatile("" : "+w"(e), "+w"(o) : : "memory");
    }
    *se = e;
    *so = o;
}

/* One block of n <= 16 channels at c of one output pixel over its taps (tap[t]: the input pixel, or the
 * zero-point pixel), weights of tap t at w + t * stride; `bits`, `full` (n == 16) and, for 3x3, `taps` constant at
 * each copy. Sub-byte inputs: int16 sums over chunks of taps, widened once per chunk (one chunk for any window
 * up to 31 taps); int8 inputs: each tap's products widened into the int32 accumulators. */
PM_INLINE void pm_dw_block(const pm_dw_out *o, const uint8_t *const *tap,
                           int32_t taps, int32_t c, const int8_t *w, int32_t stride,
                           int32_t n, int full, int32_t bits, int right_only,
                           uint8_t *out)
{
    const int32_t cb = c * bits / 8; /* the block's first byte in an input pixel */
    int32x4_t a0, a1, a2, a3;
    if (bits == 8)
    {
        const mve_pred16_t p = vctp8q((uint32_t)n);
        a0 = a1 = a2 = a3 = vdupq_n_s32(0);
#pragma GCC unroll 9
        for (int32_t t = 0; t < taps; t++)
        {
            const int8_t *px = (const int8_t *)tap[t] + c;
            const int8x16_t x = full ? vldrbq_s8(px) : vldrbq_z_s8(px, p);
            const int8x16_t k = full ? vldrbq_s8(w) : vldrbq_z_s8(w, p);
            w += stride;
            const int16x8_t e = vmullbq_int_s8(x, k), od = vmulltq_int_s8(x, k);
            a0 = vaddq_s32(a0, vmovlbq_s16(e));  /* 4j */
            a2 = vaddq_s32(a2, vmovltq_s16(e));  /* 4j + 2 */
            a1 = vaddq_s32(a1, vmovlbq_s16(od)); /* 4j + 1 */
            a3 = vaddq_s32(a3, vmovltq_s16(od)); /* 4j + 3 */
            __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3) : : "memory");
        }
    }
    else
    {
        const int32_t chunk = bits == 4 ? 31 : 127;
        int16x8_t se, so;
        pm_dw_sums(tap, 0, taps < chunk ? taps : chunk, cb, w, stride, n, full, bits, &se, &so);
        a0 = vmovlbq_s16(se);
        a2 = vmovltq_s16(se);
        a1 = vmovlbq_s16(so);
        a3 = vmovltq_s16(so);
        for (int32_t t0 = chunk; t0 < taps; t0 += chunk)
        {
            /* windows past 31 taps at 4 bits (7x7 and up) */
            pm_dw_sums(tap, t0, t0 + chunk < taps ? t0 + chunk : taps, cb, w, stride, n, full, bits, &se, &so);
            a0 = vaddq_s32(a0, vmovlbq_s16(se));
            a2 = vaddq_s32(a2, vmovltq_s16(se));
            a1 = vaddq_s32(a1, vmovlbq_s16(so));
            a3 = vaddq_s32(a3, vmovltq_s16(so));
        }
    }
    if (o->bias)
    {
        a0 = vaddq_s32(a0, pm_gather4(o->bias + c, 0, n, full));
        a1 = vaddq_s32(a1, pm_gather4(o->bias + c, 1, n, full));
        a2 = vaddq_s32(a2, pm_gather4(o->bias + c, 2, n, full));
        a3 = vaddq_s32(a3, pm_gather4(o->bias + c, 3, n, full));
    }
    pm_dw_store(o, a0, a1, a2, a3, c, n, full, right_only, out + c * o->bits / 8);
}

/* The blocks other than the full ones of the common case (other windows, a left shift, the channel tail): any
 * n <= 16 with predicated loads and stores, out of line, one copy per width in flash. */
__attribute__((noinline)) static void pm_dw_block_any(const pm_dw_out *o, const uint8_t *const *tap, int32_t taps,
                                                      int32_t c, const int8_t *w, int32_t n, int32_t bits,
                                                      uint8_t *out)
{
    if (bits == 4)
    {
        pm_dw_block(o, tap, taps, c, w, n, n, 0, 4, o->right_only, out);
    }
    else if (bits == 2)
    {
        pm_dw_block(o, tap, taps, c, w, n, n, 0, 2, o->right_only, out);
    }
    else
    {
        pm_dw_block(o, tap, taps, c, w, n, n, 0, 8, o->right_only, out);
    }
}

/* The full 16-channel blocks of a 3x3 layer whose shifts are all <= 0 (nearly every one): width, window and shift
 * constant (taps unrolled, the output stage without left shifts). */
__attribute__((noinline)) static void pm_dw_blocks_3x3(const pm_dw_out *o, const uint8_t *const *tap, int32_t ch16,
                                                       const int8_t *filter, int32_t bits, uint8_t *out)
{
    for (int32_t c = 0; c < ch16; c += 16)
    {
        if (bits == 4)
        {
            pm_dw_block(o, tap, 9, c, filter + c * 9, 16, 16, 1, 4, 1, out);
        }
        else if (bits == 2)
        {
            pm_dw_block(o, tap, 9, c, filter + c * 9, 16, 16, 1, 2, 1, out);
        }
        else
        {
            pm_dw_block(o, tap, 9, c, filter + c * 9, 16, 16, 1, 8, 1, out);
        }
    }
}

/* One full 16-channel block of two output pixels (taps ta, tb; outputs oa, ob) of a 3x3 layer on a sub-byte input
 * whose shifts are all <= 0: each tap's weights loaded once for both pixels. */
PM_INLINE void pm_dw_block_pair(const pm_dw_out *o, const uint8_t *const *ta, const uint8_t *const *tb, int32_t c,
                                const int8_t *w, int32_t bits, uint8_t *oa, uint8_t *ob)
{
    const int32_t cb = c * bits / 8;
    int16x8_t ea = vdupq_n_s16(0), oda = ea, eb = ea, odb = ea;
#pragma GCC unroll 9
    for (int32_t t = 0; t < 9; t++)
    {
        const int8x16_t k = vldrbq_s8(w);
        w += 16;
        const int8x16_t xa = pm_unpack16(ta[t] + cb, bits);
        ea = vaddq_s16(ea, vmullbq_int_s8(xa, k));
        oda = vaddq_s16(oda, vmulltq_int_s8(xa, k));
        const int8x16_t xb = pm_unpack16(tb[t] + cb, bits);
        eb = vaddq_s16(eb, vmullbq_int_s8(xb, k));
        odb = vaddq_s16(odb, vmulltq_int_s8(xb, k));
        /* as in pm_dw_sums(): the sums in order, no loads hoisted (8 Q registers) */
        __asm__ volatile("" : "+w"(ea), "+w"(oda), "+w"(eb), "+w"(odb) : : "memory");
    }
    const int32_t at = c * o->bits / 8;
    int32x4_t a0 = vmovlbq_s16(ea), a1 = vmovlbq_s16(oda), a2 = vmovltq_s16(ea), a3 = vmovltq_s16(oda);
    if (o->bias)
    {
        a0 = vaddq_s32(a0, pm_gather4(o->bias + c, 0, 16, 1));
        a1 = vaddq_s32(a1, pm_gather4(o->bias + c, 1, 16, 1));
        a2 = vaddq_s32(a2, pm_gather4(o->bias + c, 2, 16, 1));
        a3 = vaddq_s32(a3, pm_gather4(o->bias + c, 3, 16, 1));
    }
    pm_dw_store(o, a0, a1, a2, a3, c, 16, 1, 1, oa + at);
    a0 = vmovlbq_s16(eb);
    a1 = vmovlbq_s16(odb);
    a2 = vmovltq_s16(eb);
    a3 = vmovltq_s16(odb);
    if (o->bias)
    {
        a0 = vaddq_s32(a0, pm_gather4(o->bias + c, 0, 16, 1));
        a1 = vaddq_s32(a1, pm_gather4(o->bias + c, 1, 16, 1));
        a2 = vaddq_s32(a2, pm_gather4(o->bias + c, 2, 16, 1));
        a3 = vaddq_s32(a3, pm_gather4(o->bias + c, 3, 16, 1));
    }
    pm_dw_store(o, a0, a1, a2, a3, c, 16, 1, 1, ob + at);
}

/* Every channel of two output pixels of a 3x3 layer on a sub-byte input whose shifts are all <= 0 (the common
 * case): the full blocks two pixels at a time, the channel tail per pixel. */
__attribute__((noinline)) static void pm_dw_pair_3x3(const pm_dw_out *o, const uint8_t *const *ta,
                                                     const uint8_t *const *tb, int32_t ch, const int8_t *filter,
                                                     int32_t bits, uint8_t *oa, uint8_t *ob)
{
    const int32_t ch16 = ch & ~15;
    for (int32_t c = 0; c < ch16; c += 16)
    {
        if (bits == 4)
        {
            pm_dw_block_pair(o, ta, tb, c, filter + c * 9, 4, oa, ob);
        }
        else
        {
            pm_dw_block_pair(o, ta, tb, c, filter + c * 9, 2, oa, ob);
        }
    }
    if (ch16 < ch)
    {
        pm_dw_block_any(o, ta, 9, ch16, filter + ch16 * 9, ch - ch16, bits, oa);
        pm_dw_block_any(o, tb, 9, ch16, filter + ch16 * 9, ch - ch16, bits, ob);
    }
}

/* Every channel of one output pixel. */
static void pm_dw_pixel(const pm_dw_out *o, const uint8_t *const *tap, int32_t taps, int32_t ch,
                        const int8_t *filter, int32_t bits, uint8_t *out)
{
    int32_t c = 0;
    if (taps == 9 && o->right_only)
    {
        c = ch & ~15;
        pm_dw_blocks_3x3(o, tap, c, filter, bits, out);
    }
    for (; c < ch; c += 16)
    {
        pm_dw_block_any(o, tap, taps, c, filter + c * taps, ch - c < 16 ? ch - c : 16, bits, out);
    }
}

/* What the tap pointers of a window are computed from. */
typedef struct
{
    const mcu_dw_conv_params *dp;
    const uint8_t *zero_pixel;
    int32_t in_h, in_w, in_px, kh, kw, span_h, span_w;
    int32_t tap_off[MCU_DWCONV_MVE_PACKED_MAX_TAPS]; /* a tap's byte offset from its window's first tap */
} pm_dw_win;

/* The tap pointers of output pixel (oy, ox): into the input, or the zero-point pixel outside it. */
PM_INLINE void pm_dw_window(const uint8_t **tap, const pm_dw_win *w, const uint8_t *in_b, int32_t oy, int32_t ox)
{
    const mcu_dw_conv_params *dp = w->dp;
    const int32_t y0 = oy * dp->stride.h - dp->padding.h, x0 = ox * dp->stride.w - dp->padding.w;
    if (y0 >= 0 && x0 >= 0 && y0 + w->span_h < w->in_h && x0 + w->span_w < w->in_w)
    {
        /* the window inside the input (most of them): its taps at fixed offsets */
        const uint8_t *base = in_b + (y0 * w->in_w + x0) * w->in_px;
        for (int32_t t = 0; t < w->kh * w->kw; t++)
        {
            tap[t] = base + w->tap_off[t];
        }
        return;
    }
    for (int32_t ky = 0, t = 0; ky < w->kh; ky++)
    {
        const int32_t iy = y0 + ky * dp->dilation.h;
        const int row_in = iy >= 0 && iy < w->in_h;
        for (int32_t kx = 0; kx < w->kw; kx++, t++)
        {
            const int32_t ix = x0 + kx * dp->dilation.w;
            tap[t] = row_in && ix >= 0 && ix < w->in_w ? in_b + (iy * w->in_w + ix) * w->in_px : w->zero_pixel;
        }
    }
}

int32_t mcu_dwconv_mve_get_buffer_size_packed(const mcu_dims *input_dims, int32_t input_bits)
{
    /* one pixel of input zero points (what taps outside the input read) */
    return mcu_packed_pixel_bytes(input_dims->c, input_bits);
}

static mcu_status dwconv_mve_packed(int32_t in_bits, const mcu_context *ctx, const mcu_dw_conv_params *dp,
                                    const mcu_per_channel_quant_params *q, int32_t out_bits, const mcu_dims *in,
                                    const uint8_t *input, const mcu_dims *filt, const int8_t *filter,
                                    const int32_t *bias, const mcu_dims *out, uint8_t *output)
{
    const int32_t ch = in->c, kh = filt->h, kw = filt->w, taps = kh * kw;
    if (!pm_bits_ok(in_bits) || !pm_bits_ok(out_bits) || dp->ch_mult != 1 || out->c != ch || filt->c != ch ||
        taps < 1 || taps > MCU_DWCONV_MVE_PACKED_MAX_TAPS || out->h < 0 || out->w < 0)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_dwconv_mve_get_buffer_size_packed(in, in_bits))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t in_px = mcu_packed_pixel_bytes(ch, in_bits), out_px = mcu_packed_pixel_bytes(ch, out_bits);
    uint8_t *zero_pixel = (uint8_t *)ctx->buf;
    {
        int8_t zp[16];
        vst1q_s8(zp, vdupq_n_s8((int8_t)(-dp->input_offset)));
        for (int32_t c0 = 0; c0 < ch; c0 += 16)
        {
            mcu_packed_store(zp, ch - c0 < 16 ? ch - c0 : 16, in_bits, zero_pixel + c0 * in_bits / 8);
        }
    }
    pm_dw_out o;
    o.bias = bias;
    o.mult = q->multiplier;
    o.shift = q->shift;
    o.out_offset = dp->output_offset;
    mcu_packed_range(out_bits, dp->activation.min, dp->activation.max, &o.lo, &o.hi);
    o.bits = out_bits;
    o.vector_ok = mcu_mve_requant_vector_ok(q->shift, ch);
    o.right_only = mcu_mve_shifts_right_only(q->shift, ch);
    const int32_t in_h = in->h, in_w = in->w, out_w = out->w, pixels = out->h * out_w;
    pm_dw_win win;
    win.dp = dp;
    win.in_h = in_h;
    win.in_w = in_w;
    win.in_px = in_px;
    win.kh = kh;
    win.kw = kw;
    win.span_h = (kh - 1) * dp->dilation.h;
    win.span_w = (kw - 1) * dp->dilation.w;
    win.zero_pixel = zero_pixel;
    for (int32_t ky = 0, t = 0; ky < kh; ky++)
    {
        for (int32_t kx = 0; kx < kw; kx++, t++)
        {
            win.tap_off[t] = (ky * dp->dilation.h * in_w + kx * dp->dilation.w) * in_px;
        }
    }
    const uint8_t *tap[MCU_DWCONV_MVE_PACKED_MAX_TAPS];
    /* sub-byte 3x3 layers without left shifts: two pixels per weight load */
    const int pair = taps == 9 && o.right_only && in_bits != 8;
    const uint8_t *tap_b[MCU_DWCONV_MVE_PACKED_MAX_TAPS];
    for (int32_t b = 0; b < in->n; b++)
    {
        const uint8_t *in_b = input + b * in_h * in_w * in_px;
        int32_t oy = 0, ox = 0;
        for (int32_t i = 0; i < pixels; i += 1 + pair)
        {
            uint8_t *oa = output + (b * pixels + i) * out_px;
            pm_dw_window(tap, &win, in_b, oy, ox);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            if (pair && i + 1 < pixels)
            {
                pm_dw_window(tap_b, &win, in_b, oy, ox);
                if (++ox == out_w)
                {
                    ox = 0;
                    oy++;
                }
                pm_dw_pair_3x3(&o, tap, tap_b, ch, filter, in_bits, oa, oa + out_px);
            }
            else
            {
                pm_dw_pixel(&o, tap, taps, ch, filter, in_bits, oa);
            }
        }
    }
    return MCU_OK;
}

MCU_PACKED_CONV_ENTRY(mcu_conv_mve_a4w8_s8, conv_mve_packed, 4)
MCU_PACKED_CONV_ENTRY(mcu_conv_mve_a2w8_s8, conv_mve_packed, 2)
MCU_PACKED_CONV_ENTRY(mcu_conv_mve_a8w8_s8, conv_mve_packed, 8)
MCU_PACKED_DWCONV_ENTRY(mcu_dwconv_mve_a4w8_s8, dwconv_mve_packed, 4)
MCU_PACKED_DWCONV_ENTRY(mcu_dwconv_mve_a2w8_s8, dwconv_mve_packed, 2)
MCU_PACKED_DWCONV_ENTRY(mcu_dwconv_mve_a8w8_s8, dwconv_mve_packed, 8)

#else
typedef int mcu_packed_mve_unused; /* ISO C: no empty translation unit */
#endif
