"""Writing the compiled C library and firmware project (under the output folder rules)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..codegen.generate import c_identifier, environment
from ..errors import UserError
from ..ops import cmsis_nn
from ..ops.base import quantize_values
from ..output import update_output_files, write_output
from ..paths import runtime_dir
from ..project import project_files
from ..quant.simulate import to_physical
from ..report.html import BenchFigures, HtmlSection, carried_page, render_html
from .compile import Compiled


def _runtime_files() -> list[str]:
    rt = runtime_dir()
    return [f"{sub}/{p.name}" for sub in ("include", "src") for p in sorted((rt / sub).iterdir())
            if p.suffix in (".h", ".c")]


def library_source_names(name: str) -> list[str]:
    """The C files (sources and headers) of the library a compile with ``--name name`` writes, relative to
    lib/<name>/. They depend on the name and the mcucompile version only, not on the model, so a build
    system can declare them before the model is compiled (the CMake module's build-time command does)."""
    P = c_identifier(name)
    generated = [f"include/{P}.h", f"src/{P}.c", f"src/{P}_weights.c", f"src/{P}_weights.h", "include/mcunn_config.h"]
    return sorted(set(_runtime_files()) | set(generated))


def library_files(compiled: Compiled) -> dict[str, str]:
    """Every file of the C library folder: generated sources plus the runtime they call, with the
    runtime's build-wide choices (mcunn_config.h) set for this model, and its CMakeLists.txt."""
    rt = runtime_dir()
    files = {rel: (rt / rel).read_text() for rel in _runtime_files()}
    files.update(compiled.sources.files)
    files["include/mcunn_config.h"] = runtime_config(compiled)
    names = library_source_names(compiled.options.name)
    if sorted(files) != names:  # the CMake module declares these names before compiling: they must agree
        raise AssertionError(f"library files {sorted(set(files) ^ set(names))} differ from library_source_names()")
    files["CMakeLists.txt"] = environment().get_template("library_CMakeLists.txt.j2").render(
        P=c_identifier(compiled.options.name), version=__version__, board=compiled.board.name,
        sources=[n for n in names if n.endswith(".c")], definitions=[], cmsis_nn=uses_cmsis_nn(compiled),
        cmsis_nn_version=cmsis_nn.CMSIS_NN_VERSION, cmsis_nn_url=cmsis_nn.CMSIS_NN_URL,
        cmsis_nn_globs=cmsis_nn.SOURCE_GLOBS, cmsis_nn_excluded=cmsis_nn.EXCLUDED_SUFFIXES)
    return files


def runtime_config(compiled: Compiled) -> str:
    """mcunn_config.h for this model: the requantization rounding its integer graph was simulated with."""
    single = compiled.graph.rounding == "single"
    why = ("one rounding, as ONNX QDQ semantics and onnxruntime (TFLITE_SINGLE_ROUNDING)" if single
           else "TFLite's default double rounding, as TFLite Micro and CMSIS-NN")
    return (f"/**\n * @file mcunn_config.h\n * @brief Written by mcucompile for this model: the kernels' build-wide "
            f"choices.\n */\n#ifndef MCUNN_CONFIG_H\n#define MCUNN_CONFIG_H\n\n/** Requantization: {why}. */\n"
            f"#define MCU_SINGLE_ROUNDING {1 if single else 0}\n\n#endif /* MCUNN_CONFIG_H */\n")


def uses_cmsis_nn(compiled: Compiled) -> bool:
    """Whether the generated library calls CMSIS-NN (``--kernels cmsis-nn`` and a layer it runs)."""
    return compiled.schedule is not None and cmsis_nn.uses_cmsis_nn(st.kernel for st in compiled.schedule.steps())


def cmsis_nn_dir() -> Path:
    """The CMSIS-NN checkout a build of a ``--kernels cmsis-nn`` library uses: ``$CMSIS_NN_DIR`` (UserError when
    it is unset or holds no Include/arm_nnfunctions.h)."""
    value = os.environ.get("CMSIS_NN_DIR", "")
    where = f"CMSIS_NN_DIR={value} has no Include/arm_nnfunctions.h" if value else "CMSIS_NN_DIR is not set"
    if not value or not (Path(value) / "Include" / "arm_nnfunctions.h").is_file():
        raise UserError(f"--kernels cmsis-nn needs CMSIS-NN ({where}): set CMSIS_NN_DIR to a CMSIS-NN checkout "
                        f"(git clone {cmsis_nn.CMSIS_NN_URL} -b {cmsis_nn.CMSIS_NN_VERSION})")
    return Path(value).resolve()


def write_library(compiled: Compiled, out_dir: str | Path, inputs_q: np.ndarray | None = None,
                  cmsis_nn_source: str | None = None, debug_dump: bool = False) -> Path:
    """Write OUT/lib/<name>/ (the C library), OUT/report.json, OUT/report.html and, for a real or emulated
    board, the firmware project around them (PlatformIO + Make) with ``inputs_q`` compiled in. A library that calls
    CMSIS-NN gets projects that take CMSIS_NN_DIR (Make) and pin CMSIS-NN in lib_deps (PlatformIO;
    ``cmsis_nn_source`` overrides the pin, e.g. ``symlink:///path/to/CMSIS-NN`` offline). ``debug_dump``: the
    firmware prints every layer's output (``mcucompile debug``).

    All or nothing, and safe for the user's files (see mcucompile.output): OUT must be new, empty or an
    unchanged earlier output of mcucompile, and must not hold the model or its calibration data.
    report.html keeps the results (bench, verify, debug) an earlier command added for the same compile."""

    files = {f"lib/{compiled.options.name}/{rel}": text for rel, text in library_files(compiled).items()}
    if compiled.board.name != "host":
        if inputs_q is None:
            inputs_q = quantize_input(compiled, compiled.calib[:1])
        sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
        files.update(project_files(compiled.board, compiled.options.name, inputs_q, sizes, compiled.options.console,
                                   cmsis_nn=uses_cmsis_nn(compiled), cmsis_nn_source=cmsis_nn_source,
                                   debug_dump=debug_dump))
    files["report.json"] = json.dumps(compiled.report.to_json_dict(), indent=2) + "\n"
    files["report.html"] = render_html(carried_page(compiled.report, _previous_page(Path(out_dir))))
    return write_output(out_dir, files, compiled_inputs(compiled))


def _previous_page(out_dir: Path) -> str | None:
    try:
        return (out_dir / "report.html").read_text(errors="replace")
    except OSError:  # none yet (or unreadable: then nothing is carried over)
        return None


def add_html_results(out_dir: str | Path, compiled: Compiled, bench: BenchFigures | None = None,
                     section: HtmlSection | None = None) -> Path:
    """Add ``bench`` figures or a result ``section`` (verify, debug, ...; it replaces one of its kind) to
    OUT/report.html, which write_library wrote for ``compiled``, keeping the results already there for the
    same compile; the folder's manifest records the new page (see mcucompile.output.update_output_files)."""
    page = carried_page(compiled.report, _previous_page(Path(out_dir)))
    if bench is not None:
        page = page.with_bench(bench)
    if section is not None:
        page = page.with_section(section)
    return update_output_files(out_dir, {"report.html": render_html(page)}, compiled_inputs(compiled))


def compiled_inputs(compiled: Compiled) -> tuple[Path, ...]:
    """The files a compile read (the model, its calibration data): an output folder must not hold them."""
    return tuple(p for p in (compiled.model_path, compiled.options.calib) if p is not None)


def library_dir(out_dir: Path, compiled: Compiled) -> Path:
    return Path(out_dir) / "lib" / compiled.options.name


def host_runner_source(compiled: Compiled) -> str:

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


