"""The terminal summary of a compiled model, read from its typed :class:`~mcucompile.report.report.Report`."""

from __future__ import annotations

import math

from ..ops.outlier_check import MAX_THRESHOLD
from .report import PlanChoiceReport, QuantizationReport, QuantmcuReport, Report

#: Calibrated tensors the summary names when a model is partly quantized (the JSON lists them all).
NAMED_CALIBRATED = 5


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def _instructions(n: int) -> str:
    """~74.5 M instr, ~583 k instr: an estimate, three significant digits."""
    if n >= 1_000_000:
        return f"~{n / 1e6:.3g} M instr"
    return f"~{n / 1e3:.3g} k instr"


def _why_layerwise(report: Report) -> str:
    pc = report.plan_choice
    if pc.alternative is None:
        return "patching off"
    if pc.optimize == "speed" and pc.alternative.grid:
        return "the fastest plan that fits"
    cap = pc.max_patch_overhead
    within = f" within --max-patch-overhead {cap:g}" if cap is not None else ""
    if pc.candidates_tried == 0:
        return f"no patch plan{within}" if cap is not None else "the model has no split point for patching"
    return f"no patch plan{within} lowers the peak"


def plan_choice_line(pc: PlanChoiceReport) -> str:
    """What the plan taken costs and what the other --optimize would give, e.g. "optimized for speed: layer
    by layer, 64,512 B, ~74.5 M instr; --optimize memory: 39,008 B (5x5 patches over 12 layers), ~81 M instr
    (+9%)". A forced plan is compared with layer by layer; empty when patching is off."""
    cur, alt = pc.chosen, pc.alternative
    if alt is None:
        lw = pc.layerwise_instructions
        if not cur.grid or not lw:
            return ""
        return (f"forced plan: {cur.plan}, {_instructions(cur.estimated_instructions)}; layer by layer "
                f"{_instructions(lw)} ({100 * (lw / cur.estimated_instructions - 1):+.0f}%)")
    head = (f"optimized for {pc.optimize}: {cur.plan}, {cur.peak_sram_bytes:,} B, "
            f"{_instructions(cur.estimated_instructions)}")
    if (alt.stage_layers, alt.grid) == (cur.stage_layers, cur.grid):
        return f"{head}; --optimize {pc.alternative_optimize} would choose the same"
    change = alt.estimated_instructions / cur.estimated_instructions - 1 if cur.estimated_instructions else 0.0
    fits = "" if alt.fits else f", over the {pc.budget_bytes:,} B budget"
    return (f"{head}; --optimize {pc.alternative_optimize}: {alt.peak_sram_bytes:,} B ({alt.plan}{fits}), "
            f"{_instructions(alt.estimated_instructions)} ({100 * change:+.0f}%)")


def quantization_line(q: QuantizationReport) -> str:
    """For a partly quantized model only (some params from the model, some calibrated), e.g. "quantization:
    23 tensors from the model, 4 calibrated (a, b, c, d), 1 fixed by their op"; empty otherwise (the source
    format says it all)."""
    if not q.partly_quantized:
        return ""
    more = ", ..." if len(q.calibrated) > NAMED_CALIBRATED else ""
    names = ", ".join(q.calibrated[:NAMED_CALIBRATED]) + more
    fixed = f", {len(q.fixed)} fixed by their op" if q.fixed else ""
    return (f"quantization: {len(q.from_model)} tensors from the model, {len(q.calibrated)} calibrated "
            f"({names}){fixed}")


def kernels_line(report: Report) -> str:
    """E.g. "kernels   auto: 99.2% of MACs on fast kernels; portable: 2 layers (no fast kernel for avg_pool
    yet)": the share and each distinct reason a layer with MACs fell back (report.json has every layer's)."""
    reasons: dict[str, int] = {}
    for lay in report.layers:
        if lay.macs and not lay.fast_kernel and lay.kernel_reason:
            reasons[lay.kernel_reason] = reasons.get(lay.kernel_reason, 0) + 1
    line = f"kernels   {report.kernels}: {100 * report.fast_mac_share:.1f}% of MACs on fast kernels"
    if report.kernels == "cmsis-nn":
        total = sum(lay.macs for lay in report.layers)
        on = sum(lay.macs for lay in report.layers if lay.kernel.startswith("cmsis_"))
        line += f" ({100 * on / total if total else 0.0:.1f}% on CMSIS-NN)"
    if reasons:
        n = sum(reasons.values())
        line += f"; portable: {n} layer{'s' if n > 1 else ''} with MACs (" + "; ".join(reasons) + ")"
    return line


def _bitops(n: float) -> str:
    return f"{n / 1e9:.3g} G" if n >= 1e9 else f"{n / 1e6:.3g} M" if n >= 1e6 else f"{n / 1e3:.3g} k"


