#!/usr/bin/env python3
"""QuantMCU benchmark (measures, does not assert): 8-bit patching against ``--quantmcu`` at the same SRAM budget.

Per model and budget (docs/quantmcu.md, "Evaluation"): *tight* = the lowest peak SRAM 8-bit patching reaches
(``--optimize memory``), *moderate* = halfway between that and the layer-by-layer peak; the input whole, and for
MobileNetV2 also filled by patch (``--input-by-patch``). Each side is compiled by ``compile_model`` as a user
would (8-bit: the fastest plan that fits; QuantMCU: its own joint plan and bits, default options) and reports:

- the plan (split layer, grid, sub-patches of an outlier patch), peak SRAM (the model arena, scratch included);
- stage BitOPs of 8-bit patching on QuantMCU's split and grid, of 8-bit patching at its own plan, and of QuantMCU
  (expectations over the calibration samples' chains, from report.json's ``quantmcu`` object), model BitOPs;
- instructions of one inference on qemu-m4 and qemu-m55 (QEMU -icount: instructions, not cycles; the first test
  input, run with the per-layer counters), stage and total, the check included (QuantMCU's stage is everything
  before the first layer after it); and the stage's mean over the next ``--inputs`` test inputs (run without the
  counters: a QuantMCU stage's instructions depend on the input, since each patch's chain does);
- the outlier patch share on the calibration data and on the test inputs;
- quality on the test inputs (kept apart from the calibration data): output SQNR and top-1 agreement against the
  8-bit model and against float (the float ONNX model), MNIST accuracy on its 2,000 labelled test images;
- the search time; then per model the trade-off curve VDQS walked (every step: BitOPs ratio, guard metric,
  kept or backed off) and what the entropy score alone chose.

Models: VWW and ResNet-8 (MLPerf Tiny int8 .tflite; inputs: seeded crops of scikit-image photos from
tools/photo_crops.py, calibration and test from disjoint photo halves; ResNet-8's are not CIFAR-10 images),
MNIST (models/mnist, float ONNX, our quantization), MobileNetV2-0.35 144x144 (models/mbv2, random weights:
memory and instructions only).

Usage: python bench/quantmcu.py [--models vww,resnet8,mnist,mbv2] [--boards qemu-m4,qemu-m55] [--calib 100]
       [--test 200] [--inputs 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "models" / "mbv2"))

from mcucompile.api import CompileOptions, PatchOptions, compile_model, quantize_input  # noqa: E402
from mcucompile.api.verify import build_and_run_board  # noqa: E402
from mcucompile.errors import UserError  # noqa: E402
from mcucompile.quantmcu.options import QuantmcuOptions  # noqa: E402
from mcucompile.schedule.schedule import run_schedule_int  # noqa: E402

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"
MNIST = REPO / "models" / "mnist"


@dataclass(frozen=True)
class Case:
    """A benchmark model: its file, the float model quality is measured against, how inputs are made."""

    name: str
    path: str
    float_path: str | None
    inputs: str  # "photo", "mnist" or "synthetic"
    size: tuple[int, int] = (96, 96)
    scale: float = 1.0
    input_by_patch: tuple[bool, ...] = (False,)


CASES = {
    "vww": Case("vww", str(SHARED / "vww_mbv1_025_int8.tflite"), str(SHARED / "vww_mbv1_025_float.onnx"), "photo"),
    "resnet8": Case("resnet8", str(SHARED / "resnet8_int8.tflite"), str(SHARED / "resnet8_float.onnx"), "photo",
                    (32, 32), 255.0),
    "mnist": Case("mnist", str(MNIST / "mnist_cnn.onnx"), str(MNIST / "mnist_cnn.onnx"), "mnist"),
    "mbv2": Case("mbv2", "mbv2", None, "synthetic", input_by_patch=(False, True)),
}


def inputs_of(case: Case, n_calib: int, n_test: int, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray | None]:
    """(calibration file, test inputs in the model's logical layout, test labels or None)."""
    if case.inputs == "photo":
        from photo_crops import photo_crops

        calib = case.scale * photo_crops(n_calib, case.size, "calib")
        test, labels = case.scale * photo_crops(n_test, case.size, "test"), None
    elif case.inputs == "mnist":
        calib = np.load(MNIST / "mnist_calib_200.npz")["x"][:n_calib]
        d = np.load(MNIST / "mnist_test_2000.npz")
        test, labels = d["x"] / 255.0, d["y"]  # uint8 pixels; the model (and its calibration set) takes [0, 1]
    else:
        rng = np.random.default_rng(0)
        calib = rng.random((n_calib, 3, 144, 144), np.float32)
        test, labels = rng.random((max(2, n_test // 50), 3, 144, 144), np.float32), None
    path = tmp / f"{case.name}_calib.npz"
    np.savez(path, x=calib.astype(np.float32))
    return path, test.astype(np.float32), labels


def model_path(case: Case, tmp: Path) -> Path:
    if case.path != "mbv2":
        return Path(case.path)
    import onnx
    from make_mbv2 import build

    path = tmp / "mbv2_035_144.onnx"
    if not path.exists():
        onnx.save(build(144, 0.35), str(path))
    return path


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(np.sum((out - ref) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref ** 2)) / noise)


def dequantized_outputs(c, test_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's dequantized outputs of ``c``'s schedule on ``test_q`` and the chain each patch took."""
    g = c.graph
    out = g.outputs[0]
    q = g.tensors[out].quant
    outs, taken = [], []
    for x in test_q:
        t: list[int] = []
        y = run_schedule_int(c.schedule, {g.inputs[0]: x}, t)[out]
        outs.append(((np.asarray(y, np.float64) - q.zp) * q.s).reshape(-1))
        taken.append(t)
    return np.stack(outs), np.array(taken, dtype=np.int64)


def float_outputs(path: str, test: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.stack([np.asarray(s.run(None, {name: x[None]})[0], np.float64).reshape(-1) for x in test])


@dataclass(frozen=True)
class Instructions:
    """One compile's instructions on its (emulated) board: stage and total of the first test input (run with the
    per-layer counters), and their means over the next inputs (run without them; a QuantMCU stage's instructions
    depend on the input, since each patch's chain does)."""

    stage: int
    total: int
    stage_mean: float
    total_mean: float
    inputs: int  # the inputs the means are over


def instructions(c, samples: np.ndarray, tmp: Path) -> Instructions:
    """``c`` run on ``samples`` (as many as a quarter of the board's flash holds, at least two)."""
    fit = max(2, (c.board.flash_bytes // 4) // max(1, int(np.prod(samples.shape[1:]))))
    _, _, run, _ = build_and_run_board(c, samples[:fit], tmp / f"fw_{c.board.name}")
    rest = sum(run.layers.get(s.index, 0) for s in c.schedule.layers if not s.in_loop)
    total = int(run.total or 0)
    later = [run.times[i] for i in sorted(run.times) if i > 0]
    mean = float(np.mean(later))
    return Instructions(total - rest, total, mean - rest, mean, len(later))


def budgets(path: Path, calib: Path, board: str, input_by_patch: bool) -> dict[str, int]:
    """The tight and moderate SRAM budgets of a model on ``board`` (see the module docstring)."""
    lowest = compile_model(path, CompileOptions(board=board, calib=str(calib), progress=False,
                                                patch=PatchOptions(optimize="memory", input_by_patch=input_by_patch)))
    layer = compile_model(path, CompileOptions(board=board, calib=str(calib), progress=False,
                                               patch=PatchOptions(mode="off")))
    tight = lowest.plan.arena_size
    return {"tight": tight, "moderate": (tight + layer.plan.arena_size) // 2}


def describe(c) -> str:
    p = c.patch
    if p is None:
        return "layer by layer"
    sub = c.quantmcu.sub_patches if c.quantmcu is not None else 1
    return f"{p.grid}x{p.grid}@{p.stage_len}" + (f" sub {sub}x{sub}" if sub > 1 else "")


def run_case(case: Case, boards: list[str], n_calib: int, n_test: int, n_inputs: int, tmp: Path) -> None:
    path = model_path(case, tmp)
    calib, test, labels = inputs_of(case, n_calib, n_test, tmp)
    ref_float = float_outputs(case.float_path, test) if case.float_path else None
    curves = []
    for ibp in case.input_by_patch:
        for label, budget in budgets(path, calib, boards[0], ibp).items():
            row: dict[str, str] = {}
            compiled = {}
            refused = None
            for board in boards:
                base = CompileOptions(board=board, calib=str(calib), progress=False, sram_limit=budget,
                                      patch=PatchOptions(input_by_patch=ibp))
                c8 = compile_model(path, base)
                try:
                    cq = compile_model(path, dataclasses.replace(base, quantmcu=QuantmcuOptions()))
                except UserError as e:  # what a user would see: the row says it
                    refused = str(e)
                    break
                compiled[board] = (c8, cq)
            if refused is not None:
                print(f"  {case.name}{' (input by patch)' if ibp else ''}, {label} budget {budget:,}: 8-bit patching "
                      f"{describe(c8)}, peak {c8.plan.arena_size:,}; --quantmcu refused: {refused}\n", flush=True)
                continue
            c8, cq = compiled[boards[0]]
            qm = cq.quantmcu
            test_q = quantize_input(cq, test)
            o8, _ = dequantized_outputs(c8, test_q)
            oq, taken = dequantized_outputs(cq, test_q) if case.inputs != "synthetic" else (o8, None)
            row["model"] = f"{case.name}{' (input by patch)' if ibp else ''}"
            row["budget"] = f"{label} {budget:,}"
            row["plan 8-bit / qm"] = f"{describe(c8)} / {describe(cq)}"
            row["peak SRAM 8-bit / qm"] = f"{c8.plan.arena_size:,} / {cq.plan.arena_size:,}"
            row["stage BitOPs 8-bit own / same plan / qm"] = (f"{qm.bitops_8bit_own_plan:.3g} / {qm.bitops_8bit:.3g} / "
                                                               f"{qm.bitops:.3g}")
            row["saving same / own"] = f"{qm.bitops_8bit / qm.bitops:.2f}x / {qm.bitops_8bit_own_plan / qm.bitops:.2f}x"
            row["model BitOPs saving"] = f"{qm.bitops_model_8bit / qm.bitops_model:.2f}x"
            for board in boards:
                b8, bq = compiled[board]
                i8 = instructions(b8, test[: n_inputs + 1], tmp)
                iq = instructions(bq, test[: n_inputs + 1], tmp)
                row[f"{board} stage 8-bit / qm"] = f"{i8.stage:,} / {iq.stage:,} ({i8.stage / max(iq.stage, 1):.3f}x)"
                row[f"{board} total 8-bit / qm"] = f"{i8.total:,} / {iq.total:,} ({i8.total / max(iq.total, 1):.3f}x)"
                row[f"{board} stage, mean of {iq.inputs} more inputs"] = (
                    f"{i8.stage_mean:,.0f} / {iq.stage_mean:,.0f} ({i8.stage_mean / max(iq.stage_mean, 1):.3f}x)")
            # QuantMCU that lowered nothing runs 8-bit patching's loop (no chains to count)
            dispatch = cq.schedule.loop.dispatch
            share_test = (float((np.asarray(taken) == dispatch.outlier_chain).mean())
                          if taken is not None and dispatch is not None else None)
            row["outlier share calib / test"] = (f"{qm.outlier_patch_share:.3f} / "
                                                 + (f"{share_test:.3f}" if share_test is not None else "-"))
            if case.inputs != "synthetic":
                agree8 = float((oq.argmax(1) == o8.argmax(1)).mean())
                row["vs 8-bit: SQNR dB / agreement"] = f"{sqnr_db(o8, oq):.1f} / {agree8:.3f}"
                if ref_float is not None:
                    row["vs float: SQNR 8-bit, qm / agreement 8-bit, qm"] = (
                        f"{sqnr_db(ref_float, o8):.1f}, {sqnr_db(ref_float, oq):.1f} / "
                        f"{(o8.argmax(1) == ref_float.argmax(1)).mean():.3f}, {(oq.argmax(1) == ref_float.argmax(1)).mean():.3f}")
                if labels is not None:
                    row["accuracy 8-bit / qm"] = f"{(o8.argmax(1) == labels).mean():.4f} / {(oq.argmax(1) == labels).mean():.4f}"
            row["guard (held-back)"] = ", ".join(f"{k} {v:.3g}" for k, v in qm.quality.items())
            row["bits"] = " ".join(f"{fm.bits}{'*' if fm.checked else ''}" for fm in qm.feature_maps)
            row["search s"] = f"{qm.search_seconds:.1f}"
            print("\n".join(f"  {k:<48} {v}" for k, v in row.items()), flush=True)
            print()
            curves.append((row["model"], label, qm))
    for model, label, qm in curves[:1]:
        print(f"  trade-off curve ({model}, {label} budget; guard {qm.options.guard} floor {qm.options.guard_floor}):")
        print(f"  {'step':>4}  {'map':<40} {'bits':>4} {'score':>7} {'BitOPs ratio':>12} {'guard':>8}  kept")
        for i, st in enumerate(qm.steps):
            print(f"  {i:>4}  {st.map[-40:]:<40} {st.bits:>4} {st.score:>7.3f} {st.bitops_ratio:>12.3f} "
                  f"{st.quality:>8.3f}  {'yes' if st.accepted else 'backed off'}")
        print(f"  entropy score alone: bits {qm.entropy_only}, quality {qm.entropy_only_quality}\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(CASES))
    p.add_argument("--boards", default="qemu-m4,qemu-m55")
    p.add_argument("--calib", type=int, default=100)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--inputs", type=int, default=8, help="test inputs after the first whose instructions are "
                   "averaged (fewer where a quarter of the board's flash holds fewer)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            print(f"== {name}", flush=True)
            run_case(CASES[name], a.boards.split(","), a.calib, a.test, a.inputs, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
