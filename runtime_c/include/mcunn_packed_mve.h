/**
 * @file mcunn_packed_mve.h
 * @brief MVE (Helium, Cortex-M55) versions of the packed-activation convolutions of mcunn_packed.h: packed 4- / 2-bit
 *        (or int8) inputs, int8 per-channel weights, packed 4- / 2-bit (or int8) outputs; the same result as the
 *        portable mcu_conv_a<b>w8_s8() / mcu_dwconv_a<b>w8_s8() byte for byte (layout and arithmetic in
 *        mcunn_packed.h); and of its elementwise add (mcu_add_table_mve_packed_s8(), as mcu_add_table_packed_s8()).
 *
 * Declared and defined only with integer MVE (`__ARM_FEATURE_MVE & 1`); elsewhere mcunn_packed_mve.c compiles to
 * nothing. Sub-byte values are unpacked at the load stage into int8 lanes (VLDRB.U16 / VLDRB.U32 + VSHL / VSLI +
 * VSHR.S8), never into an int8 copy of the map; the input offset is folded into the bias at compile time as for
 * the int8 MVE kernels of mcunn_mve.h (bias_folded[oc] = bias[oc] + input_offset * sum_k w[oc, k]), taps outside
 * the input hold the zero point. Names: `mcu_<op>_mve_a<input bits>w8_s8`, the output's bits as `output_bits`.
 */
#ifndef MCUNN_PACKED_MVE_H
#define MCUNN_PACKED_MVE_H

