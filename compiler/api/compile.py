"""compile_model(): the whole pipeline in memory, nothing written.

The pipeline, in order (each stage a function over plain data, see docs/architecture.md):
  load -> canonicalize -> calibrate -> quantize_graph -> choose_patching (plans the arena) -> check the
  plan's memory safety -> [--quantmcu: plan_quantmcu (VDPC, VDQS, the two-chain patch loop and its arena)] ->
  check fit -> generate_c -> report
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..boards import Board, get_board
from ..codegen import CSource, generate_c
from ..errors import UserError
from ..frontend import check_single_sample, load_onnx
from ..frontend.tflite import load_tflite
from ..ir import Graph
from ..memory import ArenaPlan
from ..ops.base import quantize_values
from ..ops.kernel import KernelTarget
from ..passes import canonicalize
from ..patch.search import choose_patching
from ..progress import Progress
from ..quant.bias_correction import correct_biases
from ..quant.calibrate import Calibration, calibrate_tensors, load_calibration, synthetic_calibration
from ..quant.methods import check_override_names
from ..quant.quantize import calibration_needs, quantize_graph
from ..quant.simulate import to_logical, to_physical
from ..quantmcu import plan_quantmcu
from ..quantmcu.options import QuantmcuResult
from ..reference.tflite_refs import probe_tflm_arena
from ..report import Report, build_report, flash_estimate
from ..report.report import CalibrationReport, TensorCalibration
from ..schedule.safety import check_plan_memory
from ..schedule.schedule import Schedule, build_schedule
from .options import CompileOptions


@dataclass(frozen=True, eq=False)
class Compiled:
    model_path: Path
    options: CompileOptions
    board: Board
    float_graph: Graph
    graph: Graph
    plan: ArenaPlan
    sources: CSource
    report: Report
    calib: np.ndarray
    warnings: tuple[str, ...] = field(default_factory=tuple)
    source_format: str = "onnx"  # onnx (float, calibrated) | onnx-qdq | tflite (model's own quantization)
    patch: object = None  # PatchPlan, or None for layer-by-layer execution
    schedule: Schedule | None = None  # what the generated code runs, step by step
    target: KernelTarget | None = None  # the board and kernel policy every layer's kernel was chosen for
    quantmcu: QuantmcuResult | None = None  # what --quantmcu chose and measured (None: not used)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def logical_input_shape(graph: Graph) -> tuple[int, ...]:
    return to_logical_shape(graph, graph.inputs[0])


def check_fit(sram: int, flash: int, board: Board, options: "CompileOptions", choice=None) -> None:
    """Refuse a model whose peak SRAM (``sram``) does not fit the board's (or --sram-limit's) SRAM or whose
    ``flash`` does not fit its flash, with the numbers and the remedies that apply to the options given."""
    usable = board.arena_budget_bytes
    budget = min(usable, options.sram_limit or usable)
    problems = []
    if sram > budget:
        where = (f"the --sram-limit of {budget:,} B" if budget < usable else
                 f"board has {board.sram_bytes:,} B, {usable:,} B beside its {board.stack_bytes:,} B stack")
        how = ""
        if choice is not None and choice.plan is not None:
            how = f" even patched (best: {choice.plan.grid}x{choice.plan.grid} patches over {choice.plan.stage_len} layers)"
        elif choice is not None and options.patch.mode != "off":
            how = " even patched (no patch plan beat layer by layer)" if choice.tried else " layer by layer"
        else:
            how = " layer by layer"
        problems.append(f"SRAM: needs {sram:,} B{how}, {where}")
    if flash > board.flash_bytes:
        problems.append(f"flash: needs {flash:,} B, board has {board.flash_bytes:,} B")
    if not problems:
        return
    fixes = ["a board with more memory (mcucompile boards)"]
    if sram > budget:
        if options.sram_limit and options.sram_limit < usable:
            fixes.append("a larger --sram-limit")
        if options.patch.mode == "off":
            fixes.append("patch-based inference (drop --no-patch)")
        elif options.patch.mode == "forced":
            fixes.append("another --split/--patches (or drop them to search every plan)")
        else:
            if options.patch.max_overhead is not None:
                fixes.append(f"a larger --max-patch-overhead than {options.patch.max_overhead:g}")
        if not options.patch.input_by_patch:
            fixes.append("--input-by-patch")
    fixes.append("a smaller input resolution or width multiplier")
    raise UserError(f"model does not fit board '{board.name}' ({'; '.join(problems)}); try {', '.join(fixes)}")


def model_format(path: Path) -> str:
    if path.suffix.lower() == ".tflite":
        return "tflite"
    if path.exists() and path.is_file():
        with open(path, "rb") as f:
            head = f.read(8)
        if head[4:8] == b"TFL3":
            return "tflite"
    return "onnx"


def compile_model(model_path: str | Path, options: CompileOptions = CompileOptions()) -> Compiled:
    """Run the whole compile pipeline in memory; nothing is written to disk."""
    model_path = Path(model_path)
    board = get_board(options.board)
    progress = Progress(options.progress)
    notes: list[str] = []
    fmt = model_format(model_path)
    ranges: dict = {}
    if fmt == "tflite":

        if options.input_shapes:
            raise UserError("--input-shape applies to ONNX models; a .tflite model has fixed shapes (re-convert it "
                            "with the input size you want)")
        float_graph = load_tflite(model_path)
    else:
        float_graph = canonicalize(load_onnx(model_path, options.input_shapes))
        if any(t.quant is not None for t in float_graph.tensors.values() if not t.is_const):
            fmt = "onnx-qdq"
    if len(float_graph.inputs) != 1:
        raise UserError(f"the model has {len(float_graph.inputs)} inputs; mcucompile supports single-input models")
    check_single_sample(float_graph)
    check_input_shapes(float_graph, options)
    check_tensor_sizes(float_graph, board)
    in_shape = logical_input_shape(float_graph)
    float_graph = float_graph.replace(rounding=choose_rounding(fmt, model_path, options.rounding))
    # a partly quantized QDQ graph (onnxruntime leaves ops it cannot quantize in float) calibrates the
    # activations no Q/DQ pair and no op fixes, on the QDQ model itself, so its float island sees the
    # quantized values of the rest; a fully quantized model needs no calibration
    needs = calibration_needs(float_graph) if fmt != "onnx" else set()
    cal_opts = options.calibration
    cal: Calibration | None = None
    qm_calib = None  # QuantMCU's calibration samples where they are not ``calib``
    if fmt != "onnx" and not needs:
        calib = pre_quantized_samples(float_graph, options.calib_samples)
        if options.calib and options.quantmcu is not None:
            # the model's scales stay; QuantMCU's threshold, low-bit params and guard need real inputs, and they are
            # the compile's calibration samples (``Compiled.calib``: what verify and debug take by default), so
            # that the low-bit chain runs there too (random int8 inputs make every patch an outlier patch)
            qm_calib = calib = load_calibration(options.calib, in_shape)
            notes.append("--calib used by QuantMCU only: the model is already quantized and carries its own scales")
        elif options.calib:
            notes.append("--calib ignored: the model is already quantized and carries its own scales")
        elif options.quantmcu is not None:
            notes.append(f"no --calib data given: QuantMCU calibrates its low-bit chain on {options.calib_samples} "
                         "random int8 inputs; pass --calib with a few hundred real inputs")
        if cal_opts.overrides:
            raise UserError(f"tensor '{cal_opts.overrides[0].name}': the model is already quantized and carries its "
                            "own scales for every tensor; per-tensor calibration overrides apply to float ONNX models")
        if cal_opts.rule.method != "minmax" or cal_opts.bias_correction:
            notes.append("--calibration / --bias-correction ignored: the model carries its own scales")
    else:
        if fmt == "tflite":
            raise UserError(f"{model_path}: the int8 .tflite model has activations without quantization parameters "
                            f"(e.g. '{min(needs)}'); re-convert it with full integer quantization")
        if options.calib:
            calib = load_calibration(options.calib, in_shape)
            if fmt == "onnx":
                cal_opts = cal_opts.for_data(real_data=True)
        else:
            calib = synthetic_calibration(in_shape, options.calib_samples)
            what = (f"{len(needs)} activation tensor(s) without Q/DQ parameters (e.g. '{min(needs)}')"
                    if needs else "the model")
            notes.append(
                f"no --calib data given: calibrating {what} on {options.calib_samples} synthetic uniform [0,1) "
                "samples; int8 accuracy will suffer - pass --calib with a few hundred real inputs"
            )
        cal = calibrate_tensors(model_path, float_graph, calib, cal_opts, progress=options.progress, check_names=False)
        calibrated = set(cal.minmax) if fmt == "onnx" else set(needs)
        check_override_names(cal_opts, calibrated, set(cal.minmax) - calibrated)
        ranges = cal.ranges
    graph = quantize_graph(float_graph, ranges)
    corrected: dict[str, float] = {}
    if cal_opts.bias_correction and fmt == "onnx":
        graph, corrected = correct_biases(float_graph, graph, calib, progress=options.progress)
    elif cal_opts.bias_correction and cal is not None:
        notes.append("--bias-correction ignored: the model's weights and biases carry their own quantization")
    # a float model's sources the report derives itself (calibrated, or fixed by the op)
    tensor_sources = quant_sources(float_graph, graph, needs) if fmt != "onnx" else None
    budget = min(board.arena_budget_bytes, options.sram_limit or board.arena_budget_bytes)  # the stack is not the arena's
    po = options.patch
    # the planners, the safety check and the schedule choose each layer's kernel for the board's core and
    # --kernels: they all take this target where they take a board; --optimize memory takes the kernels
    # without scratch where the fastest need some (a lower peak)
    target = fast = KernelTarget(board, options.kernels, lean=po.optimize == "memory")
    with progress.step("planning memory and patches" if po.mode == "auto" else "planning memory"):
        choice = choose_patching(graph, budget, po.mode, po.split, po.patches, po.max_overhead, po.input_by_patch,
                                 optimize=po.optimize, board=target)
    if choice.arena.arena_size > budget and not target.lean and target.dsp_problem() is None:
        # the fast kernels' scratch may be the binding constraint: a model that fits with the portable kernels must
        # still fit, so the layers whose scratch lies above the budget, then (if that is not enough) all layers,
        # take the kernels that need none
        with progress.step("planning memory and patches (scratch-free kernels where the scratch does not fit)"):
            fit = fit_scratch(lambda t: choose_patching(graph, budget, po.mode, po.split, po.patches, po.max_overhead,
                                                        po.input_by_patch, optimize=po.optimize, board=t),
                              lambda c: c.arena, choice, target, budget)
        if fit is not None:
            if options.quantmcu is None:  # QuantMCU plans its kernels again from the fast ones (below)
                notes.append(scratch_note(choice.arena.arena_size, budget, fit[1], "peak SRAM"))
            choice, target = fit
    plan, patch = choice.arena, choice.plan
    if patch is not None and po.mode == "auto" and patch.overhead > 0.5 and choice.layerwise_peak <= budget:
        notes.append(
            f"the lowest-SRAM plan recomputes {100 * patch.overhead:.0f}% more MACs; the model also fits layer by "
            f"layer ({choice.layerwise_peak:,} B of {budget:,} B): --optimize speed (the default) runs it layer by "
            "layer, --max-patch-overhead 0.2 caps the recomputation"
        )
    check_plan_memory(graph, plan, patch, target)  # a plan that reads or writes outside its buffers is a bug: stop here
    qm = None
    if options.quantmcu is not None:
        if patch is None:
            raise UserError(no_patch_for_quantmcu(choice, budget, po.mode))
        samples = qm_calib if qm_calib is not None else calib
        calib_q = np.stack([quantize_values(to_physical(graph, graph.inputs[0], s[None]), graph.tensors[graph.inputs[0]].quant)
                            for s in samples])
        # the low-bit chain's smaller buffers may leave room for the fast kernels' scratch where 8-bit patching's
        # plan had none: QuantMCU starts from the fast kernels again
        target = fast
        synthetic = not options.calib  # the notes and refusals then say to give --calib with real inputs
        qm = plan_quantmcu(graph, patch, calib_q, options.quantmcu, target, budget, progress, fixed=po.mode == "forced",
                           synthetic=synthetic)
        if qm.arena.arena_size > budget and not target.lean and target.dsp_problem() is None:
            # as for 8-bit patching: the fast kernels' scratch may be what does not fit (one round of layers, since
            # each round is a whole QuantMCU search)
            fit = fit_scratch(lambda t: plan_quantmcu(graph, patch, calib_q, options.quantmcu, t, budget, progress,
                                                      fixed=po.mode == "forced", synthetic=synthetic),
                              lambda r: r.arena, qm, target, budget, rounds=1)
            if fit is not None:
                notes.append(scratch_note(qm.arena.arena_size, budget, fit[1], "QuantMCU's peak SRAM"))
                qm, target = fit
        notes.extend(qm.notes)
        if plan.arena_size > budget >= qm.arena.arena_size:
            notes.append(f"8-bit patching does not fit the {budget:,} B budget (its plan: {patch.grid}x{patch.grid} "
                         f"patches over {patch.stage_len} layers, {plan.arena_size:,} B); QuantMCU's plan "
                         f"({qm.arena.arena_size:,} B) does")
        if lowers_nothing(qm, patch):
            # both chains would be the 8-bit stage: the check and its dispatch would cost instructions and buy
            # nothing, so the code runs 8-bit patching's loop (report.json's quantmcu object says what was searched)
            notes.append("QuantMCU lowered no feature map on this plan: the code runs 8-bit patching's patch loop, "
                         "without the outlier check")
        else:
            graph, plan, patch = qm.schedule.graph, qm.arena, qm.plan
            # both chains, each in its exclusive group, the run-time check and the move (and sub-patches): a finding
            # is a compiler bug, as for the 8-bit plan
            check_plan_memory(graph, plan, patch, target, schedule=qm.schedule)
    check_fit(plan.arena_size, sum(flash_estimate(graph)), board, options, choice)
    provenance = {
        "model": model_path.name,
        "model sha256": _sha256(model_path),
        "board": board.name,
        "quantization": {"onnx": "calibrated", "onnx-qdq": "the model's QDQ scales", "tflite": "the model's own"}[fmt],
        "calibration": str(options.calib) if options.calib else f"synthetic ({options.calib_samples} samples, seed 0)",
    }
    if fmt != "onnx" and not needs:
        provenance.pop("calibration")
    elif fmt == "onnx-qdq":
        provenance["quantization"] = f"the model's QDQ scales; {len(needs)} activation tensor(s) calibrated"
    if patch is not None:
        provenance["patching"] = (f"first {patch.stage_len} layers in {patch.grid}x{patch.grid} patches, input "
                                  f"{'filled by patch' if patch.input_by_patch else 'whole'}")
    if qm is not None and plan is not qm.arena:
        provenance["quantmcu"] = "no feature map lowered: 8-bit patching's loop, no outlier check"
    elif qm is not None:
        low = [f"{graph.tensors[m.name].origin or m.name} {m.bits}" for m in qm.feature_maps if m.bits < 8]
        check = ("no outlier check (it could not fire): every patch on the low-bit chain" if qm.vdpc.never_fires else
                 f"outlier check on '{graph.tensors[qm.checked_map].origin or qm.checked_map}' (threshold {qm.threshold})")
        provenance["quantmcu"] = f"{check}; low-bit maps: {', '.join(low) or 'none'}"
    schedule = qm.schedule if qm is not None and plan is qm.arena else build_schedule(graph, patch, board=target)
    sources = generate_c(schedule, plan, options.name, provenance)
    tflm_arena, why = None, None
    if fmt == "tflite":
        with progress.step("measuring TFLite Micro's arena"):
            tflm_arena, why = probe_tflm_arena(model_path)
    if fmt == "tflite" and tflm_arena is None:
        notes.append(f"TFLite Micro's arena size not recorded: {why}")
    report = build_report(graph, plan, target, str(model_path), choice=choice, schedule=schedule, source_format=fmt,
                          notes=notes, tflm_arena_bytes=tflm_arena, tflm_arena_note=why, tensor_sources=tensor_sources,
                          compiler_version=__version__, quantmcu=qm,
                          calibration=calibration_report(cal, graph, needs if fmt != "onnx" else None, str(cal_opts.rule),
                                                         cal_opts.bias_correction and fmt == "onnx", len(corrected)))
    return Compiled(model_path, options, board, float_graph, graph, plan, sources, report, calib, tuple(notes), fmt,
                    patch, schedule, target, qm)


#: rounds of layers made scratch-free before all layers are (each round plans again)
SCRATCH_ROUNDS = 2


def scratch_layers(arena: ArenaPlan, budget: int) -> frozenset[str]:
    """The layers (by output tensor, as ``KernelTarget.lean_layers`` names them) whose kernel scratch ends above
    ``budget`` bytes in ``arena``."""
    return frozenset(b.name.split("@scratch")[0] for b in arena.buffers
                     if "@scratch" in b.name and b.offset + b.size > budget)


def fit_scratch(plan, arena_of, first, target: KernelTarget, budget: int, rounds: int = SCRATCH_ROUNDS):
    """Plan again (``plan(target)``) with scratch-free kernels until the arena (``arena_of(result)``) fits
    ``budget``: first for the layers whose scratch lies above the budget in the last plan (up to ``rounds``
    rounds, so the other layers keep their fast kernels), then for every layer. Returns (result, target) of the
    first plan that fits, or None when even every layer scratch-free does not fit (``first`` stays)."""
    result, tried = first, target
    for _ in range(rounds):
        layers = scratch_layers(arena_of(result), budget) - tried.lean_layers
        if not layers:
            break
        tried = dataclasses.replace(tried, lean_layers=tried.lean_layers | layers)
        result = plan(tried)
        if arena_of(result).arena_size <= budget:
            return result, tried
    lean = dataclasses.replace(target, lean=True)
    result = plan(lean)
    return (result, lean) if arena_of(result).arena_size <= budget else None


def scratch_note(peak: int, budget: int, target: KernelTarget, what: str) -> str:
    """The warning of a plan that fits only with scratch-free kernels (``target``: where they run)."""
    where = ("layers whose fast kernel needs scratch run a scratch-free kernel" if target.lean else
             f"the {len(target.lean_layers)} layer(s) whose scratch did not fit run a scratch-free kernel, the others "
             "keep their fast kernels")
    return (f"the DSP kernels' scratch would take {what} to {peak:,} B, over the {budget:,} B budget: {where} (the "
            "report names each)")


def lowers_nothing(qm: QuantmcuResult, patch) -> bool:
    """True when QuantMCU's plan is 8-bit patching's own, every map at 8 bits and no sub-patches: its two-chain
    loop would compute what 8-bit patching's loop computes, plus the outlier check."""
    return (all(m.bits == 8 for m in qm.feature_maps) and qm.sub_patches == 1
            and (qm.plan.stage_len, qm.plan.grid) == (patch.stage_len, patch.grid))


