/**
 * @file mcunn_types.h
 * @brief Types shared by every mcunn kernel. They mirror CMSIS-NN's structs so a generated layer can
 *        call either library with the same arguments.
 */
#ifndef MCUNN_TYPES_H
#define MCUNN_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status returned by every kernel. */
typedef enum
{
    MCU_OK = 0,         /**< Success. */
    MCU_ARG_ERROR = -1, /**< An argument is out of its documented range. */
    MCU_NO_IMPL = -2    /**< The combination of arguments is not implemented. */
} mcu_status;

/** Tensor dimensions, NHWC. */
typedef struct
{
    int32_t n; /**< Batch (or rows). */
    int32_t h; /**< Height. */
    int32_t w; /**< Width. */
    int32_t c; /**< Channels (innermost). */
} mcu_dims;

/** A 2-D quantity (stride, padding, dilation). */
typedef struct
{
    int32_t w; /**< Horizontal. */
    int32_t h; /**< Vertical. */
} mcu_tile;

/** Output clamp in the output's integer domain. */
typedef struct
{
    int32_t min; /**< Lower bound, in [-128, 127]. */
    int32_t max; /**< Upper bound, in [min, 127]. */
} mcu_activation;

/** Caller-provided scratch memory. */
typedef struct
{
    void *buf;    /**< Scratch buffer, may be NULL when the kernel's buffer size is 0. */
    int32_t size; /**< Size of buf in bytes. */
} mcu_context;

/** Convolution parameters (standard and grouped). */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point, in [-127, 128]. */
    int32_t output_offset; /**< Output zero point, in [-128, 127]. */
    mcu_tile stride;       /**< Stride, >= 1. */
    mcu_tile padding;      /**< Padding before the first row / column (top, left); may be negative (see mcu_conv_s8). */
    mcu_tile dilation;     /**< Dilation, >= 1. */
    mcu_activation activation; /**< Fused clamp. */
    int32_t groups;        /**< Groups, >= 1; input channels = filter channels * groups. */
} mcu_conv_params;

/** Depthwise convolution parameters. */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point. */
    int32_t output_offset; /**< Output zero point. */
    int32_t ch_mult;       /**< Channel multiplier: output channels = input channels * ch_mult. */
    mcu_tile stride;       /**< Stride, >= 1. */
    mcu_tile padding;      /**< Padding before (top, left); may be negative (see mcu_dwconv_s8). */
    mcu_tile dilation;     /**< Dilation, >= 1. */
    mcu_activation activation; /**< Fused clamp. */
} mcu_dw_conv_params;

/** Fully connected parameters. */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point. */
    int32_t filter_offset; /**< Negated filter zero point (0 for symmetric weights). */
    int32_t output_offset; /**< Output zero point. */
    mcu_activation activation; /**< Fused clamp. */
} mcu_fc_params;

/** Per-output-channel requantization: real = multiplier * 2^(shift - 31). */
typedef struct
{
    const int32_t *multiplier; /**< Q31 multipliers, one per output channel, in [2^30, 2^31). */
    const int32_t *shift;      /**< Shifts, one per output channel, in [-31, 30]. */
} mcu_per_channel_quant_params;

/** Pooling parameters. */
typedef struct
{
    mcu_tile stride;           /**< Stride, >= 1. */
    mcu_tile padding;          /**< Padding before (top, left); may be negative (see mcu_max_pool_s8). */
    mcu_activation activation; /**< Fused clamp. */
} mcu_pool_params;

/** Elementwise add (TFLite semantics). */
typedef struct
{
    int32_t input1_offset, input2_offset, output_offset; /**< Negated input zero points; output zero point. */
    int32_t input1_mult, input1_shift;                   /**< Input 1 rescale. */
    int32_t input2_mult, input2_shift;                   /**< Input 2 rescale. */
    int32_t output_mult, output_shift;                   /**< Output rescale. */
    int32_t left_shift;                                  /**< Common left shift (20). */
    mcu_activation activation;                           /**< Fused clamp. */
} mcu_add_params;

/** Elementwise multiply (TFLite semantics). */
typedef struct
{
    int32_t input1_offset, input2_offset, output_offset; /**< Negated input zero points; output zero point. */
    int32_t output_mult, output_shift;                   /**< Output rescale. */
    mcu_activation activation;                           /**< Fused clamp. */
} mcu_mul_params;

