/* Convolutions on packed 4- / 2-bit feature maps with SIMD32 (DSP extension); arithmetic and layout in
 * mcunn_packed.h.
 *
 * Sub-byte values are unpacked at the load stage, straight into the int16 lanes SMLAD multiplies, with the
 * input offset added in the same instruction: XOR with 0x8888 (0xAA for 2 bits) turns each two's complement
 * field f into the unsigned f + 2^(b-1), OR-ing the value with itself shifted moves fields 0 and 2 into bytes
 * 0 and 2 (mask) and fields 1 and 3 one field-width above (shift, mask), and SXTAB16 adds both to the halfword
 * pair (input_offset - 2^(b-1)), once per pixel window (convolution; kernel rows as runs, 8 fields per load),
 * never into an int8 copy of the map; the depthwise unpacks two taps per word straight into SMLAD's lane pairs
 * (PK_DW_PAIRS_*_ASM). The MAC loops are mcu_conv_dsp_s8()'s and mcu_dwconv_dsp_s8()'s, on the same
 * compile-time weight layouts (compiler/ops/fast_layout.py); a sub-byte output clamped to its whole range is
 * requantized and packed in registers (pk_store_sat; any shift in [-23, 30]), others go through mcu_dsp_store_pairs() into int8 lanes
 * on the stack, then packed. */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"
#include "mcunn_conv_dsp_pair.h"
#include "mcunn_packed.h"
#include "mcunn_packed_entry.h"
#include "mcunn_packed_support.h"

#define PK_ROUND4(x) (((x) + 3) & ~3)
#define PK_CHUNK 32 /* output channels per chunk: a multiple of 2 and of every values-per-byte */

static int pk_bits_ok(int32_t bits)
{
    return bits == 8 || bits == 4 || bits == 2;
}

/* Channels c..c+3 of a pixel at `bits` as int16 lanes with the input offset added: *e = (x0, x2), *o = (x1, x3).
 * off_b = mcu_dup16(input_offset - 2^(bits-1)) for packed bits, mcu_dup16(input_offset) for 8. */
static inline __attribute__((always_inline)) void pk_lanes4(const uint8_t *px, int32_t c, int32_t bits,
                                                            int32_t off_b, int32_t *e, int32_t *o)
{
    if (bits == 4)
    {
        uint16_t raw;
        memcpy(&raw, px + (c >> 1), sizeof(raw)); /* one LDRH (unaligned allowed on M4 / M7 / M55) */
        const uint32_t h = (uint32_t)raw ^ 0x8888u;
        const uint32_t t = h | (h << 8); /* fields 0, 1 in byte 0, fields 2, 3 in byte 2 */
        *e = mcu_sxtab16(off_b, (int32_t)(t & 0x000F000Fu));
        *o = mcu_sxtab16(off_b, (int32_t)((t >> 4) & 0x000F000Fu));
    }
    else if (bits == 2)
    {
        const uint32_t u = (uint32_t)px[c >> 2] ^ 0xAAu;
        const uint32_t t = u | (u << 12); /* fields 0, 1 in byte 0, fields 2, 3 in byte 2 */
        *e = mcu_sxtab16(off_b, (int32_t)(t & 0x00030003u));
        *o = mcu_sxtab16(off_b, (int32_t)((t >> 2) & 0x00030003u));
    }
    else
    {
        const int32_t x = mcu_read_s8x4((const int8_t *)px + c);
        *e = mcu_sxtab16(off_b, x);
        *o = mcu_sxtab16_ror8(off_b, x);
    }
}

static inline int32_t pk_offset_lanes(int32_t input_offset, int32_t bits)
{
    return mcu_dup16(bits == 8 ? input_offset : input_offset - (1 << (bits - 1)));
}

/* ---------------------------------------------------------------------------------------------------------
 * General convolution: the windows of two pixels interleaved per 4-block as mcu_conv_dsp_s8()'s
 * ({a01, a23, b01, b23}), int16 with the input offset added, taps outside and the K4 padding 0.
 * ------------------------------------------------------------------------------------------------------ */

typedef struct
{
    const mcu_conv_params *cp;
    const mcu_dims *in, *filter, *out;
    const uint8_t *input;
    int32_t bits, in_px, k4, off_b;
    int32_t off_8;           /* mcu_dup16(input_offset): the lanes of the gathered int8 stage */
    int32_t *cols_end;       /* past the two windows: the int8 stage of a gathered window (C_in % 4) */
} pk_window;

/* The cin values of one packed pixel as int8 (the gathered window's stage). */
static inline __attribute__((always_inline)) void pk_gather(int8_t *dst, const uint8_t *px, int32_t cin,
                                                            int32_t bits)
{
    for (int32_t c = 0; c < cin; c++)
    {
        dst[c] = (int8_t)mcu_packed_get(px, c, bits);
    }
}

/* The cin (a multiple of 4) channels of one pixel as widened blocks of the interleaved windows at dst (4 words
 * per block, this pixel's 2); returns dst past them. */
static inline __attribute__((always_inline)) int32_t *pk_widen_run(int32_t *dst, const uint8_t *px, int32_t cin,
                                                                   int32_t bits, int32_t off_b, int wide)
{
    int32_t c = 0;
    /* wide (a constant per call site): 8 fields per load, for the row runs; the pixel-by-pixel callers keep the
     * smaller loop (measured: on runs of 8 values the halfword loop below is cheaper) */
    if (wide && bits == 4 && cin >= 16)
    {
        /* 8 fields per word (two blocks): 17 instructions where two halfwords take 24 */
        for (; c + 8 <= cin; c += 8, dst += 8)
        {
            uint32_t raw;
            memcpy(&raw, px + (c >> 1), sizeof(raw)); /* one LDR (unaligned allowed) */
            const uint32_t x = raw ^ 0x88888888u;
            const int32_t ev = (int32_t)(x & 0x0F0F0F0Fu), od = (int32_t)((x >> 4) & 0x0F0F0F0Fu);
            const int32_t e04 = mcu_sxtab16(off_b, ev), e26 = mcu_sxtab16_ror8(off_b, ev); /* (x0, x4), (x2, x6) */
            const int32_t o15 = mcu_sxtab16(off_b, od), o37 = mcu_sxtab16_ror8(off_b, od); /* (x1, x5), (x3, x7) */
            dst[0] = mcu_pkhbt16(e04, o15);
            dst[1] = mcu_pkhbt16(e26, o37);
            dst[4] = mcu_pkhtb16(o15, e04);
            dst[5] = mcu_pkhtb16(o37, e26);
        }
    }
    else if (wide && bits == 2 && cin >= 16)
    {
        /* 8 fields per halfword, spread so that each AND leaves two consecutive ones in the lanes: 18
         * instructions where two bytes take 24 */
        for (; c + 8 <= cin; c += 8, dst += 8)
        {
            uint16_t raw;
            memcpy(&raw, px + (c >> 2), sizeof(raw));
            const uint32_t x = (uint32_t)raw ^ 0xAAAAu;
            const uint32_t t = x | (x << 14); /* fields 2k at bit 4k, 2k + 1 at bit 16 + 4k */
            dst[0] = mcu_sxtab16(off_b, (int32_t)(t & 0x00030003u));
            dst[1] = mcu_sxtab16(off_b, (int32_t)((t >> 4) & 0x00030003u));
            dst[4] = mcu_sxtab16(off_b, (int32_t)((t >> 8) & 0x00030003u));
            dst[5] = mcu_sxtab16(off_b, (int32_t)((t >> 12) & 0x00030003u));
        }
    }
    for (; c < cin; c += 4, dst += 4)
    {
        int32_t e, o;
        pk_lanes4(px, c, bits, off_b, &e, &o);
        dst[0] = mcu_pkhbt16(e, o);
        dst[1] = mcu_pkhtb16(o, e);
    }
    return dst;
}

/* The window of a C_in % 4 == 0 layer with dilation 1 and KW > 1: each kernel row's columns inside the image
 * are one contiguous run of whole bytes, unpacked in one pass between zeros (out of line: the pixel-by-pixel
 * path of pk_im2col() keeps its registers) */
