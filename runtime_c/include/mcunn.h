/**
 * @file mcunn.h
 * @brief mcunn: portable C99 int8 kernels for the layers mcucompile generates.
 *
 * Conventions (as CMSIS-NN): tensors are NHWC int8 ([N, H, W, C], C innermost, dense); weights symmetric
 * int8 per output channel; bias int32; requantization by a Q31 multiplier and a shift with TFLite's double
 * rounding.
 *
 * One calling convention for every kernel `mcu_<op>[_<variant>]_s8`:
 *   1. `const mcu_context *ctx`: caller-provided scratch; may be NULL where the kernel documents it unused;
 *   2. the op's parameter struct (`mcu_<op>_params`), where the op has one;
 *   3. the quantization parameter struct (`mcu_per_channel_quant_params` / `mcu_per_tensor_quant_params`),
 *      where the op has one;
 *   4. (dims, data) pairs: each input, then filter, then bias where present (a dims may stand without data,
 *      e.g. a pooling window's filter_dims);
 *   5. output dims and output, last.
 * Every kernel returns ::mcu_status; none allocates memory. A kernel with caller scratch has a matching
 * `mcu_<op>_get_buffer_size_s8`. Pointers to data and parameter structs must not be NULL unless stated.
 * An argument outside its documented range that the kernel does not check (listed under @return) is
 * undefined behaviour; the compiler's plan safety check (compiler/memory/safety.py) proves generated calls
 * meet every contract listed here.
 *
 * Window kernels (convolutions, pooling) and negative padding: output pixel (oy, ox) reads the window
 * starting at input row oy * stride.h - padding.h and column ox * stride.w - padding.w. Taps outside
 * [0, H) x [0, W) of @p input_dims are skipped. A positive padding therefore adds virtual rows/columns
 * before the input; a negative padding is a start offset: the window of output (0, 0) starts -padding.h
 * rows and -padding.w columns into the input buffer. The patched stage uses this to run a layer on a
 * region of a larger input buffer; input_dims are then the dims of that whole buffer (rows and columns
 * past the region the output needs are never read).
 */
#ifndef MCUNN_H
#define MCUNN_H

#include "mcunn_types.h"
#include "mcunn_dsp.h" /* SIMD32 kernels: declared on every target, fast with the DSP extension */
#include "mcunn_mve.h" /* MVE (Helium) kernels: declared only for integer-MVE targets (Cortex-M55) */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Standard or grouped 2-D convolution, int8.
 *
 * acc = bias[oc] + sum over valid taps of (input + input_offset) * filter; output =
 * clamp(requantize(acc, multiplier[oc], shift[oc]) + output_offset). Skipped taps (see the file comment on
 * padding) contribute 0, as if the input held its zero point there.
 * @param[in]  ctx          Scratch, unused (mcu_conv_get_buffer_size_s8() is 0); may be NULL.
 * @param[in]  conv_params  input_offset in [-127, 128], output_offset in [-128, 127], stride >= 1,
 *                          padding (top, left) any int32 (negative = start offset, see above), dilation >= 1,
 *                          activation min <= max in [-128, 127], groups >= 1.
 * @param[in]  quant_params Per-output-channel multiplier / shift, @p output_dims->c entries each.
 * @param[in]  input_dims   [N, H, W, C_in], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [C_out, KH, KW, C_in / groups], each >= 1.
 * @param[in]  filter       Weights, int8 [C_out, KH, KW, C_in / groups], symmetric (zero point 0).
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         Bias, int32 [C_out]; may be NULL (no bias).
 * @param[in]  output_dims  [N', OH, OW, C_out], OH, OW >= 0; N' is not read: N = input_dims->n batches are
 *                          written.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when groups < 1, filter_dims->c * groups != C_in,
 *         C_out is not a multiple of groups, or filter_dims->n != output_dims->c.
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

/**
 * @brief Scratch bytes mcu_conv_s8() needs: 0 for the portable kernel.
 * @param[in] input_dims  [N, H, W, C_in] (not read).
 * @param[in] filter_dims [C_out, KH, KW, C_in / groups] (not read).
 * @return 0.
 */
int32_t mcu_conv_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims);

