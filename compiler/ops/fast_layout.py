"""Compile-time data of the SIMD32 (DSP) kernels of ``runtime_c/include/mcunn_dsp.h``.

Pure numpy, no IR: each function takes a layer's int8 weights (and bias) as the model stores them and
returns the array the kernel reads, in the order it loads it, so the kernel does no re-ordering and no
zero-point arithmetic at run time. One function per layout the header documents, plus the bias fold and the
scratch sizes (mirrors of the C ``*_get_buffer_size_s8`` formulas). Which kernel a layer takes is decided
by its op module; this module only knows the layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: window size limit of mcu_dwconv_dsp_s8 (MCU_DWCONV_DSP_MAX_TAPS in mcunn_dsp.h)
DWCONV_MAX_TAPS = 64


def k4(n: int) -> int:
    """``n`` rounded up to a multiple of 4 (the kernels' block of 4 int8 in one word)."""
    return (n + 3) // 4 * 4


def _rows_padded(rows: np.ndarray, swap: bool) -> np.ndarray:
    """[C, K] int8 -> [C, K4(K)]: zero-padded; with ``swap``, elements 1 and 2 of each 4-block exchanged
    (so SXTB16 of a weight word gives the pairs (w0, w1), (w2, w3) of an input widened in natural order)."""
    c, k = rows.shape
    out = np.zeros((c, k4(k)), np.int8)
    out[:, :k] = rows
    if swap:
        out = out.reshape(c, -1, 4)[:, :, [0, 2, 1, 3]].reshape(c, -1)
    return out


def interleave_channels(rows: np.ndarray, group: int, swap: bool) -> np.ndarray:
    """Weights [C_out, K] int8 in the blocked order of a kernel computing ``group`` output channels at once.

    Parameters
    ----------
    rows : np.ndarray
        int8 [C_out, K], one row per output channel.
    group : int
        Output channels per block (2 for the convolutions, 8 or 4 for fully connected).
    swap : bool
        Swap elements 1 and 2 of each 4-block (kernels that widen the input to int16 in natural order).

    Returns
    -------
    np.ndarray
        int8, flat, C_out * K4(K) values: for each full group of channels and each 4-block b, block b of each
        channel of the group in order; then each remaining channel (C_out % group) as its whole row. Rows are
        zero-padded to K4(K).
    """
    rows = np.asarray(rows)
    if rows.dtype != np.int8 or rows.ndim != 2:
        raise ValueError(f"weights must be int8 [C_out, K], got {rows.dtype} {list(rows.shape)}")
    padded = _rows_padded(rows, swap)
    c, kp = padded.shape
    full = c // group * group
    blocked = padded[:full].reshape(c // group, group, kp // 4, 4).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([blocked, padded[full:].reshape(-1)])


def conv_1x1_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_conv_1x1_dsp_s8`` ("pairs", natural order) from OHWI [C_out, 1, 1, C_in], C_in % 4 == 0."""
    cout, kh, kw, cin = weights.shape
    if (kh, kw) != (1, 1) or cin % 4:
        raise ValueError(f"mcu_conv_1x1_dsp_s8 needs a 1x1 kernel and C_in % 4 == 0, got {list(weights.shape)}")
    return interleave_channels(weights.reshape(cout, cin), 2, swap=False)


def conv_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_conv_dsp_s8`` ("pairs, swapped", rows padded to K4) from OHWI [C_out, KH, KW, C_in]."""
    return interleave_channels(weights.reshape(weights.shape[0], -1), 2, swap=True)


def fully_connected_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_fully_connected_dsp_s8`` ("octets", natural order, rows padded to K4) from [C_out, K]: the
    first C_out // 8 * 8 channels blocked by 8 (:func:`interleave_channels`), the rest blocked by 4 (one quad when
    at least 4 remain, then plain rows)."""
    weights = np.asarray(weights)
    c8 = weights.shape[0] // 8 * 8
    return np.concatenate([interleave_channels(weights[:c8], 8, swap=False),
                           interleave_channels(weights[c8:], 4, swap=False)])


def dwconv_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_dwconv_dsp_s8`` ("tap pairs") from [KH, KW, C] int8 (channel multiplier 1).

    Returns
    -------
    np.ndarray
        int8, flat, KH * KW * C values (no padding): for each group of 4 channels c..c+3, for each pair of taps
        (t, t+1) in row-major order {w[t,c], w[t,c+1], w[t+1,c], w[t+1,c+1], w[t,c+2], w[t,c+3], w[t+1,c+2],
        w[t+1,c+3]}, for an odd tap count the last tap as {w[t,c], .., w[t,c+3]}; then the last C % 4 channels,
        each with its taps in order.
    """
    weights = np.asarray(weights)
    if weights.dtype != np.int8 or weights.ndim != 3:
        raise ValueError(f"depthwise weights must be int8 [KH, KW, C], got {weights.dtype} {list(weights.shape)}")
    kh, kw, c = weights.shape
    taps = kh * kw
    if taps > DWCONV_MAX_TAPS:
        raise ValueError(f"mcu_dwconv_dsp_s8 takes at most {DWCONV_MAX_TAPS} taps, got {kh}x{kw}")
    w = weights.reshape(taps, c)
    c4 = c // 4 * 4
    parts = []
    for g in range(0, c4, 4):
        blk = w[:, g : g + 4]  # [T, 4]
        for t in range(0, taps - 1, 2):
            pair = blk[t : t + 2]  # [2 taps, 4 channels]
            # word (c, c+1): tap t of c, c+1 then tap t+1 of c, c+1; likewise (c+2, c+3)
            parts.append(pair[:, 0:2].reshape(-1))
            parts.append(pair[:, 2:4].reshape(-1))
        if taps % 2:
            parts.append(blk[taps - 1])
    parts.append(w[:, c4:].T.reshape(-1))
    return np.concatenate(parts).astype(np.int8)


def fold_input_offset(bias: np.ndarray | None, weights: np.ndarray, input_offset: int) -> np.ndarray:
    """The bias of a kernel that multiplies the raw input: ``bias + input_offset * sum(w)`` per output channel.

    Parameters
    ----------
    bias : np.ndarray or None
        int32 [C_out], or None (no bias).
    weights : np.ndarray
        int8 [C_out, ...], the layer's weights (output channel first).
    input_offset : int
        The negated input zero point, in [-127, 128].

    Returns
    -------
    np.ndarray
        int32 [C_out], wrapped to 32 bits: the kernels add in int32 with the hardware's wrap-around, so the
        result is exact whenever the reference accumulator itself fits int32.
    """
    w = np.asarray(weights).astype(np.int64).reshape(weights.shape[0], -1)
    b = np.zeros(w.shape[0], np.int64) if bias is None else np.asarray(bias).astype(np.int64).reshape(-1)
    folded = b + int(input_offset) * w.sum(axis=1)
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def dwconv_bias(bias: np.ndarray | None, weights: np.ndarray, input_offset: int) -> np.ndarray:
    """The bias of ``mcu_dwconv_dsp_s8``: the input offset folded in per channel over its KH * KW taps.

    Parameters
    ----------
    bias : np.ndarray or None
        int32 [C], or None (no bias).
    weights : np.ndarray
        int8 [KH, KW, C], the depthwise weights (channel multiplier 1).
    input_offset : int
        The negated input zero point, in [-127, 128].

    Returns
    -------
    np.ndarray
        int32 [C], wrapped to 32 bits (see :func:`fold_input_offset`).
    """
    w = np.asarray(weights)
    return fold_input_offset(bias, np.moveaxis(w.reshape(-1, w.shape[-1]), -1, 0), input_offset)


def conv_scratch_bytes(kh: int, kw: int, cin: int) -> int:
    """``mcu_conv_dsp_get_buffer_size_s8``: two windows of K4(KH * KW * C_in) int16, plus K4 bytes to gather a
    window when C_in is not a multiple of 4."""
    k = k4(kh * kw * cin)
    return 4 * k + (k if cin % 4 else 0)


def dwconv_scratch_bytes(channels: int) -> int:
    """``mcu_dwconv_dsp_get_buffer_size_s8``: a row of zero points, K4(C) bytes."""
    return k4(channels)


@dataclass(frozen=True)
class FastConstants:
    """What one layer's DSP kernel call needs beyond the portable call's arguments: its weights in the
    kernel's layout, the bias it takes (folded or the model's) and its scratch bytes (``ctx.size``)."""

    kernel: str               # the C function, e.g. "mcu_conv_dsp_s8"
    weights: np.ndarray       # int8, flat, in the kernel's layout
    bias: np.ndarray | None   # int32 [C_out]; None when the model has no bias and nothing is folded
    scratch_bytes: int


def conv_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> FastConstants:
    """``mcu_conv_dsp_s8`` (any window, groups 1): OHWI weights [C_out, KH, KW, C_in], the model's bias."""
    _, kh, kw, cin = weights.shape
    return FastConstants("mcu_conv_dsp_s8", conv_weights(weights), bias, conv_scratch_bytes(kh, kw, cin))


def conv_1x1_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> FastConstants:
    """``mcu_conv_1x1_dsp_s8`` (1x1, C_in % 4 == 0, every tap inside the input, no scratch): folded bias."""
    return FastConstants("mcu_conv_1x1_dsp_s8", conv_1x1_weights(weights),
                         fold_input_offset(bias, weights, input_offset), 0)


def dwconv_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> FastConstants:
    """``mcu_dwconv_dsp_s8`` (channel multiplier 1): weights [KH, KW, C], folded bias."""
    return FastConstants("mcu_dwconv_dsp_s8", dwconv_weights(weights), dwconv_bias(bias, weights, input_offset),
                         dwconv_scratch_bytes(weights.shape[-1]))


def fully_connected_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> FastConstants:
    """``mcu_fully_connected_dsp_s8`` (filter offset 0, no scratch): weights [C_out, K], folded bias."""
    return FastConstants("mcu_fully_connected_dsp_s8", fully_connected_weights(weights),
                         fold_input_offset(bias, weights, input_offset), 0)


def conv_1x1_problem(kernel: tuple[int, int], cin: int, groups: int, stride: tuple[int, int],
                     padding: tuple[int, int], in_hw: tuple[int, int], out_hw: tuple[int, int]) -> str | None:
    """Why ``mcu_conv_1x1_dsp_s8`` cannot run this layer (None: it can). ``padding`` as the kernels take it
    (top, left; negative = start offset), ``in_hw`` the dims of the buffer the kernel reads."""
    if tuple(kernel) != (1, 1):
        return f"kernel {kernel[0]}x{kernel[1]} is not 1x1"
    if groups != 1:
        return f"{groups} groups"
    if cin % 4:
        return f"{cin} input channels are not a multiple of 4"
    oh, ow = out_hw
    if oh and ow:
        y0, x0 = -padding[0], -padding[1]
        if y0 < 0 or x0 < 0 or (oh - 1) * stride[0] + y0 >= in_hw[0] or (ow - 1) * stride[1] + x0 >= in_hw[1]:
            return "a tap falls outside the input (the folded bias counts every tap)"
    return None


def conv_problem(groups: int) -> str | None:
    """Why ``mcu_conv_dsp_s8`` cannot run this layer (None: it can: any window, stride, dilation, padding)."""
    return None if groups == 1 else f"{groups} groups (grouped convolution runs the portable kernel)"


def dwconv_problem(kernel: tuple[int, int], ch_mult: int) -> str | None:
    """Why ``mcu_dwconv_dsp_s8`` cannot run this layer (None: it can)."""
    if ch_mult != 1:
        return f"channel multiplier {ch_mult}"
    if kernel[0] * kernel[1] > DWCONV_MAX_TAPS:
        return f"{kernel[0]}x{kernel[1]} window has more than {DWCONV_MAX_TAPS} taps"
    return None
