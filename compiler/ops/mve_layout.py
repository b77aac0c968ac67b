"""Compile-time data of the MVE (Helium, Cortex-M55) kernels of ``runtime_c/include/mcunn_mve.h``.

Pure numpy, no IR: each function takes a layer's int8 weights (and bias) as the model stores them and
returns the array the kernel reads, in the order it loads it. The input zero-point term
``input_offset * sum(w)`` is folded into every MVE kernel's bias here, once, as TFLite Micro's Prepare
precomputes the kernel sums for CMSIS-NN on MVE (CMSIS-NN's convolutions recompute them on every call).
Weights keep their byte count; only the depthwise bias is padded (to a multiple of 16 channels). Which
kernel a layer takes is decided by its op module; the ``*_problem`` functions say why one cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcucompile.ops.fast_layout import fold_input_offset

#: window size limit of mcu_dwconv_mve_s8 (MCU_DWCONV_MVE_MAX_TAPS in mcunn_mve.h)
DWCONV_MAX_TAPS = 64


def k16(n: int) -> int:
    """``n`` rounded up to a multiple of 16 (one MVE vector of int8)."""
    return (n + 15) // 16 * 16


def quads(rows: np.ndarray) -> np.ndarray:
    """Weights [C_out, K] int8 in the "quads" order of the MVE matrix core (4 output channels per block).

    Parameters
    ----------
    rows : np.ndarray
        int8 [C_out, K], one row per output channel (conv: OHWI flattened; FC: [out, depth]).

    Returns
    -------
    np.ndarray
        int8, flat, C_out * K values (no padding): for each full group of 4 channels, for each full 16-block b of
        K, the 16 weights of block b of each of the 4 channels in turn; then the last K % 16 weights of each of
        the 4 channels in turn; then each remaining channel (C_out % 4) as its plain row.
    """
    rows = np.asarray(rows)
    if rows.dtype != np.int8 or rows.ndim != 2:
        raise ValueError(f"weights must be int8 [C_out, K], got {rows.dtype} {list(rows.shape)}")
    c, k = rows.shape
    full, nb = c // 4 * 4, k // 16
    parts = []
    for g in range(0, full, 4):
        grp = rows[g:g + 4]
        parts.append(grp[:, :16 * nb].reshape(4, nb, 16).transpose(1, 0, 2).reshape(-1))
        parts.append(grp[:, 16 * nb:].reshape(-1))
    parts.append(rows[full:].reshape(-1))
    return np.concatenate(parts).astype(np.int8)


def conv_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_conv_mve_s8`` / ``mcu_conv_1x1_mve_s8`` ("quads") from OHWI [C_out, KH, KW, C_in]."""
    weights = np.asarray(weights)
    if weights.ndim != 4:
        raise ValueError(f"conv weights must be OHWI [C_out, KH, KW, C_in], got {list(weights.shape)}")
    return quads(weights.reshape(weights.shape[0], -1))


