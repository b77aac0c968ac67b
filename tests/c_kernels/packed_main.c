/* Runs every case of pk_cases through the portable packed kernel and, where it applies, its DSP version, and
 * compares each output with the simulator's bytes; checks the DSP scratch size against the compiler's; prints
 * one line per failure and ends with "MCU PACKED CASES <n> failed <failures>" and "MCU END <failures>".
 * Host (KT_HOST): outputs and scratch malloc'd at their exact sizes (AddressSanitizer sees any overrun).
 * Firmware: static buffers, printing through the board port (semihosting). */
#include <stdint.h>
#include <string.h>

#include "packed_cases.h"

#include "kt_text.h"
#define PK_FAST_KERNEL(op, a) mcu_##op##_dsp_##a##w8_s8
#include "pk_harness.h"

#ifdef KT_HOST
#include <stdlib.h>
#else
#define PK_MAX_BYTES 16384
static uint8_t pk_out[PK_MAX_BYTES];
static int32_t pk_scratch[PK_MAX_BYTES / 4];
#endif

/* One kernel on case i: 0 when its output equals the expected bytes. */
static int run_one(int32_t i, int fast)
{
    const pk_case *c = &pk_cases[i];
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
    int32_t scratch = 0;
    if (fast)
    {
        scratch = c->kind == PK_CONV ? mcu_conv_dsp_get_buffer_size_packed(&c->input_dims, &c->filter_dims, c->out_bits)
                                     : mcu_dwconv_dsp_get_buffer_size_packed(&c->input_dims, c->in_bits);
        if (scratch != c->scratch_fast)
        {
            pk_fail(i, "DSP scratch bytes (C, compiler)", scratch, c->scratch_fast);
            return 1;
        }
    }
#ifdef KT_HOST
    uint8_t *out = malloc((size_t)c->output_bytes);
    void *buf = scratch ? malloc((size_t)scratch) : NULL;
#else
    if (c->output_bytes > PK_MAX_BYTES || scratch > PK_MAX_BYTES)
    {
        pk_fail(i, "too large for the firmware buffers", c->output_bytes, scratch);
        return 1;
    }
    uint8_t *out = pk_out;
    void *buf = scratch ? (void *)pk_scratch : NULL;
#endif
    memset(out, 0xA5, (size_t)c->output_bytes); /* every byte must be written, padding bits 0 */
    const mcu_context ctx = {buf, scratch};
    const int8_t *filter = fast ? c->fast_filter : c->filter;
    const int32_t *bias = fast ? c->fast_bias : c->bias;
    mcu_status st;
    if (c->kind == PK_CONV)
    {
        st = pk_conv_kernel(c->in_bits, fast)(&ctx, &c->conv, &q, c->out_bits, &c->input_dims, c->input,
                                              &c->filter_dims, filter, &bias_dims, bias, &c->output_dims, out);
    }
    else
    {
        st = pk_dw_kernel(c->in_bits, fast)(&ctx, &c->dw, &q, c->out_bits, &c->input_dims, c->input, &c->filter_dims,
                                            filter, &bias_dims, bias, &c->output_dims, out);
    }
    int bad = 0, first = -1;
    if (st != MCU_OK)
    {
        pk_fail(i, fast ? "DSP status" : "portable status", (int32_t)st, 0);
        bad = 1;
    }
    else
    {
        for (int32_t k = 0; k < c->output_bytes; k++)
        {
            if (out[k] != c->expected[k])
            {
                first = first < 0 ? k : first;
                bad++;
            }
        }
        if (bad)
        {
            pk_fail(i, fast ? "DSP bytes differ (count, first)" : "portable bytes differ (count, first)", bad, first);
        }
    }
#ifdef KT_HOST
    free(out);
    free(buf);
#endif
    return bad != 0;
}

int main(void)
{
#ifndef KT_HOST
    board_init();
#endif
    int32_t failed = 0;
    for (int32_t i = 0; i < pk_num_cases; i++)
    {
        int bad = run_one(i, 0);
        if (pk_cases[i].has_fast)
        {
            bad |= run_one(i, 1);
        }
        failed += bad != 0;
    }
    kt_print_summary("PACKED CASES", pk_num_cases, failed);
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0;
#endif
}
