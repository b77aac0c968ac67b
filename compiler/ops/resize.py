"""Nearest-neighbour upsampling by integer factors (ONNX ``Resize`` / ``Upsample`` with mode nearest,
TFLite ``RESIZE_NEAREST_NEIGHBOR``): every input pixel is replicated into an ``s_h x s_w`` block.

The IR op ``resize_nearest`` runs only that pure replication; the front ends map their attributes to it
as the model states them (:class:`ResizeMapping`) and ``supports`` refuses (with the reason) any
combination whose source index differs from ``y // s`` at some output position. It decides it by
evaluating each format's own coordinate formula (:func:`onnx_source_index`, :func:`tflite_source_index`)
over every output row and column and comparing with replication (:func:`replication_problem`), so e.g.
ONNX's default ``half_pixel`` + ``round_prefer_floor`` and TFLite's ``half_pixel_centers`` at an integer
scale are accepted (they replicate) while ``align_corners`` at a scale and size where it does not
replicate is refused.

int8: bytes are copied, so input and output share one scale and zero point (TFLite requires that of
RESIZE_NEAREST_NEIGHBOR; TFLite Micro copies the bytes whatever the params say).

Patch rule: output rows [t, b) read input rows [t // s, ceil(b / s)). In a patch the output region may
start inside a replicated block; the op then runs with a start offset (negative padding): output row
``oy`` of the patch reads row ``(oy + offset) // s`` of the input region buffer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..ir import Region
from ..errors import UserError
from .base import OpDef, register, require_bits, require_rank, shape_error
from .kernel import Kernel, KernelArgs, KernelCost, base_counts, read, write


@dataclass(frozen=True)
class ResizeMapping:
    """How the model maps output to input coordinates, in its own format's terms (what ``supports``
    checks is pure replication): ``format`` "tflite" (RESIZE_NEAREST_NEIGHBOR's ``align_corners`` /
    ``half_pixel_centers``) or "onnx" (Resize / Upsample: ``coordinate_transformation_mode``,
    ``nearest_mode``, the real ``scales`` (H, W), ``keep_aspect_ratio_policy``); ``mode`` is the
    interpolation (ONNX's ``mode``; TFLite's op is nearest). The default is plain replication."""

    format: str = "tflite"
    mode: str = "nearest"
    align_corners: bool = False
    half_pixel_centers: bool = False
    coordinate_transformation_mode: str = "asymmetric"
    nearest_mode: str = "floor"
    scales: tuple[float, float] | None = None
    keep_aspect_ratio_policy: str = "stretch"

    def problem(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> str | None:
        """Why this mapping from ``in_hw`` to ``out_hw`` is not replication by integer factors (None
        when it is), evaluated with the format's own index formula at every output row and column."""
        if self.mode != "nearest":
            return f"mode '{self.mode}' (only 'nearest' with integer scale factors)"
        if self.format == "tflite":
            for in_size, out_size, axis in ((in_hw[0], out_hw[0], "H"), (in_hw[1], out_hw[1], "W")):
                source = tflite_source_index(in_size, out_size, self.align_corners, self.half_pixel_centers)
                problem = replication_problem(in_size, out_size, source, axis)
                if problem is not None:
                    return (f"nearest resize with align_corners={self.align_corners}, half_pixel_centers="
                            f"{self.half_pixel_centers}: {problem}; only replication by integer factors is supported")
            return None
        cmode, nmode = self.coordinate_transformation_mode, self.nearest_mode
        if cmode == "tf_crop_and_resize":
            return "coordinate_transformation_mode 'tf_crop_and_resize'"
        if self.keep_aspect_ratio_policy != "stretch":
            return "keep_aspect_ratio_policy other than 'stretch'"
        if cmode not in ONNX_COORDINATE_MODES or nmode not in ONNX_NEAREST_MODES:
            return f"coordinate_transformation_mode '{cmode}' / nearest_mode '{nmode}'"
        scales = self.scales if self.scales is not None else (out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])
        problem = onnx_replication_problem(in_hw, out_hw, scales, cmode, nmode)
        if problem is not None:
            return (f"nearest resize with coordinate_transformation_mode '{cmode}', nearest_mode '{nmode}': {problem} "
                    "(only replication by integer factors is supported)")
        return None


