/* A fast add (ADD_FAST: mcu_add_dsp_s8 or mcu_add_mve_s8) against mcu_add_s8 (the portable kernel, bit-exact with
 * the simulator): ADD_CASES random sizes (0..70: tails of every length), zero points, clamps, multipliers over
 * their whole range and shifts on both sides of 0, outputs aliasing an input, and dims that do not match refused
 * (nothing written). Prints "MCU ADD <cases> failed <n>" and "MCU END <n>". Host (KT_HOST, under the sanitizers)
 * or firmware (the board port's print). */
#include <stdint.h>
#include <string.h>

#include "mcunn.h"
#include "mcunn_dsp.h"
#include "mcunn_mve.h"

#include "kt_text.h"

#ifndef ADD_CASES
#define ADD_CASES 3000
#endif

static uint32_t state = 12345u;
static uint32_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}
static int32_t range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static int8_t in1[80], in2[80], out_ref[80], out_fast[80];

int main(void)
{
#ifndef KT_HOST
    board_init();
#endif
    int32_t failed = 0, cases = 0;
    for (int32_t t = 0; t < ADD_CASES; t++, cases++)
    {
        const int32_t c = range(0, 70);
        const mcu_dims d = {1, 1, 1, c};
        int32_t lo = range(-128, 0), hi = range(0, 127);
        if (rnd() % 2) { lo = -128; hi = 127; }
        /* TFLite's: input multipliers below 1/2 (shift <= -1, or 0 with 2^30), left shift 20; also other shifts */
        const int edge = rnd() % 4 == 0;
        const mcu_add_params p = {
            range(-127, 128), range(-127, 128), range(-128, 127),
            (int32_t)(0x40000000u + rnd() % 0x40000000u), edge ? range(-8, 2) : range(-12, 0),
            (int32_t)(0x40000000u + rnd() % 0x40000000u), edge ? range(-8, 2) : range(-12, -1),
            (int32_t)(0x40000000u + rnd() % 0x40000000u), edge ? range(-24, 3) : range(-24, -12),
            edge ? range(0, 20) : 20, {lo, hi}};
        for (int32_t i = 0; i < c; i++) { in1[i] = (int8_t)range(-128, 127); in2[i] = (int8_t)range(-128, 127); }
        memset(out_ref, 0x55, sizeof out_ref);
        memset(out_fast, 0x55, sizeof out_fast);
        const int alias = (int)(rnd() % 3);
        mcu_status s1 = mcu_add_s8(NULL, &p, &d, in1, &d, in2, &d, out_ref);
        mcu_status s2;
        if (alias)
        {
            int8_t *dst = alias == 1 ? in1 : in2;
            s2 = ADD_FAST(NULL, &p, &d, in1, &d, in2, &d, dst);
            memcpy(out_fast, dst, (size_t)c);
        }
        else
        {
            s2 = ADD_FAST(NULL, &p, &d, in1, &d, in2, &d, out_fast);
        }
        if (s1 != MCU_OK || s2 != MCU_OK || memcmp(out_ref, out_fast, sizeof out_ref) != 0)
        {
            char line[80];
            char *q = kt_put_str(line, "FAIL add case ");
            q = kt_put_int(q, t);
            q = kt_put_str(q, "\n");
            *q = '\0';
            kt_print(line);
            failed++;
        }
    }
    /* a broadcast operand is refused, nothing written */
    const mcu_dims full = {1, 2, 3, 4}, one = {1, 1, 1, 4};
    const mcu_add_params p0 = {0, 0, 0, 0x40000000, -1, 0x40000000, -1, 0x40000000, -20, 20, {-128, 127}};
    memset(out_fast, 0x55, sizeof out_fast);
    cases++;
    if (ADD_FAST(NULL, &p0, &full, in1, &one, in2, &full, out_fast) != MCU_ARG_ERROR || out_fast[0] != 0x55)
    {
        kt_print("FAIL add broadcast accepted\n");
        failed++;
    }
    kt_print_summary("ADD", cases, failed);
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0;
#endif
}
