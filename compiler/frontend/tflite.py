"""int8 .tflite -> IR, keeping the model's own scales, zero points and per-channel parameters.

The flatbuffer is read with the pure-Python ``tflite`` package (no TensorFlow). Activations keep the
quantization the model carries (as presets the quantizer takes instead of calibrating); weights and
biases keep their exact integers. Elementwise functions with TFLite-specific integer algorithms
(LOGISTIC, TANH, HARD_SWISH, int8 QUANTIZE) become lookup tables computed the way TFLite Micro does.
A float input followed by QUANTIZE (or DEQUANTIZE before a float output) marks the int8 boundary.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UnsupportedError, UserError
from ..ir import Activation, Graph, Node, QuantParams, Tensor
from ..ir.graph import scale_problem
from ..ops import check_supported, op_def
from ..ops.conv import ConvAttrs
from ..ops.data_movement import ConcatAttrs, PadAttrs, ReshapeAttrs
from ..ops.elementwise import ElementwiseAttrs
from ..ops.fully_connected import FullyConnectedAttrs
from ..ops.mean import MeanAttrs
from ..ops.pooling import PoolAttrs
from ..ops.prelu import PreluAttrs
from ..ops.resize import ResizeAttrs, ResizeMapping
from ..ops.spatial import Window
from ..ops.unary import SoftmaxAttrs, UnaryAttrs

TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
                8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource",
                14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16"}
NUMPY_TYPES = {"float32": np.float32, "int32": np.int32, "int8": np.int8, "uint8": np.uint8, "int64": np.int64,
               "int16": np.int16, "float16": np.float16, "bool": np.bool_, "float64": np.float64,
               "uint32": np.uint32, "uint16": np.uint16, "uint64": np.uint64}
# zero points TFLite allows per type: int8 activations and weights span the type; int16 and int32
# (biases) are symmetric
ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
SCHEMA_VERSION = 3
# no tensor of a model meant for a microcontroller comes near this (elements); bigger means a broken shape
MAX_ELEMENTS = 1 << 28
ACTIVATIONS = {0: Activation(), 1: Activation(0.0), 2: Activation(-1.0, 1.0), 3: Activation(0.0, 6.0)}


@dataclass
class TfliteTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None
    quant: QuantParams | None


Converter = Callable[["TfliteImporter", "object", list[int], list[int]], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*names: str):
    def deco(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return deco


def supported_tflite_ops() -> list[str]:
    return sorted(CONVERTERS)


class _Flatbuffer:
    """Bounds-checked walk of the parts of a .tflite flatbuffer that the importer reads.

    The ``tflite`` package trusts every offset (a damaged file fails deep inside it with struct.error,
    IndexError or a bogus huge vector), so the structure is checked first: every table's vtable, every
    vector's length and every string lie inside the file. A file that passes can be read without a
    reader error; what the values mean is validated afterwards, field by field.
    """

    def __init__(self, buf: bytes, path: Path):
        self.buf, self.n, self.path = buf, len(buf), path

    def corrupt(self, what: str) -> UserError:
        return UserError(f"{self.path} is not a valid TFLite model: {what} (the file is truncated or damaged); "
                         "re-export or re-copy the .tflite file")

    def _u(self, fmt: str, pos: int, what: str) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > self.n:
            raise self.corrupt(f"{what} points outside the file (byte {pos} of {self.n})")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def table(self, pos: int, what: str) -> tuple[int, int, int]:
        """(table position, vtable position, table size) of the table at ``pos``, checked."""
        vt = pos - self._u("<i", pos, what)
        vt_size = self._u("<H", vt, f"{what} vtable")
        t_size = self._u("<H", vt + 2, f"{what} vtable")
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.n or t_size < 4 or pos + t_size > self.n:
            raise self.corrupt(f"{what} has a malformed field table")
        for k in range((vt_size - 4) // 2):
            off = struct.unpack_from("<H", self.buf, vt + 4 + 2 * k)[0]
            if off and not 4 <= off < t_size:
                raise self.corrupt(f"{what} field {k} lies outside its table")
        return pos, vt, t_size

    def field(self, tab: tuple[int, int, int], k: int) -> int | None:
        """Absolute position of field ``k`` of a checked table, None when absent."""
        pos, vt, _ = tab
        vt_size = struct.unpack_from("<H", self.buf, vt)[0]
        if 4 + 2 * k >= vt_size:
            return None
        off = struct.unpack_from("<H", self.buf, vt + 4 + 2 * k)[0]
        return pos + off if off else None

    def ref(self, tab, k: int, what: str) -> int | None:
        at = self.field(tab, k)
        return None if at is None else at + self._u("<I", at, what)

    def vector(self, tab, k: int, elem: int, what: str) -> tuple[int, int] | None:
        """(first element position, length) of vector field ``k`` whose elements are ``elem`` bytes."""
        at = self.ref(tab, k, what)
        if at is None:
            return None
        length = self._u("<I", at, what)
        if at + 4 + length * elem > self.n:
            raise self.corrupt(f"{what} ({length} elements) runs past the end of the file")
        return at + 4, length

    def tables(self, tab, k: int, what: str) -> list[tuple[int, int, int]]:
        vec = self.vector(tab, k, 4, what)
        if vec is None:
            return []
        start, length = vec
        return [self.table(start + 4 * i + self._u("<I", start + 4 * i, what), f"{what}[{i}]") for i in range(length)]

    def subtable(self, tab, k: int, what: str):
        at = self.ref(tab, k, what)
        return None if at is None else self.table(at, what)

    def check_model(self) -> None:
        root = self.table(self._u("<I", 0, "the root offset"), "the model")
        for i, oc in enumerate(self.tables(root, 1, "operator_codes")):
            self.vector(oc, 1, 1, f"operator_codes[{i}].custom_code")
        for g, sg in enumerate(self.tables(root, 2, "subgraphs")):
            for i, t in enumerate(self.tables(sg, 0, f"subgraph {g} tensors")):
                what = f"subgraph {g} tensor {i}"
                self.vector(t, 0, 4, f"{what} shape")
                self.vector(t, 3, 1, f"{what} name")
                self.vector(t, 7, 4, f"{what} shape_signature")
                q = self.subtable(t, 4, f"{what} quantization")
                if q is not None:
                    for k, size, name in ((0, 4, "min"), (1, 4, "max"), (2, 4, "scale"), (3, 8, "zero_point")):
                        self.vector(q, k, size, f"{what} quantization {name}")
                    self.subtable(q, 5, f"{what} quantization details")
                self.subtable(t, 6, f"{what} sparsity")
            for k, name in ((1, "inputs"), (2, "outputs")):
                self.vector(sg, k, 4, f"subgraph {g} {name}")
            self.vector(sg, 4, 1, f"subgraph {g} name")
            for i, op in enumerate(self.tables(sg, 3, f"subgraph {g} operators")):
                what = f"subgraph {g} operator {i}"
                for k, size, name in ((1, 4, "inputs"), (2, 4, "outputs"), (5, 1, "custom_options"),
                                      (7, 1, "mutating_variable_inputs"), (8, 4, "intermediates")):
                    self.vector(op, k, size, f"{what} {name}")
                self.subtable(op, 4, f"{what} options")
                self.subtable(op, 12, f"{what} options_2")
        self.vector(root, 3, 1, "description")
        for i, b in enumerate(self.tables(root, 4, "buffers")):
            self.vector(b, 0, 1, f"buffers[{i}].data")
        self.vector(root, 5, 4, "metadata_buffer")
        for i, md in enumerate(self.tables(root, 6, "metadata")):
            self.vector(md, 0, 1, f"metadata[{i}].name")
        # signature definitions: not read here, but by the TFLite references in verify
        for i, sd in enumerate(self.tables(root, 7, "signature_defs")):
            for k, name in ((0, "inputs"), (1, "outputs")):
                for j, tm in enumerate(self.tables(sd, k, f"signature_defs[{i}].{name}")):
                    self.vector(tm, 0, 1, f"signature_defs[{i}].{name}[{j}].name")
            self.vector(sd, 2, 1, f"signature_defs[{i}].signature_key")


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


class TfliteImporter:
    def __init__(self, buf: bytes, name: str, path: Path | None = None):
        import tflite

        self.tflite = tflite
        self.path = path or Path(f"{name}.tflite")
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        if self.model.Version() != SCHEMA_VERSION:
            raise UserError(f"{self.path} has TFLite schema version {self.model.Version()}; mcucompile (like TFLite "
                            f"Micro) reads version {SCHEMA_VERSION}: re-convert the model with a current converter")
        if self.model.SubgraphsLength() == 0:
            raise UserError(f"{self.path} has no subgraph (no operators to compile); re-convert the model")
        self.sg = self.model.Subgraphs(0)
        self.name = name
        self.names = _builtin_names()
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.ir_name: dict[int, str] = {}
        self.float_boundary: dict[str, str] = {}
        self._t: list[TfliteTensor] = []

    def _read_tensor(self, i: int) -> TfliteTensor:
        t = self.sg.Tensors(i)
        name = t.Name().decode(errors="replace") if t.Name() else f"t{i}"
        dtype = TENSOR_TYPES.get(t.Type(), f"type{t.Type()}")
        if dtype in ("resource", "variant") or t.IsVariable():
            raise UnsupportedError(
                f"tensor '{name}' is a {'variable' if t.IsVariable() else dtype} tensor: the model keeps state in "
                "resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE, e.g. a stateful RNN); mcucompile "
                "compiles stateless models: export it without variables (e.g. stateful=False)")
        if t.Sparsity() is not None:
            raise UnsupportedError(f"tensor '{name}' is sparse; mcucompile needs dense weights: convert without sparsity")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise UserError(f"tensor '{name}' has shape {list(shape)} with an unknown (dynamic) dimension; "
                            "mcucompile needs static shapes: convert the model with a fixed input size and batch 1")
        if any(d == 0 for d in shape):
            raise UserError(f"tensor '{name}' has shape {list(shape)}: an empty tensor; the model is broken, re-convert it")
        size = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if size > MAX_ELEMENTS:
            raise UserError(f"tensor '{name}' has shape {list(shape)} ({size:,} elements), far beyond any "
                            "microcontroller's memory; check the model's input size")
        if not 0 <= t.Buffer() < self.model.BuffersLength():
            raise UserError(f"tensor '{name}' refers to buffer {t.Buffer()} but the model has "
                            f"{self.model.BuffersLength()} buffers; the file is damaged, re-export it")
        data = None
        buf = self.model.Buffers(t.Buffer())
        if buf.Offset() > 1:
            raise UnsupportedError(f"tensor '{name}' keeps its data outside the flatbuffer (a >2 GB model layout); "
                                   "mcucompile reads self-contained .tflite files")
        if buf.DataLength() > 0:
            np_dtype = NUMPY_TYPES.get(dtype)
            if np_dtype is None:
                raise UnsupportedError(f"tensor '{name}' has type {dtype}")
            raw = buf.DataAsNumpy().tobytes()
            need = size * np.dtype(np_dtype).itemsize
            if len(raw) != need:
                raise UserError(f"constant tensor '{name}' holds {len(raw)} bytes but its shape {list(shape)} of "
                                f"{dtype} needs {need}; the model is inconsistent, re-convert it")
            data = np.frombuffer(raw, np_dtype).reshape(shape)
        return TfliteTensor(i, name, shape, dtype, data, self._read_quant(t, name, dtype, shape))

    def _read_quant(self, t, name: str, dtype: str, shape: tuple[int, ...]) -> QuantParams | None:
        """The tensor's quantization, checked as TFLite Micro checks it (plus finiteness)."""
        q = t.Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        if q.DetailsType() != 0:
            raise UnsupportedError(f"tensor '{name}' uses custom quantization details; only affine int8 is supported")
        scale = q.ScaleAsNumpy().astype(np.float64)
        zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros_like(scale, np.int64)
        why = scale_problem(scale, zp)
        if why:
            raise UserError(f"tensor '{name}' {why}: the model is broken, re-convert it")
        lo, hi = ZERO_POINT_RANGE.get(dtype, (0, 0))
        # (a float tensor's parameters are only informative: nothing is computed from them)
        out = zp[(zp < lo) | (zp > hi)] if not dtype.startswith(("float", "bfloat")) else zp[:0]
        if out.size:
            raise UserError(f"{dtype} tensor '{name}' has zero point {out[0]}, outside [{lo}, {hi}]; "
                            "the model is broken, re-convert it")
        axis = None
        if scale.size > 1:
            axis = int(q.QuantizedDimension())
            if len(shape) == 1 and shape[0] == scale.size:
                # a bias: TFLite Micro reads one scale per element whatever quantized_dimension says (the
                # converter copies the filter's, e.g. 3 in TFLite Micro's own person_detect.tflite)
                axis = 0
            if not 0 <= axis < len(shape) or shape[axis] != scale.size:
                raise UserError(f"tensor '{name}' of shape {list(shape)} has {scale.size} per-channel scales along "
                                f"quantized_dimension {axis}; they must match that dimension: re-convert the model")
        return QuantParams(scale, zp, axis, 8 if dtype == "int8" else 32)

    # ---- helpers for converters
    def t(self, i: int) -> TfliteTensor:
        return self._t[i]

    def act(self, i: int) -> str:
        """IR name of activation tensor ``i`` (created on first use)."""
        if i in self.ir_name:
            return self.ir_name[i]
        tt = self._t[i]
        if tt.data is not None:
            raise UnsupportedError(f"tensor '{tt.name}' is a constant where an activation was expected")
        if tt.dtype == "float32":
            raise UnsupportedError(
                f"tensor '{tt.name}' is float32: this is a float TFLite model; mcucompile compiles int8 .tflite "
                "models. Convert it with full-integer quantization (TFLiteConverter with a representative dataset), "
                "or compile the float ONNX model and let mcucompile quantize it")
        if tt.dtype != "int8":
            raise UnsupportedError(f"tensor '{tt.name}' has type {tt.dtype}; only int8 activations are supported "
                                   "(int16-activation models are not)")
        if tt.quant is None:
            raise UserError(f"int8 tensor '{tt.name}' has no quantization parameters; every int8 activation needs a "
                            "scale and zero point: re-convert the model with full-integer quantization")
        name = self._unique(tt.name)
        self.tensors[name] = Tensor(name, tt.shape or (1,), "float32", None, _per_tensor(tt), tt.name)
        self.ir_name[i] = name
        return name

    def const(self, i: int, data: np.ndarray | None = None, axis: int | None = None) -> str:
        tt = self._t[i]
        ints = tt.data if data is None else data
        if ints is None:
            raise UnsupportedError(f"tensor '{tt.name}' is computed by the model where a constant was expected")
        q = tt.quant
        if q is not None and axis is not None:
            q = QuantParams(q.scale, q.zero_point, axis if q.scale.size > 1 else None, q.bits)
        name = self._unique(tt.name + "_c")
        real = (ints.astype(np.float64) - (q.zero_point.reshape(-1)[0] if q is not None and q.scale.size == 1 else 0))
        if q is not None and q.scale.size == 1:
            real = real * q.scale[0]
        self.tensors[name] = Tensor(name, tuple(ints.shape), "float32", real.astype(np.float32), q, None, ints.copy())
        return name

    def weights(self, i: int, op_name: str, source: str, channels_axis: int) -> TfliteTensor:
        """The int8 weight tensor ``i`` of a conv / fully connected layer, checked: constant, int8,
        quantized, symmetric (zero point 0), scales per tensor or one per output channel."""
        w = self._t[i]
        if w.data is None:
            raise UnsupportedError(f"{source} '{op_name}' has non-constant weights '{w.name}'; mcucompile compiles "
                                   "weights into flash")
        if w.dtype != "int8":
            raise UnsupportedError(f"{source} '{op_name}' has {w.dtype} weights '{w.name}'; only int8 weights are "
                                   "supported (full-integer quantization)")
        if w.quant is None:
            raise UserError(f"int8 weights '{w.name}' of {source} '{op_name}' have no quantization parameters; "
                            "re-convert the model with full-integer quantization")
        if np.any(w.quant.zero_point != 0):
            raise UnsupportedError(
                f"weights '{w.name}' of {source} '{op_name}' are asymmetric (zero point "
                f"{int(w.quant.zero_point[w.quant.zero_point != 0][0])}); TFLite's int8 scheme and TFLite Micro's "
                "kernels need symmetric weights (zero point 0): re-convert with the standard int8 quantizer")
        if w.quant.axis is not None and w.quant.axis != channels_axis:
            raise UnsupportedError(f"weights '{w.name}' of {source} '{op_name}' are quantized per channel along axis "
                                   f"{w.quant.axis}; TFLite kernels take the output-channel axis {channels_axis}")
        return w

    def bias(self, ins: list[int], cout: int, op_name: str, source: str) -> str:
        """The optional int32 bias (input 2): one value per output channel, zero point 0."""
        if len(ins) <= 2 or ins[2] < 0:
            return ""
        b = self._t[ins[2]]
        if b.data is None or b.dtype != "int32":
            raise UnsupportedError(f"{source} '{op_name}' has a {'non-constant' if b.data is None else b.dtype} bias "
                                   f"'{b.name}'; int8 layers take a constant int32 bias")
        if b.data.size != cout:
            raise UserError(f"{source} '{op_name}': bias '{b.name}' has {b.data.size} values for {cout} output "
                            "channels; the model is inconsistent, re-convert it")
        return self.const(ins[2], b.data.reshape(-1))

    def _unique(self, base: str) -> str:
        name = base
        k = 1
        while name in self.tensors:
            k += 1
            name = f"{base}_{k}"
        return name

    def node(self, op_name: str, op: str, inputs: list[str], out_index: int, attrs, source: str) -> None:
        out = self.act(out_index)
        nd = Node(op_name, op, tuple(inputs), (out,), attrs, None, source)
        shape = tuple(op_def(op).infer_shapes(nd, [self.tensors[i].shape if i else () for i in inputs])[0])
        expected = tuple(self.tensors[out].shape)
        if shape != expected:
            raise UserError(f"{source} '{op_name}': the model declares output shape {list(expected)} but the "
                            f"operator computes {list(shape)} from its inputs; the model is inconsistent, re-convert it")
        self.nodes.append(nd)

    def _operators(self) -> list[tuple[object, str, list[int], list[int]]]:
        """(operator, builtin name, inputs, outputs) per operator, indices checked."""
        sg = self.sg
        n_codes, n_t = self.model.OperatorCodesLength(), sg.TensorsLength()
        ops = []
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            if not 0 <= op.OpcodeIndex() < n_codes:
                raise UserError(f"operator {k} refers to operator code {op.OpcodeIndex()} but the model has {n_codes}; "
                                "the file is damaged, re-export it")
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = self.names.get(code, f"CUSTOM_{code}")
            if code == 32:  # CUSTOM: name the op by its custom code
                name = f"CUSTOM_{(oc.CustomCode() or b'?').decode(errors='replace')}"
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            if not outs:
                raise UserError(f"operator {k} ({name}) has no output; the model is broken, re-convert it")
            for what, idx, optional in (("input", ins, True), ("output", outs, False)):
                for j, i in enumerate(idx):
                    if not (0 <= i < n_t or (optional and i == -1)):
                        raise UserError(f"operator {k} ({name}) {what} {j} refers to tensor {i} but the subgraph has "
                                        f"{n_t} tensors; the file is damaged, re-export it")
            ops.append((op, name, ins, outs))
        return ops

    def run(self) -> Graph:
        sg = self.sg
        ops = self._operators()
        shape_only = _shape_only_ops(ops)
        # an unsupported operator is the first thing to report, before any tensor type problem
        order = sorted(range(len(ops)), key=lambda k: CONVERTERS.get(ops[k][1]) is not None or k in shape_only)
        for k in order:
            op, opname, ins, outs = ops[k]
            if k in shape_only:
                continue  # computes a reshape target the model's static shapes already give
            conv = CONVERTERS.get(opname)
            if conv is None:
                what = UNSUPPORTED_HINTS.get(opname, "custom op" if opname.startswith("CUSTOM") else "operator not supported")
                raise UnsupportedError(
                    f"operator {k} '{self._tensor_name(outs[0])}' is {opname} ({what}). Supported TFLite ops: "
                    + ", ".join(supported_tflite_ops()))
        if self.model.SubgraphsLength() > 1:
            raise UnsupportedError(
                f"{self.path} has {self.model.SubgraphsLength()} subgraphs (control flow bodies or several "
                "signatures); mcucompile supports single-subgraph models: convert one signature without control flow")
        self._t = [self._read_tensor(i) for i in range(sg.TensorsLength())]
        n_t = sg.TensorsLength()
        io = {"input": [int(i) for i in sg.InputsAsNumpy()] if sg.InputsLength() else [],
              "output": [int(i) for i in sg.OutputsAsNumpy()] if sg.OutputsLength() else []}
        for what, idx in io.items():
            if not idx:
                raise UserError(f"{self.path} declares no model {what}; the model is broken, re-convert it")
            bad = [i for i in idx if not 0 <= i < n_t]
            if bad:
                raise UserError(f"model {what} refers to tensor {bad[0]} but the subgraph has {n_t} tensors; "
                                "the file is damaged, re-export it")
        produced = {o for _, _, _, outs in ops for o in outs}
        for i in io["input"]:
            if i in produced:
                raise UserError(f"model input '{self._t[i].name}' is also computed by an operator; the model is "
                                "broken, re-convert it")
        for k, (op, opname, ins, outs) in enumerate(ops):
            if k not in shape_only:
                CONVERTERS[opname](self, op, ins, outs)
        inputs = [self._boundary_in(i) for i in io["input"]]
        for name in inputs:
            shape = self.tensors[name].shape
            if len(shape) > 1 and shape[0] != 1:
                raise UserError(f"input '{self.tensors[name].origin}' has batch size {shape[0]} (shape {list(shape)}); "
                                "mcucompile compiles batch-1 models (one sample per inference): convert with batch 1")
        outputs = [self._boundary_out(i) for i in io["output"]]
        self._check_dataflow(inputs, outputs)
        graph = Graph(self.name, tuple(self.nodes), dict(self.tensors), tuple(inputs), tuple(outputs),
                      {n: tuple(range(len(self.tensors[n].shape))) for n in inputs + outputs})
        return graph.pruned()

    def _tensor_name(self, i: int) -> str:
        t = self.sg.Tensors(i)
        return t.Name().decode(errors="replace") if t.Name() else f"t{i}"

    def _check_dataflow(self, inputs: list[str], outputs: list[str]) -> None:
        """Every operator reads tensors that exist by then (a model input, a constant, or an earlier
        operator's output) and writes each tensor once; the outputs are computed."""
        ready = set(inputs) | {n for n, t in self.tensors.items() if t.is_const}
        for nd in self.nodes:
            for i in nd.inputs:
                if i and i not in ready:
                    raise UserError(f"operator '{nd.name}' ({nd.source}) reads tensor '{self.tensors[i].origin or i}' "
                                    "before any operator computes it (or nothing does); the operator order or wiring "
                                    "is broken: re-convert the model")
            for o in nd.outputs:
                if o in ready:
                    raise UserError(f"tensor '{self.tensors[o].origin or o}' is written twice (by operator "
                                    f"'{nd.name}' and before it); the model is broken: re-convert it")
                ready.add(o)
        for o in outputs:
            if o not in ready:
                raise UserError(f"model output '{self.tensors[o].origin or o}' is not computed by any operator; "
                                "the model is broken: re-convert it")

    def _boundary_in(self, i: int) -> str:
        tt = self._t[i]
        if tt.dtype == "float32":
            name = self.float_boundary.get(f"in:{i}")
            if name is None:
                raise UnsupportedError(f"float input '{tt.name}' is not followed by QUANTIZE; this is a float model: "
                                       "convert it to int8 (full-integer quantization) or compile the ONNX float model")
            return name
        return self.act(i)

    def _boundary_out(self, i: int) -> str:
        tt = self._t[i]
        if tt.dtype == "float32":
            name = self.float_boundary.get(f"out:{i}")
            if name is None:
                raise UnsupportedError(f"float output '{tt.name}' is not produced by DEQUANTIZE")
            return name
        return self.act(i)


