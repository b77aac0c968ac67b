"""Shared window arithmetic for convolution and pooling in NHWC: output sizes and im2col."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..ir import LocalWindow, Region


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


class WindowPatchRule:
    """The patch rule of ops that slide a :class:`Window` over H, W (convolution, pooling); mix in before
    OpDef. An output region needs the input rows and columns its windows cover; inside the map the kernel
    reads that larger buffer from a start offset (negative padding) instead of a copy."""

    def patch_problem(self, node, graph) -> str | None:
        x, out = graph.tensors[node.inputs[0]].shape, graph.tensors[node.outputs[0]].shape
        k = node.attrs.window.kernel
        if k[0] >= x[1] and k[1] >= x[2] and out[1] == 1 and out[2] == 1:
            return "its window covers the whole map (a global pooling): it needs the whole input"
        return None

    def patch_input_region(self, node, graph, out: Region, tensor: str) -> Region:
        t = graph.tensors[tensor]
        win = node.attrs.window
        (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.stride, win.dilation
        return Region(out.top * sh - win.pads[0], out.left * sw - win.pads[1],
                      (out.bottom - 1) * sh - win.pads[0] + (kh - 1) * dh + 1,
                      (out.right - 1) * sw - win.pads[1] + (kw - 1) * dw + 1).clipped(t.shape[1], t.shape[2])

    def patch_local_pads(self, node, rin: Region, rout: Region) -> tuple[int, int]:
        win = node.attrs.window
        return (rin.top - (rout.top * win.stride[0] - win.pads[0]), rin.left - (rout.left * win.stride[1] - win.pads[1]))

    def patch_local_node(self, node, lw: LocalWindow, x: np.ndarray):
        """The window with the patch's own padding; a negative (start offset) pad crops the buffer, as the C
        kernel's start offset does, and the bottom/right pads follow from the output region."""
        win = node.attrs.window
        pt, pl = lw.pad_top, lw.pad_left
        if pt < 0:
            x, pt = x[:, -pt:], 0
        if pl < 0:
            x, pl = x[:, :, -pl:], 0
        eff = [(win.kernel[a] - 1) * win.dilation[a] + 1 for a in range(2)]
        pb = (lw.out_h - 1) * win.stride[0] + eff[0] - x.shape[1] - pt
        pr = (lw.out_w - 1) * win.stride[1] + eff[1] - x.shape[2] - pl
        if pb < 0:
            x, pb = x[:, : x.shape[1] + pb], 0
        if pr < 0:
            x, pr = x[:, :, : x.shape[2] + pr], 0
        local = Window(win.kernel, win.stride, win.dilation, (pt, pl, pb, pr))
        return node.replace(attrs=dataclasses.replace(node.attrs, window=local)), x

    def kernel_dims(self, node, graph, call, patch_entry: str | None = None) -> dict:
        L = super().kernel_dims(node, graph, call, patch_entry)
        if patch_entry is None:
            L["pad_h"], L["pad_w"] = str(node.attrs.window.pads[0]), str(node.attrs.window.pads[1])
        return L
