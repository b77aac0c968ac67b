#!/usr/bin/env python3
"""QuantMCU low-bit chain benchmark (measure, do not assert): for a patched stage with VDPC's check (default
rule: percentile 99.9 at the first map) and the low-bit chain at uniform 4 (or 2) bits on every map it may
lower (the checked map stays 8-bit), calibrated on the no-outlier calibration patches with MSE (or min/max)
clipping (optionally with per-channel scales folded into the next weights): stage BitOPs of 8-bit patching against the dispatching loop on the test inputs, the outlier patch
share (calibration, test), output SQNR and top-1 agreement against the 8-bit model on the test inputs, peak
SRAM of the activations (8-bit patching, and with both chains exclusive in the arena).

Models: VWW (MLPerf Tiny int8 .tflite, 4-layer stage, 3x3 grid), ResNet-8 (int8 .tflite, 4-layer stage with
the residual add, 3x3 grid); inputs: seeded crops of scikit-image photos (tools/photo_crops.py; calibration
and test crops from disjoint photo halves; for ResNet-8 these are not CIFAR-10 images).

Usage: python bench/quantmcu_chain.py [--calib 100] [--test 200] [--models vww,resnet8] [--clipping mse,minmax,mse+pc]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from mcucompile.api import CompileOptions, PatchOptions, compile_model, quantize_input
from mcucompile.patch.memory import plan_memory_patched
from mcucompile.quant.simulate import run_int
from mcucompile.quantmcu import VdpcOptions, plan_vdpc, stage_maps
from mcucompile.quantmcu.lowbit import (
    build_lowbit_chain,
    lowbit_schedule,
    stage_bitops_taken,
)
from mcucompile.schedule.schedule import run_schedule_int
from photo_crops import photo_crops

MODELS = Path("/work/shared/models/mlperf_tiny")
#: name -> (model file, input size, input scale of the crops, split, grid)
CASES = {"vww": ("vww_mbv1_025_int8.tflite", (96, 96), 1.0, 4, 3),
         "resnet8": ("resnet8_int8.tflite", (32, 32), 255.0, 4, 3)}


def _dequant(g, name, q):
    t = g.tensors[name].quant
    return (np.asarray(q, np.float64) - t.zp) * t.s


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(np.sum((out - ref) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref**2)) / noise)


def run_case(name: str, n_calib: int, n_test: int, variants: tuple[str, ...]) -> None:
    model, size, scale, split, grid = CASES[name]
    c = compile_model(MODELS / model, CompileOptions(board="host", progress=False,
                                                     patch=PatchOptions(mode="forced", split=split, patches=grid)))
    g, plan = c.graph, c.patch
    calib = quantize_input(c, scale * photo_crops(n_calib, size, "calib"))
    test = quantize_input(c, scale * photo_crops(n_test, size, "test"))
    shape = tuple(g.tensors[g.inputs[0]].shape)
    calib, test = calib.reshape((-1,) + shape), test.reshape((-1,) + shape)
    out = g.outputs[0]
    ref = np.stack([_dequant(g, out, run_int(g, {g.inputs[0]: x})[out]).reshape(-1) for x in test])
    sram8 = plan_memory_patched(g, plan, board=c.target).activations_size
    all_maps = stage_maps(g, plan)
    print(f"\n{name}: stage {plan.stage_len} nodes, {grid}x{grid} grid, maps {len(all_maps) - 2} inside the stage; "
          f"{len(calib)} calib / {len(test)} test crops; peak SRAM 8-bit patching {sram8} B")
    print("| check at | threshold | outlier share calib | lowered maps | bits | clipping | stage BitOPs 8-bit | this plan "
          "| saving | outlier share test | SQNR vs 8-bit (dB) | top-1 agreement | peak SRAM (B) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for location, bits, clipping in [(loc, b, cl) for loc in ("first_map", "input") for b in (4, 2)
                                     for cl in variants]:
            vdpc = plan_vdpc(g, plan, calib, VdpcOptions(location=location))
            maps = [m for m in all_maps if m not in (g.inputs[0], plan.split, vdpc.tensor)]
            lowered = ",".join(str(all_maps.index(m)) for m in maps)
            t0 = time.perf_counter()
            chain = build_lowbit_chain(g, plan, vdpc, {m: bits for m in maps}, calib, clipping.split("+")[0],
                                       per_channel=clipping.endswith("+pc"))
            schedule, arena = lowbit_schedule(chain, vdpc, c.target)
            outs, taken = [], []
            for x in test:
                t: list[int] = []
                outs.append(_dequant(g, out, run_schedule_int(schedule, {g.inputs[0]: x}, t)[out]).reshape(-1))
                taken.append(t)
            outs = np.stack(outs)
            b8, b = stage_bitops_taken(schedule, taken)
            share = float((np.array(taken) == 0).mean())
            agree = float((outs.argmax(1) == ref.argmax(1)).mean())
            pc = f" ({len(chain.channel_scales)} maps per channel, +{chain.flash_bytes} B flash)" if clipping.endswith("+pc") else ""
            print(f"| {location}{pc} | {vdpc.threshold} | {vdpc.outlier_patch_share:.3f} | {lowered} | {bits} | {clipping} | {b8:.4g} | {b:.4g} | {b8 / b:.2f}x | {share:.3f} | {sqnr_db(ref, outs):.1f} "
                  f"| {agree:.3f} | {arena.activations_size} | {time.perf_counter() - t0:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--models", default="vww,resnet8")
    ap.add_argument("--clipping", default="mse,minmax,mse+pc",
                    help="ranges of the low-bit maps: mse, minmax, and +pc for per-channel scales")
    a = ap.parse_args()
    for name in a.models.split(","):
        run_case(name, a.calib, a.test, tuple(a.clipping.split(",")))


if __name__ == "__main__":
    main()
