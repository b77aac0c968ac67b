/* Convolutions and their matrix core for MVE (Helium, Cortex-M55): VMLADAVA.S8 dot products of 16 int8,
 * 1 or 2 input rows x 4 output channels per block, the input zero-point term folded into the bias at compile
 * time (compiler/ops/mve_layout.py), requantization on vectors of 4 channels (mcunn_mve_support.h).
 * Compiled only with integer MVE; empty elsewhere. */
#include "mcunn_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <stddef.h>

#include "mcunn_mve_support.h"
#include "mcunn_mve_internal.h"

/* The full 16-blocks of the quad loop in assembly (only with optimisation: it needs 12 core registers, and gcc
 * at -O0 pins a frame pointer): gcc 12 keeps the 8 accumulators of the intrinsics loop in too few registers
 * and moves them around (22 instructions per block instead of 16). VMLADAVA accumulates into an even register
 * only: the accumulators take constraint "Te" (r0, r2, .., r12, lr), so the 2-row loop counts with SUBS/BNE,
 * not LE (which needs lr). */
#if defined(__OPTIMIZE__) && !defined(MCU_MVE_NO_ASM)
#define MCU_MVE_ASM 1
#else
#define MCU_MVE_ASM 0
#endif

/* Dot products of `rows` (1 or 2, constant at each instantiation) input rows x0, x1 of k int8 with the 4
 * weight rows of one quad (layout in mcunn_mve.h) at w: lanes j of *out0, *out1 for channel j. */
