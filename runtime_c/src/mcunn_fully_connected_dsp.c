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
    const int32_t k4 = MCU_ROUND4(depth), blocks = k4 / 4, groups = out_ch / 4;
    const int32_t oo = fc_params->output_offset, lo = fc_params->activation.min, hi = fc_params->activation.max;
    int16_t *x = (int16_t *)ctx->buf;
    for (int32_t r = 0; r < input_dims->n; r++)
    {
        fc_widen(x, input + r * depth, depth, k4, fc_params->input_offset);
        int8_t *out = output + r * out_ch;
        const int8_t *w = filter;
        for (int32_t g = 0; g < groups; g++, w += 4 * k4)
        {
            const int32_t o = 4 * g;
            int32_t acc[4];
            for (int32_t i = 0; i < 4; i++)
            {
                acc[i] = bias ? bias[o + i] : 0;
            }
            fc_block_1x4(x, w, blocks, acc);
            for (int32_t i = 0; i < 4; i++)
            {
                out[o + i] = mcu_dsp_requantize_s8(acc[i], quant_params->multiplier[o + i], quant_params->shift[o + i],
                                                   oo, lo, hi);
            }
        }
        for (int32_t o = 4 * groups; o < out_ch; o++, w += k4)
        {
            const int32_t acc = fc_block_1x1(x, w, blocks, bias ? bias[o] : 0);
            out[o] = mcu_dsp_requantize_s8(acc, quant_params->multiplier[o], quant_params->shift[o], oo, lo, hi);
        }
    }
    return MCU_OK;
}
