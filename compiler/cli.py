"""Command line: argument parsing only; the work is in mcucompile.api.

  mcucompile MODEL --board BOARD -o OUT       compile to a C library + report
  mcucompile boards                           list the known boards
  mcucompile verify MODEL --board qemu-m7     build, run on the board (QEMU / host), compare with the
                                              simulator (must be bit-exact) and onnxruntime
  mcucompile bench MODEL --board qemu-m7      per-layer instructions (emulated) or cycles, ELF flash/SRAM
  mcucompile debug MODEL [--board qemu-m4]    per layer: SQNR of the int8 tensors against float (worst first),
                                              and every layer's device output against the simulator
  mcucompile cmake-dir                        the folder of the CMake module (mcucompile_add_model);
                                              also: mcucompile --cmake-dir
  mcucompile platformio-script                the PlatformIO extra script (custom_mcucompile_model = ...)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import __version__
from .errors import UserError

SUBCOMMANDS = ("compile", "boards", "verify", "bench", "debug", "cmake-dir", "platformio-script")
MAX_INPUT_DIM = 1 << 16  # no microcontroller input has a side this long; larger is a typo, not a model


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are ours: one line, exit 2 (argparse prints the usage block first)."""

    def error(self, message: str):
        raise UserError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text} is too small: give a number of at least 1")
    return v


def _finite_float(minimum: float = 0.0, strict: bool = False):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v) or v < minimum or (strict and v == minimum):
            bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"{text}: give a finite number {bound}")
        return v
    return parse


def _c_name(text: str) -> str:
    import keyword
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", text) or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(f"{text!r}: give a C identifier (letters, digits, _; not starting "
                                         "with a digit; at most 32 characters), e.g. --name kws")
    return text


