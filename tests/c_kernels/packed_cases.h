/* One random layer of the packed-activation kernel tests, written by tests/c_kernels/packed_cases.py. */
#ifndef PACKED_CASES_H
#define PACKED_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "mcunn_packed.h"

enum
{
    PK_CONV = 0,  /* mcu_conv_a<b>w8_s8 and, groups 1, mcu_conv_dsp_a<b>w8_s8 */
    PK_DWCONV = 1 /* mcu_dwconv_a<b>w8_s8 and, multiplier 1, mcu_dwconv_dsp_a<b>w8_s8 */
};

typedef struct
{
    int32_t kind, in_bits, out_bits;
    const char *describe;
    mcu_conv_params conv;
    mcu_dw_conv_params dw;
    mcu_dims input_dims, filter_dims, output_dims;
    const uint8_t *input;
    const int8_t *filter, *fast_filter;
    const int32_t *bias, *fast_bias, *multiplier, *shift;
    const uint8_t *expected;
    int32_t output_bytes, has_fast, scratch_fast;
} pk_case;

extern const pk_case pk_cases[];
extern const int32_t pk_num_cases;

#endif
