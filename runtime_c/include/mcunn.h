/**
 * @file mcunn.h
 * @brief mcunn: portable C99 int8 kernels for the layers mcucompile generates.
 *
 * Conventions (as CMSIS-NN): tensors are NHWC int8; weights symmetric int8 per output channel;
 * bias int32; requantization by a Q31 multiplier and a shift with TFLite's double rounding.
 * Argument order: context, op params, quant params, input dims, input, filter dims, filter,
 * bias dims, bias, output dims, output. Every kernel returns ::mcu_status; none allocates memory.
 */
#ifndef MCUNN_H
#define MCUNN_H

#include "mcunn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Standard or grouped 2-D convolution, int8.
 * @param[in]  ctx          Scratch (unused by the portable kernel; may be NULL).
 * @param[in]  conv_params  Offsets, stride, padding (top/left), dilation, clamp, groups.
 * @param[in]  quant_params Per-output-channel multiplier/shift, @p filter_dims->n entries each.
 * @param[in]  input_dims   [N, H, W, C_in].
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [C_out, KH, KW, C_in / groups].
 * @param[in]  filter       Weights, int8 [C_out, KH, KW, C_in / groups], symmetric (zero point 0).
 * @param[in]  bias_dims    [1, 1, 1, C_out].
 * @param[in]  bias         Bias, int32 [C_out], may be NULL.
 * @param[in]  output_dims  [N, OH, OW, C_out]; positions reading outside the input use padding.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR when channel counts and groups disagree.
 */
mcu_status mcu_conv_s8(const mcu_context *ctx,
                       const mcu_conv_params *conv_params,
                       const mcu_per_channel_quant_params *quant_params,
                       const mcu_dims *input_dims,
                       const int8_t *input,
                       const mcu_dims *filter_dims,
                       const int8_t *filter,
                       const mcu_dims *bias_dims,
                       const int32_t *bias,
                       const mcu_dims *output_dims,
                       int8_t *output);

/** @brief Scratch bytes mcu_conv_s8 needs (0 for the portable kernel). */
int32_t mcu_conv_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims);

/**
 * @brief Depthwise 2-D convolution, int8.
 * @param[in]  ctx          Scratch of at least mcu_dwconv_get_buffer_size_s8() bytes, 4-byte aligned (one int32
 *                          accumulator per output channel).
 * @param[in]  dw_params    Offsets, channel multiplier, stride, padding, dilation, clamp.
 * @param[in]  quant_params Per-output-channel multiplier/shift.
 * @param[in]  input_dims   [N, H, W, C_in].
 * @param[in]  input        Input, int8.
 * @param[in]  filter_dims  [1, KH, KW, C_out], C_out = C_in * ch_mult.
 * @param[in]  filter       Weights, int8 [KH, KW, C_out].
 * @param[in]  bias_dims    [1, 1, 1, C_out].
 * @param[in]  bias         Bias, int32 [C_out], may be NULL.
 * @param[in]  output_dims  [N, OH, OW, C_out].
 * @param[out] output       Output, int8.
 * @return MCU_OK, or MCU_ARG_ERROR when C_out != C_in * ch_mult or the scratch is missing or too small.
 */
mcu_status mcu_dwconv_s8(const mcu_context *ctx,
                         const mcu_dw_conv_params *dw_params,
                         const mcu_per_channel_quant_params *quant_params,
                         const mcu_dims *input_dims,
                         const int8_t *input,
                         const mcu_dims *filter_dims,
                         const int8_t *filter,
                         const mcu_dims *bias_dims,
                         const int32_t *bias,
                         const mcu_dims *output_dims,
                         int8_t *output);

/** @brief Scratch bytes mcu_dwconv_s8 needs (one int32 per output channel). */
int32_t mcu_dwconv_get_buffer_size_s8(const mcu_dims *output_dims);

/**
 * @brief Fully connected layer, int8, per-output-channel requantization.
 * @param[in]  ctx          Scratch (unused; may be NULL).
 * @param[in]  fc_params    Offsets and clamp.
 * @param[in]  quant_params Per-output-channel multiplier/shift.
 * @param[in]  input_dims   [rows, 1, 1, accum_depth].
 * @param[in]  input        Input, int8 [rows, accum_depth].
 * @param[in]  filter_dims  [accum_depth, 1, 1, out_ch] (as CMSIS-NN: n = accumulation depth).
 * @param[in]  filter       Weights, int8 [out_ch, accum_depth].
 * @param[in]  bias_dims    [1, 1, 1, out_ch].
 * @param[in]  bias         Bias, int32 [out_ch], may be NULL.
 * @param[in]  output_dims  [rows, 1, 1, out_ch].
 * @param[out] output       Output, int8 [rows, out_ch].
 * @return MCU_OK.
 */
