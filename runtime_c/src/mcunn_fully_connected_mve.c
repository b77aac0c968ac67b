/* Fully connected layer for MVE (Helium, Cortex-M55): the matrix core of mcunn_conv_mve.c, two input rows
 * (batches) at a time, weights in the "quads" layout, the input zero-point term folded into the bias.
 * Compiled only with integer MVE; empty elsewhere. */
#include "mcunn_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <stddef.h>

#include "mcunn_mve_internal.h"
#include "mcunn_mve_support.h"

int32_t mcu_fully_connected_mve_get_buffer_size_s8(const mcu_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

mcu_status mcu_fully_connected_mve_s8(const mcu_context *ctx,
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
    const int32_t rows = input_dims->n, depth = filter_dims->n, cout = filter_dims->c;
    if (input_dims->c != depth || output_dims->c != cout || fc_params->filter_offset != 0 || rows < 0 || depth < 1 ||
        cout < 1)
    {
        return MCU_ARG_ERROR;
    }
    mcu_mve_mat m;
    m.weights = filter;
    m.bias = bias;
    m.mult = quant_params->multiplier;
    m.shift = quant_params->shift;
    m.k = depth;
    m.cout = cout;
    m.out_offset = fc_params->output_offset;
    m.lo = fc_params->activation.min;
    m.hi = fc_params->activation.max;
    m.vector_ok = mcu_mve_requant_vector_ok(quant_params->shift, cout);
    m.right_only = mcu_mve_shifts_right_only(quant_params->shift, cout);
    int32_t r = 0;
    for (; r + 1 < rows; r += 2)
    {
        mcu_mve_mat_mult(&m, input + r * depth, input + (r + 1) * depth, output + r * cout, output + (r + 1) * cout);
    }
    if (r < rows)
    {
        mcu_mve_mat_mult(&m, input + r * depth, NULL, output + r * cout, NULL);
    }
    return MCU_OK;
}

#else
typedef int mcu_fully_connected_mve_unused; /* ISO C: no empty translation unit */
#endif
