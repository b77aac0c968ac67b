/**
 * @file mcunn_packed.h
 * @brief Kernels that read packed 4- or 2-bit feature maps (and write packed or int8 ones) with int8
 *        per-channel weights: the per-patch stage of QuantMCU's low-bit chain. TFLite integer semantics,
 *        bit-exact with the numpy simulator (compiler/quant/simulate.py, the tensors' own bits).
 *
 * Names carry both widths: `mcu_<op>_a<in bits>w8_s8` (`a8` = an int8 input writing a packed output); the
 * output's bits are the `output_bits` argument (8, 4 or 2), so a4 in / a8 out is mcu_conv_a4w8_s8() with
 * output_bits 8.
 *
 * Packed layout (compiler/arith/bitwidth.py): channels innermost, k = 8 / b values per byte, element c of a
 * pixel is the two's complement b-bit field at bit (c % k) * b of byte c / k (low bits first), each pixel
 * padded to whole bytes: P(C, b) = ceil(C * b / 8) bytes per pixel, padding bits 0 on output. Pixels follow
 * each other as in int8, so a region of an NHWC map is whole-byte runs and start offsets (negative padding)
 * address pixels exactly as the int8 kernels do. For b = 8, P(C, 8) = C and the kernels read / write int8.
 *
 * Arithmetic: acc = bias + sum (x + input_offset) * w over the taps inside the input (taps outside are the
 * input zero point, contributing 0: TFLite's padding); y = requantize(acc) + output_offset, clamped to
 * [max(activation.min, -2^(b-1)), min(activation.max, 2^(b-1) - 1)] with b = output_bits, then packed.
 *
 * Portable kernels (mcunn_packed.c) run everywhere without scratch. The SIMD32 kernels (`mcu_*_dsp_a*w8_s8`,
 * mcunn_packed_dsp.c) unpack at the load stage straight into 16-bit lanes with the input offset added
 * (mask / shift / SXTAB16: no int8 copy of the map), keep the MAC loop on SMLAD with the weights in
 * compiler/ops/fast_layout.py's layouts, and declare their per-pixel scratch (`*_get_buffer_size_*`). Without
 * `__ARM_FEATURE_DSP` their intrinsics are portable C (mcunn_dsp_support.h), so they are tested on the host.
 * The MVE (Helium) kernels for Cortex-M55 (`mcu_*_mve_a*w8_s8`) are declared in mcunn_packed_mve.h.
 */
#ifndef MCUNN_PACKED_H
#define MCUNN_PACKED_H

#include "mcunn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes of one pixel of `channels` values at `bits` (8, 4 or 2): ceil(channels * bits / 8). */
int32_t mcu_packed_pixel_bytes(int32_t channels, int32_t bits);

/**
 * @brief 2-D convolution (any kernel, stride, dilation, padding, groups) reading a packed 4-bit input.
 * @param[in]  ctx          Not used (may be NULL): no scratch.
 * @param[in]  conv_params  As mcu_conv_s8(): input_offset = -zero point of the 4-bit input (in [-7, 8]),
 *                          output_offset the output zero point in the output_bits range, padding top / left
 *                          (negative: a start offset into a larger input buffer).
 * @param[in]  quant_params Per-output-channel multiplier / shift, C_out entries each.
 * @param[in]  output_bits  8, 4 or 2: the output's width (packed for 4 and 2).
 * @param[in]  input_dims   [N, H, W, C_in] in elements.
 * @param[in]  input        Packed 4-bit input, N * H * W * P(C_in, 4) bytes.
 * @param[in]  filter_dims  [C_out, KH, KW, C_in / groups].
 * @param[in]  filter       int8 weights [C_out, KH, KW, C_in / groups] (the model's layout).
 * @param[in]  bias_dims    [1, 1, 1, C_out] (not read).
 * @param[in]  bias         int32 [C_out], or NULL.
 * @param[in]  output_dims  [N, OH, OW, C_out] in elements.
 * @param[out] output       N * OH * OW * P(C_out, output_bits) bytes, every byte written.
 * @return MCU_OK, or MCU_ARG_ERROR for bits, groups or channels that do not fit.
 */
