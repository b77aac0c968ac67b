/* mcu_add_dsp_packed_s8() (or PA_KERNEL, e.g. -DPA_KERNEL=mcu_add_mve_packed_s8 on an MVE core) against
 * mcu_add_packed_s8() (the portable packed add, itself tested bit-exact with the simulator in
 * tests/test_packed_kernels.py) on random maps: every (input 1, input 2, output) bit triple of {8, 4, 2}, channel
 * counts on and off the values per byte (the flat path and the pixel-by-pixel one), runs past 128 values, random
 * offsets, multipliers, shifts (left_shift 20, and 24: the portable fallback) and clamps, out of place and in place
 * (the output on input 1 when their bits agree). Every output byte compared, padding bits included. Ends with
 * "MCU PACKED ADD CASES <n> failed <failures>" and "MCU END <failures>". */
#include <stdint.h>
#include <string.h>

#include "kt_text.h"
#include "mcunn_packed.h"
#include "mcunn_packed_mve.h"

#ifndef PA_KERNEL
#define PA_KERNEL mcu_add_dsp_packed_s8
#endif

#define PA_MAX 1024
static uint8_t in1[PA_MAX], in2[PA_MAX], ref[PA_MAX], got[PA_MAX];
static uint32_t rng_state = 12345u;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static int32_t rnd_in(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static int32_t pixel_bytes(int32_t c, int32_t bits)
{
    return (c * bits + 7) / 8;
}

/* A packed map of `pixels` pixels of c channels at `bits`, random values, padding bits 0. */
static void fill(uint8_t *m, int32_t pixels, int32_t c, int32_t bits)
{
    const int32_t px = pixel_bytes(c, bits), per = 8 / bits;
    memset(m, 0, (size_t)(pixels * px));
    for (int32_t p = 0; p < pixels; p++)
    {
        for (int32_t k = 0; k < c; k++)
        {
            const uint32_t v = rnd() & ((1u << bits) - 1u);
            m[p * px + k / per] |= (uint8_t)(v << ((k % per) * bits));
        }
    }
}

int main(void)
{
#ifndef KT_HOST
    board_init();
#endif
    static const int32_t channels[] = {1, 3, 4, 5, 8, 13, 16, 24, 40, 130};
    const int32_t bits[3] = {8, 4, 2};
    int32_t cases = 0, failed = 0;
    for (int32_t t = 0; t < 27; t++)
    {
        const int32_t b1 = bits[t % 3], b2 = bits[t / 3 % 3], bo = bits[t / 9];
        for (int32_t ci = 0; ci < (int32_t)(sizeof(channels) / sizeof(channels[0])); ci++)
        {
            const int32_t c = channels[ci], pixels = c > 64 ? 2 : rnd_in(1, 12);
            const int32_t q1 = 1 << (b1 - 1), q2 = 1 << (b2 - 1), qo = 1 << (bo - 1);
            mcu_add_params p;
            p.input1_offset = -rnd_in(-q1, q1 - 1);
            p.input2_offset = -rnd_in(-q2, q2 - 1);
            p.output_offset = rnd_in(-qo, qo - 1);
            p.input1_mult = (int32_t)(0x40000000u + (rnd() % 0x3FFFFFFFu));
            p.input1_shift = -rnd_in(0, 3);
            p.input2_mult = (int32_t)(0x40000000u + (rnd() % 0x3FFFFFFFu));
            p.input2_shift = -rnd_in(0, 3);
            p.output_mult = (int32_t)(0x40000000u + (rnd() % 0x3FFFFFFFu));
            p.output_shift = -rnd_in(20 - (8 - bo), 22 - (8 - bo));
            p.left_shift = (ci == 4 && t % 5 == 0) ? 24 : 20;
            p.activation.min = rnd() % 2 ? -128 : rnd_in(-qo, 0);
            p.activation.max = rnd() % 2 ? 127 : rnd_in(0, qo - 1);
            const mcu_dims d = {1, 1, pixels, c};
            fill(in1, pixels, c, b1);
            fill(in2, pixels, c, b2);
            const int32_t n_out = pixels * pixel_bytes(c, bo);
            memset(ref, 0xA5, sizeof(ref));
            memset(got, 0xA5, sizeof(got));
            const mcu_status s_ref = mcu_add_packed_s8(NULL, &p, b1, b2, bo, &d, in1, &d, in2, &d, ref);
            const int in_place = b1 == bo && (t + ci) % 3 == 0;
            mcu_status s_got;
            if (in_place)
            {
                memcpy(got, in1, (size_t)(pixels * pixel_bytes(c, b1)));
                s_got = PA_KERNEL(NULL, &p, b1, b2, bo, &d, got, &d, in2, &d, got);
            }
            else
            {
                s_got = PA_KERNEL(NULL, &p, b1, b2, bo, &d, in1, &d, in2, &d, got);
            }
            cases++;
            if (s_ref != MCU_OK || s_got != MCU_OK || memcmp(ref, got, (size_t)n_out) != 0)
            {
                char line[160];
                char *q = kt_put_str(line, "FAIL add a");
                q = kt_put_int(q, b1);
                q = kt_put_str(q, " + a");
                q = kt_put_int(q, b2);
                q = kt_put_str(q, " -> a");
                q = kt_put_int(q, bo);
                q = kt_put_str(q, " channels ");
                q = kt_put_int(q, c);
                q = kt_put_str(q, in_place ? " in place\n" : "\n");
                *q = '\0';
                kt_print(line);
                failed++;
            }
        }
    }
    kt_print_summary("PACKED ADD CASES", cases, failed);
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0;
#endif
}
