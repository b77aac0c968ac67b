/* mcu_dsp_requantize() (one SMLAL) and its shift <= -2 form are bit-exact with the portable mcu_requantize()
 * (TFLite's double rounding, or single rounding with -DMCU_SINGLE_ROUNDING=1) over random and edge accumulators, multipliers in [2^30, 2^31) and every shift in
 * [-31, 30]; the offset fold of mcu_dsp_store_pairs() is checked on its range [-23, -2]. Prints "bad=<n>". */
#include <stdio.h>

#include "mcunn_dsp_support.h"

static uint64_t state = 88172645463325252ull;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int main(void)
{
    long bad = 0;
    for (long i = 0; i < 4000000; i++)
    {
        int32_t acc;
        switch ((int)(next() % 4))
        {
        case 0:
            acc = (int32_t)(uint32_t)next();
            break;
        case 1:
            acc = (int32_t)(next() % 200001) - 100000;
            break;
        case 2:
            acc = (int32_t)(next() % 2001) - 1000;
            break;
        default:
            acc = (int32_t)(next() % 64) - 32 + ((next() & 1) ? 0x7FFFFFC0 : -0x7FFFFFC0);
            break;
        }
        int32_t m = (int32_t)((1u << 30) + (uint32_t)(next() % (1u << 30)));
        if ((next() & 7) == 0)
        {
            m = (next() & 1) ? (1 << 30) : 0x7FFFFFFF;
        }
        const int32_t s = (int32_t)(next() % 62) - 31;
        const int32_t ref = mcu_requantize(acc, m, s);
        if (mcu_dsp_requantize(acc, mcu_dsp_requant_of(m, s)) != ref)
        {
            bad++;
        }
        if (s <= -2 && mcu_dsp_requantize_r2(acc, m, 1u << (-s - 2), -s - 1) != ref)
        {
            bad++;
        }
        if (s <= -2 && s >= -23)
        {
            /* the fold: (high + offset * 2^(r-1)) >> (r-1) == (high >> (r-1)) + offset */
            const int32_t oo = (int32_t)(next() % 256) - 128;
            const uint32_t rh = (1u << (-s - 2)) + (uint32_t)oo * (1u << (-s - 1));
            if (mcu_dsp_requantize_r2(acc, m, rh, -s - 1) != ref + oo)
            {
                bad++;
            }
        }
    }
    printf("bad=%ld\n", bad);
    return bad != 0;
}
