/* Fully connected with SIMD32 (DSP extension). Each input row is widened once to int16 with the input
 * offset added (natural order, zero-padded to a multiple of 4) into scratch; four output channels then share
 * every pair of input words, and each weight word costs one LDR and two SXTB16 (the weights' bytes 1 and 2 of
 * each 4-block are swapped at compile time so SXTB16 yields elements (0, 1) and (2, 3)). */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

#define MCU_ROUND4(x) (((x) + 3) & ~3)

int32_t mcu_fully_connected_dsp_get_buffer_size_s8(const mcu_dims *filter_dims)
{
    return MCU_ROUND4(filter_dims->n) * (int32_t)sizeof(int16_t);
}

static inline int32_t fc_read_pair(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void fc_widen(int16_t *dst, const int8_t *src, int32_t n, int32_t n4, int32_t offset)
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
    for (; i < n4; i++)
    {
        dst[i] = 0;
    }
}

static inline void fc_block_1x4(const int16_t *x, const int8_t *w, int32_t blocks, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if MCU_DSP_ASM
    /* 21 instructions per block (16 MACs) in 12 registers, two blocks per iteration (an odd block first);
     * gcc's schedule of the C below takes 27 */
    int32_t x01, x23, t, l, h;
    __asm__ volatile(
        "lsrs %[n], %[n], #1\n\t"
        "bcc 2f\n\t"
        "ldrd %[x01], %[x23], [%[x]], #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a0], %[x01], %[l], %[a0]\n\t"
        "smlad %[a0], %[x23], %[h], %[a0]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a1], %[x01], %[l], %[a1]\n\t"
        "smlad %[a1], %[x23], %[h], %[a1]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a2], %[x01], %[l], %[a2]\n\t"
        "smlad %[a2], %[x23], %[h], %[a2]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "smlad %[a3], %[x01], %[l], %[a3]\n\t"
        "smlad %[a3], %[x23], %[h], %[a3]\n\t"
        "2:\n\t"
        "cmp %[n], #0\n\t"
        "beq 3f\n\t"
        "1:\n\t"
        "ldrd %[x01], %[x23], [%[x]], #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a0], %[x01], %[l], %[a0]\n\t"
        "smlad %[a0], %[x23], %[h], %[a0]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a1], %[x01], %[l], %[a1]\n\t"
        "smlad %[a1], %[x23], %[h], %[a1]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a2], %[x01], %[l], %[a2]\n\t"
        "smlad %[a2], %[x23], %[h], %[a2]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "smlad %[a3], %[x01], %[l], %[a3]\n\t"
        "smlad %[a3], %[x23], %[h], %[a3]\n\t"
        "ldrd %[x01], %[x23], [%[x]], #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a0], %[x01], %[l], %[a0]\n\t"
        "smlad %[a0], %[x23], %[h], %[a0]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a1], %[x01], %[l], %[a1]\n\t"
        "smlad %[a1], %[x23], %[h], %[a1]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "ldr %[t], [%[w]], #4\n\t"
        "smlad %[a2], %[x01], %[l], %[a2]\n\t"
        "smlad %[a2], %[x23], %[h], %[a2]\n\t"
        "sxtb16 %[l], %[t]\n\t"
        "sxtb16 %[h], %[t], ror #8\n\t"
        "smlad %[a3], %[x01], %[l], %[a3]\n\t"
        "smlad %[a3], %[x23], %[h], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "3:\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [n] "+r"(blocks),
          [x01] "=&r"(x01), [x23] "=&r"(x23), [t] "=&r"(t), [l] "=&r"(l), [h] "=&r"(h)
        :
        : "cc", "memory");
#else
    for (int32_t k = 0; k < blocks; k++)
    {
        const int32_t x01 = fc_read_pair(x), x23 = fc_read_pair(x + 2);
        x += 4;
        int32_t wv = mcu_read_s8x4(w);
        a0 = mcu_smlad(x01, mcu_sxtb16(wv), a0);
        a0 = mcu_smlad(x23, mcu_sxtb16_ror8(wv), a0);
        wv = mcu_read_s8x4(w + 4);
        a1 = mcu_smlad(x01, mcu_sxtb16(wv), a1);
        a1 = mcu_smlad(x23, mcu_sxtb16_ror8(wv), a1);
        wv = mcu_read_s8x4(w + 8);
        a2 = mcu_smlad(x01, mcu_sxtb16(wv), a2);
        a2 = mcu_smlad(x23, mcu_sxtb16_ror8(wv), a2);
        wv = mcu_read_s8x4(w + 12);
        a3 = mcu_smlad(x01, mcu_sxtb16(wv), a3);
        a3 = mcu_smlad(x23, mcu_sxtb16_ror8(wv), a3);
        w += 16;
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static inline int32_t fc_block_1x1(const int16_t *x, const int8_t *w, int32_t blocks, int32_t acc)
{
    for (int32_t k = 0; k < blocks; k++)
    {
        const int32_t wv = mcu_read_s8x4(w);
        acc = mcu_smlad(fc_read_pair(x), mcu_sxtb16(wv), acc);
        acc = mcu_smlad(fc_read_pair(x + 2), mcu_sxtb16_ror8(wv), acc);
        x += 4;
        w += 4;
    }
    return acc;
}

/* Every output channel of one widened input row; `full`: the clamp is the int8 range. */
static void fc_row(const mcu_fc_params *fc_params,
                                                         const mcu_per_channel_quant_params *q, const int16_t *x,
                                                         int32_t depth, const int8_t *w, const int32_t *bias,
                                                         int32_t out_ch, int8_t *out, int full)
{
    const int32_t k4 = MCU_ROUND4(depth), blocks = k4 / 4, groups = out_ch / 4;
    const int32_t oo = fc_params->output_offset, lo = fc_params->activation.min, hi = fc_params->activation.max;
    for (int32_t g = 0; g < groups; g++, w += 4 * k4)
    {
        const int32_t o = 4 * g;
        int32_t acc[4] = {0, 0, 0, 0};
        if (bias)
        {
            memcpy(acc, bias + o, sizeof(acc));
        }
        fc_block_1x4(x, w, blocks, acc);
        mcu_dsp_store_rows(acc, NULL, 4, q->multiplier + o, q->shift + o, oo, lo, hi, out + o, NULL, full);
    }
    for (int32_t o = 4 * groups; o < out_ch; o++, w += k4)
    {
        const int32_t acc = fc_block_1x1(x, w, blocks, bias ? bias[o] : 0);
        mcu_dsp_store_rows(&acc, NULL, 1, q->multiplier + o, q->shift + o, oo, lo, hi, out + o, NULL, full);
    }
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
    (void)bias_dims;
    const int32_t depth = filter_dims->n, out_ch = output_dims->c;
    if (input_dims->c != depth || filter_dims->c != out_ch || fc_params->filter_offset != 0)
    {
        return MCU_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < mcu_fully_connected_dsp_get_buffer_size_s8(filter_dims))
    {
        return MCU_ARG_ERROR;
    }
    int16_t *x = (int16_t *)ctx->buf;
    const int full = fc_params->activation.min == -128 && fc_params->activation.max == 127;
    for (int32_t r = 0; r < input_dims->n; r++)
    {
        fc_widen(x, input + r * depth, depth, MCU_ROUND4(depth), fc_params->input_offset);
        fc_row(fc_params, quant_params, x, depth, filter, bias, out_ch, output + r * out_ch, full);
    }
    return MCU_OK;
}
