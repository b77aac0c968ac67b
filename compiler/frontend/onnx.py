"""ONNX -> IR.

The IR is NHWC; ONNX is NCHW. Instead of inserting transposes around every op, each ONNX tensor is
tracked as a *view*: an IR tensor plus the permutation ``perm`` with physical = logical.transpose(perm).
Converters ask for an input in the layout they need; a real transpose is emitted only when the bytes
must move (a reshape alias when only unit axes move), so exported NHWC->NCHW Transposes cost nothing.

Constants are folded as they are met (the onnx reference evaluator runs any node whose inputs are all
known), so Shape/Gather/Concat chains that compute reshape targets disappear.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UnsupportedError, UserError
from ..ir import Activation, Graph, Node, QuantParams, Tensor
from ..ops import op_def
from ..ops.conv import ConvAttrs
from ..ops.data_movement import ConcatAttrs, PadAttrs, ReshapeAttrs, TransposeAttrs
from ..ops.elementwise import ElementwiseAttrs
from ..ops.fully_connected import FullyConnectedAttrs
from ..ops.mean import MeanAttrs
from ..ops.pooling import PoolAttrs
from ..ops.prelu import PreluAttrs
from ..ops.resize import ResizeAttrs, ResizeMapping
from ..ops.spatial import Window
from ..ops.unary import SoftmaxAttrs, UnaryAttrs

NHWC = (0, 2, 3, 1)
# no tensor of a model meant for a microcontroller comes near this (elements); bigger means a broken shape
MAX_ELEMENTS = 1 << 28
MIN_OPSET = 7
_INT8, _UINT8, _INT32 = onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT32
# ONNX op types that read a 4-D input as an NCHW feature map (their converters say so): a 4-D graph input
# read only by them is laid out NHWC from the start; an input that feeds a Transpose / Reshape / MatMul...
# says its own layout and keeps it.
NCHW_READERS: set[str] = set()


@dataclass(frozen=True)
class View:
    ir: str
    perm: tuple[int, ...]
    logical: tuple[int, ...]


Converter = Callable[["OnnxImporter", onnx.NodeProto], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str, reads_nchw: bool = False):
    """Register ``fn`` as the converter of ``op_types``; ``reads_nchw``: they read a 4-D input as NCHW."""
    def deco(fn: Converter) -> Converter:
        for t in op_types:
            CONVERTERS[t] = fn
            if reads_nchw:
                NCHW_READERS.add(t)
        return fn

    return deco


def supported_onnx_ops() -> list[str]:
    return sorted(CONVERTERS)


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_last(rank: int, axis: int = 1) -> tuple[int, ...]:
    """The perm that moves logical ``axis`` to the end, others in order."""
    return tuple(a for a in range(rank) if a != axis) + (axis,)


class OnnxImporter:
    def __init__(self, model: onnx.ModelProto, name: str, input_shapes: dict[str, tuple[int, ...]] | None = None):
        self.model = model
        self.graph_name = name
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.consts: dict[str, np.ndarray] = {}
        self.views: dict[str, View] = {}
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}
        self.cache: dict[tuple, str] = {}
        self.input_shapes = input_shapes or {}
        self._uid = 0
        self._input_perm: dict[str, tuple[int, ...]] = {}
        # exact integers behind DequantizeLinear of constants (QDQ models): name -> (ints, scale, zero_point, axis)
        self.qinfo: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}
        # the DequantizeLinear node behind each entry of qinfo and its zero point as the model writes it
        self.qnode: dict[str, tuple[str, str]] = {}
        # ONNX element type of initializers, Constant outputs, graph inputs and QuantizeLinear outputs: what
        # the Q/DQ checks read (numpy has no int4 / float8 types to tell them apart)
        self.elem_types: dict[str, int] = {}

    # ----- helpers used by converters -----
    def fresh(self, base: str) -> str:
        self._uid += 1
        return f"{base}__{self._uid}"

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, name: str) -> np.ndarray:
        return self.consts[name]

    def const_required(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index]
        if name not in self.consts:
            raise UnsupportedError(
                f"node '{node.name}' ({node.op_type}): {what} '{name}' must be a constant initializer; "
                "mcucompile compiles weights into flash"
            )
        return self.consts[name]

    def optional_input(self, node: onnx.NodeProto, index: int) -> str:
        return node.input[index] if len(node.input) > index and node.input[index] else ""

    def logical_shape(self, name: str) -> tuple[int, ...]:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        return self.views[name].logical

    def perm_of(self, name: str) -> tuple[int, ...]:
        return self.views[name].perm if name in self.views else identity(len(self.logical_shape(name)))

    def add_const(self, base: str, data: np.ndarray, source: str | None = None, transform=None,
                  out_axis: int | None = None) -> str:
        """A constant IR tensor; when ``source`` is a dequantized QDQ constant, its exact integers (through
        the same ``transform`` as the float data) and scales come along."""
        if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
            # finite initializers can still fold into Inf / NaN (a division by zero, an overflowing product)
            raise UserError(f"constant '{base}' (computed from the model's constants) contains NaN or Inf values; "
                            "the model is broken (check training / export) and cannot be quantized")
        name = self.fresh(base)
        qdata, quant = None, None
        if source is not None and source in self.qinfo:
            ints, scale, zp, _axis = self.qinfo[source]
            qdata = transform(ints) if transform is not None else ints
            quant = QuantParams(np.asarray(scale, np.float64).reshape(-1), np.asarray(zp, np.int64).reshape(-1),
                                out_axis if np.size(scale) > 1 else None, 8 if ints.dtype == np.int8 else 32)
        self.tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), data, quant, None, qdata)
        return name

    def view(self, name: str, perm: tuple[int, ...] | None = None) -> str:
        """The IR tensor holding ONNX tensor ``name`` in layout ``perm`` (current layout when None)."""
        if name in self.consts:
            data = self.consts[name]
            perm = perm or identity(data.ndim)
            key = ("const", name, perm)
            if key not in self.cache:
                self.cache[key] = self.add_const(name, np.ascontiguousarray(data.transpose(perm)).astype(np.float32))
            return self.cache[key]
        v = self.views[name]
        if perm is None or perm == v.perm:
            return v.ir
        key = ("view", name, perm)
        if key in self.cache:
            return self.cache[key]
        src = self.tensors[v.ir]
        new_shape = tuple(v.logical[p] for p in perm)
        out = self.fresh(name)
        same_order = [a for a in v.perm if v.logical[a] != 1] == [a for a in perm if v.logical[a] != 1]
        if same_order:
            self._add_node("reshape", name + "/layout", (v.ir,), out, new_shape, ReshapeAttrs(new_shape), src.origin, "layout")
        else:
            t = tuple(v.perm.index(p) for p in perm)
            self._add_node("transpose", name + "/layout", (v.ir,), out, new_shape, TransposeAttrs(t), src.origin, "layout")
        self.cache[key] = out
        return out

    def _add_node(self, op, node_name, inputs, out, shape, attrs, origin, source):
        self.tensors[out] = Tensor(out, tuple(shape), "float32", None, None, origin)
        self.nodes.append(Node(node_name, op, tuple(inputs), (out,), attrs, None, source))

    def emit(self, node: onnx.NodeProto, op: str, inputs: list[str], attrs, perm: tuple[int, ...], out_index: int = 0,
             ir_name: str | None = None) -> str:
        """Add IR node ``op`` computing ONNX output ``out_index`` of ``node``, physical layout ``perm``."""
        onnx_out = node.output[out_index]
        in_shapes = [self.tensors[i].shape for i in inputs]
        nd = Node(node.name, op, tuple(inputs), ("",), attrs, None, node.op_type)
        shape = op_def(op).infer_shapes(nd, in_shapes)[0]
        out = ir_name or onnx_out
        if out in self.tensors:
            out = self.fresh(out)
        self.tensors[out] = Tensor(out, tuple(shape), "float32", None, None, onnx_out)
        self.nodes.append(nd.replace(outputs=(out,)))
        logical = [0] * len(shape)
        for i, p in enumerate(perm):
            logical[p] = shape[i]
        self.views[onnx_out] = View(out, tuple(perm), tuple(logical))
        return out

    def alias(self, onnx_out: str, onnx_in: str) -> None:
        if onnx_in in self.consts:
            self.consts[onnx_out] = self.consts[onnx_in]
        else:
            self.views[onnx_out] = self.views[onnx_in]

    def attr(self, node: onnx.NodeProto, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    # ----- the import -----
    def run(self) -> Graph:
        g = self.model.graph
        for init in g.initializer:
            arr = _read_initializer(init)
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise UserError(
                    f"initializer '{init.name}' contains NaN or Inf values; the model is broken "
                    "(check training / export) and cannot be quantized"
                )
            self.consts[init.name] = arr
            self.elem_types[init.name] = init.data_type
        for vi in g.input:
            self.elem_types.setdefault(vi.name, vi.type.tensor_type.elem_type)
        for n in g.node:
            if n.op_type == "Constant":
                value = next((a.t for a in n.attribute if a.name == "value" and a.HasField("t")), None)
                if value is not None:
                    self.elem_types[n.output[0]] = value.data_type
                self._fold(n)
        inputs = []
        consumers: dict[str, list[str]] = {}
        for n in g.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n.op_type)
        for vi in g.input:
            if vi.name in self.consts:
                continue
            inputs.append(self._graph_input(vi, consumers.get(vi.name, [])))
        for idx, n in enumerate(g.node):
            if not n.name:
                n.name = f"{n.op_type}_{idx}"
            if n.op_type == "Constant":
                continue
            if n.domain not in ("", "ai.onnx"):
                raise UnsupportedError(self._unsupported_msg(n, f"custom domain '{n.domain}'"))
            known = [i for i in n.input if i]
            if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
                self._check_qdq_node(n)
            if n.op_type == "DequantizeLinear" and all(i in self.consts for i in n.input if i):
                self._dequantize_const(n)
                continue
            if n.op_type == "Shape" and n.input[0] in self.views:
                self._shape_of(n)
                continue
            if known and all(i in self.consts for i in known) and n.op_type not in ("RandomNormal",):
                self._fold(n)
                continue
            conv = CONVERTERS.get(n.op_type)
            if conv is None:
                raise UnsupportedError(self._unsupported_msg(n))
            conv(self, n)
        outputs, io_perm = [], {}
        for vi in g.output:
            if vi.name in self.consts or vi.name not in self.views:
                raise UnsupportedError(f"graph output '{vi.name}' is a constant; nothing to compute")
            v = self.views[vi.name]
            if v.ir in inputs or v.ir in outputs:
                out = self.fresh(vi.name)
                self._add_node("reshape", vi.name + "/copy", (v.ir,), out, self.tensors[v.ir].shape,
                               ReshapeAttrs(self.tensors[v.ir].shape), vi.name, "Identity")
                self.nodes[-1] = self.nodes[-1].replace(op="transpose", attrs=TransposeAttrs(identity(len(v.perm))))
                v = View(out, v.perm, v.logical)
            outputs.append(v.ir)
            io_perm[v.ir] = v.perm
        for name in inputs:
            io_perm.setdefault(name, self._input_perm[name])
        if not self.input_shapes:
            self._check_declared(list(g.output) + list(g.value_info))
        self._propagate_quant_through_layout()
        graph = Graph(self.graph_name, tuple(self.nodes), dict(self.tensors), tuple(inputs), tuple(outputs), io_perm)
        return graph.pruned()

    def _check_declared(self, infos) -> None:
        """Declared static shapes equal the shapes the import computed (ONNX's inference may not know a
        shape that constant folding does, e.g. behind a computed Reshape target)."""
        for vi in infos:
            if vi.name not in self.views or not vi.type.tensor_type.HasField("shape"):
                continue
            dims = vi.type.tensor_type.shape.dim
            declared = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
            computed = self.views[vi.name].logical
            if len(declared) != len(computed) or any(d not in (-1, c) for d, c in zip(declared, computed)):
                shown = [d if d >= 0 else "?" for d in declared]
                raise UserError(f"tensor '{vi.name}': the model declares shape {shown} but its operators compute "
                                f"{list(computed)}; fix the model's declared shapes (value_info / outputs) or re-export it")

    def _graph_input(self, vi: onnx.ValueInfoProto, consumer_ops: list[str]) -> str:
        tt = vi.type.tensor_type
        if tt.elem_type not in (onnx.TensorProto.FLOAT, _INT8, _UINT8) or (
                tt.elem_type in (_INT8, _UINT8) and set(consumer_ops) - {"DequantizeLinear", "Transpose", "Reshape"}):
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            raise UnsupportedError(
                f"input '{vi.name}' has type {dtype}; only float32 model inputs are supported "
                "(or int8 / uint8 inputs read by DequantizeLinear, as in QDQ models)"
            )
        if vi.name in self.input_shapes:
            shape = tuple(self.input_shapes[vi.name])
        else:
            dims = list(tt.shape.dim)
            if not dims and not tt.HasField("shape"):
                raise UserError(f"input '{vi.name}' has no shape; pass --input-shape {vi.name}=1,...")
            shape = []
            for axis, d in enumerate(dims):
                if d.HasField("dim_value") and d.dim_value <= 0 and axis > 0:
                    # (a batch axis of 0 or -1 is how some exporters write "dynamic": pinned to 1 below)
                    raise UserError(f"input '{vi.name}' declares dimension {d.dim_value} at axis {axis}; dimensions "
                                    f"must be positive: fix the model or pass --input-shape {vi.name}=1,...")
                if d.HasField("dim_value") and d.dim_value > 0:
                    shape.append(d.dim_value)
                elif axis == 0:
                    shape.append(1)  # the batch axis: we run one sample at a time
                else:
                    label = d.dim_param or "?"
                    raise UserError(
                        f"input '{vi.name}' has a dynamic dimension '{label}' at axis {axis} that cannot be pinned; "
                        f"re-export the model with a fixed input size or pass --input-shape {vi.name}=1,..."
                    )
            shape = tuple(shape)
        if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
            raise UserError(f"input '{vi.name}' has shape {list(shape)}, far beyond any microcontroller's memory; "
                            "check the model's input size")
        perm = identity(len(shape))
        if len(shape) == 4 and consumer_ops and all(op in NCHW_READERS for op in consumer_ops):
            perm = NHWC
        phys = tuple(shape[p] for p in perm)
        self.tensors[vi.name] = Tensor(vi.name, phys, "float32", None, None, vi.name)
        self.views[vi.name] = View(vi.name, perm, tuple(shape))
        self._input_perm[vi.name] = perm
        return vi.name

    def _propagate_quant_through_layout(self) -> None:
        """QDQ models quantize a tensor once; its reshaped / transposed views carry the same params."""
        import dataclasses

        changed = True
        while changed:
            changed = False
            for nd in self.nodes:
                if nd.op not in ("reshape", "transpose"):
                    continue
                a, b = self.tensors[nd.inputs[0]], self.tensors[nd.outputs[0]]
                if a.quant is None and b.quant is not None:
                    self.tensors[a.name] = dataclasses.replace(a, quant=b.quant)
                    changed = True
                elif b.quant is None and a.quant is not None:
                    self.tensors[b.name] = dataclasses.replace(b, quant=a.quant)
                    changed = True

    def _unsupported_msg(self, n: onnx.NodeProto, why: str = "") -> str:
        why = why or "operator not supported"
        return (
            f"node '{n.name}' uses op '{n.op_type}' ({why}). Supported ONNX ops: "
            + ", ".join(supported_onnx_ops())
        )

    def _check_qdq_node(self, n: onnx.NodeProto) -> None:
        """Refuse the QuantizeLinear / DequantizeLinear forms mcucompile cannot honour, naming the node and
        the reason: block-wise quantization (opset 21's ``block_size``) and integer types other than
        int8 / uint8 (and int32 for constant biases): int4 / uint4 / int16 / uint16 / float8."""
        block = self.attr(n, "block_size", 0)
        if block:
            raise UnsupportedError(f"node '{n.name}' ({n.op_type}): block-wise quantization (block_size={block}) is "
                                   "not supported; quantize per tensor or per channel (onnxruntime's quantize_static "
                                   "does by default)")
        q_type = self._qdq_type(n)
        allowed = (_INT8, _UINT8) + ((_INT32,) if n.op_type == "DequantizeLinear" and n.input[0] in self.consts else ())
        if q_type not in allowed:
            what = _type_name(q_type) if q_type else "an unknown type"
            raise UnsupportedError(f"node '{n.name}' ({n.op_type}): {what} quantization is not supported; mcucompile "
                                   "compiles int8 / uint8 tensors (and int32 biases): re-quantize with "
                                   "QuantType.QInt8 or QuantType.QUInt8")
        if n.op_type == "QuantizeLinear":
            self.elem_types[n.output[0]] = q_type

    def _qdq_type(self, n: onnx.NodeProto) -> int:
        """The integer type a Q node writes or a DQ node reads (ONNX rules: the zero point's type; else
        QuantizeLinear's ``output_dtype`` (opset 21), else uint8; DequantizeLinear: its input's type)."""
        zp = self.optional_input(n, 2)
        if zp:
            return self.elem_types.get(zp, onnx.helper.np_dtype_to_tensor_dtype(self.consts[zp].dtype)
                                       if zp in self.consts else 0)
        if n.op_type == "QuantizeLinear":
            return self.attr(n, "output_dtype", 0) or _UINT8
        x = n.input[0]
        if x in self.elem_types:
            return self.elem_types[x]
        return onnx.helper.np_dtype_to_tensor_dtype(self.consts[x].dtype) if x in self.consts else _INT8

    def _dequantize_const(self, n: onnx.NodeProto) -> None:
        """A dequantized constant: its real values, and its exact integers when mcucompile can keep them
        (int8 weights, int32 biases; uint8 values move to int8 by -128 with the zero point, exactly)."""
        ints = self.consts[n.input[0]]
        scale = self.consts[n.input[1]].astype(np.float32)
        zp = self.consts[n.input[2]] if self.optional_input(n, 2) else np.zeros_like(ints.reshape(-1)[:1])
        axis = self.attr(n, "axis", 1)
        _check_qparams(n, scale, zp, ints.dtype, ints.shape, axis if scale.size > 1 else None)
        nonzero = np.asarray(zp).reshape(-1)[np.asarray(zp).reshape(-1) != (128 if ints.dtype == np.uint8 else 0)]
        written = f"{ints.dtype} zero point {int(nonzero[0])}" if nonzero.size else ""
        if ints.dtype == np.uint8:
            ints = (ints.astype(np.int16) - 128).astype(np.int8)
            zp = (np.asarray(zp).astype(np.int16) - 128).astype(np.int8)
        shape = [1] * ints.ndim
        if scale.size > 1:
            shape[axis % ints.ndim] = -1
        with np.errstate(over="ignore", invalid="ignore"):
            real = (ints.astype(np.float32) - zp.astype(np.float32).reshape(shape)) * scale.reshape(shape)
        if not np.all(np.isfinite(real)):
            raise UserError(f"node '{n.name}' (DequantizeLinear): its scale {float(np.max(scale)):g} makes the "
                            "dequantized constant overflow float32; the model's quantization is broken: re-quantize it")
        self.consts[n.output[0]] = real.astype(np.float32)
        self.qinfo[n.output[0]] = (ints, scale.reshape(-1), np.asarray(zp).reshape(-1), axis % max(ints.ndim, 1))
        self.qnode[n.output[0]] = (n.name, written)

    def weight_source(self, node: onnx.NodeProto, name: str, out_axis: int) -> str | None:
        """``name`` when its exact integers can be the int8 weights of ``node`` (per tensor, or per channel
        along ONNX axis ``out_axis``, the output channels), else None (the real values are quantized by
        mcucompile, as a float model's). Asymmetric weights (a zero point other than 0 after the uint8
        shift) are refused, naming the DequantizeLinear node: the int8 kernels need symmetric weights."""
        if name not in self.qinfo:
            return None
        ints, scale, zp, axis = self.qinfo[name]
        if ints.dtype != np.int8:
            return None  # int32 values as weights: not a weight quantization mcucompile knows; requantized
        if np.any(zp != 0):
            dq, written = self.qnode[name]
            raise UnsupportedError(
                f"node '{dq}' (DequantizeLinear): the weights of '{node.name}' ({node.op_type}) are asymmetric int8 "
                f"weights ({written}); mcucompile's int8 kernels need symmetric weights, zero point 0 (128 for "
                "uint8): re-quantize with QuantType.QInt8 weights (symmetric, onnxruntime's default)")
        if scale.size > 1 and axis != out_axis % ints.ndim:
            return None  # per-channel along the input channels: requantized per output channel
        return name

    def bias_source(self, name: str) -> str | None:
        """``name`` when its exact integers are an int32 bias (zero point 0) to keep as they are, else None:
        an int8-quantized constant added to a layer's output (onnxruntime quantizes a MatMul's Add operand
        like an activation) has its own scale and zero point, so its real values are requantized."""
        if name not in self.qinfo:
            return None
        ints, _scale, zp, _axis = self.qinfo[name]
        return name if ints.dtype == np.int32 and not np.any(zp != 0) else None

    def set_activation_quant(self, ir: str, scale: float, zp: int) -> None:
        import dataclasses

        t = self.tensors[ir]
        self.tensors[ir] = dataclasses.replace(t, quant=QuantParams.per_tensor(scale, zp))

    def _shape_of(self, n: onnx.NodeProto) -> None:
        shape = np.array(self.views[n.input[0]].logical, np.int64)
        start = self.attr(n, "start", 0)
        end = self.attr(n, "end", None)
        self.consts[n.output[0]] = shape[start:end]

    def _fold(self, n: onnx.NodeProto) -> None:
        from onnx.reference import ReferenceEvaluator

        ins = [i for i in n.input if i]
        vis_in = [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(self.consts[i].dtype), None) for i in ins]
        vis_out = [onnx.helper.make_empty_tensor_value_info(o) for o in n.output if o]
        g = onnx.helper.make_graph([n], "fold", vis_in, vis_out)
        m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", self.opset)])
        try:
            # overflow to Inf / NaN is not reported here (as a stray warning line) but where the constant
            # is used: add_const refuses non-finite data with the tensor's name
            with np.errstate(all="ignore"):
                res = ReferenceEvaluator(m).run(None, {i: self.consts[i] for i in ins})
        except Exception as e:  # noqa: BLE001 - any evaluator failure is a model we cannot fold
            raise UnsupportedError(f"node '{n.name}' ({n.op_type}) on constants could not be folded: {e}") from None
        for name, val in zip([o for o in n.output if o], res):
            self.consts[name] = np.asarray(val)


# ---------------------------------------------------------------- validation


def _read_initializer(init: onnx.TensorProto) -> np.ndarray:
    """An initializer as numpy; one whose dims, data type and stored data disagree is the model's fault."""
    try:
        return numpy_helper.to_array(init)
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"initializer '{init.name}' cannot be read ({type(e).__name__}: {str(e)[:100]}): its dims "
                        f"{list(init.dims)}, data type and stored data disagree; re-export the model") from None


