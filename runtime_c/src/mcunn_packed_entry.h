/* The public entry points of the packed-activation convolutions, private to the files that define them: the
 * portable kernels (mcunn_packed.c), the DSP ones (mcunn_packed_dsp.c) and the MVE ones (mcunn_packed_mve.c).
 * Every mcu_conv[_dsp|_mve]_a<b>w8_s8 and mcu_dwconv[_dsp|_mve]_a<b>w8_s8 of mcunn_packed.h and
 * mcunn_packed_mve.h has the same signature; each only passes its input bits on to the file's implementation,
 * which checks the arguments. Macros, not a function: each entry point stays the one call it was. */
#ifndef MCUNN_PACKED_ENTRY_H
#define MCUNN_PACKED_ENTRY_H

#include <stdint.h>

#include "mcunn_types.h"

/* The signature of packed convolution entry point `name`. */
#define MCU_PACKED_CONV_SIGNATURE(name)                                                                         \
    mcu_status name(const mcu_context *ctx, const mcu_conv_params *conv_params,                                \
                    const mcu_per_channel_quant_params *quant_params, int32_t output_bits,                      \
                    const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,              \
                    const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,                       \
                    const mcu_dims *output_dims, uint8_t *output)

/* The signature of packed depthwise convolution entry point `name`. */
#define MCU_PACKED_DWCONV_SIGNATURE(name)                                                                       \
    mcu_status name(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,                               \
                    const mcu_per_channel_quant_params *quant_params, int32_t output_bits,                      \
                    const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,              \
                    const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,                       \
                    const mcu_dims *output_dims, uint8_t *output)

/* Convolution entry point `name` for in_bits-bit input: impl(in_bits, ctx, conv_params, quant_params,
 * output_bits, input_dims, input, filter_dims, filter, bias, output_dims, output) (the bias has one value per
 * output channel: bias_dims is not read). */
#define MCU_PACKED_CONV_ENTRY(name, impl, in_bits)                                                              \
    MCU_PACKED_CONV_SIGNATURE(name)                                                                             \
    {                                                                                                           \
        (void)bias_dims;                                                                                        \
        return impl(in_bits, ctx, conv_params, quant_params, output_bits, input_dims, input, filter_dims,      \
                    filter, bias, output_dims, output);                                                         \
    }

/* Depthwise convolution entry point `name` for in_bits-bit input, as MCU_PACKED_CONV_ENTRY. */
#define MCU_PACKED_DWCONV_ENTRY(name, impl, in_bits)                                                            \
    MCU_PACKED_DWCONV_SIGNATURE(name)                                                                           \
    {                                                                                                           \
        (void)bias_dims;                                                                                        \
        return impl(in_bits, ctx, dw_params, quant_params, output_bits, input_dims, input, filter_dims, filter, \
                    bias, output_dims, output);                                                                 \
    }

#endif /* MCUNN_PACKED_ENTRY_H */
