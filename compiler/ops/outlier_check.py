"""The outlier check of value-driven patch classification (QuantMCU's VDPC): one comparison per value.

The patch loop of a schedule with a run-time dispatch (``schedule.RuntimeDispatch``) runs this check on one
region buffer of each patch (the patch's input region, or a stage map as the patch makes it) and takes the
8-bit chain when any value lies more than ``threshold`` steps from the map's zero point, the other chain
otherwise:

    outlier = any(|q - zero_point| > threshold)        (exact integers: q, zero_point int8, threshold 0..255)

:func:`outlier_decision` is that rule in numpy; the simulator and the C kernels
(``mcu_outlier_check_s8`` / ``_dsp_s8`` / ``_mve_s8``, runtime_c/src/mcunn_check*.c) apply it to the same
values, so their decisions are equal by construction (a comparison has no rounding).

The check is not a graph node: it reads a tensor the stage computes and writes one flag. It is described
by a :class:`~..ir.Node` of op ``outlier_check`` that the schedule builds (:func:`check_node`, input: the
checked tensor, no outputs, attrs :class:`OutlierCheckAttrs`), so its kernels declare their access pattern
and cost exactly as the layers' kernels do (:class:`~.kernel.Kernel`), and :func:`check_kernel` picks the
implementation for the board as an op's ``kernel()`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node
from .kernel import Access, Kernel, KernelArgs, KernelCall, KernelCost, Geometry, kernel_target, prod, read

#: largest threshold (|q - zp| of int8 values is at most 255: a threshold of 255 never fires)
MAX_THRESHOLD = 255


@dataclass(frozen=True)
class OutlierCheckAttrs:
    """The check of one map: its zero point and the largest |q - zero_point| that is not an outlier."""

    zero_point: int
    threshold: int

    def __post_init__(self):
        if not -128 <= self.zero_point <= 127:
            raise ValueError(f"the checked map's zero point {self.zero_point} is not int8")
        if not 0 <= self.threshold <= MAX_THRESHOLD:
            raise ValueError(f"threshold {self.threshold} is outside [0, {MAX_THRESHOLD}]")


def outlier_decision(values: np.ndarray, zero_point: int, threshold: int) -> bool:
    """Whether ``values`` (int8 storage of one region) hold an outlier: some |q - zero_point| > threshold.

    Parameters
    ----------
    values : numpy.ndarray
        The region's integer values (any shape; an empty region has no outlier).
    zero_point, threshold : int
        The map's zero point (int8) and the largest deviation that is not an outlier (0..255).

    Returns
    -------
    bool
        True: the patch runs the outlier (8-bit) chain.
    """
    v = np.asarray(values, np.int32)
    return bool(v.size) and bool(np.any(np.abs(v - int(zero_point)) > int(threshold)))


def check_node(graph: Graph, tensor: str, zero_point: int, threshold: int) -> Node:
    """The node describing the check of ``tensor`` (8-bit, NHWC) in the patch loop."""
    t = graph.tensors[tensor]
    if t.bits != 8 or len(t.shape) != 4:
        raise ValueError(f"the outlier check reads an 8-bit NHWC map; '{tensor}' is {t.bits}-bit {list(t.shape)}")
    return Node(f"outlier_check:{tensor}", "outlier_check", (tensor,), (), OutlierCheckAttrs(zero_point, threshold))


def _check_access(args: KernelArgs) -> tuple[list[Access], list[str]]:
    """Reads every value of its input dims (the portable kernel may stop early: an upper bound); writes one
    int32 flag into a local of the generated code (not the arena)."""
    a: OutlierCheckAttrs = args.node.attrs
    contract = []
    if not -128 <= a.zero_point <= 127 or not 0 <= a.threshold <= MAX_THRESHOLD:
        contract.append(f"zero point {a.zero_point} / threshold {a.threshold} out of range")
    if min(args.in_dims[0]) < 0:
        contract.append(f"negative dims {list(args.in_dims[0])}")
    return [read(args.inputs[0], prod(args.in_dims[0]), "input")], contract


def check_counts(node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """One call of the portable kernel on a region of ``g.in_h x g.in_w`` pixels of the checked map: the values
    it compares (all of them: an inlier patch, the common case, reads every value)."""
    c = int(graph.tensors[node.inputs[0]].shape[-1])
    return {"calls": 1.0, "values": float(g.in_h * g.in_w * c)}


def check_bounds(attrs: OutlierCheckAttrs) -> int:
    """How many of the bounds zero_point -+ threshold lie inside int8 and can be crossed: 0, 1 (after a ReLU the
    zero point is -128, so only the upper one) or 2. The SIMD32 and MVE kernels test only those."""
    return int(attrs.zero_point + attrs.threshold < 127) + int(attrs.zero_point - attrs.threshold > -128)


def check_counts_simd(node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """One call of the SIMD32 or MVE kernel: the values it loads (none when no bound can be crossed) and, per bound
    it tests, the values tested against it."""
    n = check_counts(node, graph, g)["values"]
    bounds = check_bounds(node.attrs)
    return {"calls": 1.0, "values": n if bounds else 0.0, "bound_values": n * bounds}


# Measured (not fitted by bench/fit_cost_model.py: the check is no layer): guest instructions (QEMU -icount,
# arm-none-eabi-gcc -O2) of single calls on regions of 48..12288 values without an outlier (the whole region
# read). Portable on qemu-m4: 73 + 7.00 / value (within 2%). SIMD32 on qemu-m4: 100 + 0.25 / value loaded +
# 0.50 / value per bound (one bound: 0.75 / value, 280 at 192 values, 9,320 at 12,288; two: 1.25 / value,
# 15,480 at 12,288). MVE on qemu-m55: 113 + 0.125 / value loaded + 0.0625 / value per bound (one bound: 2,406 at
# 12,288 values; two: 3,187). A check no bound of which lies inside int8 returns in 62-80.
_MEASURED = "measured on qemu-m4 (portable, SIMD32) and qemu-m55 (MVE): single calls on 48-12288 values, no outlier"
CHECK = Kernel("outlier_check.c.j2", _check_access, KernelCost(
    ("calls", "values"), {"calls": 73.0, "values": 7.0}, check_counts, note=_MEASURED))
CHECK_DSP = Kernel("outlier_check_dsp.c.j2", _check_access, KernelCost(
    ("calls", "values", "bound_values"), {"calls": 100.0, "values": 0.25, "bound_values": 0.5}, check_counts_simd,
    note=_MEASURED), fast=True)
CHECK_MVE = Kernel("outlier_check_mve.c.j2", _check_access, KernelCost(
    ("calls", "values", "bound_values"), {"calls": 113.0, "values": 0.125, "bound_values": 0.0625},
    check_counts_simd, note=_MEASURED), fast=True)


def check_kernel(node: Node, graph: Graph, board=None) -> KernelCall:
    """The check's implementation for ``board`` (a ``boards.Board``, a ``KernelTarget`` or None): MVE, then
    SIMD32, then the portable kernel, as the layers choose theirs."""
    target = kernel_target(board)
    a: OutlierCheckAttrs = node.attrs
    context = {"zero_point": a.zero_point, "threshold": a.threshold,
               "channels": int(graph.tensors[node.inputs[0]].shape[-1])}
    if target.mve_problem() is None:
        return CHECK_MVE.call(context)
    if (why := target.dsp_problem()) is None:
        return CHECK_DSP.call(context)
    return CHECK.call(context, reason=why)
