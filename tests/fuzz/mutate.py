"""Model mutators: byte-level (flip, truncate, splice, overwrite) and structural, through the onnx API
for ONNX and the TFLite flatbuffer object API (``ai_edge_litert.schema_py_generated``) for .tflite.

Every mutant is a pure function of (seed, index, fuzz seed), so a failure is reproduced by its id alone
(``make fuzz ARGS="--only ID"``). A structural mutator returns a short description of what it changed,
or None when it does not apply to this model (the generator then tries another).
"""

from __future__ import annotations

import copy
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from .seeds import Seed

# values that break arithmetic: zero, negative, non-finite, denormal-small, float32-huge
NASTY_FLOATS = [0.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e-38, 1e-30, 1e30, 3.4e38, -1e-3]
NASTY_INTS = [0, -1, -2, 1, 2, 3, 7, 64, 255, 1000, 65536, 2**31 - 1, -(2**31)]


@dataclass(frozen=True)
class Mutant:
    """One mutated model: ``id`` names seed, index and what changed; ``data`` the file bytes."""

    id: str
    fmt: str
    seed: str
    kind: str  # bytes | structure
    what: str
    data: bytes

    @property
    def suffix(self) -> str:
        return ".tflite" if self.fmt == "tflite" else ".onnx"


# ---------------------------------------------------------------------------------------------- bytes