mcu_status mcu_fully_connected_s8(const mcu_context *ctx,
                                  const mcu_fc_params *fc_params,
                                  const mcu_per_channel_quant_params *quant_params,
                                  const mcu_dims *input_dims,
                                  const int8_t *input,
                                  const mcu_dims *filter_dims,
                                  const int8_t *filter,
                                  const mcu_dims *bias_dims,
                                  const int32_t *bias,
                                  const mcu_dims *output_dims,
                                  int8_t *output);

/**
 * @brief Elementwise add with broadcasting (a dimension of 1 in an input repeats), int8.
 * @param[in]  params       Offsets, rescale multipliers and shifts, clamp.
 * @param[in]  input1_dims  Input 1 dims, each equal to the output's or 1.
 * @param[in]  input1       Input 1, int8.
 * @param[in]  input2_dims  Input 2 dims, each equal to the output's or 1.
 * @param[in]  input2       Input 2, int8.
 * @param[in]  output_dims  Output dims.
 * @param[out] output       Output, int8; may alias a full-size input.
 * @return MCU_OK, or MCU_ARG_ERROR on incompatible dims.
 */
mcu_status mcu_add_s8(const mcu_add_params *params,
                      const mcu_dims *input1_dims,
                      const int8_t *input1,
                      const mcu_dims *input2_dims,
                      const int8_t *input2,
                      const mcu_dims *output_dims,
                      int8_t *output);

/**
 * @brief Elementwise multiply with broadcasting, int8 (arguments as mcu_add_s8).
 * @return MCU_OK, or MCU_ARG_ERROR on incompatible dims.
 */
mcu_status mcu_mul_s8(const mcu_mul_params *params,
                      const mcu_dims *input1_dims,
                      const int8_t *input1,
                      const mcu_dims *input2_dims,
                      const int8_t *input2,
                      const mcu_dims *output_dims,
                      int8_t *output);

/**
 * @brief Max pooling over H, W, int8. Padded positions are ignored.
 * @param[in]  ctx          Scratch (unused; may be NULL).
 * @param[in]  pool_params  Stride, padding (top, left), clamp.
 * @param[in]  input_dims   [N, H, W, C].
 * @param[in]  input        Input, int8.
 * @param[in]  filter_dims  [1, KH, KW, 1].
 * @param[in]  output_dims  [N, OH, OW, C].
 * @param[out] output       Output, int8.
 * @return MCU_OK.
 */
mcu_status mcu_max_pool_s8(const mcu_context *ctx,
                           const mcu_pool_params *pool_params,
                           const mcu_dims *input_dims,
                           const int8_t *input,
                           const mcu_dims *filter_dims,
                           const mcu_dims *output_dims,
                           int8_t *output);

/**
 * @brief Average pooling over H, W, int8 (TFLite rounding: valid taps only, half away from zero).
 * @return MCU_OK, or MCU_ARG_ERROR when a window covers no input.
 */
mcu_status mcu_avg_pool_s8(const mcu_context *ctx,
                           const mcu_pool_params *pool_params,
                           const mcu_dims *input_dims,
                           const int8_t *input,
                           const mcu_dims *filter_dims,
                           const mcu_dims *output_dims,
                           int8_t *output);

/**
 * @brief Mean over H and W (TFLite Micro's integer MEAN): y = requantize(sum - input_offset) + output_zp.
 * @param[in]  input          Input, int8 [N, H, W, C].
 * @param[in]  input_dims     Input dims.
 * @param[in]  input_offset   Input zero point times H * W (subtracted from the raw sum).
 * @param[in]  multiplier     Q31 multiplier including the 1 / (H * W) factor.
 * @param[in]  shift          Shift, in [-31, 30].
 * @param[in]  output_zp      Output zero point.
 * @param[out] output         Output, int8 [N, 1, 1, C].
 * @return MCU_OK.
 */
