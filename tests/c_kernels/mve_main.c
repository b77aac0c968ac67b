/* The MVE kernels' counterpart of kernel_main.c (tests/test_c_kernels_mve.py; cases from mve_cases.py): every
 * case of kt_cases through the portable kernel (the reference) and the MVE kernel, outputs compared byte for
 * byte; then the vector requantization against mcu_requantize() on random and edge operands. Ends with
 * "MCU END <failures>". Firmware only (integer MVE: qemu-m55). */
#include <stdint.h>
#include <string.h>

#include "kernel_cases.h"
#include "mcunn_mve.h"
#include "mcunn_mve_support.h"

#if !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#error "mve_main.c needs an integer-MVE target (-mcpu=cortex-m55)"
#endif

#ifdef KT_HOST
#include <stdio.h>
#include <stdlib.h>
static void kt_print(const char *s)
{
    fputs(s, stdout);
}
#else
#include "board_port.h"
#define KT_MAX_BYTES 65536
static int8_t kt_out_ref[KT_MAX_BYTES], kt_out_fast[KT_MAX_BYTES];
static int32_t kt_scratch_ref[KT_MAX_BYTES / 4], kt_scratch_fast[KT_MAX_BYTES / 4];
static void kt_print(const char *s)
{
    board_print(s);
}
#endif

static char *put_str(char *p, const char *s)
{
    while (*s)
    {
        *p++ = *s++;
    }
    return p;
}

static char *put_int(char *p, int32_t v)
{
    char tmp[12];
    int n = 0;
    uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
    if (v < 0)
    {
        *p++ = '-';
    }
    do
    {
        tmp[n++] = (char)('0' + (int)(u % 10u));
        u /= 10u;
    } while (u);
    while (n)
    {
        *p++ = tmp[--n];
    }
    return p;
}

static void report(int32_t i, const char *what, int32_t a, int32_t b)
{
    char line[200];
    char *p = put_str(line, "MCU CASE ");
    p = put_int(p, i);
    p = put_str(p, " FAIL ");
    p = put_str(p, what);
    p = put_str(p, " ");
    p = put_int(p, a);
    p = put_str(p, " ");
    p = put_int(p, b);
    p = put_str(p, " (");
    p = put_str(p, kt_cases[i].describe);
    p = put_str(p, ")\n");
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
        st_fast = (c->kind == KT_CONV ? mcu_conv_mve_s8 : mcu_conv_1x1_mve_s8)(
            &ctx_fast, &c->conv, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter, &bias_dims,
            c->fast_bias, &c->output_dims, fast);
        break;
    case KT_DWCONV:
        st_ref = mcu_dwconv_s8(&ctx_ref, &c->dw, &q, &c->input_dims, c->input, &c->filter_dims, c->filter,
                               &bias_dims, c->bias, &c->output_dims, ref);
        st_fast = mcu_dwconv_mve_s8(&ctx_fast, &c->dw, &q, &c->input_dims, c->input, &c->filter_dims, c->fast_filter,
                                    &bias_dims, c->fast_bias, &c->output_dims, fast);
        break;
    default:
        st_ref = mcu_fully_connected_s8(&ctx_ref, &c->fc, &q, &c->input_dims, c->input, &c->filter_dims, c->filter,
                                        &bias_dims, c->bias, &c->output_dims, ref);
        st_fast = mcu_fully_connected_mve_s8(&ctx_fast, &c->fc, &q, &c->input_dims, c->input, &c->filter_dims,
                                             c->fast_filter, &bias_dims, c->fast_bias, &c->output_dims, fast);
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


/* xorshift32: the same operands on every run */
static uint32_t kt_rand_state = 2463534242u;
static uint32_t kt_rand(void)
{
    uint32_t x = kt_rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return kt_rand_state = x;
}

/* mcu_mve_requantize() (vector constants) and mcu_mve_requantize_n() (one channel's) against mcu_requantize()
 * on n x 4 lanes: accumulators of every magnitude (and INT32_MIN / MAX), multipliers in [2^30, 2^31) with both
 * ends, every shift in [-31, 30] where the vector path is exact (mcu_mve_requant_vector_ok()). */
static int32_t check_requant(int32_t n)
{
    int32_t bad = 0;
    for (int32_t i = 0; i < n; i++)
    {
        int32_t x[4], m[4], s[4], want[4], got[4], got_n[4];
        const int32_t s_all = (int32_t)(kt_rand() % 62u) - 31;
        for (int32_t j = 0; j < 4; j++)
        {
            const uint32_t r = kt_rand(), mag = kt_rand() % 32u;
            x[j] = (int32_t)(r >> mag) * ((r & 1u) ? -1 : 1);
            if (kt_rand() % 64u == 0)
            {
                x[j] = (kt_rand() & 1u) ? (int32_t)0x7FFFFFFF : (int32_t)(-0x7FFFFFFF - 1);
            }
            const uint32_t pick = kt_rand() % 16u;
            m[j] = pick == 0 ? (int32_t)0x7FFFFFFF : pick == 1 ? (int32_t)0x40000000
                                                              : (int32_t)(0x40000000u | (kt_rand() & 0x3FFFFFFFu));
            s[j] = (kt_rand() & 3u) ? s_all : (int32_t)(kt_rand() % 62u) - 31;
        }
        if (!mcu_mve_requant_vector_ok(s, 4))
        {
            continue;
        }
        for (int32_t j = 0; j < 4; j++)
        {
            want[j] = mcu_requantize(x[j], m[j], s[j]);
        }
        vst1q_s32(got, mcu_mve_requantize(vld1q_s32(x), vld1q_s32(m), vld1q_s32(s)));
        vst1q_s32(got_n, mcu_mve_requantize_n(vld1q_s32(x), m[0], s[0]));
        for (int32_t j = 0; j < 4; j++)
        {
            bad += got[j] != want[j];
            if (s[0] == s_all || mcu_mve_requant_vector_ok(&s[0], 1))
            {
                bad += got_n[j] != mcu_requantize(x[j], m[0], s[0]);
            }
        }
    }
    return bad;
}

#ifndef KT_REQUANT_CHECKS
#define KT_REQUANT_CHECKS 20000
#endif

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
    const int32_t requant_bad = check_requant(KT_REQUANT_CHECKS);
    failed += requant_bad != 0;
    char line[120];
    char *p = put_str(line, "MCU REQUANT ");
    p = put_int(p, KT_REQUANT_CHECKS);
    p = put_str(p, " bad ");
    p = put_int(p, requant_bad);
    p = put_str(p, "\nMCU CASES ");
    p = put_int(p, kt_num_cases);
    p = put_str(p, " failed ");
    p = put_int(p, failed);
    p = put_str(p, "\nMCU END ");
    p = put_int(p, failed);
    p = put_str(p, "\n");
    *p = '\0';
    kt_print(line);
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0; /* the firmware reports through "MCU END"; a non-zero exit would hide the lines */
#endif
}
