"""verify: run the C on the host or a board and compare it with the simulator and the references."""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..arith.bitwidth import qrange
from ..boards import get_board
from ..errors import UserError
from ..ops import cmsis_nn
from ..ops.base import dequantize_values, quantize_values
from ..progress import QUIET, Progress
from ..quant.simulate import run_int, to_logical, to_physical
from ..reference import tflite_refs
from ..report.html import verify_section
from ..schedule.schedule import run_schedule_int
from ..targets.firmware import APT_HINT, build_firmware, elf_size, outputs_as_arrays, require_tool, run_qemu
from ..targets.flash import flash_with_platformio
from ..targets.host import build_host, find_compiler, run_host_log
from ..targets.serial import open_port, read_run
from .compile import Compiled, io_params, to_logical_shape
from .library import (add_html_results, cmsis_nn_dir, host_runner_source, library_dir, quantize_input, uses_cmsis_nn,
                      write_library)


def simulate(compiled: Compiled, x_q: np.ndarray, progress: Progress = QUIET,
             taken: list[list[int]] | None = None) -> list[np.ndarray]:
    """Run the integer simulator on physical int8 samples; returns [N, size] int8 per output.

    A patch loop with several chains (QuantMCU's low-bit chain and its 8-bit one, dispatched per patch on the
    device) runs through the schedule's simulator, which makes the device's decisions; ``taken`` then receives,
    per sample, the chain each patch took. Anything else runs layer by layer (which a one-chain patch loop equals
    byte for byte)."""
    g = compiled.graph
    loop = compiled.schedule.loop if compiled.schedule is not None else None
    chains = loop is not None and len(loop.chains) > 1
    outs = [[] for _ in g.outputs]
    with progress.step("simulating (integer simulator)", total=len(x_q)) as step:
        for s in x_q:
            if chains:
                t: list[int] = []
                res = run_schedule_int(compiled.schedule, {g.inputs[0]: s}, t)
                if taken is not None:
                    taken.append(t)
            else:
                res = run_int(g, {g.inputs[0]: s})
            for k, o in enumerate(g.outputs):
                outs[k].append(res[o].reshape(-1))
            step.advance()
    return [np.stack(o) for o in outs]


def simulate_8bit(compiled: Compiled, x_q: np.ndarray, progress: Progress = QUIET) -> list[np.ndarray]:
    """The 8-bit model's outputs on ``x_q``: the same graph with every layer at its 8-bit params, layer by layer
    (what 8-bit patching on the same plan computes, byte for byte); QuantMCU's quality is measured against it."""
    g = compiled.graph
    outs = [[] for _ in g.outputs]
    with progress.step("simulating the 8-bit model", total=len(x_q)) as step:
        for s in x_q:
            res = run_int(g, {g.inputs[0]: s})
            for k, o in enumerate(g.outputs):
                outs[k].append(res[o].reshape(-1))
            step.advance()
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
    """One model output of the C against one reference: top-1 agreement, SQNR (the reference as the
    signal) and cosine of the dequantized outputs; for integer references also the share of output
    bytes within 1 LSB."""

    name: str
    top1_agreement: float
    sqnr_db: float
    cosine: float
    reference: str = "onnxruntime"
    within_1lsb: float | None = None

    def format(self) -> str:
        lsb = f", {100 * self.within_1lsb:.2f}% of bytes within 1 LSB" if self.within_1lsb is not None else ""
        return (f"output '{self.name}' vs {REFERENCE_LABELS.get(self.reference, self.reference)}: top-1 agreement "
                f"{100 * self.top1_agreement:.1f}%, SQNR {self.sqnr_db:.1f} dB, cosine {self.cosine:.4f}{lsb}")


