/* Byte movers: concatenation, constant padding, transpose. */
#include <string.h>

#include "mcunn.h"

mcu_status mcu_concat_s8(const int8_t *input, int32_t outer, int32_t in_row, int8_t *output, int32_t out_row,
                         int32_t offset)
{
    for (int32_t i = 0; i < outer; i++)
    {
        memmove(output + i * out_row + offset, input + i * in_row, (size_t)in_row);
    }
    return MCU_OK;
}

mcu_status mcu_pad_s8(const int8_t *input, const mcu_dims *in, const mcu_dims *before, const mcu_dims *out,
                      int8_t value, int8_t *output)
{
    memset(output, value, (size_t)out->n * out->h * out->w * out->c);
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

mcu_status mcu_transpose_s8(const int8_t *input, const mcu_dims *input_dims, const int32_t perm[4], int8_t *output)
{
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

mcu_status mcu_copy_region_s8(const int8_t *src, const mcu_dims *src_dims, int32_t top, int32_t left, int32_t h,
                              int32_t w, int8_t *dst)
{
    if (top < 0 || left < 0 || top + h > src_dims->h || left + w > src_dims->w)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t c = src_dims->c;
    for (int32_t y = 0; y < h; y++)
    {
        memcpy(dst + y * w * c, src + ((top + y) * src_dims->w + left) * c, (size_t)(w * c));
    }
    return MCU_OK;
}

mcu_status mcu_paste_region_s8(const int8_t *src, int32_t h, int32_t w, const mcu_dims *dst_dims, int32_t top,
                               int32_t left, int8_t *dst)
{
    if (top < 0 || left < 0 || top + h > dst_dims->h || left + w > dst_dims->w)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t c = dst_dims->c;
    for (int32_t y = 0; y < h; y++)
    {
        memcpy(dst + ((top + y) * dst_dims->w + left) * c, src + y * w * c, (size_t)(w * c));
    }
    return MCU_OK;
}
