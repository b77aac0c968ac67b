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
 * at the store. Two direct paths need no scratch: 1x1 on C_in <= 16 (each pixel unpacked into one register; always
 * taken) and, when the caller gives less scratch than the im2col path's, C_in a multiple of 16 up to 64 (each
 * 16-block of the window unpacked per 4 output channels; slower than im2col by 1.4-1.7x, for SRAM-tight stages).
 *
 * Depthwise (channel multiplier 1): 16 channels per block, each tap's 16 unpacked values times its 16 weights
 * with VMULLB.S8 / VMULLT.S8 into int16 products; sub-byte inputs sum them in int16 over up to 31 taps (4 bits:
 * |x w| <= 8 * 128, 31 of them < 2^15) or 127 (2 bits) before widening (VMOVLB / VMOVLT) into four int32
 * accumulators of channels 4j, 4j+1, 4j+2, 4j+3; int8 inputs widen every tap. The accumulators' lane order is
 * what the packed store wants: 2 bits pack with three VSLI, 4 and 8 bits after two VMOVNT. Sub-byte 3x3 layers
 * whose shifts are all <= 0 run two output pixels per block (each tap's weights loaded once for both). The last 8
 * channels of such a 3x3 layer with C % 16 = 8, at any input width, run as a half block (int16 lanes: 4-bit
 * fields spread with VSHL / VSLI + VSHR.S16, 2-bit ones by a byte gather and per-lane VSHL; VMULLB / VMULLT.S16
 * into int32 accumulators of even and odd channels), two pixels per weight load.
 *
 * Compiled only with integer MVE; empty elsewhere. */
#include "mcunn_packed_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <stddef.h>
#include <string.h>

#include "mcunn_mve.h"
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

/* ---------------------------------------------------------------------------------------------------------
 * Pointwise on at most 16 input channels (QuantMCU's per-patch 1x1 layers): no im2col, no scratch. Each output
 * pixel's C_in values are unpacked straight into one int8 vector (the zero point for a tap outside the input),
 * the weights ("quads" of K = C_in <= 16: the plain rows [C_out][C_in]) loaded once per 4 channels for two pixels,
 * 8 VMLADAVA per 4 channels x 2 pixels, requantized as 4-lane vectors; a packed output is staged 16 channels at a
 * time in registers' worth of stack (2 x 16 bytes) and packed with VSLI.
 * ------------------------------------------------------------------------------------------------------ */

/* Whether mcu_conv_mve_a*w8_s8 runs the layer without scratch (the direct pointwise path). */
static int pm_pw_direct_ok(const mcu_dims *filter_dims)
{
    return filter_dims->h == 1 && filter_dims->w == 1 && filter_dims->c >= 1 && filter_dims->c <= 16;
}

/* The windowed direct path: C_in a multiple of 16 up to PM_DC_MAX_CIN (its zero-point pixel on the stack), up to
 * PM_DC_MAX_BLOCKS 16-blocks in a window (KH * KW * C_in / 16; their pointers on the stack); no scratch. */
#define PM_DC_MAX_CIN 64
#define PM_DC_MAX_BLOCKS 64

static int pm_dc_direct_ok(const mcu_dims *filter_dims)
{
    const int32_t c = filter_dims->c, taps = filter_dims->h * filter_dims->w;
    return c >= 16 && c % 16 == 0 && c <= PM_DC_MAX_CIN && taps >= 1 && taps * (c / 16) <= PM_DC_MAX_BLOCKS;
}

int32_t mcu_conv_mve_scratch_free_packed(const mcu_dims *filter_dims)
{
    return pm_pw_direct_ok(filter_dims) || pm_dc_direct_ok(filter_dims);
}

/* n <= 16 int8 values (in the `bits` range) staged at src packed at dst: P(n, bits) bytes, padding bits 0. */
PM_INLINE void pm_pack16(const int8_t *src, int32_t n, int32_t bits, uint8_t *dst)
{
    const int8x16_t v = vldrbq_z_s8(src, vctp8q((uint32_t)n)); /* lanes past n: 0 */
    if (bits == 4)
    {
        const uint16x8_t h = vreinterpretq_u16_s8(v);
        vstrbq_p_u16(dst, vsliq_n_u16(h, vshrq_n_u16(h, 8), 4), vctp16q((uint32_t)(n + 1) >> 1));
        return;
    }
    const uint32x4_t w = vreinterpretq_u32_s8(v);
    uint32x4_t r = vsliq_n_u32(w, vshrq_n_u32(w, 8), 2);
    r = vsliq_n_u32(r, vshrq_n_u32(w, 16), 4);
    r = vsliq_n_u32(r, vshrq_n_u32(w, 24), 6);
    vstrbq_p_u32(dst, r, vctp32q((uint32_t)(n + 3) >> 2));
}

/* What the direct pointwise path reads, by value (the fields stay in registers across the int8 stores, which
 * may alias anything). */
typedef struct
{
    const int8_t *weights;
    const int32_t *bias, *mult, *shift;
    const uint8_t *in_b;
    int32_t cin, cout, out_offset, lo, hi, out_bits, vector_ok;
    int32_t in_h, in_w, in_px, stride_h, stride_w, pad_h, pad_w, zp;
    /* the windowed direct path (C_in a multiple of 16): K = taps * C_in, `blocks` = K / 16, nblk = C_in / 16 per
     * tap */
    int32_t k, blocks, nblk;
} pm_pw;

/* The C_in values of output pixel (oy, ox)'s tap as int8 lanes (lanes past C_in: whatever the bytes hold; the
 * weights' lanes there are 0), the zero point outside the input. */
PM_INLINE int8x16_t pm_pw_pixel(const pm_pw w, int32_t oy, int32_t ox, int32_t bits)
{
    const int32_t y = oy * w.stride_h - w.pad_h, x = ox * w.stride_w - w.pad_w;
    if (y < 0 || x < 0 || y >= w.in_h || x >= w.in_w)
    {
        return vdupq_n_s8((int8_t)w.zp);
    }
    const uint8_t *src = w.in_b + (y * w.in_w + x) * w.in_px;
    return w.cin == 16 ? pm_unpack16(src, bits) : pm_unpack16_tail(src, w.cin, bits);
}

/* Accumulators of channels c..c+n-1 (lanes) of two pixels: folded bias added, requantized, offset and clamped
 * (lanes past n: whatever; the stores are predicated, the staged ones zeroed at the pack). */
PM_INLINE void pm_pw_out(const pm_pw w, int32x4_t *y0, int32x4_t *y1, int32_t c, int32_t n, int full, int rows,
                         int right_only)
{
    const mve_pred16_t p = vctp32q((uint32_t)n);
    int32x4_t a0 = *y0, a1 = *y1;
    if (w.bias)
    {
        const int32x4_t b = full ? vldrwq_s32(w.bias + c) : vldrwq_z_s32(w.bias + c, p);
        a0 = vaddq_s32(a0, b);
        a1 = vaddq_s32(a1, b);
    }
#if MCU_SINGLE_ROUNDING
    if (!w.vector_ok)
    {
        a0 = mcu_mve_requantize_scalar(a0, w.mult + c, w.shift + c, n);
        a1 = rows == 2 ? mcu_mve_requantize_scalar(a1, w.mult + c, w.shift + c, n) : a1;
    }
    else
#endif
    {
        const int32x4_t mult = full ? vldrwq_s32(w.mult + c) : vldrwq_z_s32(w.mult + c, p);
        const int32x4_t shift = full ? vldrwq_s32(w.shift + c) : vldrwq_z_s32(w.shift + c, p);
        a0 = right_only ? mcu_mve_requantize_right(a0, mult, shift) : mcu_mve_requantize(a0, mult, shift);
        if (rows == 2)
        {
            a1 = right_only ? mcu_mve_requantize_right(a1, mult, shift) : mcu_mve_requantize(a1, mult, shift);
        }
    }
    const int32x4_t lo = vdupq_n_s32(w.lo), hi = vdupq_n_s32(w.hi);
    *y0 = vminq_s32(vmaxq_s32(vaddq_n_s32(a0, w.out_offset), lo), hi);
    if (rows == 2)
    {
        *y1 = vminq_s32(vmaxq_s32(vaddq_n_s32(a1, w.out_offset), lo), hi);
    }
}

/* Channels c..c+n-1 of `rows` (1 or 2) pixels x0, x1 stored at o0, o1 (int8 lanes). `full` (n == 4) constant at
 * each copy. */
PM_INLINE void pm_pw_quad(const pm_pw w, int8x16_t x0, int8x16_t x1, const uint8_t *const *ta,
                          const uint8_t *const *tb, int windowed, int32_t bits, int32_t c, int32_t n, int full,
                          int rows, int right_only, int8_t *o0, int8_t *o1)
{
    int32_t a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    if (windowed)
    {
        /* "quads" of K = taps * C_in (a multiple of 16): a full quad's block i holds its 4 channels' 16 weights in
         * turn (64 bytes); the last C_out % 4 channels are plain rows of K */
        const int8_t *wq = w.weights + c * w.k;
        const int32_t bs = full ? 64 : 16, js = full ? 16 : w.k;
        for (int32_t i = 0; i < w.blocks; i++, wq += bs)
        {
            /* ta[i], tb[i]: block i of the window (16 values of one tap) */
            const int8x16_t xa = pm_unpack16(ta[i], bits);
            const int8x16_t xb = rows == 2 ? pm_unpack16(tb[i], bits) : xa;
#pragma GCC unroll 4
            for (int32_t j = 0; j < 4; j++)
            {
                if (full || j < n)
                {
                    const int8x16_t k = vldrbq_s8(wq + j * js);
                    a[j] = vmladavaq_s8(a[j], xa, k);
                    if (rows == 2)
                    {
                        b[j] = vmladavaq_s8(b[j], xb, k);
                    }
                }
            }
        }
    }
    else
    {
        const int32_t cin = w.cin;
        const int8_t *wr = w.weights + c * cin;
        const mve_pred16_t p = vctp8q((uint32_t)cin);
#pragma GCC unroll 4
        for (int32_t j = 0; j < 4; j++)
        {
            if (full || j < n)
            {
                const int8x16_t k = vldrbq_z_s8(wr + j * cin, p);
                a[j] = vmladavq_s8(x0, k);
                b[j] = rows == 2 ? vmladavq_s8(x1, k) : 0;
            }
        }
    }
    int32x4_t y0 = mcu_mve_lanes4(a[0], a[1], a[2], a[3]);
    int32x4_t y1 = rows == 2 ? mcu_mve_lanes4(b[0], b[1], b[2], b[3]) : y0;
    pm_pw_out(w, &y0, &y1, c, n, full, rows, right_only);
    if (full)
    {
        vstrbq_s32(o0, y0);
        if (rows == 2)
        {
            vstrbq_s32(o1, y1);
        }
    }
    else
    {
        vstrbq_p_s32(o0, y0, vctp32q((uint32_t)n));
        if (rows == 2)
        {
            vstrbq_p_s32(o1, y1, vctp32q((uint32_t)n));
        }
    }
}

/* Every output channel of `rows` pixels (x0, x1) at out0, out1. */
PM_INLINE void pm_pw_pixels(const pm_pw w, int8x16_t x0, int8x16_t x1, const uint8_t *const *ta,
                            const uint8_t *const *tb, int windowed, int32_t bits, int rows, int right_only,
                            uint8_t *out0, uint8_t *out1)
{
    const int32_t cout = w.cout, quads = cout & ~3, ob = w.out_bits;
    int8_t s0[16], s1[16]; /* a packed output: 16 channels at a time */
    for (int32_t c = 0; c < cout; c += 4)
    {
        int8_t *o0 = ob == 8 ? (int8_t *)out0 + c : s0 + (c & 15), *o1 = ob == 8 ? (int8_t *)out1 + c : s1 + (c & 15);
        if (c < quads)
        {
            pm_pw_quad(w, x0, x1, ta, tb, windowed, bits, c, 4, 1, rows, right_only, o0, o1);
        }
        else
        {
            pm_pw_quad(w, x0, x1, ta, tb, windowed, bits, c, cout - c, 0, rows, right_only, o0, o1);
        }
        if (ob != 8 && ((c & 15) == 12 || c + 4 >= cout))
        {
            const int32_t c16 = c & ~15, n = cout - c16 < 16 ? cout - c16 : 16;
            pm_pack16(s0, n, ob, out0 + c16 * ob / 8);
            if (rows == 2)
            {
                pm_pack16(s1, n, ob, out1 + c16 * ob / 8);
            }
        }
    }
}

/* The whole layer at input width `bits` and shift case right_only (constant at each copy). */
PM_INLINE void pm_pw_layer(const pm_pw w, int32_t pixels, int32_t out_w, int32_t out_px, uint8_t *out_b,
                           int32_t bits, int right_only)
{
    int32_t oy = 0, ox = 0, i = 0;
    for (; i + 1 < pixels; i += 2)
    {
        const int8x16_t x0 = pm_pw_pixel(w, oy, ox, bits);
        if (++ox == out_w)
        {
            ox = 0;
            oy++;
        }
        const int8x16_t x1 = pm_pw_pixel(w, oy, ox, bits);
        if (++ox == out_w)
        {
            ox = 0;
            oy++;
        }
        pm_pw_pixels(w, x0, x1, NULL, NULL, 0, bits, 2, right_only, out_b + i * out_px, out_b + (i + 1) * out_px);
    }
    if (i < pixels)
    {
        const int8x16_t x0 = pm_pw_pixel(w, oy, ox, bits);
        pm_pw_pixels(w, x0, x0, NULL, NULL, 0, bits, 1, right_only, out_b + i * out_px, out_b + i * out_px);
    }
}

/* The direct pointwise path's common case, shifts all <= 0 with the vector requantization exact and C_out a multiple
 * of 16: scalars in registers, each 16-channel block's four quads unrolled (the weights' rows, the folded bias and
 * the per-channel constants at immediate offsets), int8 outputs stored per quad, a packed output staged 16 channels
 * per pixel on the stack (4 word stores) and packed by one load, VSLI and one store; input and output widths
 * constant at each copy. An odd last pixel is computed as both of a pair and stored twice at the same place. */
PM_INLINE void pm_pw_fast_bits(const pm_pw *w, int32_t pixels, int32_t out_w, uint8_t *out_b, int32_t bits,
                               int32_t ob, int32_t cin_const)
{
    const int32_t cin = cin_const ? cin_const : w->cin, cout = w->cout, out_px = cout * ob / 8, ooff = w->out_offset, lo = w->lo, hi = w->hi;
    const int8_t *const weights = w->weights;
    const int32_t *const bias = w->bias, *const mult = w->mult, *const shift = w->shift;
    const mve_pred16_t p = vctp8q((uint32_t)cin);
    int32_t oy = 0, ox = 0;
    for (int32_t i = 0; i < pixels; i += 2)
    {
        const int two = i + 1 < pixels;
        const int8x16_t x0 = pm_pw_pixel(*w, oy, ox, bits);
        if (++ox == out_w)
        {
            ox = 0;
            oy++;
        }
        int8x16_t x1 = x0;
        uint8_t *o0 = out_b + i * out_px, *o1 = o0;
        if (two)
        {
            x1 = pm_pw_pixel(*w, oy, ox, bits);
            o1 = o0 + out_px;
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
        }
        const int8_t *wr = weights;
        for (int32_t c = 0; c < cout; c += 16)
        {
            uint32_t s0[4], s1[4]; /* a packed output's 16 channels as int8 */
#pragma GCC unroll 4
            for (int32_t q = 0; q < 4; q++)
            {
                int32_t a[4], b[4];
#pragma GCC unroll 4
                for (int32_t j = 0; j < 4; j++)
                {
                    /* a constant C_in: the rows at immediate offsets; else the rows in turn (a pointer walked by
                     * C_in, not one offset per row kept live) */
                    const int8x16_t k = vldrbq_z_s8(cin_const ? wr + (4 * q + j) * cin : wr, p);
                    wr += cin_const ? 0 : cin;
                    a[j] = vmladavq_s8(x0, k);
                    b[j] = vmladavq_s8(x1, k);
                }
                int32x4_t v0 = mcu_mve_lanes4(a[0], a[1], a[2], a[3]);
                int32x4_t v1 = mcu_mve_lanes4(b[0], b[1], b[2], b[3]);
                const int32_t cq = c + 4 * q;
                if (bias)
                {
                    const int32x4_t t = vldrwq_s32(bias + cq);
                    v0 = vaddq_s32(v0, t);
                    v1 = vaddq_s32(v1, t);
                }
                const int32x4_t m = vldrwq_s32(mult + cq), s = vldrwq_s32(shift + cq);
                v0 = vaddq_n_s32(mcu_mve_requantize_right(v0, m, s), ooff);
                v1 = vaddq_n_s32(mcu_mve_requantize_right(v1, m, s), ooff);
                const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
                v0 = vminq_s32(vmaxq_s32(v0, vlo), vhi);
                v1 = vminq_s32(vmaxq_s32(v1, vlo), vhi);
                if (ob == 8)
                {
                    vstrbq_s32((int8_t *)o0 + cq, v0);
                    vstrbq_s32((int8_t *)o1 + cq, v1);
                }
                else
                {
                    vstrbq_s32((int8_t *)s0 + 4 * q, v0);
                    vstrbq_s32((int8_t *)s1 + 4 * q, v1);
                }
            }
            wr += cin_const ? 16 * cin : 0;
            if (ob == 4)
            {
                /* halfword lane i: channels 2i | 2i + 1 << 8 -> 2i | 2i + 1 << 4 in its low byte */
                const uint16x8_t h0 = vldrhq_u16((const uint16_t *)s0), h1 = vldrhq_u16((const uint16_t *)s1);
                vstrbq_u16(o0 + c / 2, vsliq_n_u16(h0, vshrq_n_u16(h0, 8), 4));
                vstrbq_u16(o1 + c / 2, vsliq_n_u16(h1, vshrq_n_u16(h1, 8), 4));
            }
            else if (ob == 2)
            {
                /* word lane j: channels 4j..4j+3 as its bytes -> two bits each in its low byte */
                const uint32x4_t w0 = vldrwq_u32(s0), w1 = vldrwq_u32(s1);
                uint32x4_t r0 = vsliq_n_u32(w0, vshrq_n_u32(w0, 8), 2), r1 = vsliq_n_u32(w1, vshrq_n_u32(w1, 8), 2);
                r0 = vsliq_n_u32(r0, vshrq_n_u32(w0, 16), 4);
                r1 = vsliq_n_u32(r1, vshrq_n_u32(w1, 16), 4);
                r0 = vsliq_n_u32(r0, vshrq_n_u32(w0, 24), 6);
                r1 = vsliq_n_u32(r1, vshrq_n_u32(w1, 24), 6);
                vstrbq_u32(o0 + c / 4, r0);
                vstrbq_u32(o1 + c / 4, r1);
            }
        }
    }
}

/* pm_pw_fast_bits() with its widths constant, and for a packed output C_in where it is 8 (QuantMCU's per-patch
 * pointwise layers: the weights' rows at immediate offsets, 7% fewer instructions): out of line, one copy per
 * (input, output) width pair and C_in case. */
__attribute__((noinline)) static void pm_pw_fast(const pm_pw *w, int32_t pixels, int32_t out_w, uint8_t *out_b,
                                                 int32_t bits)
{
#define PM_PW_FAST(b, o)                                                                                               \
    do                                                                                                                 \
    {                                                                                                                  \
        if (o != 8 && w->cin == 8)                                                                                     \
        {                                                                                                              \
            pm_pw_fast_bits(w, pixels, out_w, out_b, b, o, 8);                                                         \
        }                                                                                                              \
        else                                                                                                           \
        {                                                                                                              \
            pm_pw_fast_bits(w, pixels, out_w, out_b, b, o, 0);                                                         \
        }                                                                                                              \
    } while (0)
    const int32_t ob = w->out_bits;
    if (bits == 8)
    {
        if (ob == 4)
        {
            PM_PW_FAST(8, 4);
        }
        else if (ob == 2)
        {
            PM_PW_FAST(8, 2);
        }
        else
        {
            PM_PW_FAST(8, 8);
        }
    }
    else if (bits == 4)
    {
        if (ob == 4)
        {
            PM_PW_FAST(4, 4);
        }
        else if (ob == 2)
        {
            PM_PW_FAST(4, 2);
        }
        else
        {
            PM_PW_FAST(4, 8);
        }
    }
    else
    {
        if (ob == 4)
        {
            PM_PW_FAST(2, 4);
        }
        else if (ob == 2)
        {
            PM_PW_FAST(2, 2);
        }
        else
        {
            PM_PW_FAST(2, 8);
        }
    }
#undef PM_PW_FAST
}

/* One copy per input width for layers whose shifts are all <= 0 (nearly all), one generic copy otherwise. */
__attribute__((noinline)) static void pm_pw_direct(const pm_pw *w, int32_t pixels, int32_t out_w, int32_t out_px,
                                                   uint8_t *out_b, int32_t bits, int right_only)
{
    const pm_pw v = *w;
    if (!right_only)
    {
        pm_pw_layer(v, pixels, out_w, out_px, out_b, bits, 0);
    }
    else if (bits == 4)
    {
        pm_pw_layer(v, pixels, out_w, out_px, out_b, 4, 1);
    }
    else if (bits == 2)
    {
        pm_pw_layer(v, pixels, out_w, out_px, out_b, 2, 1);
    }
    else
    {
        pm_pw_layer(v, pixels, out_w, out_px, out_b, 8, 1);
    }
}

/* The block pointers of output pixel (oy, ox) of a windowed direct layer (taps in row-major order, C_in / 16
 * blocks each): into the input, or the zero-point pixel outside it. */
PM_INLINE void pm_dc_window(const uint8_t **tap, const pm_pw *w, const mcu_conv_params *cp, int32_t kh, int32_t kw,
                            const uint8_t *zero_pixel, int32_t oy, int32_t ox)
{
    const int32_t y0 = oy * w->stride_h - w->pad_h, x0 = ox * w->stride_w - w->pad_w, nblk = w->nblk;
    const int32_t step = w->in_px / nblk; /* a 16-block's packed bytes */
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int32_t iy = y0 + ky * cp->dilation.h;
        const int row_in = iy >= 0 && iy < w->in_h;
        for (int32_t kx = 0; kx < kw; kx++)
        {
            const int32_t ix = x0 + kx * cp->dilation.w;
            const uint8_t *px =
                row_in && ix >= 0 && ix < w->in_w ? w->in_b + (iy * w->in_w + ix) * w->in_px : zero_pixel;
            for (int32_t i = 0; i < nblk; i++)
            {
                *tap++ = px + i * step;
            }
        }
    }
}

