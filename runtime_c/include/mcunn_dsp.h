/**
 * @file mcunn_dsp.h
 * @brief SIMD32 (Armv7E-M DSP extension: Cortex-M4, M7, M33) int8 kernels, bit-exact with the portable
 *        kernels of mcunn.h (TFLite's integer semantics).
 *
 * Same calling convention, parameter structs and padding rule (negative padding = start offset) as
 * mcunn.h. What differs is compile-time data: each kernel takes its weights in the order it loads them, as
 * compiler/ops/fast_layout.py writes them into flash (same size as the model's weights except where a
 * layout states a zero padding), and, for mcu_conv_1x1_dsp_s8(), mcu_dwconv_dsp_s8() and
 * mcu_fully_connected_dsp_s8(), a bias with the input zero-point term folded in. Every kernel is declared
 * and defined on every target: without `__ARM_FEATURE_DSP` (host, Cortex-M0+) the intrinsics are portable C
 * with the same results (mcunn_dsp_support.h), so the same source is tested on the host; they are only fast
 * with the extension.
 * With optimisation the inner loops are hand-scheduled inline assembly (-DMCU_DSP_NO_ASM: the C loops);
 * requantization follows mcunn_config.h (double or single rounding) as the portable kernels do.
 *
 * Which kernel (instructions per MAC on Cortex-M4, bench/kernels.py): mcu_conv_dsp_s8() for every groups-1
 * convolution, 1x1 included (1.78 on 24x24x32 -> 64, where mcu_conv_1x1_dsp_s8() takes 2.19 but no scratch);
 * mcu_dwconv_dsp_s8() for channel multiplier 1; mcu_fully_connected_dsp_s8() for filter offset 0 (1.46 on
 * 640 -> 128, 1.56 on 256 -> 64; no scratch); mcu_add_dsp_s8() for adds without broadcasting (49 instructions
 * per element).
 *
 * Notation: K4(n) = n rounded up to a multiple of 4. "Swapped 4-blocks": within each 4 consecutive weights
 * of one output channel, elements 1 and 2 trade places ({w0, w2, w1, w3}), which makes SXTB16 of a weight
 * word yield the int16 pairs (w0, w1) and (w2, w3) that match an input widened in natural order.
 */
#ifndef MCUNN_DSP_H
#define MCUNN_DSP_H

#include "mcunn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest window (KH * KW taps) mcu_dwconv_dsp_s8() accepts: its tap pointers live on the stack. */
#define MCU_DWCONV_DSP_MAX_TAPS 64

/**
 * @brief 1x1 convolution without im2col (pointwise; any stride), int8, SIMD32: 2 pixels x 2 channels per
 *        block, input bytes used as they are.
 *
 * output = clamp(requantize(bias_folded[oc] + sum_ic input * w[oc, ic], multiplier[oc], shift[oc]) +
 * output_offset), which equals mcu_conv_s8() when bias_folded = bias + input_offset * sum_ic w[oc, ic]
 * (int32, wrapping; compiler/ops/fast_layout.py fold_input_offset). Every tap must lie inside the input.
 * @param[in]  ctx          Scratch, unused (mcu_conv_1x1_dsp_get_buffer_size_s8() is 0); may be NULL.
 * @param[in]  conv_params  As mcu_conv_s8(), with groups = 1; padding <= 0 (a start offset) and the last
 *                          output pixel's tap inside the input; dilation is not read.
 * @param[in]  quant_params Per-output-channel multiplier / shift, C_out entries each.
 * @param[in]  input_dims   [N, H, W, C_in], C_in a multiple of 4.
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [C_out, 1, 1, C_in].
 * @param[in]  filter       Weights, int8, C_out * C_in bytes, "pairs" layout: for each pair of output
 *                          channels (2j, 2j+1) and each 4-block b of C_in, w[2j, 4b..4b+3] then
 *                          w[2j+1, 4b..4b+3] (natural order); an odd last channel follows as its plain row.
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         Folded bias, int32 [C_out] (see above); may be NULL (all 0).
 * @param[in]  output_dims  [N', OH, OW, C_out], OH, OW >= 0; N = input_dims->n batches are written.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when the filter is not 1x1 or does not match C_in and
 *         C_out, groups != 1, C_in is not a multiple of 4, or a tap falls outside the input.
 */
