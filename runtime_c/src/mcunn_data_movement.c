/* Byte movers: concatenation, constant padding, transpose, region copy / paste (patch-based inference). */
#include <string.h>

#include "mcunn.h"

mcu_status mcu_concat_s8(const mcu_context *ctx,
                         const mcu_concat_params *concat_params,
                         const mcu_dims *input_dims,
                         const int8_t *input,
                         const mcu_dims *output_dims,
                         int8_t *output)
{
    (void)ctx;
    const int32_t outer = input_dims->n * input_dims->h * input_dims->w;
    const int32_t in_row = input_dims->c, out_row = output_dims->c, offset = concat_params->offset;
    if (offset < 0 || in_row < 0 || offset + in_row > out_row ||
        output_dims->n * output_dims->h * output_dims->w != outer)
    {
        return MCU_ARG_ERROR;
    }
    for (int32_t i = 0; i < outer; i++)
    {
        memmove(output + i * out_row + offset, input + i * in_row, (size_t)in_row);
    }
    return MCU_OK;
}

mcu_status mcu_pad_s8(const mcu_context *ctx,
                      const mcu_pad_params *pad_params,
                      const mcu_dims *input_dims,
                      const int8_t *input,
                      const mcu_dims *output_dims,
                      int8_t *output)
{
    (void)ctx;
    const mcu_dims *in = input_dims, *out = output_dims, *before = &pad_params->pre_pad;
    if (before->n < 0 || before->h < 0 || before->w < 0 || before->c < 0 || before->n + in->n > out->n ||
        before->h + in->h > out->h || before->w + in->w > out->w || before->c + in->c > out->c)
    {
        return MCU_ARG_ERROR;
    }
    memset(output, (int8_t)pad_params->pad_value, (size_t)out->n * out->h * out->w * out->c);
    for (int32_t n = 0; n < in->n; n++)
        for (int32_t h = 0; h < in->h; h++)
            for (int32_t w = 0; w < in->w; w++)
            {
                const int32_t src = ((n * in->h + h) * in->w + w) * in->c;
                const int32_t dst =
                    (((n + before->n) * out->h + h + before->h) * out->w + w + before->w) * out->c + before->c;
                memcpy(output + dst, input + src, (size_t)in->c);
            }
    return MCU_OK;
}

mcu_status mcu_transpose_s8(const mcu_context *ctx,
                            const mcu_transpose_params *transpose_params,
                            const mcu_dims *input_dims,
                            const int8_t *input,
                            const mcu_dims *output_dims,
                            int8_t *output)
{
    (void)ctx;
    const int32_t *perm = transpose_params->perm;
    const int32_t d[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    const int32_t stride[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
    int32_t seen = 0;
    for (int32_t i = 0; i < 4; i++)
    {
        if (perm[i] < 0 || perm[i] > 3)
        {
            return MCU_ARG_ERROR;
        }
        seen |= 1 << perm[i];
    }
    if (seen != 0xF)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t od[4] = {d[perm[0]], d[perm[1]], d[perm[2]], d[perm[3]]};
    if (output_dims->n != od[0] || output_dims->h != od[1] || output_dims->w != od[2] || output_dims->c != od[3])
    {
        return MCU_ARG_ERROR;
    }
    const int32_t os[4] = {stride[perm[0]], stride[perm[1]], stride[perm[2]], stride[perm[3]]};
    int32_t o = 0;
    for (int32_t a = 0; a < od[0]; a++)
        for (int32_t b = 0; b < od[1]; b++)
            for (int32_t c = 0; c < od[2]; c++)
                for (int32_t e = 0; e < od[3]; e++)
                {
                    output[o++] = input[a * os[0] + b * os[1] + c * os[2] + e * os[3]];
                }
    return MCU_OK;
}

/* The region [top, top + region->h) x [left, left + region->w) of a batch-1 tensor of dims whole. */
static int region_ok(const mcu_region_params *r, const mcu_dims *whole, const mcu_dims *region)
{
    return whole->n == 1 && region->n == 1 && whole->c == region->c && region->h >= 0 && region->w >= 0 &&
        r->top >= 0 && r->left >= 0 && r->top + region->h <= whole->h && r->left + region->w <= whole->w;
}

mcu_status mcu_copy_region_s8(const mcu_context *ctx,
                              const mcu_region_params *region_params,
                              const mcu_dims *input_dims,
                              const int8_t *input,
                              const mcu_dims *output_dims,
                              int8_t *output)
{
    (void)ctx;
    if (!region_ok(region_params, input_dims, output_dims))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t c = input_dims->c, h = output_dims->h, w = output_dims->w;
    const int32_t top = region_params->top, left = region_params->left;
    for (int32_t y = 0; y < h; y++)
    {
        memcpy(output + y * w * c, input + ((top + y) * input_dims->w + left) * c, (size_t)(w * c));
    }
    return MCU_OK;
}

mcu_status mcu_paste_region_s8(const mcu_context *ctx,
                               const mcu_region_params *region_params,
                               const mcu_dims *input_dims,
                               const int8_t *input,
                               const mcu_dims *output_dims,
                               int8_t *output)
{
    (void)ctx;
    if (!region_ok(region_params, output_dims, input_dims))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t c = output_dims->c, h = input_dims->h, w = input_dims->w;
    const int32_t top = region_params->top, left = region_params->left;
    for (int32_t y = 0; y < h; y++)
    {
        memcpy(output + ((top + y) * output_dims->w + left) * c, input + y * w * c, (size_t)(w * c));
    }
    return MCU_OK;
}