REFERENCES = {
    "onnx": ("onnxruntime",),
    "onnx-qdq": ("onnxruntime-qdq",),
    "tflite": ("tflite-micro", "litert"),
}
REFERENCE_LABELS = {"onnxruntime": "onnxruntime float", "onnxruntime-qdq": "onnxruntime QDQ",
                    "tflite-micro": "TFLite Micro", "litert": "LiteRT (reference kernels)",
                    "8-bit model": "the 8-bit model"}


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
    #: what was compared with the reference: the C outputs, or (a QuantMCU compile, whose C runs the low-bit
    #: chain) the 8-bit model's simulated outputs, which the byte-exact references must equal
    subject: str = "C"

    def format(self) -> str:
        label = f"{self.subject} vs {REFERENCE_LABELS.get(self.name, self.name):<26}"
        if self.status == "bit-exact":
            return f"{label} bit-exact"
        if self.status == "differs":
            return f"{label} {self.mismatched_bytes} bytes differ{'; ' + self.detail if self.detail else ''}"
        if self.status == "compared":
            if self.mismatched_bytes:
                return (f"{label} compared (above); {self.mismatched_bytes} bytes differ byte for byte (expected: its "
                        "kernels round differently from TFLite's)")
            return f"{label} compared (above)"
        return f"{label} not run: {self.detail}" if self.status == "unavailable" else f"{label} FAILED to run: {self.detail}"


@dataclass(frozen=True)
class ChainVerify:
    """A patch loop with several chains over verify's inputs (QuantMCU: the 8-bit chain for outlier patches, the
    low-bit chain for the others): how many patches took each chain, on the simulator and (when the firmware
    reports them: ``MCU CHAINS`` lines) on the device, and the quality of the C outputs against the 8-bit model
    (``vs_8bit``) next to the 8-bit model's own against float (``eight_bit_vs_float``)."""

    inputs: int
    patches: int  # per input
    chain_names: tuple[str, ...]
    chains: tuple[int, ...]  # per chain: patches that took it, summed over the inputs (simulator)
    device_chains: tuple[int, ...] | None = None  # the same from the device (None: it does not report them)
    device_mismatches: int | None = None  # (input, patch) pairs whose chain differs from the simulator's
    vs_8bit: tuple[OutputComparison, ...] = ()
    eight_bit_vs_float: tuple[OutputComparison, ...] = ()
    accuracy_8bit: float | None = None
    note: str = ""

    @property
    def device_agrees(self) -> bool | None:
        return None if self.device_mismatches is None else self.device_mismatches == 0

    def format(self) -> list[str]:
        total = self.inputs * self.patches
        counts = ", ".join(f"{name} {n:,} ({100 * n / total if total else 0.0:.1f}%)"
                           for name, n in zip(self.chain_names, self.chains))
        lines = [f"chains (simulator) {counts} of {total:,} patches ({self.inputs} inputs x {self.patches} patches)"]
        if self.device_chains is not None:
            same = ("every patch's chain equal to the simulator's" if self.device_mismatches == 0 else
                    f"MISMATCH: {self.device_mismatches} patches took another chain than on the simulator")
            dev = ", ".join(f"{name} {n:,}" for name, n in zip(self.chain_names, self.device_chains))
            lines.append(f"chains (device)    {dev}: {same}")
        elif self.note:
            lines.append(f"chains (device)    {self.note}")
        for o in self.vs_8bit:
            lines.append(o.format())
        for o in self.eight_bit_vs_float:
            lines.append(o.format().replace(f"output '{o.name}'", f"8-bit model '{o.name}'", 1))
        return lines


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
    chains: ChainVerify | None = None  # a patch loop with several chains (QuantMCU)

    @property
    def accuracy_float(self) -> float | None:
        """The float model's labelled accuracy (float ONNX models only)."""
        return self.accuracy_reference if self.reference_for_accuracy == "onnxruntime" else None

    @property
    def passed(self) -> bool:
        """Bit-exact with the simulator, and with TFLite Micro for .tflite models when it ran (a QuantMCU
        compile: its 8-bit model with TFLite Micro), and the device's chain per patch the simulator's when the
        device reports them."""
        chains_ok = self.chains is None or self.chains.device_agrees is not False
        return self.bit_exact and self.golden.get("tflite-micro", 0) == 0 and chains_ok

    def format(self) -> str:
        lines = [f"samples            {self.samples}",
                 f"C on {self.target:<10} vs simulator: {'bit-exact' if self.bit_exact else f'MISMATCH ({self.mismatched_bytes} bytes differ)'}"]
        if self.chains is not None:
            lines += self.chains.format()
        for o in self.outputs:
            lines.append(o.format())
        for r in self.references:
            lines.append(r.format())
        if self.accuracy_int8 is not None:
            ref = ""
            if self.chains is not None and self.chains.accuracy_8bit is not None:
                ref += f"  the 8-bit model {100 * self.chains.accuracy_8bit:.2f}%"
            if self.accuracy_reference is not None:
                ref += f"  {REFERENCE_LABELS[self.reference_for_accuracy]} {100 * self.accuracy_reference:.2f}%"
            lines.append(f"accuracy (labels)  int8 C {100 * self.accuracy_int8:.2f}%{ref}")
        return "\n".join(lines)


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Top-1 agreement, SQNR in dB (``b`` the signal, ``a - b`` the noise) and cosine of two [N, ...]
    float arrays."""
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    top1 = float(np.mean(a.argmax(1) == b.argmax(1)))
    noise = np.sum((a - b) ** 2)
    sqnr = float(10 * np.log10(np.sum(b**2) / noise)) if noise > 0 else float("inf")
    cos = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
    return top1, sqnr, cos


def compare_float(compiled: Compiled, c_outs: list[np.ndarray], ref: list[np.ndarray]) -> tuple[OutputComparison, ...]:
    """The C outputs, dequantized, against the float model's (logical layout)."""
    g = compiled.graph
    comps = []
    for k, name in enumerate(g.outputs):
        q = g.tensors[name].quant
        deq = np.stack([to_logical(g, name, dequantize_values(c.reshape(g.tensors[name].shape), q)) for c in c_outs[k]])
        r = np.asarray(ref[k], np.float64).reshape(deq.shape)
        comps.append(OutputComparison(name, *agreement(deq, r)))
    return tuple(comps)