def fully_connected_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_fully_connected_mve_s8`` ("quads") from [C_out, K]."""
    return quads(weights)


def dwconv_weights(weights: np.ndarray) -> np.ndarray:
    """Weights of ``mcu_dwconv_mve_s8`` ("16-blocks") from [KH, KW, C] int8 (channel multiplier 1).

    Returns
    -------
    np.ndarray
        int8, flat, KH * KW * C values: for each block of 16 channels c..c+r-1 (r = min(16, C - c)), for each tap
        t in row-major order, w[t, c..c+r-1].
    """
    weights = np.asarray(weights)
    if weights.dtype != np.int8 or weights.ndim != 3:
        raise ValueError(f"depthwise weights must be int8 [KH, KW, C], got {weights.dtype} {list(weights.shape)}")
    kh, kw, c = weights.shape
    if kh * kw > DWCONV_MAX_TAPS:
        raise ValueError(f"mcu_dwconv_mve_s8 takes at most {DWCONV_MAX_TAPS} taps, got {kh}x{kw}")
    w = weights.reshape(kh * kw, c)
    return np.concatenate([w[:, b:b + 16].reshape(-1) for b in range(0, c, 16)]).astype(np.int8)


def dwconv_bias(bias: np.ndarray | None, weights: np.ndarray, input_offset: int) -> np.ndarray:
    """Folded bias of ``mcu_dwconv_mve_s8`` in its "even/odd" order, K16(C) entries.

    Parameters
    ----------
    bias : np.ndarray or None
        int32 [C], or None.
    weights : np.ndarray
        int8 [KH, KW, C].
    input_offset : int
        The negated input zero point.

    Returns
    -------
    np.ndarray
        int32 [K16(C)]: per block of 16 channels, the folded biases of channels c, c+2, c+4, c+6, then c+1, c+3,
        c+5, c+7, then the same for c+8..c+15 (the lanes VMULLB / VMULLT accumulate); 0 past C.
    """
    w = np.asarray(weights)
    c = w.shape[-1]
    folded = fold_input_offset(bias, np.moveaxis(w.reshape(-1, c), -1, 0), input_offset)
    padded = np.zeros(k16(c), np.int32)
    padded[:c] = folded
    return padded.reshape(-1, 2, 4, 2).transpose(0, 1, 3, 2).reshape(-1).astype(np.int32)


def conv_scratch_bytes(kh: int, kw: int, cin: int) -> int:
    """``mcu_conv_mve_get_buffer_size_s8``: two int8 windows, 2 * KH * KW * C_in bytes."""
    return 2 * kh * kw * cin


def dwconv_scratch_bytes(channels: int) -> int:
    """``mcu_dwconv_mve_get_buffer_size_s8``: a row of zero points, C bytes."""
    return channels


@dataclass(frozen=True)
class MveConstants:
    """What one layer's MVE kernel call needs beyond the portable call's arguments: its weights in the kernel's
    layout, its folded bias and its scratch bytes (``ctx.size``)."""

    kernel: str              # the C function, e.g. "mcu_conv_mve_s8"
    weights: np.ndarray      # int8, flat, in the kernel's layout
    bias: np.ndarray         # int32, folded (always given: the input offset lives in it)
    scratch_bytes: int


def conv_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> MveConstants:
    """``mcu_conv_mve_s8`` (any window, groups 1): OHWI weights [C_out, KH, KW, C_in]."""
    _, kh, kw, cin = weights.shape
    return MveConstants("mcu_conv_mve_s8", conv_weights(weights), fold_input_offset(bias, weights, input_offset),
                        conv_scratch_bytes(kh, kw, cin))


def conv_1x1_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> MveConstants:
    """``mcu_conv_1x1_mve_s8`` (1x1, every tap inside the input, no scratch)."""
    if tuple(weights.shape[1:3]) != (1, 1):
        raise ValueError(f"mcu_conv_1x1_mve_s8 needs a 1x1 kernel, got {list(weights.shape)}")
    return MveConstants("mcu_conv_1x1_mve_s8", conv_weights(weights),
                        fold_input_offset(bias, weights, input_offset), 0)


def dwconv_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> MveConstants:
    """``mcu_dwconv_mve_s8`` (channel multiplier 1): weights [KH, KW, C]."""
    return MveConstants("mcu_dwconv_mve_s8", dwconv_weights(weights), dwconv_bias(bias, weights, input_offset),
                        dwconv_scratch_bytes(weights.shape[-1]))


def fully_connected_constants(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> MveConstants:
    """``mcu_fully_connected_mve_s8`` (filter offset 0): weights [C_out, K]."""
    return MveConstants("mcu_fully_connected_mve_s8", fully_connected_weights(weights),
                        fold_input_offset(bias, weights, input_offset), 0)


def conv_1x1_problem(kernel: tuple[int, int], groups: int, stride: tuple[int, int], padding: tuple[int, int],
                     in_hw: tuple[int, int], out_hw: tuple[int, int]) -> str | None:
    """Why ``mcu_conv_1x1_mve_s8`` cannot run this layer (None: it can; any C_in). ``padding`` as the kernels
    take it (top, left; negative = start offset), ``in_hw`` the dims of the buffer the kernel reads. A layer it
    refuses for a tap outside the input runs ``mcu_conv_mve_s8``."""
    if tuple(kernel) != (1, 1):
        return f"kernel {kernel[0]}x{kernel[1]} is not 1x1"
    if groups != 1:
        return f"{groups} groups"
    oh, ow = out_hw
    if oh and ow:
        y0, x0 = -padding[0], -padding[1]
        if y0 < 0 or x0 < 0 or (oh - 1) * stride[0] + y0 >= in_hw[0] or (ow - 1) * stride[1] + x0 >= in_hw[1]:
            return "a tap falls outside the input (no im2col to hold the zero point)"
    return None


def conv_problem(groups: int) -> str | None:
    """Why ``mcu_conv_mve_s8`` cannot run this layer (None: it can: any window, stride, dilation, padding)."""
    return None if groups == 1 else f"{groups} groups (grouped convolution runs the portable kernel)"


def dwconv_problem(kernel: tuple[int, int], ch_mult: int) -> str | None:
    """Why ``mcu_dwconv_mve_s8`` cannot run this layer (None: it can)."""
    if ch_mult != 1:
        return f"channel multiplier {ch_mult}"
    if kernel[0] * kernel[1] > DWCONV_MAX_TAPS:
        return f"{kernel[0]}x{kernel[1]} window has more than {DWCONV_MAX_TAPS} taps"
    return None


def shifts_right_only(shift: np.ndarray, rounding: str) -> bool:
    """``mcu_mve_shifts_right_only()`` at compile time: every shift <= 0 (< 0 with single rounding, where a shift of
    0 needs the 64-bit product), so the vector output stage needs no left shift."""
    limit = -1 if rounding == "single" else 0
    return bool(np.all(np.asarray(shift) <= limit))


def dwconv_3x3_problem(kernel: tuple[int, int], ch_mult: int, shift: np.ndarray, rounding: str) -> str | None:
    """Why ``mcu_dwconv_3x3_mve_s8`` (two pixels per weight load) cannot run this layer (None: it can); such a
    layer runs ``mcu_dwconv_mve_s8``. ``shift``: the per-channel shifts, ``rounding``: the graph's."""
    general = dwconv_problem(kernel, ch_mult)
    if general is not None:
        return general
    if tuple(kernel) != (3, 3):
        return f"{kernel[0]}x{kernel[1]} window (not 3x3)"
    if not shifts_right_only(shift, rounding):
        return "a channel's shift is a left shift" if rounding != "single" else "a channel's shift is >= 0 (single rounding)"
    return None


def fully_connected_problem(filter_offset: int) -> str | None:
    """Why ``mcu_fully_connected_mve_s8`` cannot run this layer (None: it can)."""
    return None if filter_offset == 0 else f"filter offset {filter_offset} (asymmetric weights)"
