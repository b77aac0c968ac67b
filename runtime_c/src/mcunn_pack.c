/* Pack / unpack between int8 and packed 4- or 2-bit feature maps (layout in mcunn.h, mcu_pack_s8). */
#include "mcunn.h"
#include "mcunn_support.h"

static int mcu_pack_args_ok(const mcu_pack_params *p, const mcu_dims *input_dims, const mcu_dims *output_dims)
{
    return (p->bits == 4 || p->bits == 2) && output_dims->n == input_dims->n && output_dims->h == input_dims->h &&
           output_dims->w == input_dims->w && output_dims->c == input_dims->c;
}

mcu_status mcu_pack_s8(const mcu_context *ctx,
                       const mcu_pack_params *pack_params,
                       const mcu_dims *input_dims,
                       const int8_t *input,
                       const mcu_dims *output_dims,
                       uint8_t *output)
{
    (void)ctx;
    const mcu_pack_params *p = pack_params;
    if (!mcu_pack_args_ok(p, input_dims, output_dims))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t bits = p->bits;
    const int32_t per_byte = 8 / bits;
    const int32_t qmin = -(1 << (bits - 1));
    const int32_t qmax = (1 << (bits - 1)) - 1;
    const uint32_t mask = (1u << bits) - 1u;
    const int32_t c = input_dims->c;
    const int32_t pixel_bytes = (c * bits + 7) / 8;
    const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
    for (int32_t i = 0; i < pixels; i++)
    {
        for (int32_t b = 0; b < pixel_bytes; b++)
        {
            /* whole bytes are assembled and stored once: the output is written, never read */
            uint32_t byte = 0;
            for (int32_t f = 0; f < per_byte; f++)
            {
                const int32_t ch = b * per_byte + f;
                if (ch >= c)
                {
                    break; /* padding bits stay 0 */
                }
                int32_t y = mcu_requantize(input[ch] + p->input_offset, p->multiplier, p->shift) + p->output_offset;
                y = MCU_CLAMP(y, qmin, qmax);
                byte |= ((uint32_t)y & mask) << (f * bits);
            }
            output[b] = (uint8_t)byte;
        }
        input += c;
        output += pixel_bytes;
    }
    return MCU_OK;
}

mcu_status mcu_unpack_s8(const mcu_context *ctx,
                         const mcu_pack_params *pack_params,
                         const mcu_dims *input_dims,
                         const uint8_t *input,
                         const mcu_dims *output_dims,
                         int8_t *output)
{
    (void)ctx;
    const mcu_pack_params *p = pack_params;
    if (!mcu_pack_args_ok(p, input_dims, output_dims))
    {
        return MCU_ARG_ERROR;
    }
    const int32_t bits = p->bits;
    const int32_t per_byte = 8 / bits;
    const int32_t half = 1 << (bits - 1);
    const uint32_t mask = (1u << bits) - 1u;
    const int32_t c = input_dims->c;
    const int32_t pixel_bytes = (c * bits + 7) / 8;
    const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
    for (int32_t i = 0; i < pixels; i++)
    {
        for (int32_t ch = 0; ch < c; ch++)
        {
            const uint32_t field = ((uint32_t)input[ch / per_byte] >> ((ch % per_byte) * bits)) & mask;
            const int32_t x = (int32_t)field >= half ? (int32_t)field - 2 * half : (int32_t)field; /* sign-extend */
            int32_t y = mcu_requantize(x + p->input_offset, p->multiplier, p->shift) + p->output_offset;
            output[ch] = (int8_t)MCU_CLAMP(y, -128, 127);
        }
        input += pixel_bytes;
        output += c;
    }
    return MCU_OK;
}
