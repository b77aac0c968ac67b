/* Fully connected with SIMD32 (DSP extension), without scratch: the input bytes are widened in registers as they
 * are read (SXTB16 of an input word gives elements (0, 2), its ROR 8 (1, 3), matching the weights' SXTB16 in
 * natural order) and each input word serves 8 output channels (4 for a remaining quad), so the widening costs
 * 3 instructions per 32 MACs; each weight word costs one LDR and two SXTB16. The input offset is in the bias
 * (folded at compile time). Four or eight channels at a time are requantized in an assembly loop (16
 * instructions per output with double rounding) when the clamp is the int8 range and the shifts allow the offset
 * fold (mcu_dsp_shifts_foldable()). An earlier version widened each row into scratch (2 * K4(depth) bytes),
 * which raised the peak SRAM of FC-only models by more than the layer's input; this one runs as fast. */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

#define MCU_ROUND4(x) (((x) + 3) & ~3)

int32_t mcu_fully_connected_dsp_get_buffer_size_s8(const mcu_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

/* The output stage in C (a clamp narrower than int8, shifts outside the fold's range): out of line, once in flash. */
__attribute__((noinline)) static void fc_store_c(const int32_t *acc, int32_t n, const int32_t *mult,
                                                 const int32_t *shift, int32_t out_offset, int32_t lo, int32_t hi,
                                                 int8_t *out, int full)
{
    if (full)
    {
        mcu_dsp_store_rows(acc, NULL, n, mult, shift, out_offset, lo, hi, out, NULL, 1);
    }
    else
    {
        mcu_dsp_store_rows(acc, NULL, n, mult, shift, out_offset, lo, hi, out, NULL, 0);
    }
}

/* Output stage of n channels of one row: acc[j] requantized with channel j's constants, offset, clamped and stored
 * at out[j]. `fast` (full int8 clamp and mcu_dsp_shifts_foldable() shifts): one assembly loop with the offset
 * folded into the rounding addend (as mcu_dsp_store_pairs()); otherwise fc_store_c(). */
static inline __attribute__((always_inline)) void fc_store(const int32_t *acc, int32_t n, const int32_t *mult,
                                                           const int32_t *shift, int32_t out_offset, int32_t lo,
                                                           int32_t hi, int8_t *out, int full, int fast)
{
#if MCU_DSP_ASM
    if (fast)
    {
        const int32_t oo2 = 1 + 2 * out_offset;
        int32_t m, rm1, rh, x, l, h;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[m], [%[pm]], #4\n\t"
            "ldr %[rm1], [%[ps]], #4\n\t"
            "mvn %[rm1], %[rm1]\n\t"            /* right - 1 = -shift - 1 */
            "sub %[x], %[rm1], #1\n\t"
            "lsl %[rh], %[oo2], %[x]\n\t"       /* (1 + 2 offset) 2^(right - 2) */
            "ldr %[x], [%[acc]], #4\n\t"
            MCU_DSP_ROUND_WORDS("l", "h", "rh", "x")
            "smlal %[l], %[h], %[x], %[m]\n\t"
            "asr %[h], %[h], %[rm1]\n\t"
            "ssat %[h], #8, %[h]\n\t"
            "strb %[h], [%[o]], #1\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [acc] "+r"(acc), [pm] "+r"(mult), [ps] "+r"(shift), [o] "+r"(out), [n] "+r"(n), [m] "=&r"(m),
              [rm1] "=&r"(rm1), [rh] "=&r"(rh), [x] "=&r"(x), [l] "=&r"(l), [h] "=&r"(h)
            : [oo2] "r"(oo2)
            : "cc", "memory");
        return;
    }
#endif
    (void)fast;
    fc_store_c(acc, n, mult, shift, out_offset, lo, hi, out, full);
}

/* One block of 4 input bytes (word xv) against the 4 weight words of a quad: SXTB16 pairs (0, 2) and (1, 3) of
 * both sides, two SMLAD per channel. */
static inline __attribute__((always_inline)) void fc_block(int32_t xv, const int8_t *w, int32_t *a)
{
    const int32_t xe = mcu_sxtb16(xv), xo = mcu_sxtb16_ror8(xv);
    for (int32_t j = 0; j < 4; j++)
    {
        const int32_t wv = mcu_read_s8x4(w + 4 * j);
        a[j] = mcu_smlad(xo, mcu_sxtb16_ror8(wv), mcu_smlad(xe, mcu_sxtb16(wv), a[j]));
    }
}

/* acc[0..3] += the quad's full blocks (`blocks` input words at x, 16 weight bytes each at w): the C loop (a quad
 * follows the octets only in layers with C_out % 8 >= 4, once per row). */
static inline void fc_block_1x4(const int8_t *x, const int8_t *w, int32_t blocks, int32_t *acc)
{
    for (int32_t b = 0; b < blocks; b++, x += 4, w += 16)
    {
        fc_block(mcu_read_s8x4(x), w, acc);
    }
}

/* acc[0..7] += the octet's full blocks (`blocks` input words at x, 32 weight bytes each at w). */
__attribute__((noinline)) static void fc_block_1x8(const int8_t *x, const int8_t *w, int32_t blocks,
                                                   const int32_t *init, int32_t *acc)
{
#if MCU_DSP_ASM
    /* 43 instructions per block (32 MACs): the input word widened once for 8 channels, in all 14 core registers;
     * the block counter lives on the stack (4 instructions per two blocks) */
    int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3], a4 = init[4], a5 = init[5], a6 = init[6];
    int32_t a7 = init[7];
    int32_t xv, xe, t, l;
    int32_t cnt = blocks;
