"""The public Python API: compile_model(), write_library(), verify_host().

The pipeline, in order (each stage a function over plain data, see docs/architecture.md):
  load_onnx -> canonicalize -> calibrate -> quantize_graph -> plan_memory -> check fit -> generate_c
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .boards import Board, get_board
from .codegen import CSource, generate_c
from .codegen.generate import environment
from .errors import UserError
from .frontend import load_onnx
from .ir import Graph
from .memory import ArenaPlan, plan_memory
from .schedule.safety import check_plan_memory
from .patch.search import choice_report, choose_patching
from .ops.base import dequantize_values, quantize_values
from .passes import canonicalize
from .paths import runtime_dir
from .quant.calibrate import DEFAULT_CALIB_SAMPLES, calibrate, load_calibration, synthetic_calibration
from .quant.quantize import quantize_graph
from .quant.simulate import run_int, to_logical, to_physical
from .report import build_report


@dataclass(frozen=True)
class CompileOptions:
    board: str = "nucleo"
    calib: str | None = None
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    name: str = "model"
    input_shapes: dict[str, tuple[int, ...]] | None = None
    progress: bool = True
    patch: str = "auto"  # auto: search (split, grid) for the lowest peak SRAM | off: layer by layer | forced
    split: int | None = None  # forced: number of layers in the per-patch stage
    patches: int | None = None  # forced: grid size n (n x n patches)
    sram_limit: int | None = None  # tighter SRAM budget than the board's
    max_patch_overhead: float | None = None  # cap on extra MACs of the stage (0.2 = 20%)
    input_by_patch: bool = False  # the application fills each input patch through a callback
    console: str | None = None  # firmware output: "uart" or "semihosting" (default: uart on real boards)
    optimize: str = "speed"  # speed: the fastest plan that fits the budget | memory: the lowest peak SRAM

    def __post_init__(self):
        """The Python API refuses what the command line refuses, with the same messages."""
        import math
        import re

        if not isinstance(self.calib_samples, int) or self.calib_samples < 1:
            raise UserError(f"calib_samples (--calib-samples) {self.calib_samples}: give a number of at least 1")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", str(self.name)):
            raise UserError(f"name (--name) {self.name!r}: give a C identifier, e.g. 'kws'")
        if self.patch not in ("auto", "off", "forced"):
            raise UserError(f"patch {self.patch!r}: give 'auto', 'off' or 'forced'")
        if self.optimize not in ("speed", "memory"):
            raise UserError(f"optimize (--optimize) {self.optimize!r}: give 'speed' or 'memory'")
        if self.sram_limit is not None and (not isinstance(self.sram_limit, int) or self.sram_limit < 1):
            raise UserError(f"sram_limit (--sram-limit) {self.sram_limit}: give a number of bytes of at least 1")
        if self.max_patch_overhead is not None and not (math.isfinite(self.max_patch_overhead)
                                                        and self.max_patch_overhead >= 0):
            raise UserError(f"max_patch_overhead (--max-patch-overhead) {self.max_patch_overhead}: give a finite "
                            "fraction of at least 0 (0.2 = 20% more MACs)")
        for flag, v in (("split (--split)", self.split), ("patches (--patches)", self.patches)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise UserError(f"{flag} {v}: give a number of at least 1")
        if self.console not in (None, "uart", "semihosting"):
            raise UserError(f"console (--console) {self.console!r}: give 'uart' or 'semihosting'")


@dataclass(frozen=True, eq=False)
class Compiled:
    model_path: Path
    options: CompileOptions
    board: Board
    float_graph: Graph
    graph: Graph
    plan: ArenaPlan
    sources: CSource
    report: dict
    calib: np.ndarray
    warnings: tuple[str, ...] = field(default_factory=tuple)
    source_format: str = "onnx"  # onnx (float, calibrated) | onnx-qdq | tflite (model's own quantization)
    patch: object = None  # PatchPlan, or None for layer-by-layer execution


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def logical_input_shape(graph: Graph) -> tuple[int, ...]:
    return to_logical_shape(graph, graph.inputs[0])


def check_fit(report: dict, board: Board, options: "CompileOptions", choice=None) -> None:
    """Refuse a model that does not fit the board's (or --sram-limit's) SRAM or the board's flash, with
    the numbers and the remedies that apply to the options given."""
    sram, flash = report["peak_sram_bytes"], report["flash_bytes"]
    budget = min(board.sram_bytes, options.sram_limit or board.sram_bytes)
    problems = []
    if sram > budget:
        where = f"the --sram-limit of {budget:,} B" if budget < board.sram_bytes else f"board has {board.sram_bytes:,} B"
        how = ""
        if choice is not None and choice.plan is not None:
            how = f" even patched (best: {choice.plan.grid}x{choice.plan.grid} patches over {choice.plan.stage_len} layers)"
        elif choice is not None and options.patch != "off":
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
        if options.sram_limit and options.sram_limit < board.sram_bytes:
            fixes.append("a larger --sram-limit")
        if options.patch == "off":
            fixes.append("patch-based inference (drop --no-patch)")
        elif options.patch == "forced":
            fixes.append("another --split/--patches (or drop them to search every plan)")
        else:
            if options.max_patch_overhead is not None:
                fixes.append(f"a larger --max-patch-overhead than {options.max_patch_overhead:g}")
        if not options.input_by_patch:
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
    notes: list[str] = []
    fmt = model_format(model_path)
    ranges: dict = {}
    if fmt == "tflite":
        from .frontend.tflite import load_tflite

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
    check_input_shapes(float_graph, options)
    check_tensor_sizes(float_graph, board)
    in_shape = logical_input_shape(float_graph)
    if fmt != "onnx":
        calib = pre_quantized_samples(float_graph, options.calib_samples)
        if options.calib:
            notes.append("--calib ignored: the model is already quantized and carries its own scales")
    else:
        if options.calib:
            calib = load_calibration(options.calib, in_shape)
        else:
            calib = synthetic_calibration(in_shape, options.calib_samples)
            notes.append(
                f"no --calib data given: calibrating on {options.calib_samples} synthetic uniform [0,1) samples; "
                "int8 accuracy will suffer - pass --calib with a few hundred real inputs"
            )
        ranges = calibrate(model_path, float_graph, calib, progress=options.progress)
    graph = quantize_graph(float_graph, ranges)
    budget = min(board.sram_bytes, options.sram_limit or board.sram_bytes)
    choice = choose_patching(graph, budget, options.patch, options.split, options.patches,
                             options.max_patch_overhead, options.input_by_patch, optimize=options.optimize)
    plan, patch = choice.arena, choice.plan
    if patch is not None and options.patch == "auto" and patch.overhead > 0.5 and choice.layerwise_peak <= budget:
        notes.append(
            f"the lowest-SRAM plan recomputes {100 * patch.overhead:.0f}% more MACs; the model also fits layer by "
            f"layer ({choice.layerwise_peak:,} B of {budget:,} B): --optimize speed (the default) runs it layer by "
            "layer, --max-patch-overhead 0.2 caps the recomputation"
        )
    check_plan_memory(graph, plan, patch)  # a plan that reads or writes outside its buffers is a bug: stop here
    provenance = {
        "model": model_path.name,
        "model sha256": _sha256(model_path),
        "board": board.name,
        "quantization": {"onnx": "calibrated", "onnx-qdq": "the model's QDQ scales", "tflite": "the model's own"}[fmt],
        "calibration": str(options.calib) if options.calib else f"synthetic ({options.calib_samples} samples, seed 0)",
    }
    if fmt != "onnx":
        provenance.pop("calibration")
    if patch is not None:
        provenance["patching"] = (f"first {patch.stage_len} layers in {patch.grid}x{patch.grid} patches, input "
                                  f"{'filled by patch' if patch.input_by_patch else 'whole'}")
    sources = generate_c(graph, plan, options.name, provenance, patch)
    extra = {"compiler_version": __version__, "notes": notes, "source_format": fmt,
             **patch_report(graph, choice, options), **choice_report(choice)}
    if fmt == "tflite":
        from .reference.tflite_refs import probe_tflm_arena

        extra["tflm_arena_bytes"], why = probe_tflm_arena(model_path)
        if extra["tflm_arena_bytes"] is None:
            extra["tflm_arena_note"] = why
            notes.append(f"TFLite Micro's arena size not recorded: {why}")
    report = build_report(graph, plan, board, str(model_path), extra)
    check_fit(report, board, options, choice)
    return Compiled(model_path, options, board, float_graph, graph, plan, sources, report, calib, tuple(notes), fmt,
                    patch)


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


def patch_report(graph: Graph, choice, options: CompileOptions) -> dict:
    """The patch plan and the memory profile (bytes live at each step, with and without patching)."""
    layerwise = plan_memory(graph)
    out: dict = {
        "peak_sram_layerwise_bytes": choice.layerwise_peak,
        "memory_profile": {"layerwise": layerwise.live_bytes()},
        "patch_candidates": [dataclasses.asdict(c) for c in choice.tried],
        "input_in_sram": "whole" if choice.plan is None or not choice.plan.input_by_patch else "by patch (callback)",
    }
    p = choice.plan
    if p is None:
        out["patch_plan"] = None
        return out
    out["memory_profile"]["patched"] = choice.arena.live_bytes()
    out["patch_plan"] = {
        "split_layer": p.stage_len - 1, "split_tensor": p.split, "stage_layers": p.stage_len, "grid": p.grid,
        "row_bounds": list(p.row_bounds), "col_bounds": list(p.col_bounds),
        "macs_stage_layerwise": p.macs_layerwise, "macs_stage_patched": p.macs_patched,
        "overhead_macs": p.macs_patched - p.macs_layerwise, "overhead": round(p.overhead, 4),
        "input_by_patch": p.input_by_patch,
        "regions": [{t: [r.top, r.left, r.bottom, r.right] for t, r in regs.items()} for regs in p.regions],
    }
    return out


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


def tflm_arena_bytes(path: Path, graph: Graph | None = None) -> int | None:
    """TFLite Micro's arena for the model, or None when TFLite Micro is missing or cannot load it."""
    from .reference.tflite_refs import probe_tflm_arena

    return probe_tflm_arena(path)[0]