/* A windowed direct layer (C_in a multiple of 16, <= PM_DC_MAX_CIN): two pixels' tap pointers, each 16-block
 * unpacked straight into a register per quad of output channels. */
__attribute__((noinline)) static void pm_dc_direct(const pm_pw *w, const mcu_conv_params *cp, int32_t kh,
                                                   int32_t kw, const uint8_t *zero_pixel, int32_t pixels,
                                                   int32_t out_w, int32_t out_px, uint8_t *out_b, int32_t bits,
                                                   int right_only)
{
    const pm_pw v = *w;
    const uint8_t *ta[PM_DC_MAX_BLOCKS], *tb[PM_DC_MAX_BLOCKS];
    const int8x16_t none = vdupq_n_s8(0);
    int32_t oy = 0, ox = 0;
    for (int32_t i = 0; i < pixels; i += 2)
    {
        const int rows = i + 1 < pixels ? 2 : 1;
        pm_dc_window(ta, w, cp, kh, kw, zero_pixel, oy, ox);
        if (++ox == out_w)
        {
            ox = 0;
            oy++;
        }
        if (rows == 2)
        {
            pm_dc_window(tb, w, cp, kh, kw, zero_pixel, oy, ox);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
        }
        uint8_t *oa = out_b + i * out_px;
        if (rows == 1)
        {
            /* the last pixel (or the only one: a per-patch 3x3 layer's 1x1 output) */
            if (bits == 4)
            {
                pm_pw_pixels(v, none, none, ta, ta, 1, 4, 1, right_only, oa, oa);
            }
            else if (bits == 2)
            {
                pm_pw_pixels(v, none, none, ta, ta, 1, 2, 1, right_only, oa, oa);
            }
            else
            {
                pm_pw_pixels(v, none, none, ta, ta, 1, 8, 1, right_only, oa, oa);
            }
        }
        else if (bits == 4)
        {
            pm_pw_pixels(v, none, none, ta, tb, 1, 4, 2, right_only, oa, oa + out_px);
        }
        else if (bits == 2)
        {
            pm_pw_pixels(v, none, none, ta, tb, 1, 2, 2, right_only, oa, oa + out_px);
        }
        else
        {
            pm_pw_pixels(v, none, none, ta, tb, 1, 8, 2, right_only, oa, oa + out_px);
        }
    }
}

