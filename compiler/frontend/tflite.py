"""int8 .tflite -> IR, keeping the model's own scales, zero points and per-channel parameters.

The flatbuffer is read with the pure-Python ``tflite`` package (no TensorFlow). Activations keep the
quantization the model carries (as presets the quantizer takes instead of calibrating); weights and
biases keep their exact integers. Elementwise functions with TFLite-specific integer algorithms
(LOGISTIC, TANH, HARD_SWISH, int8 QUANTIZE) become lookup tables computed the way TFLite Micro does.
A float input followed by QUANTIZE (or DEQUANTIZE before a float output) marks the int8 boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UnsupportedError, UserError
from ..ir import Activation, Graph, Node, QuantParams, Tensor
from ..ops import op_def
from ..ops.conv import ConvAttrs
from ..ops.data_movement import ConcatAttrs, PadAttrs, ReshapeAttrs
from ..ops.elementwise import ElementwiseAttrs
from ..ops.fully_connected import FullyConnectedAttrs
from ..ops.pooling import PoolAttrs
from ..ops.spatial import Window
from ..ops.unary import SoftmaxAttrs, UnaryAttrs

TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}
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


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


class TfliteImporter:
    def __init__(self, buf: bytes, name: str):
        import tflite

        self.tflite = tflite
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        self.sg = self.model.Subgraphs(0)
        self.name = name
        self.names = _builtin_names()
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.ir_name: dict[int, str] = {}
        self.float_boundary: dict[str, str] = {}
        self._t = [self._read_tensor(i) for i in range(self.sg.TensorsLength())]

    def _read_tensor(self, i: int) -> TfliteTensor:
        t = self.sg.Tensors(i)
        name = t.Name().decode(errors="replace") if t.Name() else f"t{i}"
        dtype = TENSOR_TYPES.get(t.Type(), f"type{t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = None
        buf = self.model.Buffers(t.Buffer())
        if buf is not None and buf.DataLength() > 0:
            raw = buf.DataAsNumpy().tobytes()
            np_dtype = {"float32": np.float32, "int32": np.int32, "int8": np.int8, "uint8": np.uint8, "int64": np.int64,
                        "int16": np.int16, "float16": np.float16}.get(dtype)
            if np_dtype is None:
                raise UnsupportedError(f"tensor '{name}' has type {dtype}")
            data = np.frombuffer(raw, np_dtype).reshape(shape) if shape else np.frombuffer(raw, np_dtype)
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() > 0:
            scale = q.ScaleAsNumpy().astype(np.float64)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros_like(scale, np.int64)
            axis = int(q.QuantizedDimension()) if scale.size > 1 else None
            quant = QuantParams(scale, np.broadcast_to(zp, scale.shape).copy(), axis, 8 if dtype == "int8" else 32)
        return TfliteTensor(i, name, shape, dtype, data, quant)

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
        name = self._unique(tt.name)
        self.tensors[name] = Tensor(name, tt.shape or (1,), "float32", None, _per_tensor(tt), tt.name)
        self.ir_name[i] = name
        return name

    def const(self, i: int, data: np.ndarray | None = None, axis: int | None = None) -> str:
        tt = self._t[i]
        ints = tt.data if data is None else data
        q = tt.quant
        if q is not None and axis is not None:
            q = QuantParams(q.scale, q.zero_point, axis if q.scale.size > 1 else None, q.bits)
        name = self._unique(tt.name + "_c")
        real = (ints.astype(np.float64) - (q.zero_point.reshape(-1)[0] if q is not None and q.scale.size == 1 else 0))
        if q is not None and q.scale.size == 1:
            real = real * q.scale[0]
        self.tensors[name] = Tensor(name, tuple(ints.shape), "float32", real.astype(np.float32), q, None, ints.copy())
        return name

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
        shape = op_def(op).infer_shapes(nd, [self.tensors[i].shape for i in inputs])[0]
        expected = self.tensors[out].shape
        if int(np.prod(shape)) != int(np.prod(expected)):
            raise UserError(f"{source} '{op_name}': computed output shape {list(shape)} but the model says {list(expected)}")
        self.nodes.append(nd)

    def run(self) -> Graph:
        sg = self.sg
        ops = []
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            ops.append((op, self.names.get(code, f"CUSTOM_{code}"), ins, [int(i) for i in op.OutputsAsNumpy()]))
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
                    f"operator {k} '{self._t[outs[0]].name}' is {opname} ({what}). Supported TFLite ops: "
                    + ", ".join(supported_tflite_ops()))
        for k, (op, opname, ins, outs) in enumerate(ops):
            if k not in shape_only:
                CONVERTERS[opname](self, op, ins, outs)
        inputs = [self._boundary_in(int(i)) for i in sg.InputsAsNumpy()]
        outputs = [self._boundary_out(int(i)) for i in sg.OutputsAsNumpy()]
        graph = Graph(self.name, tuple(self.nodes), dict(self.tensors), tuple(inputs), tuple(outputs),
                      {n: tuple(range(len(self.tensors[n].shape))) for n in inputs + outputs})
        return graph.pruned()

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


def _options(imp, op, cls_name: str):
    mod = getattr(__import__(f"tflite.{cls_name}", fromlist=[cls_name]), cls_name)
    opts = op.BuiltinOptions()
    if opts is None:
        return None
    o = mod()
    o.Init(opts.Bytes, opts.Pos)
    return o


def _padding(code: int, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    if code == 1:  # VALID
        return (0, 0, 0, 0)
    pads = []
    for a in range(2):
        out = -(-in_hw[a] // stride[a])
        eff = (kernel[a] - 1) * dilation[a] + 1
        total = max(0, (out - 1) * stride[a] + eff - in_hw[a])
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _name(imp, outs) -> str:
    return imp.t(outs[0]).name


def _conv_window(o, in_shape, kh: int, kw: int) -> Window:
    stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    return Window((kh, kw), stride, dil, _padding(o.Padding(), in_shape[1:3], (kh, kw), stride, dil))


@converter("CONV_2D")
def _conv(imp, op, ins, outs):
    o = _options(imp, op, "Conv2DOptions")
    w = imp.t(ins[1])
    cout, kh, kw, cin_g = w.shape
    x = imp.act(ins[0])
    in_shape = imp.tensors[x].shape
    win = _conv_window(o, in_shape, kh, kw)
    groups = in_shape[3] // cin_g
    b = imp.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else ""
    attrs = ConvAttrs(win, groups, ACTIVATIONS[o.FusedActivationFunction()])
    imp.node(_name(imp, outs), "conv2d", [x, imp.const(ins[1], axis=0), b], outs[0], attrs, "CONV_2D")


@converter("DEPTHWISE_CONV_2D")
def _dwconv(imp, op, ins, outs):
    o = _options(imp, op, "DepthwiseConv2DOptions")
    w = imp.t(ins[1])
    _, kh, kw, cout = w.shape
    x = imp.act(ins[0])
    win = _conv_window(o, imp.tensors[x].shape, kh, kw)
    wt = imp.const(ins[1], w.data.reshape(kh, kw, cout), axis=2)
    b = imp.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else ""
    attrs = ConvAttrs(win, 1, ACTIVATIONS[o.FusedActivationFunction()])
    imp.node(_name(imp, outs), "depthwise_conv2d", [x, wt, b], outs[0], attrs, "DEPTHWISE_CONV_2D")


@converter("FULLY_CONNECTED")
def _fc(imp, op, ins, outs):
    o = _options(imp, op, "FullyConnectedOptions")
    w = imp.t(ins[1])
    if w.data is None:
        raise UnsupportedError(f"FULLY_CONNECTED '{_name(imp, outs)}' has non-constant weights")
    x = imp.act(ins[0])
    k = w.shape[1]
    xs = imp.tensors[x].shape
    rows = int(np.prod(xs)) // k
    if tuple(xs) != (rows, k):
        flat = imp._unique(imp.tensors[x].name + "_flat")
        imp.tensors[flat] = Tensor(flat, (rows, k), "float32", None, imp.tensors[x].quant, imp.tensors[x].origin)
        imp.nodes.append(Node(flat, "reshape", (x,), (flat,), ReshapeAttrs((rows, k)), None, "FULLY_CONNECTED"))
        x = flat
    b = imp.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else ""
    act = ACTIVATIONS[o.FusedActivationFunction()] if o is not None else Activation()
    out = imp.act(outs[0])
    if imp.tensors[out].shape != (rows, w.shape[0]):
        # keep_num_dims or a higher-rank output: compute [rows, N] then view it as the model's shape
        tmp = imp._unique(imp.tensors[out].name + "_2d")
        imp.tensors[tmp] = Tensor(tmp, (rows, w.shape[0]), "float32", None, imp.tensors[out].quant, imp.tensors[out].origin)
        imp.nodes.append(Node(_name(imp, outs), "fully_connected", (x, imp.const(ins[1], axis=0), b), (tmp,),
                              FullyConnectedAttrs(act), None, "FULLY_CONNECTED"))
        imp.nodes.append(Node(out, "reshape", (tmp,), (out,), ReshapeAttrs(imp.tensors[out].shape), None, "FULLY_CONNECTED"))
        return
    imp.node(_name(imp, outs), "fully_connected", [x, imp.const(ins[1], axis=0), b], outs[0], FullyConnectedAttrs(act),
             "FULLY_CONNECTED")


def _binary(imp, op, ins, outs, kind: str, opts: str):
    o = _options(imp, op, opts)
    names = []
    for i in ins[:2]:
        names.append(imp.const(i) if imp.t(i).data is not None else imp.act(i))
    act = ACTIVATIONS[o.FusedActivationFunction()] if o is not None else Activation()
    imp.node(_name(imp, outs), kind, names, outs[0], ElementwiseAttrs(act), kind.upper())


@converter("ADD")
def _add(imp, op, ins, outs):
    _binary(imp, op, ins, outs, "add", "AddOptions")


@converter("MUL")
def _mul(imp, op, ins, outs):
    _binary(imp, op, ins, outs, "mul", "MulOptions")


def _pool(imp, op, ins, outs, kind: str, source: str):
    o = _options(imp, op, "Pool2DOptions")
    x = imp.act(ins[0])
    shape = imp.tensors[x].shape
    k, s = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
    win = Window(k, s, (1, 1), _padding(o.Padding(), shape[1:3], k, s, (1, 1)))
    imp.node(_name(imp, outs), kind, [x], outs[0], PoolAttrs(win, ACTIVATIONS[o.FusedActivationFunction()]), source)


@converter("AVERAGE_POOL_2D")
def _avg(imp, op, ins, outs):
    _pool(imp, op, ins, outs, "avg_pool2d", "AVERAGE_POOL_2D")


@converter("MAX_POOL_2D")
def _max(imp, op, ins, outs):
    _pool(imp, op, ins, outs, "max_pool2d", "MAX_POOL_2D")


@converter("MEAN")
def _mean(imp, op, ins, outs):
    x = imp.act(ins[0])
    shape = imp.tensors[x].shape
    axes = sorted(int(a) % len(shape) for a in np.ravel(imp.t(ins[1]).data))
    if len(shape) != 4 or axes != [1, 2]:
        raise UnsupportedError(f"MEAN '{_name(imp, outs)}' over axes {axes}: only the spatial axes (1, 2) of a 4-D tensor")
    out_q = _per_tensor(imp.t(outs[0]))
    out = imp.act(outs[0])
    keep = imp.tensors[out].shape == (shape[0], 1, 1, shape[3])
    target = out if keep else imp._unique(out + "_keep")
    if not keep:
        imp.tensors[target] = Tensor(target, (shape[0], 1, 1, shape[3]), "float32", None, out_q, imp.t(outs[0]).name)
    from ..ops.mean import MeanAttrs

    # TFLite Micro takes QuantizedMeanOrSum for every int8 MEAN (equal params too): not average-pool rounding
    imp.nodes.append(Node(_name(imp, outs), "mean", (x,), (target,), MeanAttrs(), None, "MEAN"))
    if not keep:
        imp.nodes.append(Node(out, "reshape", (target,), (out,), ReshapeAttrs(imp.tensors[out].shape), None, "MEAN"))


@converter("PAD", "PADV2")
def _pad(imp, op, ins, outs):
    x = imp.act(ins[0])
    pads = imp.t(ins[1]).data.reshape(-1, 2)
    if len(ins) > 2 and ins[2] >= 0:
        value = int(np.ravel(imp.t(ins[2]).data)[0])
        if value != imp.tensors[x].quant.zp:
            raise UnsupportedError(f"PADV2 '{_name(imp, outs)}' pads with {value}, not the zero point")
    imp.node(_name(imp, outs), "pad", [x], outs[0], PadAttrs(tuple((int(a), int(b)) for a, b in pads)), "PAD")


@converter("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(imp, op, ins, outs):
    x = imp.act(ins[0])
    shape = imp.t(outs[0]).shape
    imp.node(_name(imp, outs), "reshape", [x], outs[0], ReshapeAttrs(tuple(shape)), "RESHAPE")


@converter("SOFTMAX")
def _softmax(imp, op, ins, outs):
    o = _options(imp, op, "SoftmaxOptions")
    imp.node(_name(imp, outs), "softmax", [imp.act(ins[0])], outs[0], SoftmaxAttrs(float(o.Beta())), "SOFTMAX")


def _table_op(fn: str, source: str):
    def conv(imp, op, ins, outs):
        imp.node(_name(imp, outs), "unary", [imp.act(ins[0])], outs[0], UnaryAttrs(fn, semantics="tflite"), source)

    return conv


CONVERTERS["LOGISTIC"] = _table_op("sigmoid", "LOGISTIC")
CONVERTERS["TANH"] = _table_op("tanh", "TANH")
CONVERTERS["HARD_SWISH"] = _table_op("hardswish", "HARD_SWISH")


@converter("RELU", "RELU6", "RELU_N1_TO_1")
def _relu(imp, op, ins, outs):
    oc = imp.model.OperatorCodes(op.OpcodeIndex())
    name = imp.names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
    act = {"RELU": Activation(0.0), "RELU6": Activation(0.0, 6.0), "RELU_N1_TO_1": Activation(-1.0, 1.0)}[name]
    imp.node(_name(imp, outs), "unary", [imp.act(ins[0])], outs[0], UnaryAttrs("requantize", activation=act, semantics="tflite"), name)


@converter("CONCATENATION")
def _concat(imp, op, ins, outs):
    o = _options(imp, op, "ConcatenationOptions")
    names = [imp.act(i) for i in ins]
    rank = len(imp.tensors[names[0]].shape)
    if o.FusedActivationFunction() != 0:
        raise UnsupportedError(f"CONCATENATION '{_name(imp, outs)}' with a fused activation")
    imp.node(_name(imp, outs), "concat", names, outs[0], ConcatAttrs(int(o.Axis()) % rank), "CONCATENATION")


@converter("QUANTIZE")
def _quantize(imp, op, ins, outs):
    src = imp.t(ins[0])
    if src.dtype == "float32":
        imp.float_boundary[f"in:{ins[0]}"] = imp.act(outs[0])  # the int8 model input starts here
        return
    imp.node(_name(imp, outs), "unary", [imp.act(ins[0])], outs[0], UnaryAttrs("requantize", semantics="tflite"), "QUANTIZE")


@converter("DEQUANTIZE")
def _dequantize(imp, op, ins, outs):
    if imp.t(ins[0]).dtype != "int8":
        raise UnsupportedError(f"DEQUANTIZE '{_name(imp, outs)}' of {imp.t(ins[0]).dtype} (weights stored as float16?)")
    imp.float_boundary[f"out:{outs[0]}"] = imp.act(ins[0])  # the int8 model output ends here


def load_tflite(path: str | Path) -> Graph:
    """Read an int8 .tflite flatbuffer into a pre-quantized IR graph (quantize_graph needs no ranges)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model file not found: {path}")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); check the file is complete")
    try:
        imp = TfliteImporter(buf, re.sub(r"[^0-9a-zA-Z_]", "_", path.stem) or "model")
        graph = imp.run()
    except (UserError, UnsupportedError):
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt flatbuffer fails in many ways inside the reader
        raise UserError(f"{path} could not be read as a TFLite model ({type(e).__name__}: {str(e)[:100]}); "
                        "the file may be corrupt") from None
    return graph
