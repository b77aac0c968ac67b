"""bench: per-layer instructions (emulated) or cycles (real boards) and the ELF's memory."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ops import op_def
from ..report.html import bench_figures
from .compile import Compiled
from .library import add_html_results
from .verify import build_and_run_board


@dataclass(frozen=True)
class BenchResult:
    board: str
    unit: str
    layers: tuple[dict, ...]
    total: int
    flash_bytes: int
    sram_bytes: int
    arena_bytes: int
    text_bytes: int
    data_bytes: int
    bss_bytes: int
    estimated_instructions: int | None = None  # the cost model's estimate the plan was chosen with
    # the whole invoke per input, in order; the first ran with the per-layer counters (``total``), the others
    # without them. Several inputs when the patches' chains depend on the data (a QuantMCU plan)
    inputs: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def format(self) -> str:
        lines = [f"{'#':>3}  {'op':<18} {'output':<16} {'MACs':>11} {self.unit:>14} {'share':>7}  {'/MAC':>6}"]
        for lay in self.layers:
            shape = "x".join(map(str, lay["output_shape"]))
            per_mac = f"{lay['count'] / lay['macs']:.1f}" if lay["macs"] else "-"
            lines.append(f"{lay['index']:>3}  {lay['op']:<18} {shape:<16} {lay['macs']:>11,} {lay['count']:>14,} "
                         f"{100 * lay['share']:>6.1f}%  {per_mac:>6}")
        macs = sum(lay["macs"] for lay in self.layers)
        lines.append(f"{'':>3}  {'total':<18} {'':<16} {macs:>11,} {self.total:>14,} {100.0:>6.1f}%")
        if self.estimated_instructions and self.unit == "instructions":
            lines.append(f"{'':>3}  {'cost model':<18} {'':<16} {'':>11} {self.estimated_instructions:>14,} "
                         f"{100.0 * self.estimated_instructions / max(self.total, 1):>6.1f}%  (the estimate the plan "
                         "was chosen with; fitted on qemu-m4)")
        if len(self.inputs) > 1:
            rest = self.inputs[1:]
            lines.append(f"{'':>3}  {'per input':<18} {len(self.inputs)} inputs; inputs 2-{len(self.inputs)} without the "
                         f"per-layer counters: mean {round(sum(rest) / len(rest)):,}, min {min(rest):,}, max "
                         f"{max(rest):,} (the patches' chains depend on the input)")
        lines.append("")
        lines.append(f"board        {self.board}  ({'instructions under QEMU -icount, not cycles' if self.unit == 'instructions' else 'DWT cycles'})")
        lines.append(f"flash (ELF)  {self.flash_bytes:,} B  (text {self.text_bytes:,} + data {self.data_bytes:,})")
        lines.append(f"SRAM (ELF)   {self.sram_bytes:,} B  (data {self.data_bytes:,} + bss {self.bss_bytes:,}; "
                     f"model arena {self.arena_bytes:,})")
        return "\n".join(lines)


DISPATCH_INPUTS = 8  # inputs bench runs by default when the patches' chains depend on the data


def bench(compiled: Compiled, out_dir: str | Path | None = None, timeout: float = 600.0,
          samples: np.ndarray | None = None, count: int | None = None) -> BenchResult:
    """Per-layer instructions (emulated) or cycles on the board for one inference (the first input), the whole
    inference of each input, and the ELF's memory. The inputs: the first ``count`` of ``samples`` (default: the
    calibration inputs); ``count`` defaults to 1, or DISPATCH_INPUTS when a run-time check picks each patch's chain
    (the instructions then depend on the input). With ``out_dir`` the firmware project stays there and
    OUT/report.html shows the figures."""
    if count is None:
        loop = compiled.schedule.loop
        count = DISPATCH_INPUTS if loop is not None and loop.runtime else 1
    samples = (compiled.calib if samples is None else samples)[:count]
    with tempfile.TemporaryDirectory() as tmp:
        _, _, run, size = build_and_run_board(compiled, samples, Path(out_dir or Path(tmp) / "fw"), timeout)
    layers = []
    g = compiled.graph
    for step in compiled.schedule.layers:
        count = run.layers.get(step.index, 0)
        layers.append({"index": step.index, "name": step.node.name, "op": step.node.op,
                       "output_shape": list(g.tensors[step.node.outputs[0]].shape),
                       "macs": op_def(step.node).macs(step.node, g), "count": count,
                       "share": count / run.total if run.total else 0.0})
    result = BenchResult(compiled.board.name, run.unit, tuple(layers), int(run.total or 0), size.flash_bytes,
                         size.sram_bytes, compiled.plan.arena_size, size.text, size.data, size.bss,
                         compiled.report.estimated_instructions, tuple(run.times.get(s, 0) for s in range(len(samples))))
    if out_dir is not None:
        add_html_results(out_dir, compiled, bench=bench_figures(result))
    return result

