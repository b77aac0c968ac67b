"""Command line: argument parsing only; the work is in mcucompile.api.

  mcucompile MODEL --board BOARD -o OUT       compile to a C library + report
  mcucompile boards                           list the known boards
  mcucompile verify MODEL --board qemu-m7     build, run on the board (QEMU / host), compare with the
                                              simulator (must be bit-exact) and onnxruntime
  mcucompile bench MODEL --board qemu-m7      per-layer instructions (emulated) or cycles, ELF flash/SRAM
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import UserError

SUBCOMMANDS = ("compile", "boards", "verify", "bench")


def _input_shapes(values: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    if not values:
        return None
    out = {}
    for v in values:
        name, _, dims = v.rpartition("=")
        try:
            out[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise UserError(f"--input-shape '{v}' is not NAME=D0,D1,...") from None
    return out


def _add_compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the model file (.onnx)")
    p.add_argument("--board", default="nucleo", help="target board (default: nucleo = nucleo-f746zg); see 'mcucompile boards'")
    p.add_argument("--calib", help="calibration inputs: .npy / .npz array [N, ...] in the model's input layout, or a folder of images")
    p.add_argument("--calib-samples", type=int, default=32, help="synthetic calibration samples when --calib is not given")
    p.add_argument("--name", default="model", help="C name prefix of the generated library (default: model)")
    p.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="pin a dynamic input shape")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    p.add_argument("--console", choices=("uart", "semihosting"), help="where the firmware prints (default: the "
                   "board's UART on real boards, semihosting on emulated ones)")
    g = p.add_argument_group("patch-based inference (MCUNetV2)")
    g.add_argument("--no-patch", action="store_true", help="run every layer whole (layer by layer)")
    g.add_argument("--patches", type=int, metavar="N", help="force an N x N patch grid (with --split)")
    g.add_argument("--split", type=int, metavar="LAYERS", help="force the per-patch stage to the first LAYERS layers")
    g.add_argument("--sram-limit", type=int, metavar="BYTES", help="SRAM budget below the board's, to leave room for the application")
    g.add_argument("--max-patch-overhead", type=float, metavar="FRACTION", help="cap on recomputed MACs, as a fraction of the model's MACs (0.2 = 20%%)")
    g.add_argument("--input-by-patch", action="store_true", help="the application fills each input patch through a callback "
                   "(model_fill_input_patch); the whole input never sits in SRAM")


def _options(args):
    from .api import CompileOptions

    if (args.patches is None) != (args.split is None):
        raise UserError("--patches and --split go together (force a plan), e.g. --split 4 --patches 3")
    if args.no_patch and args.patches is not None:
        raise UserError("--no-patch and --patches/--split contradict each other")
    if args.patches is not None and not 1 <= args.patches <= 16:
        raise UserError(f"--patches {args.patches}: give a grid size from 1 to 16")
    mode = "off" if args.no_patch else ("forced" if args.patches is not None else "auto")
    return CompileOptions(
        board=args.board, calib=args.calib, calib_samples=args.calib_samples, name=args.name,
        input_shapes=_input_shapes(args.input_shape), progress=not args.quiet, patch=mode, split=args.split,
        patches=args.patches, sram_limit=args.sram_limit, max_patch_overhead=args.max_patch_overhead,
        input_by_patch=args.input_by_patch, console=args.console,
    )


def cmd_compile(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mcucompile", description="Compile a model into an int8 C library for a microcontroller.")
    _add_compile_args(p)
    p.add_argument("-o", "--output", default="mcucompile_out", help="output folder (default: mcucompile_out)")
    p.add_argument("--dump-ir", action="store_true", help="print the quantized IR")
    p.add_argument("--plot", metavar="PNG", help="draw the memory profile per layer, patched vs layer by layer")
    args = p.parse_args(argv)
    from .api import compile_model, write_library
    from .report import format_summary

    compiled = compile_model(args.model, _options(args))
    for note in compiled.warnings:
        print(f"warning: {note}", file=sys.stderr)
    out = write_library(compiled, args.output)
    if args.plot:
        from .report.plot import plot_memory

        plot_memory(compiled.report, args.plot)
    if args.dump_ir:
        print(compiled.graph.to_text())
    if not args.quiet:
        print(format_summary(compiled.report))
    extra = "" if compiled.board.name == "host" else ", the firmware project (platformio.ini, Makefile, src/)"
    print(f"wrote {out}/lib/{compiled.options.name}/ (C library){extra} and {out}/report.json")
    return 0


def cmd_boards(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="mcucompile boards", description="List the known boards.").parse_args(argv)
    from .boards import all_boards

    print(f"{'board':<15} {'core':<11} {'clock':>8} {'flash':>9} {'SRAM':>9}  {'emulated by':<12} aliases")
    for b in all_boards().values():
        print(f"{b.name:<15} {b.core:<11} {b.clock_hz // 1_000_000:>5}MHz {b.flash_bytes // 1024:>6} KB {b.sram_bytes // 1024:>6} KB  "
              f"{(b.qemu_machine or '-'):<12} {', '.join(b.aliases)}")
    print(f"{'host':<15} {'(this PC)':<11} {'':>8} {'':>9} {'':>9}  {'-':<12} gcc build for verification")
    return 0


def _load_test_data(path: str | None):
    import numpy as np

    if path is None:
        return None, None
    p = Path(path)
    if not p.exists():
        raise UserError(f"test data not found: {p}")
    try:
        if p.suffix == ".npz":
            with np.load(p) as z:
                x = z["x"] if "x" in z.files else z[z.files[0]]
                y = z["y"] if "y" in z.files else None
        else:
            x, y = np.load(p), None
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot read test data {p} ({e})") from None
    return x, y


def cmd_verify(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mcucompile verify", description="Compile, build, run and compare with the references.")
    _add_compile_args(p)
    p.set_defaults(board="host")
    p.add_argument("--data", help="test inputs: .npz with x (and optional labels y), or .npy; default: the calibration inputs")
    p.add_argument("--scale", type=float, default=1.0, help="multiply test inputs by this (e.g. 1/255 for uint8 images)")
    p.add_argument("-n", "--samples", type=int, default=20, help="number of test inputs to run (default 20)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-o", "--output", help="keep the firmware project here (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a run on the board counts as hung")
    p.add_argument("--port", help="a real board's serial port (e.g. /dev/ttyACM0, or a pyserial URL): flash it with "
                   "PlatformIO, read the results over UART")
    p.add_argument("--no-upload", action="store_true", help="with --port: the board is flashed already; reset it")
    args = p.parse_args(argv)
    from .api import compile_model, verify_board, verify_host

    compiled = compile_model(args.model, _options(args))
    x, y = _load_test_data(args.data)
    if x is None:
        x = compiled.calib
    x = (x.astype("float32") * args.scale)[: args.samples]
    y = y[: args.samples] if y is not None else None
    if compiled.board.name == "host":
        res = verify_host(compiled, x, y)
    else:
        res = verify_board(compiled, x, y, out_dir=args.output, timeout=args.timeout, port=args.port,
                           upload=not args.no_upload)
    if args.json:
        import dataclasses

        print(json.dumps(dataclasses.asdict(res), indent=2))
    else:
        print(res.format())
    return 0 if res.passed else 1


def cmd_bench(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mcucompile bench", description="Per-layer latency and memory on a board.")
    _add_compile_args(p)
    p.set_defaults(board="qemu-m7")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-o", "--output", help="keep the firmware project here (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a run counts as hung")
    args = p.parse_args(argv)
    from .api import bench, compile_model

    compiled = compile_model(args.model, _options(args))
    res = bench(compiled, out_dir=args.output, timeout=args.timeout)
    print(json.dumps(res.to_json(), indent=2) if args.json else res.format())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        print(f"mcucompile {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nRun 'mcucompile MODEL --help' or 'mcucompile verify --help' for options.")
        return 0
    command = argv[0] if argv[0] in SUBCOMMANDS else "compile"
    rest = argv[1:] if argv[0] in SUBCOMMANDS else argv
    handler = {"compile": cmd_compile, "boards": cmd_boards, "verify": cmd_verify, "bench": cmd_bench}[command]
    try:
        return handler(rest)
    except UserError as e:
        print(f"mcucompile: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcucompile: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