def no_patch_for_quantmcu(choice, budget: int, mode: str) -> str:
    """The one-line error for --quantmcu on a compile that chose no patch plan: why, and the fix."""
    peak = choice.layerwise_peak
    if mode == "off":
        return ("--quantmcu needs a patched stage, and patching is off (--no-patch); fix: drop --no-patch and give "
                f"--sram-limit below {peak} or force a plan with --split/--patches")
    if peak <= budget:
        return (f"--quantmcu needs a patched stage: the model fits layer by layer ({peak:,} B of SRAM within the "
                f"{budget:,} B budget), so no patch plan was chosen; fix: give --sram-limit below {peak} or force a "
                "plan with --split/--patches")
    return (f"--quantmcu needs a patched stage, and no patch plan beat layer by layer's {peak:,} B of SRAM, so the "
            f"model does not fit the {budget:,} B budget either way; fix: a larger --sram-limit (or a board with more "
            "SRAM) together with a plan forced by --split/--patches")


def calibration_report(cal: Calibration | None, graph: Graph, calibrated: set[str] | None, method: str,
                       bias_correction: bool, corrected: int) -> CalibrationReport | None:
    """The rule and range of every tensor calibrated (``calibrated``: their ONNX names; None: the float
    model's activations whose params no op fixes), in graph order; None when nothing was calibrated."""
    if cal is None:
        return None
    from ..report.build import derive_tensor_sources

    sources = derive_tensor_sources(graph, "onnx")
    order = [graph.tensors[t].origin or t for t in sources if calibrated is not None or sources[t] == "calibrated"]
    names = [k for k in dict.fromkeys(order) if k in cal.ranges and (calibrated is None or k in calibrated)]
    tensors = tuple(TensorCalibration(k, cal.rules[k], cal.ranges[k], cal.minmax[k]) for k in names)
    return CalibrationReport(method, bias_correction, tensors, corrected)