def library_files(compiled: Compiled) -> dict[str, str]:
    """Every file of the C library folder: generated sources plus the runtime they call."""
    files = dict(compiled.sources.files)
    rt = runtime_dir()
    for sub in ("include", "src"):
        for p in sorted((rt / sub).iterdir()):
            if p.suffix in (".h", ".c"):
                files[f"{sub}/{p.name}"] = p.read_text()
    return files


def write_library(compiled: Compiled, out_dir: str | Path, inputs_q: np.ndarray | None = None) -> Path:
    """Write OUT/lib/<name>/ (the C library), OUT/report.json and, for a real or emulated board, the
    firmware project around them (PlatformIO + Make) with ``inputs_q`` compiled in.

    All or nothing, and safe for the user's files (see mcucompile.output): OUT must be new, empty or an
    unchanged earlier output of mcucompile, and must not hold the model or its calibration data."""
    from .output import write_output
    from .project import project_files

    files = {f"lib/{compiled.options.name}/{rel}": text for rel, text in library_files(compiled).items()}
    if compiled.board.name != "host":
        if inputs_q is None:
            inputs_q = quantize_input(compiled, compiled.calib[:1])
        sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
        files.update(project_files(compiled.board, compiled.options.name, inputs_q, sizes, compiled.options.console))
    files["report.json"] = json.dumps(compiled.report, indent=2) + "\n"
    return write_output(out_dir, files, compiled_inputs(compiled))


