"""The op registry: one OpDef subclass per IR op type, registered by name.

An OpDef knows everything about one op type that the stages need, so no stage branches on op names:
shape inference, float evaluation (reference for the front end), quantization, bit-exact integer
evaluation (the simulator), MAC count, and the kernel call the code generator emits.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..arith.bitwidth import qrange, saturate
from ..arith.fixedpoint import round_half_away
from ..errors import UnsupportedError, UserError
from ..ir import Graph, LocalWindow, Node, QuantParams, Region, Tensor
from .kernel import KernelCall
from .spatial import as_nhwc

REGISTRY: dict[str, "OpDef"] = {}

#: bits of an activation when nothing asks for others (the model's own params, or QuantContext.bits)
DEFAULT_ACTIVATION_BITS = 8


def shape_error(node: Node, problem: str) -> UserError:
    """A model whose shapes or attributes contradict this op (raised by ``infer_shapes``): names the node."""
    return UserError(f"{node.source or node.op} node '{node.name}': {problem}; the model is inconsistent: "
                     "fix or re-export it")


def require_rank(node: Node, shape: tuple[int, ...], rank: int, what: str) -> None:
    if len(shape) != rank:
        raise shape_error(node, f"{what} has shape {list(shape)}, expected {rank} dimensions")


def register(cls):
    """Class decorator: add an OpDef to the registry under ``cls.name``."""
    REGISTRY[cls.name] = cls()
    return cls


def op_def(node_or_op) -> "OpDef":
    name = node_or_op if isinstance(node_or_op, str) else node_or_op.op
    return REGISTRY[name]


class QuantContext:
    """What an op's quantize() may ask: calibrated ranges, the bitwidth wanted for each activation
    (``bits``: IR tensor name -> bits, :data:`DEFAULT_ACTIVATION_BITS` for the others) and the
    quantization chosen so far."""

    def __init__(self, graph: Graph, ranges: dict[str, tuple[float, float]], bits: dict[str, int] | None = None):
        self.graph = graph
        self.ranges = ranges
        self.bits = dict(bits or {})
        self.quant: dict[str, QuantParams] = {}
        self.new_tensors: dict[str, Tensor] = {}

    def activation_bits(self, name: str) -> int:
        """The bitwidth asked for activation ``name`` (the default unless ``bits`` names it)."""
        return self.bits.get(name, DEFAULT_ACTIVATION_BITS)

    def tensor(self, name: str) -> Tensor:
        return self.new_tensors.get(name) or self.graph.tensors[name]

    def range_of(self, name: str) -> tuple[float, float]:
        t = self.graph.tensors[name]
        key = t.origin or name
        if key not in self.ranges and not self.ranges:
            # no calibration ran: the model is pre-quantized (QDQ / TFLite) and this tensor carries no params
            raise UserError(f"tensor '{t.origin or name}' has no quantization parameters, though the model is "
                            "pre-quantized (QDQ or int8 TFLite) and carries them for the others; re-quantize the "
                            "model so every activation has a scale and zero point (or give the float model)")
        if key not in self.ranges:
            raise KeyError(f"no calibration range for tensor {name} (origin {key})")
        return self.ranges[key]

    def preset(self, name: str) -> QuantParams | None:
        """Params the model itself fixes (pre-quantized TFLite / QDQ models), else None."""
        t = self.tensor(name)
        return t.quant if (t.quant is not None and not t.is_const) else None

    def from_range(self, name: str) -> QuantParams:
        """The model's own params of ``name``, or asymmetric params of its calibrated range at the
        bitwidth asked for it."""
        preset = self.preset(name)
        if preset is not None:
            if name in self.bits and self.bits[name] != preset.bits:
                raise ValueError(f"tensor '{name}' carries the model's own {preset.bits}-bit params; "
                                 f"{self.bits[name]} bits can be asked only for calibrated tensors")
            return preset
        lo, hi = self.range_of(name)
        return activation_quant(lo, hi, self.activation_bits(name))


def activation_quant(lo: float, hi: float, bits: int = DEFAULT_ACTIVATION_BITS) -> QuantParams:
    """Asymmetric per-tensor params covering [lo, hi] and 0, as TFLite's converter chooses them."""
    qmin, qmax = qrange(bits)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / (qmax - qmin)
    zp_from_min = qmin - lo / scale
    zp = int(np.clip(np.floor(zp_from_min + 0.5), qmin, qmax))
    return QuantParams.per_tensor(scale, zp, bits)


