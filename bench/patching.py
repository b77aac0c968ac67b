#!/usr/bin/env python3
"""Patch-based inference benchmark (measures, does not assert).

Per model: peak SRAM layer by layer, patched (input whole), patched with --input-by-patch, TFLite
Micro's arena for the same model (int8 .tflite, where one exists), the recomputed MACs of the chosen
plan, and guest instructions per inference on qemu-m7 (QEMU -icount: instructions, not cycles) for the
layer-by-layer and patched builds. Plans: the search's minimum-peak choice, and the same search capped
at 20% extra MACs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "models" / "mbv2"))

import onnx  # noqa: E402
from make_mbv2 import build as build_mbv2  # noqa: E402

from mcucompile.api import CompileOptions, PatchOptions, bench, compile_model, tflm_arena_bytes  # noqa: E402

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"


def main() -> int:
    tmp = Path(tempfile.mkdtemp())
    mbv2 = tmp / "mbv2_144.onnx"
    onnx.save(build_mbv2(144, 0.35), str(mbv2))
    models = [
        ("vww_mbv1_025 96x96", SHARED / "vww_mbv1_025_float.onnx", None, SHARED / "vww_mbv1_025_int8.tflite"),
        ("resnet8 32x32", SHARED / "resnet8_float.onnx", None, SHARED / "resnet8_int8.tflite"),
        ("mnist_cnn 28x28", REPO / "models" / "mnist" / "mnist_cnn.onnx", str(REPO / "models" / "mnist" / "mnist_calib_200.npz"), None),
        ("mbv2-0.35 144x144", mbv2, None, None),
    ]
    head = (f"{'model':<19} {'plan':<26} {'peak B':>9} {'vs layer':>8} {'TFLM arena':>10} {'extra MACs':>10} "
            f"{'instr qemu-m7':>14} {'vs layer':>8}")
    print(head)
    print("-" * len(head))
    for label, path, calib, tfl in models:
        tflm = None
        if tfl is not None:
            tflm = tflm_arena_bytes(tfl)
        base = compile_model(path, CompileOptions(board="qemu-m7", calib=calib, progress=False, patch=PatchOptions(mode="off")))
        base_instr = bench(base).total
        rows = [("layer by layer", base)]
        lowest = {"optimize": "memory"}  # the minimum-peak plans, whatever they cost
        for name, kw in [("patched (min peak)", lowest), ("patched, <=20% MACs", {**lowest, "max_overhead": 0.2}),
                         ("by-patch input (min)", {**lowest, "input_by_patch": True}),
                         ("by-patch, <=20% MACs", {**lowest, "input_by_patch": True, "max_overhead": 0.2})]:
            rows.append((name, compile_model(path, CompileOptions(board="qemu-m7", calib=calib, progress=False,
                                                                  patch=PatchOptions(**kw)))))
        for name, c in rows:
            pp = c.report.patch_plan
            plan = name if not pp else f"{name} {pp.grid}x{pp.grid}@{pp.stage_layers}"
            instr = base_instr if c is base else bench(c).total
            peak = c.report.peak_sram_bytes
            tflm_text = f"{tflm:,}" if tflm else "-"
            extra = f"{100 * pp.overhead:.1f}%" if pp else "0.0%"
            print(f"{label:<19} {plan:<26} {peak:>9,} {peak / base.report.peak_sram_bytes:>8.2f} {tflm_text:>10} "
                  f"{extra:>10} {instr:>14,} {instr / base_instr:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
