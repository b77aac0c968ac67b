/* Elementwise add without broadcasting for cores with the DSP extension: TFLite's Add (both inputs rescaled to a
 * common 2^left_shift fixed point, summed, requantized), bit-exact with mcu_add_s8() in both rounding modes. What
 * makes it fast is not SIMD but a flat loop: no broadcast index per element, and each requantization one SMLAL
 * with its constants derived once per call (mcu_dsp_requantize(), mcunn_dsp_support.h). */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

static int same_dims(const mcu_dims *a, const mcu_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* One element: the offset inputs shifted left (|x + offset| <= 255, so a left shift of up to 23 cannot overflow,
 * as in mcu_add_s8()), rescaled, summed, requantized, offset and clamped. */
static inline __attribute__((always_inline)) int8_t add_one(int32_t x1, int32_t x2, const mcu_add_params *p,
                                                            mcu_dsp_requant r1, mcu_dsp_requant r2,
                                                            mcu_dsp_requant ro, int full)
{
    const int32_t a = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t b = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t sum = mcu_add_wrap(mcu_dsp_requantize(a, r1), mcu_dsp_requantize(b, r2));
    return mcu_dsp_clamp_s8(mcu_dsp_requantize(sum, ro) + p->output_offset, p->activation.min, p->activation.max,
                            full);
}

static inline __attribute__((always_inline)) void add_loop(const mcu_add_params *p, const int8_t *in1,
                                                           const int8_t *in2, int8_t *out, int32_t size, int full)
{
    const mcu_dsp_requant r1 = mcu_dsp_requant_of(p->input1_mult, p->input1_shift);
    const mcu_dsp_requant r2 = mcu_dsp_requant_of(p->input2_mult, p->input2_shift);
    const mcu_dsp_requant ro = mcu_dsp_requant_of(p->output_mult, p->output_shift);
    /* each element is read before it is written: an output aliasing an input is fine */
    for (int32_t i = 0; i < size; i++)
    {
        out[i] = add_one(in1[i], in2[i], p, r1, r2, ro, full);
    }
}

mcu_status mcu_add_dsp_s8(const mcu_context *ctx,
                          const mcu_add_params *add_params,
                          const mcu_dims *input1_dims,
                          const int8_t *input1,
                          const mcu_dims *input2_dims,
                          const int8_t *input2,
                          const mcu_dims *output_dims,
                          int8_t *output)
{
    (void)ctx;
    if (!same_dims(input1_dims, output_dims) || !same_dims(input2_dims, output_dims) || output_dims->n < 0 ||
        output_dims->h < 0 || output_dims->w < 0 || output_dims->c < 0 || add_params->left_shift < 0 ||
        add_params->left_shift > 23)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t size = output_dims->n * output_dims->h * output_dims->w * output_dims->c;
    if (add_params->activation.min == -128 && add_params->activation.max == 127)
    {
        add_loop(add_params, input1, input2, output, size, 1);
    }
    else
    {
        add_loop(add_params, input1, input2, output, size, 0);
    }
    return MCU_OK;
}
