#!/usr/bin/env python3
"""Per-kernel benchmark (measure, do not assert): the seven layer shapes of the performance table
(../shared/design/performance.md) on qemu-m4, one call each, random data, per-channel requantization:
instructions of the portable kernel, our DSP kernel and, when ``CMSIS_NN_DIR`` points at a CMSIS-NN source
tree, CMSIS-NN's wrapper for the same layer (built from that tree for the same core; never part of this
repository); instr/MAC, the MACs/2 floor (one SMLAD per two MACs, no loads), and whether each output equals
the portable kernel's byte for byte.

Counts are guest instructions under QEMU -icount shift=0 (SysTick, 40 instructions per tick on mps2;
deterministic), not cycles. Shape 1 is run with both 1x1 kernels (the raw one, with the bias folded at
compile time, and the general im2col one); the table takes the faster as "fast".

Usage: python bench/kernels.py [--board qemu-m4]    (CMSIS_NN_DIR=/path/to/CMSIS-NN for the CMSIS column)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "c_kernels"))

import harness
from mcucompile.boards import get_board
from mcucompile.project.firmware import cpu_flags
from mcucompile.targets.firmware import run_qemu

# (number, description, harness.layer_case arguments); the descriptions are performance.md's
SHAPES = [
    (1, "conv 1x1, 24x24x32 -> 24x24x64", [("conv_1x1", (24, 24, 32), (1, 1), 64, (1, 1), (0, 0)),
                                            ("conv", (24, 24, 32), (1, 1), 64, (1, 1), (0, 0))]),
    (2, "conv 3x3 s1 p1, 16x16x16 -> 16x16x32", [("conv", (16, 16, 16), (3, 3), 32, (1, 1), (1, 1))]),
    (3, "conv 3x3 s2 p1, 48x48x3 -> 24x24x8", [("conv", (48, 48, 3), (3, 3), 8, (2, 2), (1, 1))]),
    (4, "depthwise 3x3 s1 p1, 24x24x64", [("dwconv", (24, 24, 64), (3, 3), 64, (1, 1), (1, 1))]),
    (5, "depthwise 3x3 s2 p1, 24x24x64 -> 12x12x64", [("dwconv", (24, 24, 64), (3, 3), 64, (2, 2), (1, 1))]),
    (6, "fully connected 256 -> 64", [("fc", (1, 1, 256), (1, 1), 64, (1, 1), (0, 0))]),
    (7, "conv 10x4 s2, 49x10x1 -> 25x5x64 (KWS first layer)",
     [("conv", (49, 10, 1), (10, 4), 64, (2, 2), (4, 1), (25, 5))]),
]


def macs(case: harness.Case) -> int:
    _, oh, ow, cout = case.out_dims
    if case.kind == harness.KIND["fc"]:
        return case.in_dims[3] * cout
    _, kh, kw, cin = case.filter_dims
    per = kh * kw if case.kind == harness.KIND["dwconv"] else kh * kw * cin
    return oh * ow * cout * per


def cmsis_objects(cmsis: Path, board, build: Path) -> list[Path]:
    """CMSIS-NN's int kernels compiled for the board (every Source/**/*.c but the float ones)."""
    sources = [p for p in sorted((cmsis / "Source").rglob("*.c"))
               if not re.search(r"_(f16|f32|flt)\.c$", p.name)]
    build.mkdir(parents=True, exist_ok=True)
    flags = [*cpu_flags(board), "-O2", "-ffunction-sections", "-fdata-sections", "-DARM_NN_ENABLE_F32=0",
             "-DARM_NN_ENABLE_F16=0", "-I", str(cmsis / "Include")]

    def compile_one(i_src):
        i, src = i_src
        obj = build / f"{i:03d}_{src.stem}.o"
        res = subprocess.run(["arm-none-eabi-gcc", *flags, "-c", str(src), "-o", str(obj)], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"CMSIS-NN build failed on {src}:\n{res.stderr[-2000:]}")
        return obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(compile_one, enumerate(sources)))


