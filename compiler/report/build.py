"""Build the typed :class:`~mcucompile.report.report.Report` of a compiled model from the pipeline's own data
(graph, arena plan, patch choice, schedule), and the flash estimate the fit check shares with it."""

from __future__ import annotations

import numpy as np

from .. import __version__
from ..arith.bitwidth import c_array_type
from ..boards import Board
from ..ir import Graph, Node
from ..memory import ArenaPlan, plan_memory
from ..ops import cmsis_nn, op_def
from ..ops.kernel import KernelTarget, kernel_target
from ..ops.unary import SOFTMAX_OUTPUT_QUANT, Softmax, Unary, fixed_output_quant
from ..patch.cost import FIT
from ..patch.search import OBJECTIVES, PatchChoice, PlanOutcome
from ..quantmcu.options import QuantmcuResult
from .report import (CalibrationReport, FeatureMapReport, IOTensor, LayerReport, MemoryProfile, PatchCandidate,
                     PatchPlanReport, PatchRegion, PlanChoiceReport, PlanEstimate, QuantizationReport, QuantmcuPlanReport,
                     QuantmcuReport, Report, SearchStepReport, TflmArena)

# Code-size estimate (flash) for the portable runtime until a linked ELF gives the real figure.
RUNTIME_BASE_BYTES = 2048
KERNEL_BYTES = 1536
LAYER_CALL_BYTES = 160

#: Values of ``tensor_sources``: params the model carried, params mcucompile calibrated, params an op fixes.
QUANT_SOURCES = ("model", "calibrated", "fixed")


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
    consts = sum(graph.tensors[i].nbytes for i in node.inputs if i and graph.tensors[i].is_const)
    return consts + _param_array_bytes(node)


def flash_estimate(graph: Graph) -> tuple[int, int]:
    """(weights and parameter arrays, code estimate) in bytes of flash, before a linked ELF says better."""
    weights = sum(t.nbytes for t in graph.tensors.values() if t.is_const)
    return weights + sum(_param_array_bytes(n) for n in graph.nodes), estimate_code_bytes(graph)


def _offset(plan: ArenaPlan, tensor: str) -> int:
    """Arena offset of a tensor (of its per-patch buffer when it only exists patch by patch)."""
    return plan.offsets.get(tensor, plan.offsets.get(f"{tensor}@patch", -1))


def _io(graph: Graph, name: str) -> IOTensor:
    t = graph.tensors[name]
    # plain Python numbers: the report holds no numpy values (json.dumps refuses some of them)
    return IOTensor(name, tuple(t.shape), float(t.quant.s), int(t.quant.zp), tuple(graph.io_perm.get(name, ())))


def kernel_reason(call, op: str, target: KernelTarget) -> str | None:
    """Why a layer's kernel call is not a fast kernel (or not the one ``--kernels`` asks for): the op's own
    reason for falling back, else the target's (no DSP extension, --kernels portable), else that the op has
    none yet (None: it is the fast kernel asked for)."""
    impl = call.kernel
    if impl is not None and impl.fast:
        return call.reason  # a fast kernel in place of the one the policy asks for (e.g. CMSIS-NN's) says why
    if target.kernels == "cmsis-nn" and call.reason is None:
        return cmsis_nn.no_kernel_reason(op)
    return call.reason or target.dsp_problem() or f"no fast kernel for {op} yet"


def _layers(graph: Graph, plan: ArenaPlan, schedule, target: KernelTarget) -> tuple[LayerReport, ...]:
    calls = {st.index: st.kernel for st in schedule.layers} if schedule is not None else {}
    layers = []
    for n in (n for n in graph.nodes if not op_def(n).alias):
        idx = len(layers)
        out = graph.tensors[n.outputs[0]]
        acts = [i for i in n.inputs if i and not graph.tensors[i].is_const]
        layers.append(LayerReport(
            index=idx, name=n.name, op=n.op, source=n.source,
            input_shapes=tuple(tuple(graph.tensors[i].shape) for i in acts), output_shape=tuple(out.shape),
            macs=int(op_def(n).macs(n, graph)), arena_offset=_offset(plan, out.name),
            input_offsets=tuple(_offset(plan, i) for i in acts),
            bitwidth=out.quant.bits if out.quant is not None else 8, weight_bitwidth=8,
            param_bytes=param_bytes(n, graph), kernel=calls[idx].name if idx in calls else None,
            kernel_reason=kernel_reason(calls[idx], n.op, target) if idx in calls else None,
            fast_kernel=idx in calls and calls[idx].kernel is not None and calls[idx].kernel.fast))
    return tuple(layers)


