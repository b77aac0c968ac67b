/* Per-kernel benchmark firmware (bench/kernels.py; bench/kernels_mve.py through mve_bench_main.c, which sets
 * KT_MVE): each layer of kt_cases runs through the portable kernel, the fast kernel (DSP, or MVE with KT_MVE)
 * and, with KT_CMSIS, CMSIS-NN's wrapper for the same layer (on MVE its FC kernel sums computed before the
 * timed call, as TFLite Micro's Prepare does); prints the instructions each took (board_counter(): SysTick
 * under QEMU -icount shift=0, minus the cost of an empty timed region) and whether its output equals the
 * portable kernel's:
 *   MCU K <case> <variant> <instructions> <equal>
 *   MCU END 0 */
#include <stdint.h>
#include <string.h>

#include "board_port.h"
#include "kt_text.h"
#include "kernel_cases.h"

#ifdef KT_CMSIS
#include "arm_nnfunctions.h"
#endif

#define KT_MAX_OUT 40000
#define KT_SCRATCH 32768
static int8_t out_ref[KT_MAX_OUT], out_var[KT_MAX_OUT];
static int32_t scratch[KT_SCRATCH / 4];
static uint64_t overhead;
#if defined(KT_CMSIS) && defined(KT_MVE)
static int32_t kernel_sums[1024];
#endif

#ifdef KT_MVE
#define KT_CONV_FAST mcu_conv_mve_s8
#define KT_CONV_1X1_FAST mcu_conv_1x1_mve_s8
#define KT_DWCONV_FAST mcu_dwconv_mve_s8
#define KT_FC_FAST mcu_fully_connected_mve_s8
#else
#define KT_CONV_FAST mcu_conv_dsp_s8
#define KT_CONV_1X1_FAST mcu_conv_1x1_dsp_s8
#define KT_DWCONV_FAST mcu_dwconv_dsp_s8
#define KT_FC_FAST mcu_fully_connected_dsp_s8
#endif

static void print_result(int32_t i, const char *variant, uint64_t n, int equal)
{
    char line[96];
    char *p = kt_put_str(line, "MCU K ");
    p = kt_put_u64(p, (uint64_t)i);
    p = kt_put_str(p, " ");
    p = kt_put_str(p, variant);
    p = kt_put_str(p, " ");
    p = kt_put_u64(p, n);
    p = kt_put_str(p, equal ? " 1\n" : " 0\n");
    *p = '\0';
    board_print(line);
}

typedef int (*kt_runner)(const kt_case *c, int8_t *out);

static int run_portable(const kt_case *c, int8_t *out)
{
    const mcu_context ctx = {scratch, KT_SCRATCH};
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    switch (c->kind)
    {
    case KT_CONV_1X1:
    case KT_CONV:
        return mcu_conv_s8(&ctx, &c->conv, &q, &c->input_dims, c->input, &c->filter_dims, c->filter, &bias_dims,
                           c->bias, &c->output_dims, out);
    case KT_DWCONV:
        return mcu_dwconv_s8(&ctx, &c->dw, &q, &c->input_dims, c->input, &c->filter_dims, c->filter, &bias_dims,
                             c->bias, &c->output_dims, out);
    default:
        return mcu_fully_connected_s8(&ctx, &c->fc, &q, &c->input_dims, c->input, &c->filter_dims, c->filter,
                                      &bias_dims, c->bias, &c->output_dims, out);
    }
}

static int run_fast(const kt_case *c, int8_t *out)
{
    const mcu_context ctx = {scratch, c->scratch_fast};
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    switch (c->kind)
    {
    case KT_CONV_1X1:
        return KT_CONV_1X1_FAST(&ctx, &c->conv, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter,
                                &bias_dims, c->fast_bias, &c->output_dims, out);
    case KT_CONV:
        return KT_CONV_FAST(&ctx, &c->conv, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter,
                            &bias_dims, c->fast_bias, &c->output_dims, out);
    case KT_DWCONV:
        return KT_DWCONV_FAST(&ctx, &c->dw, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter,
                              &bias_dims, c->fast_bias, &c->output_dims, out);
    default:
        return KT_FC_FAST(&ctx, &c->fc, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter,
                          &bias_dims, c->fast_bias, &c->output_dims, out);
    }
}

