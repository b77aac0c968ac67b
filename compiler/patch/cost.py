"""Instruction-cost model of the C kernels: how many instructions one inference takes, layer by layer or
patch by patch, without running it. The patch search uses it to find the fastest plan that fits.

Each kernel's cost is linear in a few counts it computes from the shapes of one call (the ``FEATURES``
below, e.g. for a convolution: calls, output pixels, outputs, kernel-row runs, and multiply-accumulates
over the taps inside the image), so a patched stage costs the sum over its patches of the same
counts on the smaller regions: the recomputed halo, the padding at the patch borders and the per-call
setup of every patch are all in it. ``invoke`` is what runs outside the layers (the patch loop, the
input copy and the paste of each patch into the split tensor, the layer hooks).

The coefficients (``COEFFICIENTS``) are plain data: instructions per unit of each feature, fitted by
non-negative least squares on per-layer guest-instruction counts of ``mcucompile bench`` (QEMU
``-icount``) by ``bench/fit_cost_model.py``. They describe today's portable kernels: when a kernel
gets faster, rerun that script and paste its output here; nothing else changes. ``FIT`` records the
measurement they came from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..ir import Graph, LocalWindow, Node, Region
from ..ops import op_def
from ..ops.spatial import as_nhwc
from .planner import PatchPlan, local_window

#: what each kernel's cost is linear in (one call; see ``_kernel_features``)
FEATURES: dict[str, tuple[str, ...]] = {
    "conv": ("calls", "pixels", "outputs", "row_runs", "macs"),
    "depthwise_conv": ("calls", "pixels", "outputs", "taps", "macs"),
    "fully_connected": ("calls", "outputs", "macs"),
    "max_pool": ("calls", "outputs", "row_runs", "taps"),
    "avg_pool": ("calls", "outputs", "row_runs", "taps"),
    "mean": ("calls", "outputs", "elements"),
    "add": ("calls", "outputs"),
    "mul": ("calls", "outputs"),
    "lut": ("calls", "outputs"),
    "softmax": ("calls", "rows", "elements"),
    "concat": ("calls", "rows", "bytes"),
    "pad": ("calls", "bytes", "rows", "in_bytes"),
    "transpose": ("calls", "elements"),
    "resize_nearest": ("calls", "pixels", "outputs"),
    "prelu": ("calls", "outputs"),
    "pack": ("calls", "outputs"),
    "unpack": ("calls", "outputs"),
    "copy_region": ("calls", "rows", "bytes"),  # crops, the input copy and the paste of each patch
    "invoke": ("calls", "layer_calls", "patches"),
    "other": ("calls", "outputs", "macs"),  # a kernel not in this table yet (a new op)
}

#: where the coefficients came from (printed by bench/fit_cost_model.py together with them)
FIT = ("fitted on qemu-m4 (Cortex-M4, QEMU -icount, arm-none-eabi-gcc -O2), portable kernels of runtime_c "
       "at 07c1aa1: 66 runs, total within 0.4% (qemu-m7: 4%)")

#: instructions per unit of each feature, per kernel: bench/fit_cost_model.py prints this table.
#: 66 runs: MNIST, the MLPerf Tiny models (float ONNX and int8 .tflite), MobileNetV2-0.35 at 144x144 and
#: three coverage nets (pad, concat, transpose, mul, lookup tables, pools), each layer by layer and with
#: up to 6 patch plans (the minimum-peak one, short to long stages, 2x2 to 8x8, one input-by-patch).
#: Non-negative least squares on their 1,337 per-layer counts (and each run's total outside the layers),
#: each weighted by 1/count (relative error). Total of every run within 0.4% (mean 0.1%); a model
#: family left out of the fit is estimated within 0.3%; on qemu-m7 within 4%, on qemu-m55 6-15% high.
#: ``mean`` (only TFLite's MEAN makes it) is not in the measured models: set by hand from avg_pool,
#: whose loop it shares; ``other`` (a kernel not in the table yet) is set by hand too.
#: ``invoke.layer_calls`` is the status check and the hook calls around each layer.
#: ``resize_nearest`` and ``prelu`` (added after the fit) are set by hand from two layers each of a
#: conv -> prelu -> resize x2 -> conv -> prelu -> resize x(3, 2) net on qemu-m4 (per-layer counts of
#: ``mcucompile bench``, layer by layer): within 1.5% on those layers; not in the fitted runs.
#: ``pack`` / ``unpack`` (test-only so far: no front end makes them) are set by hand, not measured: one
#: requantization and a shift / mask per element, as ``lut`` plus ``mcu_requantize``.
COEFFICIENTS: dict[str, dict[str, float]] = {
    "conv": {"calls": 286.143, "pixels": 81.36, "outputs": 97.764, "row_runs": 29.666, "macs": 6.004},
    "depthwise_conv": {"calls": 202.183, "pixels": 88.343, "outputs": 69.186, "taps": 40.987, "macs": 9.472},
    "fully_connected": {"calls": 111.537, "outputs": 67.085, "macs": 6.987},
    "max_pool": {"calls": 155.367, "outputs": 86.742, "row_runs": 0.0, "taps": 10.976},
    "avg_pool": {"calls": 135.976, "outputs": 84.245, "row_runs": 9.096, "taps": 8.977},
    "mean": {"calls": 136.0, "outputs": 84.0, "elements": 6.0},
    "add": {"calls": 229.532, "outputs": 179.397},
    "mul": {"calls": 271.846, "outputs": 110.405},
    "lut": {"calls": 47.785, "outputs": 5.997},
    "softmax": {"calls": 778.437, "rows": 0.0, "elements": 295.952},
    "concat": {"calls": 48.856, "rows": 35.961, "bytes": 1.237},
    "pad": {"calls": 144.831, "bytes": 0.204, "rows": 41.78, "in_bytes": 1.095},
    "transpose": {"calls": 0.0, "elements": 5.98},
    "resize_nearest": {"calls": 60.0, "pixels": 23.85, "outputs": 1.17},
    "prelu": {"calls": 60.0, "outputs": 52.0},
    "pack": {"calls": 60.0, "outputs": 30.0},
    "unpack": {"calls": 60.0, "outputs": 30.0},
    "copy_region": {"calls": 38.702, "rows": 35.553, "bytes": 0.537},
    "invoke": {"calls": 0.0, "layer_calls": 46.068, "patches": 0.0},
    "other": {"calls": 200.0, "outputs": 100.0, "macs": 7.0},
}

#: a kernel the table does not know yet (a new op): by hand, like the slower kernels per output and per MAC
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


# Spatial extent of one kernel call: input buffer, output, top/left padding (negative: a start offset into a
# larger input buffer, as in a patch): exactly how a windowed op runs in a patch.
Geometry = LocalWindow


@functools.lru_cache(maxsize=65536)
def _valid_taps(n_in: int, n_out: int, k: int, stride: int, dilation: int, pad: int) -> int:
    """Sum over output positions of the kernel taps that land inside the input (the kernels skip the rest)."""
    total = 0
    for o in range(n_out):
        start = o * stride - pad
        lo = 0 if start >= 0 else (-start + dilation - 1) // dilation
        hi = min(k - 1, (n_in - 1 - start) // dilation)
        total += max(0, hi - lo + 1)
    return total


def kernel_of(node: Node, graph: Graph) -> str | None:
    """The cost-table key of the kernel a layer calls (its template's name), None for alias layers."""
    d = op_def(node)
    if d.alias:
        return None
    return d.kernel(node, graph).template.split(".")[0]


def _whole_geometry(node: Node, graph: Graph) -> Geometry:
    acts = [i for i in node.inputs if i and not graph.tensors[i].is_const]
    _, ih, iw, _ = as_nhwc(tuple(graph.tensors[acts[0]].shape)) if acts else (1, 1, 1, 1)
    _, oh, ow, _ = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))
    whole_in, whole_out = Region(0, 0, ih, iw), Region(0, 0, oh, ow)
    pads = op_def(node).patch_local_pads(node, whole_in, whole_out) if len(
        graph.tensors[node.outputs[0]].shape) == 4 else None  # the whole map is one patch: its own padding
    pt, pl = pads if pads is not None else (0, 0)
    return Geometry(ih, iw, oh, ow, pt, pl)


