"""The model compiled inside the user's firmware build: CMake (mcucompile_add_model, the emitted CMakeLists.txt)
and PlatformIO (custom_mcucompile_model with the shipped extra script), built with the real tools, run in
QEMU, outputs compared byte for byte with the simulator; recompiles exactly when an input's content changes.

The application is a small main.c that fills the input with a fixed pseudo-random pattern, so the same
firmware runs any one-input model and a replaced model needs no other change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
import onnx
from onnx import numpy_helper

from mcucompile.api import CompileOptions, PatchOptions, compile_model, write_library
from mcucompile.api.verify import simulate
from mcucompile.boards import get_board
from mcucompile.targets.firmware import run_qemu

MNIST = REPO / "models" / "mnist"
KWS = SHARED_MODELS / "kws_dscnn_float.onnx"
BOARD = "qemu-m7"
MCUCOMPILE = Path(sys.executable).with_name("mcucompile")

MAIN_C = r"""
/* A small application: fills the model's input with a fixed pattern, runs it, prints the output bytes. */
#include <stdint.h>

#include "board_port.h"
#include "model.h"

static char line[1024];

int main(void)
{
    board_init();
    int8_t *in = model_input(0);
    uint32_t x = 12345u;
    for (int32_t i = 0; i < MODEL_INPUT_0_SIZE; i++)
    {
        x = x * 1103515245u + 12345u;
        in[i] = (int8_t)(x >> 24);
    }
    const mcu_status status = model_invoke(0);
    char *p = line;
    for (const char *h = "MCU OUT 0 "; *h; h++)
    {
        *p++ = *h;
    }
    const int8_t *out = model_output(0);
    for (int32_t i = 0; i < MODEL_OUTPUT_0_SIZE && p < line + sizeof(line) - 4; i++)
    {
        const uint8_t b = (uint8_t)out[i];
        *p++ = "0123456789abcdef"[b >> 4];
        *p++ = "0123456789abcdef"[b & 0xFu];
    }
    *p++ = '\n';
    *p = '\0';
    board_print(line);
    board_print(status == MCU_OK ? "MCU END 0\n" : "MCU END 1\n");
    board_exit(status == MCU_OK ? 0 : 1);
}
"""


def pattern(size: int) -> np.ndarray:
    """The bytes main.c writes into the input."""
    out, x = np.empty(size, np.int8), 12345
    for i in range(size):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = np.int8(np.uint8(x >> 24).view(np.int8))
    return out


def expected_output(model: Path, calib: Path | None) -> bytes:
    """What the simulator computes for main.c's input, compiled as the builds compile it (--no-patch)."""
    compiled = compile_model(model, CompileOptions(board=BOARD, calib=str(calib) if calib else None, progress=False,
                                                   patch=PatchOptions(mode="off")))
    g = compiled.graph
    x = pattern(g.tensors[g.inputs[0]].size).reshape(g.tensors[g.inputs[0]].shape)
    return simulate(compiled, x[None])[0][0].astype(np.int8).tobytes()


def other_mnist(path: Path) -> None:
    """A different model file with MNIST's input: the same network with its first weights scaled."""
    m = onnx.load(str(MNIST / "mnist_cnn.onnx"))
    init = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    w = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array((w * 0.5).astype(w.dtype), init.name))
    onnx.save(m, str(path))


def run_elf(elf: Path) -> bytes:
    run = run_qemu(elf, get_board(BOARD), timeout=120)
    assert run.status == 0
    return run.outputs[0]


@pytest.fixture(scope="module")
def board_support(tmp_path_factory) -> Path:
    """startup.c, board_port.[ch], the linker script and the CMake toolchain file of an emitted qemu-m7 project."""
    compiled = compile_model(MNIST / "mnist_cnn.onnx", CompileOptions(board=BOARD, calib=str(MNIST / "mnist_calib_200.npz"),
                                                                      progress=False))
    return write_library(compiled, tmp_path_factory.mktemp("support") / "proj")


def make_app(root: Path, support: Path) -> Path:
    app = root / "app"
    (app / "src").mkdir(parents=True)
    for name in ("startup.c", "board_port.c", "board_port.h"):
        shutil.copy(support / "src" / name, app / "src" / name)
    shutil.copy(support / f"{BOARD}.ld", app / f"{BOARD}.ld")
    shutil.copytree(support / "cmake", app / "cmake")
    (app / "src" / "main.c").write_text(MAIN_C)
    shutil.copy(MNIST / "mnist_cnn.onnx", app / "model.onnx")
    shutil.copy(MNIST / "mnist_calib_200.npz", app / "calib.npz")
    return app


