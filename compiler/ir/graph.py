"""Graph, Node, Tensor and QuantParams: the IR every stage reads and writes.

Layout is NHWC for every 4-D activation. Shapes are physical shapes (what the C code indexes).
Graph inputs and outputs also record ``io_perm``: the axis permutation that turns the ONNX (logical)
layout into the physical one, so callers can feed ONNX-layout data.

A tensor's ``dtype`` is its storage type, and an integer dtype has a bitwidth (``DTYPE_BITS``); a quantized
activation's dtype follows its ``QuantParams.bits`` (:func:`int_dtype`). ``int4`` and ``int2`` are packed
feature maps: two or four values per byte along the innermost axis (the channels), each pixel padded to a
whole byte, so a pixel takes ``ceil(C * bits / 8)`` bytes and rows and patch regions stay byte-addressable
(the layout is specified, with its numpy reference, in ``arith/bitwidth.py``). ``Tensor.nbytes`` and
:func:`storage_bytes` give sizes in that layout; every buffer size (arena, patch regions) comes from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..errors import UserError

# no tensor of a model meant for a microcontroller comes near this (elements); bigger means a broken shape
MAX_TENSOR_ELEMENTS = 1 << 28

#: bits of one element of each storage type; below 8 the type is packed along the innermost axis
DTYPE_BITS = {"float32": 32, "int32": 32, "int16": 16, "int8": 8, "uint8": 8, "int4": 4, "int2": 2}
#: the signed integer storage type of each quantization bitwidth
INT_DTYPES = {32: "int32", 16: "int16", 8: "int8", 4: "int4", 2: "int2"}


def int_dtype(bits: int) -> str:
    """The storage type of a signed ``bits``-bit quantized tensor ("int8", "int4", ...)."""
    if bits not in INT_DTYPES:
        raise ValueError(f"no storage type for {bits}-bit integers (supported: {sorted(INT_DTYPES)})")
    return INT_DTYPES[bits]


def dtype_bits(dtype: str) -> int:
    """Bits of one element of storage type ``dtype`` (other numpy types, e.g. float64: their item size)."""
    if dtype in DTYPE_BITS:
        return DTYPE_BITS[dtype]
    try:
        return np.dtype(dtype).itemsize * 8
    except TypeError:
        raise ValueError(f"unknown tensor dtype '{dtype}'") from None


def storage_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes a tensor of ``shape`` and ``dtype`` takes in memory: whole bytes per element from 8 bits up;
    packed types pack the innermost axis and pad each of its vectors (a pixel) to a whole byte."""
    bits = dtype_bits(dtype)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if bits >= 8:
        return count * (bits // 8)
    inner = int(shape[-1]) if shape else 1
    outer = count // inner if inner else 0
    return outer * ((inner * bits + 7) // 8)


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point); per-channel along ``axis`` when set."""

    scale: np.ndarray  # float64, shape [1] per-tensor or [C] per-channel
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int | None = None
    bits: int = 8

    @staticmethod
    def per_tensor(scale: float, zero_point: int, bits: int = 8) -> "QuantParams":
        return QuantParams(np.array([scale], np.float64), np.array([zero_point], np.int64), None, bits)

    @property
    def is_per_tensor(self) -> bool:
        return self.axis is None

    @property
    def s(self) -> float:
        """The per-tensor scale."""
        assert self.axis is None
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        """The per-tensor zero point."""
        assert self.axis is None
        return int(self.zero_point[0])

    def same_as(self, other: "QuantParams | None") -> bool:
        return (
            other is not None
            and self.axis == other.axis
            and self.bits == other.bits
            and np.array_equal(self.scale, other.scale)
            and np.array_equal(self.zero_point, other.zero_point)
        )


@dataclass(frozen=True)
class Activation:
    """A clamp fused into an op, in real values (-inf/inf when open)."""

    min: float = float("-inf")
    max: float = float("inf")

    @property
    def is_identity(self) -> bool:
        return self.min == float("-inf") and self.max == float("inf")

    def then(self, other: "Activation") -> "Activation":
        """This clamp followed by ``other``."""
        lo = max(self.min, other.min)
        hi = min(self.max, other.max)
        return Activation(lo, max(lo, hi))


@dataclass(frozen=True, eq=False)
class Tensor:
    """A value in the graph: an activation (``data`` None) or a constant (``data`` set)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"  # float32 | int32 | int16 | int8 | uint8 | int4 | int2 (packed), see DTYPE_BITS
    data: np.ndarray | None = None
    quant: QuantParams | None = None
    origin: str | None = None  # ONNX tensor holding the same values (up to layout), for calibration
    qdata: np.ndarray | None = None  # exact integers of a pre-quantized constant (int8 weights, int32 bias)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def bits(self) -> int:
        """Bits of one element as stored (the dtype's; equal to ``quant.bits`` for quantized activations)."""
        return dtype_bits(self.dtype)

    @property
    def packed(self) -> bool:
        """Several elements share a byte (int4, int2): addressing is by pixel, not by element."""
        return self.bits < 8

    @property
    def pixel_bytes(self) -> int:
        """Bytes of one vector of the innermost axis (a pixel of an NHWC map), padded to a whole byte."""
        return storage_bytes(self.shape[-1:], self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes in memory, packed types included (see :func:`storage_bytes`)."""
        return storage_bytes(self.shape, self.dtype)


@dataclass(frozen=True, eq=False)
class Node:
    """One operation. ``attrs`` is the op's own frozen dataclass; ``params`` its quantized parameters."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Any = None
    params: Any = None
    source: str = ""  # ONNX op types this node was made from, e.g. "Conv+BatchNormalization+Relu"

    def replace(self, **changes) -> "Node":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Graph:
    """A topologically ordered list of nodes over named tensors."""

    name: str
    nodes: tuple[Node, ...]
    tensors: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    io_perm: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: how the integer graph requantizes (arith.fixedpoint.ROUNDINGS): TFLite's default "double", or
    #: "single" (TFLITE_SINGLE_ROUNDING, the rounding of ONNX QDQ semantics); the simulator and the C
    #: follow it
    rounding: str = "double"

    def replace(self, **changes) -> "Graph":
        return dataclasses.replace(self, **changes)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def logical_shape(self, name: str) -> tuple[int, ...]:
        """A graph input's or output's shape in the model's own (ONNX, logical) layout (see ``io_perm``)."""
        phys = self.tensors[name].shape
        perm = self.io_perm.get(name, tuple(range(len(phys))))
        logical = [0] * len(phys)
        for i, p in enumerate(perm):
            logical[p] = phys[i]
        return tuple(logical)

    def producer(self, name: str) -> Node | None:
        for n in self.nodes:
            if name in n.outputs:
                return n
        return None

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def is_graph_output(self, name: str) -> bool:
        return name in self.outputs

    def with_tensors(self, updates: Iterable[Tensor]) -> "Graph":
        tensors = dict(self.tensors)
        for t in updates:
            tensors[t.name] = t
        return self.replace(tensors=tensors)

    def pruned(self) -> "Graph":
        """Drop tensors no node or graph edge mentions (keeps the dict ordered as before)."""
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        return self.replace(tensors={k: v for k, v in self.tensors.items() if k in used})

    def validate(self) -> None:
        """Check that the graph is consistent before any stage relies on it.

        Values a model can get wrong raise UserError naming the tensor: non-finite constants, invalid
        quantization parameters (scale not finite and positive, zero point outside its type, per-channel
        lengths), empty or absurdly large shapes. Broken structure (a node reading a tensor nobody
        computed earlier, a tensor written twice, constant data whose shape differs from the tensor's)
        cannot come from a model the front ends accepted, so it raises ValueError: a front-end bug.
        """
        for name in self.inputs + self.outputs:
            if name not in self.tensors:
                raise ValueError(f"graph input/output '{name}' has no tensor")
        for t in self.tensors.values():
            _validate_tensor(t)
        ready = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_const}
        for n in self.nodes:
            for i in n.inputs:
                if i and i not in ready:
                    raise ValueError(f"node '{n.name}' ({n.op}) reads '{i}' before anything computes it")
            for o in n.outputs:
                if o not in self.tensors:
                    raise ValueError(f"node '{n.name}' ({n.op}) writes '{o}', which has no tensor")
                if o in ready:
                    raise ValueError(f"tensor '{o}' is written twice (last by node '{n.name}')")
                ready.add(o)
        for o in self.outputs:
            if o not in ready:
                raise ValueError(f"graph output '{o}' is never computed")

    def to_text(self) -> str:
        """A readable dump of the graph (used by ``--dump-ir`` and in test failures)."""
        lines = [f"graph {self.name} inputs={list(self.inputs)} outputs={list(self.outputs)}"]
        for n in self.nodes:
            ins = ", ".join(_tensor_text(self.tensors[i]) for i in n.inputs if i)
            outs = ", ".join(_tensor_text(self.tensors[o]) for o in n.outputs)
            lines.append(f"  {n.op:<18} {n.name}: ({ins}) -> ({outs}) {n.attrs if n.attrs is not None else ''}")
        return "\n".join(lines)


def _validate_tensor(t: Tensor) -> None:
    origin = t.origin or t.name
    if any(int(d) < 1 for d in t.shape):
        raise UserError(f"tensor '{origin}' has shape {list(t.shape)}; every dimension must be at least 1: fix the model")
    if t.size > MAX_TENSOR_ELEMENTS:
        raise UserError(f"tensor '{origin}' has shape {list(t.shape)} ({t.size:,} elements), far beyond any "
                        "microcontroller's memory; check the model's input size")
    for what, arr in (("data", t.data), ("exact integers", t.qdata)):
        if arr is not None and tuple(arr.shape) != tuple(t.shape):
            raise ValueError(f"constant '{t.name}': {what} of shape {list(arr.shape)} for a tensor of shape {list(t.shape)}")
    if t.data is not None and t.data.dtype.kind == "f" and not np.all(np.isfinite(t.data)):
        raise UserError(f"constant '{origin}' contains NaN or Inf values; the model is broken (check training / "
                        "export) and cannot be quantized")
    q = t.quant
    if t.dtype in ("int4", "int2") and (q is None or q.bits != DTYPE_BITS[t.dtype]):
        # only the quantizer makes packed tensors, from their params' bits
        raise ValueError(f"tensor '{t.name}' is {t.dtype} but quantized with "
                         f"{'no params' if q is None else f'{q.bits} bits'}")
    if q is None:
        return
    scale = np.asarray(q.scale, np.float64).reshape(-1)
    zp = np.asarray(q.zero_point).reshape(-1)
    why = scale_problem(scale, zp)
    if why:
        raise UserError(f"tensor '{origin}' {why}: re-quantize the model")
    lo, hi = -(1 << (q.bits - 1)), (1 << (q.bits - 1)) - 1
    if zp.size and (zp.min() < lo or zp.max() > hi):
        raise UserError(f"tensor '{origin}' has zero point {int(zp[(zp < lo) | (zp > hi)][0])}, outside the "
                        f"{q.bits}-bit range [{lo}, {hi}]: re-quantize the model")
    if q.axis is not None and (not 0 <= q.axis < len(t.shape) or t.shape[q.axis] != scale.size):
        raise UserError(f"tensor '{origin}' of shape {list(t.shape)} has {scale.size} per-channel scales along axis "
                        f"{q.axis}; the count must equal that axis's size: re-quantize the model")


def scale_problem(scale: np.ndarray, zero_point: np.ndarray) -> str | None:
    """What is wrong with a quantization's scales and zero points (None when nothing): every scale finite
    and positive, one zero point per scale. The front ends and Graph.validate share it."""
    scale, zero_point = np.asarray(scale, np.float64).reshape(-1), np.asarray(zero_point).reshape(-1)
    bad = scale[~(np.isfinite(scale) & (scale > 0))]
    if bad.size:
        return f"has quantization scale {bad[0]:g}; scales must be finite and positive"
    if zero_point.size != scale.size:
        return f"has {scale.size} quantization scales but {zero_point.size} zero points; they must match"
    return None


def _tensor_text(t: Tensor) -> str:
    q = ""
    if t.quant is not None and t.quant.is_per_tensor:
        q = f" s={t.quant.s:.4g} zp={t.quant.zp}"
    elif t.quant is not None:
        q = f" per-channel[{len(t.quant.scale)}]"
    kind = "const " if t.is_const else ""
    return f"{kind}{t.name}:{t.dtype}{list(t.shape)}{q}"