int32_t mcu_conv_mve_get_buffer_size_packed(const mcu_dims *input_dims, const mcu_dims *filter_dims,
                                            int32_t output_bits)
{
    (void)input_dims;
    if (pm_pw_direct_ok(filter_dims))
    {
        return 0; /* the direct pointwise path */
    }
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
    /* the direct pointwise path always; the windowed direct one when the im2col scratch is not given */
    const int direct = pm_pw_direct_ok(filt);
    const int short_scratch =
        ctx == NULL || ctx->buf == NULL || ctx->size < mcu_conv_mve_get_buffer_size_packed(in, filt, out_bits);
    const int windowed = !direct && short_scratch && pm_dc_direct_ok(filt);
    if (!direct && !windowed && short_scratch)
    {
        return MCU_ARG_ERROR;
    }
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
    if (direct || windowed)
    {
        uint8_t zero_pixel[PM_DC_MAX_CIN]; /* the windowed path's taps outside the input */
        if (windowed)
        {
            int8_t zp[16];
            vst1q_s8(zp, vdupq_n_s8((int8_t)(-cp->input_offset)));
            for (int32_t c0 = 0; c0 < cin; c0 += 16)
            {
                mcu_packed_store(zp, 16, in_bits, zero_pixel + c0 * in_bits / 8);
            }
        }
        for (int32_t b = 0; b < in->n; b++)
        {
            const pm_pw w = {filter, bias, q->multiplier, q->shift, input + b * in->h * in->w * in_px, cin, cout,
                             m.out_offset, m.lo, m.hi, out_bits, m.vector_ok, in->h, in->w, in_px, cp->stride.h,
                             cp->stride.w, cp->padding.h, cp->padding.w, -cp->input_offset, k,
                             filt->h * filt->w * (cin / 16), cin / 16};
            if (direct && m.right_only && m.vector_ok && cout % 16 == 0)
            {
                pm_pw_fast(&w, pixels, out_w, output + b * pixels * out_px, in_bits);
            }
            else if (direct)
            {
                pm_pw_direct(&w, pixels, out_w, out_px, output + b * pixels * out_px, in_bits, m.right_only);
            }
            else
            {
                pm_dc_direct(&w, cp, filt->h, filt->w, zero_pixel, pixels, out_w, out_px,
                             output + b * pixels * out_px, in_bits, m.right_only);
            }
        }
        return MCU_OK;
    }
    int8_t *col0 = (int8_t *)ctx->buf, *col1 = col0 + k, *stage = col1 + k;
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

/* 8 values of a packed run at src (field 0 of its first byte) as int16 lanes in order: int8 widened at the load;
 * 4 bits: byte j in word lane j, field 0 to the top of the low halfword, field 1 to the top of the high one, then
 * VSHR.S16; 2 bits: byte i / 4 in halfword lane i (a gather), field i % 4 to its top, VSHR.S16. */
PM_INLINE int16x8_t pm_unpack8_s16(const uint8_t *src, int32_t bits)
{
    if (bits == 4)
    {
        const uint32x4_t w = vldrbq_u32(src);
        const uint32x4_t t = vsliq_n_u32(vshlq_n_u32(w, 12), w, 24);
        return vshrq_n_s16(vreinterpretq_s16_u32(t), 12);
    }
    if (bits == 2)
    {
        const uint16x8_t byte = vshrq_n_u16(vidupq_n_u16(0, 1), 2);                  /* {0,0,0,0,1,1,1,1} */
        const int16x8_t left = vreinterpretq_s16_u16(vsubq_u16(vdupq_n_u16(14),      /* 14 - 2 * (i % 4) */
                                                               vshlq_n_u16(vandq_u16(vidupq_n_u16(0, 1),
                                                                                     vdupq_n_u16(3)), 1)));
        const uint16x8_t h = vshlq_u16(vldrbq_gather_offset_u16(src, byte), left);
        return vshrq_n_s16(vreinterpretq_s16_u16(h), 14);
    }
    return vldrbq_s16((const int8_t *)src);
}

/* 8 channels c..c+7 of `rows` (1 or 2) output pixels (taps ta, tb; outputs at oa, ob: the block's first byte) of
 * a 3x3 layer whose shifts are all <= 0, any input width (the int8 MVE kernel's half block): values and weights
 * as int16 lanes, VMULLB / VMULLT.S16 into int32 accumulators of the even (e) and odd (od) channels, each tap's
 * weights loaded once for both pixels; weights of tap t at w + 8 t (a C % 16 = 8 tail's block). */
PM_INLINE void pm_dw_half(const pm_dw_out *o, const uint8_t *const *ta, const uint8_t *const *tb, int32_t c,
                          const int8_t *w, int32_t bits, int rows, uint8_t *oa, uint8_t *ob)
{
    const int32_t cb = c * bits / 8;
    int32x4_t ea = vdupq_n_s32(0), oda = ea, eb = ea, odb = ea;
#pragma GCC unroll 9
    for (int32_t t = 0; t < 9; t++)
    {
        const int16x8_t k = vldrbq_s16(w);
        w += 8;
        const int16x8_t xa = pm_unpack8_s16(ta[t] + cb, bits);
        ea = vaddq_s32(ea, vmullbq_int_s16(xa, k));
        oda = vaddq_s32(oda, vmulltq_int_s16(xa, k));
        if (rows == 2)
        {
            const int16x8_t xb = pm_unpack8_s16(tb[t] + cb, bits);
            eb = vaddq_s32(eb, vmullbq_int_s16(xb, k));
            odb = vaddq_s32(odb, vmulltq_int_s16(xb, k));
        }
        /* as in pm_dw_sums(): the sums in order, no loads hoisted */
        __asm__ volatile("" : "+w"(ea), "+w"(oda), "+w"(eb), "+w"(odb) : : "memory");
    }
    const uint32x4_t even = vidupq_n_u32(0, 2);
    const int32x4_t me = vldrwq_gather_shifted_offset_s32(o->mult + c, even);
    const int32x4_t se = vldrwq_gather_shifted_offset_s32(o->shift + c, even);
    const int32x4_t mo = vldrwq_gather_shifted_offset_s32(o->mult + c + 1, even);
    const int32x4_t so = vldrwq_gather_shifted_offset_s32(o->shift + c + 1, even);
    const int32x4_t lo = vdupq_n_s32(o->lo), hi = vdupq_n_s32(o->hi);
    int32x4_t be = vdupq_n_s32(0), bo = be;
    if (o->bias)
    {
        be = vldrwq_gather_shifted_offset_s32(o->bias + c, even);
        bo = vldrwq_gather_shifted_offset_s32(o->bias + c + 1, even);
    }
    const int32_t at = c * o->bits / 8;
    for (int r = 0; r < rows; r++)
    {
        int32x4_t e = r ? eb : ea, od = r ? odb : oda;
        uint8_t *out = (r ? ob : oa) + at;
        e = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(vaddq_s32(e, be), me, se), o->out_offset), lo),
                      hi);
        od = vminq_s32(
            vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(vaddq_s32(od, bo), mo, so), o->out_offset), lo), hi);
        if (o->bits == 8)
        {
            vstrbq_s16((int8_t *)out, vmovntq_s32(vreinterpretq_s16_s32(e), od));
        }
        else if (o->bits == 4)
        {
            /* word lane j: channels 2j | 2j + 1 << 4 in its low byte */
            vstrbq_u32(out, vsliq_n_u32(vreinterpretq_u32_s32(e), vreinterpretq_u32_s32(od), 4));
        }
        else
        {
            /* lane j: channels 2j | 2j + 1 << 2 (4 bits); the two bytes t0 | t1 << 4, t2 | t3 << 4 as one sum of
             * lanes times {1, 16, 256, 4096} (VMLADAV) */
            const uint32x4_t t = vandq_u32(vsliq_n_u32(vreinterpretq_u32_s32(e), vreinterpretq_u32_s32(od), 2),
                                           vdupq_n_u32(15));
            const uint32x4_t place = vshlq_u32(vdupq_n_u32(1), vreinterpretq_s32_u32(vidupq_n_u32(0, 4)));
            const uint32_t v = vmladavq_u32(t, place);
            out[0] = (uint8_t)v;
            out[1] = (uint8_t)(v >> 8);
        }
    }
}