static void __attribute__((noinline)) pk_im2col_rows(int32_t *dst, const pk_window *w, const uint8_t *in_b,
                                                     int32_t y0, int32_t x0)
{
    const mcu_conv_params *cp = w->cp;
    const int32_t cin = w->in->c, kh = w->filter->h, kw = w->filter->w;
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int32_t iy = y0 + ky * cp->dilation.h;
        const int row_inside = iy >= 0 && iy < w->in->h;
        /* the kernel row's columns inside the image are one contiguous run of whole bytes (C_in % 4 == 0):
         * zeros, one unpacking run, zeros */
        int32_t kx_b = kw, kx_e = kw;
        if (row_inside)
        {
            kx_b = x0 < 0 ? -x0 : 0;
            kx_e = w->in->w - x0 < kw ? w->in->w - x0 : kw;
            kx_b = kx_b > kw ? kw : kx_b;
            kx_e = kx_e < kx_b ? kx_b : kx_e;
        }
        for (int32_t c = 0; c < kx_b * cin; c += 4, dst += 4)
        {
            dst[0] = 0;
            dst[1] = 0;
        }
        const int32_t n = (kx_e - kx_b) * cin;
        if (n > 0)
        {
            const uint8_t *px = in_b + (iy * w->in->w + x0 + kx_b) * w->in_px;
            if (w->bits == 4)
            {
                dst = pk_widen_run(dst, px, n, 4, w->off_b, 1);
            }
            else if (w->bits == 2)
            {
                dst = pk_widen_run(dst, px, n, 2, w->off_b, 1);
            }
            else
            {
                dst = pk_widen_run(dst, px, n, 8, w->off_b, 1);
            }
        }
        for (int32_t c = kx_e * cin; c < kw * cin; c += 4, dst += 4)
        {
            dst[0] = 0;
            dst[1] = 0;
        }
    }
}

static void pk_im2col(int32_t *cols, int32_t q, const pk_window *w, int32_t p)
{
    const mcu_conv_params *cp = w->cp;
    const int32_t cin = w->in->c, kh = w->filter->h, kw = w->filter->w;
    const int32_t ox = p % w->out->w, rest = p / w->out->w;
    const int32_t oy = rest % w->out->h, b = rest / w->out->h;
    const int32_t y0 = oy * cp->stride.h - cp->padding.h, x0 = ox * cp->stride.w - cp->padding.w;
    const uint8_t *in_b = w->input + b * w->in->h * w->in->w * w->in_px;
    if ((cin & 3) == 0 && cp->dilation.w == 1 && kw > 1)
    {
        pk_im2col_rows(cols + 2 * q, w, in_b, y0, x0);
        return;
    }
    if ((cin & 3) == 0)
    {
        /* every 4-block lies in one pixel and starts on a whole byte: unpacked straight into lanes */
        int32_t *dst = cols + 2 * q;
        for (int32_t ky = 0; ky < kh; ky++)
        {
            const int32_t iy = y0 + ky * cp->dilation.h;
            const int row_inside = iy >= 0 && iy < w->in->h;
            for (int32_t kx = 0; kx < kw; kx++)
            {
                const int32_t ix = x0 + kx * cp->dilation.w;
                if (!row_inside || ix < 0 || ix >= w->in->w)
                {
                    for (int32_t c = 0; c < cin; c += 4, dst += 4)
                    {
                        dst[0] = 0;
                        dst[1] = 0;
                    }
                    continue;
                }
                const uint8_t *px = in_b + (iy * w->in->w + ix) * w->in_px;
                if (w->bits == 4)
                {
                    dst = pk_widen_run(dst, px, cin, 4, w->off_b, 0);
                }
                else if (w->bits == 2)
                {
                    dst = pk_widen_run(dst, px, cin, 2, w->off_b, 0);
                }
                else
                {
                    dst = pk_widen_run(dst, px, cin, 8, w->off_b, 0);
                }
            }
        }
        return;
    }
    /* C_in not a multiple of 4 (first layers): the window gathered as int8 values into the stage (k4 bytes past
     * the two windows), skipped taps and the padding to k4 holding the zero point (they widen to 0), then widened
     * in one pass as an int8 run, as mcu_conv_dsp_s8() does; the width a constant in each gathering copy */
    int8_t *stage = (int8_t *)(w->cols_end);
    const int8_t zp = (int8_t)(-cp->input_offset);
    memset(stage, zp, (size_t)w->k4);
    for (int32_t ky = 0, i = 0; ky < kh; ky++)
    {
        const int32_t iy = y0 + ky * cp->dilation.h;
        const int row_inside = iy >= 0 && iy < w->in->h;
        if (w->bits == 8 && cp->dilation.w == 1)
        {
            /* int8: the kernel row's columns inside the image are one contiguous run of bytes */
            if (row_inside)
            {
                int32_t kx_b = x0 < 0 ? -x0 : 0, kx_e = w->in->w - x0 < kw ? w->in->w - x0 : kw;
                kx_b = kx_b > kw ? kw : kx_b;
                kx_e = kx_e < kx_b ? kx_b : kx_e;
                const int8_t *src = (const int8_t *)in_b + (iy * w->in->w + x0 + kx_b) * cin;
                int8_t *dst = stage + i + kx_b * cin;
                for (int32_t k = 0; k < (kx_e - kx_b) * cin; k++)
                {
                    dst[k] = src[k];
                }
            }
            i += kw * cin;
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++, i += cin)
        {
            const int32_t ix = x0 + kx * cp->dilation.w;
            if (!row_inside || ix < 0 || ix >= w->in->w)
            {
                continue;
            }
            const uint8_t *px = in_b + (iy * w->in->w + ix) * w->in_px;
            if (w->bits == 8)
            {
                memcpy(stage + i, px, (size_t)cin);
            }
            else if (w->bits == 4)
            {
                pk_gather(stage + i, px, cin, 4);
            }
            else
            {
                pk_gather(stage + i, px, cin, 2);
            }
        }
    }
    pk_widen_run(cols + 2 * q, (const uint8_t *)stage, w->k4, 8, w->off_8, 0);
}

typedef struct
{
    const int32_t *bias, *multiplier, *shift;
    int32_t cout, blocks, out_offset, lo, hi, bits, full, foldable;
    /* packed output clamped to its whole width's range, requantized in registers (pk_store_sat, one SSAT #bits):
     * 1 every shift foldable, 2 some in [-1, 30] (double rounding, all in [-23, 30]), 0 neither (int8 staging) */
    int32_t sat;
} pk_out;

#if MCU_DSP_ASM
/* One channel of both pixels: its constants, then each accumulator requantized as mcu_dsp_store_pairs()'s
 * foldable full-range path (the output offset in the rounding addend), saturated to BITS with one SSAT and
 * inserted into q at LSB_A (pixel a) and LSB_B (pixel b) with BFI: 21 instructions for 2 outputs. */
#define PK_SAT_LOADS                                                                                            \
    "ldr %[m], [%[pm]], #4\n\t"                                                                                 \
    "ldr %[rm1], [%[ps]], #4\n\t"
#define PK_SAT_FOLDED(BITS, LSB_A, LSB_B)                                                                       \
    "mvn %[rm1], %[rm1]\n\t"                                                                                    \
    "sub %[x], %[rm1], #1\n\t"                                                                                  \
    "lsl %[rh], %[oo2], %[x]\n\t"                                                                               \
    "ldr %[x], [%[acc]], #4\n\t"                                                                                \
    MCU_DSP_ROUND_WORDS("l", "h", "rh", "x")                                                                    \
    "smlal %[l], %[h], %[x], %[m]\n\t"                                                                          \
    "asr %[h], %[h], %[rm1]\n\t"                                                                                \
    "ssat %[h], #" BITS ", %[h]\n\t"                                                                            \
    "bfi %[q], %[h], #" LSB_A ", #" BITS "\n\t"                                                                 \
    "ldr %[x], [%[acc]], #4\n\t"                                                                                \
    MCU_DSP_ROUND_WORDS("l", "h", "rh", "x")                                                                    \
    "smlal %[l], %[h], %[x], %[m]\n\t"                                                                          \
    "asr %[h], %[h], %[rm1]\n\t"                                                                                \
    "ssat %[h], #" BITS ", %[h]\n\t"                                                                            \
    "bfi %[q], %[h], #" LSB_B ", #" BITS "\n\t"
#define PK_SAT_CHANNEL(BITS, LSB_A, LSB_B) PK_SAT_LOADS PK_SAT_FOLDED(BITS, LSB_A, LSB_B)

#if !MCU_SINGLE_ROUNDING
/* One accumulator at shift -1 (right 1, mcu_dsp_requantize()): the addend 2^30 + 2^31 - [x < 0] 2^31 is all in
 * the low word (0xC0000000, or 0x40000000 for a negative x), the result is the high word; then the output offset
 * (oo2 >> 1) and SSAT. */
#define PK_SAT_R1(BITS, LSB)                                                                                    \
    "ldr %[x], [%[acc]], #4\n\t"                                                                                \
    "and %[l], %[x], #0x80000000\n\t"                                                                           \
    "eor %[l], %[l], #0xC0000000\n\t"                                                                           \
    "mov %[h], #0\n\t"                                                                                          \
    "smlal %[l], %[h], %[x], %[m]\n\t"                                                                          \
    "add %[h], %[h], %[oo2], asr #1\n\t"                                                                        \
    "ssat %[h], #" BITS ", %[h]\n\t"                                                                            \
    "bfi %[q], %[h], #" LSB ", #" BITS "\n\t"