def _flip(data: bytes, rng: np.random.Generator, other: bytes) -> tuple[bytes, str]:
    b = bytearray(data)
    k = int(rng.integers(1, 17))
    for _ in range(k):
        pos = int(rng.integers(0, len(b)))
        b[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(b), f"flip {k} bits"


def _truncate(data: bytes, rng: np.random.Generator, other: bytes) -> tuple[bytes, str]:
    cut = int(rng.integers(0, len(data)))
    return data[:cut], f"truncate to {cut} of {len(data)} bytes"


def _splice(data: bytes, rng: np.random.Generator, other: bytes) -> tuple[bytes, str]:
    src = other if rng.random() < 0.5 else data
    n = int(rng.integers(1, max(2, min(4096, len(src)))))
    a = int(rng.integers(0, max(1, len(src) - n)))
    at = int(rng.integers(0, len(data)))
    if rng.random() < 0.5:  # overwrite in place: offsets stay valid, contents do not
        out = data[:at] + src[a:a + n] + data[at + n:]
        return out[:len(data)], f"overwrite {n} bytes at {at}"
    return data[:at] + src[a:a + n] + data[at:], f"insert {n} bytes at {at}"


def _smash(data: bytes, rng: np.random.Generator, other: bytes) -> tuple[bytes, str]:
    b = bytearray(data)
    at = int(rng.integers(0, len(b)))
    n = int(rng.integers(1, 64))
    val = int(rng.choice([0x00, 0xFF, 0x7F, 0x80]))
    b[at:at + n] = bytes([val]) * len(b[at:at + n])
    return bytes(b), f"set {n} bytes at {at} to 0x{val:02x}"


BYTE_MUTATORS: list[Callable] = [_flip, _truncate, _splice, _smash]


# ---------------------------------------------------------------------------------------------- ONNX

def _pick(rng: np.random.Generator, seq):
    seq = list(seq)
    return seq[int(rng.integers(0, len(seq)))] if seq else None


def _onnx_value_infos(m: onnx.ModelProto, which: str):
    g = m.graph
    inits = {i.name for i in g.initializer}
    if which == "input":
        return [v for v in g.input if v.name not in inits]
    if which == "output":
        return list(g.output)
    return list(g.value_info)


def _new_dim(rng, old: int) -> int:
    return int(_pick(rng, [0, 1, 2, old + 1, max(old - 1, 1), old * 2, 3 * old + 1, 4097, 1 << 20, -3]))


def o_shape(m: onnx.ModelProto, rng) -> str | None:
    """Change a declared dimension (input, output or value_info), or the rank."""
    which = _pick(rng, ["input", "output", "output", "value_info", "value_info"])
    vis = [v for v in _onnx_value_infos(m, which) if v.type.tensor_type.HasField("shape")]
    v = _pick(rng, vis)
    if v is None:
        return None
    dims = v.type.tensor_type.shape.dim
    r = rng.random()
    if r < 0.15 and len(dims):
        del dims[len(dims) - 1]
        return f"{which} '{v.name}': drop last dim"
    if r < 0.25:
        dims.add().dim_value = int(_pick(rng, [1, 2, 3]))
        return f"{which} '{v.name}': add a dim"
    if not len(dims):
        return None
    ax = int(rng.integers(0, len(dims)))
    old = dims[ax].dim_value if dims[ax].HasField("dim_value") else 1
    new = _new_dim(rng, old)
    if new < 0:
        dims[ax].dim_param = "N"
        return f"{which} '{v.name}': dim {ax} symbolic"
    dims[ax].dim_value = new
    return f"{which} '{v.name}': dim {ax} {old}->{new}"


ONNX_TYPES = [TensorProto.DOUBLE, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32, TensorProto.INT64,
              TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.INT16, TensorProto.BFLOAT16]


def o_dtype(m: onnx.ModelProto, rng) -> str | None:
    """Change a declared element type (input, output, value_info)."""
    which = _pick(rng, ["input", "output", "value_info"])
    v = _pick(rng, _onnx_value_infos(m, which))
    if v is None:
        return None
    t = int(_pick(rng, ONNX_TYPES))
    v.type.tensor_type.elem_type = t
    return f"{which} '{v.name}': type {TensorProto.DataType.Name(t)}"


def _float_inits(m):
    return [i for i in m.graph.initializer if i.data_type == TensorProto.FLOAT and int(np.prod(i.dims)) > 0]


def o_init_values(m: onnx.ModelProto, rng) -> str | None:
    """NaN / Inf / huge / tiny / zero values in a float initializer (weights, biases, scales, BN stats)."""
    init = _pick(rng, _float_inits(m))
    if init is None:
        return None
    arr = numpy_helper.to_array(init).astype(np.float32).copy()
    flat = arr.reshape(-1)
    r = rng.random()
    if r < 0.2:
        factor = float(_pick(rng, [0.0, 1e-30, 1e-20, 1e20, 1e30, -1.0]))
        with np.errstate(all="ignore"):
            flat *= np.float32(factor)
        what = f"x{factor:g}"
    else:
        k = int(rng.integers(1, min(8, flat.size) + 1))
        val = float(_pick(rng, NASTY_FLOATS))
        idx = rng.choice(flat.size, size=k, replace=False)
        flat[idx] = np.float32(val)
        what = f"{k} values = {val:g}"
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    return f"initializer '{init.name}': {what}"


def o_init_layout(m: onnx.ModelProto, rng) -> str | None:
    """An initializer whose dims, data length or data type contradict each other."""
    init = _pick(rng, list(m.graph.initializer))
    if init is None:
        return None
    r = rng.random()
    if r < 0.4 and len(init.dims):
        ax = int(rng.integers(0, len(init.dims)))
        old = init.dims[ax]
        init.dims[ax] = _new_dim(rng, old) if rng.random() < 0.8 else 0
        return f"initializer '{init.name}': dims[{ax}] {old}->{init.dims[ax]}"
    if r < 0.7:
        t = int(_pick(rng, ONNX_TYPES + [TensorProto.FLOAT]))
        init.data_type = t
        return f"initializer '{init.name}': data_type {TensorProto.DataType.Name(t)}"
    if init.raw_data:
        cut = int(rng.integers(0, len(init.raw_data)))
        init.raw_data = init.raw_data[:cut]
        return f"initializer '{init.name}': raw_data cut to {cut} bytes"
    return None


INT_ATTRS = {"kernel_shape", "strides", "pads", "dilations", "group", "axis", "perm", "axes", "keepdims",
             "transA", "transB", "ceil_mode", "count_include_pad", "allowzero", "storage_order", "to"}
FLOAT_ATTRS = {"epsilon", "alpha", "beta", "momentum"}


def o_attr(m: onnx.ModelProto, rng) -> str | None:
    """Change, drop or add a node attribute (windows, group, axis, perm, epsilon, auto_pad...)."""
    nodes = [n for n in m.graph.node if n.op_type not in ("Constant",)]
    n = _pick(rng, nodes)
    if n is None:
        return None
    attrs = [a for a in n.attribute if a.name in INT_ATTRS | FLOAT_ATTRS | {"auto_pad", "mode"}]
    r = rng.random()
    if r < 0.1 and attrs:
        a = _pick(rng, attrs)
        n.attribute.remove(a)
        return f"node '{n.name or n.op_type}': drop attribute {a.name}"
    if r < 0.25 or not attrs:
        name = _pick(rng, ["group", "strides", "dilations", "pads", "axis", "auto_pad", "kernel_shape"])
        for a in list(n.attribute):
            if a.name == name:
                n.attribute.remove(a)
        if name == "auto_pad":
            n.attribute.append(onnx.helper.make_attribute(name, _pick(rng, ["SAME_UPPER", "SAME_LOWER", "VALID", "BOGUS"])))
        elif name in ("group", "axis"):
            n.attribute.append(onnx.helper.make_attribute(name, int(_pick(rng, NASTY_INTS))))
        else:
            k = int(_pick(rng, [1, 2, 3, 4]))
            n.attribute.append(onnx.helper.make_attribute(name, [int(_pick(rng, [0, 1, 2, 3, -1, 9, 100])) for _ in range(k)]))
        return f"node '{n.name or n.op_type}': set {name}"
    a = _pick(rng, attrs)
    if a.type == onnx.AttributeProto.INTS and len(a.ints):
        i = int(rng.integers(0, len(a.ints)))
        old = a.ints[i]
        a.ints[i] = int(_pick(rng, NASTY_INTS + [old + 1, old - 1]))
        return f"node '{n.name or n.op_type}': {a.name}[{i}] {old}->{a.ints[i]}"
    if a.type == onnx.AttributeProto.INT:
        old = a.i
        a.i = int(_pick(rng, NASTY_INTS + [old + 1, old - 1]))
        return f"node '{n.name or n.op_type}': {a.name} {old}->{a.i}"
    if a.type == onnx.AttributeProto.FLOAT:
        old = a.f
        a.f = float(_pick(rng, NASTY_FLOATS))
        return f"node '{n.name or n.op_type}': {a.name} {old:g}->{a.f:g}"
    if a.type == onnx.AttributeProto.STRING:
        a.s = _pick(rng, [b"SAME_UPPER", b"VALID", b"reflect", b"edge", b"x"])
        return f"node '{n.name or n.op_type}': {a.name}={a.s.decode()}"
    return None


def _tensor_names(m: onnx.ModelProto) -> list[str]:
    names = [i.name for i in m.graph.initializer] + [v.name for v in m.graph.input]
    for n in m.graph.node:
        names += [o for o in n.output if o]
    return list(dict.fromkeys(names))


def o_rewire(m: onnx.ModelProto, rng) -> str | None:
    """Feed a node input from another tensor (same graph), an unknown name, or swap two inputs."""
    n = _pick(rng, [n for n in m.graph.node if len(n.input)])
    if n is None:
        return None
    i = int(rng.integers(0, len(n.input)))
    r = rng.random()
    if r < 0.2 and len(n.input) > 1:
        j = (i + 1) % len(n.input)
        n.input[i], n.input[j] = n.input[j], n.input[i]
        return f"node '{n.name or n.op_type}': swap inputs {i},{j}"
    if r < 0.3:
        n.input[i] = "no_such_tensor"
        return f"node '{n.name or n.op_type}': input {i} unknown"
    # only earlier tensors keep the graph topologically sorted (the checker refuses the others anyway)
    idx = list(m.graph.node).index(n)
    earlier = [i.name for i in m.graph.initializer] + [v.name for v in m.graph.input]
    for p in list(m.graph.node)[:idx]:
        earlier += [o for o in p.output if o]
    new = _pick(rng, [t for t in earlier if t != n.input[i]])
    if new is None:
        return None
    old, n.input[i] = n.input[i], new
    return f"node '{n.name or n.op_type}': input {i} {old}->{new}"


def o_drop_node(m: onnx.ModelProto, rng) -> str | None:
    """Remove a node; its consumers read its first input instead (a bypass) or a dangling name."""
    nodes = list(m.graph.node)
    k = int(rng.integers(0, len(nodes))) if nodes else None
    if k is None:
        return None
    n = nodes[k]
    bypass = rng.random() < 0.7 and len(n.input) and n.input[0]
    m.graph.node.remove(n)
    if bypass:
        for c in m.graph.node:
            for j, name in enumerate(c.input):
                if name in n.output:
                    c.input[j] = n.input[0]
        for o in m.graph.output:
            if o.name in n.output:
                o.name = n.input[0]
    return f"drop node {k} '{n.name or n.op_type}'" + (" (bypass)" if bypass else "")


def o_op_type(m: onnx.ModelProto, rng) -> str | None:
    """Turn a node into another op of the same arity (Relu->Sigmoid, Add->Mul, MaxPool->AveragePool...)."""
    swaps = {"Relu": ["Sigmoid", "Tanh", "Softmax", "HardSwish", "Identity", "Flatten", "GlobalAveragePool"],
             "Add": ["Mul", "Sub", "Div", "MatMul", "Concat"], "Mul": ["Add", "Div", "MatMul"],
             "MaxPool": ["AveragePool", "GlobalMaxPool", "Relu"], "AveragePool": ["MaxPool", "GlobalAveragePool"],
             "Conv": ["ConvTranspose", "MaxPool", "MatMul"], "MatMul": ["Add", "Gemm", "Mul"],
             "Softmax": ["LogSoftmax", "Relu", "Flatten"], "Reshape": ["Expand", "Add"],
             "QuantizeLinear": ["DequantizeLinear"], "DequantizeLinear": ["QuantizeLinear"]}
    n = _pick(rng, [n for n in m.graph.node if n.op_type in swaps])
    if n is None:
        return None
    old, n.op_type = n.op_type, _pick(rng, swaps[n.op_type])
    return f"node '{n.name or old}': {old}->{n.op_type}"


def o_quant(m: onnx.ModelProto, rng) -> str | None:
    """QDQ parameters: scale 0 / negative / NaN / tiny / huge, zero points at and past their range, zero
    point dtype, per-channel lengths, axis."""
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    n = _pick(rng, qdq)
    if n is None:
        return None
    inits = {i.name: i for i in m.graph.initializer}
    r = rng.random()
    if r < 0.45 and len(n.input) > 1 and n.input[1] in inits:
        init = inits[n.input[1]]
        arr = numpy_helper.to_array(init).astype(np.float32).copy()
        if rng.random() < 0.2 and arr.size > 1:
            arr = arr[:-1]
            what = "one scale short"
        else:
            val = float(_pick(rng, NASTY_FLOATS))
            arr.reshape(-1)[int(rng.integers(0, arr.size))] = np.float32(val)
            what = f"a scale = {val:g}"
        init.CopyFrom(numpy_helper.from_array(arr, init.name))
        return f"node '{n.name or n.op_type}': {what}"
    if r < 0.85 and len(n.input) > 2 and n.input[2] in inits:
        init = inits[n.input[2]]
        arr = numpy_helper.to_array(init)
        if rng.random() < 0.4:
            dt = _pick(rng, [np.uint8, np.int32, np.int16, np.int8])
            v = np.clip(arr.astype(np.int64) + int(rng.integers(-3, 4)), np.iinfo(dt).min, np.iinfo(dt).max).astype(dt)
            init.CopyFrom(numpy_helper.from_array(v, init.name))
            return f"node '{n.name or n.op_type}': zero point as {np.dtype(dt).name}"
        info = np.iinfo(arr.dtype)
        v = arr.copy()
        v.reshape(-1)[int(rng.integers(0, max(v.size, 1)))] = _pick(rng, [info.min, info.max, 1, -1, 5])
        init.CopyFrom(numpy_helper.from_array(v, init.name))
        return f"node '{n.name or n.op_type}': a zero point = extreme/non-zero"
    for a in list(n.attribute):
        if a.name == "axis":
            n.attribute.remove(a)
    ax = int(_pick(rng, [-1, 0, 1, 2, 3, 4, 7]))
    n.attribute.append(onnx.helper.make_attribute("axis", ax))
    return f"node '{n.name or n.op_type}': axis={ax}"


def o_opset(m: onnx.ModelProto, rng) -> str | None:
    """Declare another default-domain opset version."""
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            old = o.version
            o.version = int(_pick(rng, [1, 6, 7, 9, 10, 11, 12, 17, 18, 21, 99]))
            return f"opset {old}->{o.version}"
    return None


ONNX_MUTATORS: list[Callable] = [o_shape, o_shape, o_dtype, o_init_values, o_init_values, o_init_layout, o_attr,
                                 o_attr, o_rewire, o_drop_node, o_op_type, o_quant, o_quant, o_opset]


# ---------------------------------------------------------------------------------------------- TFLite

def _fb():
    from ai_edge_litert import schema_py_generated as fb

    return fb


def tflite_unpack(data: bytes):
    """The object-API tree (ModelT) of a .tflite file."""
    return _fb().ModelT.InitFromPackedBuf(bytearray(data), 0)


def tflite_pack(model) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1 << 16)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _sg(model):
    return model.subgraphs[0]


