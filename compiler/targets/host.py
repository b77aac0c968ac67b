"""Build the generated library plus the runtime for this PC with gcc and run it on int8 inputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UserError

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
# AddressSanitizer + UndefinedBehaviorSanitizer, every finding fatal: a generated library that reads outside
# its buffers or overflows an int32 accumulator fails the run instead of computing a plausible answer.
SANITIZE_FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=all"]
SANITIZE_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:halt_on_error=1",
                "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


def find_compiler() -> str:
    for cc in ("gcc", "cc", "clang"):
        if shutil.which(cc):
            return cc
    raise UserError("no C compiler found for host verification; install one: apt-get install gcc")


def build_host(library_dir: Path, runner_c: str, build_dir: Path, prefix: str = "model", sanitize: bool = False,
               system_includes: tuple[Path, ...] = (), archives: tuple[Path, ...] = ()) -> Path:
    """Compile the self-contained library folder (generated code + runtime) and ``runner_c``; with
    ``sanitize``, under ASan and UBSan (any finding aborts the run, see run_host). ``system_includes`` and
    ``archives``: a library the generated code calls (CMSIS-NN), its headers and its prebuilt archive."""
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = build_dir / "runner.c"
    runner.write_text(runner_c)
    sources = sorted((library_dir / "src").glob("*.c")) + [runner]
    exe = build_dir / "runner"
    flags = CFLAGS + SANITIZE_FLAGS if sanitize else CFLAGS
    cmd = [find_compiler(), *flags, *[a for d in system_includes for a in ("-isystem", str(d))],
           "-I", str(library_dir / "include"), "-I", str(library_dir / "src"), *map(str, sources),
           *map(str, archives), "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{res.stderr[-4000:]}")
    return exe


def run_host(exe: Path, inputs: list[np.ndarray], output_sizes: list[int], timeout: float = 600) -> list[np.ndarray]:
    """Run ``exe`` on samples; ``inputs[i]`` is [N, ...] int8 for model input i. Returns [N, size] per output."""
    return run_host_log(exe, inputs, output_sizes, timeout)[0]


def run_host_log(exe: Path, inputs: list[np.ndarray], output_sizes: list[int],
                 timeout: float = 600) -> tuple[list[np.ndarray], str]:
    """:func:`run_host`, and what the runner printed on stdout (``MCU CHAINS`` lines of a model with several
    patch-loop chains)."""
    n = len(inputs[0])
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        with open(fin, "wb") as f:
            for s in range(n):
                for arr in inputs:
                    f.write(np.ascontiguousarray(arr[s], np.int8).tobytes())
        env = {**os.environ, **SANITIZE_ENV}
        res = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"host runner failed ({res.returncode}): {res.stderr[-2000:]}")
        raw = np.frombuffer(fout.read_bytes(), np.int8)
    per = sum(output_sizes)
    if raw.size != per * n:
        raise RuntimeError(f"host runner wrote {raw.size} bytes, expected {per * n}")
    raw = raw.reshape(n, per)
    outs, start = [], 0
    for size in output_sizes:
        outs.append(raw[:, start : start + size].copy())
        start += size
    return outs, res.stdout