/* One accumulator at shift s >= 0 (left s, right 0): x << s (wrapping, as mcu_dsp_requantize()), + 2^30, the
 * 64-bit sum shifted right by 31 (the high word's low 31 bits and the low word's bit 31). */
#define PK_SAT_L(BITS, LSB)                                                                                     \
    "ldr %[x], [%[acc]], #4\n\t"                                                                                \
    "lsl %[x], %[x], %[rm1]\n\t"                                                                                \
    "mov %[l], #0x40000000\n\t"                                                                                 \
    "mov %[h], #0\n\t"                                                                                          \
    "smlal %[l], %[h], %[x], %[m]\n\t"                                                                          \
    "lsl %[h], %[h], #1\n\t"                                                                                    \
    "orr %[h], %[h], %[l], lsr #31\n\t"                                                                         \
    "add %[h], %[h], %[oo2], asr #1\n\t"                                                                        \
    "ssat %[h], #" BITS ", %[h]\n\t"                                                                            \
    "bfi %[q], %[h], #" LSB ", #" BITS "\n\t"
/* PK_SAT_CHANNEL for any shift in [-23, 30]: shifts <= -2 take the folded path, -1 and >= 0 their own (2 more
 * instructions per channel on the folded path: the compare and the branch over the others). */
#define PK_SAT_CHANNEL_ANY(BITS, LSB_A, LSB_B)                                                                  \
    PK_SAT_LOADS                                                                                                \
    "cmn %[rm1], #1\n\t"                                                                                        \
    "bge 2f\n\t"                                                                                                \
    PK_SAT_FOLDED(BITS, LSB_A, LSB_B)                                                                           \
    "b 3f\n\t"                                                                                                  \
    "2:\n\t"                                                                                                    \
    "bgt 4f\n\t"                                                                                                \
    PK_SAT_R1(BITS, LSB_A) PK_SAT_R1(BITS, LSB_B)                                                               \
    "b 3f\n\t"                                                                                                  \
    "4:\n\t"                                                                                                    \
    PK_SAT_L(BITS, LSB_A) PK_SAT_L(BITS, LSB_B)                                                                 \
    "3:\n\t"
#endif

/* q's low byte is pixel a's packed byte, its third byte pixel b's; the byte count lives on the stack (13
 * registers are taken): 4 instructions per byte of each pixel */
#define PK_SAT_LOOP(CHANNELS)                                                                                   \
    __asm__ volatile("1:\n\t"                                                                                 \
                     CHANNELS                                                                                  \
                     "strb %[q], [%[o0]], #1\n\t"                                                              \
                     "lsr %[q], %[q], #16\n\t"                                                                 \
                     "strb %[q], [%[o1]], #1\n\t"                                                              \
                     "ldr %[x], %[n]\n\t"                                                                      \
                     "subs %[x], %[x], #1\n\t"                                                                 \
                     "str %[x], %[n]\n\t"                                                                      \
                     "bne 1b\n\t"                                                                              \
                     : [acc] "+r"(acc), [pm] "+r"(mult), [ps] "+r"(shift), [o0] "+r"(out_a), [o1] "+r"(out_b),  \
                       [n] "+m"(bytes), [m] "=&r"(m), [rm1] "=&r"(rm1), [rh] "=&r"(rh), [x] "=&r"(x),           \
                       [l] "=&r"(l), [h] "=&r"(h), [q] "=&r"(q)                                                \
                     : [oo2] "r"(oo2)                                                                          \
                     : "cc", "memory")

/* The whole bytes of a packed output chunk (bits 4 or 2, `bytes` > 0 of them, the clamp the width's own range)
 * requantized and packed straight from the interleaved accumulators: no int8 staging. `any` (double rounding
 * only): some shift lies in [-1, 30] (every one in [-23, 30]), each channel branches on its shift; else every shift
 * is foldable. */
static void __attribute__((noinline)) pk_store_sat(const int32_t *acc, int32_t bytes, const int32_t *mult,
                                                   const int32_t *shift, int32_t out_offset, int32_t bits,
                                                   int any, uint8_t *out_a, uint8_t *out_b)
{
    const int32_t oo2 = 1 + 2 * out_offset;
    int32_t m, rm1, rh, x, l, h, q;
#if !MCU_SINGLE_ROUNDING
    if (any)
    {
        if (bits == 4)
        {
            PK_SAT_LOOP(PK_SAT_CHANNEL_ANY("4", "0", "16") PK_SAT_CHANNEL_ANY("4", "4", "20"));
        }
        else
        {
            PK_SAT_LOOP(PK_SAT_CHANNEL_ANY("2", "0", "16") PK_SAT_CHANNEL_ANY("2", "2", "18")
                            PK_SAT_CHANNEL_ANY("2", "4", "20") PK_SAT_CHANNEL_ANY("2", "6", "22"));
        }
        return;
    }
#else
    (void)any;
#endif
    if (bits == 4)
    {
        PK_SAT_LOOP(PK_SAT_CHANNEL("4", "0", "16") PK_SAT_CHANNEL("4", "4", "20"));
    }
    else
    {
        PK_SAT_LOOP(PK_SAT_CHANNEL("2", "0", "16") PK_SAT_CHANNEL("2", "2", "18") PK_SAT_CHANNEL("2", "4", "20")
                        PK_SAT_CHANNEL("2", "6", "22"));
    }
}
#endif

/* Requantizes a chunk of n channels of two pixels (acc interleaved) and stores it at channel c0 of both. */
static inline __attribute__((always_inline)) void pk_store(const pk_out *o, const int32_t *acc, int32_t c0,
                                                           int32_t n, uint8_t *out_a, uint8_t *out_b)
{
    if (o->bits == 8)
    {
        mcu_dsp_store_pairs(acc, n, o->multiplier + c0, o->shift + c0, o->out_offset, o->lo, o->hi,
                            (int8_t *)out_a + c0, (int8_t *)out_b + c0, o->full, o->foldable);
        return;
    }
    int32_t at = c0 * o->bits / 8;
#if MCU_DSP_ASM
    if (o->sat)
    {
        /* whole bytes packed in registers; a last partial byte (C not a multiple of 8 / bits) as below */
        const int32_t per_byte = 8 / o->bits, bytes = n / per_byte;
        if (bytes > 0)
        {
            pk_store_sat(acc, bytes, o->multiplier + c0, o->shift + c0, o->out_offset, o->bits, o->sat == 2,
                         out_a + at, out_b + at);
            acc += 2 * bytes * per_byte;
            c0 += bytes * per_byte;
            n -= bytes * per_byte;
            at += bytes;
        }
        if (n == 0)
        {
            return;
        }
    }
#endif
    int8_t va[PK_CHUNK], vb[PK_CHUNK];
    mcu_dsp_store_pairs(acc, n, o->multiplier + c0, o->shift + c0, o->out_offset, o->lo, o->hi, va, vb, 0,
                        o->foldable);
    mcu_packed_store(va, n, o->bits, out_a + at);
    mcu_packed_store(vb, n, o->bits, out_b + at);
}

/* Every output channel of the pixel pair whose windows are in cols (mcu_conv_dsp_s8()'s conv_pair, with its MAC
 * loop: mcunn_conv_dsp_pair.h). */
static void __attribute__((noinline)) pk_conv_pair(const pk_out *o, const int32_t *cols, const int8_t *w,
                                                   uint8_t *out_a, uint8_t *out_b)
{
    const int32_t blocks = o->blocks; /* read once: the MAC loop's asm clobbers memory */
    int32_t acc[2 * PK_CHUNK];
    for (int32_t c0 = 0; c0 < o->cout; c0 += PK_CHUNK)
    {
        const int32_t n = o->cout - c0 < PK_CHUNK ? o->cout - c0 : PK_CHUNK;
        w = mcu_conv_dsp_pair_macs(cols, blocks, w, o->bias ? o->bias + c0 : NULL, n, acc);
        pk_store(o, acc, c0, n, out_a, out_b);
    }
}

int32_t mcu_conv_dsp_get_buffer_size_packed(const mcu_dims *input_dims, const mcu_dims *filter_dims,
                                            int32_t output_bits)
{
    (void)output_bits; /* the packed output is staged on the stack, a chunk at a time */
    const int32_t k4 = PK_ROUND4(filter_dims->h * filter_dims->w * input_dims->c);
    /* two int16 windows, and k4 bytes to gather a window when C_in is not a multiple of 4 */
    return 2 * k4 * (int32_t)sizeof(int16_t) + (input_dims->c & 3 ? k4 : 0);
}

/* 1 when every shift[j], j < n, is in [lo, hi]. */
static int pk_shifts_in(const int32_t *shift, int32_t n, int32_t lo, int32_t hi)
{
    for (int32_t j = 0; j < n; j++)
    {
        if (shift[j] < lo || shift[j] > hi)
        {
            return 0;
        }
    }
    return 1;
}