def _weights(model) -> list[int]:
    """Indices of tensors with constant data in subgraph 0."""
    return [k for k, t in enumerate(_sg(model).tensors)
            if 0 <= t.buffer < len(model.buffers) and model.buffers[t.buffer].data is not None
            and len(model.buffers[t.buffer].data)]


def t_shape(model, rng) -> str | None:
    """A tensor's declared shape: one dimension, or its rank (activations and weights)."""
    sg = _sg(model)
    k = int(rng.integers(0, len(sg.tensors)))
    t = sg.tensors[k]
    shape = list(t.shape) if t.shape is not None else []
    r = rng.random()
    if r < 0.15 and shape:
        shape = shape[:-1]
        what = "drop last dim"
    elif r < 0.25:
        shape = shape + [1]
        what = "add a dim"
    elif shape:
        ax = int(rng.integers(0, len(shape)))
        old = shape[ax]
        shape[ax] = _new_dim(rng, int(old))
        what = f"dim {ax} {old}->{shape[ax]}"
    else:
        return None
    t.shape = np.array(shape, np.int32)
    return f"tensor {k} '{t.name.decode(errors='replace') if t.name else ''}': {what}"


TFLITE_TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 13, 14, 16, 17]  # float32 ... int8, float64, resource, variant, uint16, int4