mcu_status mcu_conv_1x1_dsp_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_conv_1x1_dsp_s8() needs: none.
 * @param[in] input_dims  [N, H, W, C_in] (not read).
 * @param[in] filter_dims [C_out, 1, 1, C_in] (not read).
 * @return 0.
 */
int32_t mcu_conv_1x1_dsp_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims);

/**
 * @brief General 2-D convolution (any kernel, stride, dilation, padding; groups = 1), int8, SIMD32:
 *        the windows of 2 pixels are widened to int16 with the input offset added (im2col in scratch), then
 *        2 pixels x 2 channels per block. Same arithmetic and result as mcu_conv_s8() with the model's bias.
 * @param[in]  ctx          Scratch: buf of at least mcu_conv_dsp_get_buffer_size_s8() bytes, 4-byte aligned;
 *                          must not be NULL.
 * @param[in]  conv_params  As mcu_conv_s8(), with groups = 1.
 * @param[in]  quant_params Per-output-channel multiplier / shift, C_out entries each.
 * @param[in]  input_dims   [N, H, W, C_in], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C_in].
 * @param[in]  filter_dims  [C_out, KH, KW, C_in]; K = KH * KW * C_in.
 * @param[in]  filter       Weights, int8, C_out * K4(K) bytes, "pairs, swapped" layout: each channel's row of
 *                          K weights ([KH, KW, C_in] order) zero-padded to K4(K) and its 4-blocks swapped; for
 *                          each channel pair (2j, 2j+1) and block b, block b of row 2j then of row 2j+1; an odd
 *                          last channel follows as its own padded, swapped row.
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         Bias, int32 [C_out] (the model's, not folded); may be NULL.
 * @param[in]  output_dims  [N', OH, OW, C_out], OH, OW >= 0; N = input_dims->n batches are written.
 * @param[out] output       Output, int8 [N, OH, OW, C_out].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when groups != 1, the filter does not match C_in and
 *         C_out, or ctx, ctx->buf is NULL or ctx->size is below mcu_conv_dsp_get_buffer_size_s8().
 */
mcu_status mcu_conv_dsp_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_conv_dsp_s8() needs: two windows of K4(KH * KW * C_in) int16, and K4 bytes to
 *        gather a window when C_in is not a multiple of 4.
 * @param[in] input_dims  [N, H, W, C_in].
 * @param[in] filter_dims [C_out, KH, KW, C_in].
 * @return 4 * K4(KH * KW * C_in), plus K4(KH * KW * C_in) when C_in % 4 != 0.
 */
int32_t mcu_conv_dsp_get_buffer_size_s8(const mcu_dims *input_dims, const mcu_dims *filter_dims);

/**
 * @brief Depthwise 2-D convolution, channel multiplier 1, any window up to ::MCU_DWCONV_DSP_MAX_TAPS taps,
 *        int8, SIMD32 (one SMLAD per channel per pair of taps), input bytes used as they are.
 *
 * Equals mcu_dwconv_s8() when bias_folded[c] = bias[c] + input_offset * sum_t w[t, c] (int32, wrapping;
 * compiler/ops/fast_layout.py dwconv_bias): taps outside the input read the zero point, whose products cancel
 * their share of the folded term.
 * @param[in]  ctx          Scratch: buf of at least mcu_dwconv_dsp_get_buffer_size_s8() bytes (a row of zero
 *                          points); must not be NULL.
 * @param[in]  dw_params    As mcu_dwconv_s8(), with ch_mult = 1.
 * @param[in]  quant_params Per-channel multiplier / shift, C entries each.
 * @param[in]  input_dims   [N, H, W, C], each >= 1.
 * @param[in]  input        Input, int8 [N, H, W, C].
 * @param[in]  filter_dims  [1, KH, KW, C], KH * KW <= ::MCU_DWCONV_DSP_MAX_TAPS (n is not read); T = KH * KW
 *                          taps in row-major order.
 * @param[in]  filter       Weights, int8, T * C bytes, "tap pairs" layout: for each group of 4 channels
 *                          c..c+3 (4T bytes), for each tap pair (t, t+1): {w[t,c], w[t,c+1], w[t+1,c],
 *                          w[t+1,c+1]} then the same for c+2, c+3; for an odd T the last tap follows as
 *                          {w[t,c], .., w[t,c+3]}; then the last C % 4 channels, each with its T taps in order.
 * @param[in]  bias_dims    [1, 1, 1, C] (not read).
 * @param[in]  bias         Folded bias, int32 [C] (see above); may be NULL (all 0).
 * @param[in]  output_dims  [N', OH, OW, C], OH, OW >= 0; N = input_dims->n batches are written.
 * @param[out] output       Output, int8 [N, OH, OW, C].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when ch_mult != 1, the output or filter channels differ
 *         from C, the window has more than 64 taps (the maximum above), or ctx, ctx->buf is NULL or
 *         ctx->size is below mcu_dwconv_dsp_get_buffer_size_s8().
 */
