#!/usr/bin/env python3
"""Per-kernel benchmark of the MVE (Helium) kernels (measure, do not assert): the seven layer shapes of
../shared/design/performance.md (bench/kernels.py's SHAPES, same random data) on qemu-m55 (mps3-an547), one
call each, per-channel requantization: instructions of the portable kernel, our MVE kernel and, when
``CMSIS_NN_DIR`` points at a CMSIS-NN source tree, CMSIS-NN's wrapper built from it for cortex-m55 with MVE
(never part of this repository; its FC kernel sums computed outside the timed call, as TFLite Micro's Prepare
does); instr/MAC, the MACs/16 floor (one VMLADAVA.S8 per 16 MACs, no loads) and whether each output equals the
portable kernel's byte for byte.

Counts are guest instructions under QEMU -icount shift=0 (SysTick, 31.25 instructions per tick on
mps3-an547; deterministic), not cycles. Shape 1 runs both 1x1 kernels (mcu_conv_1x1_mve_s8 without scratch
and the im2col mcu_conv_mve_s8); the table takes the faster as "MVE".

Usage: python bench/kernels_mve.py    (CMSIS_NN_DIR=/path/to/CMSIS-NN for the CMSIS column)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "c_kernels"))
sys.path.insert(0, str(REPO / "bench"))

import harness
import kernels as dsp_bench
import mve_cases
from mcucompile.boards import get_board
from mcucompile.targets.firmware import run_qemu

MAIN = harness.HERE / "mve_bench_main.c"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", default="qemu-m55", help="an MVE board (default qemu-m55)")
    args = p.parse_args()
    board = get_board(args.board)
    if not board.mve:
        print(f"kernels_mve: {board.name} has no MVE; pick an MVE board such as qemu-m55", file=sys.stderr)
        return 2
    cmsis = Path(os.environ["CMSIS_NN_DIR"]) if os.environ.get("CMSIS_NN_DIR") else None
    cases, rows = [], []
    for number, desc, variants in dsp_bench.SHAPES:
        first = len(cases)
        for v in variants:
            what, hwc, k, cout, stride, pad, *out_hw = v
            cases.append(mve_cases.layer_case(what, hwc, k, cout, stride, pad, seed=number,
                                              out_hw=out_hw[0] if out_hw else None))
        rows.append((str(number), desc, list(range(first, len(cases)))))
    with tempfile.TemporaryDirectory(prefix="mcu_bench_kernels_mve_") as tmp:
        build = Path(tmp)
        src = harness.write_cases(cases, 0, build / "cases.c")
        extra_flags: tuple[str, ...] = ()
        extra_sources: tuple[Path, ...] = ()
        if cmsis is not None:
            print(f"CMSIS-NN: {cmsis} at {dsp_bench.cmsis_version(cmsis)} (built for {board.core}, MVE)", flush=True)
            extra_flags = ("-DKT_CMSIS", "-I", str(cmsis / "Include"))
            extra_sources = tuple(dsp_bench.cmsis_objects(cmsis, board, build / "cmsis"))
        else:
            print("CMSIS-NN: not measured (set CMSIS_NN_DIR to a CMSIS-NN source tree)", flush=True)
        elf = harness.build_firmware(board, [src, MAIN], build / "fw", extra_flags, extra_sources)
        run = run_qemu(elf, board, timeout=600)
    counts: dict[tuple[int, str], tuple[int, bool]] = {}
    for line in run.log.splitlines():
        m = re.match(r"MCU K (\d+) (\w+) (\d+) ([01])", line)
        if m:
            counts[(int(m.group(1)), m.group(2))] = (int(m.group(3)), m.group(4) == "1")
    if not counts:
        print(run.log[-3000:], file=sys.stderr)
        return 1
    print(f"board {board.name} ({board.core}), instructions (QEMU -icount shift=0, not cycles)")
    head = (f"{'#':>2} {'layer (NHWC)':<52} {'MACs':>10} {'floor':>8} {'portable (i/MAC)':>20} {'MVE (i/MAC)':>18} "
            f"{'CMSIS-NN (i/MAC)':>19} {'MVE/CMSIS':>9} {'MVE/portable':>12} {'exact':>5}")
    print(head)
    print("-" * len(head))
    for number, desc, idx in rows:
        m = dsp_bench.macs(cases[idx[0]])
        port = counts[(idx[0], "portable")][0]
        fast_i = min(idx, key=lambda i: counts[(i, "fast")][0])
        fast, _ = counts[(fast_i, "fast")]
        exact = all(counts[(i, "fast")][1] for i in idx)
        variant = "" if len(idx) == 1 else (" [1x1]" if cases[fast_i].kind == harness.KIND["conv_1x1"] else " [im2col]")
        if (idx[0], "cmsis") in counts:
            cm, cm_ok = counts[(idx[0], "cmsis")]
            cm_col, ratio = f"{cm:>10,} ({cm / m:5.3f})", f"{fast / cm:>9.2f}"
            exact = exact and cm_ok
        else:
            cm_col, ratio = f"{'-':>19}", f"{'-':>9}"
        print(f"{number:>2} {desc + variant:<52} {m:>10,} {m // 16:>8,} {port:>11,} ({port / m:5.2f}) "
              f"{fast:>9,} ({fast / m:5.3f}) {cm_col} {ratio} {fast / port:>12.3f} {'yes' if exact else 'NO':>5}")
        if len(idx) > 1:
            for i in idx:
                c, _ = counts[(i, "fast")]
                kind = "mcu_conv_1x1_mve_s8" if cases[i].kind == harness.KIND["conv_1x1"] else "mcu_conv_mve_s8 (im2col)"
                print(f"{'':>2}   {kind}: {c:,} ({c / m:.3f} i/MAC)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