/**
 * @brief Depthwise 2-D convolution, int8: output channel oc reads input channel oc / ch_mult.
 *
 * Arithmetic and padding as mcu_conv_s8().
 * @param[in]  ctx          Scratch: buf of at least mcu_dwconv_get_buffer_size_s8() bytes, 4-byte aligned
 *                          (one int32 accumulator per output channel); must not be NULL.
 * @param[in]  dw_params    input_offset in [-127, 128], output_offset in [-128, 127], ch_mult >= 1,
 *                          stride >= 1, padding (top, left) any int32 (negative = start offset), dilation >= 1,
 *                          activation min <= max in [-128, 127].
 * @param[in]  quant_params Per-output-channel multiplier / shift, C_out entries each.
 * @param[in]  input_dims   [N, H, W, C_in], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [1, KH, KW, C_out], C_out = C_in * ch_mult (n is not read).
 * @param[in]  filter       Weights, int8 [KH, KW, C_out], symmetric.
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         Bias, int32 [C_out]; may be NULL (no bias).
 * @param[in]  output_dims  [N', OH, OW, C_out], OH, OW >= 0; N' is not read: N = input_dims->n batches are
 *                          written.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when ch_mult < 1, C_in * ch_mult != output_dims->c,
 *         filter_dims->c != output_dims->c, or ctx, ctx->buf is NULL or ctx->size is below
 *         mcu_dwconv_get_buffer_size_s8().
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

/**
 * @brief Scratch bytes mcu_dwconv_s8() needs: one int32 per output channel.
 * @param[in] output_dims [N, OH, OW, C_out].
 * @return 4 * output_dims->c.
 */
int32_t mcu_dwconv_get_buffer_size_s8(const mcu_dims *output_dims);

/**
 * @brief Fully connected layer, int8, per-output-channel requantization.
 *
 * output[r, o] = clamp(requantize(bias[o] + sum_k (input[r, k] + input_offset) * (filter[o, k] +
 * filter_offset), multiplier[o], shift[o]) + output_offset).
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  fc_params    input_offset in [-127, 128], filter_offset (0 for symmetric weights),
 *                          output_offset in [-128, 127], activation min <= max in [-128, 127].
 * @param[in]  quant_params Per-output-channel multiplier / shift, out_ch entries each.
 * @param[in]  input_dims   [rows, 1, 1, accum_depth] (h, w not read), rows >= 0, accum_depth >= 1.
 * @param[in]  input        Input, int8 [rows, accum_depth].
 * @param[in]  filter_dims  [accum_depth, 1, 1, out_ch] (as CMSIS-NN: n = accumulation depth; h, w not read).
 * @param[in]  filter       Weights, int8 [out_ch, accum_depth].
 * @param[in]  bias_dims    [1, 1, 1, out_ch] (not read).
 * @param[in]  bias         Bias, int32 [out_ch]; may be NULL (no bias).
 * @param[in]  output_dims  [rows', 1, 1, out_ch] (n, h, w not read), out_ch >= 1.
 * @param[out] output       Output, int8 [rows, out_ch].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when input_dims->c != filter_dims->n or
 *         filter_dims->c != output_dims->c.
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
 * @brief Elementwise add with broadcasting (an input dimension of 1 repeats), int8, TFLite semantics.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  add_params   Negated input zero points in [-127, 128], output zero point in [-128, 127],
 *                          rescale multipliers (Q31) and shifts in [-31, 30], left_shift in [0, 20],
 *                          activation min <= max in [-128, 127].
 * @param[in]  input1_dims  [N, H, W, C] of input 1, each equal to the output's or 1.
 * @param[in]  input1       Input 1, int8.
 * @param[in]  input2_dims  [N, H, W, C] of input 2, each equal to the output's or 1.
 * @param[in]  input2       Input 2, int8.
 * @param[in]  output_dims  [N, H, W, C] of the output, each >= 0.
 * @param[out] output       Output, int8; may alias an input whose dims equal output_dims.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when an input dimension is neither the output's nor 1.
 */
mcu_status mcu_add_s8(const mcu_context *ctx,
                      const mcu_add_params *add_params,
                      const mcu_dims *input1_dims,
                      const int8_t *input1,
                      const mcu_dims *input2_dims,
                      const int8_t *input2,
                      const mcu_dims *output_dims,
                      int8_t *output);