mcu_status mcu_dwconv_dsp_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_dwconv_dsp_s8() needs: one zero point per channel.
 * @param[in] input_dims [N, H, W, C].
 * @return K4(C).
 */
int32_t mcu_dwconv_dsp_get_buffer_size_s8(const mcu_dims *input_dims);

/**
 * @brief Fully connected layer, int8, SIMD32, without scratch: the input bytes widened in registers as they are
 *        read, 1 row x 8 channels per block (4 for a remaining quad), the input offset folded into the bias.
 *
 * output = clamp(requantize(bias_folded[oc] + sum_k input * w[oc, k], multiplier[oc], shift[oc]) + output_offset),
 * which equals mcu_fully_connected_s8() with filter_offset 0 when bias_folded = bias + input_offset * sum_k w[oc, k]
 * (int32, wrapping; compiler/ops/fast_layout.py fold_input_offset).
 * @param[in]  ctx          Scratch, unused (mcu_fully_connected_dsp_get_buffer_size_s8() is 0); may be NULL.
 * @param[in]  fc_params    As mcu_fully_connected_s8(), with filter_offset = 0 (input_offset is in the bias).
 * @param[in]  quant_params Per-output-channel multiplier / shift, out_ch entries each.
 * @param[in]  input_dims   [rows, 1, 1, accum_depth] (h, w not read), rows >= 0, accum_depth >= 1.
 * @param[in]  input        Input, int8 [rows, accum_depth] (exactly these bytes are read).
 * @param[in]  filter_dims  [accum_depth, 1, 1, out_ch] (n = accumulation depth, as mcu_fully_connected_s8()).
 * @param[in]  filter       Weights, int8, out_ch * K4(accum_depth) bytes, "octets" layout: each row zero-padded to
 *                          K4 in natural order; for each group of 8 channels (of the first out_ch / 8 * 8) and
 *                          4-block b, block b of the 8 rows in order; then, when 4 or more channels remain, the
 *                          same for a group of 4; then the last out_ch % 4 rows, each whole.
 * @param[in]  bias_dims    [1, 1, 1, out_ch] (not read).
 * @param[in]  bias         Folded bias, int32 [out_ch] (see above); may be NULL (all 0).
 * @param[in]  output_dims  [rows', 1, 1, out_ch] (n, h, w not read), out_ch >= 1.
 * @param[out] output       Output, int8 [rows, out_ch].
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when input_dims->c != filter_dims->n, filter_dims->c !=
 *         output_dims->c, filter_offset != 0 or a size is out of range.
 */
mcu_status mcu_fully_connected_dsp_s8(const mcu_context *ctx,
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
 * @brief Scratch bytes mcu_fully_connected_dsp_s8() needs: none.
 * @param[in] filter_dims [accum_depth, 1, 1, out_ch] (not read).
 * @return 0.
 */
int32_t mcu_fully_connected_dsp_get_buffer_size_s8(const mcu_dims *filter_dims);

/**
 * @brief Elementwise add, int8, without broadcasting (TFLite's Add: both inputs rescaled to 2^left_shift fixed
 *        point, summed, requantized, clamped); same result as mcu_add_s8() on equal shapes, in a flat loop with
 *        one SMLAL per requantization.
 * @param[in]  ctx          Scratch, unused (none needed); may be NULL.
 * @param[in]  add_params   As mcu_add_s8(), with left_shift in [0, 23].
 * @param[in]  input1_dims  [N, H, W, C], equal to output_dims (no broadcast).
 * @param[in]  input1       First input, int8.
 * @param[in]  input2_dims  Equal to output_dims.
 * @param[in]  input2       Second input, int8.
 * @param[in]  output_dims  [N, H, W, C], each >= 0.
 * @param[out] output       Output, int8; may alias an input (each element is read before it is written).
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) when an input's dims differ from output_dims or left_shift is
 *         out of range.
 */
mcu_status mcu_add_dsp_s8(const mcu_context *ctx,
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

#endif /* MCUNN_DSP_H */
