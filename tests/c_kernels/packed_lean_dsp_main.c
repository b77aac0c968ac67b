/* Runs every case of pk_cases (tests/c_kernels/packed_lean_cases.py: groups-1 convolutions with the constants of
 * mcu_conv_lean_dsp_a*w8_s8 in the fast slots) through the portable packed kernel and the scratch-free SIMD32 one,
 * the latter with a NULL context (it takes no scratch), compares each output with the simulator's bytes, and checks
 * that the lean kernel refuses what it does not take (C_in % 4, more than MCU_CONV_LEAN_DSP_MAX_TAPS taps, a pixel
 * over MCU_CONV_LEAN_DSP_MAX_PIXEL_BYTES) without writing. Ends with "MCU PACKED LEAN CASES <n> failed <failures>"
 * and "MCU END <failures>". Host (KT_HOST): outputs malloc'd at their exact sizes (AddressSanitizer sees any
 * overrun). */
#include <stdint.h>
#include <string.h>

#include "packed_cases.h"

#include "kt_text.h"
#include "pk_harness.h"

/* The a<bits>w8 convolution: the portable kernel, or with lean the scratch-free SIMD32 one. */
static pk_conv_fn pk_lean_kernel(int32_t bits, int lean)
{
    if (bits == 4)
    {
        return lean ? mcu_conv_lean_dsp_a4w8_s8 : mcu_conv_a4w8_s8;
    }
    if (bits == 2)
    {
        return lean ? mcu_conv_lean_dsp_a2w8_s8 : mcu_conv_a2w8_s8;
    }
    return lean ? mcu_conv_lean_dsp_a8w8_s8 : mcu_conv_a8w8_s8;
}

#ifdef KT_HOST
#include <stdlib.h>
#else
#define PK_MAX_BYTES 16384
static uint8_t pk_out[PK_MAX_BYTES];
#endif

/* One kernel on case i: 0 when its output equals the expected bytes. */
static int run_one(int32_t i, int fast)
{
    const pk_case *c = &pk_cases[i];
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims bias_dims = {1, 1, 1, c->output_dims.c};
#ifdef KT_HOST
    uint8_t *out = malloc((size_t)c->output_bytes);
#else
    if (c->output_bytes > PK_MAX_BYTES)
    {
        pk_fail(i, "too large for the firmware buffer", c->output_bytes, 0);
        return 1;
    }
    uint8_t *out = pk_out;
#endif
    memset(out, 0xA5, (size_t)c->output_bytes); /* every byte must be written, padding bits 0 */
    const mcu_context none = {NULL, 0};
    const mcu_status st = pk_lean_kernel(c->in_bits, fast)(fast ? NULL : &none, &c->conv, &q, c->out_bits,
                                                           &c->input_dims, c->input, &c->filter_dims,
                                                           fast ? c->fast_filter : c->filter, &bias_dims,
                                                           fast ? c->fast_bias : c->bias, &c->output_dims, out);
    int bad = 0, first = -1;
    if (st != MCU_OK)
    {
        pk_fail(i, fast ? "lean status" : "portable status", (int32_t)st, 0);
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
            pk_fail(i, fast ? "lean bytes differ (count, first)" : "portable bytes differ (count, first)", bad, first);
        }
    }
#ifdef KT_HOST
    free(out);
#endif
    return bad != 0;
}

/* The lean kernel on case 0's arguments with one limit broken: MCU_ARG_ERROR and nothing written. */
static int refuses(const char *what, int32_t cin, int32_t kh, int32_t kw, int32_t in_bits)
{
    const pk_case *c = &pk_cases[0];
    const mcu_per_channel_quant_params q = {c->multiplier, c->shift};
    const mcu_dims in = {1, 4, 4, cin}, filt = {c->output_dims.c, kh, kw, cin}, bias_dims = {1, 1, 1, c->output_dims.c};
    const mcu_dims out = {1, 1, 1, c->output_dims.c};
    uint8_t o[64];
    memset(o, 0xA5, sizeof(o));
    const mcu_status st = pk_lean_kernel(in_bits, 1)(NULL, &c->conv, &q, c->out_bits, &in, c->input, &filt,
                                                     c->fast_filter, &bias_dims, c->fast_bias, &out, o);
    int written = 0;
    for (size_t k = 0; k < sizeof(o); k++)
    {
        written |= o[k] != 0xA5;
    }
    if (st != MCU_ARG_ERROR || written)
    {
        char line[160];
        char *p = kt_put_str(line, "FAIL lean limit not refused: ");
        p = kt_put_str(p, what);
        p = kt_put_str(p, "\n");
        *p = '\0';
        kt_print(line);
        return 1;
    }
    return 0;
}

int main(void)
{
#ifndef KT_HOST
    board_init();
#endif
    int32_t failed = 0;
    for (int32_t i = 0; i < pk_num_cases; i++)
    {
        failed += (run_one(i, 0) | run_one(i, 1)) != 0;
    }
    failed += refuses("C_in 6", 6, 1, 1, 8);
    failed += refuses("C_in 2 at 2 bits", 2, 1, 1, 2);
    failed += refuses("33 taps", 4, 3, 11, 4);
    failed += refuses("a pixel of 132 bytes", 132, 1, 1, 8);
    kt_print_summary("PACKED LEAN CASES", pk_num_cases, failed);
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0;
#endif
}