/* pm_dw_half() with its width and row count constant: out of line, one copy per pair. */
__attribute__((noinline)) static void pm_dw_half_any(const pm_dw_out *o, const uint8_t *const *ta,
                                                     const uint8_t *const *tb, int32_t c, const int8_t *w,
                                                     int32_t bits, int rows, uint8_t *oa, uint8_t *ob)
{
    if (rows == 2)
    {
        if (bits == 4)
        {
            pm_dw_half(o, ta, tb, c, w, 4, 2, oa, ob);
        }
        else if (bits == 2)
        {
            pm_dw_half(o, ta, tb, c, w, 2, 2, oa, ob);
        }
        else
        {
            pm_dw_half(o, ta, tb, c, w, 8, 2, oa, ob);
        }
    }
    else if (bits == 4)
    {
        pm_dw_half(o, ta, ta, c, w, 4, 1, oa, oa);
    }
    else if (bits == 2)
    {
        pm_dw_half(o, ta, ta, c, w, 2, 1, oa, oa);
    }
    else
    {
        pm_dw_half(o, ta, ta, c, w, 8, 1, oa, oa);
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * 3x3 layers of 8 channels whose shifts are all <= 0 (VWW's and MNIST's per-patch depthwise layers), dilation 1:
 * the output pixels whose windows lie inside the input, two at a time along an output row, without tap pointers.
 * Tap (ky, kx) of the window at p is at p + ky * row + kx * P (P: an 8-channel pixel's bytes, the input width in
 * bytes, constant at each copy, so the loads take immediate offsets); the accumulators start at the bias; the input
 * and output widths are constant at each copy (no branch in the output stage). The other pixels (windows over the
 * padding) take the tap pointers of pm_dw_pair_3x3(), two at a time.
 * ------------------------------------------------------------------------------------------------------ */

static const uint32_t pm_place2[4] = {1u, 16u, 256u, 4096u}; /* 4-bit pairs of lanes into two bytes (VMLADAV) */

/* 8 channels from their even (e: channel 2j in lane j) and odd (od) accumulators, requantized with (me, se) and
 * (mo, so), offset, clamped and stored at out at `obits` (constant at each copy). */
PM_INLINE void pm_dw8_store(const pm_dw_out *o, int32x4_t e, int32x4_t od, int32x4_t me, int32x4_t se,
                            int32x4_t mo, int32x4_t so, int32_t obits, uint8_t *out)
{
    const int32x4_t lo = vdupq_n_s32(o->lo), hi = vdupq_n_s32(o->hi);
    e = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(e, me, se), o->out_offset), lo), hi);
    od = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(od, mo, so), o->out_offset), lo), hi);
    if (obits == 8)
    {
        vstrbq_s16((int8_t *)out, vmovntq_s32(vreinterpretq_s16_s32(e), od));
    }
    else if (obits == 4)
    {
        /* word lane j: channels 2j | 2j + 1 << 4 in its low byte */
        vstrbq_u32(out, vsliq_n_u32(vreinterpretq_u32_s32(e), vreinterpretq_u32_s32(od), 4));
    }
    else
    {
        /* lane j: channels 2j | 2j + 1 << 2; the two bytes as one sum of lanes times {1, 16, 256, 4096} */
        const uint32x4_t t =
            vandq_u32(vsliq_n_u32(vreinterpretq_u32_s32(e), vreinterpretq_u32_s32(od), 2), vdupq_n_u32(15));
        const uint32_t v = vmladavq_u32(t, vld1q_u32(pm_place2));
        out[0] = (uint8_t)v;
        out[1] = (uint8_t)(v >> 8);
    }
}