static pk_out pk_out_of(int32_t bits, int32_t out_offset, const mcu_activation *act,
                        const mcu_per_channel_quant_params *q, const int32_t *bias, int32_t cout, int32_t blocks)
{
    pk_out o;
    o.bias = bias;
    o.multiplier = q->multiplier;
    o.shift = q->shift;
    o.cout = cout;
    o.blocks = blocks;
    o.out_offset = out_offset;
    mcu_packed_range(bits, act->min, act->max, &o.lo, &o.hi);
    o.bits = bits;
    o.full = o.lo == -128 && o.hi == 127;
    o.foldable = mcu_dsp_shifts_foldable(q->shift, cout);
    o.sat = 0;
    if (bits < 8 && o.lo == -(1 << (bits - 1)) && o.hi == (1 << (bits - 1)) - 1)
    {
        o.sat = o.foldable ? 1 : !MCU_SINGLE_ROUNDING && pk_shifts_in(q->shift, cout, -23, 30) ? 2 : 0;
    }
    return o;
}

static mcu_status conv_dsp_packed(int32_t in_bits, const mcu_context *ctx, const mcu_conv_params *cp,
                                  const mcu_per_channel_quant_params *q, int32_t out_bits, const mcu_dims *in,
                                  const uint8_t *input, const mcu_dims *filt, const int8_t *filter,
                                  const int32_t *bias, const mcu_dims *out, uint8_t *output)
{
    const int32_t cin = in->c, cout = out->c;
    if (!pk_bits_ok(in_bits) || !pk_bits_ok(out_bits) || cp->groups != 1 || filt->c != cin || filt->n != cout)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_conv_dsp_get_buffer_size_packed(in, filt, out_bits))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t k4 = PK_ROUND4(filt->h * filt->w * cin);
    int32_t *cols = (int32_t *)ctx->buf;
    const pk_window win = {cp, in, filt, out, input, in_bits, mcu_packed_pixel_bytes(cin, in_bits), k4,
                           pk_offset_lanes(cp->input_offset, in_bits), mcu_dup16(cp->input_offset), cols + k4};
    const pk_out o = pk_out_of(out_bits, cp->output_offset, &cp->activation, q, bias, cout, k4 / 4);
    const int32_t out_px = mcu_packed_pixel_bytes(cout, out_bits);
    const int32_t pixels = in->n * out->h * out->w;
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t has_b = p + 1 < pixels;
        pk_im2col(cols, 0, &win, p);
        /* a last single pixel is computed twice and stored twice at the same place */
        pk_im2col(cols, 1, &win, has_b ? p + 1 : p);
        uint8_t *out_a = output + p * out_px, *out_b = has_b ? out_a + out_px : out_a;
        pk_conv_pair(&o, cols, filter, out_a, out_b);
    }
    return MCU_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Scratch-free convolution (mcu_conv_lean_dsp_a*w8_s8): groups 1, C_in a multiple of 4, up to
 * MCU_CONV_LEAN_DSP_MAX_TAPS taps, no im2col. Per output pixel, 4 output channels at a time over its taps, each
 * 4-block of the window is unpacked at the load stage straight into the two lane words SMLAD multiplies: a
 * sub-byte input as offset binary x + 2^(b-1) in natural pairs (x0, x1), (x2, x3) (one LDRB / LDRH, ORR of the
 * value with itself shifted, EOR, LSR, two AND), against "quads, swapped" weights; an int8 input as SXTB16's
 * (x0, x2), (x1, x3) against "quads" in natural order. The input offset (less 2^(b-1)) is folded into the bias
 * at compile time; taps outside the input read a pixel of zero points on the stack (their products cancel the
 * folded share). A block is unpacked again for every 4 output channels, the price of no scratch: 28
 * instructions per 16 MACs at 4 / 2 bits, 25 at 8, against ~19 + the im2col pass of mcu_conv_dsp_a*w8_s8().
 * ------------------------------------------------------------------------------------------------------ */

/* The two lane words of the 4-block at p (C version of the assembly below; the host's path). */
static inline __attribute__((always_inline)) void pk_lean_lanes(const uint8_t *p, int32_t bits, int32_t *l0,
                                                                int32_t *l1)
{
    if (bits == 2)
    {
        /* fields 0, 1 at bits 0 and 16, fields 2, 3 at 4 and 20; EOR flips each field's sign bit */
        uint32_t x = p[0];
        x = (x | (x << 14)) ^ 0x00220022u;
        *l0 = (int32_t)(x & 0x00030003u);
        *l1 = (int32_t)((x >> 4) & 0x00030003u);
    }
    else if (bits == 4)
    {
        /* fields 0, 1 at bits 0 and 16, fields 2, 3 at 8 and 24 */
        uint16_t raw;
        memcpy(&raw, p, sizeof(raw));
        uint32_t x = raw;
        x = (x | (x << 12)) ^ 0x08080808u;
        *l0 = (int32_t)(x & 0x000F000Fu);
        *l1 = (int32_t)((x >> 8) & 0x000F000Fu);
    }
    else
    {
        const int32_t x = mcu_read_s8x4((const int8_t *)p);
        *l0 = mcu_sxtb16(x);
        *l1 = mcu_sxtb16_ror8(x);
    }
}

#if MCU_DSP_ASM
#define PK_LEAN_UNPACK_A2                                                                                       \
    "ldrb %[l0], [%[p]], #1\n\t"                                                                                \
    "orr %[l0], %[l0], %[l0], lsl #14\n\t"                                                                      \
    "eor %[l0], %[l0], #0x00220022\n\t"                                                                         \
    "lsr %[l1], %[l0], #4\n\t"                                                                                  \
    "and %[l0], %[l0], #0x00030003\n\t"                                                                         \
    "and %[l1], %[l1], #0x00030003\n\t"
#define PK_LEAN_UNPACK_A4                                                                                       \
    "ldrh %[l0], [%[p]], #2\n\t"                                                                                \
    "orr %[l0], %[l0], %[l0], lsl #12\n\t"                                                                      \
    "eor %[l0], %[l0], #0x08080808\n\t"                                                                         \
    "lsr %[l1], %[l0], #8\n\t"                                                                                  \
    "and %[l0], %[l0], #0x000F000F\n\t"                                                                         \
    "and %[l1], %[l1], #0x000F000F\n\t"
#define PK_LEAN_UNPACK_A8                                                                                       \
    "ldr %[l1], [%[p]], #4\n\t"                                                                                 \
    "sxtb16 %[l0], %[l1]\n\t"                                                                                   \
    "sxtb16 %[l1], %[l1], ror #8\n\t"
/* One output channel's 4 weights (one word) against the block's lanes. */
#define PK_LEAN_CHANNEL(ACC)                                                                                    \
    "ldr %[t], [%[w]], #4\n\t"                                                                                  \
    "sxtb16 %[u], %[t]\n\t"                                                                                     \
    "smlad %[" ACC "], %[l0], %[u], %[" ACC "]\n\t"                                                            \
    "sxtb16 %[u], %[t], ror #8\n\t"                                                                             \
    "smlad %[" ACC "], %[l1], %[u], %[" ACC "]\n\t"
/* The nb blocks of one tap at p for 4 channels (their 16 weight bytes a block at w): 11 registers. */
#define PK_LEAN_TAP_ASM(UNPACK)                                                                                 \
    __asm__ volatile("1:\n\t" UNPACK PK_LEAN_CHANNEL("a0") PK_LEAN_CHANNEL("a1") PK_LEAN_CHANNEL("a2")          \
                         PK_LEAN_CHANNEL("a3")                                                                  \
                     "subs %[n], %[n], #1\n\t"                                                                  \
                     "bne 1b\n\t"                                                                               \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p] "+r"(p), [w] "+r"(w),     \
                       [n] "+r"(nb), [l0] "=&r"(l0), [l1] "=&r"(l1), [t] "=&r"(t), [u] "=&r"(u)                  \
                     :                                                                                          \
                     : "cc", "memory")
#endif

/* Channels [0, n) of one output pixel over its taps into acc[0], acc[2], ... (stride 2: the pixel-pair layout
 * of pk_store), from the folded bias; w: the chunk's weights ("quads", then the tail channels' rows), k bytes a
 * channel. `bits` is a constant in each copy (PK_LEAN_PIXEL_FN). */
