/* The MVE packed-activation kernels (mcunn_packed_mve.h) against the simulator, and their instruction counts
 * (tests/test_packed_mve.py, bench/packed_kernels.py --board qemu-m55). Cases from packed_cases.py, with the MVE
 * kernels' weights and folded bias as fast_filter / fast_bias and their scratch size as scratch_fast.
 *
 * Every case runs once through its portable kernel and, where has_fast, its MVE kernel (a case at 8 bits in and
 * out: the int8 MVE kernels of mcunn_mve.h, what an int8 layer runs: mcu_conv_1x1_mve_s8 for 1x1 windows inside
 * the input, mcu_conv_mve_s8 otherwise, mcu_dwconv_mve_s8), each timed with board_counter() (SysTick under QEMU
 * -icount shift=0, less an empty timed region), its output compared with the simulator's bytes (every output byte
 * written: the buffer is filled with 0xA5 first). Prints per case and kernel
 *   MCU K <case> <portable|mve> <instructions> <equal>
 * a FAIL line per mismatch or scratch-size disagreement, then "MCU PACKED MVE CASES <n> failed <f>" and
 * "MCU END <f>". With -DPM_AGAINST_PORTABLE the MVE output is compared with the portable kernel's instead (builds
 * whose rounding or optimisation the simulator's bytes do not describe: MCU_SINGLE_ROUNDING 1, -O0).
 * Firmware only (integer MVE: qemu-m55). */
#include <stdint.h>
#include <string.h>

#include "kt_text.h"
#include "mcunn.h"
#include "mcunn_mve.h"
#include "mcunn_packed_mve.h"
#include "packed_cases.h"
#define PK_FAST_KERNEL(op, a) mcu_##op##_mve_##a##w8_s8
#include "pk_harness.h"

#if !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#error "packed_mve_main.c needs an integer-MVE target (-mcpu=cortex-m55)"
#endif

#define PM_MAX_OUT 40000
#define PM_SCRATCH 16384
static uint8_t out_buf[PM_MAX_OUT];
#ifdef PM_AGAINST_PORTABLE
static uint8_t ref_buf[PM_MAX_OUT];
#endif
static int32_t scratch[PM_SCRATCH / 4];
static uint64_t overhead;

/* The int8 layer's kernel (8 bits in and out). */
static mcu_status run_int8(const pk_case *c, int mve, const mcu_context *ctx, const mcu_per_channel_quant_params *q,
                           const mcu_dims *bias_dims)
{
    const int8_t *x = (const int8_t *)c->input;
    int8_t *y = (int8_t *)out_buf;
    if (c->kind == PK_CONV)
    {
        if (!mve)
        {
            return mcu_conv_s8(ctx, &c->conv, q, &c->input_dims, x, &c->filter_dims, c->filter, bias_dims, c->bias,
                               &c->output_dims, y);
        }
        const int one = c->filter_dims.h == 1 && c->filter_dims.w == 1 && c->conv.padding.h <= 0 &&
                        c->conv.padding.w <= 0;
        return (one ? mcu_conv_1x1_mve_s8 : mcu_conv_mve_s8)(ctx, &c->conv, q, &c->input_dims, x, &c->filter_dims,
                                                              c->fast_filter, bias_dims, c->fast_bias,
                                                              &c->output_dims, y);
    }
    if (!mve)
    {
        return mcu_dwconv_s8(ctx, &c->dw, q, &c->input_dims, x, &c->filter_dims, c->filter, bias_dims, c->bias,
                             &c->output_dims, y);
    }
    return mcu_dwconv_mve_s8(ctx, &c->dw, q, &c->input_dims, x, &c->filter_dims, c->fast_filter, bias_dims,
                             c->fast_bias, &c->output_dims, y);
}

