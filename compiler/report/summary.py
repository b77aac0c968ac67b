"""report.json contents and the terminal summary of a compiled model."""

from __future__ import annotations

import numpy as np

from ..arith.bitwidth import c_array_type
from ..boards import Board
from ..ir import Graph
from ..memory import ArenaPlan
from ..ops import op_def

# Code-size estimate (flash) for the portable runtime until a linked ELF gives the real figure.
RUNTIME_BASE_BYTES = 2048
KERNEL_BYTES = 1536
LAYER_CALL_BYTES = 160


def estimate_code_bytes(graph: Graph) -> int:
    ops = {n.op for n in graph.nodes if not op_def(n).alias}
    layers = sum(1 for n in graph.nodes if not op_def(n).alias)
    return RUNTIME_BASE_BYTES + KERNEL_BYTES * len(ops) + LAYER_CALL_BYTES * layers


def _param_array_bytes(node) -> int:
    """Flash of a layer's parameter arrays (multipliers, shifts, lookup tables) as the C code stores them."""
    arrays = [v for v in vars(node.params).values() if isinstance(v, np.ndarray)] if node.params is not None else []
    return sum(a.size * c_array_type(a)[1] for a in arrays)


def param_bytes(node, graph: Graph) -> int:
    """Flash of one layer: the constant tensors it reads and its parameter arrays."""
    return sum(graph.tensors[i].nbytes for i in node.inputs if i and graph.tensors[i].is_const) + _param_array_bytes(node)


def flash_estimate(graph: Graph) -> tuple[int, int]:
    """(weights and parameter arrays, code estimate) in bytes of flash, before a linked ELF says better."""
    weights = sum(t.nbytes for t in graph.tensors.values() if t.is_const) + sum(_param_array_bytes(n) for n in graph.nodes)
    return weights, estimate_code_bytes(graph)


def _offset(plan: ArenaPlan, tensor: str) -> int:
    """Arena offset of a tensor (of its per-patch buffer when it only exists patch by patch)."""
    return plan.offsets.get(tensor, plan.offsets.get(f"{tensor}@patch", -1))


def build_report(graph: Graph, plan: ArenaPlan, board: Board, model_path: str, extra: dict | None = None,
                 schedule=None) -> dict:
    """report.json: per layer its op, shapes, MACs, arena offsets, bits and (from the ``schedule``) the kernel
    implementation chosen; the model's SRAM and flash; ``extra`` merged in."""
    kernels = {st.index: st.kernel.template.split(".")[0] for st in schedule.layers} if schedule is not None else {}
    layers = []
    idx = 0
    for n in graph.nodes:
        d = op_def(n)
        if d.alias:
            continue
        out = graph.tensors[n.outputs[0]]
        layers.append({
            "index": idx,
            "name": n.name,
            "op": n.op,
            "source": n.source,
            "input_shapes": [list(graph.tensors[i].shape) for i in n.inputs if i and not graph.tensors[i].is_const],
            "output_shape": list(out.shape),
            "macs": d.macs(n, graph),
            "arena_offset": _offset(plan, out.name),
            "input_offsets": [_offset(plan, i) for i in n.inputs if i and not graph.tensors[i].is_const],
            "bitwidth": out.quant.bits if out.quant is not None else 8,
            "weight_bitwidth": 8,
            "param_bytes": param_bytes(n, graph),
            "kernel": kernels.get(idx),
        })
        idx += 1
    weights, code = flash_estimate(graph)
    report = {
        "model": str(model_path),
        "board": board.name,
        "peak_sram_bytes": plan.arena_size,
        "arena_bytes": plan.arena_size,
        "activation_bytes": plan.activations_size,
        "flash_bytes": weights + code,
        "weights_bytes": weights,
        "code_bytes_estimate": code,
        "macs": sum(lay["macs"] for lay in layers),
        "board_sram_bytes": board.sram_bytes,
        "board_flash_bytes": board.flash_bytes,
        "inputs": [{"name": n, "shape": list(graph.tensors[n].shape), "scale": graph.tensors[n].quant.s,
                    "zero_point": graph.tensors[n].quant.zp, "layout_perm": list(graph.io_perm.get(n, ()))}
                   for n in graph.inputs],
        "outputs": [{"name": n, "shape": list(graph.tensors[n].shape), "scale": graph.tensors[n].quant.s,
                     "zero_point": graph.tensors[n].quant.zp, "layout_perm": list(graph.io_perm.get(n, ()))}
                    for n in graph.outputs],
        "layers": layers,
    }
    report.update(extra or {})
    return report


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def _instructions(n: int) -> str:
    """~74.5 M instr, ~583 k instr: an estimate, three significant digits."""
    if n >= 1_000_000:
        return f"~{n / 1e6:.3g} M instr"
    return f"~{n / 1e3:.3g} k instr"