#define MCU_FC_CH(a)                                                                              \
    "ldr %[t], [%[w]], #4\n\t"                                                                          \
    "sxtb16 %[l], %[t]\n\t"                                                                             \
    "sxtb16 %[t], %[t], ror #8\n\t"                                                                     \
    "smlad %[" a "], %[xe], %[l], %[" a "]\n\t"                                                         \
    "smlad %[" a "], %[xv], %[t], %[" a "]\n\t"
#define MCU_FC_BLOCK8                                                                             \
    "ldr %[xv], [%[x]], #4\n\t"                                                                         \
    "sxtb16 %[xe], %[xv]\n\t"                                                                           \
    "sxtb16 %[xv], %[xv], ror #8\n\t"                                                                   \
    MCU_FC_CH("a0") MCU_FC_CH("a1") MCU_FC_CH("a2") MCU_FC_CH("a3")                                            \
    MCU_FC_CH("a4") MCU_FC_CH("a5") MCU_FC_CH("a6") MCU_FC_CH("a7")
    __asm__ volatile("ldr %[t], %[cnt]\n\t"
                     "lsrs %[t], %[t], #1\n\t"
                     "str %[t], %[cnt]\n\t"
                     "bcc 2f\n\t"
                     MCU_FC_BLOCK8
                     "2:\n\t"
                     "ldr %[t], %[cnt]\n\t"
                     "cmp %[t], #0\n\t"
                     "beq 3f\n\t"
                     "1:\n\t"
                     MCU_FC_BLOCK8
                     MCU_FC_BLOCK8
                     "ldr %[t], %[cnt]\n\t"
                     "subs %[t], %[t], #1\n\t"
                     "str %[t], %[cnt]\n\t"
                     "bne 1b\n\t"
                     "3:\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), [a5] "+r"(a5),
                       [a6] "+r"(a6), [a7] "+r"(a7), [x] "+r"(x), [w] "+r"(w), [xv] "=&r"(xv), [xe] "=&r"(xe),
                       [t] "=&r"(t), [l] "=&r"(l), [cnt] "+m"(cnt)
                     :
                     : "cc", "memory");
#undef MCU_FC_BLOCK8
#undef MCU_FC_CH
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = a4;
    acc[5] = a5;
    acc[6] = a6;
    acc[7] = a7;
#else
    for (int32_t j = 0; j < 8; j++)
    {
        acc[j] = init[j];
    }
    for (int32_t b = 0; b < blocks; b++, x += 4, w += 32)
    {
        const int32_t xv = mcu_read_s8x4(x);
        fc_block(xv, w, acc);
        fc_block(xv, w + 16, acc + 4);
    }
#endif
}

mcu_status mcu_fully_connected_dsp_s8(const mcu_context *ctx,
                                      const mcu_fc_params *fc_params,
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
    const int32_t depth = filter_dims->n, out_ch = output_dims->c;
    if (input_dims->c != depth || filter_dims->c != out_ch || fc_params->filter_offset != 0 || depth < 1 ||
        out_ch < 1 || input_dims->n < 0)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t full_blocks = depth / 4, tail = depth % 4, k4 = MCU_ROUND4(depth), octets = out_ch / 8;
    const int32_t quad = out_ch % 8 >= 4;
    const int32_t oo = fc_params->output_offset, lo = fc_params->activation.min, hi = fc_params->activation.max;
    const int full = lo == -128 && hi == 127;
    const int fast = full && mcu_dsp_shifts_foldable(quant_params->shift, out_ch);
    const int32_t *mult = quant_params->multiplier, *shift = quant_params->shift;
    static const int32_t zeros[8] = {0, 0, 0, 0, 0, 0, 0, 0}; /* the accumulators' start without a bias */
    for (int32_t r = 0; r < input_dims->n; r++)
    {
        const int8_t *x = input + r * depth;
        int8_t *out = output + r * out_ch;
        /* the last depth % 4 input bytes as one zero-filled word (the weights are zero-padded to K4): no read
         * past the row */
        int32_t xt = 0;
        memcpy(&xt, x + 4 * full_blocks, (size_t)tail);
        const int8_t *w = filter;
        for (int32_t g = 0; g < octets; g++)
        {
            const int32_t o = 8 * g;
            int32_t acc[8];
            fc_block_1x8(x, w, full_blocks, bias ? bias + o : zeros, acc);
            w += 32 * full_blocks;
            if (tail)
            {
                fc_block(xt, w, acc);
                fc_block(xt, w + 16, acc + 4);
                w += 32;
            }
            fc_store(acc, 8, mult + o, shift + o, oo, lo, hi, out + o, full, fast);
        }
        if (quad)
        {
            const int32_t o = 8 * octets;
            const int32_t *init = bias ? bias + o : zeros;
            int32_t acc[4] = {init[0], init[1], init[2], init[3]};
            fc_block_1x4(x, w, full_blocks, acc);
            w += 16 * full_blocks;
            if (tail)
            {
                fc_block(xt, w, acc);
                w += 16;
            }
            fc_store(acc, 4, mult + o, shift + o, oo, lo, hi, out + o, full, fast);
        }
        for (int32_t o = 8 * octets + 4 * quad; o < out_ch; o++, w += k4)
        {
            int32_t acc = bias ? bias[o] : 0;
            for (int32_t b = 0; b < k4 / 4; b++)
            {
                const int32_t xv = b < full_blocks ? mcu_read_s8x4(x + 4 * b) : xt, wv = mcu_read_s8x4(w + 4 * b);
                acc = mcu_smlad(mcu_sxtb16(xv), mcu_sxtb16(wv), acc);
                acc = mcu_smlad(mcu_sxtb16_ror8(xv), mcu_sxtb16_ror8(wv), acc);
            }
            fc_store_c(&acc, 1, mult + o, shift + o, oo, lo, hi, out + o, full);
        }
    }
    return MCU_OK;
}
