/* Scratch-free SIMD32 packed conv benchmark firmware (bench/packed_kernels.py --board qemu-m4): each layer of
 * pk_cases (groups-1 convolutions) runs once through the portable packed kernel and once through its SIMD32 kernel,
 * timed with board_counter() (SysTick under QEMU -icount shift=0, less the cost of an empty timed region): a case
 * with scratch_fast > 0 carries the im2col kernel's constants (mcu_conv_dsp_a<b>w8_s8, given that scratch), one with
 * scratch_fast 0 the scratch-free kernel's (mcu_conv_lean_dsp_a<b>w8_s8, a NULL context). Prints, per layer and
 * variant, the instructions and whether the output equals the simulator's bytes:
 *   MCU K <case> <portable|fast> <instructions> <equal>
 *   MCU END 0 */
#include <stdint.h>
#include <string.h>

#include "board_port.h"
#include "kt_text.h"
#include "packed_cases.h"
#include "pk_harness.h"

#define PL_MAX_OUT 40000 /* performance.md shape 1 at a8 out: 36,864 B */
#define PL_SCRATCH 16384
static uint8_t out_buf[PL_MAX_OUT];
static int32_t scratch[PL_SCRATCH / 4];
static uint64_t overhead;

static pk_conv_fn pl_kernel(int32_t bits, int fast, int lean)
{
    if (bits == 4)
    {
        return !fast ? mcu_conv_a4w8_s8 : lean ? mcu_conv_lean_dsp_a4w8_s8 : mcu_conv_dsp_a4w8_s8;
    }
    if (bits == 2)
    {
        return !fast ? mcu_conv_a2w8_s8 : lean ? mcu_conv_lean_dsp_a2w8_s8 : mcu_conv_dsp_a2w8_s8;
    }
    return !fast ? mcu_conv_a8w8_s8 : lean ? mcu_conv_lean_dsp_a8w8_s8 : mcu_conv_dsp_a8w8_s8;
}

static int run(const pk_case *c, int fast)
{
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    const mcu_context ctx = {scratch, PL_SCRATCH};
    const int lean = c->scratch_fast == 0;
    return pl_kernel(c->in_bits, fast, lean)(fast && lean ? NULL : &ctx, &c->conv, &q, c->out_bits, &c->input_dims,
                                             c->input, &c->filter_dims, fast ? c->fast_filter : c->filter,
                                             &bias_dims, fast ? c->fast_bias : c->bias, &c->output_dims, out_buf);
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
            const int fits = c->output_bytes <= PL_MAX_OUT;
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
