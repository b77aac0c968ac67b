"""Instruction-cost model of the C kernels: how many instructions one inference takes, layer by layer or
patch by patch, without running it. The patch search uses it to find the fastest plan that fits.

Each kernel's cost is linear in a few counts it computes from the shapes of one call (its
implementation's ``KernelCost``: ``features`` and ``counts``, declared with the ``ops.kernel.Kernel`` in
the op's module; e.g. for a convolution: calls, output pixels, outputs, kernel-row runs, and
multiply-accumulates over the taps inside the image), so a patched stage costs the sum over its patches
of the same counts on the smaller regions: the recomputed halo, the padding at the patch borders and the
per-call setup of every patch are all in it. ``invoke`` is what runs outside the layers (the patch loop,
the input copy and the paste of each patch into the split tensor, the layer hooks).

The coefficients are plain data: instructions per unit of each feature, fitted by non-negative least
squares on per-layer guest-instruction counts of ``mcucompile bench`` (QEMU ``-icount``) by
``bench/fit_cost_model.py``; each op kernel's sit in its ``KernelCost.coefficients``, the runtime's
(``copy_region``, ``invoke``, and ``other`` for a kernel that states no cost) in
:data:`RUNTIME_COEFFICIENTS` here. Every implementation (portable, DSP, MVE) declares its own, so the
estimate follows the kernels the board's schedule runs: when a kernel gets faster, rerun that script
(``--kernels portable`` or ``auto``) and paste what it prints for that kernel into its declaration;
nothing else changes.
``FIT`` records the measurement they came from. This module names no op and no template.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Node, Region
from ..ops import KernelCall, op_def
from ..ops.kernel import Geometry, base_counts
from ..ops.spatial import as_nhwc
from .planner import PatchPlan, local_window

#: where the coefficients came from (printed by bench/fit_cost_model.py together with them)
FIT = ("fitted on qemu-m4 (Cortex-M4, QEMU -icount, arm-none-eabi-gcc -O2), portable kernels of runtime_c "
       "at 07c1aa1: 66 runs, total within 0.4% (qemu-m7: 4%)")

# The fit: 66 runs (MNIST, the MLPerf Tiny models (float ONNX and int8 .tflite), MobileNetV2-0.35 at 144x144
# and three coverage nets (pad, concat, transpose, mul, lookup tables, pools), each layer by layer and with
# up to 6 patch plans (the minimum-peak one, short to long stages, 2x2 to 8x8, one input-by-patch)).
# Non-negative least squares on their 1,337 per-layer counts (and each run's total outside the layers),
# each weighted by 1/count (relative error). Total of every run within 0.4% (mean 0.1%); a model family
# left out of the fit is estimated within 0.3%; on qemu-m7 within 4%, on qemu-m55 6-15% high. Each op
# kernel's coefficients live with its ``ops.kernel.Kernel`` (``cost.coefficients``; ``cost.note`` says
# when they were set by hand); the fitting script prints them per kernel.

#: what runs outside the op kernels: ``copy_region`` (mcu_copy_region_s8 / mcu_paste_region_s8: the crops,
#: the input copy and the paste of each patch) and ``invoke`` (the patch loop; ``layer_calls`` is the
#: status check and the hook calls around each layer), and ``other``: a kernel call whose implementation
#: states no cost (a new op's), by hand, like the slower kernels per output and per MAC
RUNTIME_FEATURES: dict[str, tuple[str, ...]] = {
    "copy_region": ("calls", "rows", "bytes"),
    "invoke": ("calls", "layer_calls", "patches"),
    "other": ("calls", "outputs", "macs"),
}
RUNTIME_COEFFICIENTS: dict[str, dict[str, float]] = {
    "copy_region": {"calls": 38.702, "rows": 35.553, "bytes": 0.537},
    "invoke": {"calls": 0.0, "layer_calls": 46.068, "patches": 0.0},
    "other": {"calls": 200.0, "outputs": 100.0, "macs": 7.0},
}

#: the cost key of a kernel call whose implementation states no cost
FALLBACK = "other"

Features = dict[tuple[str, str], float]  # (kernel, feature) -> count, summed over calls


@dataclass(frozen=True)
class CostEstimate:
    """Estimated instructions of one inference: per report layer (alias layers have none) and outside them."""

    layers: tuple[float, ...]
    outside: float

    @property
    def total(self) -> int:
        return int(round(sum(self.layers) + self.outside))


def kernel_of(node: Node, graph: Graph, board=None) -> KernelCall | None:
    """The kernel call a layer makes on ``board`` (None: portable), None for alias layers (no kernel)."""
    d = op_def(node)
    if d.alias:
        return None
    return d.kernel(node, graph, board)


def cost_key(call: KernelCall) -> str:
    """The name a call's counts and coefficients go by: its implementation's (the template's stem), or
    :data:`FALLBACK` when the implementation states no cost."""
    impl = call.kernel
    return impl.name if impl is not None and impl.cost is not None else FALLBACK


def coefficient_table(calls) -> dict[str, dict[str, float]]:
    """Instructions per unit of each feature, per cost key: the op kernels' own (of ``calls``) and the
    runtime's."""
    table = {k: dict(v) for k, v in RUNTIME_COEFFICIENTS.items()}
    for call in calls:
        if call is not None and cost_key(call) != FALLBACK:
            table.setdefault(call.kernel.name, dict(call.kernel.cost.coefficients))
    return table


def _whole_geometry(node: Node, graph: Graph) -> Geometry:
    acts = [i for i in node.inputs if i and not graph.tensors[i].is_const]
    _, ih, iw, _ = as_nhwc(tuple(graph.tensors[acts[0]].shape)) if acts else (1, 1, 1, 1)
    _, oh, ow, _ = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))
    whole_in, whole_out = Region(0, 0, ih, iw), Region(0, 0, oh, ow)
    pads = op_def(node).patch_local_pads(node, whole_in, whole_out) if len(
        graph.tensors[node.outputs[0]].shape) == 4 else None  # the whole map is one patch: its own padding
    pt, pl = pads if pads is not None else (0, 0)
    return Geometry(ih, iw, oh, ow, pt, pl)


