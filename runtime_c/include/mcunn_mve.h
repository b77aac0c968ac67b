/**
 * @file mcunn_mve.h
 * @brief MVE (Helium: Cortex-M55 and other Armv8.1-M cores with integer MVE) int8 kernels, bit-exact with
 *        the portable kernels of mcunn.h (TFLite's integer semantics) in both rounding modes of
 *        mcunn_config.h.
 *
 * Declared and defined only when the compiler targets integer MVE (`__ARM_FEATURE_MVE & 1`, e.g.
 * `-mcpu=cortex-m55`); on every other target the sources compile to nothing. Same calling convention,
 * parameter structs and padding rule (negative padding = start offset) as mcunn.h. What differs is
 * compile-time data, written by compiler/ops/mve_layout.py: weights in the order the kernels load them
 * (same byte count as the model's) and a bias with the input zero-point term folded in, as TFLite Micro's
 * Prepare precomputes the kernel sums for CMSIS-NN on MVE:
 * bias_folded[oc] = bias[oc] + input_offset * sum_k w[oc, k] (int32, wrapping).
 *
 * Requantization runs on vectors of 4 lanes (VQRDMULH / VRSHL, mcunn_mve_support.h, exact in both modes);
 * with single rounding and a layer with a shift >= 0 the kernels take the scalar mcu_requantize() instead.
 * With optimisation (any -O but -O0) the matrix core's inner block is inline assembly (12 core registers);
 * -DMCU_MVE_NO_ASM selects the intrinsics loop everywhere.
 *
 * Which kernel, and what it costs (guest instructions on qemu-m55, bench/kernels_mve.py; least-squares fits
 * over 6-8 shapes each, within 4-11%): mcu_conv_1x1_mve_s8() for 1x1 layers whose taps all lie inside the
 * input (~0.125 MAC + 8.8 per output + 61 per pixel; 0.43 instr/MAC on 24x24x32 -> 64), mcu_conv_mve_s8() for
 * every other groups-1 convolution (~0.151 MAC + 11.5 per output + 158 per pixel), mcu_dwconv_mve_s8() for
 * channel multiplier 1 (~1.48 MAC + 124 per pixel; 3x3 layers whose shifts are all <= 0 take two pixels at
 * once: mcu_dwconv_3x3_mve_s8(), which the compiler calls directly for them), mcu_fully_connected_mve_s8()
 * for filter offset 0 (~0.172 MAC + 17 per output + 148 per row), mcu_add_mve_s8() for adds without
 * broadcasting (4 elements per step). Each is its own function, so a firmware links only what its layers call.
 * With double rounding (TFLite's) the scalar output stage for single rounding's shifts >= 0 is not built.
 *
 * "Quads" layout (convolutions, fully connected): the weights as rows of K int8 (conv: [KH, KW, C_in] order;
 * FC: accum_depth). For each group of 4 output channels: for each full 16-block b of K, 16 weights of each
 * of the 4 channels in turn (64 bytes); then the last K % 16 weights of each of the 4 channels in turn.
 * The last C_out % 4 channels follow as their plain rows.
 */
#ifndef MCUNN_MVE_H
#define MCUNN_MVE_H

#include "mcunn_types.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#ifdef __cplusplus
extern "C" {
#endif

/** Largest window (KH * KW taps) mcu_dwconv_mve_s8() accepts: its tap pointers live on the stack. */
#define MCU_DWCONV_MVE_MAX_TAPS 64

/**
 * @brief 1x1 convolution without im2col (pointwise; any stride, start offsets), int8, MVE: 2 pixels x 4
 *        channels per block of VMLADAVA.S8, input bytes used as they are.
 * @param[in]  ctx          Scratch, unused (mcu_conv_1x1_mve_get_buffer_size_s8() is 0); may be NULL.
 * @param[in]  conv_params  As mcu_conv_s8(), with groups = 1; padding <= 0 (a start offset) and the last
 *                          output pixel's tap inside the input; dilation is not read.
 * @param[in]  quant_params Per-output-channel multiplier / shift, C_out entries each.
 * @param[in]  input_dims   [N, H, W, C_in], C_in >= 1 (any).
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [C_out, 1, 1, C_in].
 * @param[in]  filter       Weights, int8, C_out * C_in bytes, "quads" layout (K = C_in).
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         Folded bias, int32 [C_out]; may be NULL (all 0).
 * @param[in]  output_dims  [N', OH, OW, C_out], OH, OW >= 0; N = input_dims->n batches are written.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when the filter is not 1x1 or does not match C_in and
 *         C_out, groups != 1, a padding is positive or a tap falls outside the input.
 */
mcu_status mcu_conv_1x1_mve_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_conv_1x1_mve_s8() needs: none.
 * @param[in] input_dims  [N, H, W, C_in] (not read).
 * @param[in] filter_dims [C_out, 1, 1, C_in] (not read).
 * @return 0.
 */
int32_t mcu_conv_1x1_mve_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims);

