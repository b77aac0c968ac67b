"""The kernels the ops of ``unary.py`` call: ``mcu_lut_s8`` (every lookup-table op) and ``mcu_softmax_s8``,
their access patterns and cost terms.

They belong in ``unary.py`` beside the ops that call them (as every other op module declares its own
kernels); they sit here only while that file is being changed elsewhere. Until it returns
``LUT.call(...)`` / ``SOFTMAX.call(...)`` itself, its ``KernelCall("lut.c.j2", ...)`` finds these by its
template (``KernelCall.kernel``).
"""

from __future__ import annotations

from .kernel import Kernel, KernelArgs, KernelCost, base_counts, prod, read, whole_outputs_counts, write


def _lut_access(args: KernelArgs):
    """mcu_lut_s8: size elements in and out, a 256-entry table indexed by (uint8)(x + 128); input and
    output dims must hold the same element count."""
    size = prod(args.in_dims[0])
    contract = [] if prod(args.out_dims) == size else [
        f"input dims {list(args.in_dims[0])} and output dims {list(args.out_dims)} differ in element count"]
    return [read(args.inputs[0], size, "input"), read(args.array("table"), 256, "table"),
            write(args.output, size, "output")], contract


def _softmax_access(args: KernelArgs):
    """mcu_softmax_s8: rows x row_size in and out; row_size >= 1, input left shift in [0, 30], and
    diff_min in [-2^31 / 2^shift, 0] (only differences >= diff_min are scaled by 2^shift)."""
    p = args.context["p"]
    rows, row_size, shift, diff_min = args.context["rows"], args.context["row_size"], p.shift, p.diff_min
    contract = []
    if row_size < 1:
        contract.append(f"rows of {row_size} elements (the kernel reads each row's first element)")
    if not 0 <= shift <= 30 or diff_min > 0 or diff_min * (1 << shift) < -(1 << 31):
        contract.append(f"input left shift {shift} with diff_min {diff_min}: (x - max) * 2^shift could overflow int32")
    n = rows * row_size
    return [read(args.inputs[0], n, "input"), write(args.output, n, "output")], contract


def _softmax_counts(node, graph, g):
    f = base_counts(node, graph, g)
    shape = graph.tensors[node.inputs[0]].shape
    f["elements"] = float(graph.tensors[node.inputs[0]].size)
    f["rows"] = float(graph.tensors[node.inputs[0]].size // max(1, shape[-1]))
    return f


LUT = Kernel("lut.c.j2", _lut_access, KernelCost(
    ("calls", "outputs"), {"calls": 47.785, "outputs": 5.997}, whole_outputs_counts))
SOFTMAX = Kernel("softmax.c.j2", _softmax_access, KernelCost(
    ("calls", "rows", "elements"), {"calls": 778.437, "rows": 0.0, "elements": 295.952}, _softmax_counts))