UNSUPPORTED_HINTS = {
    "WHILE": "control flow: a recurrent layer (LSTM/GRU/RNN) exported as a loop is not supported",
    "IF": "control flow is not supported",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "recurrent layer (LSTM) is not supported",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "recurrent layer (LSTM) is not supported",
    "LSTM": "recurrent layer (LSTM) is not supported",
    "CALL_ONCE": "resource-variable initialization (a stateful model) is not supported",
    "VAR_HANDLE": "resource variables (a stateful model) are not supported",
    "READ_VARIABLE": "resource variables (a stateful model) are not supported",
    "ASSIGN_VARIABLE": "resource variables (a stateful model) are not supported",
}

SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "CONCATENATION", "CAST", "SLICE"}


def _shape_only_ops(ops) -> set[int]:
    """Operators whose outputs feed only RESHAPE's shape input (directly or through other such ops)."""
    consumers: dict[int, list[tuple[int, int]]] = {}
    for k, (_, _, ins, _) in enumerate(ops):
        for pos, i in enumerate(ins):
            consumers.setdefault(i, []).append((k, pos))
    shape_only: set[int] = set()
    changed = True
    while changed:
        changed = False
        for k, (_, name, _, outs) in enumerate(ops):
            if k in shape_only or name not in SHAPE_OPS:
                continue
            uses = [c for o in outs for c in consumers.get(o, [])]
            if uses and all((ops[c][1] == "RESHAPE" and pos == 1) or c in shape_only for c, pos in uses):
                shape_only.add(k)
                changed = True
    return shape_only