/** Per-tensor requantization: real = multiplier * 2^(shift - 31) (as cmsis_nn_per_tensor_quant_params). */
typedef struct
{
    int32_t multiplier; /**< Q31 multiplier. */
    int32_t shift;      /**< Shift; its range is stated by each kernel that takes this struct. */
} mcu_per_tensor_quant_params;

/** Mean over H and W (TFLite Micro's integer MEAN). */
typedef struct
{
    int32_t input_offset;  /**< Input zero point times H * W: subtracted from the raw (wrapping) int32 sum. */
    int32_t output_offset; /**< Output zero point, in [-128, 127]. */
} mcu_mean_params;

/** Softmax (TFLite's int8 softmax; the input multiplier and shift are in ::mcu_per_tensor_quant_params). */
typedef struct
{
    int32_t diff_min; /**< Differences (x - row max) below this give probability 0; <= 0. */
} mcu_softmax_params;

/** Table lookup: an int8 -> int8 function given by its 256 values. */
typedef struct
{
    const int8_t *table; /**< 256 entries, entry (uint8_t)(x + 128) is f(x); must not be NULL. */
} mcu_lut_params;

/** Concatenation of one input into its place in the output (called once per input). */
typedef struct
{
    int32_t offset; /**< Byte offset of this input inside an output row, >= 0. */
} mcu_concat_params;

/** Constant padding (as arm_pad_s8's pre_pad and pad_value). */
typedef struct
{
    mcu_dims pre_pad;  /**< Padding before each of n, h, w, c; each >= 0. */
    int32_t pad_value; /**< Padding value, in [-128, 127] (the input zero point for a zero pad). */
} mcu_pad_params;

/** 4-D transpose. */
typedef struct
{
    int32_t perm[4]; /**< Output axis i is input axis perm[i]; a permutation of {0, 1, 2, 3} (0 = n, 3 = c). */
} mcu_transpose_params;

/** Top-left corner of a rectangular region of an NHWC tensor (patch-based inference). */
typedef struct
{
    int32_t top;  /**< First row of the region, >= 0. */
    int32_t left; /**< First column of the region, >= 0. */
} mcu_region_params;

/** Nearest-neighbour upsampling by integer factors (pure replication). */
typedef struct
{
    mcu_tile scale;  /**< Replication factors, >= 1: output row oy reads input row (oy + offset.h) / scale.h. */
    mcu_tile offset; /**< Output rows / columns the output starts into the first input row's / column's block,
                          >= 0 (0 for a whole tensor; a patch may start inside a block). */
} mcu_resize_nearest_params;

/** Parametric ReLU (TFLite Micro's PRELU): an identity path and an alpha path, each requantized. */
typedef struct
{
    int32_t input_offset;   /**< Negated input zero point, in [-127, 128]. */
    int32_t alpha_offset;   /**< Negated slope zero point, in [-127, 128]. */
    int32_t output_offset;  /**< Output zero point, in [-128, 127]. */
    int32_t identity_mult;  /**< Q31 multiplier of (x + input_offset) >= 0: input scale / output scale. */
    int32_t identity_shift; /**< Its shift, in [-31, 30]. */
    int32_t alpha_mult;     /**< Q31 multiplier of (x + input_offset) * (alpha + alpha_offset) for negative inputs:
                                 input scale * slope scale / output scale. */
    int32_t alpha_shift;    /**< Its shift, in [-31, 30]. */
} mcu_prelu_params;

/** Pack / unpack between int8 and a packed 4- or 2-bit map: one requantization of every element. */
typedef struct
{
    int32_t input_offset;  /**< Negated input zero point (in the input's bitwidth's range, negated). */
    int32_t output_offset; /**< Output zero point, in the output's bitwidth's range. */
    int32_t multiplier;    /**< Q31 multiplier of input scale / output scale. */
    int32_t shift;         /**< Its shift, in [-31, 30]. */
    int32_t bits;          /**< Bits of the packed side: 4 or 2. */
} mcu_pack_params;

#ifdef __cplusplus
}
#endif

#endif /* MCUNN_TYPES_H */