def compare_quantized(compiled: Compiled, c_outs: list[np.ndarray], ref: list[np.ndarray],
                      reference: str) -> tuple[OutputComparison, ...]:
    """The C outputs against an integer reference's on the same int8 inputs (both in our physical order,
    at the output's params): top-1, SQNR and cosine of the dequantized values, and the share of bytes
    within 1 LSB (onnxruntime's QDQ kernels round differently from TFLite's, so bit-exactness with it is
    not expected)."""
    g = compiled.graph
    comps = []
    for k, name in enumerate(g.outputs):
        q = g.tensors[name].quant
        shape = g.tensors[name].shape
        a = np.stack([to_logical(g, name, dequantize_values(c.reshape(shape), q)) for c in c_outs[k]])
        b = np.stack([to_logical(g, name, dequantize_values(np.asarray(r).reshape(shape), q)) for r in ref[k]])
        close = np.abs(np.asarray(c_outs[k], np.int64).reshape(-1) - np.asarray(ref[k], np.int64).reshape(-1)) <= 1
        comps.append(OutputComparison(name, *agreement(a, b), reference=reference, within_1lsb=float(np.mean(close))))
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

    if compiled.board.name != "host":
        compiled = dataclasses.replace(compiled, board=get_board("host"))
    progress = Progress(compiled.options.progress)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(build_dir or tmp)
        cmsis = cmsis_nn_dir() if uses_cmsis_nn(compiled) else None
        out = write_library(compiled, Path(out_dir) if out_dir else work / "out")
        build = out / "build" if out_dir else work / "build"
        with progress.step("building the library for this PC" + (" (ASan + UBSan)" if sanitize else "")):
            if cmsis is None:
                exe = build_host(library_dir(out, compiled), host_runner_source(compiled), build, sanitize=sanitize)
            else:
                exe = build_host_cmsis_nn(library_dir(out, compiled), host_runner_source(compiled), build, cmsis,
                                          sanitize)
        x_q = quantize_input(compiled, samples)
        sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
        with progress.step(f"running {len(x_q)} samples on this PC"):
            c_outs, log = run_host_log(exe, [x_q], sizes)
    # the runner prints the C's chain per patch (MCU CHAINS lines) for a loop with several chains
    result = compare_outputs(compiled, samples, x_q, c_outs, labels, references=references, device_log=log)
    if out_dir:
        add_html_results(out_dir, compiled, section=verify_section(result))
    return result


