/* Packed-activation kernel benchmark firmware (bench/packed_kernels.py): each layer of pk_cases runs once
 * through its portable and its DSP kernel, timed with board_counter() (SysTick under QEMU -icount shift=0, less
 * the cost of an empty timed region). Layers with 8-bit input and output run the int8 kernels (mcu_conv_s8 /
 * mcu_conv_dsp_s8, mcu_dwconv_s8 / mcu_dwconv_dsp_s8; an int8 depthwise layer has input zero point 0 and no bias,
 * so the DSP kernel's folded bias equals the model's),
 * the others the a<b>w8 kernels. Prints, per layer and variant, the instructions and whether the output equals
 * the simulator's bytes:
 *   MCU K <case> <portable|fast> <instructions> <equal>
 *   MCU END 0 */
#include <stdint.h>
#include <string.h>

#include "board_port.h"
#include "kt_text.h"
#include "mcunn.h"
#include "mcunn_dsp.h"
#include "packed_cases.h"
#include "pk_harness.h"

#define PB_MAX_OUT 40000
#define PB_SCRATCH 16384
static uint8_t out_buf[PB_MAX_OUT];
static int32_t scratch[PB_SCRATCH / 4];
static uint64_t overhead;

static int run(const pk_case *c, int fast)
{
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    mcu_context ctx = {scratch, PB_SCRATCH};
    const int int8 = c->in_bits == 8 && c->out_bits == 8;
    if (c->kind == PK_CONV)
    {
        if (int8)
        {
            return fast ? mcu_conv_dsp_s8(&ctx, &c->conv, &q, &c->input_dims, (const int8_t *)c->input,
                                          &c->filter_dims, c->fast_filter, &bias_dims, c->bias, &c->output_dims,
                                          (int8_t *)out_buf)
                        : mcu_conv_s8(&ctx, &c->conv, &q, &c->input_dims, (const int8_t *)c->input, &c->filter_dims,
                                      c->filter, &bias_dims, c->bias, &c->output_dims, (int8_t *)out_buf);
        }
        if (c->in_bits == 4)
        {
            return (fast ? mcu_conv_dsp_a4w8_s8 : mcu_conv_a4w8_s8)(&ctx, &c->conv, &q, c->out_bits, &c->input_dims,
                                                                  c->input, &c->filter_dims,
                                                                  fast ? c->fast_filter : c->filter, &bias_dims,
                                                                  fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
        }
        if (c->in_bits == 8)
        {
            return (fast ? mcu_conv_dsp_a8w8_s8 : mcu_conv_a8w8_s8)(&ctx, &c->conv, &q, c->out_bits, &c->input_dims,
                                                                  c->input, &c->filter_dims,
                                                                  fast ? c->fast_filter : c->filter, &bias_dims,
                                                                  fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
        }
        return (fast ? mcu_conv_dsp_a2w8_s8 : mcu_conv_a2w8_s8)(&ctx, &c->conv, &q, c->out_bits, &c->input_dims,
                                                              c->input, &c->filter_dims,
                                                              fast ? c->fast_filter : c->filter, &bias_dims,
                                                              fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
    }
    if (int8)
    {
        return fast ? mcu_dwconv_dsp_s8(&ctx, &c->dw, &q, &c->input_dims, (const int8_t *)c->input, &c->filter_dims,
                                        c->fast_filter, &bias_dims, c->bias, &c->output_dims, (int8_t *)out_buf)
                    : mcu_dwconv_s8(&ctx, &c->dw, &q, &c->input_dims, (const int8_t *)c->input, &c->filter_dims,
                                    c->filter, &bias_dims, c->bias, &c->output_dims, (int8_t *)out_buf);
    }
    if (c->in_bits == 4)
    {
        return (fast ? mcu_dwconv_dsp_a4w8_s8 : mcu_dwconv_a4w8_s8)(&ctx, &c->dw, &q, c->out_bits, &c->input_dims,
                                                                  c->input, &c->filter_dims,
                                                                  fast ? c->fast_filter : c->filter, &bias_dims,
                                                                  fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
    }
    if (c->in_bits == 8)
    {
        return (fast ? mcu_dwconv_dsp_a8w8_s8 : mcu_dwconv_a8w8_s8)(&ctx, &c->dw, &q, c->out_bits, &c->input_dims,
                                                                  c->input, &c->filter_dims,
                                                                  fast ? c->fast_filter : c->filter, &bias_dims,
                                                                  fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
    }
    return (fast ? mcu_dwconv_dsp_a2w8_s8 : mcu_dwconv_a2w8_s8)(&ctx, &c->dw, &q, c->out_bits, &c->input_dims,
                                                              c->input, &c->filter_dims,
                                                              fast ? c->fast_filter : c->filter, &bias_dims,
                                                              fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
}

int main(void)
{
    board_init();
    int status = 0;
    overhead = pk_timed(NULL, NULL, 0, &status);
    for (int32_t i = 0; i < pk_num_cases; i++)
    {
        const pk_case *c = &pk_cases[i];
        for (int fast = 0; fast < 2; fast++)
        {
            /* a case whose output does not fit out_buf is not run (it would write past it): reported unequal */
            const int fits = c->output_bytes <= PB_MAX_OUT;
            if (fits)
            {
                memset(out_buf, 0, (size_t)c->output_bytes);
            }
            const uint64_t n = fits ? pk_timed(run, c, fast, &status) - overhead : 0;
            const int equal = fits && status == 0 && memcmp(out_buf, c->expected, (size_t)c->output_bytes) == 0;
            char line[96];
            char *p = kt_put_str(line, "MCU K ");
            p = kt_put_u64(p, (uint64_t)i);
            p = kt_put_str(p, fast ? " fast " : " portable ");
            p = kt_put_u64(p, n);
            p = kt_put_str(p, equal ? " 1\n" : " 0\n");
            *p = '\0';
            board_print(line);
        }
    }
    board_print("MCU END 0\n");
    return 0;
}