def compiled_inputs(compiled: Compiled) -> tuple[Path, ...]:
    """The files a compile read (the model, its calibration data): an output folder must not hold them."""
    return tuple(p for p in (compiled.model_path, compiled.options.calib) if p is not None)


def library_dir(out_dir: Path, compiled: Compiled) -> Path:
    return Path(out_dir) / "lib" / compiled.options.name


def host_runner_source(compiled: Compiled) -> str:
    from .codegen.generate import c_identifier

    P = c_identifier(compiled.options.name)
    g = compiled.graph
    return environment().get_template("host_runner.c.j2").render(
        P=P, PU=P.upper(), inputs=list(g.inputs), outputs=list(g.outputs)
    )


def quantize_input(compiled: Compiled, samples: np.ndarray) -> np.ndarray:
    """Logical-layout float samples [N, ...] -> physical int8 [N, ...] for the model input."""
    g = compiled.graph
    name = g.inputs[0]
    q = g.tensors[name].quant
    return np.stack([quantize_values(to_physical(g, name, s[None]), q) for s in samples])


def simulate(compiled: Compiled, x_q: np.ndarray) -> list[np.ndarray]:
    """Run the int8 simulator on physical int8 samples; returns [N, size] int8 per output."""
    g = compiled.graph
    outs = [[] for _ in g.outputs]
    for s in x_q:
        res = run_int(g, {g.inputs[0]: s})
        for k, o in enumerate(g.outputs):
            outs[k].append(res[o].reshape(-1))
    return [np.stack(o) for o in outs]


