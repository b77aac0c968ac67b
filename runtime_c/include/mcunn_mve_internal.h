/**
 * @file mcunn_mve_internal.h
 * @brief The matrix core the MVE convolutions and fully connected layer share (mcunn_conv_mve.c); internal.
 */
#ifndef MCUNN_MVE_INTERNAL_H
#define MCUNN_MVE_INTERNAL_H

#include <stdint.h>

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

/** One layer as a matrix: C_out rows of K weights in the "quads" layout of mcunn_mve.h. */
typedef struct
{
    const int8_t *weights;
    const int32_t *bias; /**< Folded bias [C_out] or NULL. */
    const int32_t *mult;
    const int32_t *shift;
    int32_t k;
    int32_t cout;
    int32_t out_offset;
    int32_t lo;
    int32_t hi;
    int32_t vector_ok;  /**< mcu_mve_requant_vector_ok() of the layer's shifts. */
    int32_t right_only; /**< mcu_mve_shifts_right_only() of the layer's shifts. */
} mcu_mve_mat;

/**
 * Output rows o0 (and o1) = requantized m x (input row x0, and x1): C_out int8 each. x1 = NULL: one row.
 * o1 must be o0 + C_out (the output rows are consecutive: it runs mcu_mve_mat_mult_rows()).
 */
void mcu_mve_mat_mult(const mcu_mve_mat *m, const int8_t *x0, const int8_t *x1, int8_t *o0, int8_t *o1);

/** The same for n rows rows[i] -> out + i * C_out (consecutive output pixels). */
void mcu_mve_mat_mult_rows(const mcu_mve_mat *m, const int8_t *const *rows, int32_t n, int8_t *out);

#endif

#endif /* MCUNN_MVE_INTERNAL_H */