static inline __attribute__((always_inline)) void dot_quad(const int8_t *x0, const int8_t *x1, const int8_t *w,
                                                           int32_t k, int rows, int32x4_t *out0, int32x4_t *out1)
{
    int32_t a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
    const int32_t nb = k >> 4;
#if MCU_MVE_ASM
    /* full 16-blocks, then the tail of t = k % 16 (inputs and weights loaded under VCTP: lanes past t are 0; no
     * scalar instruction may sit inside a VPST block, hence one VPST per weight row) */
    /* one counter for blocks and tail (12 core registers, so that -O1 / -Og can allocate them): kk = bytes left
     * - 16, the loop runs while kk >= 0, the tail is kk + 16 */
    int32_t kk = k - 16;
    (void)nb;
    int8x16_t v0, v1, k0, k1;
    if (rows == 2)
    {
        __asm__ volatile("cmp %[kk], #0\n\t"
                         "blt 2f\n"
                         "1:\n\t"
                         "vldrb.8 %q[v0], [%[x0]], #16\n\t"
                         "vldrb.8 %q[k0], [%[w]], #16\n\t"
                         "vldrb.8 %q[v1], [%[x1]], #16\n\t"
                         "vmladava.s8 %[a00], %q[v0], %q[k0]\n\t"
                         "vldrb.8 %q[k1], [%[w]], #16\n\t"
                         "vmladava.s8 %[a10], %q[v1], %q[k0]\n\t"
                         "vmladava.s8 %[a01], %q[v0], %q[k1]\n\t"
                         "vldrb.8 %q[k0], [%[w]], #16\n\t"
                         "vmladava.s8 %[a11], %q[v1], %q[k1]\n\t"
                         "vmladava.s8 %[a02], %q[v0], %q[k0]\n\t"
                         "vldrb.8 %q[k1], [%[w]], #16\n\t"
                         "vmladava.s8 %[a12], %q[v1], %q[k0]\n\t"
                         "vmladava.s8 %[a03], %q[v0], %q[k1]\n\t"
                         "vmladava.s8 %[a13], %q[v1], %q[k1]\n\t"
                         "subs %[kk], %[kk], #16\n\t"
                         "bge 1b\n"
                         "2:\n\t"
                         "adds %[kk], %[kk], #16\n\t"
                         "beq 3f\n\t"
                         "vctp.8 %[kk]\n\t"
                         "vpstt\n\t"
                         "vldrbt.8 %q[v0], [%[x0]]\n\t"
                         "vldrbt.8 %q[v1], [%[x1]]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k0], [%[w]]\n\t"
                         "add %[w], %[w], %[kk]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k1], [%[w]]\n\t"
                         "add %[w], %[w], %[kk]\n\t"
                         "vmladava.s8 %[a00], %q[v0], %q[k0]\n\t"
                         "vmladava.s8 %[a10], %q[v1], %q[k0]\n\t"
                         "vmladava.s8 %[a01], %q[v0], %q[k1]\n\t"
                         "vmladava.s8 %[a11], %q[v1], %q[k1]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k0], [%[w]]\n\t"
                         "add %[w], %[w], %[kk]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k1], [%[w]]\n\t"
                         "vmladava.s8 %[a02], %q[v0], %q[k0]\n\t"
                         "vmladava.s8 %[a12], %q[v1], %q[k0]\n\t"
                         "vmladava.s8 %[a03], %q[v0], %q[k1]\n\t"
                         "vmladava.s8 %[a13], %q[v1], %q[k1]\n"
                         "3:\n"
                         : [a00] "+Te"(a00), [a01] "+Te"(a01), [a02] "+Te"(a02), [a03] "+Te"(a03),
                           [a10] "+Te"(a10), [a11] "+Te"(a11), [a12] "+Te"(a12), [a13] "+Te"(a13), [x0] "+r"(x0),
                           [x1] "+r"(x1), [w] "+r"(w), [kk] "+r"(kk), [v0] "=&w"(v0), [v1] "=&w"(v1), [k0] "=&w"(k0),
                           [k1] "=&w"(k1)
                         :
                         : "cc", "memory");
    }
    else
    {
        __asm__ volatile("cmp %[kk], #0\n\t"
                         "blt 2f\n"
                         "1:\n\t"
                         "vldrb.8 %q[v0], [%[x0]], #16\n\t"
                         "vldrb.8 %q[k0], [%[w]], #16\n\t"
                         "vldrb.8 %q[k1], [%[w]], #16\n\t"
                         "vmladava.s8 %[a00], %q[v0], %q[k0]\n\t"
                         "vldrb.8 %q[k0], [%[w]], #16\n\t"
                         "vmladava.s8 %[a01], %q[v0], %q[k1]\n\t"
                         "vldrb.8 %q[k1], [%[w]], #16\n\t"
                         "vmladava.s8 %[a02], %q[v0], %q[k0]\n\t"
                         "vmladava.s8 %[a03], %q[v0], %q[k1]\n\t"
                         "subs %[kk], %[kk], #16\n\t"
                         "bge 1b\n"
                         "2:\n\t"
                         "adds %[kk], %[kk], #16\n\t"
                         "beq 3f\n\t"
                         "vctp.8 %[kk]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[v0], [%[x0]]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k0], [%[w]]\n\t"
                         "add %[w], %[w], %[kk]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k1], [%[w]]\n\t"
                         "add %[w], %[w], %[kk]\n\t"
                         "vmladava.s8 %[a00], %q[v0], %q[k0]\n\t"
                         "vmladava.s8 %[a01], %q[v0], %q[k1]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k0], [%[w]]\n\t"
                         "add %[w], %[w], %[kk]\n\t"
                         "vpst\n\t"
                         "vldrbt.8 %q[k1], [%[w]]\n\t"
                         "vmladava.s8 %[a02], %q[v0], %q[k0]\n\t"
                         "vmladava.s8 %[a03], %q[v0], %q[k1]\n"
                         "3:\n"
                         : [a00] "+Te"(a00), [a01] "+Te"(a01), [a02] "+Te"(a02), [a03] "+Te"(a03), [x0] "+r"(x0),
                           [w] "+r"(w), [kk] "+r"(kk), [v0] "=&w"(v0), [k0] "=&w"(k0), [k1] "=&w"(k1)
                         :
                         : "cc", "memory");
        (void)v1;
    }
#else
    for (int32_t b = nb; b > 0; b--)
    {
        const int8x16_t v0 = vldrbq_s8(x0);
        const int8x16_t w0 = vldrbq_s8(w), w1 = vldrbq_s8(w + 16), w2 = vldrbq_s8(w + 32), w3 = vldrbq_s8(w + 48);
        x0 += 16;
        w += 64;
        a00 = vmladavaq_s8(a00, v0, w0);
        a01 = vmladavaq_s8(a01, v0, w1);
        a02 = vmladavaq_s8(a02, v0, w2);
        a03 = vmladavaq_s8(a03, v0, w3);
        if (rows == 2)
        {
            const int8x16_t v1 = vldrbq_s8(x1);
            x1 += 16;
            a10 = vmladavaq_s8(a10, v1, w0);
            a11 = vmladavaq_s8(a11, v1, w1);
            a12 = vmladavaq_s8(a12, v1, w2);
            a13 = vmladavaq_s8(a13, v1, w3);
        }
    }
    const int32_t t = k & 15;
    if (t)
    {
        /* the tail: the 4 rows' last t weights follow each other; lanes past t load 0 */
        const mve_pred16_t p = vctp8q((uint32_t)t);
        const int8x16_t v0 = vldrbq_z_s8(x0, p);
        const int8x16_t w0 = vldrbq_z_s8(w, p), w1 = vldrbq_z_s8(w + t, p), w2 = vldrbq_z_s8(w + 2 * t, p),
                        w3 = vldrbq_z_s8(w + 3 * t, p);
        a00 = vmladavaq_s8(a00, v0, w0);
        a01 = vmladavaq_s8(a01, v0, w1);
        a02 = vmladavaq_s8(a02, v0, w2);
        a03 = vmladavaq_s8(a03, v0, w3);
        if (rows == 2)
        {
            const int8x16_t v1 = vldrbq_z_s8(x1, p);
            a10 = vmladavaq_s8(a10, v1, w0);
            a11 = vmladavaq_s8(a11, v1, w1);
            a12 = vmladavaq_s8(a12, v1, w2);
            a13 = vmladavaq_s8(a13, v1, w3);
        }
    }
#endif
    *out0 = mcu_mve_lanes4(a00, a01, a02, a03);
    if (rows == 2)
    {
        *out1 = mcu_mve_lanes4(a10, a11, a12, a13);
    }
}