static int run(const pk_case *c, int mve)
{
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    /* the MVE kernels get exactly the scratch they declare (a short one is refused) */
    const mcu_context ctx = {scratch, mve ? c->scratch_fast : PM_SCRATCH};
    if (c->in_bits == 8 && c->out_bits == 8)
    {
        return run_int8(c, mve, &ctx, &q, &bias_dims);
    }
    const int8_t *filter = mve ? c->fast_filter : c->filter;
    const int32_t *bias = mve ? c->fast_bias : c->bias;
    if (c->kind == PK_CONV)
    {
        return pk_conv_kernel(c->in_bits, mve)(&ctx, &c->conv, &q, c->out_bits, &c->input_dims, c->input,
                                               &c->filter_dims, filter, &bias_dims, bias, &c->output_dims, out_buf);
    }
    return pk_dw_kernel(c->in_bits, mve)(&ctx, &c->dw, &q, c->out_bits, &c->input_dims, c->input, &c->filter_dims,
                                         filter, &bias_dims, bias, &c->output_dims, out_buf);
}

int main(void)
{
    board_init();
    int status = 0;
    int32_t failed = 0;
    overhead = pk_timed(NULL, NULL, 0, &status);
    for (int32_t i = 0; i < pk_num_cases; i++)
    {
        const pk_case *c = &pk_cases[i];
        int bad = 0;
        if (c->output_bytes > PM_MAX_OUT || c->scratch_fast > PM_SCRATCH)
        {
            pk_fail(i, "too large for the firmware buffers", c->output_bytes, c->scratch_fast);
            failed++;
            continue;
        }
        if (c->has_fast && !(c->in_bits == 8 && c->out_bits == 8))
        {
            const int32_t need = c->kind == PK_CONV
                                     ? mcu_conv_mve_get_buffer_size_packed(&c->input_dims, &c->filter_dims, c->out_bits)
                                     : mcu_dwconv_mve_get_buffer_size_packed(&c->input_dims, c->in_bits);
            /* a case without scratch (the compiler's scratch-free conv) where the kernel runs without */
            const int none_ok = c->kind == PK_CONV && c->scratch_fast == 0 && mcu_conv_mve_scratch_free_packed(&c->filter_dims);
            if (need != c->scratch_fast && !none_ok)
            {
                pk_fail(i, "MVE scratch bytes (C, compiler)", need, c->scratch_fast);
                bad = 1;
            }
        }
        for (int mve = 0; mve < 1 + (c->has_fast != 0); mve++)
        {
            memset(out_buf, 0xA5, (size_t)c->output_bytes);
            const uint64_t n = pk_timed(run, c, mve, &status) - overhead;
            int32_t diff = 0, first = -1;
            const uint8_t *expected = c->expected;
#ifdef PM_AGAINST_PORTABLE
            if (!mve)
            {
                memcpy(ref_buf, out_buf, (size_t)c->output_bytes);
            }
            expected = mve ? ref_buf : out_buf;
#endif
            for (int32_t k = 0; k < c->output_bytes; k++)
            {
                if (out_buf[k] != expected[k])
                {
                    first = first < 0 ? k : first;
                    diff++;
                }
            }
            if (status != 0)
            {
                pk_fail(i, mve ? "MVE status" : "portable status", status, 0);
            }
            else if (diff)
            {
                pk_fail(i, mve ? "MVE bytes differ (count, first)" : "portable bytes differ (count, first)", diff, first);
            }
            bad |= status != 0 || diff != 0;
            char line[96];
            char *p = kt_put_str(line, "MCU K ");
            p = kt_put_int(p, i);
            p = kt_put_str(p, mve ? " mve " : " portable ");
            p = kt_put_int(p, (int64_t)n);
            p = kt_put_str(p, status == 0 && diff == 0 ? " 1\n" : " 0\n");
            *p = '\0';
            kt_print(line);
        }
        failed += bad;
    }
    kt_print_summary("PACKED MVE CASES", pk_num_cases, failed);
    return 0;
}
