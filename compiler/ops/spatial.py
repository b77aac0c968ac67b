"""Shared window arithmetic for convolution and pooling in NHWC: output sizes and im2col."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A 2-D sliding window: kernel, stride, dilation and explicit padding (top, left, bottom, right)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)

    def problem(self, h: int, w: int, pads_within_kernel: bool = False) -> str | None:
        """Why this window cannot slide over an h x w map (None when it can): kernel, stride and dilation
        at least 1, pads non-negative, at least one output position; with ``pads_within_kernel`` (pooling)
        pads smaller than the kernel extent, else a window lies wholly in the padding (no taps to average)."""
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            return f"kernel {list(self.kernel)}, stride {list(self.stride)}, dilation {list(self.dilation)} must be at least 1"
        if min(self.pads) < 0:
            return f"pads {list(self.pads)} must not be negative"
        for a in range(2 if pads_within_kernel else 0):
            eff = (self.kernel[a] - 1) * self.dilation[a] + 1
            if self.pads[a] >= eff or self.pads[a + 2] >= eff:
                return f"pads {list(self.pads)} must be smaller than the kernel extent {eff}"
        oh, ow = self.out_size(h, w)
        if oh < 1 or ow < 1:
            return f"a {list(self.kernel)} window (stride {list(self.stride)}, pads {list(self.pads)}) does not fit a {h}x{w} input"
        return None

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        kh = (self.kernel[0] - 1) * self.dilation[0] + 1
        kw = (self.kernel[1] - 1) * self.dilation[1] + 1
        oh = (h + self.pads[0] + self.pads[2] - kh) // self.stride[0] + 1
        ow = (w + self.pads[1] + self.pads[3] - kw) // self.stride[1] + 1
        return oh, ow


def im2col(x: np.ndarray, win: Window, oh: int, ow: int, pad_value) -> np.ndarray:
    """[N,H,W,C] -> [N,OH,OW,KH,KW,C]; positions outside the input take ``pad_value``."""
    n, h, w, c = x.shape
    kh, kw = win.kernel
    sh, sw = win.stride
    dh, dw = win.dilation
    pt, pl = win.pads[0], win.pads[1]
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    pb = max(0, need_h - h - pt)
    pr = max(0, need_w - w - pl)
    xp = np.full((n, h + pt + pb, w + pl + pr, c), pad_value, dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + w, :] = x
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw, :]
    return cols


def as_nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """View any activation shape as [N,H,W,C] (channels last; leading dims folded into W)."""
    if len(shape) == 4:
        return tuple(shape)  # type: ignore[return-value]
    if len(shape) == 0:
        return (1, 1, 1, 1)
    inner = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    return (1, 1, inner, int(shape[-1]))