#include "mcunn_packed.h"
#include "mcunn_types.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#ifdef __cplusplus
extern "C" {
#endif

/** Largest window (KH * KW taps) mcu_dwconv_mve_a4w8_s8() and its siblings accept (tap pointers on the stack). */
#define MCU_DWCONV_MVE_PACKED_MAX_TAPS 64

/**
 * @brief Scratch bytes of mcu_conv_mve_a4w8_s8() / _a2w8 / _a8w8: none for a 1x1 window on C_in <= 16 (the direct
 *        pointwise path), else two int8 windows (2 * KH * KW * C_in) and, for a packed output (output_bits 4 or 2),
 *        two int8 output rows (2 * C_out) packed at the store (the im2col path).
 * @param[in] input_dims  [N, H, W, C_in] (not read).
 * @param[in] filter_dims [C_out, KH, KW, C_in].
 * @param[in] output_bits 8, 4 or 2.
 */
int32_t mcu_conv_mve_get_buffer_size_packed(const mcu_dims *input_dims, const mcu_dims *filter_dims,
                                            int32_t output_bits);

/**
 * @brief Whether mcu_conv_mve_a4w8_s8() and its siblings run a layer of these filter dims with less scratch than
 *        mcu_conv_mve_get_buffer_size_packed() (none, ctx NULL allowed): 1x1 on 1 <= C_in <= 16 (always direct), or
 *        C_in a multiple of 16 up to 64 with KH * KW * C_in / 16 <= 64 (the windowed direct path, taken when the
 *        im2col scratch is not given: each 16-block of a window unpacked into a register per 4 output channels,
 *        1.4-1.7x the im2col path's instructions).
 * @param[in] filter_dims [C_out, KH, KW, C_in].
 * @return 1 or 0.
 */
int32_t mcu_conv_mve_scratch_free_packed(const mcu_dims *filter_dims);

/**
 * @brief General convolution (groups 1, any window, stride, dilation, padding or start offset; 1x1 included) on a
 *        packed 4-bit input, MVE: the windows of two output pixels unpacked into two int8 columns of scratch (taps
 *        outside the input: the zero point), then the int8 matrix core of mcu_conv_mve_s8() (VMLADAVA.S8, 2 rows x
 *        4 channels); a packed output is requantized into two int8 rows of scratch and packed with VSLI. A 1x1
 *        layer on C_in <= 16 runs directly (each pixel unpacked into one register, 4 channels x 2 pixels per
 *        8 VMLADAVA, a packed output staged 16 channels at a time on the stack); with short scratch a layer
 *        mcu_conv_mve_scratch_free_packed() accepts runs the windowed direct path.
 * @param[in]  ctx     Scratch of mcu_conv_mve_get_buffer_size_packed() bytes (fewer, or NULL, where
 *                     mcu_conv_mve_scratch_free_packed()).
 * @param[in]  filter  int8, "quads" layout of mcu_conv_mve_s8() (compiler/ops/mve_layout.py conv_weights).
 * @param[in]  bias    Folded bias int32 [C_out] (input offset folded in), or NULL (all 0).
 * Other arguments as mcu_conv_a4w8_s8() (groups must be 1). Same result as mcu_conv_a4w8_s8().
 * @return MCU_OK, or MCU_ARG_ERROR (nothing written) for bits, groups or channels that do not fit or a missing /
 *         short scratch.
 */
mcu_status mcu_conv_mve_a4w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_mve_a4w8_s8() on a packed 2-bit input. */
mcu_status mcu_conv_mve_a2w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_mve_a4w8_s8() on an int8 input, writing a packed output_bits (4 or 2) output. */
mcu_status mcu_conv_mve_a8w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Scratch bytes of mcu_dwconv_mve_a4w8_s8() / _a2w8 / _a8w8: one pixel of input zero points, P(C, input_bits)
 *        bytes (what taps outside the input read).
 */
int32_t mcu_dwconv_mve_get_buffer_size_packed(const mcu_dims *input_dims, int32_t input_bits);

/**
 * @brief Depthwise convolution, channel multiplier 1, up to ::MCU_DWCONV_MVE_PACKED_MAX_TAPS taps, on a packed 4-bit
 *        input, MVE: 16 channels per block, each tap's values unpacked into int8 lanes, VMULLB.S8 / VMULLT.S8 with
 *        its weights, the int16 products summed over up to 31 taps (127 at 2 bits, 1 for int8) and widened into
 *        int32 accumulators of channels 4j + 0..3, requantized and packed at the store; sub-byte 3x3 layers whose
 *        shifts are all <= 0 take two output pixels per block (each tap's weights loaded once for both).
 *        The last 8 channels of a 3x3 layer with C % 16 = 8 whose shifts are all <= 0 (VWW's and MNIST's 8-channel
 *        stage layers), at any input width: a half block as in mcu_dwconv_mve_s8() (values and weights in int16
 *        lanes, VMULLB / VMULLT.S16 into int32 accumulators of the even and odd channels, two pixels per weight
 *        load).
 * @param[in]  ctx     Scratch of mcu_dwconv_mve_get_buffer_size_packed() bytes; not NULL.
 * @param[in]  filter  int8, "16-blocks" layout of mcu_dwconv_mve_s8() (mve_layout.dwconv_weights).
 * @param[in]  bias    Folded bias int32 [C] in channel order (input offset folded in), or NULL (all 0).
 * Other arguments as mcu_dwconv_a4w8_s8() (ch_mult must be 1). Same result as mcu_dwconv_a4w8_s8().
 */
mcu_status mcu_dwconv_mve_a4w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                  const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_dwconv_mve_a4w8_s8() on a packed 2-bit input. */
mcu_status mcu_dwconv_mve_a2w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                  const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_dwconv_mve_a4w8_s8() on an int8 input, writing a packed output_bits (4 or 2) output. */
mcu_status mcu_dwconv_mve_a8w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                  const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_add_table_packed_s8() with MVE: the runs unpacked (VLDRB + VSHL / VSLI + VSHR.S8) and packed (VSLI)
 *         with MVE, 4 values per step with both terms gathered (VLDRW gather) and the sum requantized on int32 lanes
 *         (mcu_add_mve_s8()'s output stage). Same result and arguments as mcu_add_table_packed_s8(); no scratch
 *         (ctx not read). */
mcu_status mcu_add_table_mve_packed_s8(const mcu_context *ctx, const mcu_add_table_params *add_params,
                                       int32_t input1_bits, int32_t input2_bits, int32_t output_bits,
                                       const mcu_dims *input1_dims, const uint8_t *input1,
                                       const mcu_dims *input2_dims, const uint8_t *input2,
                                       const mcu_dims *output_dims, uint8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* __ARM_FEATURE_MVE */

#endif /* MCUNN_PACKED_MVE_H */
