/* Runs every case of kt_cases through the portable kernel (the reference) and the fast kernel and compares the
 * outputs byte for byte; prints one line per failing case and ends with "MCU END <failures>".
 * The fast kernels are the DSP ones, or the MVE ones when mve_main.c includes this file with KT_MVE (and its
 * extra check, KT_EXTRA_CHECK(): failures, run after the cases).
 * Host (KT_HOST): outputs and scratch are malloc'd at their exact sizes so AddressSanitizer sees any
 * overrun. Firmware: static buffers, printing through the board port (semihosting). */
#include <stdint.h>
#include <string.h>

#include "kernel_cases.h"

#ifdef KT_MVE
#define KT_CONV_FAST mcu_conv_mve_s8
#define KT_CONV_1X1_FAST mcu_conv_1x1_mve_s8
#define KT_DWCONV_FAST mcu_dwconv_mve_s8
#define KT_DWCONV_3X3_FAST mcu_dwconv_3x3_mve_s8
#define KT_FC_FAST mcu_fully_connected_mve_s8
#else
#define KT_CONV_FAST mcu_conv_dsp_s8
#define KT_CONV_1X1_FAST mcu_conv_1x1_dsp_s8
#define KT_DWCONV_FAST mcu_dwconv_dsp_s8
#define KT_DWCONV_3X3_FAST mcu_dwconv_dsp_s8 /* no separate 3x3 DSP kernel */
#define KT_FC_FAST mcu_fully_connected_dsp_s8
#endif

#include "kt_text.h"

#ifdef KT_HOST
#include <stdlib.h>
#else
#define KT_MAX_BYTES 65536
static int8_t kt_out_ref[KT_MAX_BYTES], kt_out_fast[KT_MAX_BYTES];
static int32_t kt_scratch_ref[KT_MAX_BYTES / 4], kt_scratch_fast[KT_MAX_BYTES / 4];
#endif

static void report(int32_t i, const char *what, int32_t a, int32_t b)
{
    char line[200];
    char *p = kt_put_str(line, "MCU CASE ");
    p = kt_put_int(p, i);
    p = kt_put_str(p, " FAIL ");
    p = kt_put_str(p, what);
    p = kt_put_str(p, " ");
    p = kt_put_int(p, a);
    p = kt_put_str(p, " ");
    p = kt_put_int(p, b);
    p = kt_put_str(p, " (");
    p = kt_put_str(p, kt_cases[i].describe);
    p = kt_put_str(p, ")\n");
    *p = '\0';
    kt_print(line);
}

/* Returns the number of differing bytes (or -1 when a kernel failed). */
static int32_t run_case(int32_t i)
{
    const kt_case *c = &kt_cases[i];
    const int32_t n = c->output_size;
#ifdef KT_HOST
    int8_t *ref = malloc((size_t)n + 1), *fast = malloc((size_t)n + 1);
    void *s_ref = c->scratch_ref ? malloc((size_t)c->scratch_ref) : NULL;
    void *s_fast = c->scratch_fast ? malloc((size_t)c->scratch_fast) : NULL;
#else
    int8_t *ref = kt_out_ref, *fast = kt_out_fast;
    void *s_ref = kt_scratch_ref, *s_fast = kt_scratch_fast;
    if (n > KT_MAX_BYTES || c->scratch_ref > KT_MAX_BYTES || c->scratch_fast > KT_MAX_BYTES)
    {
        report(i, "too-big", n, 0);
        return -1;
    }
#endif
    memset(ref, 0x5A, (size_t)n);
    memset(fast, 0x21, (size_t)n);
    const mcu_context ctx_ref = {s_ref, c->scratch_ref}, ctx_fast = {s_fast, c->scratch_fast};
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    mcu_status st_ref = MCU_OK, st_fast = MCU_OK;
    switch (c->kind)
    {
    case KT_CONV_1X1:
    case KT_CONV:
        st_ref = mcu_conv_s8(&ctx_ref, &c->conv, &q, &c->input_dims, c->input, &c->filter_dims, c->filter, &bias_dims,
                             c->bias, &c->output_dims, ref);
        st_fast = (c->kind == KT_CONV ? KT_CONV_FAST : KT_CONV_1X1_FAST)(
            &ctx_fast, &c->conv, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter, &bias_dims,
            c->fast_bias, &c->output_dims, fast);
        break;
    case KT_DWCONV:
    case KT_DWCONV_3X3:
        st_ref = mcu_dwconv_s8(&ctx_ref, &c->dw, &q, &c->input_dims, c->input, &c->filter_dims, c->filter,
                               &bias_dims, c->bias, &c->output_dims, ref);
        st_fast = (c->kind == KT_DWCONV ? KT_DWCONV_FAST : KT_DWCONV_3X3_FAST)(
            &ctx_fast, &c->dw, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter, &bias_dims,
            c->fast_bias, &c->output_dims, fast);
        break;
    default:
        st_ref = mcu_fully_connected_s8(&ctx_ref, &c->fc, &q, &c->input_dims, c->input, &c->filter_dims, c->filter,
                                        &bias_dims, c->bias, &c->output_dims, ref);
        st_fast = KT_FC_FAST(&ctx_fast, &c->fc, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter,
                             &bias_dims, c->fast_bias, &c->output_dims, fast);
        break;
    }
    int32_t bad = 0;
    if (st_ref != MCU_OK || st_fast != MCU_OK)
    {
        report(i, "status", (int32_t)st_ref, (int32_t)st_fast);
        bad = -1;
    }
    else
    {
        int32_t first = -1;
        for (int32_t k = 0; k < n; k++)
        {
            if (ref[k] != fast[k])
            {
                first = first < 0 ? k : first;
                bad++;
            }
        }
        if (bad)
        {
            report(i, "bytes", bad, first);
        }
    }
#ifdef KT_HOST
    free(ref);
    free(fast);
    free(s_ref);
    free(s_fast);
#endif
    return bad;
}

int main(void)
{
#ifndef KT_HOST
    board_init();
#endif
    int32_t failed = 0;
    for (int32_t i = 0; i < kt_num_cases; i++)
    {
        failed += run_case(i) != 0;
    }
#ifdef KT_EXTRA_CHECK
    failed += KT_EXTRA_CHECK() != 0;
#endif
    kt_print_summary("CASES", kt_num_cases, failed);
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0; /* the firmware reports through "MCU END"; a non-zero exit would hide the lines */
#endif
}