def _per_tensor(tt: TfliteTensor) -> QuantParams | None:
    q = tt.quant
    if q is None:
        return None
    if q.scale.size != 1:
        raise UnsupportedError(f"activation '{tt.name}' has per-channel quantization; only per-tensor is supported")
    return QuantParams.per_tensor(float(q.scale[0]), int(q.zero_point[0]))


def _options(imp, op, cls_name: str, source: str = "", outs=None):
    """The operator's builtin options table as ``cls_name``; required when ``source`` names the op."""
    mod = getattr(__import__(f"tflite.{cls_name}", fromlist=[cls_name]), cls_name)
    opts = op.BuiltinOptions()
    if opts is None:
        if source:
            raise UserError(f"{source} '{_name(imp, outs)}' has no {cls_name} table; the model is broken, re-convert it")
        return None
    o = mod()
    o.Init(opts.Bytes, opts.Pos)
    return o


def _activation(o, source: str, op_name: str) -> Activation:
    code = o.FusedActivationFunction() if o is not None else 0
    if code not in ACTIVATIONS:
        names = {4: "TANH", 5: "SIGN_BIT"}
        raise UnsupportedError(f"{source} '{op_name}' has fused activation {names.get(code, f'code {code}')}; "
                               "supported: none, RELU, RELU_N1_TO_1, RELU6")
    return ACTIVATIONS[code]