/**
 * @brief General 2-D convolution (any kernel, stride, dilation, padding; groups = 1), int8, MVE: the windows
 *        of 2 pixels copied as int8 into scratch (im2col; taps outside the input hold the input zero point),
 *        then the matrix core of mcu_conv_1x1_mve_s8().
 * @param[in]  ctx          Scratch: buf of at least mcu_conv_mve_get_buffer_size_s8() bytes; must not be NULL.
 * @param[in]  conv_params  As mcu_conv_s8(), with groups = 1.
 * @param[in]  quant_params Per-output-channel multiplier / shift, C_out entries each.
 * @param[in]  input_dims   [N, H, W, C_in], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [C_out, KH, KW, C_in]; K = KH * KW * C_in.
 * @param[in]  filter       Weights, int8, C_out * K bytes, "quads" layout.
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         Folded bias, int32 [C_out]; may be NULL (all 0).
 * @param[in]  output_dims  [N', OH, OW, C_out], OH, OW >= 0; N = input_dims->n batches are written.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when groups != 1, the filter does not match C_in and
 *         C_out, or ctx, ctx->buf is NULL or ctx->size is below mcu_conv_mve_get_buffer_size_s8().
 */
mcu_status mcu_conv_mve_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_conv_mve_s8() needs: two windows of int8.
 * @param[in] input_dims  [N, H, W, C_in] (not read).
 * @param[in] filter_dims [C_out, KH, KW, C_in].
 * @return 2 * KH * KW * C_in.
 */
int32_t mcu_conv_mve_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims);

/**
 * @brief Depthwise 2-D convolution, channel multiplier 1, any window up to ::MCU_DWCONV_MVE_MAX_TAPS taps,
 *        int8, MVE: 16 channels per block, VMULLB / VMULLT on inputs and weights widened to int16 on load.
 * @param[in]  ctx          Scratch: buf of at least mcu_dwconv_mve_get_buffer_size_s8() bytes (a row of zero
 *                          points); must not be NULL.
 * @param[in]  dw_params    As mcu_dwconv_s8(), with ch_mult = 1.
 * @param[in]  quant_params Per-channel multiplier / shift, C entries each (natural order).
 * @param[in]  input_dims   [N, H, W, C], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  filter_dims  [1, KH, KW, C], T = KH * KW taps in row-major order (n is not read).
 * @param[in]  filter       Weights, int8, T * C bytes, "16-blocks" layout: for each block of 16 channels
 *                          c..c+r-1 (r = min(16, C - c)), for each tap t, w[t, c..c+r-1] (r bytes).
 * @param[in]  bias_dims    [1, 1, 1, C] (not read).
 * @param[in]  bias         Folded bias, int32, K16(C) entries (C rounded up to 16), "even/odd" layout: for each
 *                          block of 16 channels, the folded biases of channels c, c+2, c+4, c+6, then c+1, c+3,
 *                          c+5, c+7, then the same for c+8..c+15; entries past C are 0. May be NULL (all 0).
 * @param[in]  output_dims  [N', OH, OW, C], OH, OW >= 0; N = input_dims->n batches are written.
 * @param[out] output       Output, int8 [N, OH, OW, C].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when ch_mult != 1, the output or filter channels differ
 *         from C, the window has more than 64 taps, or ctx, ctx->buf is NULL or ctx->size is below
 *         mcu_dwconv_mve_get_buffer_size_s8().
 */