def quantize_values(x: np.ndarray, q: QuantParams) -> np.ndarray:
    """Real -> integer as TFLite's QUANTIZE op (round half away from zero, clamp to ``q.bits``), one
    value per element in the bits' storage type (int8 up to 8 bits)."""
    v = round_half_away(np.asarray(x, np.float64) / q.s) + q.zp
    return saturate(v, q.bits)


def dequantize_values(x: np.ndarray, q: QuantParams) -> np.ndarray:
    return (np.asarray(x, np.float64) - q.zp) * q.s


def tensor_bits(graph: Graph, name: str) -> int:
    """Bitwidth of activation ``name`` as quantized (its params' bits): what ``eval_int`` saturates
    an output to and what a lookup table is indexed by."""
    t = graph.tensors[name]
    if t.quant is None:
        raise ValueError(f"tensor '{name}' is not quantized: the integer simulator runs quantized graphs only")
    return t.quant.bits


def require_bits(node: Node, ctx: QuantContext, bits: int, why: str) -> None:
    """Refuse (UnsupportedError) to quantize ``node`` when an activation it reads or writes does not have
    ``bits`` bits: for integer algorithms defined at one bitwidth only (TFLite's int8 kernels)."""
    for name in [i for i in node.inputs if i and not ctx.tensor(i).is_const] + list(node.outputs):
        q = ctx.quant.get(name)
        got = q.bits if q is not None else ctx.activation_bits(name)
        if got != bits:
            raise UnsupportedError(f"{node.source or node.op} node '{node.name}': tensor '{name}' is {got}-bit; "
                                   f"{why} is defined for {bits}-bit tensors only: keep it at {bits} bits")


def activation_bounds(act, q: QuantParams) -> tuple[int, int]:
    """A fused real-valued clamp expressed in the output's integer domain."""
    # as TFLite's CalculateActivationRangeQuantized: zero_point + round(f / scale) in float32
    qmin, qmax = qrange(q.bits)

    def quantize(f: float) -> int:
        with np.errstate(over="ignore"):
            v = np.float32(f) / np.float32(q.s)
        if not np.isfinite(v):  # a bound beyond float32 / scale: no clamp on that side (saturates below)
            return qmax + 1 if v > 0 else qmin - 1
        return q.zp + int(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)))

    lo, hi = qmin, qmax
    if act is not None and act.min != float("-inf"):
        lo = max(qmin, min(qmax, quantize(act.min)))
    if act is not None and act.max != float("inf"):
        hi = min(qmax, max(qmin, quantize(act.max)))
    return lo, max(lo, hi)