def build_host_cmsis_nn(library: Path, runner_c: str, build_dir: Path, cmsis: Path, sanitize: bool = False) -> Path:
    """targets.host.build_host for a library that calls CMSIS-NN: CMSIS-NN's int8 sources
    (ops.cmsis_nn.library_sources) compile first with their own flags (its code is not held to our -Werror; with ``sanitize``
    AddressSanitizer only), then ours
    as build_host does, with CMSIS-NN's Include as a system include directory."""
    cc = find_compiler()
    objects = build_dir / "cmsis-nn"
    objects.mkdir(parents=True, exist_ok=True)
    sources = cmsis_nn.library_sources(cmsis)
    # with sanitize, CMSIS-NN under AddressSanitizer too: a pointer our generated code passes (a patch's start
    # offset) must keep its reads inside the buffers; its undefined behaviour is not ours to check
    own = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address"] if sanitize else ["-O2"]
    res = subprocess.run([cc, "-std=c99", *own, "-I", str(cmsis / "Include"), "-c", *map(str, sources)],
                         cwd=objects, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"CMSIS-NN host build failed in {cmsis}:\n{res.stderr[-4000:]}")
    # an archive: the link takes only the objects the model calls (the rest may reference functions not built)
    archive = objects / "libcmsis-nn.a"
    res = subprocess.run(["ar", "rcs", str(archive), *map(str, sorted(objects.glob("*.o")))], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise RuntimeError(f"ar failed for CMSIS-NN's objects: {res.stderr[-2000:]}")
    return build_host(library, runner_c, build_dir, sanitize=sanitize, system_includes=(cmsis / "Include",),
                      archives=(archive,))


def compare_outputs(compiled: Compiled, samples: np.ndarray, x_q: np.ndarray, c_outs: list[np.ndarray],
                    labels: np.ndarray | None, target: str = "host",
                    references: tuple[str, ...] | None = None, device_log: str | None = None) -> VerifyResult:
    """C outputs vs the simulator (byte for byte) and vs the model's references (``references``: see
    choose_references): onnxruntime float for float ONNX models, onnxruntime's QDQ execution for QDQ
    models, TFLite Micro and LiteRT (byte for byte) for .tflite models. A reference is a witness: one
    that is missing or cannot run the model is reported as such and the others still run.

    A patch loop with several chains (QuantMCU) is simulated as the device runs it (:func:`simulate`); the
    result then counts the patches per chain (``device_log``: the firmware's output, whose ``MCU CHAINS`` lines
    give the device's chains), measures the C against the 8-bit model, and holds the byte-exact references
    (TFLite Micro, LiteRT) to the 8-bit model, which is what they compute."""
    progress = Progress(compiled.options.progress)
    taken: list[list[int]] = []
    sim = simulate(compiled, x_q, progress, taken)
    mismatched = int(sum(np.count_nonzero(a != b) for a, b in zip(c_outs, sim)))
    multi = bool(taken)
    sim8 = simulate_8bit(compiled, x_q, progress) if multi else None
    witness = sim8 if multi else c_outs  # what the byte-exact references must equal
    subject = "8-bit model" if multi else "C"
    golden: dict[str, int] = {}
    checks: list[ReferenceCheck] = []
    comps: tuple[OutputComparison, ...] = ()
    eight_vs_float: tuple[OutputComparison, ...] = ()
    ref_outputs: dict[str, list[np.ndarray]] = {}
    for name in choose_references(compiled.source_format, references):
        try:
            with progress.step(f"running the reference {REFERENCE_LABELS.get(name, name)} on {len(samples)} samples"):
                outs = _run_reference(compiled, name, samples, x_q)
        except UserError as e:
            checks.append(ReferenceCheck(name, "unavailable", detail=str(e)))
            continue
        except Exception as e:  # noqa: BLE001 - a third-party reference that fails is reported, not fatal
            checks.append(ReferenceCheck(name, "failed", detail=f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"))
            continue
        ref_outputs[name] = outs
        if name == "onnxruntime":
            comps += compare_float(compiled, c_outs, outs)
            if multi:
                eight_vs_float += compare_float(compiled, sim8, outs)
            checks.append(ReferenceCheck(name, "compared"))
            continue
        if name == "onnxruntime-qdq":
            diff = int(sum(np.count_nonzero(a.reshape(-1) != b.reshape(-1)) for a, b in zip(c_outs, outs)))
            golden[name] = diff
            comps += compare_quantized(compiled, c_outs, outs, name)
            checks.append(ReferenceCheck(name, "compared", diff))
            continue
        diff = int(sum(np.count_nonzero(a.reshape(-1) != b.reshape(-1)) for a, b in zip(witness, outs)))
        golden[name] = diff
        if multi:
            comps += compare_quantized(compiled, c_outs, outs, name)
        checks.append(ReferenceCheck(name, "bit-exact" if diff == 0 else "differs", diff, subject=subject))
    checks = _explain_differences(checks)
    acc_q = acc_ref = None
    acc_name = next((n for n in ("onnxruntime", "tflite-micro", "onnxruntime-qdq", "litert") if n in ref_outputs), None)
    if labels is not None:
        acc_q = float(np.mean(c_outs[0].reshape(len(labels), -1).argmax(1) == labels))
        if acc_name is not None:
            acc_ref = float(np.mean(np.asarray(ref_outputs[acc_name][0]).reshape(len(labels), -1).argmax(1) == labels))
    chains = None
    if multi:
        acc8 = float(np.mean(sim8[0].reshape(len(labels), -1).argmax(1) == labels)) if labels is not None else None
        chains = chain_verify(compiled, taken, device_log, compare_quantized(compiled, c_outs, sim8, "8-bit model"),
                              eight_vs_float, acc8, target)
    return VerifyResult(len(samples), mismatched == 0, mismatched, comps, acc_q, acc_ref, target, golden,
                        tuple(checks), acc_name if acc_ref is not None else None, input_range_warnings(compiled, samples),
                        chains)


def device_chains(log: str) -> dict[int, list[int]]:
    """{sample: the chain of each patch} from the firmware's ``MCU CHAINS <sample> <hex digit per patch>`` lines."""
    out = {}
    for line in log.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "MCU" and parts[1] == "CHAINS":
            out[int(parts[2])] = [int(c, 16) for c in "".join(parts[3:])]
    return out


def chain_names(loop, check_dropped: bool = False) -> tuple[str, ...]:
    """A name per chain of the patch loop: with a run-time dispatch (QuantMCU), which patches run it; with
    ``check_dropped`` (QuantMCU's check could not fire, ``lowbit.lowbit_only_schedule``), which chain every patch
    runs and that the other is the same low-bit chain, never taken."""
    names = [f"chain {k}" for k in range(len(loop.chains))]
    if loop.runtime:
        d = loop.dispatch
        names[d.outlier_chain] = f"chain {d.outlier_chain} (8-bit, outlier patches)"
        names[d.inlier_chain] = f"chain {d.inlier_chain} (low-bit)"
    elif check_dropped and loop.dispatch is not None:
        taken = sorted(set(loop.dispatch.chain_of_patch))
        for k in range(len(names)):
            names[k] += (" (low-bit, every patch: no check, it could not fire)" if k in taken else
                         f" (a copy of chain {taken[0]}, not taken)")
    return tuple(names)


def chain_verify(compiled: Compiled, taken: list[list[int]], device_log: str | None,
                 vs_8bit: tuple[OutputComparison, ...], eight_bit_vs_float: tuple[OutputComparison, ...],
                 accuracy_8bit: float | None, target: str) -> ChainVerify:
    """The chains verify's inputs took (``taken``: per input, per patch, from the simulator) against the
    device's (``device_log``), with the quality figures."""
    loop = compiled.schedule.loop
    n = len(loop.chains)
    sim = np.asarray(taken, dtype=np.int64)
    counts = tuple(int(np.count_nonzero(sim == k)) for k in range(n))
    dev_counts = mismatches = None
    note = ""
    dev = device_chains(device_log) if device_log else {}
    if dev:
        rows = [dev.get(s, []) for s in range(len(taken))]
        mismatches = int(sum(len(t) if len(r) != len(t) else sum(a != b for a, b in zip(r, t))
                             for r, t in zip(rows, taken)))
        dev_counts = tuple(int(sum(r.count(k) for r in rows)) for k in range(n))
    elif target == "host":
        note = ("not reported by the host build; the byte comparison of its outputs with the simulator (which makes "
                "the device's decisions) covers them")
    else:
        note = ("not reported by this firmware; the byte comparison of its outputs with the simulator (which makes "
                "the device's decisions) covers them")
    qm = compiled.quantmcu
    dropped = qm is not None and qm.vdpc.never_fires
    return ChainVerify(len(taken), loop.plan.patches, chain_names(loop, dropped), counts, dev_counts, mismatches, vs_8bit,
                       eight_bit_vs_float, accuracy_8bit, note)


def _run_reference(compiled: Compiled, name: str, samples: np.ndarray, x_q: np.ndarray) -> list[np.ndarray]:
    """One reference's outputs: [N, ...] per model output (float for onnxruntime, int8 physical order
    flattened for the byte-exact references)."""
    if name == "onnxruntime":
        return onnx_reference(compiled.model_path, samples)
    if name == "onnxruntime-qdq":
        return qdq_reference_outputs(compiled, x_q)

    ins, outs = io_params(compiled.graph)
    cls = tflite_refs.TflmReference if name == "tflite-micro" else tflite_refs.LiteRtReference
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
    qmin, qmax = qrange(q.bits)
    lo, hi = (qmin - q.zp) * q.s, (qmax - q.zp) * q.s
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
        elif inp.type == "tensor(uint8)":
            feed = (feed.astype(np.int16) + 128).astype(np.uint8)  # the import moved uint8 zero points by -128
        else:
            feed = feed.astype(np.int8)
        res = sess.run(None, {inp.name: feed})
        for k, name in enumerate(g.outputs):
            r = np.asarray(res[k])
            if r.dtype == np.uint8:
                r = (r.astype(np.int16) - 128).astype(np.int8)
            elif r.dtype != np.int8:
                r = quantize_values(r, g.tensors[name].quant)
            outs[k].append(to_physical(g, name, r.reshape(to_logical_shape(g, name))).reshape(-1))
    return [np.stack(o) for o in outs]


def build_and_run_board(compiled: Compiled, samples: np.ndarray, out_dir: Path, timeout: float = 600.0):
    """Write the firmware project with ``samples`` compiled in, build it, run it on the (emulated) board."""

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
    if uses_cmsis_nn(compiled):
        # the generated Makefile reads CMSIS_NN_DIR from the environment; say what to set before make fails
        cmsis_nn_dir()
    x_q = quantize_input(compiled, samples)
    out = write_library(compiled, out_dir, x_q)
    progress = Progress(compiled.options.progress)
    with progress.step(f"building the firmware for {board.name}"):
        elf = build_firmware(out)
    with progress.step(f"running {len(samples)} sample{'s' if len(samples) != 1 else ''} on {board.name} (QEMU)"):
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
        result = compare_outputs(compiled, samples, x_q, c_outs, labels, compiled.board.name, references,
                                 device_log=getattr(run, "log", None))
        if out_dir is not None:
            add_html_results(out, compiled, section=verify_section(result))
    return result


def run_on_port(compiled: Compiled, samples: np.ndarray, out_dir: Path, port: str, upload: bool = True,
                timeout: float = 120.0):
    """A real board: write the project, flash it with PlatformIO (unless ``upload`` is False: flashed
    already, reset it now), read the result lines from the serial ``port``."""
    x_q = quantize_input(compiled, samples)
    out = write_library(compiled, out_dir, x_q)
    serial_port = open_port(port)
    progress = Progress(compiled.options.progress)
    try:
        if upload:
            with progress.step(f"building and flashing {compiled.board.name} (PlatformIO)"):
                flash_with_platformio(out, compiled.board.name)
        with progress.step(f"reading the results from {port}"):
            run = read_run(serial_port, timeout, compiled.board.name)
    finally:
        serial_port.close()
    sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
    return x_q, outputs_as_arrays(run, len(samples), sizes), run