mcu_status mcu_mean_hw_s8(const int8_t *input, const mcu_dims *input_dims, int32_t input_offset, int32_t multiplier,
                          int32_t shift, int32_t output_zp, int8_t *output);

/**
 * @brief Softmax over rows, int8 in, int8 out (scale 1/256, zero point -128), TFLite bit-exact.
 * @param[in]  input     Input, int8 [num_rows, row_size].
 * @param[in]  num_rows  Number of rows, >= 1.
 * @param[in]  row_size  Elements per row, >= 1.
 * @param[in]  mult      Input multiplier (beta * input scale, Q31).
 * @param[in]  shift     Input left shift, in [0, 31].
 * @param[in]  diff_min  Differences from the row max below this give 0 probability.
 * @param[out] output    Output, int8 [num_rows, row_size].
 * @return MCU_OK.
 */
mcu_status mcu_softmax_s8(const int8_t *input,
                          int32_t num_rows,
                          int32_t row_size,
                          int32_t mult,
                          int32_t shift,
                          int32_t diff_min,
                          int8_t *output);

/**
 * @brief Any int8 -> int8 elementwise function through a 256-entry table.
 * @param[in]  input   Input, int8 [size].
 * @param[in]  table   Table indexed by (uint8_t)(x + 128).
 * @param[in]  size    Number of elements.
 * @param[out] output  Output, int8 [size]; may alias input.
 * @return MCU_OK.
 */
mcu_status mcu_lut_s8(const int8_t *input, const int8_t *table, int32_t size, int8_t *output);

/**
 * @brief Copies one concatenation input into its place in the output.
 * @param[in]  input       Input, viewed as [outer, in_row] bytes.
 * @param[in]  outer       Number of rows (product of dims before the concat axis).
 * @param[in]  in_row      Bytes per row of this input.
 * @param[out] output      Output, viewed as [outer, out_row] bytes.
 * @param[in]  out_row     Bytes per output row.
 * @param[in]  offset      Byte offset of this input inside an output row.
 * @return MCU_OK.
 */
mcu_status mcu_concat_s8(const int8_t *input, int32_t outer, int32_t in_row, int8_t *output, int32_t out_row,
                         int32_t offset);

/**
 * @brief Constant padding of a 4-D tensor.
 * @param[in]  input        Input, int8.
 * @param[in]  input_dims   Input dims.
 * @param[in]  before       Padding before each of n, h, w, c.
 * @param[in]  output_dims  Output dims (input + before + after).
 * @param[in]  value        Padding value (the input zero point for a zero pad).
 * @param[out] output       Output, int8.
 * @return MCU_OK.
 */
mcu_status mcu_pad_s8(const int8_t *input, const mcu_dims *input_dims, const mcu_dims *before,
                      const mcu_dims *output_dims, int8_t value, int8_t *output);

/**
 * @brief 4-D transpose: output axis i is input axis perm[i].
 * @param[in]  input       Input, int8.
 * @param[in]  input_dims  Input dims.
 * @param[in]  perm        Axis permutation of {0, 1, 2, 3} (0 = n, 3 = c).
 * @param[out] output      Output, int8.
 * @return MCU_OK, or MCU_ARG_ERROR for an invalid perm.
 */
mcu_status mcu_transpose_s8(const int8_t *input, const mcu_dims *input_dims, const int32_t perm[4], int8_t *output);

/**
 * @brief Copies rows [top, top+h) x columns [left, left+w) of an NHWC tensor (batch 1) into a
 *        contiguous [h, w, C] buffer (the input patch of patch-based inference).
 * @return MCU_OK, or MCU_ARG_ERROR when the region leaves the tensor.
 */
mcu_status mcu_copy_region_s8(const int8_t *src, const mcu_dims *src_dims, int32_t top, int32_t left, int32_t h,
                              int32_t w, int8_t *dst);

/**
 * @brief Writes a contiguous [h, w, C] patch into rows [top, top+h) x columns [left, left+w) of an
 *        NHWC tensor (batch 1) (the stage output of patch-based inference).
 * @return MCU_OK, or MCU_ARG_ERROR when the region leaves the tensor.
 */
mcu_status mcu_paste_region_s8(const int8_t *src, int32_t h, int32_t w, const mcu_dims *dst_dims, int32_t top,
                               int32_t left, int8_t *dst);

#ifdef __cplusplus
}
#endif

#endif /* MCUNN_H */