/* One weight row (natural order) against 1 or 2 input rows. */
static inline __attribute__((always_inline)) void dot_row(const int8_t *x0, const int8_t *x1, const int8_t *w,
                                                          int32_t k, int rows, int32_t *a0, int32_t *a1)
{
    int32_t s0 = 0, s1 = 0;
    for (int32_t i = 0; i < k; i += 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)(k - i));
        const int8x16_t wv = vldrbq_z_s8(w + i, p);
        s0 = vmladavaq_s8(s0, vldrbq_z_s8(x0 + i, p), wv);
        if (rows == 2)
        {
            s1 = vmladavaq_s8(s1, vldrbq_z_s8(x1 + i, p), wv);
        }
    }
    *a0 = s0;
    *a1 = s1;
}

#if MCU_SINGLE_ROUNDING
/* The output stage with mcu_requantize() per lane (single rounding with a shift >= 0: rare), out of line so that
 * its scalar code is in flash once; with double rounding the vector path is always exact and this is not built. */
__attribute__((noinline)) static void store_quad_scalar(int32x4_t acc0, int32x4_t acc1, int rows, const mcu_mve_mat *m,
                                                        int32_t c, int32_t n, int8_t *o0, int8_t *o1)
{
    const mve_pred16_t p = vctp32q((uint32_t)n);
    const int32x4_t lo = vdupq_n_s32(m->lo), hi = vdupq_n_s32(m->hi);
    acc0 = mcu_mve_requantize_scalar(acc0, m->mult + c, m->shift + c, n);
    vstrbq_p_s32(o0 + c, vminq_s32(vmaxq_s32(vaddq_n_s32(acc0, m->out_offset), lo), hi), p);
    if (rows == 2)
    {
        acc1 = mcu_mve_requantize_scalar(acc1, m->mult + c, m->shift + c, n);
        vstrbq_p_s32(o1 + c, vminq_s32(vmaxq_s32(vaddq_n_s32(acc1, m->out_offset), lo), hi), p);
    }
}
#endif

/* Output stage of n <= 4 channels c.. of 1 or 2 rows: folded bias added, requantized, offset, clamped and
 * stored at o0 + c, o1 + c (n lanes). */