def _input_shapes(values: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    if not values:
        return None
    out = {}
    for v in values:
        name, _, dims = v.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise UserError(f"--input-shape '{v}' is not NAME=D0,D1,... (e.g. --input-shape input=1,3,96,96)") from None
        if not name:
            raise UserError(f"--input-shape '{v}' names no input; give NAME=D0,D1,... (e.g. input=1,3,96,96)")
        if name in out:
            raise UserError(f"--input-shape {name} is given twice; give each input once")
        if any(d < 1 for d in shape):
            raise UserError(f"--input-shape {v}: every dimension must be at least 1")
        if shape[0] != 1:
            raise UserError(f"--input-shape {v}: the batch dimension must be 1 (the generated code runs one sample "
                            f"per call), e.g. {name}=1,{','.join(map(str, shape[1:]))}")
        if any(d > MAX_INPUT_DIM for d in shape):
            raise UserError(f"--input-shape {v}: a dimension above {MAX_INPUT_DIM:,} cannot fit a microcontroller; "
                            "give the model's real input size")
        out[name] = shape
    return out


def _add_compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the model file (.onnx)")
    p.add_argument("--board", default="nucleo", help="target board (default: nucleo = nucleo-f746zg); see 'mcucompile boards'")
    p.add_argument("--calib", help="calibration inputs: .npy / .npz array [N, ...] in the model's input layout, or a folder of images")
    p.add_argument("--calib-samples", type=_positive_int, default=32,
                   help="synthetic calibration samples when --calib is not given")
    p.add_argument("--name", type=_c_name, default="model", help="C name prefix of the generated library (default: model)")
    p.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="pin a dynamic input shape")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    p.add_argument("--console", choices=("uart", "semihosting"), help="where the firmware prints (default: the "
                   "board's UART on real boards, semihosting on emulated ones)")
    p.add_argument("--rounding", choices=("auto", "double", "single"), default="auto",
                   help="requantization rounding: double (TFLite's default, bit-exact with TFLite Micro), single "
                        "(one rounding, as ONNX QDQ semantics and onnxruntime; TFLITE_SINGLE_ROUNDING). Default auto: "
                        "single for ONNX QDQ models not converted from TFLite, double otherwise")
    p.add_argument("--kernels", choices=("auto", "portable", "cmsis-nn"), default="auto",
                   help="kernel implementations: auto (default: the fastest for the board's core, e.g. the DSP "
                        "extension's SIMD32 kernels on Cortex-M4/M7; the report names each layer's), portable "
                        "(the reference C kernels everywhere) or cmsis-nn (Arm's CMSIS-NN wherever it is bit-exact, "
                        "auto for the rest; building needs CMSIS_NN_DIR, see docs/cmsis-nn.md)")
    c = p.add_argument_group("calibration (float ONNX models; see docs/calibration.md)")
    c.add_argument("--calibration", metavar="METHOD[:P]",
                   help="how activation ranges are chosen: minmax (default), percentile[:99.99], mse, kl")
    c.add_argument("--tensor-calibration", action="append", metavar="NAME=METHOD[:P]",
                   help="one tensor's own method (its ONNX name, as report.json lists it); repeatable")
    c.add_argument("--tensor-range", action="append", metavar="NAME=LO,HI",
                   help="one tensor's explicit real range; repeatable")
    c.add_argument("--quant-config", metavar="FILE", help="a .toml or .json file with calibration, bias_correction "
                   "and per-tensor [tensors.NAME] range or calibration")
    c.add_argument("--bias-correction", action="store_true",
                   help="fold each weighted layer's mean per-channel error on the calibration data into its bias")
    g = p.add_argument_group("patch-based inference (MCUNetV2)")
    g.add_argument("--no-patch", action="store_true", help="run every layer whole (layer by layer)")
    g.add_argument("--patches", type=_positive_int, metavar="N", help="force an N x N patch grid (with --split)")
    g.add_argument("--split", type=_positive_int, metavar="LAYERS",
                   help="force the per-patch stage to the first LAYERS layers")
    g.add_argument("--sram-limit", type=_positive_int, metavar="BYTES",
                   help="SRAM budget below the board's, to leave room for the application")
    g.add_argument("--max-patch-overhead", type=_finite_float(), metavar="FRACTION",
                   help="cap on recomputed MACs, as a fraction of the model's MACs (0.2 = 20%%)")
    g.add_argument("--optimize", choices=("speed", "memory"), default="speed",
                   help="speed (default): the fastest plan that fits the SRAM budget (layer by layer when it fits); "
                        "memory: the lowest peak SRAM, whatever it costs in recomputation")
    g.add_argument("--input-by-patch", action="store_true", help="the application fills each input patch through a callback "
                   "(model_fill_input_patch); the whole input never sits in SRAM")
    _add_quantmcu_args(p)


#: the method's own flags (dest names): given without --quantmcu they are refused
QUANTMCU_FLAGS = {"qm_bits": "--qm-bits", "qm_lambda": "--qm-lambda", "qm_bitops_target": "--qm-bitops-target",
                  "qm_guard": "--qm-guard", "qm_floor": "--qm-floor", "qm_holdout": "--qm-holdout",
                  "qm_clipping": "--qm-clipping", "qm_per_channel": "--qm-per-channel / --qm-no-per-channel",
                  "qm_sub_patches": "--qm-sub-patches", "qm_outlier_rule": "--qm-outlier-rule",
                  "qm_outlier_param": "--qm-outlier-param", "qm_check_at": "--qm-check-at",
                  "qm_max_outlier_share": "--qm-max-outlier-share"}