def cmsis_version(cmsis: Path) -> str:
    res = subprocess.run(["git", "-C", str(cmsis), "describe", "--tags", "--always", "--dirty"], capture_output=True,
                         text=True, check=False)
    return res.stdout.strip() if res.returncode == 0 else "unknown (not a git checkout)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", default="qemu-m4")
    p.add_argument("--clamp", action="store_true",
                   help="also run each shape with a fused two-sided clamp (a ReLU6-like bound), rows '<n>c'")
    args = p.parse_args()
    board = get_board(args.board)
    cmsis = Path(os.environ["CMSIS_NN_DIR"]) if os.environ.get("CMSIS_NN_DIR") else None
    cases, rows = [], []
    for number, desc, variants in SHAPES:
        for clamp in (False, True) if args.clamp else (False,):
            first = len(cases)
            for v in variants:
                what, hwc, k, cout, stride, pad, *out_hw = v
                case = harness.layer_case(what, hwc, k, cout, stride, pad, seed=number,
                                          out_hw=out_hw[0] if out_hw else None)
                cases.append(replace(case, act=(case.out_off, min(127, case.out_off + 90))) if clamp else case)
            rows.append((f"{number}c" if clamp else str(number), desc + (" +clamp" if clamp else ""),
                         list(range(first, len(cases)))))
    with tempfile.TemporaryDirectory(prefix="mcu_bench_kernels_") as tmp:
        build = Path(tmp)
        src = harness.write_cases(cases, 0, build / "cases.c")
        extra_flags: tuple[str, ...] = ()
        extra_sources: tuple[Path, ...] = ()
        if cmsis is not None:
            print(f"CMSIS-NN: {cmsis} at {cmsis_version(cmsis)}", flush=True)
            extra_flags = ("-DKT_CMSIS", "-I", str(cmsis / "Include"))
            extra_sources = tuple(cmsis_objects(cmsis, board, build / "cmsis"))
        else:
            print("CMSIS-NN: not measured (set CMSIS_NN_DIR to a CMSIS-NN source tree)", flush=True)
        elf = harness.build_firmware(board, [src, harness.HERE / "bench_main.c"], build / "fw", extra_flags,
                                     extra_sources)
        run = run_qemu(elf, board, timeout=600)
    counts: dict[tuple[int, str], tuple[int, bool]] = {}
    for line in run.log.splitlines():
        m = re.match(r"MCU K (\d+) (\w+) (\d+) ([01])", line)
        if m:
            counts[(int(m.group(1)), m.group(2))] = (int(m.group(3)), m.group(4) == "1")
    print(f"board {board.name} ({board.core}), instructions (QEMU -icount shift=0, not cycles)")
    head = (f"{'#':>2} {'layer (NHWC)':<52} {'MACs':>10} {'floor':>9} {'portable (i/MAC)':>20} {'fast (i/MAC)':>18} "
            f"{'CMSIS-NN (i/MAC)':>20} {'fast/CMSIS':>10} {'<=0.8x':>6} {'fast/portable':>13} {'exact':>5}")
    print(head)
    print("-" * len(head))
    for number, desc, idx in rows:
        m = macs(cases[idx[0]])
        port = counts[(idx[0], "portable")][0]
        fast_i = min(idx, key=lambda i: counts[(i, "fast")][0])
        fast, fast_ok = counts[(fast_i, "fast")]
        exact = fast_ok and all(counts[(i, "fast")][1] for i in idx)
        variant = "" if len(idx) == 1 else (" [1x1]" if cases[fast_i].kind == harness.KIND["conv_1x1"] else " [im2col]")
        if (idx[0], "cmsis") in counts:
            cm, cm_ok = counts[(idx[0], "cmsis")]
            cm_col = f"{cm:>11,} ({cm / m:5.2f})"
            ratio = f"{fast / cm:>10.2f}"
            target = f"{'yes' if fast <= 0.8 * cm else 'NO':>6}"
            exact = exact and cm_ok
        else:
            cm_col, ratio, target = f"{'-':>20}", f"{'-':>10}", f"{'-':>6}"
        print(f"{number:>2} {desc + variant:<52} {m:>10,} {m // 2:>9,} {port:>11,} ({port / m:5.2f}) "
              f"{fast:>9,} ({fast / m:5.2f}) {cm_col} {ratio} {target} {fast / port:>13.2f} "
              f"{'yes' if exact else 'NO':>5}")
        if len(idx) > 1:
            for i in idx:
                c, _ = counts[(i, "fast")]
                kind = "1x1 raw, folded bias" if cases[i].kind == harness.KIND["conv_1x1"] else "general im2col"
                print(f"{'':>2}   {kind}: {c:,} ({c / m:.2f} i/MAC)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