/**
 * @brief Elementwise multiply with broadcasting, int8, TFLite semantics.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  mul_params   Negated input zero points in [-127, 128], output zero point in [-128, 127],
 *                          output multiplier (Q31) and shift in [-31, 30], activation min <= max in
 *                          [-128, 127].
 * @param[in]  input1_dims  [N, H, W, C] of input 1, each equal to the output's or 1.
 * @param[in]  input1       Input 1, int8.
 * @param[in]  input2_dims  [N, H, W, C] of input 2, each equal to the output's or 1.
 * @param[in]  input2       Input 2, int8.
 * @param[in]  output_dims  [N, H, W, C] of the output, each >= 0.
 * @param[out] output       Output, int8; may alias an input whose dims equal output_dims.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when an input dimension is neither the output's nor 1.
 */
mcu_status mcu_mul_s8(const mcu_context *ctx,
                      const mcu_mul_params *mul_params,
                      const mcu_dims *input1_dims,
                      const int8_t *input1,
                      const mcu_dims *input2_dims,
                      const int8_t *input2,
                      const mcu_dims *output_dims,
                      int8_t *output);

/**
 * @brief Max pooling over H, W, int8. Skipped taps (see the file comment on padding) are ignored; a window
 *        with no tap inside the input gives -128 before the clamp.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  pool_params  stride >= 1, padding (top, left) any int32 (negative = start offset),
 *                          activation min <= max in [-128, 127].
 * @param[in]  input_dims   [N, H, W, C], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  filter_dims  [1, KH, KW, 1]: the window (n, c not read), KH, KW >= 1.
 * @param[in]  output_dims  [N', OH, OW, C'], OH, OW >= 0 (n, c not read: N and C come from input_dims).
 * @param[out] output       Output, int8 [N, OH, OW, C].
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
 * @brief Average pooling over H, W, int8 (TFLite: mean of the taps inside the input, rounded half away
 *        from zero). Skipped taps (see the file comment on padding) are not counted.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  pool_params  stride >= 1, padding (top, left) any int32 (negative = start offset),
 *                          activation min <= max in [-128, 127].
 * @param[in]  input_dims   [N, H, W, C], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  filter_dims  [1, KH, KW, 1]: the window (n, c not read), KH, KW >= 1.
 * @param[in]  output_dims  [N', OH, OW, C'], OH, OW >= 0 (n, c not read: N and C come from input_dims).
 * @param[out] output       Output, int8 [N, OH, OW, C].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when a window has no tap inside the input.
 */
mcu_status mcu_avg_pool_s8(const mcu_context *ctx,
                           const mcu_pool_params *pool_params,
                           const mcu_dims *input_dims,
                           const int8_t *input,
                           const mcu_dims *filter_dims,
                           const mcu_dims *output_dims,
                           int8_t *output);

/**
 * @brief Mean over H and W (TFLite Micro's integer MEAN):
 *        y = clamp(requantize(sum - input_offset, multiplier, shift) + output_offset, -128, 127),
 *        the sum accumulated in int32 with wrap-around, as TFLite's.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  mean_params  input_offset = input zero point * H * W; output_offset in [-128, 127].
 * @param[in]  quant_params Q31 multiplier including the 1 / (H * W) factor; shift in [-31, 30].
 * @param[in]  input_dims   [N, H, W, C], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  output_dims  [N, 1, 1, C].
 * @param[out] output       Output, int8 [N, 1, 1, C].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when output_dims is not [input N, 1, 1, input C].
 */
mcu_status mcu_mean_hw_s8(const mcu_context *ctx,
                          const mcu_mean_params *mean_params,
                          const mcu_per_tensor_quant_params *quant_params,
                          const mcu_dims *input_dims,
                          const int8_t *input,
                          const mcu_dims *output_dims,
                          int8_t *output);