def _bit_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of bitwidths, e.g. 8,4,2") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _add_quantmcu_args(p: argparse.ArgumentParser) -> None:
    """QuantMCU's flags. Every default is None here (so a flag given without --quantmcu is seen); the
    defaults the help names are QuantmcuOptions' and VdpcOptions', which also check the ranges."""
    from .quantmcu.options import DEFAULT_FLOOR, QuantmcuOptions
    from .quantmcu.vdpc import DEFAULT_PARAMETER, VdpcOptions

    d, v = QuantmcuOptions(), VdpcOptions()
    q = p.add_argument_group("QuantMCU (value-driven mixed precision in the per-patch stage; see docs/quantmcu.md)")
    q.add_argument("--quantmcu", action="store_true",
                   help="run the per-patch stage's patches without outliers on a low-bit chain (4/2-bit feature maps "
                        "chosen by VDQS with a quality guard); patches with outliers, found on the device by a cheap "
                        "check, on the 8-bit chain. Needs a patched plan (--split/--patches, or a --sram-limit the "
                        "search patches for)")
    q.add_argument("--qm-bits", type=_bit_list, metavar="B,B,...",
                   help=f"bitwidths a feature map may take, 8 among them (default {','.join(map(str, d.bits))})")
    q.add_argument("--qm-lambda", type=_number, metavar="L",
                   help=f"VDQS score weight in [0, 1]: lambda x entropy lost against (1 - lambda) x BitOPs saved "
                        f"(default {d.lam:g})")
    q.add_argument("--qm-bitops-target", type=_number, metavar="FRACTION",
                   help="stop lowering once stage BitOPs are at most this fraction of 8-bit patching's, in (0, 1] "
                        "(default: go on while the guard holds)")
    q.add_argument("--qm-guard", metavar="sqnr|agreement|off",
                   help=f"the guard's output-quality metric against the 8-bit model on held-back calibration samples "
                        f"(default {d.guard}); off: the entropy score alone")
    q.add_argument("--qm-floor", type=_number, metavar="X",
                   help=f"the guard's floor (default {DEFAULT_FLOOR['sqnr']:g} dB for sqnr, "
                        f"{DEFAULT_FLOOR['agreement']:g} for agreement)")
    q.add_argument("--qm-holdout", type=_number, metavar="FRACTION",
                   help=f"share of the calibration samples held back for the guard, in (0, 1) (default {d.holdout:g})")
    q.add_argument("--qm-clipping", metavar="mse|minmax",
                   help=f"low-bit ranges by quantization error or min/max (default {d.clipping})")
    pc = q.add_mutually_exclusive_group()
    pc.add_argument("--qm-per-channel", dest="qm_per_channel", action="store_const", const=True,
                    help="per-channel scales where a map allows them, folded into the next layer's weights "
                         f"(default: {'on' if d.per_channel else 'off'})")
    pc.add_argument("--qm-no-per-channel", dest="qm_per_channel", action="store_const", const=False,
                    help="one scale per low-bit map")
    q.add_argument("--qm-sub-patches", type=_whole, metavar="S",
                   help="an outlier patch runs its 8-bit chain as S x S sub-patches, 1 to 4 (default: searched)")
    q.add_argument("--qm-outlier-rule", metavar="percentile|sigma",
                   help=f"how the outlier threshold is set from calibration (default {v.rule})")
    q.add_argument("--qm-outlier-param", type=_number, metavar="P",
                   help=f"the rule's parameter (default {DEFAULT_PARAMETER['percentile']:g} for percentile, "
                        f"k = {DEFAULT_PARAMETER['sigma']:g} for sigma: mean + k std)")
    q.add_argument("--qm-max-outlier-share", type=_number, metavar="F",
                   help="cap on the share of calibration patches the outlier threshold may flag: a threshold that "
                        "flags more is raised to the value that flags this share, in (0, 1] (default 0.5 with the "
                        "rule's default parameter, none with --qm-outlier-param; 1: no cap)")
    q.add_argument("--qm-check-at", metavar="first_map|input|auto",
                   help=f"where the on-device outlier check looks (default {v.location}): the first map the stage "
                        "makes, the patch's input, or auto: the place that leaves the bitwidth search more room (the "
                        "lower bound on the stage BitOPs)")