#ifdef KT_CMSIS
/* CMSIS-NN's structs mirror ours field for field (mcunn_types.h); its conv params have no groups. */
static int run_cmsis(const kt_case *c, int8_t *out)
{
    cmsis_nn_context ctx = {scratch, KT_SCRATCH};
    cmsis_nn_per_channel_quant_params q = {(int32_t *)c->multiplier, (int32_t *)c->shift};
    const cmsis_nn_dims in = {c->input_dims.n, c->input_dims.h, c->input_dims.w, c->input_dims.c};
    const cmsis_nn_dims f = {c->filter_dims.n, c->filter_dims.h, c->filter_dims.w, c->filter_dims.c};
    const cmsis_nn_dims o = {c->output_dims.n, c->output_dims.h, c->output_dims.w, c->output_dims.c};
    const cmsis_nn_dims b = {1, 1, 1, c->output_dims.c};
    switch (c->kind)
    {
    case KT_CONV_1X1:
    case KT_CONV:
    {
        const cmsis_nn_conv_params p = {c->conv.input_offset, c->conv.output_offset,
                                        {c->conv.stride.w, c->conv.stride.h}, {c->conv.padding.w, c->conv.padding.h},
                                        {c->conv.dilation.w, c->conv.dilation.h},
                                        {c->conv.activation.min, c->conv.activation.max}};
        ctx.size = arm_convolve_wrapper_s8_get_buffer_size(&p, &in, &f, &o);
        if (ctx.size > KT_SCRATCH)
        {
            return -99;
        }
        return arm_convolve_wrapper_s8(&ctx, &p, &q, &in, c->input, &f, c->filter, &b, c->bias, &o, out);
    }
    case KT_DWCONV:
    {
        const cmsis_nn_dw_conv_params p = {c->dw.input_offset, c->dw.output_offset, c->dw.ch_mult,
                                           {c->dw.stride.w, c->dw.stride.h}, {c->dw.padding.w, c->dw.padding.h},
                                           {c->dw.dilation.w, c->dw.dilation.h},
                                           {c->dw.activation.min, c->dw.activation.max}};
        ctx.size = arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in, &f, &o);
        if (ctx.size > KT_SCRATCH)
        {
            return -99;
        }
        return arm_depthwise_conv_wrapper_s8(&ctx, &p, &q, &in, c->input, &f, c->filter, &b, c->bias, &o, out);
    }
    default:
    {
        const cmsis_nn_fc_params p = {c->fc.input_offset, 0, c->fc.output_offset,
                                      {c->fc.activation.min, c->fc.activation.max}};
#ifdef KT_MVE
        /* on MVE the buffer holds the kernel sums (bias + input_offset * sum(w)), filled before the timed call */
        ctx.buf = kernel_sums;
#endif
        ctx.size = arm_fully_connected_s8_get_buffer_size(&f);
        return arm_fully_connected_per_channel_s8(&ctx, &p, &q, &in, c->input, &f, c->filter, &b, c->bias, &o, out);
    }
    }
}
#endif

__attribute__((noipa)) static uint64_t timed(kt_runner run, const kt_case *c, int8_t *out, int *status)
{
    __asm__ volatile("" ::: "memory");
    const uint64_t t0 = board_counter();
    __asm__ volatile("" ::: "memory");
    *status = run ? run(c, out) : 0;
    __asm__ volatile("" ::: "memory");
    const uint64_t t1 = board_counter();
    __asm__ volatile("" ::: "memory");
    return t1 - t0;
}

static void bench(int32_t i, const char *name, kt_runner run)
{
    const kt_case *c = &kt_cases[i];
    int status = 0;
    memset(out_var, 0x33, (size_t)c->output_size);
    const uint64_t n = timed(run, c, out_var, &status);
    const int equal = status == 0 && memcmp(out_ref, out_var, (size_t)c->output_size) == 0;
    print_result(i, name, n > overhead ? n - overhead : 0, equal);
}

int main(void)
{
    board_init();
    int status = 0;
    overhead = timed(0, &kt_cases[0], out_var, &status);
    for (int32_t i = 0; i < kt_num_cases; i++)
    {
        const kt_case *c = &kt_cases[i];
        if (c->output_size > KT_MAX_OUT)
        {
            board_print("MCU FAULT output too big\n");
            return 2;
        }
        memset(out_ref, 0x44, (size_t)c->output_size);
        (void)run_portable(c, out_ref);
        bench(i, "portable", run_portable);
        bench(i, "fast", run_fast);
#ifdef KT_CMSIS
#ifdef KT_MVE
        if (c->kind == KT_FC)
        {
            if (c->output_dims.c > 1024)
            {
                board_print("MCU FAULT too many FC channels\n");
                return 2;
            }
            (void)arm_vector_sum_s8(kernel_sums, c->filter_dims.n, c->output_dims.c, c->filter, c->fc.input_offset, 0,
                                    c->bias);
        }
#endif
        bench(i, "cmsis", run_cmsis);
#endif
    }
    board_print("MCU END 0\n");
    return 0;
}
