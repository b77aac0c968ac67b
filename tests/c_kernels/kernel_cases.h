/* One random layer of the DSP kernel tests: the portable kernel's arguments and the fast kernel's
 * (weights in the fast layout, the bias the fast kernel takes), written by tests/c_kernels/harness.py. */
#ifndef KERNEL_CASES_H
#define KERNEL_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "mcunn.h"
#include "mcunn_dsp.h"

enum
{
    KT_CONV_1X1 = 0, /* mcu_conv_s8 vs mcu_conv_1x1_dsp_s8 */
    KT_CONV = 1,     /* mcu_conv_s8 vs mcu_conv_dsp_s8 */
    KT_DWCONV = 2,   /* mcu_dwconv_s8 vs mcu_dwconv_dsp_s8 */
    KT_FC = 3,       /* mcu_fully_connected_s8 vs mcu_fully_connected_dsp_s8 */
    KT_DWCONV_3X3 = 4 /* mcu_dwconv_s8 vs mcu_dwconv_3x3_mve_s8 (MVE builds only) */
};

typedef struct
{
    int32_t kind;
    const char *describe;
    mcu_conv_params conv;
    mcu_dw_conv_params dw;
    mcu_fc_params fc;
    mcu_dims input_dims, filter_dims, output_dims;
    const int8_t *input, *filter, *fast_filter;
    const int32_t *bias, *fast_bias, *multiplier, *shift;
    int32_t output_size, scratch_ref, scratch_fast;
} kt_case;

extern const kt_case kt_cases[];
extern const int32_t kt_num_cases;

#endif