def _kernel_features(kernel: str, node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """One call's counts, as the C kernel loops over them (runtime_c/src)."""
    out_shape = graph.tensors[node.outputs[0]].shape
    c_out = as_nhwc(tuple(out_shape))[3]
    pixels = g.out_h * g.out_w
    outputs = pixels * c_out
    f: dict[str, float] = {"calls": 1.0, "outputs": float(outputs)}
    if kernel in ("conv", "depthwise_conv", "max_pool", "avg_pool"):
        win = node.attrs.window
        (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.stride, win.dilation
        rows_v = _valid_taps(g.in_h, g.out_h, kh, sh, dh, g.pad_top)  # sum over oy of taps inside
        cols_v = _valid_taps(g.in_w, g.out_w, kw, sw, dw, g.pad_left)
        c_in = graph.tensors[node.inputs[0]].shape[-1]
        f["pixels"] = float(pixels)
        if kernel == "conv":
            groups = node.attrs.groups
            k_c = c_in // groups
            f["macs"] = float(rows_v * cols_v * k_c * c_out)
            # a kernel row inside the image is one contiguous run (groups 1, dilation 1), else one per tap
            contiguous = groups == 1 and dw == 1
            f["row_runs"] = float(rows_v * (g.out_w if contiguous else cols_v) * c_out)
        elif kernel == "depthwise_conv":
            f["taps"] = float(rows_v * cols_v)
            f["macs"] = float(rows_v * cols_v * c_out)
        else:
            f["taps"] = float(rows_v * cols_v * c_out)
            f["row_runs"] = float(rows_v * g.out_w * c_out)
    elif kernel == "fully_connected":
        w = graph.tensors[node.inputs[1]].shape
        f["outputs"] = float(graph.tensors[node.outputs[0]].size)
        f["macs"] = float(graph.tensors[node.outputs[0]].size * w[1])
    elif kernel == "mean":
        f["outputs"] = float(graph.tensors[node.outputs[0]].size)
        f["elements"] = float(graph.tensors[node.inputs[0]].size)
    elif kernel == "softmax":
        shape = graph.tensors[node.inputs[0]].shape
        f["elements"] = float(graph.tensors[node.inputs[0]].size)
        f["rows"] = float(graph.tensors[node.inputs[0]].size // max(1, shape[-1]))
    elif kernel == "concat":
        parts = [i for i in node.inputs if i]
        a = node.attrs.axis
        whole = graph.tensors[node.outputs[0]].shape
        outer = pixels if a == len(whole) - 1 and len(whole) == 4 else _outer(whole, a)
        f["calls"] = float(len(parts))
        f["rows"] = float(outer * len(parts))
        f["bytes"] = float(outputs if len(whole) == 4 else graph.tensors[node.outputs[0]].size)
    elif kernel == "pad":
        c_in = as_nhwc(tuple(graph.tensors[node.inputs[0]].shape))[3]
        f["bytes"] = float(outputs)
        f["rows"] = float(g.in_h * g.in_w)  # one memcpy per input pixel
        f["in_bytes"] = float(g.in_h * g.in_w * c_in)
    elif kernel == "transpose":
        f["elements"] = float(graph.tensors[node.inputs[0]].size)
    elif kernel == "resize_nearest":
        f["pixels"] = float(pixels)  # one row copy (memcpy of C bytes) per output pixel
    elif kernel in ("add", "mul", "lut"):
        if len(out_shape) != 4:
            f["outputs"] = float(graph.tensors[node.outputs[0]].size)
    elif kernel == FALLBACK:
        whole = graph.tensors[node.outputs[0]].size
        f["macs"] = op_def(node).macs(node, graph) * (outputs / whole if len(out_shape) == 4 and whole else 1.0)
        if len(out_shape) != 4:
            f["outputs"] = float(whole)
    return f


def _outer(shape: tuple[int, ...], axis: int) -> int:
    n = 1
    for d in shape[:axis]:
        n *= d
    return n


def copy_features(rows: int, row_bytes: int) -> dict[str, float]:
    """One ``mcu_copy_region_s8`` / ``mcu_paste_region_s8`` call: a memcpy per row."""
    return {"calls": 1.0, "rows": float(rows), "bytes": float(rows * row_bytes)}


def _add(into: Features, kernel: str, f: dict[str, float]) -> None:
    for name, v in f.items():
        into[(kernel, name)] = into.get((kernel, name), 0.0) + v


def plan_features(graph: Graph, plan: PatchPlan | None = None,
                  kernels: tuple[str | None, ...] | None = None) -> tuple[list[Features], Features]:
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
    for j, (node, kernel) in enumerate(zip(graph.nodes, kernels)):
        if kernel is None:
            continue
        key = kernel if kernel in FEATURES else FALLBACK
        feats: Features = {}
        if j < stage_len:
            for p, regs in enumerate(plan.regions):
                lw = local_window(graph, plan, node, p)
                if lw is not None:
                    g = Geometry(lw.in_h, lw.in_w, lw.out_h, lw.out_w, lw.pad_top, lw.pad_left)
                else:
                    r = regs[node.outputs[0]]
                    g = Geometry(r.h, r.w, r.h, r.w, 0, 0)
                if (j, g) not in memo:  # patches of one size share their counts
                    memo[(j, g)] = _kernel_features(key, node, graph, g)
                _add(feats, key, memo[(j, g)])
                for cj, slot in plan.crops:
                    if cj == j and op_def(node).patch_crops_operands:
                        ro, c = regs[node.outputs[0]], graph.tensors[node.inputs[slot]].shape[3]
                        _add(feats, "copy_region", copy_features(ro.h, ro.w * c))
            layer_calls += plan.patches
        else:
            _add(feats, key, _kernel_features(key, node, graph, _whole_geometry(node, graph)))
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


def estimate_instructions(graph: Graph, plan: PatchPlan | None = None, kernels: tuple[str | None, ...] | None = None,
                          coefficients: dict[str, dict[str, float]] | None = None) -> CostEstimate:
    """Estimated guest instructions of one inference (as ``mcucompile bench`` counts them on qemu-m4).

    Parameters
    ----------
    graph : the quantized graph
    plan : the patch plan, or None for layer-by-layer execution
    kernels : ``kernel_of`` for every node (optional, to save work when costing many plans)
    coefficients : a coefficient table other than ``COEFFICIENTS`` (the fitting script's)

    Returns
    -------
    CostEstimate with one entry per report layer and the cost outside the layers.
    """
    table = coefficients or COEFFICIENTS
    layers, outside = plan_features(graph, plan, kernels)
    return CostEstimate(tuple(_price(f, table) for f in layers), _price(outside, table))