static inline __attribute__((always_inline)) void store_quad(int32x4_t acc0, int32x4_t acc1, int rows,
                                                             const mcu_mve_mat *m, int32_t c, int32_t n,
                                                             int8_t *o0, int8_t *o1)
{
    const mve_pred16_t p = vctp32q((uint32_t)n);
    const int32x4_t mult = n == 4 ? vldrwq_s32(m->mult + c) : vldrwq_z_s32(m->mult + c, p);
    const int32x4_t shift = n == 4 ? vldrwq_s32(m->shift + c) : vldrwq_z_s32(m->shift + c, p);
    if (m->bias)
    {
        const int32x4_t b = n == 4 ? vldrwq_s32(m->bias + c) : vldrwq_z_s32(m->bias + c, p);
        acc0 = vaddq_s32(acc0, b);
        acc1 = vaddq_s32(acc1, b);
    }
#if MCU_SINGLE_ROUNDING
    if (!m->vector_ok)
    {
        store_quad_scalar(acc0, acc1, rows, m, c, n, o0, o1);
        return;
    }
#endif
    if (m->right_only)
    {
        const int32x4_t lo = vdupq_n_s32(m->lo), hi = vdupq_n_s32(m->hi);
        acc0 = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(acc0, mult, shift), m->out_offset), lo), hi);
        if (rows == 2)
        {
            acc1 = vminq_s32(vmaxq_s32(vaddq_n_s32(mcu_mve_requantize_right(acc1, mult, shift), m->out_offset), lo),
                             hi);
        }
    }
    else
    {
        acc0 = mcu_mve_output(acc0, mult, shift, m->out_offset, m->lo, m->hi);
        if (rows == 2)
        {
            acc1 = mcu_mve_output(acc1, mult, shift, m->out_offset, m->lo, m->hi);
        }
    }
    if (n == 4)
    {
        vstrbq_s32(o0 + c, acc0);
        if (rows == 2)
        {
            vstrbq_s32(o1 + c, acc1);
        }
    }
    else
    {
        vstrbq_p_s32(o0 + c, acc0, p);
        if (rows == 2)
        {
            vstrbq_p_s32(o1 + c, acc1, p);
        }
    }
}

/* The last 1-3 channels (natural rows from w) of input rows x0, x1 into o0, o1: out of line, once in flash; a
 * single row passes x1 = x0 and o1 = o0 (the same bytes computed twice, stored twice). */
__attribute__((noinline)) static void mat_rem(const mcu_mve_mat *m, const int8_t *x0, const int8_t *x1, int8_t *o0,
                                              int8_t *o1, const int8_t *w)
{
    const int32_t k = m->k, rem = m->cout & 3;
    /* gathered into one vector for the output stage */
    int32_t s0[4] = {0, 0, 0, 0}, s1[4] = {0, 0, 0, 0};
    for (int32_t j = 0; j < rem; j++)
    {
        dot_row(x0, x1, w + j * k, k, 2, &s0[j], &s1[j]);
    }
    store_quad(vld1q_s32(s0), vld1q_s32(s1), 2, m, m->cout & ~3, rem, o0, o1);
}

static inline __attribute__((always_inline)) void mat_rows(const mcu_mve_mat *m, const int8_t *x0, const int8_t *x1,
                                                           int8_t *o0, int8_t *o1, int rows)
{
    const int32_t k = m->k, quads = m->cout >> 2;
    const int8_t *w = m->weights;
    int32x4_t acc0, acc1 = vdupq_n_s32(0);
    for (int32_t q = 0; q < quads; q++)
    {
        dot_quad(x0, x1, w, k, rows, &acc0, &acc1);
        store_quad(acc0, acc1, rows, m, 4 * q, 4, o0, o1);
        w += 4 * k;
    }
    if (m->cout & 3)
    {
        mat_rem(m, x0, rows == 2 ? x1 : x0, o0, rows == 2 ? o1 : o0, w);
    }
}

void mcu_mve_mat_mult_rows(const mcu_mve_mat *m, const int8_t *const *rows, int32_t n, int8_t *out)
{
    int32_t i = 0;
    for (; i + 1 < n; i += 2)
    {
        mat_rows(m, rows[i], rows[i + 1], out + i * m->cout, out + (i + 1) * m->cout, 2);
    }
    if (i < n)
    {
        mat_rows(m, rows[i], rows[i], out + i * m->cout, out + i * m->cout, 1);
    }
}

