"""Render the quantized graph and its arena plan into C sources.

Each layer becomes one block in ``<name>.c``: a comment naming the ONNX node, op, shapes, bitwidths
and arena offsets, then one kernel call rendered from ``templates/kernels/<op>.c.j2``. Constant
tensors and per-layer arrays (multipliers, shifts, tables) go to ``<name>_weights.c`` as ``const``
so they stay in flash. Output is a pure function of the inputs: same model and options, same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..ir import Graph, Tensor
from ..memory import ArenaPlan
from ..ops import op_def
from ..ops.spatial import as_nhwc

TEMPLATES = Path(__file__).parent / "templates"
C_TYPES = {"int8": "int8_t", "int32": "int32_t", "uint8": "uint8_t"}


@dataclass(frozen=True)
class CSource:
    """Generated files: {relative path: text}."""

    files: dict[str, str]


def c_identifier(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if s and not s[0].isdigit() else "_" + s


def _c_array(values, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n    ".join(lines)


def _c_float(v: float) -> str:
    text = f"{float(v):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["c_array"] = _c_array
    env.filters["dims"] = lambda s: "{" + ", ".join(str(int(v)) for v in s) + "}"
    env.filters["cfloat"] = _c_float
    return env


@dataclass(frozen=True)
class TensorRef:
    name: str
    ptr: str
    shape: tuple[int, ...]
    dims4: tuple[int, int, int, int]
    dtype: str
    offset: int | None
    size: int


@dataclass(frozen=True)
class ArrayDef:
    symbol: str
    ctype: str
    values: np.ndarray


def layer_comment(node, graph: Graph, plan: ArenaPlan, macs: int) -> list[str]:
    def desc(t: Tensor) -> str:
        where = f"@arena+{plan.offsets[t.name]}" if not t.is_const else "const"
        bits = t.quant.bits if t.quant is not None else 32
        return f"{t.dtype}{list(t.shape)} {bits}-bit {where}"

    ins = [graph.tensors[i] for i in node.inputs if i]
    lines = [f"node '{node.name}' ({node.source})"]
    for t in ins:
        lines.append(f"in  {desc(t)}")
    for o in node.outputs:
        lines.append(f"out {desc(graph.tensors[o])}")
    if macs:
        lines.append(f"MACs {macs}")
    return lines


def generate_c(graph: Graph, plan: ArenaPlan, prefix: str = "model", provenance: dict | None = None) -> CSource:
    """Render the library for ``graph`` (quantized) laid out by ``plan``."""
    env = _environment()
    P = c_identifier(prefix)
    arrays: list[ArrayDef] = []
    const_symbols: dict[str, str] = {}
    layers = []

    def ref(name: str, layer: int, k: int) -> TensorRef:
        t = graph.tensors[name]
        if t.is_const:
            if name not in const_symbols:
                sym = f"{P}_l{layer}_c{k}"
                const_symbols[name] = sym
                arrays.append(ArrayDef(sym, C_TYPES[t.dtype], t.data))
            ptr, off = const_symbols[name], None
        else:
            off = plan.offsets[name]
            ptr = f"{P.upper()}_ACT({off})"
        return TensorRef(name, ptr, tuple(t.shape), as_nhwc(tuple(t.shape)), t.dtype, off, t.size)

    index = 0
    for node in graph.nodes:
        d = op_def(node)
        if d.alias:
            continue
        call = d.kernel(node, graph)
        ctx = {}
        for key, value in call.context.items():
            if isinstance(value, np.ndarray):
                sym = f"{P}_l{index}_{key}"
                ctype = "int8_t" if value.dtype == np.int8 else "int32_t"
                arrays.append(ArrayDef(sym, ctype, value))
                ctx[key] = sym
            else:
                ctx[key] = value
        inputs = [ref(i, index, k) if i else None for k, i in enumerate(node.inputs)]
        outputs = [ref(o, index, 0) for o in node.outputs]
        macs = d.macs(node, graph)
        body = env.get_template(f"kernels/{call.template}").render(c=ctx, inp=inputs, out=outputs, P=P)
        layers.append({
            "index": index, "op": node.op, "name": node.name, "comment": layer_comment(node, graph, plan, macs),
            "body": body.rstrip("\n"), "macs": macs,
        })
        index += 1

    def io(names):
        out = []
        for n in names:
            t = graph.tensors[n]
            out.append({"name": n, "offset": plan.offsets[n], "size": t.size, "shape": t.shape,
                        "scale": t.quant.s, "zero_point": t.quant.zp, "perm": graph.io_perm.get(n)})
        return out

    values = {
        "P": P, "PU": P.upper(), "version": __version__, "provenance": provenance or {},
        "layers": layers, "arrays": arrays, "inputs": io(graph.inputs), "outputs": io(graph.outputs),
        "arena_size": plan.arena_size, "scratch_offset": plan.scratch_offset, "scratch_size": plan.scratch_size,
    }
    files = {
        f"include/{P}.h": env.get_template("model.h.j2").render(**values),
        f"src/{P}.c": env.get_template("model.c.j2").render(**values),
        f"src/{P}_weights.h": env.get_template("weights.h.j2").render(**values),
        f"src/{P}_weights.c": env.get_template("weights.c.j2").render(**values),
    }
    return CSource(files)
