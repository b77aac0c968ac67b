/* Parametric ReLU with a slope per channel, int8 (TFLite Micro's PRELU reference semantics). */
#include "mcunn.h"
#include "mcunn_support.h"

mcu_status mcu_prelu_s8(const mcu_context *ctx,
                        const mcu_prelu_params *prelu_params,
                        const mcu_dims *input_dims,
                        const int8_t *input,
                        const mcu_dims *alpha_dims,
                        const int8_t *alpha,
                        const mcu_dims *output_dims,
                        int8_t *output)
{
    (void)ctx;
    const mcu_prelu_params *p = prelu_params;
    const int32_t c = input_dims->c;
    if (output_dims->n != input_dims->n || output_dims->h != input_dims->h || output_dims->w != input_dims->w ||
        output_dims->c != c || (alpha_dims->c != c && alpha_dims->c != 1))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t step = alpha_dims->c == 1 ? 0 : 1; /* one slope for all channels, or one each */
    const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
    for (int32_t i = 0; i < pixels; i++)
    {
        for (int32_t ch = 0; ch < c; ch++)
        {
            const int32_t v = *input++ + p->input_offset;
            int32_t y;
            if (v >= 0)
            {
                y = mcu_requantize(v, p->identity_mult, p->identity_shift);
            }
            else
            {
                y = mcu_requantize(v * (alpha[ch * step] + p->alpha_offset), p->alpha_mult, p->alpha_shift);
            }
            y += p->output_offset;
            *output++ = (int8_t)MCU_CLAMP(y, -128, 127);
        }
    }
    return MCU_OK;
}
