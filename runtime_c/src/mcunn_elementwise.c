/* Elementwise add and multiply with broadcasting, int8 (TFLite reference semantics). */
#include <stddef.h>

#include "mcunn.h"
#include "mcunn_support.h"

static int dims_ok(const mcu_dims *in, const mcu_dims *out)
{
    return (in->n == out->n || in->n == 1) && (in->h == out->h || in->h == 1) && (in->w == out->w || in->w == 1) &&
        (in->c == out->c || in->c == 1);
}

/* Index of output element (n, h, w, c) in a possibly broadcast input. */
static inline int32_t bcast_index(const mcu_dims *d, int32_t n, int32_t h, int32_t w, int32_t c)
{
    n = d->n == 1 ? 0 : n;
    h = d->h == 1 ? 0 : h;
    w = d->w == 1 ? 0 : w;
    c = d->c == 1 ? 0 : c;
    return ((n * d->h + h) * d->w + w) * d->c + c;
}

mcu_status mcu_add_s8(const mcu_context *ctx,
                      const mcu_add_params *p,
                      const mcu_dims *input1_dims,
                      const int8_t *input1,
                      const mcu_dims *input2_dims,
                      const int8_t *input2,
                      const mcu_dims *output_dims,
                      int8_t *output)
{
    (void)ctx;
    if (!dims_ok(input1_dims, output_dims) || !dims_ok(input2_dims, output_dims))
    {
        return MCU_ARG_ERROR;
    }
    int32_t i = 0;
    for (int32_t n = 0; n < output_dims->n; n++)
        for (int32_t h = 0; h < output_dims->h; h++)
            for (int32_t w = 0; w < output_dims->w; w++)
                for (int32_t c = 0; c < output_dims->c; c++, i++)
                {
                    const int32_t a = (input1[bcast_index(input1_dims, n, h, w, c)] + p->input1_offset) * (1 << p->left_shift);
                    const int32_t b = (input2[bcast_index(input2_dims, n, h, w, c)] + p->input2_offset) * (1 << p->left_shift);
                    const int32_t sa = mcu_requantize(a, p->input1_mult, p->input1_shift);
                    const int32_t sb = mcu_requantize(b, p->input2_mult, p->input2_shift);
                    int32_t y = mcu_requantize(sa + sb, p->output_mult, p->output_shift) + p->output_offset;
                    output[i] = (int8_t)MCU_CLAMP(y, p->activation.min, p->activation.max);
                }
    return MCU_OK;
}

mcu_status mcu_mul_s8(const mcu_context *ctx,
                      const mcu_mul_params *p,
                      const mcu_dims *input1_dims,
                      const int8_t *input1,
                      const mcu_dims *input2_dims,
                      const int8_t *input2,
                      const mcu_dims *output_dims,
                      int8_t *output)
{
    (void)ctx;
    if (!dims_ok(input1_dims, output_dims) || !dims_ok(input2_dims, output_dims))
    {
        return MCU_ARG_ERROR;
    }
    int32_t i = 0;
    for (int32_t n = 0; n < output_dims->n; n++)
        for (int32_t h = 0; h < output_dims->h; h++)
            for (int32_t w = 0; w < output_dims->w; w++)
                for (int32_t c = 0; c < output_dims->c; c++, i++)
                {
                    const int32_t a = input1[bcast_index(input1_dims, n, h, w, c)] + p->input1_offset;
                    const int32_t b = input2[bcast_index(input2_dims, n, h, w, c)] + p->input2_offset;
                    int32_t y = mcu_requantize(a * b, p->output_mult, p->output_shift) + p->output_offset;
                    output[i] = (int8_t)MCU_CLAMP(y, p->activation.min, p->activation.max);
                }
    return MCU_OK;
}

mcu_status mcu_lut_s8(const mcu_context *ctx,
                      const mcu_lut_params *lut_params,
                      const mcu_dims *input_dims,
                      const int8_t *input,
                      const mcu_dims *output_dims,
                      int8_t *output)
{
    (void)ctx;
    const int32_t size = input_dims->n * input_dims->h * input_dims->w * input_dims->c;
    const int8_t *table = lut_params->table;
    if (table == NULL || output_dims->n * output_dims->h * output_dims->w * output_dims->c != size)
    {
        return MCU_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; i++)
    {
        output[i] = table[(uint8_t)(input[i] + 128)];
    }
    return MCU_OK;
}