def t_type(model, rng) -> str | None:
    """A tensor's element type."""
    sg = _sg(model)
    k = int(rng.integers(0, len(sg.tensors)))
    old = sg.tensors[k].type
    sg.tensors[k].type = int(_pick(rng, TFLITE_TYPES))
    return f"tensor {k}: type {old}->{sg.tensors[k].type}"


def t_quant(model, rng) -> str | None:
    """Quantization parameters: scale 0/negative/NaN/Inf/tiny/huge, zero points out of range or non-zero
    on weights (asymmetric), per-channel array lengths, quantized_dimension, missing parameters."""
    fb = _fb()
    sg = _sg(model)
    cands = [k for k, t in enumerate(sg.tensors) if t.quantization is not None and t.quantization.scale is not None]
    if not cands:
        return None
    weights = set(_weights(model))
    k = int(_pick(rng, [c for c in cands if c in weights] if rng.random() < 0.5 and weights & set(cands) else cands))
    q = sg.tensors[k].quantization
    scale = np.array(q.scale, np.float32)
    zp = np.array(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), np.int64)
    r = rng.random()
    if r < 0.3:
        val = float(_pick(rng, NASTY_FLOATS))
        scale[int(rng.integers(0, len(scale)))] = np.float32(val)
        q.scale = scale
        what = f"a scale = {val:g}"
    elif r < 0.55:
        zp = zp.copy() if len(zp) else np.zeros(1, np.int64)
        val = int(_pick(rng, [1, -1, 5, 127, -128, 128, -129, 300, 2**40]))
        zp[int(rng.integers(0, len(zp)))] = val
        q.zeroPoint = zp
        what = f"a zero point = {val}"
    elif r < 0.7:
        if len(scale) > 1 and rng.random() < 0.6:
            q.scale = scale[:-1]
            what = "one scale short"
        else:
            q.zeroPoint = np.concatenate([zp, zp[:1] + 1]) if len(zp) else np.array([1, 2], np.int64)
            what = "zero point array length differs"
    elif r < 0.85:
        old = q.quantizedDimension
        q.quantizedDimension = int(_pick(rng, [-1, 1, 2, 3, 4, 9]))
        what = f"quantized_dimension {old}->{q.quantizedDimension}"
    else:
        sg.tensors[k].quantization = fb.QuantizationParametersT() if rng.random() < 0.5 else None
        what = "quantization removed"
    return f"tensor {k}: {what}"