def _estimate(o: PlanOutcome) -> PlanEstimate:
    return PlanEstimate(o.describe(), o.stage_len, o.grid, o.peak, o.instructions, round(o.overhead, 4), o.fits)


def plan_choice_report(choice: PatchChoice) -> PlanChoiceReport:
    """How the plan of ``choice`` was chosen and what the other objective would take."""
    other = OBJECTIVES[1 - OBJECTIVES.index(choice.optimize)]
    alt = _estimate(choice.alternative) if choice.alternative is not None else None
    return PlanChoiceReport(choice.optimize, other, choice.budget, choice.max_overhead, len(choice.tried), FIT,
                            _estimate(choice.chosen), alt, choice.layerwise_instructions)


def _patch_plan(p) -> PatchPlanReport | None:
    if p is None:
        return None
    regions = tuple(tuple(PatchRegion(t, r.top, r.left, r.bottom, r.right) for t, r in regs.items())
                    for regs in p.regions)
    return PatchPlanReport(p.stage_len - 1, p.split, p.stage_len, p.grid, tuple(p.row_bounds), tuple(p.col_bounds),
                           p.macs_layerwise, p.macs_patched, p.macs_patched - p.macs_layerwise, round(p.overhead, 4),
                           p.input_by_patch, regions)


def _fixed_by_op(node: Node, graph: Graph) -> bool:
    """The op fixes its output params whatever the data (TFLite's softmax, sigmoid, tanh): not calibrated."""
    out = graph.tensors[node.outputs[0]].quant
    if out is None:
        return False
    if node.op == Softmax.name:
        return out.same_as(SOFTMAX_OUTPUT_QUANT)
    if node.op == Unary.name:
        fixed = fixed_output_quant(node.attrs.fn, out.bits)
        return fixed is not None and out.same_as(fixed)
    return False


def activation_tensors(graph: Graph) -> tuple[str, ...]:
    """The IR names of the activation tensors whose quantization params the model runs with: the inputs and
    every node's outputs, in graph order."""
    names = dict.fromkeys(graph.inputs)
    for n in graph.nodes:
        names.update(dict.fromkeys(o for o in n.outputs if o and not graph.tensors[o].is_const))
    return tuple(names)


def derive_tensor_sources(graph: Graph, source_format: str) -> dict[str, str]:
    """Where each activation's params came from when the quantization stage does not say: a pre-quantized
    model ("tflite", "onnx-qdq") carried them all; a float ONNX model had them calibrated, except the
    outputs an op fixes."""
    if source_format in ("tflite", "onnx-qdq"):
        return dict.fromkeys(activation_tensors(graph), "model")
    fixed = {o for n in graph.nodes if _fixed_by_op(n, graph) for o in n.outputs}
    return {t: "fixed" if t in fixed else "calibrated" for t in activation_tensors(graph)}


def quantization_report(graph: Graph, tensor_sources: dict[str, str]) -> QuantizationReport:
    """Group ``tensor_sources`` (IR tensor name -> "model" | "calibrated" | "fixed") by source, each tensor
    by the name the user knows (its ONNX / TFLite name when set), in graph order, each name once."""
    bad = sorted({v for v in tensor_sources.values() if v not in QUANT_SOURCES})
    if bad:
        raise ValueError(f"tensor_sources values {bad}: expected one of {QUANT_SOURCES}")
    unknown = sorted(set(tensor_sources) - set(graph.tensors))
    if unknown:
        raise ValueError(f"tensor_sources names tensors not in the graph: {unknown[:5]}")
    order = {name: i for i, name in enumerate(activation_tensors(graph))}
    by: dict[str, dict[str, None]] = {s: {} for s in QUANT_SOURCES}
    for name in sorted(tensor_sources, key=lambda t: (order.get(t, len(order)), t)):
        t = graph.tensors[name]
        by[tensor_sources[name]][t.origin or t.name] = None
    return QuantizationReport(tuple(by["model"]), tuple(by["calibrated"]), tuple(by["fixed"]))