/* Two output pixels (windows at pa, pb inside the input; outputs at oa, ob; pb == pa and ob == oa for a single
 * one) of an 8-channel 3x3 layer: values and weights as int16 lanes (pm_unpack8_s16()), VMULLB / VMULLT.S16 into
 * int32 accumulators of the even and odd channels, each tap's weights loaded once for both pixels. */
PM_INLINE void pm_dw8_pair(const pm_dw_out *o, const uint8_t *pa, const uint8_t *pb, int32_t row, const int8_t *w,
                           int32_t bits, int32_t obits, uint8_t *oa, uint8_t *ob)
{
    const uint32x4_t even = vidupq_n_u32(0, 2);
    int32x4_t ea = vdupq_n_s32(0), oda = ea;
    if (o->bias)
    {
        ea = vldrwq_gather_shifted_offset_s32(o->bias, even);
        oda = vldrwq_gather_shifted_offset_s32(o->bias + 1, even);
    }
    int32x4_t eb = ea, odb = oda;
#pragma GCC unroll 3
    for (int32_t ky = 0; ky < 3; ky++, pa += row, pb += row)
    {
#pragma GCC unroll 3
        for (int32_t kx = 0; kx < 3; kx++, w += 8)
        {
            const int16x8_t k = vldrbq_s16(w);
            const int16x8_t xa = pm_unpack8_s16(pa + kx * bits, bits);
            ea = vaddq_s32(ea, vmullbq_int_s16(xa, k));
            oda = vaddq_s32(oda, vmulltq_int_s16(xa, k));
            const int16x8_t xb = pm_unpack8_s16(pb + kx * bits, bits);
            eb = vaddq_s32(eb, vmullbq_int_s16(xb, k));
            odb = vaddq_s32(odb, vmulltq_int_s16(xb, k));
            /* as in pm_dw_sums(): the sums in order, no loads hoisted */
            __asm__ volatile("" : "+w"(ea), "+w"(oda), "+w"(eb), "+w"(odb) : : "memory");
        }
    }
    const int32x4_t me = vldrwq_gather_shifted_offset_s32(o->mult, even);
    const int32x4_t se = vldrwq_gather_shifted_offset_s32(o->shift, even);
    const int32x4_t mo = vldrwq_gather_shifted_offset_s32(o->mult + 1, even);
    const int32x4_t so = vldrwq_gather_shifted_offset_s32(o->shift + 1, even);
    pm_dw8_store(o, ea, oda, me, se, mo, so, obits, oa);
    pm_dw8_store(o, eb, odb, me, se, mo, so, obits, ob);
}

