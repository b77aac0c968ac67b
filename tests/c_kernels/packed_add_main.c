/* The table packed adds mcu_add_table_packed_s8() and mcu_add_table_dsp_packed_s8() (with PA_TABLE_KERNEL, e.g.
 * -DPA_TABLE_KERNEL=mcu_add_table_mve_packed_s8 on an MVE core, that one too) against mcu_add_packed_s8() (the
 * portable packed add, which rescales each input on the device; the table add is bit-exact with the simulator in
 * tests/test_packed_kernels.py) on random maps: every (input 1, input 2, output) bit triple of {8, 4, 2}, channel
 * counts on and off the values per byte (the flat path and the pixel-by-pixel one), runs past 128 values, random
 * offsets, multipliers, output shifts (-1 and -14 to -22: every requantization path) and clamps, out of place and
 * in place (the output on input 1 when their bits agree). The tables hold what mcu_add_packed_s8() computes per
 * input value. Every output byte compared, padding bits included. Ends with "MCU PACKED TABLE ADD CASES <n> failed
 * <f>" (one count per kernel and case) and "MCU END <failures>". */
#include <stdint.h>
#include <string.h>

#include "kt_text.h"
#include "mcunn_packed.h"
#include "mcunn_packed_mve.h"
#include "mcunn_support.h"

#define PA_MAX 1024
static uint8_t in1[PA_MAX], in2[PA_MAX], ref[PA_MAX], got[PA_MAX];
static int32_t terms1[256], terms2[256];
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

typedef mcu_status (*table_fn)(const mcu_context *, const mcu_add_table_params *, int32_t, int32_t, int32_t,
                               const mcu_dims *, const uint8_t *, const mcu_dims *, const uint8_t *,
                               const mcu_dims *, uint8_t *);

/* One table kernel on in1, in2 (in place: on a copy of in1 in got) against ref: 1 when status and bytes agree. */
static int run_table(table_fn f, const mcu_add_table_params *p, int32_t b1, int32_t b2, int32_t bo,
                     const mcu_dims *d, int32_t n_out, mcu_status s_ref, int in_place)
{
    memset(got, 0xA5, sizeof(got));
    if (in_place)
    {
        memcpy(got, in1, (size_t)(d->w * pixel_bytes(d->c, b1)));
    }
    const mcu_status s = f(NULL, p, b1, b2, bo, d, in_place ? got : in1, d, in2, d, got);
    return s_ref == MCU_OK && s == MCU_OK && memcmp(ref, got, (size_t)n_out) == 0;
}

static void report(const char *what, int32_t b1, int32_t b2, int32_t bo, int32_t c, int in_place)
{
    char line[160];
    char *q = kt_put_str(line, what);
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
}

int main(void)
{
#ifndef KT_HOST
    board_init();
#endif
    static const int32_t channels[] = {1, 3, 4, 5, 8, 13, 16, 24, 40, 130};
    const int32_t bits[3] = {8, 4, 2};
    int32_t failed = 0, table_cases = 0, table_failed = 0;
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
            p.left_shift = 20;
            if ((t + ci) % 4 == 0)
            {
                p.output_shift = -1; /* the outputs mostly saturate: the clamps are compared */
            }
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
            /* the terms mcu_add_packed_s8() computes for each input value, then the output shift in the
             * SMLAL loop's range (<= -2) or, one case in four, -1 (the general one) */
            for (int32_t x = -q1; x < q1; x++)
            {
                terms1[x + q1] = mcu_requantize((x + p.input1_offset) * (1 << 20), p.input1_mult, p.input1_shift);
            }
            for (int32_t x = -q2; x < q2; x++)
            {
                terms2[x + q2] = mcu_requantize((x + p.input2_offset) * (1 << 20), p.input2_mult, p.input2_shift);
            }
            const mcu_add_table_params tp = {terms1, terms2, p.output_offset, p.output_mult, p.output_shift,
                                             p.activation};
            if (!run_table(mcu_add_table_packed_s8, &tp, b1, b2, bo, &d, n_out, s_ref, in_place))
            {
                report("FAIL table add a", b1, b2, bo, c, in_place);
                table_failed++;
            }
            if (!run_table(mcu_add_table_dsp_packed_s8, &tp, b1, b2, bo, &d, n_out, s_ref, in_place))
            {
                report("FAIL dsp table add a", b1, b2, bo, c, in_place);
                table_failed++;
            }
            table_cases += 2;
#ifdef PA_TABLE_KERNEL
            if (!run_table(PA_TABLE_KERNEL, &tp, b1, b2, bo, &d, n_out, s_ref, in_place))
            {
                report("FAIL mve table add a", b1, b2, bo, c, in_place);
                table_failed++;
            }
            table_cases++;
#endif
        }
    }
    kt_print_summary("PACKED TABLE ADD CASES", table_cases, table_failed);
    failed += table_failed;
#ifdef KT_HOST
    return failed ? 1 : 0;
#else
    return 0;
#endif
}