def _quantmcu_options(args):
    """QuantmcuOptions from the flags, or None without --quantmcu (then a method flag is an error)."""
    from .quantmcu.options import QuantmcuOptions
    from .quantmcu.vdpc import LOCATIONS, RULES, VdpcOptions

    given = [flag for dest, flag in QUANTMCU_FLAGS.items() if getattr(args, dest) is not None]
    if not args.quantmcu:
        if given:
            raise UserError(f"{given[0]} is an option of QuantMCU, which is off; fix: add --quantmcu")
        return None
    d = QuantmcuOptions()
    vd = VdpcOptions()
    rule = args.qm_outlier_rule if args.qm_outlier_rule is not None else vd.rule
    location = args.qm_check_at if args.qm_check_at is not None else vd.location
    try:
        vdpc = VdpcOptions(rule, args.qm_outlier_param, location, max_outlier_share=args.qm_max_outlier_share)
    except UserError as e:  # VdpcOptions' message names the value; the user gave it by this flag
        flag = ("--qm-outlier-rule" if rule not in RULES else "--qm-check-at" if location not in LOCATIONS
                else "--qm-max-outlier-share" if "share cap" in str(e) else "--qm-outlier-param")
        raise UserError(f"{flag}: {e}") from None

    if args.qm_floor is not None and args.qm_guard == "off":
        raise UserError("--qm-floor sets the guard's floor and --qm-guard off turns the guard off; fix: drop one of them")

    def pick(value, default):
        return default if value is None else value

    return QuantmcuOptions(vdpc=vdpc, bits=pick(args.qm_bits, d.bits), lam=pick(args.qm_lambda, d.lam),
                           bitops_target=args.qm_bitops_target, guard=pick(args.qm_guard, d.guard),
                           floor=args.qm_floor, holdout=pick(args.qm_holdout, d.holdout),
                           clipping=pick(args.qm_clipping, d.clipping), per_channel=pick(args.qm_per_channel, d.per_channel),
                           sub_patches=args.qm_sub_patches)


def _options(args):
    from .api import CompileOptions, PatchOptions
    from .quant.methods import calibration_options

    if (args.patches is None) != (args.split is None):
        raise UserError("--patches and --split go together (force a plan), e.g. --split 4 --patches 3")
    if args.no_patch and args.patches is not None:
        raise UserError("--no-patch and --patches/--split contradict each other")
    if args.patches is not None and not 1 <= args.patches <= 16:
        raise UserError(f"--patches {args.patches}: give a grid size from 1 to 16")
    mode = "off" if args.no_patch else ("forced" if args.patches is not None else "auto")
    patch = PatchOptions(mode, args.split, args.patches, args.max_patch_overhead, args.input_by_patch, args.optimize)
    quantmcu = _quantmcu_options(args)
    # only a QuantMCU compile names the field, so the options of every other compile stay as they were
    extra = {"quantmcu": quantmcu} if quantmcu is not None else {}
    return CompileOptions(**extra,
        board=args.board, calib=args.calib, calib_samples=args.calib_samples, name=args.name,
        input_shapes=_input_shapes(args.input_shape), progress=not args.quiet, patch=patch,
        sram_limit=args.sram_limit, console=args.console, rounding=args.rounding, kernels=args.kernels,
        calibration=calibration_options(args.calibration, args.tensor_range, args.tensor_calibration,
                                        args.quant_config, args.bias_correction),
    )


def cmd_compile(argv: list[str]) -> int:
    p = ArgumentParser(prog="mcucompile", description="Compile a model into an int8 C library for a microcontroller.")
    _add_compile_args(p)
    p.add_argument("-o", "--output", default="mcucompile_out", help="output folder (default: mcucompile_out)")
    p.add_argument("--dump-ir", action="store_true", help="print the quantized IR")
    p.add_argument("--plot", metavar="PNG", help="draw the memory profile per layer, patched vs layer by layer")
    args = p.parse_args(argv)
    from .api import compile_model, write_library
    from .output import check_output_folder
    from .report import format_summary

    options = _options(args)
    check_output_folder(args.output, _inputs(args))  # before the work, so a refusal costs nothing
    if args.plot:
        _check_plot_path(args.plot, _inputs(args))
    compiled = compile_model(args.model, options)
    _print_warnings(compiled.warnings)
    out = write_library(compiled, args.output)
    if args.plot:
        from .report.plot import plot_memory

        plot_memory(compiled.report, args.plot)
    if args.dump_ir:
        print(compiled.graph.to_text())
    if not args.quiet:
        print(format_summary(compiled.report))
    extra = "" if compiled.board.name == "host" else ", the firmware project (platformio.ini, Makefile, CMakeLists.txt, src/)"
    print(f"wrote {out}/lib/{compiled.options.name}/ (C library){extra}, {out}/report.json and {out}/report.html")
    return 0