def choose_rounding(fmt: str, model_path: Path, rounding: str) -> str:
    """The requantization rounding (arith.fixedpoint.ROUNDINGS) for ``--rounding`` ``rounding``. "auto":
    TFLite's double rounding for .tflite models (bit-exact with TFLite Micro), for float ONNX models
    (mcucompile's own quantization, TFLite's arithmetic) and for QDQ models tf2onnx converted from TFLite
    or TensorFlow; single rounding for other QDQ models (onnxruntime's quantize_static and the like),
    whose meaning is ONNX's: a float op on dequantized inputs, then QuantizeLinear's one rounding, which is
    what onnxruntime computes."""
    if rounding != "auto":
        return rounding
    if fmt != "onnx-qdq":
        return "double"
    import onnx

    producer = onnx.load(str(model_path), load_external_data=False).producer_name
    return "double" if producer == "tf2onnx" else "single"


def quant_sources(float_graph: Graph, graph: Graph, calibrated: set[str] | None) -> dict[str, str]:
    """Where each activation's quantization parameters come from, by IR tensor name: "model" (the
    model's own Q/DQ or TFLite params), "calibrated" (from calibration ranges; every activation of a float
    model, whose ``calibrated`` is None) or "fixed" (set by its op: a softmax or sigmoid output, a max pool
    or reshape keeping its input's, a requantization's target)."""
    out = {}
    for name, t in graph.tensors.items():
        if t.is_const:
            continue
        before = float_graph.tensors.get(name)
        if before is not None and before.quant is not None:
            out[name] = "model"
        elif calibrated is None or (t.origin or name) in calibrated:
            out[name] = "calibrated"
        else:
            out[name] = "fixed"
    return out