def t_operator(model, rng) -> str | None:
    """An operator's opcode index, its input / output tensor indices, or dropping it."""
    sg = _sg(model)
    if not sg.operators:
        return None
    j = int(rng.integers(0, len(sg.operators)))
    op = sg.operators[j]
    r = rng.random()
    n_t = len(sg.tensors)
    if r < 0.2:
        old = op.opcodeIndex
        op.opcodeIndex = int(_pick(rng, list(range(len(model.operatorCodes))) + [len(model.operatorCodes) + 3]))
        return f"operator {j}: opcode_index {old}->{op.opcodeIndex}"
    if r < 0.75:
        field = "inputs" if rng.random() < 0.7 else "outputs"
        arr = np.array(getattr(op, field), np.int32)
        if not len(arr):
            return None
        i = int(rng.integers(0, len(arr)))
        old = int(arr[i])
        arr[i] = int(_pick(rng, list(range(n_t)) + [-1, n_t, n_t + 100, -7]))
        setattr(op, field, arr)
        return f"operator {j}: {field}[{i}] {old}->{arr[i]}"
    if r < 0.85:
        arr = np.array(op.inputs, np.int32)
        op.inputs = arr[:-1] if len(arr) > 1 and rng.random() < 0.5 else np.concatenate([arr, arr[:1]])
        return f"operator {j}: {len(arr)}->{len(op.inputs)} inputs"
    del sg.operators[j]
    return f"drop operator {j}"