def cmd_boards(argv: list[str]) -> int:
    ArgumentParser(prog="mcucompile boards", description="List the known boards.").parse_args(argv)
    from .boards import all_boards

    print(f"{'board':<15} {'core':<13} {'clock':>8} {'flash':>9} {'SRAM':>9}  {'emulated by':<12} aliases")
    for b in all_boards().values():
        print(f"{b.name:<15} {b.core:<13} {b.clock_hz // 1_000_000:>5}MHz {b.flash_bytes // 1024:>6} KB {b.sram_bytes // 1024:>6} KB  "
              f"{(b.qemu_machine or '-'):<12} {', '.join(b.aliases)}")
    print(f"{'host':<15} {'(this PC)':<13} {'':>8} {'':>9} {'':>9}  {'-':<12} gcc build for verification")
    return 0


def cmd_debug(argv: list[str]) -> int:
    p = ArgumentParser(prog="mcucompile debug", description="Layer by layer: the int8 model against its float reference "
                       "over the test inputs (worst layer first), and with an emulated --board every layer's output on "
                       "the device against the simulator.")
    _add_compile_args(p)
    p.set_defaults(board="host")
    _add_run_args(p, "keep the (debug) project here and add the results to its report.html", test_data=True)
    args = p.parse_args(argv)
    from .api import compile_model, write_library
    from .api.debug import debug_model, debug_section
    from .api.library import add_html_results
    from .output import check_output_folder

    options = _options(args)
    if args.output:
        check_output_folder(args.output, _inputs(args))
    compiled = compile_model(args.model, options)
    _print_warnings(compiled.warnings)
    x, _ = _test_inputs(args, compiled)
    res = debug_model(compiled, x, out_dir=args.output, timeout=args.timeout)
    if args.output:
        if compiled.board.name == "host":
            write_library(compiled, args.output)
        add_html_results(args.output, compiled, section=debug_section(res))
    print(json.dumps(res.to_json(), indent=2) if args.json else res.format())
    return 0


def cmd_cmake_dir(argv: list[str]) -> int:
    p = ArgumentParser(prog="mcucompile cmake-dir", description="Print the folder of mcucompile's CMake module: "
                       "find_package(mcucompile) with -Dmcucompile_DIR=<it>, then mcucompile_add_model(...).")
    p.add_argument("--sources", metavar="NAME", type=_c_name,
                   help="instead, print the library's C files for --name NAME (';'-separated, for the CMake module)")
    p.add_argument("--cmsis-nn-sources", metavar="DIR",
                   help="instead, print the CMSIS-NN sources a --kernels cmsis-nn library builds from the checkout DIR")
    args = p.parse_args(argv)
    from .paths import integration_dir

    if args.sources:
        from .api.library import library_source_names

        print(";".join(library_source_names(args.sources)))
    elif args.cmsis_nn_sources:
        from .ops import cmsis_nn

        root = Path(args.cmsis_nn_sources)
        if not (root / "Include" / "arm_nnfunctions.h").is_file():
            raise UserError(f"{root} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h): point CMSIS_NN_DIR at "
                            f"one (git clone {cmsis_nn.CMSIS_NN_URL} -b {cmsis_nn.CMSIS_NN_VERSION})")
        print(";".join(str(p) for p in cmsis_nn.library_sources(root.resolve())))
    else:
        print(integration_dir())
    return 0


def cmd_platformio_script(argv: list[str]) -> int:
    ArgumentParser(prog="mcucompile platformio-script", description="Print the path of mcucompile's PlatformIO "
                   "extra script: extra_scripts = pre:<it> with custom_mcucompile_model = model.onnx in "
                   "platformio.ini compiles the model in every 'pio run' where it changed.").parse_args(argv)
    from .paths import integration_dir

    print(integration_dir() / "mcucompile_platformio.py")
    return 0