def _fallback_counts(node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """A kernel that states no cost: per call, output and MAC (the op's MACs, scaled to the region)."""
    out_shape = graph.tensors[node.outputs[0]].shape
    f = base_counts(node, graph, g)
    whole = graph.tensors[node.outputs[0]].size
    f["macs"] = op_def(node).macs(node, graph) * (f["outputs"] / whole if len(out_shape) == 4 and whole else 1.0)
    if len(out_shape) != 4:
        f["outputs"] = float(whole)
    return f


def _kernel_features(call: KernelCall, node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """One call's counts, as the C kernel loops over them (runtime_c/src): the implementation's own."""
    if cost_key(call) == FALLBACK:
        return _fallback_counts(node, graph, g)
    return call.kernel.cost.counts(node, graph, g)


def copy_features(rows: int, row_bytes: int) -> dict[str, float]:
    """One ``mcu_copy_region_s8`` / ``mcu_paste_region_s8`` call: a memcpy per row."""
    return {"calls": 1.0, "rows": float(rows), "bytes": float(rows * row_bytes)}


def _add(into: Features, kernel: str, f: dict[str, float]) -> None:
    for name, v in f.items():
        into[(kernel, name)] = into.get((kernel, name), 0.0) + v


def _patch_layer_features(feats: Features, graph: Graph, plan: PatchPlan, j: int, node: Node, call: KernelCall,
                          p: int, memo: dict) -> None:
    """Add stage layer j's counts in patch p (``node``: its node in the chain that runs it) and its crops'."""
    regs = plan.regions[p]
    lw = local_window(graph, plan, node, p)
    if lw is not None:
        g = Geometry(lw.in_h, lw.in_w, lw.out_h, lw.out_w, lw.pad_top, lw.pad_left)
    else:
        r = regs[node.outputs[0]]
        g = Geometry(r.h, r.w, r.h, r.w, 0, 0)
    key = cost_key(call)
    mk = (j, node.outputs[0], key, g)
    f = memo.get(mk)
    if f is None:  # patches of one size share their counts
        f = memo[mk] = _kernel_features(call, node, graph, g)
    _add(feats, key, f)
    for cj, slot in plan.crops:
        if cj == j and op_def(node).patch_crops_operands:
            t = graph.tensors[node.inputs[slot]]
            row_bytes = regs[node.outputs[0]].w * (t.pixel_bytes if t.packed else t.shape[3])  # a packed operand's rows in its bytes
            _add(feats, "copy_region", copy_features(regs[node.outputs[0]].h, row_bytes))


def plan_features(graph: Graph, plan: PatchPlan | None = None,
                  kernels: tuple[KernelCall | None, ...] | None = None) -> tuple[list[Features], Features]:
    """The (kernel, feature) counts of one inference: one dict per report layer (summed over the
    patches for a per-patch layer, its crops included) and one for what runs outside the layers.

    Parameters
    ----------
    graph : the quantized graph
    plan : the patch plan, or None for layer-by-layer execution
    kernels : ``kernel_of`` for every node (computed here when not given; pass it when costing many plans)
    """
    if kernels is None:
        kernels = tuple(kernel_of(n, graph) for n in graph.nodes)
    stage_len = plan.stage_len if plan is not None else 0
    layers: list[Features] = []
    outside: Features = {}
    layer_calls = 0
    memo: dict[tuple[int, Geometry], dict[str, float]] = {}
    for j, (node, call) in enumerate(zip(graph.nodes, kernels)):
        if call is None:
            continue
        key = cost_key(call)
        feats: Features = {}
        if j < stage_len:
            for p in range(plan.patches):
                _patch_layer_features(feats, graph, plan, j, node, call, p, memo)
            layer_calls += plan.patches
        else:
            _add(feats, key, _kernel_features(call, node, graph, _whole_geometry(node, graph)))
            layer_calls += 1
        layers.append(feats)
    _add(outside, "invoke", {"calls": 1.0, "layer_calls": float(layer_calls),
                             "patches": float(plan.patches if plan is not None else 0)})
    if plan is not None:
        inp, split = graph.inputs[0], plan.split
        c_in, c_split = graph.tensors[inp].shape[3], graph.tensors[split].shape[3]
        for regs in plan.regions:
            ri, ro = regs[inp], regs[split]
            _add(outside, "copy_region", copy_features(ri.h, ri.w * c_in))  # or the application's fill callback
            _add(outside, "copy_region", copy_features(ro.h, ro.w * c_split))
    return layers, outside


def _price(feats: Features, coefficients: dict[str, dict[str, float]]) -> float:
    return sum(v * coefficients[k].get(name, 0.0) for (k, name), v in feats.items())


def chain_patch_instructions(graph: Graph, plan: PatchPlan, nodes: tuple[Node, ...],
                             kernels: tuple[KernelCall | None, ...],
                             coefficients: dict[str, dict[str, float]] | None = None) -> list[list[float]]:
    """Estimated instructions of each stage layer of one chain of a patch loop on each patch of ``plan``:
    ``[patch][layer]``, its crops and its share of the loop's per-layer overhead (``invoke``'s layer calls)
    included. What a dispatching loop's expectation is built from (a patch runs some chain's layers, or part).

    Parameters
    ----------
    graph : the quantized graph (with the chain's own tensors)
    plan : the patch plan the chain runs on (its regions hold the chain's tensors; sub-patches: their plan)
    nodes : the chain's nodes, one per stage node in order (a low-bit chain's own copies)
    kernels : their kernel calls (``kernel_of``; None for an alias node: it costs nothing)
    coefficients : a coefficient table (default: the calls' own and the runtime's)
    """
    table = coefficients or coefficient_table(kernels)
    per_layer = table["invoke"].get("layer_calls", 0.0)
    memo: dict = {}
    out = []
    for p in range(plan.patches):
        row = []
        for j, (node, call) in enumerate(zip(nodes, kernels)):
            if call is None:
                row.append(0.0)
                continue
            feats: Features = {}
            _patch_layer_features(feats, graph, plan, j, node, call, p, memo)
            row.append(_price(feats, table) + per_layer)
        out.append(row)
    return out


def patch_copy_instructions(graph: Graph, plan: PatchPlan,
                            coefficients: dict[str, dict[str, float]] | None = None) -> list[tuple[float, float]]:
    """Estimated instructions of each patch's (input region copy or fill, paste into the stage output), as
    :func:`plan_features` counts them outside the layers."""
    table = coefficients or dict(RUNTIME_COEFFICIENTS)
    inp, split = graph.inputs[0], plan.split
    c_in, c_split = graph.tensors[inp].shape[3], graph.tensors[split].shape[3]
    out = []
    for regs in plan.regions:
        ri, ro = regs[inp], regs[split]
        out.append((_price({("copy_region", k): v for k, v in copy_features(ri.h, ri.w * c_in).items()}, table),
                    _price({("copy_region", k): v for k, v in copy_features(ro.h, ro.w * c_split).items()}, table)))
    return out


def estimate_instructions(graph: Graph, plan: PatchPlan | None = None,
                          kernels: tuple[KernelCall | None, ...] | None = None,
                          coefficients: dict[str, dict[str, float]] | None = None) -> CostEstimate:
    """Estimated guest instructions of one inference (as ``mcucompile bench`` counts them on qemu-m4).

    Parameters
    ----------
    graph : the quantized graph
    plan : the patch plan, or None for layer-by-layer execution
    kernels : ``kernel_of`` for every node (optional, to save work when costing many plans)
    coefficients : a coefficient table (cost key -> feature -> instructions) instead of the kernels' own
        and the runtime's (the fitting script's)

    Returns
    -------
    CostEstimate with one entry per report layer and the cost outside the layers.
    """
    if kernels is None:
        kernels = tuple(kernel_of(n, graph) for n in graph.nodes)
    table = coefficients or coefficient_table(kernels)
    layers, outside = plan_features(graph, plan, kernels)
    return CostEstimate(tuple(_price(f, table) for f in layers), _price(outside, table))
