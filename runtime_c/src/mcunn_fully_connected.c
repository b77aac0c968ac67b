/* Fully connected, int8, per-output-channel requantization. */
#include "mcunn.h"
#include "mcunn_support.h"

mcu_status mcu_fully_connected_s8(const mcu_context *ctx,
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
    const int32_t depth = filter_dims->n;
    const int32_t out_ch = output_dims->c;
    if (input_dims->c != depth || filter_dims->c != out_ch)
    {
        return MCU_ARG_ERROR;
    }
    for (int32_t r = 0; r < input_dims->n; r++)
    {
        const int8_t *in_r = input + r * depth;
        for (int32_t o = 0; o < out_ch; o++)
        {
            const int8_t *w = filter + o * depth;
            int32_t acc = bias ? bias[o] : 0;
            for (int32_t k = 0; k < depth; k++)
            {
                acc += (in_r[k] + fc_params->input_offset) * (w[k] + fc_params->filter_offset);
            }
            acc = mcu_requantize(acc, quant_params->multiplier[o], quant_params->shift[o]);
            acc += fc_params->output_offset;
            output[r * out_ch + o] = (int8_t)MCU_CLAMP(acc, fc_params->activation.min, fc_params->activation.max);
        }
    }
    return MCU_OK;
}