def check_input_shapes(graph: Graph, options: CompileOptions) -> None:
    """Every --input-shape must name an input of the model (a typo would otherwise be ignored silently)."""
    names = {graph.tensors[n].origin or n for n in graph.inputs} | set(graph.inputs)
    for name in options.input_shapes or {}:
        if name not in names:
            raise UserError(f"--input-shape names '{name}', which is not an input of the model; its input is "
                            f"'{sorted(names)[0]}'")


# No microcontroller has 64 MiB of SRAM: a tensor larger than this is a wrong --input-shape or a broken
# model, refused before calibration allocates float copies of it.
MAX_TENSOR_BYTES = 64 << 20


def check_tensor_sizes(graph: Graph, board: Board) -> None:
    """Refuse activation tensors no board could hold, before calibration and planning allocate them."""
    for name, t in graph.tensors.items():
        if t.is_const:
            continue
        elements = int(np.prod(t.shape, dtype=object)) if t.shape else 1
        if elements > MAX_TENSOR_BYTES:
            raise UserError(f"tensor '{name}' has shape {list(t.shape)} ({elements:,} elements), more than any "
                            f"microcontroller's memory (board '{board.name}' has {board.sram_bytes:,} B of SRAM); "
                            "give the model's real input size (--input-shape) or a smaller model")


def pre_quantized_samples(graph: Graph, n: int, seed: int = 0) -> np.ndarray:
    """Deterministic random int8 inputs, as real values (dequantized), in the logical input layout."""
    name = graph.inputs[0]
    q = graph.tensors[name].quant
    rng = np.random.default_rng(seed)
    x_q = rng.integers(-128, 128, (n,) + tuple(graph.tensors[name].shape[1:]), dtype=np.int64)
    x = ((x_q - q.zp) * q.s).astype(np.float64)
    return np.stack([to_logical(graph, name, s[None])[0] for s in x])


def io_params(graph: Graph) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    ins = [(graph.tensors[n].quant.s, graph.tensors[n].quant.zp) for n in graph.inputs]
    outs = [(graph.tensors[n].quant.s, graph.tensors[n].quant.zp) for n in graph.outputs]
    return ins, outs


def tflm_arena_bytes(path: Path) -> int | None:
    """TFLite Micro's arena for the model, or None when TFLite Micro is missing or cannot load it."""
    return probe_tflm_arena(path)[0]


def to_logical_shape(graph: Graph, name: str) -> tuple[int, ...]:
    return graph.logical_shape(name)