@dataclass(frozen=True)
class ResizeAttrs:
    """Replication factors (h, w); ``size``: the model's output (H, W) when the front end gives it (else
    input x scale), ``mapping``: how the model defines the resize (``supports`` refuses it unless it is
    replication by ``scale``). ``offset`` and ``out_hw`` are set only for one patch (patch_local_node):
    the output region starts ``offset`` output rows / columns into the first input row / column's block
    and has ``out_hw`` rows and columns."""

    scale: tuple[int, int]
    offset: tuple[int, int] = (0, 0)
    out_hw: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    mapping: ResizeMapping = ResizeMapping()


def _replicate(x: np.ndarray, attrs: ResizeAttrs) -> np.ndarray:
    sh, sw = attrs.scale
    y = np.repeat(np.repeat(x, sh, axis=1), sw, axis=2)
    if attrs.out_hw is None and attrs.offset == (0, 0):
        return y
    oh, ow = attrs.out_hw if attrs.out_hw is not None else (y.shape[1] - attrs.offset[0], y.shape[2] - attrs.offset[1])
    t, left = attrs.offset
    return np.ascontiguousarray(y[:, t : t + oh, left : left + ow, :])


def _resize_access(args: KernelArgs):
    """mcu_resize_nearest_s8: output pixel (oy, ox) reads input pixel ((oy + offset.h) / scale.h,
    (ox + offset.w) / scale.w); offset = -padding (a patch starting inside a replicated block); N and C
    equal; the last output row / column must read inside the input dims."""
    (sh, sw), (off_h, off_w) = args.context["scale"], (-args.pads[0], -args.pads[1])
    in_d, out_d = args.in_dims[0], args.out_dims
    n, h, w, c = in_d
    _, oh, ow, _ = out_d
    contract = []
    if sh < 1 or sw < 1 or off_h < 0 or off_w < 0:
        contract.append(f"scale {[sh, sw]} (>= 1) and offset {[off_h, off_w]} (>= 0)")
    if out_d[0] != n or out_d[3] != c or oh < 0 or ow < 0:
        contract.append(f"output dims {list(out_d)} do not match input {list(in_d)} in N, C")
    empty = min(n, c, oh, ow) <= 0
    if not contract and not empty:
        last_y, last_x = (oh - 1 + off_h) // sh, (ow - 1 + off_w) // sw
        if last_y >= h or last_x >= w:
            contract.append(f"output {oh}x{ow} at offset {[off_h, off_w]} x{[sh, sw]} reads input row {last_y}, "
                            f"column {last_x} of {h}x{w}")
    extent = 0
    if not contract and not empty:
        extent = (((n - 1) * h + (oh - 1 + off_h) // sh) * w + (ow - 1 + off_w) // sw + 1) * c
    return [read(args.inputs[0], extent, "input"),
            write(args.output, max(0, n * oh * ow * c) if not contract else 0, "output")], contract


def _resize_counts(node, graph, g):
    f = base_counts(node, graph, g)
    f["pixels"] = float(g.out_h * g.out_w)  # one row copy (memcpy of C bytes) per output pixel
    return f


RESIZE_NEAREST = Kernel("resize_nearest.c.j2", _resize_access, KernelCost(
    ("calls", "pixels", "outputs"), {"calls": 60.0, "pixels": 23.85, "outputs": 1.17}, _resize_counts,
    note="added after the fit: set by hand from two layers of a conv -> prelu -> resize x2 -> conv -> prelu -> "
         "resize x(3, 2) net on qemu-m4 (per-layer counts of mcucompile bench), within 1.5% on those layers"))


@register
class ResizeNearest(OpDef):
    name = "resize_nearest"

    def infer_shapes(self, node, in_shapes):
        x = in_shapes[0]
        require_rank(node, x, 4, "the input")
        sh, sw = node.attrs.scale
        if sh < 1 or sw < 1:
            raise shape_error(node, f"scale factors {[sh, sw]} must be integers >= 1")
        if node.attrs.size is not None:
            if min(node.attrs.size) < 1:
                raise shape_error(node, f"output size {list(node.attrs.size)} must be positive")
            return [(x[0], *node.attrs.size, x[3])]
        return [(x[0], x[1] * sh, x[2] * sw, x[3])]

    def supports(self, node, graph):
        _, h, w, _ = graph.tensors[node.inputs[0]].shape
        _, oh, ow, _ = graph.tensors[node.outputs[0]].shape
        problem = node.attrs.mapping.problem((h, w), (oh, ow))
        if problem is None and (oh, ow) != (h * node.attrs.scale[0], w * node.attrs.scale[1]):
            problem = f"output {oh}x{ow} is not the input {h}x{w} replicated x{list(node.attrs.scale)}"
        return problem

    def eval_float(self, node, graph, inputs):
        return [_replicate(inputs[0], node.attrs)]

    eval_int = eval_float

    def quantize(self, node, ctx):
        # a nearest resize copies bytes: the output keeps the input's params; where an ONNX QDQ model
        # quantizes its output otherwise (onnxruntime's quantizer), the quantize driver adds one
        # requantization to those. TFLite Micro copies the bytes whatever the params say, so a .tflite
        # model with unequal params has no faithful meaning: refused, as before
        in_q, out = ctx.quant[node.inputs[0]], node.outputs[0]
        preset = ctx.preset(out)
        if node.attrs.mapping.format == "tflite" and preset is not None and not preset.same_as(in_q):
            raise UserError(f"{node.source or node.op} node '{node.name}': output quantized with scale {preset.s:g} / "
                            f"zero point {preset.zp}, input with {in_q.s:g} / {in_q.zp}; a nearest resize copies bytes, "
                            "so both must be equal (as TFLite requires): re-quantize the model with equal parameters")
        ctx.quant[out] = in_q
        require_bits(node, ctx, 8, "mcu_resize_nearest_s8 (it copies int8 pixels)")
        return [node]

    def kernel(self, node, graph, board=None):
        return RESIZE_NEAREST.call({"scale": tuple(int(s) for s in node.attrs.scale)})

    # --- patch rule ---

    def patch_problem(self, node, graph):
        return None  # each output pixel reads one input pixel: any region

    def patch_input_region(self, node, graph, out: Region, tensor: str) -> Region:
        t = graph.tensors[tensor]
        sh, sw = node.attrs.scale
        return Region(out.top // sh, out.left // sw, -(-out.bottom // sh), -(-out.right // sw)).clipped(
            t.shape[1], t.shape[2])

    def patch_local_pads(self, node, rin: Region, rout: Region) -> tuple[int, int]:
        # how far into the first input row's block the output region starts, as a start offset (<= 0)
        sh, sw = node.attrs.scale
        return -(rout.top - sh * rin.top), -(rout.left - sw * rin.left)

    def patch_local_node(self, node, lw, x):
        local = dataclasses.replace(node.attrs, offset=(-lw.pad_top, -lw.pad_left), out_hw=(lw.out_h, lw.out_w))
        return node.replace(attrs=local), x


# --------------------------------------------------------------------------------------------------
# the front ends' coordinate formulas, to decide whether an attribute combination is pure replication
# --------------------------------------------------------------------------------------------------

def replication_problem(in_size: int, out_size: int, source: Callable[[np.ndarray], np.ndarray],
                        axis: str) -> str | None:
    """Why the format's nearest mapping along ``axis`` is not replication by an integer factor (None when
    it is): ``source`` maps output coordinates to the source indices the format's reference computes."""
    if out_size % in_size or out_size < in_size:
        return f"it resizes {axis} from {in_size} to {out_size}, not by an integer factor >= 1"
    s = out_size // in_size
    ys = np.arange(out_size)
    got = np.asarray(source(ys)).astype(np.int64)
    bad = np.nonzero(got != ys // s)[0]
    if bad.size:
        y = int(bad[0])
        return (f"along {axis} (x{s}) output {y} reads input {int(got[y])}, not {y // s}: "
                "it is not a plain replication")
    return None


def tflite_source_index(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """TFLite (Micro) reference ResizeNearestNeighbor's source index, in float32 as it computes it."""
    f32 = np.float32

    def source(ys: np.ndarray) -> np.ndarray:
        if align_corners and out_size > 1:
            scale = f32(in_size - 1) / f32(out_size - 1)
        else:
            scale = f32(in_size) / f32(out_size)
        v = (ys.astype(f32) + f32(0.5 if half_pixel_centers else 0.0)) * scale
        fl = np.floor(v)
        # TfLiteRound rounds half away from zero (the values are >= 0); v - floor(v) is exact
        idx = fl + ((v - fl) >= f32(0.5)) if align_corners else fl
        idx = np.minimum(idx.astype(np.int64), in_size - 1)
        return np.maximum(idx, 0) if half_pixel_centers else idx

    return source


ONNX_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                         "tf_half_pixel_for_nn")
ONNX_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def onnx_source_index(in_size: int, out_size: int, scale: float, mode: str, nearest_mode: str, dtype=np.float64,
                      reciprocal: bool = False):
    """The ONNX Resize specification's source index (coordinate_transformation_mode ``mode``, then
    ``nearest_mode``, clamped to the input), computed in ``dtype`` (float32 as onnxruntime, float64 as
    the reference), dividing by the scale or (``reciprocal``) multiplying by its inverse as a runtime
    may; the caller compares every variant with replication, so a tie decided differently by rounding
    error is refused, never guessed."""
    t = dtype

    def source(ys: np.ndarray) -> np.ndarray:
        x = ys.astype(t)
        s = t(scale)
        inv = t(1) / s

        def div(v):  # v / scale
            return v * inv if reciprocal else v / s

        if mode == "half_pixel":
            v = div(x + t(0.5)) - t(0.5)
        elif mode == "half_pixel_symmetric":
            adj = t(out_size) / (s * t(in_size))
            off = t(in_size) / t(2) * (t(1) - adj)
            v = off + div(x + t(0.5)) - t(0.5)
        elif mode == "pytorch_half_pixel":
            v = div(x + t(0.5)) - t(0.5) if out_size > 1 else np.full_like(x, t(-0.5))
        elif mode == "align_corners":
            v = x * t(in_size - 1) / t(out_size - 1) if out_size > 1 else np.zeros_like(x)
        elif mode == "asymmetric":
            v = div(x)
        elif mode == "tf_half_pixel_for_nn":
            v = div(x + t(0.5))
        else:
            raise ValueError(mode)
        fl = np.floor(v)
        half = (v - fl) == t(0.5)
        if nearest_mode == "round_prefer_floor":
            idx = np.where(half, fl, np.round(v))
        elif nearest_mode == "round_prefer_ceil":
            idx = np.where(half, fl + 1, np.round(v))
        elif nearest_mode == "floor":
            idx = fl
        elif nearest_mode == "ceil":
            idx = np.ceil(v)
        else:
            raise ValueError(nearest_mode)
        return np.clip(idx.astype(np.int64), 0, in_size - 1)

    return source


def onnx_replication_problem(in_hw: tuple[int, int], out_hw: tuple[int, int], scales: tuple[float, float], mode: str,
                             nearest_mode: str) -> str | None:
    """Why an ONNX nearest Resize is not replication by integer factors (None when it is), in float64
    and in float32 (dividing, and multiplying by the inverse) alike."""
    for a, axis in enumerate(("H", "W")):
        if not math.isfinite(scales[a]) or scales[a] <= 0:
            return f"scale {scales[a]} along {axis} is not a positive number"
        for dt, recip in ((np.float64, False), (np.float32, False), (np.float32, True)):
            p = replication_problem(in_hw[a], out_hw[a], onnx_source_index(
                in_hw[a], out_hw[a], scales[a], mode, nearest_mode, dt, recip), axis)
            if p is not None:
                return p
    return None