/**
 * @brief Softmax over the innermost dimension, int8 in, int8 out (scale 1/256, zero point -128), bit-exact
 *        with TFLite's reference. Rows are the N * H * W positions, each of C elements.
 * @param[in]  ctx             Scratch, unused; may be NULL.
 * @param[in]  softmax_params  diff_min <= 0: differences x - max below it give probability 0 (and are not
 *                             scaled); diff_min * 2^shift >= -2^31.
 * @param[in]  quant_params    Input multiplier (beta * input scale, Q31) and input left shift in [0, 30].
 * @param[in]  input_dims      [N, H, W, C]; N * H * W >= 0 rows, C >= 1 elements per row.
 * @param[in]  input           Input, int8 [N, H, W, C].
 * @param[in]  output_dims     Equal to input_dims.
 * @param[out] output          Output, int8 [N, H, W, C]; may alias input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when C < 1, output_dims differs from input_dims, the
 *         shift is outside [0, 30], diff_min > 0 or diff_min * 2^shift < -2^31.
 */
mcu_status mcu_softmax_s8(const mcu_context *ctx,
                          const mcu_softmax_params *softmax_params,
                          const mcu_per_tensor_quant_params *quant_params,
                          const mcu_dims *input_dims,
                          const int8_t *input,
                          const mcu_dims *output_dims,
                          int8_t *output);

/**
 * @brief Any int8 -> int8 elementwise function through a 256-entry table: output[i] = table[input[i] + 128].
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  lut_params   The table (256 int8 entries).
 * @param[in]  input_dims   [N, H, W, C], each >= 0 (only the element count N * H * W * C matters).
 * @param[in]  input        Input, int8, N * H * W * C elements.
 * @param[in]  output_dims  [N, H, W, C] with the same element count as input_dims.
 * @param[out] output       Output, int8, as many elements; may alias input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when the table is NULL or the element counts differ.
 */
mcu_status mcu_lut_s8(const mcu_context *ctx,
                      const mcu_lut_params *lut_params,
                      const mcu_dims *input_dims,
                      const int8_t *input,
                      const mcu_dims *output_dims,
                      int8_t *output);

/**
 * @brief Copies one concatenation input into its place in the output (one call per input).
 *
 * Both tensors are viewed as [outer, row] bytes: dims [outer, 1, 1, row] (any split of outer over n, h, w
 * is accepted: outer = n * h * w), outer = product of the dims before the concatenation axis, row = bytes
 * from the axis on. Row i of the input goes to bytes [offset, offset + in_row) of output row i.
 * @param[in]  ctx            Scratch, unused; may be NULL.
 * @param[in]  concat_params  offset >= 0, offset + in_row <= out_row.
 * @param[in]  input_dims     [outer, 1, 1, in_row], each >= 0.
 * @param[in]  input          Input, int8 [outer, in_row].
 * @param[in]  output_dims    [outer, 1, 1, out_row], same outer as the input.
 * @param[out] output         Output, int8 [outer, out_row]; bytes outside this input's columns are untouched.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when offset < 0, in_row < 0, offset + in_row > out_row,
 *         or the outer counts differ.
 */
mcu_status mcu_concat_s8(const mcu_context *ctx,
                         const mcu_concat_params *concat_params,
                         const mcu_dims *input_dims,
                         const int8_t *input,
                         const mcu_dims *output_dims,
                         int8_t *output);

/**
 * @brief Constant padding of a 4-D tensor: fills the whole output with pad_value, then copies the input to
 *        position pre_pad.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  pad_params   pre_pad per axis >= 0; pad_value in [-128, 127] (the input zero point for a zero pad).
 * @param[in]  input_dims   [N, H, W, C], each >= 0.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  output_dims  [N', H', W', C'] with pre_pad + input_dims <= output_dims on every axis.
 * @param[out] output       Output, int8 [N', H', W', C']; must not overlap the input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when a pre_pad is negative or the input at pre_pad leaves
 *         the output.
 */
mcu_status mcu_pad_s8(const mcu_context *ctx,
                      const mcu_pad_params *pad_params,
                      const mcu_dims *input_dims,
                      const int8_t *input,
                      const mcu_dims *output_dims,
                      int8_t *output);