mcu_status mcu_conv_a4w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                            const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                            const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                            const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                            const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_a4w8_s8() with a packed 2-bit input (input_offset in [-1, 2]; P(C_in, 2) bytes per pixel). */
mcu_status mcu_conv_a2w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                            const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                            const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                            const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                            const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_a4w8_s8() with an int8 input (C_in bytes per pixel) and a packed output_bits (4 or 2) output. */
mcu_status mcu_conv_a8w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                            const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                            const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                            const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                            const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Depthwise 2-D convolution (any window, stride, dilation, padding, channel multiplier) reading a packed
 *        4-bit input; arguments as mcu_conv_a4w8_s8() with mcu_dwconv_s8()'s params, filter_dims [1, KH, KW,
 *        C_out] and int8 weights [KH, KW, C_out]. No scratch (ctx may be NULL).
 */
mcu_status mcu_dwconv_a4w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                              const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                              const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                              const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                              const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_dwconv_a4w8_s8() with a packed 2-bit input. */
mcu_status mcu_dwconv_a2w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                              const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                              const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                              const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                              const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_dwconv_a4w8_s8() with an int8 input and a packed output_bits (4 or 2) output. */
mcu_status mcu_dwconv_a8w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                              const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                              const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                              const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                              const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Scratch bytes of mcu_conv_dsp_a4w8_s8() / _a2w8 / _a8w8: two widened windows of K4(KH * KW * C_in)
 *        int16 (the two pixels of a block) and, when C_in is not a multiple of 4, K4 bytes to gather a window
 *        as int8 (mcu_conv_dsp_get_buffer_size_s8()'s size); a packed output is packed in registers or staged
 *        on the stack, 32 channels at a time.
 * @param[in] input_dims  [N, H, W, C_in] (C_in read).
 * @param[in] filter_dims [C_out, KH, KW, C_in].
 * @param[in] output_bits 8, 4 or 2 (not read).
 */
int32_t mcu_conv_dsp_get_buffer_size_packed(const mcu_dims *input_dims, const mcu_dims *filter_dims,
                                            int32_t output_bits);

/**
 * @brief General convolution (groups 1, any window) on a packed 4-bit input, SIMD32: each pixel pair's windows
 *        are unpacked straight into int16 lanes with the input offset added (per 4 channels one halfword,
 *        XOR / mask / shift and two SXTAB16), then 2 pixels x 2 channels per SMLAD block as mcu_conv_dsp_s8().
 *        Same result as mcu_conv_a4w8_s8().
 * @param[in]  ctx     Scratch of mcu_conv_dsp_get_buffer_size_packed() bytes, 4-byte aligned; not NULL.
 * @param[in]  filter  int8, "pairs, swapped" layout of mcu_conv_dsp_s8() (fast_layout.conv_weights).
 * @param[in]  bias    The model's int32 bias [C_out], or NULL (nothing folded).
 * Other arguments as mcu_conv_a4w8_s8() (groups must be 1).
 */
mcu_status mcu_conv_dsp_a4w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_dsp_a4w8_s8() on a packed 2-bit input (4 channels per input byte). */
mcu_status mcu_conv_dsp_a2w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_dsp_a4w8_s8() on an int8 input, writing a packed output_bits (4 or 2) output. */
mcu_status mcu_conv_dsp_a8w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                const mcu_dims *output_dims, uint8_t *output);

/** Window size limit of mcu_conv_lean_dsp_a*w8_s8() (two arrays of this many tap pointers on the stack). */
#define MCU_CONV_LEAN_DSP_MAX_TAPS 32
/** Pixel size limit of mcu_conv_lean_dsp_a*w8_s8(), P(C_in, input bits) bytes (a zero-point pixel on the stack). */
#define MCU_CONV_LEAN_DSP_MAX_PIXEL_BYTES 128