def _check_qparams(n: onnx.NodeProto, scale: np.ndarray, zp: np.ndarray, q_dtype, shape: tuple[int, ...],
                   axis: int | None) -> None:
    """QuantizeLinear / DequantizeLinear parameters as ONNX defines them: scales finite and positive, a
    zero point of the quantized type per scale, per-axis lengths equal to that axis's size."""
    where = f"node '{n.name}' ({n.op_type})"
    s = np.asarray(scale, np.float64).reshape(-1)
    bad = s[~(np.isfinite(s) & (s > 0))]
    if bad.size:
        raise UserError(f"{where} has scale {bad[0]:g}; quantization scales must be finite and positive: "
                        "re-quantize the model")
    z = np.asarray(zp)
    if z.size != s.size:
        raise UserError(f"{where} has {s.size} scales but {z.size} zero points; they must match: re-quantize the model")
    if np.dtype(z.dtype) != np.dtype(q_dtype):
        raise UserError(f"{where}: zero point of type {z.dtype} for {np.dtype(q_dtype)} values; ONNX requires the "
                        "same type: re-quantize the model")
    if s.size > 1:
        rank = len(shape)
        if axis is None or not -rank <= axis < rank or shape[axis % rank] != s.size:
            raise UserError(f"{where}: {s.size} per-axis scales along axis {axis} of a tensor of shape {list(shape)}; "
                            "the scale count must equal that axis's size: re-quantize the model")


