/* Elementwise add for MVE (Helium, Cortex-M55): TFLite's Add (both inputs rescaled to a common 2^left_shift
 * fixed point, summed, requantized), 4 elements per step on int32 lanes, bit-exact with mcu_add_s8() in both
 * rounding modes. Compiled only with integer MVE; empty elsewhere. */
#include "mcunn_mve.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <stddef.h>

#include "mcunn.h"
#include "mcunn_mve_support.h"

static int same_dims(const mcu_dims *a, const mcu_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

mcu_status mcu_add_mve_s8(const mcu_context *ctx,
                          const mcu_add_params *p,
                          const mcu_dims *input1_dims,
                          const int8_t *input1,
                          const mcu_dims *input2_dims,
                          const int8_t *input2,
                          const mcu_dims *output_dims,
                          int8_t *output)
{
    if (!same_dims(input1_dims, output_dims) || !same_dims(input2_dims, output_dims) || output_dims->n < 0 ||
        output_dims->h < 0 || output_dims->w < 0 || output_dims->c < 0)
    {
        return MCU_ARG_ERROR;
    }
    /* single rounding with a shift >= 0 needs the 64-bit product: the portable kernel (never for TFLite's
     * input multipliers, which are below 1/2) */
    if (!mcu_mve_requant_vector_ok(&p->input1_shift, 1) || !mcu_mve_requant_vector_ok(&p->input2_shift, 1) ||
        !mcu_mve_requant_vector_ok(&p->output_shift, 1))
    {
        return mcu_add_s8(ctx, p, input1_dims, input1, input2_dims, input2, output_dims, output);
    }
    const int32_t size = output_dims->n * output_dims->h * output_dims->w * output_dims->c;
    const int32x4_t m1 = vdupq_n_s32(p->input1_mult), s1 = vdupq_n_s32(p->input1_shift);
    const int32x4_t m2 = vdupq_n_s32(p->input2_mult), s2 = vdupq_n_s32(p->input2_shift);
    const int32x4_t mo = vdupq_n_s32(p->output_mult), so = vdupq_n_s32(p->output_shift);
    const int32x4_t left = vdupq_n_s32(p->left_shift);
    const int32_t off1 = p->input1_offset, off2 = p->input2_offset, out_off = p->output_offset;
    const int32_t lo = p->activation.min, hi = p->activation.max;
    /* each step reads its 4 elements before writing them: an output aliasing an input is fine */
    for (int32_t i = 0; i < size; i += 4)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(size - i));
        /* |x + offset| <= 255, so the left shift (20) cannot overflow, as in mcu_add_s8() */
        const int32x4_t a = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(input1 + i, pred), off1), left);
        const int32x4_t b = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(input2 + i, pred), off2), left);
        const int32x4_t sum = vaddq_s32(mcu_mve_requantize(a, m1, s1), mcu_mve_requantize(b, m2, s2));
        vstrbq_p_s32(output + i, mcu_mve_output(sum, mo, so, out_off, lo, hi), pred);
    }
    return MCU_OK;
}

#endif /* __ARM_FEATURE_MVE */