/* n output pixels along a row whose windows lie inside the input: the first window at p, the next `step` bytes on
 * (stride x P), outputs from out, out_px bytes apart; an odd last one as a pair with itself. */
PM_INLINE void pm_dw8_run_bits(const pm_dw_out *o, const uint8_t *p, int32_t step, int32_t row, int32_t n,
                               const int8_t *w, int32_t out_px, uint8_t *out, int32_t bits, int32_t obits)
{
    int32_t i = 0;
    for (; i + 1 < n; i += 2, p += 2 * step, out += 2 * out_px)
    {
        pm_dw8_pair(o, p, p + step, row, w, bits, obits, out, out + out_px);
    }
    if (i < n)
    {
        pm_dw8_pair(o, p, p, row, w, bits, obits, out, out);
    }
}

/* pm_dw8_run_bits() with its input and output widths constant: out of line, one copy per pair. */
__attribute__((noinline)) static void pm_dw8_run(const pm_dw_out *o, const uint8_t *p, int32_t step, int32_t row,
                                                 int32_t n, const int8_t *w, int32_t bits, int32_t out_px,
                                                 uint8_t *out)
{
#define PM_DW8_RUN(b, ob) pm_dw8_run_bits(o, p, step, row, n, w, out_px, out, b, ob)
    const int32_t ob = o->bits;
    if (bits == 8)
    {
        if (ob == 4)
        {
            PM_DW8_RUN(8, 4);
        }
        else if (ob == 2)
        {
            PM_DW8_RUN(8, 2);
        }
        else
        {
            PM_DW8_RUN(8, 8);
        }
    }
    else if (bits == 4)
    {
        if (ob == 4)
        {
            PM_DW8_RUN(4, 4);
        }
        else if (ob == 2)
        {
            PM_DW8_RUN(4, 2);
        }
        else
        {
            PM_DW8_RUN(4, 8);
        }
    }
    else
    {
        if (ob == 4)
        {
            PM_DW8_RUN(2, 4);
        }
        else if (ob == 2)
        {
            PM_DW8_RUN(2, 2);
        }
        else
        {
            PM_DW8_RUN(2, 8);
        }
    }
#undef PM_DW8_RUN
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
    if (ch - ch16 == 8)
    {
        pm_dw_half_any(o, ta, tb, ch16, filter + ch16 * 9, bits, 2, oa, ob);
    }
    else if (ch16 < ch)
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
        if (ch - c == 8)
        {
            pm_dw_half_any(o, tap, tap, c, filter + c * 9, bits, 1, out, out);
            return;
        }
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
    const int pair = taps == 9 && o.right_only && (in_bits != 8 || ch == 8);
    const uint8_t *tap_b[MCU_DWCONV_MVE_PACKED_MAX_TAPS];
    if (pair && ch == 8 && dp->dilation.h == 1 && dp->dilation.w == 1)
    {
        /* 8 channels: the windows inside the input in runs along each output row (pm_dw8_run()), the others two at
         * a time through their tap pointers */
        const int32_t sh = dp->stride.h, sw = dp->stride.w, ph = dp->padding.h, pw = dp->padding.w;
        const int32_t row = in_w * in_px, step = sw * in_px;
        for (int32_t b = 0; b < in->n; b++)
        {
            const uint8_t *in_b = input + b * in_h * in_w * in_px;
            uint8_t *out_b = output + b * pixels * out_px, *pending = NULL;
            for (int32_t oy = 0; oy < out->h; oy++)
            {
                const int32_t y0 = oy * sh - ph;
                const int row_in = y0 >= 0 && y0 + 2 < in_h;
                for (int32_t ox = 0; ox < out_w;)
                {
                    const int32_t x0 = ox * sw - pw;
                    uint8_t *oa = out_b + (oy * out_w + ox) * out_px;
                    if (row_in && x0 >= 0 && x0 + 2 < in_w)
                    {
                        /* the last pixel whose window ends inside: (x0 + 2 < in_w) <=> ox <= (in_w - 3 + pw) / sw */
                        const int32_t end = (in_w - 3 + pw) / sw + 1, n = (end < out_w ? end : out_w) - ox;
                        pm_dw8_run(&o, in_b + (y0 * in_w + x0) * in_px, step, row, n, filter, in_bits, out_px, oa);
                        ox += n;
                        continue;
                    }
                    if (pending == NULL)
                    {
                        pm_dw_window(tap, &win, in_b, oy, ox);
                        pending = oa;
                    }
                    else
                    {
                        pm_dw_window(tap_b, &win, in_b, oy, ox);
                        pm_dw_pair_3x3(&o, tap, tap_b, ch, filter, in_bits, pending, oa);
                        pending = NULL;
                    }
                    ox++;
                }
            }
            if (pending != NULL)
            {
                pm_dw_pixel(&o, tap, taps, ch, filter, in_bits, pending);
            }
        }
        return MCU_OK;
    }
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

/* ---------------------------------------------------------------------------------------------------------
 * Elementwise add on packed maps from per-input terms (mcu_packed_add_table() in mcunn_packed_support.h): runs
 * of up to MCU_PACKED_ADD_RUN values unpacked into int8 on the stack with the conv kernels' unpacking, both terms
 * of 4 values gathered per step and their sum requantized on int32 lanes, packed (VSLI) at the store.
 * ------------------------------------------------------------------------------------------------------ */

/* mcu_packed_unpack_fn */
static void pm_add_unpack(int8_t *dst, const uint8_t *src, int32_t n, int32_t bits)
{
    pm_unpack_run(dst, src, n, bits);
}

/* mcu_packed_pack_fn */
static void pm_add_pack(const int8_t *src, int32_t n, int32_t bits, uint8_t *dst)
{
    if (bits == 8)
    {
        memcpy(dst, src, (size_t)n);
    }
    else
    {
        pm_pack_row(src, n, bits, dst);
    }
}

/* The table add's run (mcu_packed_add_table_run_fn) on 4 int32 lanes per step: the values widened (VLDRB.S32)
 * and offset to table indices, both terms gathered (VLDRW gather, shifted offsets), summed, requantized, offset and
 * clamped (mcu_mve_output()), narrowed at the store; an output shift the vector requantization cannot take
 * (single rounding with a shift >= 0) per value in C. */
static void pm_add_table_run(const mcu_add_table_params *p, const int32_t *t1, const int32_t *t2, const int8_t *a,
                             const int8_t *b, int8_t *y, int32_t n, int32_t lo, int32_t hi)
{
    if (!mcu_mve_requant_vector_ok(&p->output_shift, 1))
    {
        for (int32_t k = 0; k < n; k++)
        {
            const int32_t v = mcu_requantize(t1[a[k]] + t2[b[k]], p->output_mult, p->output_shift) + p->output_offset;
            y[k] = (int8_t)MCU_CLAMP(v, lo, hi);
        }
        return;
    }
    /* t1, t2 point at the entry of value 0: the gathers take unsigned offsets from the tables' first entries */
    const int32_t bias1 = (int32_t)(t1 - p->input1_terms), bias2 = (int32_t)(t2 - p->input2_terms);
    const int32x4_t mo = vdupq_n_s32(p->output_mult), so = vdupq_n_s32(p->output_shift);
    const int32_t off = p->output_offset;
    for (int32_t k = 0; k < n; k += 4)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(n - k));
        const uint32x4_t i1 = vreinterpretq_u32_s32(vaddq_n_s32(vldrbq_z_s32(a + k, pred), bias1));
        const uint32x4_t i2 = vreinterpretq_u32_s32(vaddq_n_s32(vldrbq_z_s32(b + k, pred), bias2));
        const int32x4_t sum = vaddq_s32(vldrwq_gather_shifted_offset_z_s32(p->input1_terms, i1, pred),
                                        vldrwq_gather_shifted_offset_z_s32(p->input2_terms, i2, pred));
        vstrbq_p_s32(y + k, mcu_mve_output(sum, mo, so, off, lo, hi), pred);
    }
}

mcu_status mcu_add_table_mve_packed_s8(const mcu_context *ctx, const mcu_add_table_params *p, int32_t input1_bits,
                                       int32_t input2_bits, int32_t output_bits, const mcu_dims *input1_dims,
                                       const uint8_t *input1, const mcu_dims *input2_dims, const uint8_t *input2,
                                       const mcu_dims *output_dims, uint8_t *output)
{
    (void)ctx;
    return mcu_packed_add_table(p, input1_bits, input2_bits, output_bits, input1_dims, input1, input2_dims, input2,
                                output_dims, output, pm_add_unpack, pm_add_table_run, pm_add_pack);
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