def _add_run_args(p: argparse.ArgumentParser, output_help: str, test_data: bool,
                  samples_help: str | None = None) -> None:
    """The options of the commands that run the model (verify, debug, bench): its test inputs, the output.
    ``samples_help``: -n has no fixed default (the command chooses), and this says how."""
    if test_data:
        p.add_argument("--data", help="test inputs: .npz with x (and optional labels y), or .npy; default: the "
                       "calibration inputs")
        p.add_argument("--scale", type=_finite_float(strict=True), default=1.0,
                       help="multiply test inputs by this (e.g. 1/255 for uint8 images)")
        p.add_argument("-n", "--samples", type=_positive_int, default=None if samples_help else 20,
                       help=samples_help or "number of test inputs (default 20)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-o", "--output", help=output_help)
    p.add_argument("--timeout", type=_finite_float(strict=True), default=600.0,
                   help="seconds before a run on the board counts as hung")


def _test_inputs(args, compiled):
    """--data (scaled, the first -n) or else the calibration inputs; and their labels when --data has them."""
    from .api import logical_input_shape

    x, y = _load_test_data(args.data, logical_input_shape(compiled.float_graph))
    if x is None:
        x = compiled.calib
    x = (x.astype("float32") * args.scale)[: args.samples]
    return x, (y[: args.samples] if y is not None else None)


def _load_test_data(path: str | None, input_shape: tuple[int, ...]):
    """Test inputs [N, ...] (logical layout) and optional labels from --data."""
    from .datafile import as_samples, read_arrays

    if path is None:
        return None, None
    x, y = read_arrays(path, "test data")
    return as_samples(x, input_shape, "test data", path), y


