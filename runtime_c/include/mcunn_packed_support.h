/**
 * @file mcunn_packed_support.h
 * @brief Reading and writing packed 4- / 2-bit pixels (layout in mcunn_packed.h); internal to the kernels.
 */
#ifndef MCUNN_PACKED_SUPPORT_H
#define MCUNN_PACKED_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "mcunn_packed.h"
#include "mcunn_support.h"
#include "mcunn_types.h"

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

/** Values per run of the packed adds (a multiple of every values-per-byte). */
#define MCU_PACKED_ADD_RUN 128

/** n values of a packed run (its first at a byte's start) at `bits`, as int8 at dst. */
typedef void (*mcu_packed_unpack_fn)(int8_t *dst, const uint8_t *src, int32_t n, int32_t bits);
/** n int8 values (in the `bits` range) packed at dst, padding bits 0 (bits 8: a copy). */
typedef void (*mcu_packed_pack_fn)(const int8_t *src, int32_t n, int32_t bits, uint8_t *dst);

/** mcu_packed_unpack_fn in plain C: a byte at a time, each field sign-extended with two shifts. */
static inline void mcu_packed_unpack_run(int8_t *dst, const uint8_t *src, int32_t n, int32_t bits)
{
    int32_t i = 0;
    if (bits == 8)
    {
        memcpy(dst, src, (size_t)n);
        return;
    }
    if (bits == 4)
    {
        for (; i + 1 < n; i += 2, src++)
        {
            const int32_t v = (int32_t)(int8_t)*src;
            dst[i] = (int8_t)((int32_t)((uint32_t)v << 28) >> 28);
            dst[i + 1] = (int8_t)(v >> 4);
        }
        if (i < n)
        {
            dst[i] = (int8_t)((int32_t)((uint32_t)*src << 28) >> 28);
        }
        return;
    }
    for (; i + 3 < n; i += 4, src++)
    {
        const uint32_t v = (uint32_t)*src << 24;
        dst[i] = (int8_t)((int32_t)(v << 6) >> 30);
        dst[i + 1] = (int8_t)((int32_t)(v << 4) >> 30);
        dst[i + 2] = (int8_t)((int32_t)(v << 2) >> 30);
        dst[i + 3] = (int8_t)((int32_t)v >> 30);
    }
    for (int32_t k = 0; i < n; i++, k++)
    {
        dst[i] = (int8_t)((int32_t)((uint32_t)*src << (30 - 2 * k)) >> 30);
    }
}

/** 1 when a packed add's bits (each 8, 4 or 2) and dims (all equal, none negative: no broadcasting) are valid. */
static inline int mcu_packed_add_args_ok(int32_t input1_bits, int32_t input2_bits, int32_t output_bits,
                                         const mcu_dims *d1, const mcu_dims *d2, const mcu_dims *o)
{
    const int32_t bits[3] = {input1_bits, input2_bits, output_bits};
    for (int32_t k = 0; k < 3; k++)
    {
        if (bits[k] != 8 && bits[k] != 4 && bits[k] != 2)
        {
            return 0;
        }
    }
    return d1->n == o->n && d1->h == o->h && d1->w == o->w && d1->c == o->c && d2->n == o->n && d2->h == o->h &&
           d2->w == o->w && d2->c == o->c && o->n >= 0 && o->h >= 0 && o->w >= 0 && o->c >= 0;
}

/** The table add of a run: y[k] = clamp(requantize(t1[a[k]] + t2[b[k]]) + output_offset, lo, hi), the tables
 *  biased so that a signed value indexes them (mcu_add_table_packed_s8()'s loop; one per core). */
typedef void (*mcu_packed_add_table_run_fn)(const mcu_add_table_params *p, const int32_t *t1, const int32_t *t2,
                                            const int8_t *a, const int8_t *b, int8_t *y, int32_t n, int32_t lo,
                                            int32_t hi);

/** The table adds (mcu_add_table_packed_s8(), mcu_add_table_dsp_packed_s8(), mcu_add_table_mve_packed_s8()):
 *  arguments checked, then runs of up to MCU_PACKED_ADD_RUN values (whole pixels when no operand's pixel has
 *  padding bits, i.e. C * bits a multiple of 8 for all three, else one pixel at a time) unpacked into int8 on the
 *  stack (`unpack`), added by `run` with the clamp narrowed to the output width's range and stored by `pack`. In
 *  place (the output on an input of the same bits) is safe: a run's bytes are stored after its values are read,
 *  and later runs lie past them. No fallback: the terms hold the inputs' rescaling. Inlined, each caller gets its
 *  own copy with its three functions called directly. */
static inline __attribute__((always_inline)) mcu_status
mcu_packed_add_table(const mcu_add_table_params *p, int32_t input1_bits, int32_t input2_bits, int32_t output_bits,
                     const mcu_dims *input1_dims, const uint8_t *input1, const mcu_dims *input2_dims,
                     const uint8_t *input2, const mcu_dims *output_dims, uint8_t *output,
                     mcu_packed_unpack_fn unpack, mcu_packed_add_table_run_fn run, mcu_packed_pack_fn pack)
{
    const mcu_dims *o = output_dims;
    if (p == NULL || p->input1_terms == NULL || p->input2_terms == NULL ||
        !mcu_packed_add_args_ok(input1_bits, input2_bits, output_bits, input1_dims, input2_dims, output_dims))
    {
        return MCU_ARG_ERROR;
    }
    int32_t lo, hi;
    mcu_packed_range(output_bits, p->activation.min, p->activation.max, &lo, &hi);
    const int32_t *t1 = p->input1_terms + (1 << (input1_bits - 1)), *t2 = p->input2_terms + (1 << (input2_bits - 1));
    const int32_t ch = o->c, pixels = o->n * o->h * o->w;
    const int32_t px1 = (ch * input1_bits + 7) / 8, px2 = (ch * input2_bits + 7) / 8, pxo = (ch * output_bits + 7) / 8;
    const int flat = (ch * input1_bits) % 8 == 0 && (ch * input2_bits) % 8 == 0 && (ch * output_bits) % 8 == 0;
    const int32_t rows = flat ? 1 : pixels, per_row = flat ? pixels * ch : ch;
    int8_t a[MCU_PACKED_ADD_RUN], b[MCU_PACKED_ADD_RUN], y[MCU_PACKED_ADD_RUN];
    for (int32_t r = 0; r < rows; r++)
    {
        const uint8_t *r1 = input1 + r * px1, *r2 = input2 + r * px2;
        uint8_t *ro = output + r * pxo;
        for (int32_t i = 0; i < per_row; i += MCU_PACKED_ADD_RUN)
        {
            const int32_t n = per_row - i < MCU_PACKED_ADD_RUN ? per_row - i : MCU_PACKED_ADD_RUN;
            unpack(a, r1 + i * input1_bits / 8, n, input1_bits);
            unpack(b, r2 + i * input2_bits / 8, n, input2_bits);
            run(p, t1, t2, a, b, y, n, lo, hi);
            pack(y, n, output_bits, ro + i * output_bits / 8);
        }
    }
    return MCU_OK;
}

#endif /* MCUNN_PACKED_SUPPORT_H */