def onnx_reference(model_path: Path, samples: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    fixed = isinstance(sess.get_inputs()[0].shape[0], int)
    if fixed:
        res = [sess.run(None, {name: s[None]}) for s in samples]
        return [np.concatenate([r[k] for r in res]) for k in range(len(res[0]))]
    return sess.run(None, {name: samples})


@dataclass(frozen=True)
class OutputComparison:
    name: str
    top1_agreement: float
    sqnr_db: float
    cosine: float


REFERENCES = {
    "onnx": ("onnxruntime",),
    "onnx-qdq": ("onnxruntime-qdq",),
    "tflite": ("tflite-micro", "litert"),
}
REFERENCE_LABELS = {"onnxruntime": "onnxruntime float", "onnxruntime-qdq": "onnxruntime QDQ",
                    "tflite-micro": "TFLite Micro", "litert": "LiteRT (reference kernels)"}


def choose_references(source_format: str, names: tuple[str, ...] | None) -> tuple[str, ...]:
    """The references verify runs: all that apply to the model's format (``names`` None), none
    (``("none",)``), or the ones named; a name that does not apply is refused."""
    valid = REFERENCES[source_format]
    if names is None:
        return valid
    if tuple(names) == ("none",):
        return ()
    bad = [n for n in names if n not in valid]
    if bad:
        raise UserError(f"--reference {bad[0]} does not apply to this model ({source_format}); choose from: "
                        f"{', '.join(valid)}, or none")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ReferenceCheck:
    """One reference's verdict on the C outputs. ``status``: "bit-exact" / "differs" (byte comparison),
    "compared" (float references: see the output comparisons), "unavailable" (not installed) or
    "failed" (it refused or could not run the model; ``detail`` says why)."""

    name: str
    status: str
    mismatched_bytes: int | None = None
    detail: str = ""

    def format(self) -> str:
        label = f"C vs {REFERENCE_LABELS.get(self.name, self.name):<26}"
        if self.status == "bit-exact":
            return f"{label} bit-exact"
        if self.status == "differs":
            return f"{label} {self.mismatched_bytes} bytes differ{'; ' + self.detail if self.detail else ''}"
        if self.status == "compared":
            return f"{label} compared (above)"
        return f"{label} not run: {self.detail}" if self.status == "unavailable" else f"{label} FAILED to run: {self.detail}"


@dataclass(frozen=True)
class VerifyResult:
    samples: int
    bit_exact: bool
    mismatched_bytes: int
    outputs: tuple[OutputComparison, ...]
    accuracy_int8: float | None = None
    accuracy_reference: float | None = None  # the labelled accuracy of reference_for_accuracy
    target: str = "host"
    golden: dict = field(default_factory=dict)  # {reference: mismatched bytes}, for the references that ran
    references: tuple[ReferenceCheck, ...] = ()
    reference_for_accuracy: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def accuracy_float(self) -> float | None:
        """The float model's labelled accuracy (float ONNX models only)."""
        return self.accuracy_reference if self.reference_for_accuracy == "onnxruntime" else None

    @property
    def passed(self) -> bool:
        """Bit-exact with the simulator, and with TFLite Micro for .tflite models when it ran."""
        return self.bit_exact and self.golden.get("tflite-micro", 0) == 0

    def format(self) -> str:
        lines = [f"samples            {self.samples}",
                 f"C on {self.target:<10} vs simulator: {'bit-exact' if self.bit_exact else f'MISMATCH ({self.mismatched_bytes} bytes differ)'}"]
        for o in self.outputs:
            lines.append(f"output '{o.name}' vs onnxruntime float: top-1 agreement {100 * o.top1_agreement:.1f}%, "
                         f"SQNR {o.sqnr_db:.1f} dB, cosine {o.cosine:.4f}")
        for r in self.references:
            lines.append(r.format())
        if self.accuracy_int8 is not None:
            ref = ""
            if self.accuracy_reference is not None:
                ref = f"  {REFERENCE_LABELS[self.reference_for_accuracy]} {100 * self.accuracy_reference:.2f}%"
            lines.append(f"accuracy (labels)  int8 C {100 * self.accuracy_int8:.2f}%{ref}")
        return "\n".join(lines)


def compare_float(compiled: Compiled, c_outs: list[np.ndarray], ref: list[np.ndarray]) -> tuple[OutputComparison, ...]:
    g = compiled.graph
    comps = []
    for k, name in enumerate(g.outputs):
        q = g.tensors[name].quant
        deq = np.stack([to_logical(g, name, dequantize_values(c.reshape(g.tensors[name].shape), q)) for c in c_outs[k]])
        r = np.asarray(ref[k], np.float64).reshape(deq.shape)
        a, b = deq.reshape(len(deq), -1), r.reshape(len(r), -1)
        top1 = float(np.mean(a.argmax(1) == b.argmax(1)))
        noise = np.sum((a - b) ** 2)
        sqnr = float(10 * np.log10(np.sum(b**2) / noise)) if noise > 0 else float("inf")
        cos = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
        comps.append(OutputComparison(name, top1, sqnr, cos))
    return tuple(comps)


def verify_host(compiled: Compiled, samples: np.ndarray, labels: np.ndarray | None = None,
                build_dir: str | Path | None = None, sanitize: bool = False,
                references: tuple[str, ...] | None = None, out_dir: str | Path | None = None) -> VerifyResult:
    """Build the library for this PC, run it on ``samples`` (logical float), compare with the simulator
    (must be bit-exact) and with the references.

    ``out_dir``: keep the library there (under the output folder rules of write_library) with the host
    build in ``out_dir/build``; else ``build_dir``: a working folder for both (``build_dir/out`` and
    ``build_dir/build``); else a temporary folder. ``sanitize``: build under ASan + UBSan; a finding fails
    the run (RuntimeError with the sanitizer's report)."""
    from .targets.host import build_host, run_host

    if compiled.board.name != "host":
        compiled = dataclasses.replace(compiled, board=get_board("host"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(build_dir or tmp)
        out = write_library(compiled, Path(out_dir) if out_dir else work / "out")
        exe = build_host(library_dir(out, compiled), host_runner_source(compiled),
                         out / "build" if out_dir else work / "build", sanitize=sanitize)
        x_q = quantize_input(compiled, samples)
        sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
        c_outs = run_host(exe, [x_q], sizes)
    return compare_outputs(compiled, samples, x_q, c_outs, labels, references=references)


def compare_outputs(compiled: Compiled, samples: np.ndarray, x_q: np.ndarray, c_outs: list[np.ndarray],
                    labels: np.ndarray | None, target: str = "host",
                    references: tuple[str, ...] | None = None) -> VerifyResult:
    """C outputs vs the simulator (byte for byte) and vs the model's references (``references``: see
    choose_references): onnxruntime float for float ONNX models, onnxruntime's QDQ execution for QDQ
    models, TFLite Micro and LiteRT (byte for byte) for .tflite models. A reference is a witness: one
    that is missing or cannot run the model is reported as such and the others still run."""
    sim = simulate(compiled, x_q)
    mismatched = int(sum(np.count_nonzero(a != b) for a, b in zip(c_outs, sim)))
    golden: dict[str, int] = {}
    checks: list[ReferenceCheck] = []
    comps: tuple[OutputComparison, ...] = ()
    ref_outputs: dict[str, list[np.ndarray]] = {}
    for name in choose_references(compiled.source_format, references):
        try:
            outs = _run_reference(compiled, name, samples, x_q)
        except UserError as e:
            checks.append(ReferenceCheck(name, "unavailable", detail=str(e)))
            continue
        except Exception as e:  # noqa: BLE001 - a third-party reference that fails is reported, not fatal
            checks.append(ReferenceCheck(name, "failed", detail=f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"))
            continue
        ref_outputs[name] = outs
        if name == "onnxruntime":
            comps = compare_float(compiled, c_outs, outs)
            checks.append(ReferenceCheck(name, "compared"))
            continue
        diff = int(sum(np.count_nonzero(a.reshape(-1) != b.reshape(-1)) for a, b in zip(c_outs, outs)))
        golden[name] = diff
        checks.append(ReferenceCheck(name, "bit-exact" if diff == 0 else "differs", diff))
    checks = _explain_differences(checks)
    acc_q = acc_ref = None
    acc_name = next((n for n in ("onnxruntime", "tflite-micro", "onnxruntime-qdq", "litert") if n in ref_outputs), None)
    if labels is not None:
        acc_q = float(np.mean(c_outs[0].reshape(len(labels), -1).argmax(1) == labels))
        if acc_name is not None:
            acc_ref = float(np.mean(np.asarray(ref_outputs[acc_name][0]).reshape(len(labels), -1).argmax(1) == labels))
    return VerifyResult(len(samples), mismatched == 0, mismatched, comps, acc_q, acc_ref, target, golden,
                        tuple(checks), acc_name if acc_ref is not None else None, input_range_warnings(compiled, samples))


def _run_reference(compiled: Compiled, name: str, samples: np.ndarray, x_q: np.ndarray) -> list[np.ndarray]:
    """One reference's outputs: [N, ...] per model output (float for onnxruntime, int8 physical order
    flattened for the byte-exact references)."""
    if name == "onnxruntime":
        return onnx_reference(compiled.model_path, samples)
    if name == "onnxruntime-qdq":
        return qdq_reference_outputs(compiled, x_q)
    from .reference.tflite_refs import LiteRtReference, TflmReference

    ins, outs = io_params(compiled.graph)
    cls = TflmReference if name == "tflite-micro" else LiteRtReference
    return cls(compiled.model_path, ins, outs).run(x_q)


def _explain_differences(checks: list[ReferenceCheck]) -> list[ReferenceCheck]:
    by = {c.name: c for c in checks}
    lite, tflm = by.get("litert"), by.get("tflite-micro")
    if lite is not None and lite.status == "differs" and tflm is not None and tflm.status == "bit-exact":
        why = ("TFLite Micro agrees byte for byte; LiteRT's reference kernels are not TFLite Micro's and round some "
               "int8 ops differently, and TFLite Micro is what runs on the microcontroller")
        checks = [dataclasses.replace(c, detail=why) if c is lite else c for c in checks]
    return checks


def input_range_warnings(compiled: Compiled, samples: np.ndarray) -> tuple[str, ...]:
    """Warn when test inputs fall far outside the input's quantized range (e.g. 0..255 pixels for a model
    calibrated on 0..1): the int8 input clips them and agreement collapses for a reason outside the model."""
    g = compiled.graph
    q = g.tensors[g.inputs[0]].quant
    lo, hi = (-128 - q.zp) * q.s, (127 - q.zp) * q.s
    x = np.asarray(samples, np.float64)
    span = hi - lo
    outside = float(np.mean((x < lo - 0.01 * span) | (x > hi + 0.01 * span))) if x.size else 0.0
    if outside <= 0.01:
        return ()
    return (f"{100 * outside:.0f}% of the test input values lie outside the input's int8 range "
            f"[{lo:.4g}, {hi:.4g}] (test data {x.min():.4g}..{x.max():.4g}) and are clipped; scale the test data like "
            "the calibration data (e.g. --scale 0.00392156862745098 for 0..255 pixels)",)


def qdq_reference_outputs(compiled: Compiled, x_q: np.ndarray) -> list[np.ndarray]:
    """onnxruntime's execution of the QDQ model on the same int8 inputs, as int8 in our physical output
    order, [N, size] per output (informative: onnxruntime's QDQ kernels are not TFLite's integer kernels,
    e.g. softmax is computed in float)."""
    import onnxruntime as ort

    g = compiled.graph
    sess = ort.InferenceSession(str(compiled.model_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    outs: list[list[np.ndarray]] = [[] for _ in g.outputs]
    for x in x_q:
        feed = to_logical(g, g.inputs[0], x.reshape(g.tensors[g.inputs[0]].shape))
        if inp.type == "tensor(float)":
            q = g.tensors[g.inputs[0]].quant
            feed = dequantize_values(feed, q).astype(np.float32)
        res = sess.run(None, {inp.name: feed.astype(np.int8) if inp.type == "tensor(int8)" else feed})
        for k, name in enumerate(g.outputs):
            r = np.asarray(res[k])
            if r.dtype != np.int8:
                r = quantize_values(r, g.tensors[name].quant)
            outs[k].append(to_physical(g, name, r.reshape(to_logical_shape(g, name))).reshape(-1))
    return [np.stack(o) for o in outs]


def to_logical_shape(graph: Graph, name: str) -> tuple[int, ...]:
    phys = graph.tensors[name].shape
    perm = graph.io_perm.get(name, tuple(range(len(phys))))
    logical = [0] * len(phys)
    for i, p in enumerate(perm):
        logical[p] = phys[i]
    return tuple(logical)


def build_and_run_board(compiled: Compiled, samples: np.ndarray, out_dir: Path, timeout: float = 600.0):
    """Write the firmware project with ``samples`` compiled in, build it, run it on the (emulated) board."""
    from .targets.firmware import APT_HINT, build_firmware, elf_size, outputs_as_arrays, require_tool, run_qemu

    board = compiled.board
    if board.name == "host":
        raise UserError("bench and verify on a board need an emulated or real board; 'host' (this PC) has no "
                        "instruction counter: use --board qemu-m4, qemu-m7 or qemu-m55 (verify --board host runs "
                        "on this PC)")
    if board.qemu_machine is None:
        raise UserError(
            f"board '{board.name}' is a real board: mcucompile wrote its PlatformIO project; flash it with "
            "'pio run -t upload' and read the results with 'pio debug' (semihosting). Automatic runs on real "
            "boards are not available yet; use an emulated board (qemu-m4, qemu-m7, qemu-m55) or host")
    require_tool("arm-none-eabi-gcc", APT_HINT)
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm")
    x_q = quantize_input(compiled, samples)
    out = write_library(compiled, out_dir, x_q)
    elf = build_firmware(out)
    run = run_qemu(elf, board, timeout=timeout)
    sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
    return x_q, outputs_as_arrays(run, len(samples), sizes), run, elf_size(elf)


def verify_board(compiled: Compiled, samples: np.ndarray, labels: np.ndarray | None = None,
                 out_dir: str | Path | None = None, timeout: float = 600.0, port: str | None = None,
                 upload: bool = True, references: tuple[str, ...] | None = None) -> VerifyResult:
    """Run on the compiled board (QEMU for emulated boards, or a real board on ``port``) and compare
    like verify_host."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(out_dir or Path(tmp) / "fw")
        if port is not None:
            x_q, c_outs, run = run_on_port(compiled, samples, out, port, upload, timeout)
        else:
            x_q, c_outs, run, size = build_and_run_board(compiled, samples, out, timeout)
    return compare_outputs(compiled, samples, x_q, c_outs, labels, compiled.board.name, references)


def run_on_port(compiled: Compiled, samples: np.ndarray, out_dir: Path, port: str, upload: bool = True,
                timeout: float = 120.0):
    """A real board: write the project, flash it with PlatformIO (unless ``upload`` is False: flashed
    already, reset it now), read the result lines from the serial ``port``."""
    import subprocess

    from .targets.firmware import outputs_as_arrays
    from .targets.serial import open_port, read_run

    x_q = quantize_input(compiled, samples)
    out = write_library(compiled, out_dir, x_q)
    serial_port = open_port(port)
    try:
        if upload:
            pio = shutil.which("pio") or shutil.which("platformio")
            if pio is None:
                raise UserError("flashing needs PlatformIO: pip install platformio (or flash the project in "
                                f"{out} yourself and pass --no-upload)")
            res = subprocess.run([pio, "run", "-t", "upload"], cwd=out, capture_output=True, text=True, timeout=900)
            if res.returncode != 0:
                tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
                raise UserError(f"'pio run -t upload' failed for {compiled.board.name} ({' | '.join(tail)}); "
                                "check the board is connected and PlatformIO can install platform ststm32")
        run = read_run(serial_port, timeout, compiled.board.name)
    finally:
        serial_port.close()
    sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
    return x_q, outputs_as_arrays(run, len(samples), sizes), run


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
        lines.append("")
        lines.append(f"board        {self.board}  ({'instructions under QEMU -icount, not cycles' if self.unit == 'instructions' else 'DWT cycles'})")
        lines.append(f"flash (ELF)  {self.flash_bytes:,} B  (text {self.text_bytes:,} + data {self.data_bytes:,})")
        lines.append(f"SRAM (ELF)   {self.sram_bytes:,} B  (data {self.data_bytes:,} + bss {self.bss_bytes:,}; "
                     f"model arena {self.arena_bytes:,})")
        return "\n".join(lines)


def bench(compiled: Compiled, out_dir: str | Path | None = None, timeout: float = 600.0) -> BenchResult:
    """Per-layer instructions (emulated) or cycles on the board for one inference, and the ELF's memory."""
    with tempfile.TemporaryDirectory() as tmp:
        _, _, run, size = build_and_run_board(compiled, compiled.calib[:1], Path(out_dir or Path(tmp) / "fw"), timeout)
    layers = []
    for lay in compiled.report["layers"]:
        count = run.layers.get(lay["index"], 0)
        layers.append({**{k: lay[k] for k in ("index", "name", "op", "output_shape", "macs")}, "count": count,
                       "share": count / run.total if run.total else 0.0})
    return BenchResult(compiled.board.name, run.unit, tuple(layers), int(run.total or 0), size.flash_bytes,
                       size.sram_bytes, compiled.plan.arena_size, size.text, size.data, size.bss,
                       compiled.report.get("estimated_instructions"))