void mcu_mve_mat_mult(const mcu_mve_mat *m, const int8_t *x0, const int8_t *x1, int8_t *o0, int8_t *o1)
{
    /* through mcu_mve_mat_mult_rows(): one copy of the matrix core in flash (3.5 KB less code) for a call per
     * two rows; every caller's o1 is o0 + C_out */
    const int8_t *rows[2] = {x0, x1};
    (void)o1;
    mcu_mve_mat_mult_rows(m, rows, x1 ? 2 : 1, o0);
}

/* n bytes from src to dst (n <= 16 in one predicated pair). */
static inline __attribute__((always_inline)) void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    for (int32_t i = 0; i < n; i += 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)(n - i));
        vstrbq_p_s8(dst + i, vldrbq_z_s8(src + i, p), p);
    }
}

static inline __attribute__((always_inline)) void fill_bytes(int8_t *dst, int8x16_t v, int32_t n)
{
    for (int32_t i = 0; i < n; i += 16)
    {
        vstrbq_p_s8(dst + i, v, vctp8q((uint32_t)(n - i)));
    }
}

/* The window of output pixel (oy, ox) as K contiguous bytes in dst: taps outside the input hold the zero
 * point (whose products cancel their share of the folded bias). */
static void im2col_pixel(const mcu_conv_params *cp, const mcu_dims *in_dims, const int8_t *in_b,
                         const mcu_dims *f_dims, int32_t oy, int32_t ox, int8_t *dst)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, cin = in_dims->c;
    const int32_t kh = f_dims->h, kw = f_dims->w;
    const int32_t y0 = oy * cp->stride.h - cp->padding.h, x0 = ox * cp->stride.w - cp->padding.w;
    const int32_t row = kw * cin, dil_w = cp->dilation.w;
    if (dil_w == 1 && cp->dilation.h == 1 && y0 >= 0 && x0 >= 0 && y0 + kh <= in_h && x0 + kw <= in_w)
    {
        /* inside the input (most windows): KH runs of KW * C_in bytes */
        const int8_t *src = in_b + (y0 * in_w + x0) * cin;
        const int32_t step = in_w * cin;
        if (row <= 16)
        {
            const mve_pred16_t p = vctp8q((uint32_t)row);
            for (int32_t ky = 0; ky < kh; ky++, dst += row, src += step)
            {
                vstrbq_p_s8(dst, vldrbq_z_s8(src, p), p);
            }
            return;
        }
        for (int32_t ky = 0; ky < kh; ky++, dst += row, src += step)
        {
            copy_bytes(dst, src, row);
        }
        return;
    }
    const int8x16_t zp = vdupq_n_s8((int8_t)(-cp->input_offset));
    /* the columns inside the input: kx in [kx_b, kx_e) */
    int32_t kx_b = 0, kx_e = kw;
    while (kx_b < kw && x0 + kx_b * dil_w < 0)
    {
        kx_b++;
    }
    while (kx_e > kx_b && x0 + (kx_e - 1) * dil_w >= in_w)
    {
        kx_e--;
    }
    for (int32_t ky = 0; ky < kh; ky++, dst += row)
    {
        const int32_t iy = y0 + ky * cp->dilation.h;
        if (iy < 0 || iy >= in_h || kx_b == kx_e)
        {
            fill_bytes(dst, zp, row);
            continue;
        }
        const int8_t *src = in_b + (iy * in_w + x0) * cin;
        if (dil_w == 1)
        {
            /* one run of (kx_e - kx_b) * cin bytes, zero points on either side */
            if (kx_b > 0 || kx_e < kw)
            {
                fill_bytes(dst, zp, row);
            }
            copy_bytes(dst + kx_b * cin, src + kx_b * cin, (kx_e - kx_b) * cin);
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++)
        {
            if (kx < kx_b || kx >= kx_e)
            {
                fill_bytes(dst + kx * cin, zp, cin);
            }
            else
            {
                copy_bytes(dst + kx * cin, src + kx * dil_w * cin, cin);
            }
        }
    }
}

static mcu_mve_mat mat_of(const int8_t *filter, const int32_t *bias, int32_t k, int32_t cout,
                          const mcu_per_channel_quant_params *q, int32_t out_offset, mcu_activation act)
{
    mcu_mve_mat m;
    m.weights = filter;
    m.bias = bias;
    m.mult = q->multiplier;
    m.shift = q->shift;
    m.k = k;
    m.cout = cout;
    m.out_offset = out_offset;
    m.lo = act.min;
    m.hi = act.max;
    m.vector_ok = mcu_mve_requant_vector_ok(q->shift, cout);
    m.right_only = mcu_mve_shifts_right_only(q->shift, cout);
    return m;
}