def t_options(model, rng) -> str | None:
    """A numeric field of an operator's builtin options (strides, padding, activation, filter, axis, beta)."""
    sg = _sg(model)
    ops = [op for op in sg.operators if op.builtinOptions is not None and vars(op.builtinOptions)]
    op = _pick(rng, ops)
    if op is None:
        return None
    o = op.builtinOptions
    fields = [f for f, v in vars(o).items() if isinstance(v, (int, float, bool, np.integer, np.floating))]
    f = _pick(rng, fields)
    if f is None:
        return None
    old = getattr(o, f)
    if isinstance(old, float):
        new = float(_pick(rng, NASTY_FLOATS))
    else:
        new = int(_pick(rng, [0, -1, 1, 2, 3, 4, 5, 7, 9, 100, 255]))
    setattr(o, f, new)
    return f"operator {sg.operators.index(op)}: {type(o).__name__}.{f} {old}->{new}"


def t_buffer(model, rng) -> str | None:
    """Constant data: cut short, emptied, extreme int32 bias values, or the tensor pointed at another buffer."""
    sg = _sg(model)
    ws = _weights(model)
    k = _pick(rng, ws)
    if k is None:
        return None
    t = sg.tensors[k]
    buf = model.buffers[t.buffer]
    data = np.array(buf.data, np.uint8)
    r = rng.random()
    if r < 0.3:
        cut = int(rng.integers(0, len(data)))
        buf.data = data[:cut]
        return f"tensor {k}: buffer cut to {cut} of {len(data)} bytes"
    if r < 0.5 and t.type == 2:  # int32 bias: values that overflow the accumulator
        v = data.view(np.int32).copy()
        v[int(rng.integers(0, len(v)))] = int(_pick(rng, [2**31 - 1, -(2**31), 2**30]))
        buf.data = v.view(np.uint8)
        return f"tensor {k}: an int32 value extreme"
    if r < 0.7:
        old = t.buffer
        t.buffer = int(_pick(rng, [0, len(model.buffers), len(model.buffers) + 10] + list(range(len(model.buffers)))))
        return f"tensor {k}: buffer {old}->{t.buffer}"
    data = data.copy()
    data[rng.integers(0, len(data), min(16, len(data)))] = rng.integers(0, 256, min(16, len(data)))
    buf.data = data
    return f"tensor {k}: 16 data bytes random"


def t_graph(model, rng) -> str | None:
    """Subgraph inputs / outputs, a second subgraph, resource variables, operator code, model version."""
    fb = _fb()
    sg = _sg(model)
    r = rng.random()
    if r < 0.25:
        field = "inputs" if rng.random() < 0.5 else "outputs"
        arr = np.array(getattr(sg, field), np.int32)
        i = int(rng.integers(0, len(arr)))
        old = int(arr[i])
        arr[i] = int(_pick(rng, list(range(len(sg.tensors))) + [-1, len(sg.tensors) + 2]))
        setattr(sg, field, arr)
        return f"subgraph {field}[{i}] {old}->{arr[i]}"
    if r < 0.4:
        model.subgraphs.append(copy.deepcopy(sg))
        return "second subgraph (a copy of the first)"
    if r < 0.55:
        k = int(rng.integers(0, len(sg.tensors)))
        if rng.random() < 0.5:
            sg.tensors[k].isVariable = True
            return f"tensor {k}: is_variable"
        sg.tensors[k].type = 13  # RESOURCE
        return f"tensor {k}: type RESOURCE"
    if r < 0.85:
        oc = _pick(rng, model.operatorCodes)
        new = int(_pick(rng, [0, 1, 2, 3, 4, 9, 14, 17, 22, 25, 40, 49, 114, 150, 151, 161, 999]))
        old = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        oc.builtinCode = new
        oc.deprecatedBuiltinCode = min(new, 127)
        return f"operator code {old}->{new}"
    old = model.version
    model.version = int(_pick(rng, [0, 1, 2, 4, 99]))
    _ = fb
    return f"model version {old}->{model.version}"


