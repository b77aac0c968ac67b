/**
 * @file mcunn_packed_support.h
 * @brief Reading and writing packed 4- / 2-bit pixels (layout in mcunn_packed.h); internal to the kernels.
 */
#ifndef MCUNN_PACKED_SUPPORT_H
#define MCUNN_PACKED_SUPPORT_H

#include <stdint.h>

#include "mcunn_support.h"

/** Element c of a pixel stored at `bits` (8, 4 or 2), sign-extended. */
static inline int32_t mcu_packed_get(const uint8_t *pixel, int32_t c, int32_t bits)
{
    if (bits == 8)
    {
        return (int32_t)(int8_t)pixel[c];
    }
    const int32_t per_byte_log2 = bits == 4 ? 1 : 2;
    const int32_t half = 1 << (bits - 1);
    const uint32_t field = ((uint32_t)pixel[c >> per_byte_log2] >> ((c & ((1 << per_byte_log2) - 1)) * bits)) &
                           ((1u << bits) - 1u);
    return ((int32_t)field ^ half) - half; /* two's complement b-bit field */
}

/** Lowest and highest value of a `bits`-bit output clamped to [lo, hi] (a fused activation's bounds). */
static inline void mcu_packed_range(int32_t bits, int32_t lo, int32_t hi, int32_t *out_lo, int32_t *out_hi)
{
    const int32_t qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    *out_lo = lo > qmin ? lo : qmin;
    *out_hi = hi < qmax ? hi : qmax;
}

/** Stores n values (already in the `bits` range) from vals as the packed bytes at out: whole bytes written,
 * padding bits 0. For bits 8 a copy. The first value must start a byte (its channel a multiple of 8 / bits). */
static inline void mcu_packed_store(const int8_t *vals, int32_t n, int32_t bits, uint8_t *out)
{
    int32_t i = 0;
    if (bits == 8)
    {
        for (; i < n; i++)
        {
            out[i] = (uint8_t)vals[i];
        }
        return;
    }
    if (bits == 4)
    {
        for (; i + 1 < n; i += 2)
        {
            *out++ = (uint8_t)(((uint32_t)vals[i] & 0xFu) | ((uint32_t)vals[i + 1] << 4));
        }
        if (i < n)
        {
            *out = (uint8_t)((uint32_t)vals[i] & 0xFu);
        }
        return;
    }
    for (; i + 3 < n; i += 4)
    {
        *out++ = (uint8_t)(((uint32_t)vals[i] & 3u) | (((uint32_t)vals[i + 1] & 3u) << 2) |
                           (((uint32_t)vals[i + 2] & 3u) << 4) | ((uint32_t)vals[i + 3] << 6));
    }
    if (i < n)
    {
        uint32_t byte = 0;
        for (int32_t f = 0; i + f < n; f++)
        {
            byte |= ((uint32_t)vals[i + f] & 3u) << (2 * f);
        }
        *out = (uint8_t)byte;
    }
}

#endif /* MCUNN_PACKED_SUPPORT_H */