def _padding(code: int, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    if code == 1:  # VALID
        return (0, 0, 0, 0)
    if code != 0:
        raise UserError(f"padding code {code} is neither SAME (0) nor VALID (1); the model is broken, re-convert it")
    if min(stride) < 1 or min(dilation) < 1:
        return (0, 0, 0, 0)  # refused by the op's shape check, which names the operator
    pads = []
    for a in range(2):
        out = -(-in_hw[a] // stride[a])
        eff = (kernel[a] - 1) * dilation[a] + 1
        total = max(0, (out - 1) * stride[a] + eff - in_hw[a])
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _name(imp, outs) -> str:
    return imp.t(outs[0]).name


def _inputs(imp, ins, outs, source: str, least: int, most: int | None = None) -> None:
    """The operator has between ``least`` and ``most`` inputs, the required ones present."""
    most = least if most is None else most
    if not least <= len(ins) <= most or any(i < 0 for i in ins[:least]):
        raise UserError(f"{source} '{_name(imp, outs)}' has inputs {ins}; it takes {least}"
                        f"{'' if most == least else f' to {most}'}: the model is broken, re-convert it")


def _conv_window(o, in_shape, kh: int, kw: int) -> Window:
    stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    hw = in_shape[1:3] if len(in_shape) == 4 else (1, 1)
    return Window((kh, kw), stride, dil, _padding(o.Padding(), hw, (kh, kw), stride, dil))


def _rank(imp, i: int, rank: int, source: str, outs, what: str) -> None:
    shape = imp.t(i).shape
    if len(shape) != rank:
        raise UserError(f"{source} '{_name(imp, outs)}': {what} '{imp.t(i).name}' has shape {list(shape)}, "
                        f"expected {rank} dimensions; the model is inconsistent, re-convert it")


@converter("CONV_2D")
def _conv(imp, op, ins, outs):
    _inputs(imp, ins, outs, "CONV_2D", 2, 3)
    o = _options(imp, op, "Conv2DOptions", "CONV_2D", outs)
    _rank(imp, ins[0], 4, "CONV_2D", outs, "input")
    _rank(imp, ins[1], 4, "CONV_2D", outs, "filter")
    x = imp.act(ins[0])
    w = imp.weights(ins[1], _name(imp, outs), "CONV_2D", 0)
    cout, kh, kw, cin_g = w.shape
    in_shape = imp.tensors[x].shape
    if in_shape[3] % cin_g:
        raise UserError(f"CONV_2D '{_name(imp, outs)}': input has {in_shape[3]} channels, not a multiple of the "
                        f"filter's {cin_g}; the model is inconsistent, re-convert it")
    win = _conv_window(o, in_shape, kh, kw)
    groups = in_shape[3] // cin_g
    b = imp.bias(ins, cout, _name(imp, outs), "CONV_2D")
    attrs = ConvAttrs(win, groups, _activation(o, "CONV_2D", _name(imp, outs)))
    imp.node(_name(imp, outs), "conv2d", [x, imp.const(ins[1], axis=0), b], outs[0], attrs, "CONV_2D")


@converter("DEPTHWISE_CONV_2D")
def _dwconv(imp, op, ins, outs):
    _inputs(imp, ins, outs, "DEPTHWISE_CONV_2D", 2, 3)
    o = _options(imp, op, "DepthwiseConv2DOptions", "DEPTHWISE_CONV_2D", outs)
    _rank(imp, ins[0], 4, "DEPTHWISE_CONV_2D", outs, "input")
    _rank(imp, ins[1], 4, "DEPTHWISE_CONV_2D", outs, "filter")
    x = imp.act(ins[0])
    w = imp.weights(ins[1], _name(imp, outs), "DEPTHWISE_CONV_2D", 3)
    one, kh, kw, cout = w.shape
    if one != 1:
        raise UserError(f"DEPTHWISE_CONV_2D '{_name(imp, outs)}': filter shape {list(w.shape)} must be [1, H, W, C]; "
                        "the model is inconsistent, re-convert it")
    win = _conv_window(o, imp.tensors[x].shape, kh, kw)
    wt = imp.const(ins[1], w.data.reshape(kh, kw, cout), axis=2)
    b = imp.bias(ins, cout, _name(imp, outs), "DEPTHWISE_CONV_2D")
    attrs = ConvAttrs(win, 1, _activation(o, "DEPTHWISE_CONV_2D", _name(imp, outs)))
    imp.node(_name(imp, outs), "depthwise_conv2d", [x, wt, b], outs[0], attrs, "DEPTHWISE_CONV_2D")


@converter("FULLY_CONNECTED")
def _fc(imp, op, ins, outs):
    _inputs(imp, ins, outs, "FULLY_CONNECTED", 2, 3)
    o = _options(imp, op, "FullyConnectedOptions")
    _rank(imp, ins[1], 2, "FULLY_CONNECTED", outs, "weights")
    x = imp.act(ins[0])
    w = imp.weights(ins[1], _name(imp, outs), "FULLY_CONNECTED", 0)
    k = w.shape[1]
    xs = imp.tensors[x].shape
    if int(np.prod(xs)) % k:
        raise UserError(f"FULLY_CONNECTED '{_name(imp, outs)}': input of shape {list(xs)} cannot be read as rows of "
                        f"{k} (the weights' input size); the model is inconsistent, re-convert it")
    rows = int(np.prod(xs)) // k
    if tuple(xs) != (rows, k):
        flat = imp._unique(imp.tensors[x].name + "_flat")
        imp.tensors[flat] = Tensor(flat, (rows, k), "float32", None, imp.tensors[x].quant, imp.tensors[x].origin)
        imp.nodes.append(Node(flat, "reshape", (x,), (flat,), ReshapeAttrs((rows, k)), None, "FULLY_CONNECTED"))
        x = flat
    b = imp.bias(ins, w.shape[0], _name(imp, outs), "FULLY_CONNECTED")
    act = _activation(o, "FULLY_CONNECTED", _name(imp, outs))
    out = imp.act(outs[0])
    if imp.tensors[out].shape != (rows, w.shape[0]):
        # keep_num_dims or a higher-rank output: compute [rows, N] then view it as the model's shape
        if int(np.prod(imp.tensors[out].shape)) != rows * w.shape[0]:
            raise UserError(f"FULLY_CONNECTED '{_name(imp, outs)}': the model declares output shape "
                            f"{list(imp.tensors[out].shape)} but the operator computes {[rows, w.shape[0]]}; the model "
                            "is inconsistent, re-convert it")
        tmp = imp._unique(imp.tensors[out].name + "_2d")
        imp.tensors[tmp] = Tensor(tmp, (rows, w.shape[0]), "float32", None, imp.tensors[out].quant, imp.tensors[out].origin)
        imp.nodes.append(Node(_name(imp, outs), "fully_connected", (x, imp.const(ins[1], axis=0), b), (tmp,),
                              FullyConnectedAttrs(act), None, "FULLY_CONNECTED"))
        imp.nodes.append(Node(out, "reshape", (tmp,), (out,), ReshapeAttrs(imp.tensors[out].shape), None, "FULLY_CONNECTED"))
        return
    imp.node(_name(imp, outs), "fully_connected", [x, imp.const(ins[1], axis=0), b], outs[0], FullyConnectedAttrs(act),
             "FULLY_CONNECTED")


def _binary(imp, op, ins, outs, kind: str, opts: str):
    _inputs(imp, ins, outs, kind.upper(), 2)
    o = _options(imp, op, opts)
    names = []
    for i in ins[:2]:
        t = imp.t(i)
        if t.data is not None and (t.dtype != "int8" or t.quant is None or t.quant.scale.size != 1):
            raise UnsupportedError(f"{kind.upper()} '{_name(imp, outs)}': constant operand '{t.name}' must be int8 "
                                   "with per-tensor quantization")
        names.append(imp.const(i) if t.data is not None else imp.act(i))
    act = _activation(o, kind.upper(), _name(imp, outs))
    imp.node(_name(imp, outs), kind, names, outs[0], ElementwiseAttrs(act), kind.upper())


@converter("ADD")
def _add(imp, op, ins, outs):
    _binary(imp, op, ins, outs, "add", "AddOptions")


@converter("MUL")
def _mul(imp, op, ins, outs):
    _binary(imp, op, ins, outs, "mul", "MulOptions")


def _pool(imp, op, ins, outs, kind: str, source: str):
    _inputs(imp, ins, outs, source, 1)
    o = _options(imp, op, "Pool2DOptions", source, outs)
    _rank(imp, ins[0], 4, source, outs, "input")
    x = imp.act(ins[0])
    shape = imp.tensors[x].shape
    k, s = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
    win = Window(k, s, (1, 1), _padding(o.Padding(), shape[1:3], k, s, (1, 1)))
    imp.node(_name(imp, outs), kind, [x], outs[0], PoolAttrs(win, _activation(o, source, _name(imp, outs))), source)


@converter("AVERAGE_POOL_2D")
def _avg(imp, op, ins, outs):
    _pool(imp, op, ins, outs, "avg_pool2d", "AVERAGE_POOL_2D")


@converter("MAX_POOL_2D")
def _max(imp, op, ins, outs):
    _pool(imp, op, ins, outs, "max_pool2d", "MAX_POOL_2D")


def _const_ints(imp, i: int, source: str, outs, what: str) -> np.ndarray:
    t = imp.t(i)
    if t.data is None or t.dtype not in ("int32", "int64"):
        raise UnsupportedError(f"{source} '{_name(imp, outs)}': {what} '{t.name}' must be a constant int32 tensor")
    return np.ravel(t.data).astype(np.int64)


@converter("MEAN")
def _mean(imp, op, ins, outs):
    """The mean over the axes the model gives, dims kept (the op supports H, W of a 4-D map only)."""
    _inputs(imp, ins, outs, "MEAN", 2)
    x = imp.act(ins[0])
    shape = imp.tensors[x].shape
    raw = _const_ints(imp, ins[1], "MEAN", outs, "axes")
    if np.any((raw < -len(shape)) | (raw >= len(shape))):
        raise UserError(f"MEAN '{_name(imp, outs)}': axes {raw.tolist()} out of range for a {len(shape)}-D input")
    axes = tuple(sorted({int(a) % len(shape) for a in raw}))
    out_q = _per_tensor(imp.t(outs[0]))
    out = imp.act(outs[0])
    kept = tuple(1 if a in axes else d for a, d in enumerate(shape))
    keep = imp.tensors[out].shape == kept
    if not keep and int(np.prod(imp.tensors[out].shape)) != int(np.prod(kept)):
        raise UserError(f"MEAN '{_name(imp, outs)}': the model declares output shape {list(imp.tensors[out].shape)} "
                        f"but the mean over axes {list(axes)} of {list(shape)} has {int(np.prod(kept))} values; the "
                        "model is inconsistent, re-convert it")
    target = out if keep else imp._unique(out + "_keep")
    if not keep:
        imp.tensors[target] = Tensor(target, kept, "float32", None, out_q, imp.t(outs[0]).name)
    # TFLite Micro takes QuantizedMeanOrSum for every int8 MEAN (equal params too): not average-pool rounding
    imp.nodes.append(Node(_name(imp, outs), "mean", (x,), (target,), MeanAttrs(axes), None, "MEAN"))
    if not keep:
        imp.nodes.append(Node(out, "reshape", (target,), (out,), ReshapeAttrs(imp.tensors[out].shape), None, "MEAN"))


@converter("PAD", "PADV2")
def _pad(imp, op, ins, outs):
    _inputs(imp, ins, outs, "PAD", 2, 3)
    x = imp.act(ins[0])
    raw = _const_ints(imp, ins[1], "PAD", outs, "paddings")
    rank = len(imp.tensors[x].shape)
    if raw.size != 2 * rank or np.any(raw < 0) or np.any(raw > MAX_ELEMENTS):
        raise UserError(f"PAD '{_name(imp, outs)}': paddings {raw.tolist()} must be {rank} non-negative "
                        "(before, after) pairs; the model is inconsistent, re-convert it")
    pads = raw.reshape(-1, 2)
    value = 0.0  # real value padded with (the op's supports() takes zero only)
    if len(ins) > 2 and ins[2] >= 0:
        vt = imp.t(ins[2])
        if vt.data is None or vt.data.size != 1:
            raise UnsupportedError(f"PADV2 '{_name(imp, outs)}': the pad value must be one constant")
        q = imp.tensors[x].quant
        value = (int(np.ravel(vt.data)[0]) - q.zp) * q.s
    imp.node(_name(imp, outs), "pad", [x], outs[0], PadAttrs(tuple((int(a), int(b)) for a, b in pads), value), "PAD")


@converter("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(imp, op, ins, outs):
    _inputs(imp, ins, outs, "RESHAPE", 1, 2)
    x = imp.act(ins[0])
    shape = imp.t(outs[0]).shape
    imp.node(_name(imp, outs), "reshape", [x], outs[0], ReshapeAttrs(tuple(shape)), "RESHAPE")


@converter("SOFTMAX")
def _softmax(imp, op, ins, outs):
    _inputs(imp, ins, outs, "SOFTMAX", 1)
    o = _options(imp, op, "SoftmaxOptions", "SOFTMAX", outs)
    beta = float(o.Beta())
    if not (np.isfinite(beta) and beta > 0):
        raise UserError(f"SOFTMAX '{_name(imp, outs)}' has beta {beta:g}; it must be finite and positive")
    imp.node(_name(imp, outs), "softmax", [imp.act(ins[0])], outs[0], SoftmaxAttrs(beta), "SOFTMAX")


def _table_op(fn: str, source: str):
    def conv(imp, op, ins, outs):
        _inputs(imp, ins, outs, source, 1)
        imp.node(_name(imp, outs), "unary", [imp.act(ins[0])], outs[0], UnaryAttrs(fn, semantics="tflite"), source)

    return conv


CONVERTERS["LOGISTIC"] = _table_op("sigmoid", "LOGISTIC")
CONVERTERS["TANH"] = _table_op("tanh", "TANH")
CONVERTERS["HARD_SWISH"] = _table_op("hardswish", "HARD_SWISH")


@converter("RELU", "RELU6", "RELU_N1_TO_1")
def _relu(imp, op, ins, outs):
    oc = imp.model.OperatorCodes(op.OpcodeIndex())
    name = imp.names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
    _inputs(imp, ins, outs, name, 1)
    act = {"RELU": Activation(0.0), "RELU6": Activation(0.0, 6.0), "RELU_N1_TO_1": Activation(-1.0, 1.0)}[name]
    imp.node(_name(imp, outs), "unary", [imp.act(ins[0])], outs[0], UnaryAttrs("requantize", activation=act, semantics="tflite"), name)


@converter("RESIZE_NEAREST_NEIGHBOR")
def _resize_nearest(imp, op, ins, outs):
    """Read as the model states it (size, align_corners, half_pixel_centers); the op accepts replication by
    integer factors only, align_corners / half_pixel_centers where TFLite's own index formula still
    replicates (else ``supports`` refuses it with the position where it differs)."""
    _inputs(imp, ins, outs, "RESIZE_NEAREST_NEIGHBOR", 2)
    _rank(imp, ins[0], 4, "RESIZE_NEAREST_NEIGHBOR", outs, "input")
    x = imp.act(ins[0])
    size = _const_ints(imp, ins[1], "RESIZE_NEAREST_NEIGHBOR", outs, "size")
    if size.size != 2 or np.any(size < 1):
        raise UserError(f"RESIZE_NEAREST_NEIGHBOR '{_name(imp, outs)}': size {size.tolist()} must be two positive "
                        "integers (height, width); the model is broken, re-convert it")
    o = _options(imp, op, "ResizeNearestNeighborOptions")
    align, half = (bool(o.AlignCorners()), bool(o.HalfPixelCenters())) if o is not None else (False, False)
    _, h, w, _ = imp.tensors[x].shape
    oh, ow = int(size[0]), int(size[1])
    # the op's supports() refuses any mapping that is not replication by (oh // h, ow // w)
    attrs = ResizeAttrs((max(1, oh // h), max(1, ow // w)), size=(oh, ow),
                        mapping=ResizeMapping("tflite", align_corners=align, half_pixel_centers=half))
    imp.node(_name(imp, outs), "resize_nearest", [x], outs[0], attrs, "RESIZE_NEAREST_NEIGHBOR")


@converter("PRELU")
def _prelu(imp, op, ins, outs):
    """One int8 alpha per channel (innermost axis) or a single one, by TFLite broadcasting."""
    _inputs(imp, ins, outs, "PRELU", 2)
    x = imp.act(ins[0])
    shape = imp.tensors[x].shape
    at = imp.t(ins[1])
    if at.data is None or at.dtype != "int8" or at.quant is None or at.quant.scale.size != 1:
        raise UnsupportedError(f"PRELU '{_name(imp, outs)}': alpha '{at.name}' must be a constant int8 tensor with "
                               "per-tensor quantization (as TFLite Micro's int8 PRELU reads it)")
    ints = at.data
    try:
        if ints.ndim > len(shape):
            raise ValueError
        full = np.broadcast_to(ints.reshape((1,) * (len(shape) - ints.ndim) + ints.shape), shape)
    except ValueError:
        raise UserError(f"PRELU '{_name(imp, outs)}': alpha of shape {list(ints.shape)} does not broadcast to the "
                        f"input {list(shape)}; the model is inconsistent, re-convert it") from None
    varying = [a for a in range(len(shape)) if shape[a] > 1 and np.ptp(full.astype(np.int64), axis=a).max() > 0]
    if varying and varying != [len(shape) - 1]:
        alpha = ints  # varies along other axes too: as the model gives it (the op's supports() refuses it)
    else:
        alpha = full.reshape(-1, shape[-1])[0] if varying else full.reshape(-1)[:1]
    a = imp.const(ins[1], data=np.ascontiguousarray(alpha))
    imp.node(_name(imp, outs), "prelu", [x, a], outs[0], PreluAttrs(), "PRELU")


@converter("CONCATENATION")
def _concat(imp, op, ins, outs):
    if not ins or any(i < 0 for i in ins):
        _inputs(imp, ins, outs, "CONCATENATION", max(1, len(ins)))
    o = _options(imp, op, "ConcatenationOptions", "CONCATENATION", outs)
    names = [imp.act(i) for i in ins]
    rank = len(imp.tensors[names[0]].shape)
    act = _activation(o, "CONCATENATION", _name(imp, outs))  # the op's supports() refuses any but none
    if not -rank <= int(o.Axis()) < rank:
        raise UserError(f"CONCATENATION '{_name(imp, outs)}': axis {o.Axis()} out of range for {rank}-D inputs")
    imp.node(_name(imp, outs), "concat", names, outs[0], ConcatAttrs(int(o.Axis()) % rank, act), "CONCATENATION")


@converter("QUANTIZE")
def _quantize(imp, op, ins, outs):
    _inputs(imp, ins, outs, "QUANTIZE", 1)
    src = imp.t(ins[0])
    if src.dtype == "float32":
        out = imp.act(outs[0])
        if imp.tensors[out].shape != (src.shape or (1,)):
            raise UserError(f"QUANTIZE '{_name(imp, outs)}': input shape {list(src.shape)} and output shape "
                            f"{list(imp.tensors[out].shape)} differ; the model is inconsistent, re-convert it")
        imp.float_boundary[f"in:{ins[0]}"] = out  # the int8 model input starts here
        return
    imp.node(_name(imp, outs), "unary", [imp.act(ins[0])], outs[0], UnaryAttrs("requantize", semantics="tflite"), "QUANTIZE")


@converter("DEQUANTIZE")
def _dequantize(imp, op, ins, outs):
    _inputs(imp, ins, outs, "DEQUANTIZE", 1)
    if imp.t(ins[0]).dtype != "int8":
        raise UnsupportedError(f"DEQUANTIZE '{_name(imp, outs)}' of {imp.t(ins[0]).dtype} (weights stored as float16?)")
    if imp.t(outs[0]).shape != imp.t(ins[0]).shape:
        raise UserError(f"DEQUANTIZE '{_name(imp, outs)}': input shape {list(imp.t(ins[0]).shape)} and output shape "
                        f"{list(imp.t(outs[0]).shape)} differ; the model is inconsistent, re-convert it")
    imp.float_boundary[f"out:{outs[0]}"] = imp.act(ins[0])  # the int8 model output ends here


def load_tflite(path: str | Path) -> Graph:
    """Read an int8 .tflite flatbuffer into a pre-quantized IR graph (quantize_graph needs no ranges).

    The file's structure is checked first (every offset and length inside the file), then every value the
    compiler relies on: tensor indices, shapes against what the operators compute, types, quantization
    parameters; a problem is a UserError naming the tensor or operator."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the path of a .tflite file")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); check the file is complete")
    _Flatbuffer(buf, path).check_model()
    # zero padding: a scalar field at the very end of a table reads zeros instead of past the buffer
    imp = TfliteImporter(buf + bytes(16), re.sub(r"[^0-9a-zA-Z_]", "_", path.stem) or "model", path)
    from . import check_graph

    return check_supported(check_graph(imp.run()))
