/* Nearest-neighbour upsampling by integer factors, int8 (pure replication; TFLite's RESIZE_NEAREST_NEIGHBOR
 * without align_corners / half_pixel_centers at an integer scale). */
#include <string.h>

#include "mcunn.h"

mcu_status mcu_resize_nearest_s8(const mcu_context *ctx,
                                 const mcu_resize_nearest_params *resize_params,
                                 const mcu_dims *input_dims,
                                 const int8_t *input,
                                 const mcu_dims *output_dims,
                                 int8_t *output)
{
    (void)ctx;
    const int32_t sh = resize_params->scale.h, sw = resize_params->scale.w;
    const int32_t oh0 = resize_params->offset.h, ow0 = resize_params->offset.w;
    const int32_t n = input_dims->n, c = input_dims->c;
    const int32_t in_h = input_dims->h, in_w = input_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    if (sh < 1 || sw < 1 || oh0 < 0 || ow0 < 0 || output_dims->n != n || output_dims->c != c || out_h < 0 ||
        out_w < 0)
    {
        return MCU_ARG_ERROR;
    }
    /* the last output row / column must read inside the input */
    if (n > 0 && c > 0 && out_h > 0 && out_w > 0 && ((out_h - 1 + oh0) / sh >= in_h || (out_w - 1 + ow0) / sw >= in_w))
    {
        return MCU_ARG_ERROR;
    }
    for (int32_t b = 0; b < n; b++)
    {
        const int8_t *in_b = input + b * in_h * in_w * c;
        for (int32_t oy = 0; oy < out_h; oy++)
        {
            const int8_t *in_row = in_b + (oy + oh0) / sh * in_w * c;
            for (int32_t ox = 0; ox < out_w; ox++)
            {
                memcpy(output, in_row + (ox + ow0) / sw * c, (size_t)c);
                output += c;
            }
        }
    }
    return MCU_OK;
}