def check_declared_shapes(model: onnx.ModelProto, path: Path,
                          input_shapes: dict[str, tuple[int, ...]] | None = None) -> None:
    """The model's declared shapes and types (graph outputs, value_info) must equal what ONNX's own shape
    inference computes from its operators. Inference runs in strict mode on a copy without the
    declarations (so an operator whose inputs contradict it is reported as such), then each declared
    tensor is compared with the inferred one, by name. With --input-shape pins, only types are compared
    (a pin legitimately changes the declared sizes)."""
    from onnx import shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.value_info[:]
    for vi in m.graph.output:
        vi.type.tensor_type.elem_type = onnx.TensorProto.UNDEFINED
        vi.type.tensor_type.ClearField("shape")
    for vi in m.graph.input:
        if input_shapes and vi.name in input_shapes:
            vi.type.tensor_type.shape.Clear()
            for d in input_shapes[vi.name]:
                vi.type.tensor_type.shape.dim.add().dim_value = int(d)
    try:
        inferred = shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError) as e:
        msg = re.sub(r"\[ShapeInferenceError\]\s*", "", " ".join(str(e).split()))
        raise UserError(f"{path}: the model's operators contradict its shapes or types ({msg[:300]}); "
                        "fix the model or re-export it") from None
    known = {v.name: v.type.tensor_type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        got = known.get(vi.name)
        if got is None or not vi.type.HasField("tensor_type"):
            continue
        want = vi.type.tensor_type
        if want.elem_type and got.elem_type and want.elem_type != got.elem_type:
            raise UserError(f"tensor '{vi.name}': the model declares type {_type_name(want.elem_type)} but its "
                            f"operators compute {_type_name(got.elem_type)}; fix the model's declared types "
                            "(value_info / outputs) or re-export it")
        if input_shapes or not want.HasField("shape") or not got.HasField("shape"):
            continue
        wd = [d.dim_value if d.HasField("dim_value") else None for d in want.shape.dim]
        gd = [d.dim_value if d.HasField("dim_value") else None for d in got.shape.dim]
        if len(wd) != len(gd) or any(a is not None and b is not None and a != b for a, b in zip(wd, gd)):
            show = lambda ds: [d if d is not None else "?" for d in ds]  # noqa: E731
            raise UserError(f"tensor '{vi.name}': the model declares shape {show(wd)} but its operators compute "
                            f"{show(gd)}; fix the model's declared shapes (value_info / outputs) or re-export it")


def _type_name(t: int) -> str:
    return onnx.TensorProto.DataType.Name(t).lower()


# ---------------------------------------------------------------- converters


def _window_from(imp: OnnxImporter, n: onnx.NodeProto, in_hw: tuple[int, int], kernel: tuple[int, int],
                 allow_ceil: bool = False) -> Window:
    strides = tuple(imp.attr(n, "strides", [1, 1]))
    dil = tuple(imp.attr(n, "dilations", [1, 1]))
    if len(strides) != 2 or len(dil) != 2:
        raise UnsupportedError(imp._unsupported_msg(n, "only 2-D windows are supported"))
    auto_pad = imp.attr(n, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for axis in range(2):
            out = -(-in_hw[axis] // strides[axis])
            eff_k = (kernel[axis] - 1) * dil[axis] + 1
            total = max(0, (out - 1) * strides[axis] + eff_k - in_hw[axis])
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        p4 = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    elif auto_pad == "VALID":
        p4 = (0, 0, 0, 0)
    else:
        p = imp.attr(n, "pads", [0, 0, 0, 0])
        if len(p) != 4:
            raise UnsupportedError(imp._unsupported_msg(n, "only 2-D windows are supported"))
        p4 = (p[0], p[1], p[2], p[3])
    if any(v < 0 for v in p4):
        raise UnsupportedError(imp._unsupported_msg(n, "negative pads"))
    win = Window(tuple(kernel), strides, dil, p4)
    if allow_ceil and imp.attr(n, "ceil_mode", 0):
        pads = list(p4)
        for axis in range(2):
            eff_k = (kernel[axis] - 1) * dil[axis] + 1
            size = in_hw[axis] + p4[axis] + p4[axis + 2] - eff_k
            out = -(-size // strides[axis]) + 1
            if (out - 1) * strides[axis] >= in_hw[axis] + p4[axis]:
                out -= 1
            need = (out - 1) * strides[axis] + eff_k - (in_hw[axis] + p4[axis] + p4[axis + 2])
            pads[axis + 2] += max(0, need)
        win = Window(tuple(kernel), strides, dil, tuple(pads))
    return win


def _require_4d(imp: OnnxImporter, n: onnx.NodeProto, name: str) -> None:
    if len(imp.logical_shape(name)) != 4:
        raise UnsupportedError(imp._unsupported_msg(n, f"only 4-D (N,C,H,W) inputs; got rank {len(imp.logical_shape(name))}"))


@converter("Conv", reads_nchw=True)
def _conv(imp: OnnxImporter, n):
    _require_4d(imp, n, n.input[0])
    w = imp.const_required(n, 1, "weight").astype(np.float32)
    if w.ndim != 4:
        raise UnsupportedError(imp._unsupported_msg(n, "only 2-D convolution"))
    bias = imp.const_required(n, 2, "bias").astype(np.float32) if imp.optional_input(n, 2) else None
    x = imp.view(n.input[0], NHWC)
    _, h, wd, cin = imp.tensors[x].shape
    cout, cin_g, kh, kw = w.shape
    groups = imp.attr(n, "group", 1)
    declared = imp.attr(n, "kernel_shape")
    if declared is not None and tuple(declared) != (kh, kw):
        raise UserError(f"node '{n.name}' (Conv): kernel_shape {list(declared)} differs from the weights' "
                        f"{[kh, kw]} (weights {list(w.shape)}); fix or re-export the model")
    win = _window_from(imp, n, (h, wd), (kh, kw))
    b = imp.add_const(n.input[2] if bias is not None else n.name + "_b", bias if bias is not None else np.zeros(cout, np.float32),
                      imp.bias_source(n.input[2]) if bias is not None else None, None, 0)
    w_src = imp.weight_source(n, n.input[1], 0)
    if groups == cin and groups > 1 and cin_g == 1:
        dw = lambda a: np.ascontiguousarray(a[:, 0].transpose(1, 2, 0))  # noqa: E731
        wt = imp.add_const(n.input[1], dw(w), w_src, dw, 2)
        imp.emit(n, "depthwise_conv2d", [x, wt, b], ConvAttrs(win, 1), NHWC)
    else:
        if cin != cin_g * groups:
            raise UnsupportedError(imp._unsupported_msg(n, "weight shape does not match input channels"))
        ohwi = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1))  # noqa: E731
        wt = imp.add_const(n.input[1], ohwi(w), w_src, ohwi, 0)
        imp.emit(n, "conv2d", [x, wt, b], ConvAttrs(win, groups), NHWC)


def _affine(imp: OnnxImporter, n, x_name: str, scale: np.ndarray, shift: np.ndarray, channel_axis: int,
            shift_source: str | None = None):
    """x * scale + shift per channel: a 1x1 depthwise conv (folded later into the producer if it can be)."""
    rank = len(imp.logical_shape(x_name))
    perm = channels_last(rank, channel_axis)
    x = imp.view(x_name, perm)
    c = imp.tensors[x].shape[-1]
    scale = np.broadcast_to(scale.astype(np.float32), (c,)).copy()
    shift = np.broadcast_to(shift.astype(np.float32), (c,)).copy()
    wt = imp.add_const(n.name + "_scale", scale.reshape(1, 1, c))
    b = imp.add_const(n.name + "_shift", shift, shift_source, lambda a: np.broadcast_to(a.reshape(-1), (c,)).copy(), 0)
    imp.emit(n, "depthwise_conv2d", [x, wt, b], ConvAttrs(Window((1, 1)), 1), perm)


@converter("BatchNormalization", reads_nchw=True)
def _batchnorm(imp: OnnxImporter, n):
    gamma, beta, mean, var = (imp.const_required(n, i, what).astype(np.float64) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
    eps = imp.attr(n, "epsilon", 1e-5)
    c = imp.logical_shape(n.input[0])[1] if len(imp.logical_shape(n.input[0])) > 1 else None
    for what, v in (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var)):
        if v.shape != (c,):
            raise UserError(f"node '{n.name}' (BatchNormalization): {what} has shape {list(v.shape)}; it must be "
                            f"[{c}] (one value per channel): fix or re-export the model")
    if not (np.isfinite(eps) and eps >= 0) or np.any(var + eps <= 0):
        raise UserError(f"node '{n.name}' (BatchNormalization): var + epsilon must be positive (epsilon {eps:g}, "
                        f"smallest var {float(var.min()):g}); the model is broken: re-export it")
    scale = gamma / np.sqrt(var + eps)
    _affine(imp, n, n.input[0], scale, beta - mean * scale, 1)


def _channel_vector(imp: OnnxImporter, x_name: str, c: np.ndarray) -> tuple[np.ndarray, int] | None:
    """If constant ``c`` broadcasts against x along one axis only (or is a scalar), (vector, axis)."""
    xs = imp.logical_shape(x_name)
    if c.size == 1:
        return c.reshape(-1), len(xs) - 1 if len(xs) != 4 else 1
    if c.ndim > len(xs):
        return None
    cs = (1,) * (len(xs) - c.ndim) + tuple(c.shape)
    axes = [i for i, d in enumerate(cs) if d != 1]
    if len(axes) == 1 and cs[axes[0]] == xs[axes[0]]:
        return c.reshape(-1), axes[0]
    return None


def _binary(imp: OnnxImporter, n, op: str):
    a, b = n.input[0], n.input[1]
    const_side = 1 if imp.is_const(b) else (0 if imp.is_const(a) else None)
    if const_side is not None:
        x = (a, b)[1 - const_side]
        c = imp.const((a, b)[const_side]).astype(np.float64)
        vec = _channel_vector(imp, x, c)
        if vec is not None and len(imp.logical_shape(x)) in (2, 4):
            v, axis = vec
            kind = n.op_type
            if kind == "Add":
                return _affine(imp, n, x, np.ones_like(v), v, axis, imp.bias_source((a, b)[const_side]))
            if kind == "Mul":
                return _affine(imp, n, x, v, np.zeros_like(v), axis)
            if kind == "Sub":
                return _affine(imp, n, x, -np.ones_like(v), v, axis) if const_side == 0 else _affine(imp, n, x, np.ones_like(v), -v, axis)
            if kind == "Div" and const_side == 1:
                return _affine(imp, n, x, 1.0 / v, np.zeros_like(v), axis)
        if n.op_type == "Sub" and const_side == 1:
            imp.consts[b + "/neg"] = -c
            b = b + "/neg"
            op = "add"
        elif n.op_type == "Div" and const_side == 1:
            imp.consts[b + "/inv"] = 1.0 / c
            b = b + "/inv"
            op = "mul"
        elif n.op_type in ("Sub", "Div"):
            raise UnsupportedError(imp._unsupported_msg(n, f"{n.op_type} with a constant first operand"))
    elif n.op_type in ("Sub", "Div"):
        raise UnsupportedError(imp._unsupported_msg(n, f"{n.op_type} of two activations"))
    ra, rb = len(imp.logical_shape(a)), len(imp.logical_shape(b))
    rank = max(ra, rb)
    main = a if (not imp.is_const(a) and ra == rank) else b
    perm = imp.perm_of(main)
    names = []
    for name in (a, b):
        if len(imp.logical_shape(name)) < rank:
            if imp.is_const(name):
                imp.consts[name + "/bc"] = imp.const(name).reshape((1,) * (rank - imp.const(name).ndim) + imp.const(name).shape)
                name = name + "/bc"
            else:
                v = imp.views[name]
                if perm != identity(rank):
                    raise UnsupportedError(imp._unsupported_msg(n, "broadcast of a lower-rank activation in a permuted layout"))
                shape = (1,) * (rank - len(v.logical)) + v.logical
                src = imp.view(name, identity(len(v.logical)))
                out = imp.fresh(name)
                imp._add_node("reshape", name + "/bc", (src,), out, shape, ReshapeAttrs(shape), imp.tensors[src].origin, "Unsqueeze")
                imp.views[name + "/bc"] = View(out, identity(rank), shape)
                name = name + "/bc"
        names.append(imp.view(name, perm))
    imp.emit(n, op, names, ElementwiseAttrs(), perm)


@converter("Add", reads_nchw=True)
def _add(imp, n):
    _binary(imp, n, "add")


@converter("Sub", reads_nchw=True)
def _sub(imp, n):
    _binary(imp, n, "add")


@converter("Mul", reads_nchw=True)
def _mul(imp, n):
    _binary(imp, n, "mul")


@converter("Div", reads_nchw=True)
def _div(imp, n):
    _binary(imp, n, "mul")


def _unary(imp, n, attrs: UnaryAttrs):
    x = n.input[0]
    imp.emit(n, "unary", [imp.view(x)], attrs, imp.perm_of(x))


def _activation_params(imp, n, what: str) -> QuantParams:
    """The per-tensor params of activation Q/DQ node ``n`` in mcucompile's int8 form: a uint8 tensor is
    the int8 tensor holding ``value - 128`` with zero point ``zp - 128`` (the same real values, exactly),
    so the IR, the kernels and the library's inputs and outputs are int8 only."""
    scale = imp.const_required(n, 1, f"{what} scale")
    if imp.optional_input(n, 2):
        zp = imp.const_required(n, 2, "zero point")
    else:
        zp = np.zeros((), onnx.helper.tensor_dtype_to_np_dtype(imp._qdq_type(n)))
    if scale.size != 1:
        raise UnsupportedError(f"node '{n.name}' ({n.op_type}): per-channel (axis) quantization of an activation "
                               f"('{n.input[0]}'); mcucompile quantizes activations per tensor: re-quantize the model "
                               "with per-tensor activations (per_channel applies to weights only)")
    _check_qparams(n, scale, zp, zp.dtype, imp.logical_shape(n.input[0]), None)
    shift = 128 if zp.dtype == np.uint8 else 0
    return QuantParams.per_tensor(float(np.float32(scale.reshape(-1)[0])), int(zp.reshape(-1)[0]) - shift)


@converter("QuantizeLinear")
def _quantize_linear(imp, n):
    q = _activation_params(imp, n, "y")
    x = n.input[0]
    v = imp.views[x]
    t = imp.tensors[v.ir]
    if t.quant is None or t.quant.same_as(q):
        imp.set_activation_quant(v.ir, q.s, q.zp)
        imp.alias(n.output[0], x)
        return
    # the tensor is already quantized differently (a DQ -> Q pair with other params): a requantization
    out = imp.emit(n, "unary", [v.ir], UnaryAttrs("identity", semantics="requantize"), v.perm)
    imp.set_activation_quant(out, q.s, q.zp)


@converter("DequantizeLinear")
def _dequantize_linear(imp, n):
    x = n.input[0]
    if x not in imp.views:
        raise UnsupportedError(f"node '{n.name}' (DequantizeLinear): its scale or zero point is computed, not a "
                               "constant initializer; mcucompile needs constant quantization parameters")
    q = _activation_params(imp, n, "x")
    v = imp.views[x]
    t = imp.tensors[v.ir]
    if t.quant is None:
        imp.set_activation_quant(v.ir, q.s, q.zp)  # an int8 / uint8 graph input
    elif not t.quant.same_as(q):
        raise UnsupportedError(f"node '{n.name}' (DequantizeLinear): dequantizes '{x}' with scale {q.s:g} / zero "
                               f"point {q.zp} but it was quantized with {t.quant.s:g} / {t.quant.zp} (int8 form); "
                               "a model must dequantize a tensor with the parameters that quantized it")
    imp.alias(n.output[0], x)


@converter("Relu", reads_nchw=True)
def _relu(imp, n):
    _unary(imp, n, UnaryAttrs("identity", activation=Activation(0.0)))


@converter("Clip", reads_nchw=True)
def _clip(imp, n):
    if imp.opset < 11:
        lo, hi = imp.attr(n, "min", float("-inf")), imp.attr(n, "max", float("inf"))
    else:
        lo = _scalar(imp, n, 1, "min") if imp.optional_input(n, 1) else float("-inf")
        hi = _scalar(imp, n, 2, "max") if imp.optional_input(n, 2) else float("inf")
    _unary(imp, n, UnaryAttrs("identity", activation=Activation(lo, hi)))


def _scalar(imp, n, index: int, what: str) -> float:
    v = imp.const_required(n, index, what)
    if v.size != 1:
        raise UserError(f"node '{n.name}' ({n.op_type}): {what} has shape {list(v.shape)}; it must be a scalar: "
                        "fix or re-export the model")
    return float(v.reshape(-1)[0])


@converter("Sigmoid", reads_nchw=True)
def _sigmoid(imp, n):
    _unary(imp, n, UnaryAttrs("sigmoid"))


@converter("Tanh", reads_nchw=True)
def _tanh(imp, n):
    _unary(imp, n, UnaryAttrs("tanh"))


@converter("HardSigmoid", reads_nchw=True)
def _hardsigmoid(imp, n):
    _unary(imp, n, UnaryAttrs("hardsigmoid", imp.attr(n, "alpha", 0.2), imp.attr(n, "beta", 0.5)))


@converter("HardSwish", reads_nchw=True)
def _hardswish(imp, n):
    _unary(imp, n, UnaryAttrs("hardswish"))


@converter("LeakyRelu", reads_nchw=True)
def _leakyrelu(imp, n):
    _unary(imp, n, UnaryAttrs("leakyrelu", imp.attr(n, "alpha", 0.01)))


def _str_attr(imp, n, name: str, default: str) -> str:
    v = imp.attr(n, name, default)
    return v.decode() if isinstance(v, bytes) else v


@converter("Resize", "Upsample", reads_nchw=True)
def _resize(imp, n):
    """Resize over H, W only, its attributes as the model states them (``ResizeMapping``); the op refuses
    (``supports``) any combination whose source index is not y // s somewhere, naming the position."""
    x = n.input[0]
    _require_4d(imp, n, x)
    mode = _str_attr(imp, n, "mode", "nearest")
    shape = imp.logical_shape(x)  # N, C, H, W
    scales = sizes = None
    if n.op_type == "Upsample" and imp.opset < 9:
        scales = [float(v) for v in imp.attr(n, "scales", [])]
    elif n.op_type == "Upsample" or imp.opset < 11:
        scales = [float(v) for v in imp.const_required(n, 1, "scales").reshape(-1)]
    else:
        if imp.optional_input(n, 3):
            sizes = [int(v) for v in imp.const_required(n, 3, "sizes").reshape(-1)]
        elif imp.optional_input(n, 2) and imp.const_required(n, 2, "scales").size:
            scales = [float(v) for v in imp.const_required(n, 2, "scales").reshape(-1)]
        else:
            raise UserError(f"node '{n.name}' (Resize) has neither scales nor sizes; fix or re-export the model")
    axes = [int(a) % 4 for a in imp.attr(n, "axes", [0, 1, 2, 3])]
    given = sizes if sizes is not None else scales
    if len(given) != len(axes):
        raise UserError(f"node '{n.name}' ({n.op_type}): {len(given)} {'sizes' if sizes is not None else 'scales'} "
                        f"for {len(axes)} axes of a 4-D input; fix or re-export the model")
    policy = _str_attr(imp, n, "keep_aspect_ratio_policy", "stretch") if sizes is not None else "stretch"
    out, scale = list(shape), [1.0] * 4
    if policy in ("not_larger", "not_smaller"):
        # one scale for all the given axes (the smallest / largest ratio), sizes rounded half up: the output
        # the model computes (and the shape it declares), which the op then refuses naming the policy
        ratio = (min if policy == "not_larger" else max)(v / shape[a] for a, v in zip(axes, given))
        for a in axes:
            out[a], scale[a] = int(ratio * shape[a] + 0.5), ratio
    else:
        for a, v in zip(axes, given):
            if sizes is not None:
                out[a], scale[a] = int(v), v / shape[a]
            else:
                out[a], scale[a] = int(np.floor(shape[a] * v)), float(v)
    if out[0] != shape[0] or out[1] != shape[1]:
        raise UnsupportedError(imp._unsupported_msg(n, "resizing the batch or channel axis (only H, W)"))
    if imp.opset >= 11 and n.op_type == "Resize":
        cmode = _str_attr(imp, n, "coordinate_transformation_mode", "half_pixel")
        nmode = _str_attr(imp, n, "nearest_mode", "round_prefer_floor")
    else:  # Upsample and Resize-10: asymmetric coordinates, floor (onnxruntime's "simple" nearest when upsampling)
        cmode, nmode = "asymmetric", "floor"
    mapping = ResizeMapping("onnx", mode, coordinate_transformation_mode=cmode, nearest_mode=nmode,
                            scales=(scale[2], scale[3]), keep_aspect_ratio_policy=policy)
    attrs = ResizeAttrs((max(1, out[2] // shape[2]), max(1, out[3] // shape[3])), size=(out[2], out[3]),
                        mapping=mapping)
    imp.emit(n, "resize_nearest", [imp.view(x, NHWC)], attrs, NHWC)


@converter("PRelu", reads_nchw=True)
def _prelu(imp, n):
    """One slope per channel (axis 1, e.g. PyTorch's [C, 1, 1]) or a single one, by ONNX broadcasting; any
    other slope is given to the op as it broadcasts (which refuses it)."""
    x = n.input[0]
    slope = imp.const_required(n, 1, "slope").astype(np.float64)
    shape = imp.logical_shape(x)
    rank = len(shape)
    try:
        if slope.ndim > rank:
            raise ValueError
        full = np.broadcast_to(slope.reshape((1,) * (rank - slope.ndim) + slope.shape), shape)
    except ValueError:
        raise UserError(f"node '{n.name}' (PRelu): slope of shape {list(slope.shape)} does not broadcast to the input "
                        f"{list(shape)}; fix or re-export the model") from None
    varying = [a for a in range(rank) if shape[a] > 1 and np.ptp(full, axis=a).max() > 0]
    channel = 1 if rank >= 2 else 0
    if not varying:
        perm, alpha = imp.perm_of(x), full.reshape(-1)[:1]
    elif varying == [channel]:
        perm = channels_last(rank, channel)
        alpha = np.moveaxis(full, channel, -1).reshape(-1, shape[channel])[0]
    else:  # varies along other axes too: as the model gives it (the op refuses it, naming the axes: NHWC for
        # a 4-D map, else the model's own numbering)
        perm = NHWC if rank == 4 else identity(rank)
        alpha = full.transpose(perm)
    a = imp.add_const(n.name + "_slope", np.ascontiguousarray(alpha, np.float32))
    imp.emit(n, "prelu", [imp.view(x, perm), a], PreluAttrs(), perm)


@converter("Identity", "Dropout", reads_nchw=True)
def _identity(imp, n):
    if len(n.output) > 1 and n.output[1]:
        raise UnsupportedError(imp._unsupported_msg(n, "the Dropout mask output"))
    if n.op_type == "Dropout" and imp.optional_input(n, 2):
        training = imp.const_required(n, 2, "training_mode")
        if bool(np.asarray(training).reshape(-1)[0]):
            raise UnsupportedError(imp._unsupported_msg(n, "Dropout in training mode (export the model in eval mode)"))
    imp.alias(n.output[0], n.input[0])


@converter("Cast", reads_nchw=True)
def _cast(imp, n):
    if imp.attr(n, "to") != onnx.TensorProto.FLOAT:
        raise UnsupportedError(imp._unsupported_msg(n, "Cast of an activation to a non-float type"))
    imp.alias(n.output[0], n.input[0])


def _fully_connected(imp, n, w_out_in: np.ndarray, bias: np.ndarray, w_source: str | None = None,
                     w_transform=lambda a: np.ascontiguousarray(a.T), b_source: str | None = None):
    x = n.input[0]
    rank = len(imp.logical_shape(x))
    perm = imp.perm_of(x)
    if perm[-1] != rank - 1:
        perm = identity(rank)
    xi = imp.view(x, perm)
    wt = imp.add_const(n.name + "_W", np.ascontiguousarray(w_out_in.astype(np.float32)), w_source, w_transform, 0)
    b = imp.add_const(n.name + "_B", bias.astype(np.float32), b_source, lambda a: a.reshape(-1), 0)
    imp.emit(n, "fully_connected", [xi, wt, b], FullyConnectedAttrs(), perm)


@converter("MatMul")
def _matmul(imp, n):
    w = imp.const_required(n, 1, "second MatMul operand (weights)")
    if w.ndim != 2 or imp.is_const(n.input[0]):
        raise UnsupportedError(imp._unsupported_msg(n, "MatMul needs an activation times a 2-D constant"))
    _fully_connected(imp, n, w.T, np.zeros(w.shape[1], np.float32), imp.weight_source(n, n.input[1], 1))


@converter("Gemm")
def _gemm(imp, n):
    if imp.attr(n, "transA", 0):
        raise UnsupportedError(imp._unsupported_msg(n, "transA=1"))
    w = imp.const_required(n, 1, "B (weights)").astype(np.float64)
    w = w if imp.attr(n, "transB", 0) else w.T
    w = w * imp.attr(n, "alpha", 1.0)
    c = imp.const_required(n, 2, "C (bias)").astype(np.float64) if imp.optional_input(n, 2) else np.zeros(1)
    if c.ndim == 2 and c.shape[0] != 1:
        raise UnsupportedError(imp._unsupported_msg(n, "bias C varying along the batch axis"))
    if c.ndim > 2 or c.size not in (1, w.shape[0]):
        raise UserError(f"node '{n.name}' (Gemm): bias C of shape {list(c.shape)} for {w.shape[0]} outputs; "
                        "fix or re-export the model")
    bias = np.broadcast_to(c * imp.attr(n, "beta", 1.0), (1, w.shape[0])).reshape(-1)
    # a QDQ Gemm's exact integers are kept when alpha / beta do not scale them
    trans_b = imp.attr(n, "transB", 0)
    exact = imp.attr(n, "alpha", 1.0) == 1.0 and imp.attr(n, "beta", 1.0) == 1.0
    w_src = imp.weight_source(n, n.input[1], 0 if trans_b else 1) if exact else None
    b_src = imp.bias_source(n.input[2]) if exact and imp.optional_input(n, 2) and c.size == w.shape[0] else None
    _fully_connected(imp, n, w, bias, w_src, (lambda a: np.ascontiguousarray(a)) if trans_b else
                     (lambda a: np.ascontiguousarray(a.T)), b_src)


def _pool(imp, n, op: str, kernel=None):
    _require_4d(imp, n, n.input[0])
    if len(n.output) > 1 and n.output[1]:
        raise UnsupportedError(imp._unsupported_msg(n, "MaxPool indices output"))
    x = imp.view(n.input[0], NHWC)
    _, h, w, _ = imp.tensors[x].shape
    if kernel is None:
        kernel = tuple(imp.attr(n, "kernel_shape"))
        if len(kernel) != 2:
            raise UnsupportedError(imp._unsupported_msg(n, "only 2-D pooling"))
        win = _window_from(imp, n, (h, w), kernel, allow_ceil=True)
        if op == "avg_pool2d" and imp.attr(n, "count_include_pad", 0) and any(win.pads):
            # count_include_pad=1 is an explicit zero pad followed by an unpadded average
            if imp.attr(n, "ceil_mode", 0):
                raise UnsupportedError(imp._unsupported_msg(n, "count_include_pad with ceil_mode"))
            pt, pl, pb, pr = win.pads
            padded = imp.fresh(n.output[0] + "_pad")
            shape = (1, h + pt + pb, w + pl + pr, imp.tensors[x].shape[3])
            imp._add_node("pad", n.name + "/pad", (x,), padded, shape, PadAttrs(((0, 0), (pt, pb), (pl, pr), (0, 0))),
                          n.input[0], "Pad")
            x = padded
            win = Window(win.kernel, win.stride, win.dilation)
    else:
        win = Window(kernel)
    imp.emit(n, op, [x], PoolAttrs(win), NHWC)


@converter("MaxPool", reads_nchw=True)
def _maxpool(imp, n):
    if imp.attr(n, "storage_order", 0):
        raise UnsupportedError(imp._unsupported_msg(n, "storage_order=1"))
    _pool(imp, n, "max_pool2d")


@converter("AveragePool", reads_nchw=True)
def _avgpool(imp, n):
    _pool(imp, n, "avg_pool2d")


@converter("GlobalAveragePool", reads_nchw=True)
def _gap(imp, n):
    s = imp.logical_shape(n.input[0])
    _require_4d(imp, n, n.input[0])
    _pool(imp, n, "avg_pool2d", (s[2], s[3]))


@converter("GlobalMaxPool", reads_nchw=True)
def _gmp(imp, n):
    s = imp.logical_shape(n.input[0])
    _require_4d(imp, n, n.input[0])
    _pool(imp, n, "max_pool2d", (s[2], s[3]))


@converter("ReduceMean", reads_nchw=True)
def _reduce_mean(imp, n):
    x = n.input[0]
    shape = imp.logical_shape(x)
    rank = len(shape)
    if imp.opset >= 18 and imp.optional_input(n, 1):
        axes = list(imp.const_required(n, 1, "axes"))
    else:
        axes = list(imp.attr(n, "axes", list(range(rank))))
    axes = sorted(a % rank for a in axes)
    if not axes:  # an empty axes input (opset 18): all axes, or with noop_with_empty_axes none (the input)
        if imp.attr(n, "noop_with_empty_axes", 0):
            imp.alias(n.output[0], x)
            return
        axes = list(range(rank))
    keep = imp.attr(n, "keepdims", 1)
    perm = imp.perm_of(x)
    phys_axes = sorted(perm.index(a) for a in axes)
    if rank == 4 and phys_axes != [1, 2] and axes == [2, 3]:
        perm, phys_axes = NHWC, [1, 2]
    if rank == 4 and phys_axes == [1, 2]:
        xi = imp.view(x, perm)
        _, h, w, _ = imp.tensors[xi].shape
        op, attrs = "avg_pool2d", PoolAttrs(Window((h, w)))
    else:  # the mean op refuses (supports) any axes but H, W of a 4-D map, naming them: in NHWC for a 4-D
        # map (N, H, W, C as the message says), else as the model numbers them
        perm = NHWC if rank == 4 else identity(rank)
        xi = imp.view(x, perm)
        op, attrs = "mean", MeanAttrs(tuple(sorted(perm.index(a) for a in axes)))
    out_ir = imp.emit(n, op, [xi], attrs, perm, ir_name=n.output[0] + ("" if keep else "__keep"))
    if not keep:
        v = imp.views[n.output[0]]
        logical = tuple(d for i, d in enumerate(v.logical) if i not in axes)
        kept = [a for a in range(len(v.logical)) if a not in axes]
        new_perm = tuple(kept.index(a) for a in v.perm if a not in axes)
        phys = tuple(logical[p] for p in new_perm)
        out = n.output[0]
        imp._add_node("reshape", n.name + "/squeeze", (out_ir,), out, phys, ReshapeAttrs(phys), n.output[0], "ReduceMean")
        imp.views[n.output[0]] = View(out, new_perm, logical)


@converter("Concat", reads_nchw=True)
def _concat(imp, n):
    ins = [i for i in n.input if i]
    first = next((i for i in ins if not imp.is_const(i)), None)
    if first is None:
        raise UnsupportedError(imp._unsupported_msg(n, "all inputs constant"))
    rank = len(imp.logical_shape(first))
    axis = imp.attr(n, "axis") % rank
    perm = imp.perm_of(first)
    names = [imp.view(i, perm) for i in ins]
    imp.emit(n, "concat", names, ConcatAttrs(perm.index(axis)), perm)


@converter("Pad", reads_nchw=True)
def _pad(imp, n):
    mode = imp.attr(n, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    x = n.input[0]
    rank = len(imp.logical_shape(x))
    if imp.opset < 11:
        pads = list(imp.attr(n, "pads"))
        value = imp.attr(n, "value", 0.0)
    else:
        pads = [int(v) for v in imp.const_required(n, 1, "pads")]
        value = _scalar(imp, n, 2, "constant_value") if imp.optional_input(n, 2) else 0.0
    axes = list(range(rank))
    if imp.optional_input(n, 3):
        axes = [int(a) % rank for a in imp.const_required(n, 3, "axes")]
    if len(pads) != 2 * len(axes):
        raise UserError(f"node '{n.name}' (Pad): {len(pads)} pads for {len(axes)} axes (two per axis); "
                        "fix or re-export the model")
    begin, end = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[i + len(axes)]
    perm = imp.perm_of(x)
    xi = imp.view(x, perm)
    phys = tuple((begin[p], end[p]) for p in perm)
    imp.emit(n, "pad", [xi], PadAttrs(phys, float(value), mode), perm)


@converter("Softmax")
def _softmax(imp, n):
    x = n.input[0]
    shape = imp.logical_shape(x)
    rank = len(shape)
    axis = imp.attr(n, "axis", -1 if imp.opset >= 13 else 1) % rank
    if imp.opset < 13 and axis != rank - 1:
        # opset < 13: softmax over the flattened trailing axes
        rows = int(np.prod(shape[:axis], dtype=np.int64))
        flat = (rows, int(np.prod(shape[axis:], dtype=np.int64)))
        xi = imp.view(x, identity(rank))
        tmp = imp.fresh(n.output[0])
        imp._add_node("reshape", n.name + "/flatten", (xi,), tmp, flat, ReshapeAttrs(flat), x, "Softmax")
        sm = imp.fresh(n.output[0])
        imp.tensors[sm] = Tensor(sm, flat, "float32", None, None, n.output[0])
        imp.nodes.append(Node(n.name, "softmax", (tmp,), (sm,), SoftmaxAttrs(), None, "Softmax"))
        imp._add_node("reshape", n.name + "/unflatten", (sm,), n.output[0], shape, ReshapeAttrs(shape), n.output[0], "Softmax")
        imp.views[n.output[0]] = View(n.output[0], identity(rank), shape)
        return
    perm = imp.perm_of(x)
    if perm[-1] != axis:
        perm = channels_last(rank, axis)
    imp.emit(n, "softmax", [imp.view(x, perm)], SoftmaxAttrs(), perm)


def _reshape_to(imp, n, new_shape: tuple[int, ...]):
    x = n.input[0]
    src = imp.view(x, identity(len(imp.logical_shape(x))))
    imp.emit(n, "reshape", [src], ReshapeAttrs(tuple(int(d) for d in new_shape)), identity(len(new_shape)))


@converter("Reshape")
def _reshape(imp, n):
    target = [int(v) for v in imp.const_required(n, 1, "shape")]
    in_shape = imp.logical_shape(n.input[0])
    allowzero = imp.attr(n, "allowzero", 0)
    out = [in_shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(target)]
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        out[out.index(-1)] = int(np.prod(in_shape, dtype=np.int64)) // max(known, 1)
    if int(np.prod(out, dtype=np.int64)) != int(np.prod(in_shape, dtype=np.int64)):
        raise UserError(f"node '{n.name}' (Reshape): cannot reshape {list(in_shape)} to {target}")
    _reshape_to(imp, n, tuple(out))


@converter("Flatten")
def _flatten(imp, n):
    shape = imp.logical_shape(n.input[0])
    axis = imp.attr(n, "axis", 1) % (len(shape) + 1) if shape else 0
    _reshape_to(imp, n, (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64))))


def _axes_of(imp, n) -> list[int] | None:
    if imp.optional_input(n, 1):
        return [int(a) for a in imp.const_required(n, 1, "axes")]
    a = imp.attr(n, "axes")
    return list(a) if a is not None else None


@converter("Squeeze")
def _squeeze(imp, n):
    shape = imp.logical_shape(n.input[0])
    axes = _axes_of(imp, n)
    axes = [a % len(shape) for a in axes] if axes is not None else [i for i, d in enumerate(shape) if d == 1]
    _reshape_to(imp, n, tuple(d for i, d in enumerate(shape) if i not in axes))


@converter("Unsqueeze")
def _unsqueeze(imp, n):
    shape = list(imp.logical_shape(n.input[0]))
    axes = _axes_of(imp, n)
    rank = len(shape) + len(axes)
    for a in sorted(x % rank for x in axes):
        shape.insert(a, 1)
    _reshape_to(imp, n, tuple(shape))


@converter("Transpose")
def _transpose(imp, n):
    x = n.input[0]
    v = imp.views[x]
    rank = len(v.logical)
    p = tuple(imp.attr(n, "perm", list(reversed(range(rank)))))
    if sorted(p) != list(range(rank)):
        raise UserError(f"node '{n.name}' (Transpose): perm {list(p)} is not a permutation of the {rank} axes; "
                        "fix or re-export the model")
    inv = tuple(np.argsort(p))
    new_perm = tuple(int(inv[a]) for a in v.perm)
    imp.views[n.output[0]] = View(v.ir, new_perm, tuple(v.logical[a] for a in p))


# ---------------------------------------------------------------- entry point


def load_onnx(path: str | os.PathLike, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Read an ONNX file into an IR graph (float, NHWC, unfused: run the canonicalize passes next)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the path of an .onnx file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise UserError(f"{path} is not a valid ONNX model ({type(e).__name__}: {str(e)[:120]}); "
                        "check the file is complete and re-export it") from None
    if not model.graph.node and not model.graph.output:
        raise UserError(f"{path} is not a valid ONNX model (no graph found); check the file is complete and re-export it")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{path} is not a valid ONNX model: {str(e).splitlines()[0][:200]}; re-export it") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise UnsupportedError(f"{path} uses ONNX opset {opset}; mcucompile reads opsets {MIN_OPSET} to "
                               f"{onnx.defs.onnx_opset_version()} (onnxruntime runs none older): convert it with "
                               "onnx.version_converter.convert_version(model, 13)")
    check_declared_shapes(model, path, input_shapes)
    name = re.sub(r"[^0-9a-zA-Z_]", "_", path.stem) or "model"
    from . import check_graph

    return check_graph(OnnxImporter(model, name, input_shapes).run())