mcu_status mcu_dwconv_mve_s8(const mcu_context *ctx,
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
 * @brief Depthwise 3x3 convolution, channel multiplier 1, for layers whose shifts are all <= 0 (< 0 with single
 *        rounding: mcu_mve_shifts_right_only()), int8, MVE: mcu_dwconv_mve_s8()'s arithmetic two pixels at a time
 *        (each weight vector and each channel's constants loaded once for both). What mcu_dwconv_mve_s8() runs
 *        for such layers; called directly (the compiler knows the shifts), it links none of the other windows'
 *        code.
 * @param[in]  ctx          Scratch: buf of at least mcu_dwconv_3x3_mve_get_buffer_size_s8() bytes (a row of zero
 *                          points); must not be NULL.
 * @param[in]  dw_params    As mcu_dwconv_mve_s8() (any stride, dilation, padding or start offset).
 * @param[in]  quant_params As mcu_dwconv_mve_s8(); every shift <= 0 (< 0 with single rounding).
 * @param[in]  input_dims   As mcu_dwconv_mve_s8().
 * @param[in]  input        As mcu_dwconv_mve_s8().
 * @param[in]  filter_dims  [1, 3, 3, C].
 * @param[in]  filter       As mcu_dwconv_mve_s8() ("16-blocks", T = 9).
 * @param[in]  bias_dims    [1, 1, 1, C] (not read).
 * @param[in]  bias         As mcu_dwconv_mve_s8() (folded, "even/odd", K16(C) entries); may be NULL.
 * @param[in]  output_dims  As mcu_dwconv_mve_s8().
 * @param[out] output       As mcu_dwconv_mve_s8().
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when mcu_dwconv_mve_s8() would refuse the arguments, the
 *         window is not 3x3 or a shift is out of the range above.
 */
mcu_status mcu_dwconv_3x3_mve_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_dwconv_3x3_mve_s8() needs: one zero point per channel.
 * @param[in] input_dims [N, H, W, C].
 * @return C.
 */
int32_t mcu_dwconv_3x3_mve_get_buffer_size_s8(const mcu_dims *input_dims);

/**
 * @brief Scratch bytes mcu_dwconv_mve_s8() needs: one zero point per channel.
 * @param[in] input_dims [N, H, W, C].
 * @return C.
 */
int32_t mcu_dwconv_mve_get_buffer_size_s8(const mcu_dims *input_dims);

/**
 * @brief Fully connected layer, int8, MVE: the matrix core of mcu_conv_1x1_mve_s8(), 2 input rows x 4
 *        channels per block. Same result as mcu_fully_connected_s8() with filter_offset 0.
 * @param[in]  ctx          Scratch, unused (mcu_fully_connected_mve_get_buffer_size_s8() is 0); may be NULL.
 * @param[in]  fc_params    As mcu_fully_connected_s8(), with filter_offset = 0.
 * @param[in]  quant_params Per-output-channel multiplier / shift, out_ch entries each.
 * @param[in]  input_dims   [rows, 1, 1, accum_depth] (h, w not read), rows >= 0.
 * @param[in]  input        Input, int8 [rows, accum_depth].
 * @param[in]  filter_dims  [accum_depth, 1, 1, out_ch] (n = accumulation depth, as mcu_fully_connected_s8()).
 * @param[in]  filter       Weights, int8, out_ch * accum_depth bytes, "quads" layout (K = accum_depth).
 * @param[in]  bias_dims    [1, 1, 1, out_ch] (not read).
 * @param[in]  bias         Folded bias, int32 [out_ch]; may be NULL (all 0).
 * @param[in]  output_dims  [rows', 1, 1, out_ch] (n, h, w not read).
 * @param[out] output       Output, int8 [rows, out_ch].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when input_dims->c != filter_dims->n, filter_dims->c !=
 *         output_dims->c, filter_offset != 0 or a size is not positive.
 */
mcu_status mcu_fully_connected_mve_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_fully_connected_mve_s8() needs: none.
 * @param[in] filter_dims [accum_depth, 1, 1, out_ch] (not read).
 * @return 0.
 */
int32_t mcu_fully_connected_mve_get_buffer_size_s8(const mcu_dims *filter_dims);

/**
 * @brief Elementwise add, int8, MVE (TFLite's Add: both inputs rescaled to 2^left_shift fixed point, summed,
 *        requantized, clamped), 4 elements per step; same result as mcu_add_s8() without broadcasting.
 * @param[in]  ctx          Scratch, unused (none needed); may be NULL.
 * @param[in]  add_params   As mcu_add_s8(); with single rounding a shift >= 0 runs mcu_add_s8() itself.
 * @param[in]  input1_dims  [N, H, W, C], equal to output_dims (no broadcast).
 * @param[in]  input1       First input, int8.
 * @param[in]  input2_dims  Equal to output_dims.
 * @param[in]  input2       Second input, int8.
 * @param[in]  output_dims  [N, H, W, C], each >= 0.
 * @param[out] output       Output, int8; may alias an input (each element is read before it is written).
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when an input's dims differ from output_dims.
 */
mcu_status mcu_add_mve_s8(const mcu_context *ctx,
                          const mcu_add_params *add_params,
                          const mcu_dims *input1_dims,
                          const int8_t *input1,
                          const mcu_dims *input2_dims,
                          const int8_t *input2,
                          const mcu_dims *output_dims,
                          int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* __ARM_FEATURE_MVE */

#endif /* MCUNN_MVE_H */