def _why_layerwise(report: dict) -> str:
    pc = report.get("plan_choice")
    if pc is None:
        return "patching would not lower it"
    alt = pc.get("alternative")
    if alt is None:
        return "patching off"
    if pc["optimize"] == "speed" and alt["grid"]:
        return "the fastest plan that fits"
    cap = pc.get("max_patch_overhead")
    within = f" within --max-patch-overhead {cap:g}" if cap is not None else ""
    if pc.get("candidates_tried", len(report.get("patch_candidates", ()))) == 0:
        return f"no patch plan{within}" if cap is not None else "the model has no split point for patching"
    return f"no patch plan{within} lowers the peak"


def plan_choice_line(report: dict) -> str:
    """What the plan taken costs and what the other --optimize would give, e.g. "optimized for speed: layer
    by layer, 64,512 B, ~74.5 M instr; --optimize memory: 39,008 B (5x5 patches over 12 layers), ~81 M instr
    (+9%)". A forced plan is compared with layer by layer; empty when patching is off or the report has
    no plan choice."""
    pc = report.get("plan_choice")
    if not pc:
        return ""
    cur, alt = pc["chosen"], pc.get("alternative")
    if alt is None:
        lw = report.get("estimated_instructions_layerwise")
        if not cur["grid"] or not lw:
            return ""
        return (f"forced plan: {cur['plan']}, {_instructions(cur['estimated_instructions'])}; layer by layer "
                f"{_instructions(lw)} ({100 * (lw / cur['estimated_instructions'] - 1):+.0f}%)")
    head = (f"optimized for {pc['optimize']}: {cur['plan']}, {cur['peak_sram_bytes']:,} B, "
            f"{_instructions(cur['estimated_instructions'])}")
    if (alt["stage_layers"], alt["grid"]) == (cur["stage_layers"], cur["grid"]):
        return f"{head}; --optimize {alt['optimize']} would choose the same"
    change = alt["estimated_instructions"] / cur["estimated_instructions"] - 1 if cur["estimated_instructions"] else 0.0
    fits = "" if alt["fits"] else f", over the {pc['budget_bytes']:,} B budget"
    return (f"{head}; --optimize {alt['optimize']}: {alt['peak_sram_bytes']:,} B ({alt['plan']}{fits}), "
            f"{_instructions(alt['estimated_instructions'])} ({100 * change:+.0f}%)")


def format_summary(report: dict) -> str:
    lines = []
    lines.append(f"{'#':>3}  {'op':<18} {'output':<18} {'MACs':>11} {'arena@':>8}  bits")
    stage = (report.get("patch_plan") or {}).get("stage_layers", 0)
    for lay in report["layers"]:
        shape = "x".join(map(str, lay["output_shape"]))
        mark = "  (per patch)" if lay["index"] < stage else ""
        lines.append(f"{lay['index']:>3}  {lay['op']:<18} {shape:<18} {lay['macs']:>11,} {lay['arena_offset']:>8}  {lay['bitwidth']}{mark}")
    sram_pct = 100.0 * report["peak_sram_bytes"] / report["board_sram_bytes"]
    flash_pct = 100.0 * report["flash_bytes"] / report["board_flash_bytes"]
    lines.append("")
    lines.append(f"model     {report['model']}")
    lines.append(f"board     {report['board']}")
    lines.append(f"MACs      {report['macs']:,}")
    lines.append(f"peak SRAM {report['peak_sram_bytes']:,} B ({_kb(report['peak_sram_bytes'])}, {sram_pct:.1f}% of board)")
    pp = report.get("patch_plan")
    if "peak_sram_layerwise_bytes" in report:
        if pp:
            lines.append(f"          patched: first {pp['stage_layers']} layers in {pp['grid']}x{pp['grid']} patches "
                         f"(+{100 * pp['overhead']:.1f}% MACs); layer by layer it would be "
                         f"{report['peak_sram_layerwise_bytes']:,} B; input {report['input_in_sram']}")
        else:
            lines.append(f"          layer by layer ({_why_layerwise(report)}); input {report['input_in_sram']}")
    choice = plan_choice_line(report)
    if choice:
        lines.append(f"          {choice}")
    lines.append(f"flash     {report['flash_bytes']:,} B ({_kb(report['flash_bytes'])}, {flash_pct:.1f}% of board; "
                 f"weights {report['weights_bytes']:,} B + code estimate {report['code_bytes_estimate']:,} B)")
    return "\n".join(lines)