def _quality(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    if metric == "sqnr":
        return f"SQNR {v:.1f} dB" if math.isfinite(v) else "SQNR identical"
    if metric == "agreement":
        return f"agreement {100 * v:.1f}%"
    return f"{metric} {v:.4g}"


def short_tensor_name(name: str, width: int = 32) -> str:
    """A tensor name short enough for a line: TFLite's fused names ("a/Relu;a/BiasAdd;...") by their first part,
    then the last ``width`` characters."""
    first = name.split(";")[0]
    return first if len(first) <= width else "..." + first[-(width - 3):]


def quantmcu_lines(q: QuantmcuReport) -> list[str]:
    """The summary's QuantMCU lines: bits per feature map, the outlier share, the stage BitOPs saving and the
    quality against the guard's floor (report.json's ``quantmcu`` object has every figure)."""
    maps = ", ".join(f"{short_tensor_name(m.name)} {m.bits}" + (" (checked)" if m.checked else "")
                     + {"input": " (input)", "output": " (stage output)"}.get(m.role, "") for m in q.feature_maps)
    plan = f"{q.plan.grid}x{q.plan.grid} patches over {q.plan.stage_layers} layers"
    if q.plan.sub_patches and q.plan.sub_patches > 1:
        plan += f", outlier patches as {q.plan.sub_patches}x{q.plan.sub_patches} sub-patches"
    if q.threshold >= MAX_THRESHOLD:  # the plan dropped the check (lowbit_only_schedule)
        check = (f"          no outlier check: it could not fire (|q - zp| of '{short_tensor_name(q.checked_map)}' "
                 f"never exceeds {q.threshold}); every patch runs the low-bit chain")
    else:
        check = (f"          outlier patches (8-bit chain): {100 * q.outlier_patch_share:.1f}% of the calibration "
                 f"patches (check on '{short_tensor_name(q.checked_map)}', |q - zp| > {q.threshold})")
    lines = [f"QuantMCU  {plan}; bits per feature map: {maps}", check]
    own = ""
    if q.base_plan is not None and (q.base_plan.stage_layers, q.base_plan.grid) != (q.plan.stage_layers, q.plan.grid):
        own = (f"; 8-bit at its own plan ({q.base_plan.grid}x{q.base_plan.grid} over {q.base_plan.stage_layers} "
               f"layers) {_bitops(q.bitops_8bit_own_plan)}: {q.saving_own_plan:.2f}x")
    lines.append(f"          stage BitOPs {_bitops(q.bitops_8bit)} -> {_bitops(q.bitops)} ({q.saving:.2f}x fewer than "
                 f"8-bit patching on the same plan{own}); model BitOPs {q.saving_model:.2f}x fewer")
    got = [_quality(k, v) for k, v in q.quality if not k.endswith("_low")]
    if q.guard == "off":
        floor = "guard off"
    else:
        # the guard holds the metric's lower bound (the estimate minus a standard error) to the floor
        low = q.quality_of(f"{q.guard}_low")
        value = low if low is not None else q.quality_of(q.guard)
        floor_text = _quality(q.guard, q.floor)
        ok = value is not None and q.floor is not None and value >= q.floor
        bound = f"; lower bound {_quality(q.guard, low)}" if low is not None else ""
        floor = f"floor {floor_text}: {'met' if ok else 'MISSED'}{bound}"
    entropy = ", ".join(_quality(k, v) for k, v in q.entropy_only_quality if not k.endswith("_low"))
    held = f" ({q.held_back_samples} held-back samples)" if q.held_back_samples else " on held-back samples"
    lines.append(f"          quality vs 8-bit{held}: {', '.join(got) or '-'} ({floor})")
    lines.append(f"          VDQS search {q.search_seconds:.1f} s, {len(q.search_steps)} steps; the entropy score alone "
                 f"would give {entropy or '-'}")
    return lines


def format_summary(report: Report) -> str:
    """The per-layer table and the model's SRAM, flash and plan, as the CLI prints them."""
    lines = []
    lines.append(f"{'#':>3}  {'op':<18} {'output':<18} {'MACs':>11} {'arena@':>8}  bits  kernel")
    stage = report.stage_layers
    for lay in report.layers:
        shape = "x".join(map(str, lay.output_shape))
        mark = "  (per patch)" if lay.index < stage else ""
        lines.append(f"{lay.index:>3}  {lay.op:<18} {shape:<18} {lay.macs:>11,} {lay.arena_offset:>8}  "
                     f"{lay.bitwidth:>4}  {lay.kernel or '-'}{mark}")
    sram_pct = 100.0 * report.peak_sram_bytes / report.board_sram_bytes
    flash_pct = 100.0 * report.flash_bytes / report.board_flash_bytes
    lines.append("")
    lines.append(f"model     {report.model}")
    lines.append(f"board     {report.board}")
    lines.append(f"MACs      {report.macs:,}")
    lines.append(f"peak SRAM {report.peak_sram_bytes:,} B ({_kb(report.peak_sram_bytes)}, {sram_pct:.1f}% of board)")
    pp = report.patch_plan
    if pp:
        lines.append(f"          patched: first {pp.stage_layers} layers in {pp.grid}x{pp.grid} patches "
                     f"(+{100 * pp.overhead:.1f}% MACs); layer by layer it would be "
                     f"{report.peak_sram_layerwise_bytes:,} B; input {report.input_in_sram}")
    else:
        lines.append(f"          layer by layer ({_why_layerwise(report)}); input {report.input_in_sram}")
    choice = plan_choice_line(report.plan_choice)
    if choice:
        lines.append(f"          {choice}")
    lines.append(f"flash     {report.flash_bytes:,} B ({_kb(report.flash_bytes)}, {flash_pct:.1f}% of board; "
                 f"weights {report.weights_bytes:,} B + code estimate {report.code_bytes_estimate:,} B)")
    lines.append(kernels_line(report))
    quant = quantization_line(report.quantization)
    if quant:
        lines.append(quant)
    if report.quantmcu is not None:
        lines += quantmcu_lines(report.quantmcu)
    if report.rounding == "single":
        lines.append("rounding  single (one rounding per requantization, as ONNX QDQ semantics and onnxruntime; "
                     "--rounding double for TFLite's)")
    return "\n".join(lines)