static inline __attribute__((always_inline)) void pk_lean_pixel(const uint8_t *const *taps, int32_t n_taps,
                                                                int32_t blocks, const int8_t *w,
                                                                const int32_t *bias, int32_t n, int32_t k,
                                                                int32_t bits, int32_t *acc)
{
    const int32_t step = bits / 2; /* bytes of a 4-block */
    int32_t j = 0;
    for (; j + 4 <= n; j += 4)
    {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias)
        {
            a0 = bias[j];
            a1 = bias[j + 1];
            a2 = bias[j + 2];
            a3 = bias[j + 3];
        }
        for (int32_t tap = 0; tap < n_taps; tap++)
        {
            const uint8_t *p = taps[tap];
#if MCU_DSP_ASM
            int32_t nb = blocks, l0, l1, t, u;
            if (bits == 2)
            {
                PK_LEAN_TAP_ASM(PK_LEAN_UNPACK_A2);
            }
            else if (bits == 4)
            {
                PK_LEAN_TAP_ASM(PK_LEAN_UNPACK_A4);
            }
            else
            {
                PK_LEAN_TAP_ASM(PK_LEAN_UNPACK_A8);
            }
#else
            for (int32_t b = 0; b < blocks; b++, p += step, w += 16)
            {
                int32_t l0, l1;
                pk_lean_lanes(p, bits, &l0, &l1);
                const int32_t w0 = mcu_read_s8x4(w), w1 = mcu_read_s8x4(w + 4);
                const int32_t w2 = mcu_read_s8x4(w + 8), w3 = mcu_read_s8x4(w + 12);
                a0 = mcu_smlad(l1, mcu_sxtb16_ror8(w0), mcu_smlad(l0, mcu_sxtb16(w0), a0));
                a1 = mcu_smlad(l1, mcu_sxtb16_ror8(w1), mcu_smlad(l0, mcu_sxtb16(w1), a1));
                a2 = mcu_smlad(l1, mcu_sxtb16_ror8(w2), mcu_smlad(l0, mcu_sxtb16(w2), a2));
                a3 = mcu_smlad(l1, mcu_sxtb16_ror8(w3), mcu_smlad(l0, mcu_sxtb16(w3), a3));
            }
#endif
        }
        acc[2 * j] = a0;
        acc[2 * j + 2] = a1;
        acc[2 * j + 4] = a2;
        acc[2 * j + 6] = a3;
    }
    for (; j < n; j++, w += k)
    {
        /* the last C_out % 4 channels, each its own row */
        int32_t a = bias ? bias[j] : 0;
        const int8_t *wc = w;
        for (int32_t tap = 0; tap < n_taps; tap++)
        {
            const uint8_t *p = taps[tap];
            for (int32_t b = 0; b < blocks; b++, p += step, wc += 4)
            {
                int32_t l0, l1;
                pk_lean_lanes(p, bits, &l0, &l1);
                const int32_t wv = mcu_read_s8x4(wc);
                a = mcu_smlad(l1, mcu_sxtb16_ror8(wv), mcu_smlad(l0, mcu_sxtb16(wv), a));
            }
        }
        acc[2 * j] = a;
    }
}

#define PK_LEAN_PIXEL_FN(name, bits)                                                                            \
    static void __attribute__((noinline)) name(const uint8_t *const *taps, int32_t n_taps, int32_t blocks,     \
                                               const int8_t *w, const int32_t *bias, int32_t n, int32_t k,      \
                                               int32_t *acc)                                                    \
    {                                                                                                           \
        pk_lean_pixel(taps, n_taps, blocks, w, bias, n, k, bits, acc);                                          \
    }
PK_LEAN_PIXEL_FN(pk_lean_pixel_a4, 4)
PK_LEAN_PIXEL_FN(pk_lean_pixel_a2, 2)
PK_LEAN_PIXEL_FN(pk_lean_pixel_a8, 8)

typedef void (*pk_lean_pixel_fn)(const uint8_t *const *, int32_t, int32_t, const int8_t *, const int32_t *,
                                 int32_t, int32_t, int32_t *);

/* The taps of output pixel p: the input pixel each reads, or the zero-point pixel outside the input. */
static void pk_lean_taps(const uint8_t **taps, const mcu_conv_params *cp, const mcu_dims *in,
                         const mcu_dims *filt, const mcu_dims *out, const uint8_t *input, int32_t in_px,
                         const uint8_t *zero_pixel, int32_t p)
{
    const int32_t ox = p % out->w, rest = p / out->w;
    const int32_t oy = rest % out->h, b = rest / out->h;
    const int32_t y0 = oy * cp->stride.h - cp->padding.h, x0 = ox * cp->stride.w - cp->padding.w;
    const uint8_t *in_b = input + b * in->h * in->w * in_px;
    for (int32_t ky = 0, t = 0; ky < filt->h; ky++)
    {
        const int32_t iy = y0 + ky * cp->dilation.h;
        const int row_inside = iy >= 0 && iy < in->h;
        for (int32_t kx = 0; kx < filt->w; kx++, t++)
        {
            const int32_t ix = x0 + kx * cp->dilation.w;
            taps[t] = row_inside && ix >= 0 && ix < in->w ? in_b + (iy * in->w + ix) * in_px : zero_pixel;
        }
    }
}