def run(cmd, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def cmake_dir() -> str:
    res = run([MCUCOMPILE, "--cmake-dir"], REPO)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


CMAKELISTS = """cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(mcucompile REQUIRED)
add_executable(app.elf src/main.c src/startup.c src/board_port.c)
target_compile_options(app.elf PRIVATE -O2 -Wall -Wextra -Werror)
target_link_options(app.elf PRIVATE -T ${{CMAKE_CURRENT_SOURCE_DIR}}/{board}.ld -Wl,--gc-sections)
mcucompile_add_model(app.elf MODEL model.onnx BOARD {board} {calib}OPTIONS --no-patch)
"""


def configure(app: Path, generator: str, calib: bool = True) -> Path:
    (app / "CMakeLists.txt").write_text(CMAKELISTS.format(board=BOARD, calib="CALIB calib.npz " if calib else ""))
    build = app / "build"
    res = run(["cmake", "-S", app, "-B", build, "-G", generator, f"-DCMAKE_TOOLCHAIN_FILE={app / 'cmake' / f'{BOARD}.cmake'}",
               f"-Dmcucompile_DIR={cmake_dir()}"], app)
    assert res.returncode == 0, res.stdout + res.stderr
    return build


def build(build_dir: Path) -> tuple[int, str]:
    res = run(["cmake", "--build", build_dir], build_dir)
    return res.returncode, res.stdout + res.stderr


def compiled_c_files(log: str) -> list[str]:
    """The C files a build log shows compiled ('Building C object ...', with either generator)."""
    return [line.split("Building C object ", 1)[1] for line in log.splitlines() if "Building C object" in line]


@pytest.mark.parametrize("generator", ["Unix Makefiles", "Ninja"])
def test_cmake_add_model_compiles_at_build_time_and_only_when_inputs_change(board_support, tmp_path, generator):
    app = make_app(tmp_path, board_support)
    build_dir = configure(app, generator)
    assert not (build_dir / "mcucompile" / "model").exists(), "the model must be compiled at build time, not configure time"
    rc, log = build(build_dir)
    assert rc == 0, log[-3000:]
    assert "mcucompile: compiling model.onnx" in log
    assert run_elf(build_dir / "app.elf") == expected_output(app / "model.onnx", app / "calib.npz")

    rc, log = build(build_dir)  # a second build compiles nothing
    assert rc == 0 and "mcucompile: compiling" not in log and not compiled_c_files(log), log
    (app / "model.onnx").touch()
    (app / "calib.npz").touch()
    rc, log = build(build_dir)  # nor does a touch: the stamp holds the content's hash
    assert rc == 0 and "mcucompile: compiling" not in log and not compiled_c_files(log), log

    other_mnist(app / "model.onnx")  # a different model: recompiled, only the files that changed are rebuilt
    rc, log = build(build_dir)
    assert rc == 0, log[-3000:]
    assert "mcucompile: compiling model.onnx" in log
    rebuilt = compiled_c_files(log)
    assert any("model_weights.c" in f for f in rebuilt) and not any("mcunn_conv.c" in f for f in rebuilt), rebuilt
    assert run_elf(build_dir / "app.elf") == expected_output(app / "model.onnx", app / "calib.npz")

    data = dict(np.load(app / "calib.npz"))  # different calibration content: recompiled
    np.savez(app / "calib.npz", **{k: v[: len(v) // 2] for k, v in data.items()})
    rc, log = build(build_dir)
    assert rc == 0 and "mcucompile: compiling model.onnx" in log, log[-3000:]
    assert run_elf(build_dir / "app.elf") == expected_output(app / "model.onnx", app / "calib.npz")

    if generator == "Ninja":  # options changed in CMakeLists.txt (CALIB dropped) and another network: recompiled
        shutil.copy(KWS, app / "model.onnx")
        (app / "CMakeLists.txt").write_text(CMAKELISTS.format(board=BOARD, calib=""))
        rc, log = build(build_dir)
        assert rc == 0 and "mcucompile: compiling model.onnx" in log, log[-3000:]
        assert run_elf(build_dir / "app.elf") == expected_output(KWS, None)


def test_cmake_build_fails_with_mcucompiles_message(board_support, tmp_path):
    app = make_app(tmp_path, board_support)
    build_dir = configure(app, "Unix Makefiles")
    (app / "model.onnx").unlink()
    rc, log = build(build_dir)
    assert rc != 0 and "mcucompile: error: model file not found" in log, log[-2000:]
    assert "Traceback" not in log

    shutil.copy(MNIST / "mnist_cnn.onnx", app / "model.onnx")
    (app / "CMakeLists.txt").write_text(CMAKELISTS.format(board="qemu-m99", calib=""))
    rc, log = build(build_dir)
    assert rc != 0 and "mcucompile: error: unknown board 'qemu-m99'" in log, log[-2000:]

    shutil.copy(SHARED_MODELS / "ad_autoencoder_int8.tflite", app / "model.onnx")
    (app / "CMakeLists.txt").write_text(CMAKELISTS.format(board="qemu-m0", calib=""))
    rc, log = build(build_dir)
    assert rc != 0 and "mcucompile: error: model does not fit board 'qemu-m0'" in log, log[-2000:]


def test_emitted_project_builds_with_cmake_like_make(board_support, tmp_path):
    """The firmware project's CMakeLists.txt (and the library's, through add_subdirectory) and toolchain file
    build the same firmware the Makefile builds: same output bytes, same instruction count."""
    proj = tmp_path / "proj"
    shutil.copytree(board_support, proj)
    res = run(["cmake", "-S", proj, "-B", proj / "build-cmake"], proj)  # the toolchain file is the default
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(["cmake", "--build", proj / "build-cmake"], proj)
    assert res.returncode == 0, res.stdout + res.stderr
    cm = run_qemu(proj / "build-cmake" / "firmware.elf", get_board(BOARD))
    res = run(["make", "-s"], proj)
    assert res.returncode == 0, res.stdout + res.stderr
    mk = run_qemu(proj / "build" / "firmware.elf", get_board(BOARD))
    assert cm.outputs == mk.outputs and cm.total == mk.total and cm.status == 0
    lib_cmake = (proj / "lib" / "model" / "CMakeLists.txt").read_text()
    assert "add_library(model STATIC" in lib_cmake and "src/model_weights.c" in lib_cmake


# --- PlatformIO ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pio_env():
    pio = Path(sys.executable).with_name("pio")
    assert pio.exists(), "PlatformIO missing: make test installs it (pip extra 'dev')"
    sys.path.insert(0, str(REPO / "tools"))
    from pio_offline import setup

    cache = Path(os.environ.get("MCUCOMPILE_PIO_CACHE", Path.home() / ".cache" / "mcucompile" / "pio"))
    env = dict(os.environ, **setup(cache))
    env["PATH"] = f"{MCUCOMPILE.parent}{os.pathsep}{env.get('PATH', '')}"  # the mcucompile the user installed
    return str(pio), env


PIO_INI = """[env:qemu_m7]
platform = symlink://{platform}
board = {board}
build_unflags = -Os
build_flags = -O2 -std=c99 -Wall -Wextra -Werror -Isrc
extra_scripts = pre:{script}
custom_mcucompile_model = model.onnx
custom_mcucompile_board = {board}
custom_mcucompile_calib = calib.npz
custom_mcucompile_options = --no-patch
{extra}"""


def pio_app(tmp_path: Path, support: Path, extra: str = "") -> Path:
    from mcucompile.project.firmware import qemu_platform_dir

    app = make_app(tmp_path, support)
    script = run([MCUCOMPILE, "platformio-script"], app).stdout.strip()
    (app / "platformio.ini").write_text(PIO_INI.format(platform=qemu_platform_dir(), board=BOARD, script=script,
                                                       extra=extra))
    return app


def pio_run(pio_env, app: Path) -> tuple[int, str]:
    pio, env = pio_env
    res = run([pio, "run", "-e", "qemu_m7"], app, env=env)
    return res.returncode, res.stdout + res.stderr


def test_platformio_compiles_the_model_in_pio_run_and_only_when_it_changes(pio_env, board_support, tmp_path):
    app = pio_app(tmp_path, board_support)
    rc, log = pio_run(pio_env, app)
    assert rc == 0, log[-3000:]
    assert "mcucompile: compiling model.onnx for qemu-m7" in log
    elf = app / ".pio" / "build" / "qemu_m7" / "program.elf"
    assert run_elf(elf) == expected_output(app / "model.onnx", app / "calib.npz")

    (app / "model.onnx").touch()
    rc, log = pio_run(pio_env, app)
    assert rc == 0 and "unchanged, not recompiling" in log and "mcucompile: compiling" not in log, log[-3000:]
    assert "Compiling" not in log, log[-3000:]  # SCons rebuilt nothing

    other_mnist(app / "model.onnx")
    rc, log = pio_run(pio_env, app)
    assert rc == 0 and "mcucompile: compiling model.onnx" in log, log[-3000:]
    assert run_elf(elf) == expected_output(app / "model.onnx", app / "calib.npz")


def test_platformio_bad_inputs_fail_with_one_line(pio_env, board_support, tmp_path):
    app = pio_app(tmp_path, board_support)
    (app / "model.onnx").unlink()
    rc, log = pio_run(pio_env, app)
    assert rc != 0 and "mcucompile: error: model file not found" in log and "Traceback" not in log, log[-3000:]

    shutil.copy(MNIST / "mnist_cnn.onnx", app / "model.onnx")
    ini = app / "platformio.ini"
    ini.write_text(ini.read_text().replace(f"custom_mcucompile_board = {BOARD}", "custom_mcucompile_board = qemu-m99"))
    rc, log = pio_run(pio_env, app)
    assert rc != 0 and "mcucompile: error: unknown board 'qemu-m99'" in log, log[-3000:]

    app2 = pio_app(tmp_path / "b", board_support, extra="custom_mcucompile_executable = /nonexistent/mcucompile\n")
    rc, log = pio_run(pio_env, app2)
    assert rc != 0 and "mcucompile: error: '/nonexistent/mcucompile'" in log, log[-3000:]

    pio, env = pio_env  # mcucompile not installed where PlatformIO looks: says how to install it
    bare = dict(env, PATH="/usr/bin:/bin", HOME=str(tmp_path))
    bare.pop("MCUCOMPILE_EXECUTABLE", None)
    res = run([pio, "run", "-e", "qemu_m7"], pio_app(tmp_path / "c", board_support), env=bare)
    text = res.stdout + res.stderr
    assert res.returncode != 0 and "pip install mcucompile" in text, text[-3000:]


# --- CMSIS-NN (--kernels cmsis-nn): needs a checkout in CMSIS_NN_DIR, never in CI -----------------------------

CMSIS_NN_DIR = os.environ.get("CMSIS_NN_DIR", "")
needs_cmsis_nn = pytest.mark.skipif(not CMSIS_NN_DIR, reason="CMSIS_NN_DIR not set: CMSIS-NN cannot be downloaded here; "
                                    "set it to a CMSIS-NN checkout to run the CMSIS-NN builds")


def _without_cmsis_nn_dir() -> dict:
    return {k: v for k, v in os.environ.items() if k != "CMSIS_NN_DIR"}


def test_cmake_cmsis_nn_without_its_dir_fails_with_one_line(board_support, tmp_path):
    """Configure-time refusals: the module (mcucompile_add_model with --kernels cmsis-nn) and an emitted
    --kernels cmsis-nn library's own CMakeLists.txt both say what to set."""
    app = make_app(tmp_path, board_support)
    (app / "CMakeLists.txt").write_text(CMAKELISTS.format(board="qemu-m4", calib="").replace(
        "OPTIONS --no-patch", "OPTIONS --no-patch --kernels cmsis-nn"))
    res = subprocess.run(["cmake", "-S", str(app), "-B", str(app / "build"), f"-Dmcucompile_DIR={cmake_dir()}",
                          f"-DCMAKE_TOOLCHAIN_FILE={app / 'cmake' / f'{BOARD}.cmake'}"],
                         capture_output=True, text=True, env=_without_cmsis_nn_dir(), timeout=300)
    assert res.returncode != 0 and "mcucompile: error: --kernels cmsis-nn needs CMSIS-NN: set CMSIS_NN_DIR" in res.stderr, \
        res.stderr[-2000:]

    out = tmp_path / "proj"
    res = run([MCUCOMPILE, SHARED_MODELS / "kws_dscnn_int8.tflite", "--board", "qemu-m4", "--kernels", "cmsis-nn", "-o",
               out, "--quiet"], tmp_path, env=_without_cmsis_nn_dir())
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["cmake", "-S", str(out), "-B", str(out / "build-cmake")], capture_output=True, text=True,
                         env=_without_cmsis_nn_dir(), timeout=300)
    assert res.returncode != 0 and "CMSIS_NN_DIR is not set" in res.stderr, res.stderr[-2000:]
    res = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True, env=_without_cmsis_nn_dir(),
                         timeout=300)
    assert res.returncode != 0 and "CMSIS_NN_DIR is not set" in res.stderr, res.stderr[-2000:]


@needs_cmsis_nn
def test_cmake_add_model_with_cmsis_nn(board_support, tmp_path):
    app = make_app(tmp_path, board_support)
    (app / "CMakeLists.txt").write_text(CMAKELISTS.format(board=BOARD, calib="CALIB calib.npz ").replace(
        "OPTIONS --no-patch", "OPTIONS --no-patch --kernels cmsis-nn"))
    res = run(["cmake", "-S", app, "-B", app / "build", f"-Dmcucompile_DIR={cmake_dir()}",
               f"-DCMAKE_TOOLCHAIN_FILE={app / 'cmake' / f'{BOARD}.cmake'}"], app)
    assert res.returncode == 0, res.stderr[-2000:]
    rc, log = build(app / "build")
    assert rc == 0, log[-3000:]
    assert "arm_convolve_wrapper_s8" in (app / "build" / "mcucompile" / "model" / "lib" / "model" / "src" / "model.c").read_text()
    assert run_elf(app / "build" / "app.elf") == expected_output(app / "model.onnx", app / "calib.npz")


@needs_cmsis_nn
def test_cmake_builds_cmsis_nn_models_like_make(tmp_path):
    """An emitted --kernels cmsis-nn project: CMake (through the library's CMakeLists.txt) and plain make give the
    same firmware output and instruction count on qemu-m4; mcucompile_add_model with --kernels cmsis-nn builds and
    runs bit-exact."""
    out = tmp_path / "proj"
    res = run([MCUCOMPILE, SHARED_MODELS / "kws_dscnn_int8.tflite", "--board", "qemu-m4", "--kernels", "cmsis-nn",
               "-o", out, "--quiet"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert run(["cmake", "-S", out, "-B", out / "build-cmake"], out).returncode == 0
    res = run(["cmake", "--build", out / "build-cmake", "-j2"], out)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = run(["make", "-s", "-j2"], out)  # plain `make`, as a user types it
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    board = get_board("qemu-m4")
    cm, mk = run_qemu(out / "build-cmake" / "firmware.elf", board), run_qemu(out / "build" / "firmware.elf", board)
    assert cm.outputs == mk.outputs and cm.total == mk.total and cm.status == 0
    assert "arm_convolve_wrapper_s8" in (out / "lib" / "model" / "src" / "model.c").read_text()


def test_platformio_cmsis_nn_without_its_dir_fails_with_one_line(pio_env, board_support, tmp_path):
    app = pio_app(tmp_path, board_support)
    ini = app / "platformio.ini"
    ini.write_text(ini.read_text().replace("custom_mcucompile_options = --no-patch",
                                           "custom_mcucompile_options = --no-patch --kernels cmsis-nn"))
    pio, env = pio_env
    res = run([pio, "run", "-e", "qemu_m7"], app, env={k: v for k, v in env.items() if k != "CMSIS_NN_DIR"})
    text = res.stdout + res.stderr
    assert res.returncode != 0 and "mcucompile: error: --kernels cmsis-nn needs CMSIS-NN" in text, text[-3000:]


@needs_cmsis_nn
def test_platformio_builds_a_cmsis_nn_model(pio_env, board_support, tmp_path):
    app = pio_app(tmp_path, board_support)
    ini = app / "platformio.ini"
    ini.write_text(ini.read_text().replace("custom_mcucompile_options = --no-patch",
                                           "custom_mcucompile_options = --no-patch --kernels cmsis-nn"))
    rc, log = pio_run(pio_env, app)
    assert rc == 0, log[-3000:]
    lib = app / ".pio" / "build" / "qemu_m7" / "mcucompile" / "model" / "lib" / "model" / "src" / "model.c"
    assert "arm_convolve_wrapper_s8" in lib.read_text()
    assert run_elf(app / ".pio" / "build" / "qemu_m7" / "program.elf") == expected_output(app / "model.onnx",
                                                                                           app / "calib.npz")