def build_report(graph: Graph, plan: ArenaPlan, board: Board | KernelTarget, model_path: str, *, choice: PatchChoice,
                 schedule=None, source_format: str = "onnx", notes: tuple[str, ...] | list[str] = (),
                 tflm_arena_bytes: int | None = None, tflm_arena_note: str | None = None,
                 tensor_sources: dict[str, str] | None = None, compiler_version: str = __version__,
                 calibration: CalibrationReport | None = None, quantmcu: QuantmcuResult | None = None) -> Report:
    """The report of one compiled model, typed (``Report.to_json_dict()`` is report.json).

    Parameters
    ----------
    graph : the quantized graph
    plan : the arena plan the generated code runs with (``choice.arena``)
    board : the board compiled for, or the ``ops.kernel.KernelTarget`` (board and ``--kernels`` policy) the
        schedule's kernels were chosen for (a bare board: its fastest kernels)
    model_path : the model as the user gave it
    choice : the patch search's result: the plan taken, the candidates tried, the other objective's plan
    schedule : the schedule generated; names each layer's kernel implementation (None: ``kernel`` None)
    source_format : "onnx" (float, calibrated), "onnx-qdq" or "tflite" (the model's own quantization)
    notes : what the user should know about this compile
    tflm_arena_bytes, tflm_arena_note : TFLite Micro's arena for a .tflite model, or why it was not measured
        (reported for ``source_format`` "tflite" only)
    tensor_sources : activation tensor (IR name) -> "model" | "calibrated" | "fixed", where its quantization
        params came from; None derives it from ``source_format`` (see :func:`derive_tensor_sources`)
    compiler_version : the compiler that made the code
    calibration : how the calibrated tensors' ranges were chosen (None: none were calibrated)
    quantmcu : what QuantMCU chose and measured (None: not used; report.json then has no ``quantmcu`` key)

    Returns
    -------
    Report
    """
    target = kernel_target(board)
    board = target.board
    layers = _layers(graph, plan, schedule, target)
    weights, code = flash_estimate(graph)
    patched = choice.plan is not None
    if tensor_sources is None:
        tensor_sources = derive_tensor_sources(graph, source_format)
    tflm = TflmArena(tflm_arena_bytes, tflm_arena_note if tflm_arena_bytes is None else None) \
        if source_format == "tflite" else None
    return Report(
        model=str(model_path), board=board.name, peak_sram_bytes=plan.arena_size, arena_bytes=plan.arena_size,
        activation_bytes=plan.activations_size, flash_bytes=weights + code, weights_bytes=weights,
        code_bytes_estimate=code, macs=sum(lay.macs for lay in layers), board_sram_bytes=board.sram_bytes,
        board_flash_bytes=board.flash_bytes,
        inputs=tuple(_io(graph, n) for n in graph.inputs), outputs=tuple(_io(graph, n) for n in graph.outputs),
        layers=layers, compiler_version=compiler_version, notes=tuple(notes), source_format=source_format,
        peak_sram_layerwise_bytes=choice.layerwise_peak,
        memory_profile=MemoryProfile(tuple(plan_memory(graph, target).live_bytes()),
                                     tuple(plan.live_bytes()) if patched else None),
        patch_candidates=tuple(PatchCandidate(c.stage_len, c.grid, c.peak, c.overhead, c.instructions)
                               for c in choice.tried),
        input_in_sram="by patch (callback)" if patched and choice.plan.input_by_patch else "whole",
        # QuantMCU's joint search may take another split and grid than 8-bit patching's: the plan the code runs
        patch_plan=_patch_plan(quantmcu.plan if quantmcu is not None else choice.plan),
        plan_choice=plan_choice_report(choice),
        quantization=quantization_report(graph, tensor_sources), tflm=tflm, rounding=graph.rounding,
        kernels=target.kernels, calibration=calibration,
        quantmcu=quantmcu_report(quantmcu, graph) if quantmcu is not None else None)