/**
 * @brief Scratch-free convolution (groups 1) on a packed 4-bit input, SIMD32, for layers whose im2col scratch
 *        does not fit: per output pixel, 4 output channels at a time over its taps, each 4-block of the window
 *        unpacked at the load stage straight into SMLAD's two lane words as offset binary (x + 8: LDRH, ORR,
 *        EOR, LSR, two AND), one SMLAD pair per channel; the input offset is in the bias (folded at compile
 *        time), taps outside the input read a pixel of zero points on the stack. No caller scratch; about 1.8
 *        instructions per MAC (the block is unpacked again for every 4 output channels). Same result as
 *        mcu_conv_a4w8_s8().
 * @param[in]  ctx          Not read (may be NULL).
 * @param[in]  input_dims   [N, H, W, C_in], C_in a multiple of 4 with P(C_in, bits) <=
 *                          ::MCU_CONV_LEAN_DSP_MAX_PIXEL_BYTES.
 * @param[in]  filter_dims  [C_out, KH, KW, C_in], KH * KW <= ::MCU_CONV_LEAN_DSP_MAX_TAPS.
 * @param[in]  filter       int8, "quads, swapped" (compiler/ops/packed_kernels.py, conv_lean_dsp_constants): per 4
 *                          output channels and 4-block of the window ((ky, kx, c) order), each channel's 4 weights
 *                          with the middle two exchanged; the last C_out % 4 channels each as its whole row.
 * @param[in]  bias         int32 [C_out]: the model's bias + (input_offset - 8) * sum of the channel's weights, or
 *                          NULL (no bias and nothing folded).
 * Other arguments as mcu_conv_a4w8_s8() (groups must be 1).
 * @return MCU_ARG_ERROR (nothing written) when a limit above is not met.
 */
mcu_status mcu_conv_lean_dsp_a4w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                     const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                     const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                     const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                     const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_lean_dsp_a4w8_s8() on a packed 2-bit input: lanes x + 2 (LDRB per 4 channels), the bias folded
 *         with (input_offset - 2). */
mcu_status mcu_conv_lean_dsp_a2w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                     const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                     const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                     const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                     const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_conv_lean_dsp_a4w8_s8() on an int8 input writing a packed output_bits (4 or 2) output: lanes
 *         SXTB16's (x0, x2), (x1, x3), so the weights are "quads" in natural order; the bias folded with
 *         input_offset. */
