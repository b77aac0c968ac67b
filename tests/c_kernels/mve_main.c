/* The MVE kernels' counterpart of kernel_main.c (tests/test_c_kernels_mve.py; cases from mve_cases.py): every
 * case of kt_cases through the portable kernel (the reference) and the MVE kernel, outputs compared byte for
 * byte (kernel_main.c with KT_MVE); then the vector requantization against mcu_requantize() on random and
 * edge operands ("MCU REQUANT <checks> bad <n>"). Ends with "MCU END <failures>". Firmware only (integer
 * MVE: qemu-m55). */
#include "mcunn_mve.h"
#include "mcunn_mve_support.h"

#if !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#error "mve_main.c needs an integer-MVE target (-mcpu=cortex-m55)"
#endif

#define KT_MVE 1
#define KT_EXTRA_CHECK extra_checks
static int32_t extra_checks(void);

#include "kernel_main.c"

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

/* check_requant() over KT_REQUANT_CHECKS draws, printed as one line; its failure count */
static int32_t requant_check_line(void)
{
    const int32_t bad = check_requant(KT_REQUANT_CHECKS);
    char line[64];
    char *p = kt_put_str(line, "MCU REQUANT ");
    p = kt_put_int(p, KT_REQUANT_CHECKS);
    p = kt_put_str(p, " bad ");
    p = kt_put_int(p, bad);
    p = kt_put_str(p, "\n");
    *p = '\0';
    kt_print(line);
    return bad;
}

/* mcu_dwconv_3x3_mve_s8() refuses what it cannot run (a left shift, a 5x5 window), writing nothing */
static int32_t refusal_check(void)
{
    static int8_t in[3 * 3 * 8], w[5 * 5 * 8], out[8], zp[8];
    static int32_t mult[8], shift[8];
    for (int32_t j = 0; j < 8; j++)
    {
        mult[j] = 0x40000000;
        shift[j] = -3;
    }
    const mcu_context ctx = {zp, 8};
    const mcu_dw_conv_params p = {0, 0, 1, {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
    const mcu_per_channel_quant_params q = {mult, shift};
    const mcu_dims in_d = {1, 3, 3, 8}, f3 = {1, 3, 3, 8}, f5 = {1, 5, 5, 8}, b_d = {1, 1, 1, 8};
    const mcu_dims out_d = {1, 1, 1, 8}, in5 = {1, 5, 5, 8};
    int32_t bad = 0;
    memset(out, 0x55, sizeof out);
    bad += mcu_dwconv_3x3_mve_s8(&ctx, &p, &q, &in_d, in, &f3, w, &b_d, NULL, &out_d, out) != MCU_OK;
    memset(out, 0x55, sizeof out);
    bad += mcu_dwconv_3x3_mve_s8(&ctx, &p, &q, &in5, w, &f5, w, &b_d, NULL, &out_d, out) != MCU_ARG_ERROR;
    shift[5] = 1;
    bad += mcu_dwconv_3x3_mve_s8(&ctx, &p, &q, &in_d, in, &f3, w, &b_d, NULL, &out_d, out) != MCU_ARG_ERROR;
    bad += out[0] != 0x55 || out[7] != 0x55;
    char line[48];
    char *e = kt_put_str(line, "MCU REFUSALS bad ");
    e = kt_put_int(e, bad);
    e = kt_put_str(e, "\n");
    *e = '\0';
    kt_print(line);
    return bad;
}

static int32_t extra_checks(void)
{
    return requant_check_line() + refusal_check();
}