def _check_plot_path(path: str, inputs: tuple[str, ...]) -> None:
    """--plot writes one PNG: never over an input, a folder, or a file that is not a PNG."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise UserError(f"--plot {path}: give a .png file name, e.g. --plot memory.png")
    if any(p.exists() and Path(i).exists() and p.samefile(i) for i in inputs):
        raise UserError(f"--plot {path} is one of the inputs; give a new .png file name")
    if p.is_dir():
        raise UserError(f"--plot {path} is a folder; give a .png file name")
    if p.exists():
        with open(p, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                raise UserError(f"--plot {path} exists and is not a PNG image; give a new .png file name")


def _print_warnings(notes) -> None:
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)


def _inputs(args) -> tuple[str, ...]:
    """The files a command reads: an output folder must not hold them."""
    return tuple(p for p in (args.model, args.calib, getattr(args, "data", None), getattr(args, "quant_config", None))
                 if p)


def cmd_verify(argv: list[str]) -> int:
    p = ArgumentParser(prog="mcucompile verify", description="Compile, build, run and compare with the references.")
    _add_compile_args(p)
    p.set_defaults(board="host")
    _add_run_args(p, "keep the firmware project here (default: a temporary folder)", test_data=True)
    p.add_argument("--port", help="a real board's serial port (e.g. /dev/ttyACM0, or a pyserial URL): flash it with "
                   "PlatformIO, read the results over UART")
    p.add_argument("--no-upload", action="store_true", help="with --port: the board is flashed already; reset it")
    p.add_argument("--reference", action="append", metavar="NAME",
                   help="compare with this reference only (repeat for several): onnxruntime (float ONNX), "
                        "onnxruntime-qdq (QDQ ONNX), tflite-micro, litert (.tflite); 'none' for none. Default: "
                        "all that apply; one that cannot run the model is reported and the others still run")
    args = p.parse_args(argv)
    from .api import compile_model, verify_board, verify_host
    from .output import check_output_folder

    options = _options(args)
    if args.no_upload and not args.port:
        raise UserError("--no-upload goes with --port (a real board flashed already)")
    if args.output:
        check_output_folder(args.output, _inputs(args))
    compiled = compile_model(args.model, options)
    _print_warnings(compiled.warnings)
    x, y = _test_inputs(args, compiled)
    if args.data is None and compiled.quantmcu is not None:
        # QuantMCU calibrated its low-bit chain and guarded its bits on these very inputs
        _print_warnings(["verify runs on the calibration inputs, which QuantMCU calibrated and guarded its bits on: "
                         "its quality against the 8-bit model is optimistic there; give --data with inputs kept apart"])
    refs = tuple(args.reference) if args.reference else None
    if compiled.board.name == "host":
        if args.port:
            raise UserError("--port is for a real board: give its --board (e.g. --board nucleo-f746zg)")
        res = verify_host(compiled, x, y, out_dir=args.output, references=refs)
    else:
        res = verify_board(compiled, x, y, out_dir=args.output, timeout=args.timeout, port=args.port,
                           upload=not args.no_upload, references=refs)
    _print_warnings(res.warnings)
    if args.json:
        import dataclasses

        print(json.dumps(dataclasses.asdict(res), indent=2))
    else:
        print(res.format())
    return 0 if res.passed else 1


def cmd_bench(argv: list[str]) -> int:
    from .api.bench import DISPATCH_INPUTS

    p = ArgumentParser(prog="mcucompile bench", description="Per-layer latency and memory on a board.")
    _add_compile_args(p)
    p.set_defaults(board="qemu-m7")
    _add_run_args(p, "keep the firmware project here (default: a temporary folder)", test_data=True,
                  samples_help="inputs to run: the per-layer figures are the first's; default 1, or "
                  f"{DISPATCH_INPUTS} when a run-time check picks each patch's chain (--quantmcu), since the "
                  "instructions then depend on the input")
    args = p.parse_args(argv)
    from .api import bench, compile_model, logical_input_shape
    from .output import check_output_folder

    options = _options(args)
    if options.board == "host":
        raise UserError("bench needs an emulated or real board with an instruction or cycle counter; 'host' (this PC) "
                        "has none: use --board qemu-m4, qemu-m7 or qemu-m55")
    if args.output:
        check_output_folder(args.output, _inputs(args))
    compiled = compile_model(args.model, options)
    _print_warnings(compiled.warnings)
    x = None
    if args.data is not None:
        x, _ = _load_test_data(args.data, logical_input_shape(compiled.float_graph))
        x = x.astype("float32") * args.scale
    res = bench(compiled, out_dir=args.output, timeout=args.timeout, samples=x, count=args.samples)
    print(json.dumps(res.to_json(), indent=2) if args.json else res.format())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        print(f"mcucompile {__version__}")
        return 0
    if argv and argv[0] == "--cmake-dir":
        argv[0] = "cmake-dir"
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nRun 'mcucompile MODEL --help' or 'mcucompile verify --help' for options.")
        return 0
    command = argv[0] if argv[0] in SUBCOMMANDS else "compile"
    rest = argv[1:] if argv[0] in SUBCOMMANDS else argv
    handler = {"compile": cmd_compile, "boards": cmd_boards, "verify": cmd_verify, "bench": cmd_bench,
               "debug": cmd_debug, "cmake-dir": cmd_cmake_dir, "platformio-script": cmd_platformio_script}[command]
    try:
        return handler(rest)
    except UserError as e:
        print(f"mcucompile: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcucompile: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as e:  # noqa: BLE001 - not a user error: a bug, reported as one with its traceback kept
        log = _write_crash_log(argv)
        print(f"mcucompile: internal error: {type(e).__name__}: {_one_line(str(e))[:300]} (this is a bug in "
              f"mcucompile {__version__}; please report it with the traceback in {log})", file=sys.stderr)
        return 3


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _write_crash_log(argv: list[str]) -> str:
    """The traceback of an internal error, in a log file the one-line message names."""
    fd, path = tempfile.mkstemp(prefix=f"mcucompile-crash-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"mcucompile {__version__}\nargv: {argv}\n\n{traceback.format_exc()}")
    return path


if __name__ == "__main__":
    sys.exit(main())