TFLITE_MUTATORS: list[Callable] = [t_shape, t_shape, t_type, t_quant, t_quant, t_quant, t_operator, t_operator,
                                   t_options, t_options, t_buffer, t_graph]


# ---------------------------------------------------------------------------------------------- driver

def _rng(fuzz_seed: int, seed_name: str, index: int) -> np.random.Generator:
    return np.random.default_rng([fuzz_seed, zlib.crc32(seed_name.encode()), index])


def mutate(seed: Seed, index: int, fuzz_seed: int = 0, other: Seed | None = None) -> Mutant:
    """Mutant number ``index`` of ``seed``: about one in four mutates bytes, the rest structure (one to
    three structural changes, so combinations are reached too)."""
    rng = _rng(fuzz_seed, seed.name, index)
    other_data = (other or seed).data
    if rng.random() < 0.25:
        fn = _pick(rng, BYTE_MUTATORS)
        data, what = fn(seed.data, rng, other_data)
        return Mutant(f"{seed.name}#{index}", seed.fmt, seed.name, "bytes", what, data)
    mutators = ONNX_MUTATORS if seed.fmt == "onnx" else TFLITE_MUTATORS
    for _attempt in range(20):
        model = onnx.load_from_string(seed.data) if seed.fmt == "onnx" else tflite_unpack(seed.data)
        whats = []
        rounds = int(_pick(rng, [1, 1, 1, 2, 3]))
        for _ in range(40):
            if len(whats) >= rounds:
                break
            try:
                what = _pick(rng, mutators)(model, rng)
            except (ValueError, TypeError, IndexError, KeyError):
                what = None  # an earlier mutation left this part unreadable (e.g. an initializer cut short)
            if what is not None:
                whats.append(what)
        try:
            data = model.SerializeToString() if seed.fmt == "onnx" else tflite_pack(model)
        except (TypeError, ValueError, OverflowError, struct.error):
            continue  # a value the serializer cannot hold (e.g. 300 in a byte field): draw again
        return Mutant(f"{seed.name}#{index}", seed.fmt, seed.name, "structure", "; ".join(whats) or "none", data)
    raise RuntimeError(f"no serializable mutant of {seed.name} #{index}")


def _families(seeds: list[Seed]) -> list[list[Seed]]:
    return [f for f in ([s for s in seeds if s.fmt == "onnx"], [s for s in seeds if s.fmt == "tflite"]) if f]


def _other(family: list[Seed], si: int, index: int) -> Seed:
    return family[(index * 7 + si + 3) % len(family)]


def mutants(seeds: list[Seed], count: int, fuzz_seed: int = 0, start: int = 0):
    """``count`` mutants, alternating ONNX and TFLite, round-robin over each format's seeds (so the many
    small .tflite op models do not crowd out the ONNX seeds); deterministic."""
    fams = _families(seeds)
    for k in range(start, start + count):
        fam = fams[k % len(fams)]
        j = k // len(fams)
        si, index = j % len(fam), j // len(fam)
        yield mutate(fam[si], index, fuzz_seed, _other(fam, si, index))


def by_id(seeds: list[Seed], mutant_id: str, fuzz_seed: int = 0) -> Mutant:
    """Rebuild one mutant from its id (``seedname#index``) with the same seed list."""
    name, _, idx = mutant_id.rpartition("#")
    for fam in _families(seeds):
        names = [s.name for s in fam]
        if name in names:
            si = names.index(name)
            return mutate(fam[si], int(idx), fuzz_seed, _other(fam, si, int(idx)))
    raise KeyError(f"no seed named {name}")
