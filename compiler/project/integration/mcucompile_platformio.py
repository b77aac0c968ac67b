"""PlatformIO extra script of mcucompile: compile a model as part of `pio run`.

In platformio.ini (the path is what `mcucompile platformio-script` prints; copying the file into the
project works too)::

    [env:myboard]
    extra_scripts = pre:/path/to/mcucompile_platformio.py
    custom_mcucompile_model = model.onnx          ; required (relative to the project folder)
    custom_mcucompile_board = nucleo-f746zg       ; required: an mcucompile board (mcucompile boards)
    custom_mcucompile_calib = calib.npz           ; optional
    custom_mcucompile_name = model                ; optional C prefix (default: model)
    custom_mcucompile_options = --no-patch        ; optional, more mcucompile options
    custom_mcucompile_executable = /path/to/mcucompile   ; optional (default: MCUCOMPILE_EXECUTABLE, PATH)
    custom_mcucompile_cmsis_nn_dir = /path/to/CMSIS-NN   ; with --kernels cmsis-nn (default: CMSIS_NN_DIR)

The model is compiled into $BUILD_DIR/mcucompile/<name>/ and its library is built into the firmware;
`#include "<name>.h"` in the application. It is recompiled when the content of the model or of the
calibration data, the board, the name, the options or the mcucompile version change, and only then (a hash
stamp: a `touch` or a second build compile nothing). A missing model, an unknown board or a model that does
not fit stop the build with mcucompile's one-line `mcucompile: error: ...` and a non-zero exit.

This file runs inside PlatformIO's own Python (SCons), not the one mcucompile is installed in, so it never
imports mcucompile: it calls the `mcucompile` program.
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import sys

Import("env")  # noqa: F821 - SCons provides Import() to extra scripts

PREFIX = "custom_mcucompile_"


def option(name: str, default: str = "") -> str:
    return str(env.GetProjectOption(PREFIX + name, default)).strip()  # noqa: F821


def fail(message: str, code: int = 2) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    env.Exit(code)  # noqa: F821


def find_mcucompile() -> str:
    """The mcucompile program: custom_mcucompile_executable, MCUCOMPILE_EXECUTABLE, PATH, ~/.local/bin."""
    for candidate in (option("executable"), os.environ.get("MCUCOMPILE_EXECUTABLE", "").strip()):
        if candidate:
            if shutil.which(candidate) is None:
                fail(f"mcucompile: error: '{candidate}' (custom_mcucompile_executable / MCUCOMPILE_EXECUTABLE) is "
                     "not an executable program; point it at the mcucompile you installed (which mcucompile)")
            return candidate
    found = shutil.which("mcucompile") or shutil.which("mcucompile", path=os.path.expanduser("~/.local/bin"))
    if found is None:
        fail("mcucompile: error: the mcucompile program was not found on PATH: install it (pip install mcucompile) "
             "or set custom_mcucompile_executable = /path/to/mcucompile in platformio.ini")
    return found


def content_digest(path: str) -> str:
    """sha256 of a file's content; a missing file gets a digest no stamp holds, so mcucompile runs and names it."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return "missing:" + os.urandom(8).hex()


def main() -> None:
    project = env.subst("$PROJECT_DIR")  # noqa: F821
    build = env.subst("$BUILD_DIR")  # noqa: F821
    model_opt, board = option("model"), option("board")
    if not model_opt or not board:
        fail("mcucompile: error: set custom_mcucompile_model = <model file> and custom_mcucompile_board = <board> "
             "(see 'mcucompile boards') in platformio.ini, next to extra_scripts = pre:...mcucompile_platformio.py")
    name = option("name", "model") or "model"
    model = os.path.join(project, model_opt)
    calib = os.path.join(project, option("calib")) if option("calib") else ""
    extra = shlex.split(option("options"))
    exe = find_mcucompile()
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"mcucompile: error: '{exe} --version' failed ({e}); reinstall mcucompile")
    out = os.path.join(build, "mcucompile", name)
    stamp = out + ".inputs.sha256"
    parts = [f"version={version}", f"board={board}", f"name={name}", f"options={shlex.join(extra)}",
             f"model={content_digest(model)}", f"calib={content_digest(calib) if calib else 'none'}"]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    lib = os.path.join(out, "lib", name)
    try:
        with open(stamp) as f:
            unchanged = f.read().strip() == digest and os.path.isdir(lib)
    except OSError:
        unchanged = False
    if unchanged:
        print(f"mcucompile: {name}: model, calibration and options unchanged, not recompiling")
    else:
        cmd = [exe, model, "--board", board, "--name", name] + (["--calib", calib] if calib else []) + extra
        cmd += ["-o", out, "--quiet"]
        print(f"mcucompile: compiling {model_opt} for {board}")
        res = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(res.stdout)
        if res.returncode != 0:
            try:
                os.remove(stamp)
            except OSError:
                pass
            fail(res.stderr or f"mcucompile: error: '{shlex.join(cmd)}' failed with exit code {res.returncode}",
                 res.returncode)
        sys.stderr.write(res.stderr)  # warnings
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w") as f:
            f.write(digest + "\n")
    env.Append(CPPPATH=[os.path.join(lib, "include"), os.path.join(lib, "src")])  # noqa: F821
    env.BuildSources(os.path.join("$BUILD_DIR", "mcucompile_" + name), os.path.join(lib, "src"))  # noqa: F821
    if "cmsis-nn" in extra or "--kernels=cmsis-nn" in extra:
        add_cmsis_nn(exe)


def add_cmsis_nn(exe: str) -> None:
    """--kernels cmsis-nn: build Arm's CMSIS-NN from custom_mcucompile_cmsis_nn_dir (or CMSIS_NN_DIR) into the
    firmware as an archive (the link takes only the objects the model calls). It builds with the project's
    flags (this script runs before the platform sets its tools, so it cannot give CMSIS-NN flags of its own):
    CMSIS-NN v7 is warning-free under -Wall -Wextra -Werror with arm-none-eabi-gcc 12."""
    root = option("cmsis_nn_dir") or os.environ.get("CMSIS_NN_DIR", "").strip()
    if not root or not os.path.isfile(os.path.join(root, "Include", "arm_nnfunctions.h")):
        fail("mcucompile: error: --kernels cmsis-nn needs CMSIS-NN: set custom_mcucompile_cmsis_nn_dir (or "
             "CMSIS_NN_DIR) to a CMSIS-NN checkout (git clone https://github.com/ARM-software/CMSIS-NN -b v7.0.0)")
    res = subprocess.run([exe, "cmake-dir", "--cmsis-nn-sources", root], capture_output=True, text=True)
    if res.returncode != 0:
        fail(res.stderr)
    sources = [p for p in res.stdout.strip().split(";") if p]
    include = os.path.join(root, "Include")
    env.Append(CCFLAGS=["-isystem", include])  # noqa: F821 - a system directory for our sources too
    objects = [env.Object(os.path.join("$BUILD_DIR", "cmsis-nn", os.path.relpath(src, root)[:-2]), src)  # noqa: F821
               for src in sources]
    env.Append(LIBS=[env.StaticLibrary(os.path.join("$BUILD_DIR", "cmsis-nn", "cmsis-nn"), objects)])  # noqa: F821

main()
