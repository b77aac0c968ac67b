"""Graph, Node, Tensor and QuantParams: the IR every stage reads and writes.

Layout is NHWC for every 4-D activation. Shapes are physical shapes (what the C code indexes).
Graph inputs and outputs also record ``io_perm``: the axis permutation that turns the ONNX (logical)
layout into the physical one, so callers can feed ONNX-layout data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np


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
    dtype: str = "float32"  # float32 | int8 | int32
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
    def nbytes(self) -> int:
        return self.size * {"float32": 4, "int8": 1, "int32": 4, "uint8": 1}[self.dtype]


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

    def replace(self, **changes) -> "Graph":
        return dataclasses.replace(self, **changes)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

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

    def to_text(self) -> str:
        """A readable dump of the graph (used by ``--dump-ir`` and in test failures)."""
        lines = [f"graph {self.name} inputs={list(self.inputs)} outputs={list(self.outputs)}"]
        for n in self.nodes:
            ins = ", ".join(_tensor_text(self.tensors[i]) for i in n.inputs if i)
            outs = ", ".join(_tensor_text(self.tensors[o]) for o in n.outputs)
            lines.append(f"  {n.op:<18} {n.name}: ({ins}) -> ({outs}) {n.attrs if n.attrs is not None else ''}")
        return "\n".join(lines)


def _tensor_text(t: Tensor) -> str:
    q = ""
    if t.quant is not None and t.quant.is_per_tensor:
        q = f" s={t.quant.s:.4g} zp={t.quant.zp}"
    elif t.quant is not None:
        q = f" per-channel[{len(t.quant.scale)}]"
    kind = "const " if t.is_const else ""
    return f"{kind}{t.name}:{t.dtype}{list(t.shape)}{q}"
