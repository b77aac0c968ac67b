"""Render the quantized graph and its arena plan into C sources.

Each layer becomes one block in ``<name>.c``: a comment naming the ONNX node, op, shapes, bitwidths
and arena offsets, then one kernel call rendered from ``templates/kernels/<op>.c.j2``. Constant
tensors and per-layer arrays (multipliers, shifts, tables) go to ``<name>_weights.c`` as ``const``
so they stay in flash. Output is a pure function of the inputs: same model and options, same bytes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..arith.bitwidth import c_array_type, pack
from ..ir import Graph, Tensor
from ..memory import ArenaPlan
from ..memory.planner import scratch_buffer
from ..ops import op_def
from ..ops.spatial import as_nhwc
from ..patch.memory import region_buffer
from ..patch.planner import crop_buffer, local_window
from ..schedule.schedule import Schedule, Step

TEMPLATES = Path(__file__).parent / "templates"
# C type of a tensor's storage; packed 4- and 2-bit maps are raw bytes (arith/bitwidth.py: the layout)
C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "uint8": "uint8_t", "int4": "uint8_t",
           "int2": "uint8_t"}


@dataclass(frozen=True)
class CSource:
    """Generated files: {relative path: text}."""

    files: dict[str, str]


def c_identifier(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if s and not s[0].isdigit() else "_" + s


def c_array(values, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n    ".join(lines)


def _c_float(v: float) -> str:
    text = f"{float(v):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["c_array"] = c_array
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


def generate_c(schedule: Schedule, plan: ArenaPlan, prefix: str = "model", provenance: dict | None = None) -> CSource:
    """Render the library for ``schedule`` (its graph quantized) laid out by ``plan``: one block per step,
    the patch loop's chains (dispatched per patch when there are several) first."""
    graph = schedule.graph
    loop = schedule.loop
    patch = loop.plan if loop is not None else None
    env = environment()
    P = c_identifier(prefix)
    arrays: list[ArrayDef] = []
    const_symbols: dict[str, str] = {}

    def ref(name: str, step: Step, k: int) -> TensorRef:
        t = graph.tensors[name]
        if t.is_const:
            if name not in const_symbols:
                # a constant only an alternative chain reads (a low-bit chain's rescaled bias) gets its tag
                sym = f"{P}_l{step.index}" + (f"c{step.chain}" if step.chain > 0 else "") + f"_c{k}"
                const_symbols[name] = sym
                data = pack(t.data, t.bits) if t.packed else t.data
                arrays.append(ArrayDef(sym, C_TYPES[t.dtype], data))
            ptr, off = const_symbols[name], None
        else:
            off = plan.offsets[step.buffer(name)]
            ptr = f"{P.upper()}_ACT({off})"
        return TensorRef(name, ptr, tuple(t.shape), as_nhwc(tuple(t.shape)), t.dtype, off, t.size)

    def ref_shape(name: str) -> TensorRef:
        """A tensor's shapes without emitting it (a replaced constant: its template reads only its shape)."""
        t = graph.tensors[name]
        return TensorRef(name, "NULL", tuple(t.shape), as_nhwc(tuple(t.shape)), t.dtype, None, t.size)

    def layer(step: Step) -> dict:
        node, call, index = step.node, step.kernel, step.index
        d = op_def(node)
        tag = f"c{step.chain}" if step.chain > 0 else ""  # an alternative chain's own per-layer arrays
        ctx = {}
        for key, value in call.context.items():
            if isinstance(value, np.ndarray):
                sym = f"{P}_l{index}{tag}_{key}"
                ctype = c_array_type(value)[0]
                arrays.append(ArrayDef(sym, ctype, value))
                ctx[key] = sym
            else:
                ctx[key] = value
        # a constant the implementation replaces by its own array (laid-out weights, folded bias) is not
        # emitted: it would sit in flash unread
        replaced = set(call.kernel.replaces) if call.kernel is not None else set()
        inputs = [(ref(i, step, k) if k not in replaced or not graph.tensors[i].is_const else ref_shape(i)) if i
                  else None for k, i in enumerate(node.inputs)]
        outputs = [ref(o, step, 0) for o in node.outputs]
        macs = d.macs(node, graph)
        L = d.kernel_dims(node, graph, call, f"pl[{index}]" if step.in_loop else None)
        prologue = ""
        if step.in_loop:
            for ci, (j, slot) in enumerate(loop.plan_of(step.chain).crops):  # a sub-patch chain's own crops
                if j != index:
                    continue
                off = plan.offsets[crop_buffer(graph, patch, j, slot, step.chain)]
                dst = f"{P.upper()}_ACT({off})"
                prologue += env.get_template("kernels/crop.c.j2").render(
                    tensor=node.inputs[slot], index=ci, channels=graph.tensors[node.inputs[slot]].pixel_bytes,
                    src=inputs[slot].ptr, dst=dst, layer=j)
                inputs[slot] = dataclasses.replace(inputs[slot], ptr=dst)
        body = prologue + env.get_template(f"kernels/{call.template}").render(c=ctx, inp=inputs, out=outputs, P=P, L=L)
        comment = layer_comment(node, graph, plan, macs) if not step.in_loop else [
            f"node '{node.name}' ({node.source}), per "
            + ("sub-patch" if loop.sub is not None and loop.sub.chain == step.chain else "patch")
            + (f", chain {step.chain}" if len(loop.chains) > 1 else ""),
            *[f"in  {graph.tensors[i].dtype}{list(graph.tensors[i].shape)} region buffer @arena+{plan.offsets[step.buffer(i)]}"
              for i in step.reads],
            f"out {graph.tensors[node.outputs[0]].dtype}{list(graph.tensors[node.outputs[0]].shape)} region buffer "
            f"@arena+{plan.offsets[step.buffer(node.outputs[0])]}",
            f"MACs {macs} whole map"]
        scratch = None
        size = call.scratch_bytes
        if size:
            scratch = (plan.offsets[scratch_buffer(node, max(step.chain, 0))], size)
            comment.append(f"scratch {size} B @arena+{scratch[0]}")
        out_t = graph.tensors[node.outputs[0]]
        # the output the layer_output hook receives: the whole tensor, or this patch's region of it
        out_bytes = (f"(int32_t)pl[{index}].out_h * pl[{index}].out_w * {out_t.pixel_bytes}" if step.in_loop
                     else str(out_t.nbytes))
        return {"index": index, "op": node.op, "name": node.name, "comment": comment, "body": body.rstrip("\n"),
                "macs": macs, "in_stage": step.in_loop, "scratch": scratch, "out_ptr": outputs[0].ptr,
                "out_bytes": out_bytes}

    chains = [[layer(st) for st in chain.steps] for chain in loop.chains] if loop is not None else []
    rest = [layer(st) for st in schedule.rest.steps]
    layers = (chains[0] if chains else []) + rest  # one entry per layer: names and counts
    steps = [st for chain in loop.chains for st in chain.steps] if loop is not None else []
    headers = sorted({st.kernel.kernel.header for st in steps + list(schedule.rest.steps)
                      if st.kernel.kernel is not None} - {"mcunn.h"})

    def io(names):
        out = []
        for n in names:
            t = graph.tensors[n]
            out.append({"name": n, "offset": plan.offsets.get(n, -1), "size": t.nbytes, "shape": t.shape,
                        "scale": t.quant.s, "zero_point": t.quant.zp, "perm": graph.io_perm.get(n)})
        return out

    def check_block(lp) -> dict:
        """The run-time dispatch's check: its kernel call on the probe chain's region buffer of the checked
        tensor (the patch's input region, or the output region of the layer that makes it)."""
        ck, d = lp.check, lp.dispatch
        probe = lp.chains[ck.chain].steps
        if ck.after == 0:
            rows, cols = "patch->in.h", "patch->in.w"
        else:
            k = probe[ck.after - 1].index
            rows, cols = f"pl[{k}].out_h", f"pl[{k}].out_w"
        body = env.get_template(f"kernels/{ck.kernel.template}").render(
            c=ck.kernel.context, rows=rows, cols=cols, inp=f"{P.upper()}_ACT({plan.offsets[ck.buffer()]})", flag="outlier")
        channels = graph.tensors[ck.tensor].pixel_bytes
        src, dst = plan.offsets[ck.buffer()], plan.offsets[region_buffer(ck.tensor, d.outlier_chain)]
        return {"chain": ck.chain, "outlier_chain": d.outlier_chain, "after": ck.after, "tensor": ck.tensor,
                "body": body.rstrip("\n"), "resume": ck.resume, "bytes": f"(size_t)({rows} * {cols} * {channels})",
                "src": f"{P.upper()}_ACT({src})", "dst": f"{P.upper()}_ACT({dst})", "moves": src != dst}

    patch_ctx = None
    if patch is not None:
        stage_len = patch.stage_len
        inp, split = graph.inputs[0], patch.split
        sub = loop.sub
        # one entry type for patches and sub-patches: room for the crops of either plan (a table uses its own
        # plan's, in order; the rest stay zero)
        num_crops = max(len(patch.crops), len(sub.plan.crops) if sub is not None else 0)

        def table_of(pp) -> list[dict]:
            table = []
            for p, regs in enumerate(pp.regions):
                lws = [local_window(graph, pp, n, p) for n in graph.nodes[:stage_len]]
                entries = []
                for n, lw in zip(graph.nodes[:stage_len], lws):
                    rin = regs[[i for i in n.inputs if i and not graph.tensors[i].is_const][0]]
                    rout = regs[n.outputs[0]]
                    entries.append((rin.h, rin.w, rout.h, rout.w, lw.pad_top if lw else 0, lw.pad_left if lw else 0))
                crops = []
                for j, slot in pp.crops:
                    n = graph.nodes[j]
                    ri, ro = regs[n.inputs[slot]], regs[n.outputs[0]]
                    crops.append((ri.h, ri.w, ro.top - ri.top, ro.left - ri.left))
                crops += [(0, 0, 0, 0)] * (num_crops - len(crops))
                table.append({"in": regs[inp], "out": regs[split], "layers": entries, "crops": crops})
            return table

        sub_ctx = None
        if sub is not None:
            first = [ids[0] if ids else 0 for ids in sub.of_patch] + [len(sub.plan.regions)]
            sub_ctx = {"factor": sub.factor, "chain": sub.chain, "count": len(sub.plan.regions),
                       "table": table_of(sub.plan), "first": first,
                       "overhead": f"{100 * sub.plan.overhead:.1f}"}
        patch_ctx = {
            "grid": patch.grid, "count": patch.patches, "stage_len": stage_len, "table": table_of(patch),
            "sub": sub_ctx,
            "split": split, "split_shape": graph.tensors[split].shape,
            "input_shape": graph.tensors[inp].shape, "by_patch": patch.input_by_patch,
            "input_whole": plan.offsets.get(inp, -1), "split_whole": plan.offsets[split],
            "overhead": f"{100 * patch.overhead:.1f}", "num_crops": num_crops,
            "chains": [{"layers": ls, "input_region": plan.offsets[region_buffer(inp, c)],
                        "split_region": plan.offsets[region_buffer(split, c)]} for c, ls in enumerate(chains)],
            "dispatch": list(loop.dispatch.chain_of_patch) if loop.dispatch is not None and not loop.runtime else None,
            "check": check_block(loop) if loop.runtime else None,
        }
    values = {
        "P": P, "PU": P.upper(), "version": __version__, "provenance": provenance or {},
        "layers": layers, "arrays": arrays, "headers": headers, "inputs": io(graph.inputs), "outputs": io(graph.outputs),
        "arena_size": plan.arena_size,
        "patch": patch_ctx,
    }
    files = {
        f"include/{P}.h": env.get_template("model.h.j2").render(**values),
        f"src/{P}.c": env.get_template("model.c.j2").render(**values),
        f"src/{P}_weights.h": env.get_template("weights.h.j2").render(**values),
        f"src/{P}_weights.c": env.get_template("weights.c.j2").render(**values),
    }
    return CSource(files)