/**
 * @brief 4-D transpose: output axis i is input axis perm[i].
 * @param[in]  ctx               Scratch, unused; may be NULL.
 * @param[in]  transpose_params  perm, a permutation of {0, 1, 2, 3} (0 = n, 3 = c).
 * @param[in]  input_dims        [N, H, W, C], each >= 0.
 * @param[in]  input             Input, int8 [N, H, W, C].
 * @param[in]  output_dims       The input dims permuted: (d[perm[0]], d[perm[1]], d[perm[2]], d[perm[3]]).
 * @param[out] output            Output, int8; must not overlap the input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when perm is not a permutation of {0, 1, 2, 3} or
 *         output_dims are not the permuted input dims.
 */
mcu_status mcu_transpose_s8(const mcu_context *ctx,
                            const mcu_transpose_params *transpose_params,
                            const mcu_dims *input_dims,
                            const int8_t *input,
                            const mcu_dims *output_dims,
                            int8_t *output);

/**
 * @brief Copies rows [top, top + h) x columns [left, left + w) of an NHWC tensor (batch 1) into a
 *        contiguous [1, h, w, C] buffer (the input patch of patch-based inference, and the crop of an
 *        operand to a patch's output region).
 * @param[in]  ctx            Scratch, unused; may be NULL.
 * @param[in]  region_params  top, left >= 0: the region's first row and column in the input.
 * @param[in]  input_dims     [1, H, W, C] of the whole tensor.
 * @param[in]  input          Input, int8 [1, H, W, C].
 * @param[in]  output_dims    [1, h, w, C]: the region, h, w >= 0, top + h <= H, left + w <= W.
 * @param[out] output         Region, int8 [1, h, w, C], contiguous; must not overlap the input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when a batch is not 1, the channel counts differ,
 *         h or w is negative, or the region leaves the input.
 */
mcu_status mcu_copy_region_s8(const mcu_context *ctx,
                              const mcu_region_params *region_params,
                              const mcu_dims *input_dims,
                              const int8_t *input,
                              const mcu_dims *output_dims,
                              int8_t *output);

/**
 * @brief Writes a contiguous [1, h, w, C] patch into rows [top, top + h) x columns [left, left + w) of an
 *        NHWC tensor (batch 1) (the stage output of patch-based inference); the rest of the output is
 *        untouched.
 * @param[in]  ctx            Scratch, unused; may be NULL.
 * @param[in]  region_params  top, left >= 0: the region's first row and column in the output.
 * @param[in]  input_dims     [1, h, w, C]: the patch, h, w >= 0, top + h <= H, left + w <= W.
 * @param[in]  input          Patch, int8 [1, h, w, C], contiguous.
 * @param[in]  output_dims    [1, H, W, C] of the whole tensor.
 * @param[out] output         Output, int8 [1, H, W, C]; must not overlap the input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when a batch is not 1, the channel counts differ,
 *         h or w is negative, or the region leaves the output.
 */
mcu_status mcu_paste_region_s8(const mcu_context *ctx,
                               const mcu_region_params *region_params,
                               const mcu_dims *input_dims,
                               const int8_t *input,
                               const mcu_dims *output_dims,
                               int8_t *output);

/**
 * @brief Nearest-neighbour upsampling by integer factors, int8: each output pixel is a copy of one input
 *        pixel (bytes copied, so input and output share their quantization).
 *
 * Output pixel (oy, ox) of batch b is input pixel ((oy + offset.h) / scale.h, (ox + offset.w) / scale.w) of
 * batch b. With offset 0 and output dims scale times the input's this is TFLite's RESIZE_NEAREST_NEIGHBOR
 * without align_corners / half_pixel_centers; the patched stage passes an offset when a patch starts inside
 * a replicated block.
 * @param[in]  ctx            Scratch, unused; may be NULL.
 * @param[in]  resize_params  scale (h, w) >= 1, offset (h, w) >= 0.
 * @param[in]  input_dims     [N, H, W, C], each >= 0.
 * @param[in]  input          Input, int8 [N, H, W, C].
 * @param[in]  output_dims    [N, OH, OW, C], OH, OW >= 0, with (OH - 1 + offset.h) / scale.h < H and
 *                            (OW - 1 + offset.w) / scale.w < W when OH, OW > 0.
 * @param[out] output         Output, int8 [N, OH, OW, C]; must not overlap the input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when a scale is below 1, an offset is negative, N or C
 *         differ between input and output, an output dimension is negative, or an output pixel would read
 *         outside the input.
 */