int32_t mcu_conv_1x1_mve_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims)
{
    (void)input_dims;
    (void)filter_dims;
    return 0;
}

mcu_status mcu_conv_1x1_mve_s8(const mcu_context *ctx,
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
    const int32_t in_h = input_dims->h, in_w = input_dims->w, cin = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, cout = output_dims->c;
    const int32_t sy = conv_params->stride.h, sx = conv_params->stride.w;
    const int32_t py = conv_params->padding.h, px = conv_params->padding.w;
    if (filter_dims->h != 1 || filter_dims->w != 1 || filter_dims->c != cin || filter_dims->n != cout ||
        conv_params->groups != 1 || py > 0 || px > 0 || out_h < 0 || out_w < 0 || sy < 1 || sx < 1)
    {
        return MCU_ARG_ERROR;
    }
    if (out_h > 0 && out_w > 0 && ((out_h - 1) * sy - py >= in_h || (out_w - 1) * sx - px >= in_w))
    {
        return MCU_ARG_ERROR;
    }
    const mcu_mve_mat m = mat_of(filter, bias, cin, cout, quant_params, conv_params->output_offset,
                                 conv_params->activation);
    const int32_t pixels = out_h * out_w;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * cin;
        int8_t *out_b = output + (int32_t)b * pixels * cout;
        /* the input rows of up to 32 output pixels, then one call: the matrix core's set-up once per chunk */
        const int8_t *rows[32];
        int32_t n = 0, first = 0;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int8_t *row = in_b + (oy * sy - py) * in_w * cin - px * cin;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                rows[n++] = row + ox * sx * cin;
                if (n == 32)
                {
                    mcu_mve_mat_mult_rows(&m, rows, n, out_b + first * cout);
                    first += n;
                    n = 0;
                }
            }
        }
        if (n)
        {
            mcu_mve_mat_mult_rows(&m, rows, n, out_b + first * cout);
        }
    }
    return MCU_OK;
}

int32_t mcu_conv_mve_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims)
{
    (void)input_dims;
    return 2 * filter_dims->h * filter_dims->w * filter_dims->c;
}

mcu_status mcu_conv_mve_s8(const mcu_context *ctx,
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
    const int32_t in_h = input_dims->h, in_w = input_dims->w, cin = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, cout = output_dims->c;
    const int32_t k = filter_dims->h * filter_dims->w * cin;
    if (filter_dims->c != cin || filter_dims->n != cout || conv_params->groups != 1 || out_h < 0 || out_w < 0 ||
        ctx == NULL || ctx->buf == NULL || ctx->size < mcu_conv_mve_get_buffer_size_s8(input_dims, filter_dims))
    {
        return MCU_ARG_ERROR;
    }
    int8_t *col0 = (int8_t *)ctx->buf, *col1 = col0 + k;
    const mcu_mve_mat m = mat_of(filter, bias, k, cout, quant_params, conv_params->output_offset,
                                 conv_params->activation);
    const int32_t pixels = out_h * out_w;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in_b = input + (int32_t)b * in_h * in_w * cin;
        int8_t *out_b = output + (int32_t)b * pixels * cout;
        int32_t oy = 0, ox = 0;
        for (int32_t i = 0; i < pixels; i += 2)
        {
            im2col_pixel(conv_params, input_dims, in_b, filter_dims, oy, ox, col0);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            int8_t *o0 = out_b + i * cout;
            if (i + 1 == pixels)
            {
                mcu_mve_mat_mult(&m, col0, NULL, o0, NULL);
                break;
            }
            im2col_pixel(conv_params, input_dims, in_b, filter_dims, oy, ox, col1);
            if (++ox == out_w)
            {
                ox = 0;
                oy++;
            }
            mcu_mve_mat_mult(&m, col0, col1, o0, o0 + cout);
        }
    }
    return MCU_OK;
}

#else
typedef int mcu_conv_mve_unused; /* ISO C: no empty translation unit */
#endif