def _user_name(graph: Graph, tensor: str) -> str:
    """A tensor by the name the user knows (its ONNX / TFLite name when the IR renamed it)."""
    t = graph.tensors.get(tensor)
    return (t.origin or t.name) if t is not None else tensor


def _whole(v: float) -> int:
    """BitOPs are expectations (fractional); report.json gives them to the BitOP."""
    return round(float(v))


def _qm_plan(plan, sub_patches: int | None = None) -> QuantmcuPlanReport:
    return QuantmcuPlanReport(plan.stage_len - 1, plan.split, plan.stage_len, plan.grid, sub_patches)


def quantmcu_options_json(options) -> tuple[tuple[str, object], ...]:
    """QuantmcuOptions as report.json gives them, by their command-line names, defaults filled in."""
    v = options.vdpc
    return (("bits", list(options.bits)), ("lambda", options.lam), ("bitops_target", options.bitops_target),
            ("guard", options.guard), ("floor", options.guard_floor), ("holdout", options.holdout),
            ("clipping", options.clipping), ("per_channel", options.per_channel),
            ("sub_patches", options.sub_patches), ("outlier_rule", v.rule), ("outlier_param", v.value),
            ("max_outlier_share", v.share_cap), ("check_at", v.location))


def quantmcu_report(result: QuantmcuResult, graph: Graph) -> QuantmcuReport:
    """report.json's ``quantmcu`` object of ``result`` (``graph``: the compiled graph, for the tensors' names)."""
    outliers = np.asarray(result.vdpc.outlier_patches, dtype=bool)
    per_patch = outliers.mean(axis=0) if outliers.size else np.zeros(result.plan.patches)
    roles = {graph.inputs[0]: "input", result.plan.split: "output"}
    maps = tuple(FeatureMapReport(_user_name(graph, m.name), m.name, int(m.bits), tuple(float(s) for s in m.scales),
                                  int(m.zero_point), bool(m.checked), roles.get(m.name, "map"))
                 for m in result.feature_maps)
    steps = tuple(SearchStepReport(_user_name(graph, s.map), int(s.bits), float(s.score), float(s.bitops_ratio),
                                   float(s.quality), bool(s.accepted)) for s in result.steps)
    return QuantmcuReport(
        options=quantmcu_options_json(result.options),
        plan=_qm_plan(result.plan, int(result.sub_patches)),
        base_plan=_qm_plan(result.base_plan) if result.base_plan is not None else None,
        bitops_8bit=_whole(result.bitops_8bit), bitops=_whole(result.bitops),
        bitops_model_8bit=_whole(result.bitops_model_8bit), bitops_model=_whole(result.bitops_model),
        bitops_8bit_own_plan=_whole(result.bitops_8bit_own_plan),
        checked_map=_user_name(graph, result.checked_map), threshold=int(result.threshold),
        outlier_patch_share=float(result.outlier_patch_share), patch_outlier_share=tuple(float(v) for v in per_patch),
        feature_maps=maps, guard=result.options.guard, floor=result.options.guard_floor,
        quality=tuple((k, float(v)) for k, v in result.quality.items()),
        entropy_only_bits=tuple((_user_name(graph, k), int(b)) for k, b in result.entropy_only.items()),
        entropy_only_quality=tuple((k, float(v)) for k, v in result.entropy_only_quality.items()),
        search_steps=steps, search_seconds=float(result.search_seconds), flash_bytes=int(result.flash_bytes),
        held_back_samples=int(getattr(result, "holdout_samples", 0)), calibration_samples=int(getattr(result, "calib_samples", 0)),
        notes=tuple(getattr(result, "notes", ())),
        expected_instructions=_whole_or_none(getattr(result, "expected_instructions", None)),
        expected_instructions_8bit=_whole_or_none(getattr(result, "expected_instructions_8bit", None)))


def _whole_or_none(v: float | None) -> int | None:
    return None if v is None else int(round(v))