mcu_status mcu_conv_lean_dsp_a8w8_s8(const mcu_context *ctx, const mcu_conv_params *conv_params,
                                     const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                     const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                     const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                     const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Scratch bytes of mcu_dwconv_dsp_a4w8_s8() / _a2w8 / _a8w8: one pixel of input zero points,
 *        K4(P(C, input_bits)) bytes (what taps outside the input read).
 */
int32_t mcu_dwconv_dsp_get_buffer_size_packed(const mcu_dims *input_dims, int32_t input_bits);

/**
 * @brief Depthwise convolution, channel multiplier 1, up to 64 taps, on a packed 4-bit input, SIMD32: per 4
 *        channels and pair of taps, both taps' halfwords in one word, unpacked once (EOR to offset binary, one AND
 *        of the shifted word per channel) into the (tap a, tap b) lane pairs, one SMLAD per channel and tap pair; the
 *        input offset is in the bias (folded at compile time). Taps outside the input read a pixel of zero points
 *        in the scratch. A sub-byte output clamped to its whole range is packed in registers (SSAT, BFI). Same
 *        result as mcu_dwconv_a4w8_s8().
 * @param[in]  ctx     Scratch of mcu_dwconv_dsp_get_buffer_size_packed() bytes; not NULL.
 * @param[in]  filter  int8, "tap pairs" layout of mcu_dwconv_dsp_s8() (fast_layout.dwconv_weights).
 * @param[in]  bias    The model's int32 bias [C], or NULL (nothing folded).
 * Other arguments as mcu_dwconv_a4w8_s8() (ch_mult must be 1).
 */
mcu_status mcu_dwconv_dsp_a4w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                  const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_dwconv_dsp_a4w8_s8() on a packed 2-bit input. */
mcu_status mcu_dwconv_dsp_a2w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                  const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_dwconv_dsp_a4w8_s8() on an int8 input, writing a packed output_bits (4 or 2) output. */
mcu_status mcu_dwconv_dsp_a8w8_s8(const mcu_context *ctx, const mcu_dw_conv_params *dw_params,
                                  const mcu_per_channel_quant_params *quant_params, int32_t output_bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const int8_t *filter, const mcu_dims *bias_dims, const int32_t *bias,
                                  const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Max pooling (TFLite: taps outside the input ignored) over a packed `bits` (8, 4 or 2) map; the output keeps
 *        the input's params and bits. Arguments as mcu_max_pool_s8(), maps P(C, bits) bytes per pixel; the clamp is
 *        intersected with the bits' range. No scratch.
 */
mcu_status mcu_max_pool_packed_s8(const mcu_context *ctx, const mcu_pool_params *pool_params, int32_t bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const mcu_dims *output_dims, uint8_t *output);

/** @brief Average pooling over a packed map (mean of the taps inside, rounded half away from zero, as
 *         mcu_avg_pool_s8()); MCU_ARG_ERROR for a window with no tap inside the input. */
mcu_status mcu_avg_pool_packed_s8(const mcu_context *ctx, const mcu_pool_params *pool_params, int32_t bits,
                                  const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *filter_dims,
                                  const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Elementwise add (TFLite semantics, as mcu_add_s8()) of two maps of equal dims at input1_bits and
 *        input2_bits, writing output_bits (each 8, 4 or 2; no broadcasting). In place is allowed when the output
 *        and that input have the same bits (each byte is stored after its values are read).
 */
mcu_status mcu_add_packed_s8(const mcu_context *ctx, const mcu_add_params *add_params, int32_t input1_bits,
                             int32_t input2_bits, int32_t output_bits, const mcu_dims *input1_dims,
                             const uint8_t *input1, const mcu_dims *input2_dims, const uint8_t *input2,
                             const mcu_dims *output_dims, uint8_t *output);

/** Compile-time form of a packed add: TFLite's Add (as mcu_add_s8()) with each input's rescaling already done,
 *  one int32 term per input value (an operand at b bits takes 2^b values). */
typedef struct
{
    const int32_t *input1_terms; /**< 2^input1_bits entries: entry x + 2^(input1_bits - 1) = requantize((x +
                                      input1_offset) * 2^left_shift, input1_mult, input1_shift). */
    const int32_t *input2_terms; /**< The same for input 2 at input2_bits. */
    int32_t output_offset;       /**< The output zero point. */
    int32_t output_mult;         /**< Multiplier of the sum of the two terms. */
    int32_t output_shift;        /**< Its shift. */
    mcu_activation activation;   /**< Fused clamp (intersected with output_bits' range). */
} mcu_add_table_params;

/**
 * @brief The packed add of mcu_add_packed_s8() from per-input tables: y = requantize(input1_terms[x1] +
 *        input2_terms[x2], output_mult, output_shift) + output_offset, clamped; so no requantization of the
 *        inputs on the device (bit-exact with mcu_add_packed_s8() given the terms it would compute). Runs of up
 *        to 128 values unpacked into int8 on the stack (whole pixels when no operand's pixel has padding bits,
 *        else one pixel at a time), packed at the store; no scratch (ctx not read). In place is allowed as for
 *        mcu_add_packed_s8(). MCU_ARG_ERROR for bits other than 8, 4, 2, unequal dims or a NULL table.
 */
mcu_status mcu_add_table_packed_s8(const mcu_context *ctx, const mcu_add_table_params *add_params,
                                   int32_t input1_bits, int32_t input2_bits, int32_t output_bits,
                                   const mcu_dims *input1_dims, const uint8_t *input1, const mcu_dims *input2_dims,
                                   const uint8_t *input2, const mcu_dims *output_dims, uint8_t *output);

/** @brief mcu_add_table_packed_s8() with the output's requantization as one SMLAL (mcu_dsp_requantize()). */
mcu_status mcu_add_table_dsp_packed_s8(const mcu_context *ctx, const mcu_add_table_params *add_params,
                                       int32_t input1_bits, int32_t input2_bits, int32_t output_bits,
                                       const mcu_dims *input1_dims, const uint8_t *input1,
                                       const mcu_dims *input2_dims, const uint8_t *input2,
                                       const mcu_dims *output_dims, uint8_t *output);

/**
 * @brief Constant padding of a packed `bits` map along N, H and W (pre_pad.c must be 0 and the channels equal):
 *        every output pixel not covered by the input holds pad_value (the input zero point) in each channel,
 *        padding bits 0.
 */
mcu_status mcu_pad_packed_s8(const mcu_context *ctx, const mcu_pad_params *pad_params, int32_t bits,
                             const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *output_dims,
                             uint8_t *output);

/**
 * @brief Table lookup from a packed input_bits map to an output_bits map (equal dims): output element =
 *        table[x - qmin(input_bits)], a table of 2^input_bits entries already in the output_bits range.
 */
mcu_status mcu_lut_packed_s8(const mcu_context *ctx, const int8_t *table, int32_t input_bits, int32_t output_bits,
                             const mcu_dims *input_dims, const uint8_t *input, const mcu_dims *output_dims,
                             uint8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* MCUNN_PACKED_H */
