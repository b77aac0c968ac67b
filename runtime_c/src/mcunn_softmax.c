/* Softmax, int8 -> int8, bit-exact with TFLite's reference (gemmlowp fixed point, 5 integer bits). */
#include "mcunn.h"
#include "mcunn_support.h"

#define MCU_ACCUM_BITS 12

/* exp(x) for x <= 0 in Q5.26, result in Q0.31 (gemmlowp exp_on_negative_values). */
static int32_t exp_on_negative_values(int32_t val)
{
    int32_t shift = 24;
    const int32_t val_mod_minus_quarter = (val & ((1 << shift) - 1)) - (1 << shift);
    const int32_t remainder = val_mod_minus_quarter - val;
    const int32_t x = (int32_t)((uint32_t)val_mod_minus_quarter << 5) + (1 << 28);
    const int32_t x2 = mcu_doubling_high_mult(x, x);
    const int32_t x3 = mcu_doubling_high_mult(x2, x);
    const int32_t x4_over_4 = mcu_divide_by_pow2(mcu_doubling_high_mult(x2, x2), 2);
    const int32_t poly = mcu_divide_by_pow2(mcu_doubling_high_mult(x4_over_4 + x3, 715827883) + x2, 1);
    int32_t result = 1895147668 + mcu_doubling_high_mult(1895147668, x + poly);
    static const int32_t k_barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int32_t i = 0; i < 7; i++, shift++)
    {
        if (remainder & (1 << shift))
        {
            result = mcu_doubling_high_mult(result, k_barrel[i]);
        }
    }
    return val == 0 ? MCU_Q31_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1) in Q0.31, result in Q2.29 scaled by 2 (gemmlowp). */
static int32_t one_over_one_plus_x(int32_t val)
{
    const int64_t sum = (int64_t)val + (int64_t)MCU_Q31_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + mcu_doubling_high_mult(half_denominator, -1010580540);
    for (int32_t i = 0; i < 3; i++)
    {
        const int32_t one_minus = (1 << 29) - mcu_doubling_high_mult(half_denominator, x);
        x += mcu_mult_by_pow2_sat(mcu_doubling_high_mult(x, one_minus), 2);
    }
    return mcu_mult_by_pow2_sat(x, 1);
}

static int32_t clz32(uint32_t v)
{
    int32_t n = 0;
    if (v == 0)
    {
        return 32;
    }
    while (!(v & 0x80000000u))
    {
        v <<= 1;
        n++;
    }
    return n;
}

mcu_status mcu_softmax_s8(const mcu_context *ctx,
                          const mcu_softmax_params *softmax_params,
                          const mcu_per_tensor_quant_params *quant_params,
                          const mcu_dims *input_dims,
                          const int8_t *input,
                          const mcu_dims *output_dims,
                          int8_t *output)
{
    (void)ctx;
    const int32_t num_rows = input_dims->n * input_dims->h * input_dims->w, row_size = input_dims->c;
    const int32_t mult = quant_params->multiplier, shift = quant_params->shift;
    const int32_t diff_min = softmax_params->diff_min;
    if (row_size < 1 || output_dims->n != input_dims->n || output_dims->h != input_dims->h ||
        output_dims->w != input_dims->w || output_dims->c != row_size)
    {
        return MCU_ARG_ERROR;
    }
    /* only differences >= diff_min are scaled: (x - max) * 2^shift must fit int32 for them */
    if (shift < 0 || shift > 30 || diff_min > 0 || (int64_t)diff_min * ((int64_t)1 << shift) < (int64_t)MCU_Q31_MIN)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t mask = 1 << shift;
    for (int32_t r = 0; r < num_rows; r++)
    {
        const int8_t *in = input + r * row_size;
        int8_t *out = output + r * row_size;
        int32_t max = in[0];
        for (int32_t i = 1; i < row_size; i++)
        {
            max = MCU_MAX(max, in[i]);
        }
        int32_t sum = 0;
        for (int32_t i = 0; i < row_size; i++)
        {
            const int32_t diff = in[i] - max;
            if (diff >= diff_min)
            {
                sum += mcu_divide_by_pow2(exp_on_negative_values(mcu_doubling_high_mult(diff * mask, mult)), MCU_ACCUM_BITS);
            }
        }
        const int32_t headroom = clz32((uint32_t)sum);
        const uint32_t shifted = sum > 0 ? ((uint32_t)sum << headroom) : 0u;
        const int32_t scale = one_over_one_plus_x((int32_t)(shifted - 0x80000000u));
        const int32_t bits_over_unit = MCU_ACCUM_BITS - headroom + 23;
        for (int32_t i = 0; i < row_size; i++)
        {
            const int32_t diff = in[i] - max;
            if (diff >= diff_min)
            {
                const int32_t e = exp_on_negative_values(mcu_doubling_high_mult(diff * mask, mult));
                const int32_t y = mcu_divide_by_pow2(mcu_doubling_high_mult(scale, e), bits_over_unit) - 128;
                out[i] = (int8_t)MCU_CLAMP(y, -128, 127);
            }
            else
            {
                out[i] = -128;
            }
        }
    }
    return MCU_OK;
}
