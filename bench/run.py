#!/usr/bin/env python3
"""Benchmarks (measure, do not assert): per model and emulated board, layer by layer, instructions per inference,
instructions per MAC, peak SRAM (arena) and flash from the linked ELF, next to TFLite Micro's figures
for the same MLPerf Tiny models (from ../shared/models/mlperf_tiny/README.md, CMSIS-NN kernels, M4).

Counts are guest instructions under QEMU -icount shift=0 (deterministic), not cycles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcucompile.api import CompileOptions, PatchOptions, bench, compile_model  # noqa: E402

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"
MODELS = {
    "mnist_cnn": (REPO / "models" / "mnist" / "mnist_cnn.onnx", str(REPO / "models" / "mnist" / "mnist_calib_200.npz")),
    "kws_dscnn": (SHARED / "kws_dscnn_float.onnx", None),
    "resnet8": (SHARED / "resnet8_float.onnx", None),
    "vww_mbv1_025": (SHARED / "vww_mbv1_025_float.onnx", None),
    "ad_autoencoder": (SHARED / "ad_autoencoder_float.onnx", None),
}
# TFLite Micro on QEMU mps2-an386, from shared/models/mlperf_tiny/README.md: (CMSIS-NN instr, reference instr, arena B)
TFLM = {"kws_dscnn": (7_698_196, 198_636_982, 22_820), "resnet8": (29_865_482, 824_063_590, 54_996),
        "vww_mbv1_025": (24_104_069, 552_356_833, 100_708), "ad_autoencoder": (583_530, 1_952_998, 2_580)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--boards", default="qemu-m4,qemu-m7")
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    print(f"{'model':<15} {'board':<9} {'MACs':>11} {'instructions':>14} {'instr/MAC':>9} {'arena B':>9} "
          f"{'ELF flash B':>11} {'ELF SRAM B':>10} {'TFLM arena B':>12} {'TFLM ref instr':>14} {'TFLM CMSIS instr':>16}")
    for name in args.models.split(","):
        path, calib = MODELS[name]
        for board in args.boards.split(","):
            compiled = compile_model(path, CompileOptions(board=board, calib=calib, progress=False, patch=PatchOptions(mode="off")))
            r = bench(compiled)
            macs = sum(x["macs"] for x in r.layers)
            t = TFLM.get(name)
            tflm = (f"{t[2]:>12,} {t[1]:>14,} {t[0]:>16,}" if t and board == "qemu-m4"
                    else f"{'-':>12} {'-':>14} {'-':>16}")
            print(f"{name:<15} {board:<9} {macs:>11,} {r.total:>14,} {r.total / macs:>9.1f} {r.arena_bytes:>9,} "
                  f"{r.flash_bytes:>11,} {r.sram_bytes:>10,} {tflm}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