mcu_status mcu_resize_nearest_s8(const mcu_context *ctx,
                                 const mcu_resize_nearest_params *resize_params,
                                 const mcu_dims *input_dims,
                                 const int8_t *input,
                                 const mcu_dims *output_dims,
                                 int8_t *output);

/**
 * @brief Parametric ReLU with one slope per channel, int8, TFLite Micro's PRELU semantics.
 *
 * v = input + input_offset; output = clamp(v >= 0 ? requantize(v, identity_mult, identity_shift)
 * : requantize(v * (alpha[c] + alpha_offset), alpha_mult, alpha_shift) + output_offset) to [-128, 127],
 * c the channel (innermost index); a single slope (alpha_dims->c == 1) applies to every channel.
 * @param[in]  ctx           Scratch, unused; may be NULL.
 * @param[in]  prelu_params  Offsets and the two requantizations (see ::mcu_prelu_params).
 * @param[in]  input_dims    [N, H, W, C], each >= 0.
 * @param[in]  input         Input, int8 [N, H, W, C].
 * @param[in]  alpha_dims    [1, 1, 1, C_alpha] (n, h, w not read), C_alpha = C or 1.
 * @param[in]  alpha         Slopes, int8 [C_alpha].
 * @param[in]  output_dims   Equal to input_dims.
 * @param[out] output        Output, int8 [N, H, W, C]; may alias input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when output_dims differ from input_dims or C_alpha is
 *         neither C nor 1.
 */
mcu_status mcu_prelu_s8(const mcu_context *ctx,
                        const mcu_prelu_params *prelu_params,
                        const mcu_dims *input_dims,
                        const int8_t *input,
                        const mcu_dims *alpha_dims,
                        const int8_t *alpha,
                        const mcu_dims *output_dims,
                        int8_t *output);

/**
 * @brief Int8 to a packed 4- or 2-bit map (mixed precision: int8 in, b = pack_params->bits out).
 *
 * y = clamp(requantize(x + input_offset, multiplier, shift) + output_offset, -2^(b-1), 2^(b-1) - 1).
 * Packed layout: channels innermost, k = 8 / b values per byte; channel c of a pixel is the two's
 * complement b-bit field at bits (c % k) * b of byte c / k of that pixel, lowest bits first; each pixel
 * takes ceil(C * b / 8) bytes (padding bits written 0) and pixels follow each other as in int8.
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  pack_params  Offsets and requantization (see ::mcu_pack_params), bits 4 or 2.
 * @param[in]  input_dims   [N, H, W, C], each >= 0.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  output_dims  Equal to input_dims (element dims; the bytes are N * H * W * ceil(C * b / 8)).
 * @param[out] output       Output, packed b-bit [N, H, W, ceil(C * b / 8) bytes]; must not alias input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when output_dims differ from input_dims or bits is not
 *         4 or 2.
 */
mcu_status mcu_pack_s8(const mcu_context *ctx,
                       const mcu_pack_params *pack_params,
                       const mcu_dims *input_dims,
                       const int8_t *input,
                       const mcu_dims *output_dims,
                       uint8_t *output);

/**
 * @brief A packed 4- or 2-bit map to int8 (mixed precision: b = pack_params->bits in, int8 out).
 *
 * Each field is sign-extended, then y = clamp(requantize(x + input_offset, multiplier, shift) +
 * output_offset, -128, 127). Packed layout as mcu_pack_s8() (padding bits are not read as values).
 * @param[in]  ctx          Scratch, unused; may be NULL.
 * @param[in]  pack_params  Offsets and requantization (see ::mcu_pack_params), bits 4 or 2.
 * @param[in]  input_dims   [N, H, W, C] (element dims), each >= 0.
 * @param[in]  input        Input, packed b-bit [N, H, W, ceil(C * b / 8) bytes].
 * @param[in]  output_dims  Equal to input_dims.
 * @param[out] output       Output, int8 [N, H, W, C]; must not alias input.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when output_dims differ from input_dims or bits is not
 *         4 or 2.
 */