class OpDef:
    """Base class; subclasses override what their op needs."""

    name: ClassVar[str] = ""
    #: output 0 may be written over input 0 (same size, element by element)
    inplace: ClassVar[bool] = False
    #: output 0 *is* input 0's buffer (a reshape): no kernel runs
    alias: ClassVar[bool] = False
    #: accepts a fused activation in ``attrs.activation``
    fuses_activation: ClassVar[bool] = False

    def infer_shapes(self, node: Node, in_shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def supports(self, node: Node, graph: Graph) -> str | None:
        """Why mcucompile cannot compile ``node`` as the model defines it (None when it can): one phrase
        naming what is not supported and, where there is one, the fix. Asked for every node after import
        (:func:`check_supported`), before anything is quantized; the front ends express what the model
        says in the op's attrs and leave the refusing to this. The shapes are consistent by then
        (``infer_shapes`` raised for a model that contradicts itself)."""
        return None

    def eval_float(self, node: Node, graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def quantize(self, node: Node, ctx: QuantContext) -> list[Node]:
        """Return the quantized node(s); record output quant in ``ctx.quant`` and constants in ``ctx.new_tensors``."""
        raise NotImplementedError

    def eval_int(self, node: Node, graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def macs(self, node: Node, graph: Graph) -> int:
        return 0

    def kernel(self, node: Node, graph: Graph, board=None) -> KernelCall:
        """The kernel implementation chosen for ``node`` on ``board`` (a ``boards.Board``; None: portable)
        at compile time: a :class:`~.kernel.KernelCall` of one :class:`~.kernel.Kernel` (template, access
        pattern, cost terms) with its values, the constant arrays it owns and its scratch bytes. A
        board-dependent backend (DSP, MVE, CMSIS-NN) is one more ``Kernel`` returned here, not a branch
        or a table entry elsewhere."""
        raise NotImplementedError

    # --- patch-based inference: how the op runs on one spatial region (patch/ asks, never branches) ---

    #: operands whose buffer is larger than the output region are read through a cropped copy (ops that
    #: combine operands element by element); windowed ops read the larger buffer with a start offset
    patch_crops_operands: ClassVar[bool] = False

    def patch_problem(self, node: Node, graph: Graph) -> str | None:
        """Why the op cannot sit in the per-patch stage (None when it can): only ops whose output at a
        position depends on a bounded neighbourhood over H, W can run region by region."""
        return f"{self.name} reads its whole input to compute any output position"

    def patch_input_region(self, node: Node, graph: Graph, out: Region, tensor: str) -> Region:
        """The region of input ``tensor`` that output region ``out`` needs (clipped to the tensor):
        the same rows and columns for an element-by-element op."""
        t = graph.tensors[tensor]
        return out.clipped(t.shape[1], t.shape[2])

    def patch_local_pads(self, node: Node, rin: Region, rout: Region) -> tuple[int, int] | None:
        """(top, left) padding the op uses when it computes ``rout`` from the buffer holding ``rin``:
        positive at the image border, negative (a start offset) inside; None for ops without padding."""
        return None

    def patch_local_node(self, node: Node, lw: LocalWindow, x: np.ndarray) -> tuple[Node, np.ndarray]:
        """The node as it runs on one patch (local padding) and its first input as the kernel reads it;
        the simulator's patch loop uses it. Only ops with ``patch_local_pads`` are asked."""
        return node, x

    def kernel_dims(self, node: Node, graph: Graph, call: KernelCall, patch_entry: str | None = None) -> dict:
        """The dims, padding and counts a kernel template reads (``L`` in templates/kernels/), as C
        literals: from the shapes layer by layer, or inside the patch loop from the per-patch table entry
        ``patch_entry`` (e.g. ``pl[3]``: in_h, in_w, out_h, out_w, pad_h, pad_w)."""
        acts = [graph.tensors[i] for i in node.inputs if i and not graph.tensors[i].is_const]
        out = graph.tensors[node.outputs[0]]
        if patch_entry is not None:
            e = patch_entry
            h, w = ("out_h", "out_w") if self.patch_crops_operands else ("in_h", "in_w")
            ind = [f"{{1, {e}.{h}, {e}.{w}, {t.shape[3]}}}" for t in acts]
            outd = f"{{1, {e}.out_h, {e}.out_w, {out.shape[3]}}}"
            return {"in_dims": ind, "out_dims": outd, "pad_h": f"{e}.pad_h", "pad_w": f"{e}.pad_w",
                    "bcast_dims": ind + ind, "bcast_out": outd, "outer": f"{e}.out_h * {e}.out_w"}
        L = {"in_dims": [c_dims(as_nhwc(tuple(t.shape))) for t in acts], "out_dims": c_dims(as_nhwc(tuple(out.shape))),
             "pad_h": "0", "pad_w": "0"}
        ctx = call.context
        if "in1_dims" in ctx:
            L["bcast_dims"] = [c_dims(ctx["in1_dims"]), c_dims(ctx["in2_dims"])]
            L["bcast_out"] = c_dims(ctx["out_dims"])
        if "outer" in ctx:
            L["outer"] = str(ctx["outer"])
        return L


def check_supported(graph: Graph) -> Graph:
    """Ask every node's op whether it supports the node as the model defines it (``OpDef.supports``);
    the first refusal raises :class:`~mcucompile.errors.UnsupportedError` naming the node, its source op
    and the reason. Run once on each front end's graph after import (the ONNX graph at the start of
    ``passes.canonicalize``, the TFLite graph at the end of ``load_tflite``). Returns the graph."""
    for node in graph.nodes:
        reason = op_def(node).supports(node, graph)
        if reason is not None:
            raise UnsupportedError(f"{node.source or node.op} node '{node.name}': {reason}")
    return graph


def c_dims(values) -> str:
    """A C initializer for an mcu_dims, e.g. {1, 28, 28, 8}."""
    return "{" + ", ".join(str(int(v)) for v in values) + "}"