static mcu_status conv_lean_dsp_packed(int32_t in_bits, const mcu_context *ctx, const mcu_conv_params *cp,
                                       const mcu_per_channel_quant_params *q, int32_t out_bits,
                                       const mcu_dims *in, const uint8_t *input, const mcu_dims *filt,
                                       const int8_t *filter, const int32_t *bias, const mcu_dims *out,
                                       uint8_t *output)
{
    (void)ctx; /* no scratch */
    const int32_t cin = in->c, cout = out->c, n_taps = filt->h * filt->w;
    const int32_t in_px = mcu_packed_pixel_bytes(cin, in_bits);
    if (!pk_bits_ok(in_bits) || !pk_bits_ok(out_bits) || cp->groups != 1 || filt->c != cin || filt->n != cout ||
        cin < 4 || (cin & 3) != 0 || n_taps < 1 || n_taps > MCU_CONV_LEAN_DSP_MAX_TAPS ||
        in_px > MCU_CONV_LEAN_DSP_MAX_PIXEL_BYTES)
    {
        return MCU_ARG_ERROR;
    }
    uint32_t zero_words[MCU_CONV_LEAN_DSP_MAX_PIXEL_BYTES / 4];
    uint8_t *zero_pixel = (uint8_t *)zero_words;
    {
        int8_t zp[PK_CHUNK];
        memset(zp, (int8_t)(-cp->input_offset), sizeof(zp));
        for (int32_t c0 = 0; c0 < cin; c0 += PK_CHUNK)
        {
            mcu_packed_store(zp, cin - c0 < PK_CHUNK ? cin - c0 : PK_CHUNK, in_bits, zero_pixel + c0 * in_bits / 8);
        }
    }
    const pk_out o = pk_out_of(out_bits, cp->output_offset, &cp->activation, q, bias, cout, 0);
    const pk_lean_pixel_fn pixel = in_bits == 4 ? pk_lean_pixel_a4 : in_bits == 2 ? pk_lean_pixel_a2
                                                                                   : pk_lean_pixel_a8;
    const int32_t k = n_taps * cin, blocks = cin / 4;
    const int32_t out_px = mcu_packed_pixel_bytes(cout, out_bits);
    const int32_t pixels = in->n * out->h * out->w;
    const uint8_t *taps_a[MCU_CONV_LEAN_DSP_MAX_TAPS], *taps_b[MCU_CONV_LEAN_DSP_MAX_TAPS];
    int32_t acc[2 * PK_CHUNK];
    for (int32_t p = 0; p < pixels; p += 2)
    {
        const int32_t has_b = p + 1 < pixels;
        pk_lean_taps(taps_a, cp, in, filt, out, input, in_px, zero_pixel, p);
        if (has_b)
        {
            pk_lean_taps(taps_b, cp, in, filt, out, input, in_px, zero_pixel, p + 1);
        }
        uint8_t *out_a = output + p * out_px, *out_b = has_b ? out_a + out_px : out_a;
        for (int32_t c0 = 0; c0 < cout; c0 += PK_CHUNK)
        {
            const int32_t n = cout - c0 < PK_CHUNK ? cout - c0 : PK_CHUNK;
            const int8_t *w = filter + c0 * k;
            const int32_t *bias_c = bias ? bias + c0 : NULL;
            pixel(taps_a, n_taps, blocks, w, bias_c, n, k, acc);
            if (has_b)
            {
                pixel(taps_b, n_taps, blocks, w, bias_c, n, k, acc + 1);
            }
            else
            {
                /* a last single pixel: stored twice at the same place */
                for (int32_t j = 0; j < n; j++)
                {
                    acc[2 * j + 1] = acc[2 * j];
                }
            }
            pk_store(&o, acc, c0, n, out_a, out_b);
        }
    }
    return MCU_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Depthwise, channel multiplier 1: mcu_dwconv_dsp_s8()'s tap pairs, each tap unpacked into lanes as offset
 * binary, the input offset folded into the bias at compile time, taps outside reading a zero-point pixel.
 * ------------------------------------------------------------------------------------------------------ */

/* The tap-pair loops on DSP cores (gcc spills the four accumulators of the C loop). Both taps' fields are
 * combined into one word first, tap a in the low halfword and tap b in the high one, so that every unpacking
 * instruction serves both taps and its lanes come out as the (tap a, tap b) pairs SMLAD multiplies with the
 * "tap pairs" weights, no PKHBT / PKHTB: 4 bits: LDRH each, ORR, EOR 0x88888888 (two's complement -> offset
 * binary x + 8, which the folded bias accounts for), then one AND of the word shifted by 0, 4, 8, 12 with the
 * mask 0x000F000F held in a register (Thumb-2's shifted operand) gives (a_k, b_k) directly: 21 instructions
 * for 8 MACs (24 with a shift and a mask each, 31 before). 2 bits: LDRB each, ORR, EOR 0x00AA00AA, the AND of
 * the word shifted by 0, 2, 4, 6 with 0x00030003: 21. int8: mcu_dwconv_dsp_s8()'s loop, 19. */
#define PK_DW_PAIRS_A4_ASM                                                                                      \
    __asm__ volatile("1:\n\t"                                                                                 \
                     "ldrd %[p0], %[p1], [%[tp]], #8\n\t"                                                     \
                     "ldrh %[p0], [%[p0], %[cb]]\n\t"                                                         \
                     "ldrh %[p1], [%[p1], %[cb]]\n\t"                                                         \
                     "orr %[p0], %[p0], %[p1], lsl #16\n\t"                                                   \
                     "eor %[p0], %[p0], #0x88888888\n\t"                                                      \
                     "ldr %[u], [%[w]], #4\n\t"                                                                \
                     "and %[p1], %[m], %[p0]\n\t"                     /* (a0, b0) */                          \
                     "sxtb16 %[v], %[u]\n\t"                                                                   \
                     "smlad %[a0], %[p1], %[v], %[a0]\n\t"                                                     \
                     "and %[p1], %[m], %[p0], lsr #4\n\t"             /* (a1, b1) */                          \
                     "sxtb16 %[v], %[u], ror #8\n\t"                                                           \
                     "smlad %[a1], %[p1], %[v], %[a1]\n\t"                                                     \
                     "ldr %[u], [%[w]], #4\n\t"                                                                \
                     "and %[p1], %[m], %[p0], lsr #8\n\t"             /* (a2, b2) */                          \
                     "sxtb16 %[v], %[u]\n\t"                                                                   \
                     "smlad %[a2], %[p1], %[v], %[a2]\n\t"                                                     \
                     "and %[p1], %[m], %[p0], lsr #12\n\t"            /* (a3, b3) */                          \
                     "sxtb16 %[v], %[u], ror #8\n\t"                                                           \
                     "smlad %[a3], %[p1], %[v], %[a3]\n\t"                                                     \
                     "subs %[n], %[n], #1\n\t"                                                                 \
                     "bne 1b\n\t"                                                                              \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [tp] "+r"(tp), [w] "+r"(w),  \
                       [n] "+r"(pairs), [p0] "=&r"(p0), [p1] "=&r"(p1), [u] "=&r"(u), [v] "=&r"(v)              \
                     : [cb] "r"(cb), [m] "r"(mask)                                                             \
                     : "cc", "memory")

#define PK_DW_PAIRS_A2_ASM                                                                                      \
    __asm__ volatile("1:\n\t"                                                                                 \
                     "ldrd %[p0], %[p1], [%[tp]], #8\n\t"                                                     \
                     "ldrb %[p0], [%[p0], %[cb]]\n\t"                                                         \
                     "ldrb %[p1], [%[p1], %[cb]]\n\t"                                                         \
                     "orr %[p0], %[p0], %[p1], lsl #16\n\t"                                                   \
                     "eor %[p0], %[p0], #0x00AA00AA\n\t"                                                      \
                     "ldr %[u], [%[w]], #4\n\t"                                                                \
                     "and %[p1], %[m], %[p0]\n\t"                     /* (a0, b0) */                          \
                     "sxtb16 %[v], %[u]\n\t"                                                                   \
                     "smlad %[a0], %[p1], %[v], %[a0]\n\t"                                                     \
                     "and %[p1], %[m], %[p0], lsr #2\n\t"             /* (a1, b1) */                          \
                     "sxtb16 %[v], %[u], ror #8\n\t"                                                           \
                     "smlad %[a1], %[p1], %[v], %[a1]\n\t"                                                     \
                     "ldr %[u], [%[w]], #4\n\t"                                                                \
                     "and %[p1], %[m], %[p0], lsr #4\n\t"             /* (a2, b2) */                          \
                     "sxtb16 %[v], %[u]\n\t"                                                                   \
                     "smlad %[a2], %[p1], %[v], %[a2]\n\t"                                                     \
                     "and %[p1], %[m], %[p0], lsr #6\n\t"             /* (a3, b3) */                          \
                     "sxtb16 %[v], %[u], ror #8\n\t"                                                           \
                     "smlad %[a3], %[p1], %[v], %[a3]\n\t"                                                     \
                     "subs %[n], %[n], #1\n\t"                                                                 \
                     "bne 1b\n\t"                                                                              \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [tp] "+r"(tp), [w] "+r"(w),  \
                       [n] "+r"(pairs), [p0] "=&r"(p0), [p1] "=&r"(p1), [u] "=&r"(u), [v] "=&r"(v)              \
                     : [cb] "r"(cb), [m] "r"(mask)                                                             \
                     : "cc", "memory")

#define PK_DW_PAIRS_A8_ASM                                                                                      \
    __asm__ volatile("1:\n\t"                                                                                 \
                     "ldrd %[p0], %[p1], [%[tp]], #8\n\t"                                                     \
                     "ldr %[p0], [%[p0], %[cb]]\n\t"                                                          \
                     "ldr %[p1], [%[p1], %[cb]]\n\t"                                                          \
                     "pkhbt %[v], %[p0], %[p1], lsl #16\n\t" /* x0 x1 y0 y1 */                                \
                     "pkhtb %[p0], %[p1], %[p0], asr #16\n\t" /* x2 x3 y2 y3 */                               \
                     "ldr %[p1], [%[w]], #4\n\t"                                                               \
                     "sxtb16 %[t], %[v]\n\t"                                                                   \
                     "sxtb16 %[u], %[p1]\n\t"                                                                  \
                     "smlad %[a0], %[t], %[u], %[a0]\n\t"                                                      \
                     "sxtb16 %[t], %[v], ror #8\n\t"                                                           \
                     "sxtb16 %[u], %[p1], ror #8\n\t"                                                          \
                     "smlad %[a1], %[t], %[u], %[a1]\n\t"                                                      \
                     "ldr %[p1], [%[w]], #4\n\t"                                                               \
                     "sxtb16 %[t], %[p0]\n\t"                                                                  \
                     "sxtb16 %[u], %[p1]\n\t"                                                                  \
                     "smlad %[a2], %[t], %[u], %[a2]\n\t"                                                      \
                     "sxtb16 %[t], %[p0], ror #8\n\t"                                                          \
                     "sxtb16 %[u], %[p1], ror #8\n\t"                                                          \
                     "smlad %[a3], %[t], %[u], %[a3]\n\t"                                                      \
                     "subs %[n], %[n], #1\n\t"                                                                 \
                     "bne 1b\n\t"                                                                              \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [tp] "+r"(tp), [w] "+r"(w),  \
                       [n] "+r"(pairs), [p0] "=&r"(p0), [p1] "=&r"(p1), [t] "=&r"(t), [u] "=&r"(u), [v] "=&r"(v) \
                     : [cb] "r"(cb)                                                                            \
                     : "cc", "memory")

/* Channels c..c+3 of one output pixel over its taps (taps[t]: the input pixel, or the zero-point pixel outside).
 * The lanes are x + 2^(b-1) for packed inputs (offset binary) and x for int8: the input offset is in the folded
 * bias, whose share for a tap outside cancels the zero-point pixel's product, as in mcu_dwconv_dsp_s8(). */
static inline __attribute__((always_inline)) void pk_dw_group4(const uint8_t *const *taps, int32_t n_taps,
                                                               int32_t c, int32_t bits, const int8_t *w,
                                                               const int32_t *bias, int32_t *acc)
{
    /* the accumulators start at the bias (of channels c..c+3) in registers, not through acc */
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    if (bias)
    {
        a0 = bias[0];
        a1 = bias[1];
        a2 = bias[2];
        a3 = bias[3];
    }
    int32_t pairs = n_taps >> 1;
    const uint8_t *const *tp = taps;
#if MCU_DSP_ASM
    const int32_t mask = bits == 4 ? 0x000F000F : 0x00030003; /* one field of each tap: both asm blocks' */
    if (pairs)
    {
        int32_t p0, p1, t, u, v;
        if (bits == 4)
        {
            const int32_t cb = c >> 1;
            PK_DW_PAIRS_A4_ASM;
        }
        else if (bits == 2)
        {
            const int32_t cb = c >> 2;
            PK_DW_PAIRS_A2_ASM;
        }
        else
        {
            const int32_t cb = c;
            PK_DW_PAIRS_A8_ASM;
        }
        pairs = 0; /* the loop left tp and w after the pairs */
    }
#endif
    for (; pairs > 0; pairs--, tp += 2, w += 8)
    {
        int32_t ea, oa, eb, ob;
        pk_lanes4(tp[0], c, bits, 0, &ea, &oa);
        pk_lanes4(tp[1], c, bits, 0, &eb, &ob);
        const int32_t w01 = mcu_read_s8x4(w), w23 = mcu_read_s8x4(w + 4);
        a0 = mcu_smlad(mcu_pkhbt16(ea, eb), mcu_sxtb16(w01), a0);      /* (a0, b0) */
        a1 = mcu_smlad(mcu_pkhbt16(oa, ob), mcu_sxtb16_ror8(w01), a1); /* (a1, b1) */
        a2 = mcu_smlad(mcu_pkhtb16(eb, ea), mcu_sxtb16(w23), a2);      /* (a2, b2) */
        a3 = mcu_smlad(mcu_pkhtb16(ob, oa), mcu_sxtb16_ror8(w23), a3); /* (a3, b3) */
    }
#if MCU_DSP_ASM
    if (n_taps & 1)
    {
        /* the last tap alone: its 4 fields spread into the halfwords of two words, (x0, x2) and (x1, x3) as
         * offset binary (int8: SXTB16 of the word), one SMLABB / SMLATT per channel; 13 instructions (int8 11) */
        int32_t p0, t, u, v;
        if (bits == 4)
        {
            __asm__ volatile("ldr %[p0], [%[tp]]\n\t"
                             "ldrh %[p0], [%[p0], %[cb]]\n\t"
                             "orr %[p0], %[p0], %[p0], lsl #8\n\t" /* x0 at bit 0, x2 at 16; x1 at 4, x3 at 20 */
                             "eor %[p0], %[p0], #0x00880088\n\t"
                             "and %[t], %[m], %[p0]\n\t"
                             "and %[p0], %[m], %[p0], lsr #4\n\t"
                             : [p0] "=&r"(p0), [t] "=&r"(t)
                             : [tp] "r"(tp), [cb] "r"(c >> 1), [m] "r"(mask)
                             : "memory");
        }
        else if (bits == 2)
        {
            __asm__ volatile("ldr %[p0], [%[tp]]\n\t"
                             "ldrb %[p0], [%[p0], %[cb]]\n\t"
                             "orr %[p0], %[p0], %[p0], lsl #12\n\t" /* x0 at bit 0, x2 at 16; x1 at 2, x3 at 18 */
                             "eor %[p0], %[p0], #0x000A000A\n\t"
                             "and %[t], %[m], %[p0]\n\t"
                             "and %[p0], %[m], %[p0], lsr #2\n\t"
                             : [p0] "=&r"(p0), [t] "=&r"(t)
                             : [tp] "r"(tp), [cb] "r"(c >> 2), [m] "r"(mask)
                             : "memory");
        }
        else
        {
            __asm__ volatile("ldr %[p0], [%[tp]]\n\t"
                             "ldr %[p0], [%[p0], %[cb]]\n\t"
                             "sxtb16 %[t], %[p0]\n\t"
                             "sxtb16 %[p0], %[p0], ror #8\n\t"
                             : [p0] "=&r"(p0), [t] "=&r"(t)
                             : [tp] "r"(tp), [cb] "r"(c)
                             : "memory");
        }
        __asm__ volatile("ldr %[u], [%[w]]\n\t"
                         "sxtb16 %[v], %[u]\n\t"
                         "smlabb %[a0], %[t], %[v], %[a0]\n\t"
                         "smlatt %[a2], %[t], %[v], %[a2]\n\t"
                         "sxtb16 %[v], %[u], ror #8\n\t"
                         "smlabb %[a1], %[p0], %[v], %[a1]\n\t"
                         "smlatt %[a3], %[p0], %[v], %[a3]\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [u] "=&r"(u), [v] "=&r"(v)
                         : [t] "r"(t), [p0] "r"(p0), [w] "r"(w)
                         : "memory");
    }
#else
    if (n_taps & 1)
    {
        int32_t e, o;
        pk_lanes4(tp[0], c, bits, 0, &e, &o);
        const int32_t wl = mcu_read_s8x4(w);
        const int32_t we = mcu_sxtb16(wl), wo = mcu_sxtb16_ror8(wl);
        a0 = mcu_smlabb(e, we, a0);
        a2 = mcu_smlatt(e, we, a2);
        a1 = mcu_smlabb(o, wo, a1);
        a3 = mcu_smlatt(o, wo, a3);
    }
#endif
    acc[0] = a0; /* every second entry: the pixel pair interleaved as pk_store() reads it */
    acc[2] = a1;
    acc[4] = a2;
    acc[6] = a3;
}

typedef struct
{
    const mcu_dw_conv_params *dp;
    const mcu_dims *in, *filter, *out;
    const uint8_t *input;
    const int8_t *filter_data;
    const uint8_t *zero_pixel; /* one pixel of input zero points: what taps outside the input read */
    int32_t bits, in_px, lane_bias; /* lanes hold x + lane_bias: 2^(bits-1) packed, 0 for int8 */
} pk_dw;

/* The n channels [c0, c0 + n) of one output pixel into acc[0], acc[2] .. acc[2 (n - 1)] (the pixel pair's
 * interleaved accumulators, pk_store()'s order), at `bits` (a constant in each copy: the group loop unpacks
 * without a branch, as mcu_dwconv_dsp_s8()'s dw_pixel_chunk()). */
static inline __attribute__((always_inline)) void pk_dw_chunk_bits(const uint8_t *const *taps, int32_t n_taps,
                                                                   int32_t c0, int32_t n, int32_t c4,
                                                                   const int8_t *filter, const int32_t *bias,
                                                                   int32_t bits, int32_t *acc)
{
    const int32_t end4 = c4 - c0 < n ? c4 - c0 : n;
    const int8_t *w = filter + c0 * n_taps;
    int32_t j = 0;
    for (; j < end4; j += 4, w += 4 * n_taps)
    {
        pk_dw_group4(taps, n_taps, c0 + j, bits, w, bias ? bias + c0 + j : NULL, acc + 2 * j);
    }
    const int32_t lane_bias = bits == 8 ? 0 : 1 << (bits - 1);
    for (; j < n; j++)
    {
        /* the last C % 4 channels, each with its taps contiguous */
        const int32_t ch = c0 + j;
        const int8_t *wt = filter + c4 * n_taps + (ch - c4) * n_taps;
        int32_t a = bias ? bias[ch] : 0;
        for (int32_t t = 0; t < n_taps; t++)
        {
            a = mcu_add_wrap(a, (mcu_packed_get(taps[t], ch, bits) + lane_bias) * wt[t]);
        }
        acc[2 * j] = a;
    }
}

#define PK_DW_CHUNK_FN(name, bits)                                                                              \
    static void __attribute__((noinline)) name(const uint8_t *const *taps, int32_t n_taps, int32_t c0,         \
                                               int32_t n, int32_t c4, const int8_t *filter, const int32_t *bias, \
                                               int32_t *acc)                                                    \
    {                                                                                                           \
        pk_dw_chunk_bits(taps, n_taps, c0, n, c4, filter, bias, bits, acc);                                     \
    }
PK_DW_CHUNK_FN(pk_dw_chunk_a4, 4)
PK_DW_CHUNK_FN(pk_dw_chunk_a2, 2)
PK_DW_CHUNK_FN(pk_dw_chunk_a8, 8)

typedef void (*pk_dw_chunk_fn)(const uint8_t *const *, int32_t, int32_t, int32_t, int32_t, const int8_t *,
                               const int32_t *, int32_t *);

static void pk_dw_taps(const uint8_t **taps, const pk_dw *d, const uint8_t *in_b, int32_t oy, int32_t ox)
{
    const mcu_dw_conv_params *dp = d->dp;
    const int32_t y0 = oy * dp->stride.h - dp->padding.h, x0 = ox * dp->stride.w - dp->padding.w;
    for (int32_t ky = 0, t = 0; ky < d->filter->h; ky++)
    {
        const int32_t iy = y0 + ky * dp->dilation.h;
        const int row_inside = iy >= 0 && iy < d->in->h;
        for (int32_t kx = 0; kx < d->filter->w; kx++, t++)
        {
            const int32_t ix = x0 + kx * dp->dilation.w;
            taps[t] = row_inside && ix >= 0 && ix < d->in->w ? in_b + (iy * d->in->w + ix) * d->in_px : d->zero_pixel;
        }
    }
}

int32_t mcu_dwconv_dsp_get_buffer_size_packed(const mcu_dims *input_dims, int32_t input_bits)
{
    /* one pixel of input zero points (the outputs are staged on the stack) */
    return PK_ROUND4(mcu_packed_pixel_bytes(input_dims->c, input_bits));
}

static mcu_status dwconv_dsp_packed(int32_t in_bits, const mcu_context *ctx, const mcu_dw_conv_params *dp,
                                    const mcu_per_channel_quant_params *q, int32_t out_bits, const mcu_dims *in,
                                    const uint8_t *input, const mcu_dims *filt, const int8_t *filter,
                                    const int32_t *bias, const mcu_dims *out, uint8_t *output)
{
    const int32_t c = in->c, n_taps = filt->h * filt->w;
    if (!pk_bits_ok(in_bits) || !pk_bits_ok(out_bits) || dp->ch_mult != 1 || out->c != c || filt->c != c ||
        n_taps > MCU_DWCONV_DSP_MAX_TAPS)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_dwconv_dsp_get_buffer_size_packed(in, in_bits))
    {
        return MCU_ARG_ERROR;
    }
    uint8_t *zero_pixel = (uint8_t *)ctx->buf;
    {
        int8_t zp[PK_CHUNK];
        memset(zp, (int8_t)(-dp->input_offset), sizeof(zp));
        for (int32_t c0 = 0; c0 < c; c0 += PK_CHUNK)
        {
            mcu_packed_store(zp, c - c0 < PK_CHUNK ? c - c0 : PK_CHUNK, in_bits, zero_pixel + c0 * in_bits / 8);
        }
    }
    const pk_dw d = {dp, in, filt, out, input, filter, zero_pixel, in_bits, mcu_packed_pixel_bytes(c, in_bits),
                     in_bits == 8 ? 0 : 1 << (in_bits - 1)};
    const pk_out o = pk_out_of(out_bits, dp->output_offset, &dp->activation, q, bias, c, 0);
    const int32_t out_px = mcu_packed_pixel_bytes(c, out_bits);
    const int32_t ow = out->w, pixels = out->h * ow, c4 = c & ~3;
    const pk_dw_chunk_fn chunk = in_bits == 4 ? pk_dw_chunk_a4 : in_bits == 2 ? pk_dw_chunk_a2 : pk_dw_chunk_a8;
    const uint8_t *taps_a[MCU_DWCONV_DSP_MAX_TAPS], *taps_b[MCU_DWCONV_DSP_MAX_TAPS];
    int32_t acc[2 * PK_CHUNK];
    for (int32_t b = 0; b < in->n; b++)
    {
        const uint8_t *in_b = input + b * in->h * in->w * d.in_px;
        for (int32_t p = 0; p < pixels; p += 2)
        {
            const int32_t pb = p + 1 < pixels ? p + 1 : p;
            pk_dw_taps(taps_a, &d, in_b, p / ow, p % ow);
            pk_dw_taps(taps_b, &d, in_b, pb / ow, pb % ow);
            uint8_t *o_a = output + (b * pixels + p) * out_px, *o_b = output + (b * pixels + pb) * out_px;
            for (int32_t c0 = 0; c0 < c; c0 += PK_CHUNK)
            {
                const int32_t n = c - c0 < PK_CHUNK ? c - c0 : PK_CHUNK;
                chunk(taps_a, n_taps, c0, n, c4, filter, bias, acc);
                chunk(taps_b, n_taps, c0, n, c4, filter, bias, acc + 1);
                pk_store(&o, acc, c0, n, o_a, o_b);
            }
        }
    }
    return MCU_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Elementwise add on packed maps from per-input terms (mcu_packed_add_table() in mcunn_packed_support.h): runs of
 * up to MCU_PACKED_ADD_RUN values unpacked into int8 on the stack, each value's two terms summed and requantized
 * with one SMLAL, packed at the store.
 * ------------------------------------------------------------------------------------------------------ */

/* v saturated to `bits` (8, 4 or 2, a constant at each instantiation): one SSAT on a core with the DSP extension. */
static inline __attribute__((always_inline)) int32_t pk_ssat(int32_t v, int bits)
{
#if defined(__ARM_FEATURE_DSP)
    return bits == 8 ? __ssat(v, 8) : bits == 4 ? __ssat(v, 4) : __ssat(v, 2);
#else
    const int32_t qmax = (1 << (bits - 1)) - 1;
    return v < -qmax - 1 ? -qmax - 1 : (v > qmax ? qmax : v);
#endif
}

/* The table add's loop for an output shift <= -2 (right >= 2: every add whose output scale is more than twice the
 * common scale 2^-left_shift, i.e. all of TFLite's): the two terms, one SMLAL with mcu_dsp_requantize_r2()'s
 * constant words, the offset, then one SSAT when the clamp is the width's whole range (`sat_bits`, constant),
 * else [lo, hi]. About 16 instructions per value on Cortex-M4. */
static inline __attribute__((always_inline)) void pk_add_table_r2(const int32_t *t1, const int32_t *t2,
                                                                   const int8_t *a, const int8_t *b, int8_t *y,
                                                                   int32_t n, int32_t m, uint32_t round_hi,
                                                                   int32_t right_m1, int32_t off, int32_t lo,
                                                                   int32_t hi, int sat_bits)
{
    for (int32_t k = 0; k < n; k++)
    {
        const int32_t v = mcu_dsp_requantize_r2(mcu_add_wrap(t1[a[k]], t2[b[k]]), m, round_hi, right_m1) + off;
        y[k] = (int8_t)(sat_bits ? pk_ssat(v, sat_bits) : (v < lo ? lo : (v > hi ? hi : v)));
    }
}

/* The table add's run (mcu_packed_add_table_run_fn): pk_add_table_r2() for its shifts and clamps, else the output
 * requantized by mcu_dsp_requantize() with its constants derived once per run. */
static void pk_add_table_run(const mcu_add_table_params *p, const int32_t *t1, const int32_t *t2, const int8_t *a,
                             const int8_t *b, int8_t *y, int32_t n, int32_t lo, int32_t hi)
{
    const mcu_dsp_requant r = mcu_dsp_requant_of(p->output_mult, p->output_shift);
    const int32_t off = p->output_offset;
    if (p->output_shift <= -2)
    {
        const int32_t m = p->output_mult, right_m1 = r.right - 1;
        if (lo == -128 && hi == 127)
        {
            pk_add_table_r2(t1, t2, a, b, y, n, m, r.round_hi, right_m1, off, lo, hi, 8);
        }
        else if (lo == -8 && hi == 7)
        {
            pk_add_table_r2(t1, t2, a, b, y, n, m, r.round_hi, right_m1, off, lo, hi, 4);
        }
        else if (lo == -2 && hi == 1)
        {
            pk_add_table_r2(t1, t2, a, b, y, n, m, r.round_hi, right_m1, off, lo, hi, 2);
        }
        else
        {
            pk_add_table_r2(t1, t2, a, b, y, n, m, r.round_hi, right_m1, off, lo, hi, 0);
        }
        return;
    }
    for (int32_t k = 0; k < n; k++)
    {
        y[k] = mcu_dsp_output_s8(mcu_add_wrap(t1[a[k]], t2[b[k]]), r, off, lo, hi);
    }
}

mcu_status mcu_add_table_dsp_packed_s8(const mcu_context *ctx, const mcu_add_table_params *p, int32_t input1_bits,
                                       int32_t input2_bits, int32_t output_bits, const mcu_dims *input1_dims,
                                       const uint8_t *input1, const mcu_dims *input2_dims, const uint8_t *input2,
                                       const mcu_dims *output_dims, uint8_t *output)
{
    (void)ctx;
    return mcu_packed_add_table(p, input1_bits, input2_bits, output_bits, input1_dims, input1, input2_dims, input2,
                                output_dims, output, mcu_packed_unpack_run, pk_add_table_run, mcu_packed_store);
}

MCU_PACKED_CONV_ENTRY(mcu_conv_dsp_a4w8_s8, conv_dsp_packed, 4)
MCU_PACKED_CONV_ENTRY(mcu_conv_dsp_a2w8_s8, conv_dsp_packed, 2)
MCU_PACKED_CONV_ENTRY(mcu_conv_dsp_a8w8_s8, conv_dsp_packed, 8)
MCU_PACKED_CONV_ENTRY(mcu_conv_lean_dsp_a4w8_s8, conv_lean_dsp_packed, 4)
MCU_PACKED_CONV_ENTRY(mcu_conv_lean_dsp_a2w8_s8, conv_lean_dsp_packed, 2)
MCU_PACKED_CONV_ENTRY(mcu_conv_lean_dsp_a8w8_s8, conv_lean_dsp_packed, 8)
MCU_PACKED_DWCONV_ENTRY(mcu_dwconv_dsp_a4w8_s8, dwconv_dsp_packed, 4)
MCU_PACKED_DWCONV_ENTRY(mcu_dwconv_dsp_a2w8_s8, dwconv_dsp_packed, 2)
MCU_PACKED_DWCONV_ENTRY(mcu_dwconv_dsp_a8w8_s8, dwconv_dsp_packed, 8)