mcu_status mcu_unpack_s8(const mcu_context *ctx,
                         const mcu_pack_params *pack_params,
                         const mcu_dims *input_dims,
                         const uint8_t *input,
                         const mcu_dims *output_dims,
                         int8_t *output);

/** Outlier check of value-driven patch classification (QuantMCU's VDPC): the patch is an outlier patch when
 *  any value of the checked region lies more than threshold steps from the zero point. */
typedef struct
{
    int32_t zero_point; /**< Zero point of the checked map, in [-128, 127]. */
    int32_t threshold;  /**< Largest |x - zero_point| that is not an outlier, in [0, 255] (255: never). */
} mcu_outlier_check_params;

/**
 * @brief Whether any int8 value of a buffer is an outlier: output = 1 when some |input[i] - zero_point| >
 *        threshold (exact integers, no rounding), else 0 (VDPC: the patch loop then runs the 8-bit chain or
 *        the low-bit chain). The portable kernel stops at the first outlier.
 * @param[in]  ctx           Scratch, unused; may be NULL.
 * @param[in]  check_params  zero_point in [-128, 127], threshold in [0, 255] (see ::mcu_outlier_check_params).
 * @param[in]  input_dims    [N, H, W, C], each >= 0: the region buffer (contiguous; N * H * W * C values).
 * @param[in]  input         Input, int8 [N, H, W, C].
 * @param[in]  output_dims   [1, 1, 1, 1] (not read).
 * @param[out] output        One int32: 1 (an outlier) or 0.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when zero_point or threshold is out of range or a
 *         dimension is negative.
 */
mcu_status mcu_outlier_check_s8(const mcu_context *ctx,
                                const mcu_outlier_check_params *check_params,
                                const mcu_dims *input_dims,
                                const int8_t *input,
                                const mcu_dims *output_dims,
                                int32_t *output);

/**
 * @brief mcu_outlier_check_s8() with SIMD32 (DSP extension: Cortex-M4, M7, M33): 4 values per step, SSUB8
 *        against each bound of [zero_point - threshold, zero_point + threshold] that lies inside int8 (one
 *        after a ReLU) and SEL into a lane mask; stops after the first 32-byte block that holds an outlier.
 *        Same result for every argument. Defined on every target (portable emulation of SSUB8 + SEL without
 *        the extension).
 * @param[in]  ctx           Scratch, unused; may be NULL.
 * @param[in]  check_params  As mcu_outlier_check_s8().
 * @param[in]  input_dims    As mcu_outlier_check_s8(); any alignment of @p input.
 * @param[in]  input         Input, int8 [N, H, W, C].
 * @param[in]  output_dims   [1, 1, 1, 1] (not read).
 * @param[out] output        One int32: 1 (an outlier) or 0.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) as mcu_outlier_check_s8().
 */
mcu_status mcu_outlier_check_dsp_s8(const mcu_context *ctx,
                                    const mcu_outlier_check_params *check_params,
                                    const mcu_dims *input_dims,
                                    const int8_t *input,
                                    const mcu_dims *output_dims,
                                    int32_t *output);

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
/**
 * @brief mcu_outlier_check_s8() with MVE (Cortex-M55): 16 values per step, the running signed maximum and
 *        minimum (VMAX.S8 / VMIN.S8, only for a bound inside int8), the tail predicated, one VMAXV / VMINV at
 *        the end; declared and defined only for integer-MVE targets. Same result for every argument.
 * @param[in]  ctx           Scratch, unused; may be NULL.
 * @param[in]  check_params  As mcu_outlier_check_s8().
 * @param[in]  input_dims    As mcu_outlier_check_s8(); any alignment of @p input.
 * @param[in]  input         Input, int8 [N, H, W, C].
 * @param[in]  output_dims   [1, 1, 1, 1] (not read).
 * @param[out] output        One int32: 1 (an outlier) or 0.
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) as mcu_outlier_check_s8().
 */
mcu_status mcu_outlier_check_mve_s8(const mcu_context *ctx,
                                    const mcu_outlier_check_params *check_params,
                                    const mcu_dims *input_dims,
                                    const int8_t *input,
                                    const mcu_dims *output_dims,
                                    int32_t *output);
#endif

#ifdef __cplusplus
}
#endif

#endif /* MCUNN_H */
