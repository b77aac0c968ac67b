"""The package as a user installs it, not as the source tree runs it.

The wheel is built from this tree the way ``pip install .`` builds it (build isolation), then installed
with its dependencies into a fresh venv: ``python -m venv`` without ``--system-site-packages``, no
editable install, ``PYTHONPATH`` unset, every command run from an empty folder outside the repository.
An editable install would not do: its import finder supplies subpackages from the source tree, so a
package missing from the wheel goes unseen (issue 8: the wheel lacked ``mcucompile.patch`` and
``mcucompile.reference``, and every compile of the installed package failed).

Checked here:

- the wheel holds every package under ``compiler/`` (each folder with an ``__init__.py``) and every file
  under ``compiler/``, ``runtime_c/`` and ``boards/``, at its place inside ``mcucompile``;
- the venv's ``mcucompile`` imports from the venv's site-packages, every one of its modules imports
  without the optional extras, and nothing comes from this tree;
- the venv's ``mcucompile`` console script compiles, verifies on qemu-m7 (bit-exact) and benches a
  model under a forced patch plan;
- with the ``tflite`` extra installed, ``verify`` of an int8 ``.tflite`` runs TFLite Micro from the venv.

Dependencies come from a wheelhouse, ``~/.cache/mcucompile/test-wheelhouse/<key>``, built once with
``pip wheel`` from the wheel's own requirements (the key hashes them with the Python version and the
platform) and installed with ``--no-index``: a warm run needs no network, and a change of requirements
builds a new wheelhouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, SHARED_MODELS

# Where each source folder lands inside the wheel (pyproject.toml's package-dir).
WHEEL_PLACE = {"compiler": "mcucompile", "runtime_c": "mcucompile/_runtime_c", "boards": "mcucompile/_boards"}
EXTRA = "tflite"
# MNIST (models/mnist) has no valid split point ("the first op is not patchable"); ResNet-8's first four
# layers run in 2x2 patches (+3.4% MACs), and the model is small enough that each command takes seconds.
PATCHED_MODEL = SHARED_MODELS / "resnet8_float.onnx"
PATCH_PLAN = ("--split", "4", "--patches", "2")
TFLITE_MODEL = SHARED_MODELS / "resnet8_int8.tflite"
WHEELHOUSES = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mcucompile" / "test-wheelhouse"
# Left in a copied source tree by earlier builds or runs; never part of a clean checkout.
NOT_SOURCE = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache"}


@dataclass(frozen=True)
class Venv:
    """A fresh virtual environment and the environment variables its commands run with."""

    root: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def purelib(self) -> Path:
        """The venv's site-packages, asked from its own interpreter."""
        out = _check([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], self)
        return Path(out.stdout.strip()).resolve()


@dataclass(frozen=True)
class Built:
    """The wheel built from this tree, the fresh venv it is installed into, and the wheelhouse used."""

    wheel: Path
    venv: Venv
    wheelhouse: Path
    scratch: Path


def _run(cmd, venv: Venv | None = None, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    env = venv.env if venv is not None else _clean_env(None)
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _check(cmd, venv: Venv | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    res = _run(cmd, venv, cwd)
    assert res.returncode == 0, (f"{' '.join(map(str, cmd))} -> exit {res.returncode}\n"
                                 f"--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}")
    return res


def _clean_env(venv_root: Path | None) -> dict[str, str]:
    """The caller's environment minus everything that could point Python at this tree or its venv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in {"VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__"}}
    ours = {Path(sys.prefix).resolve() / "bin", (REPO / ".venv" / "bin").resolve()}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() not in ours]
    if venv_root is not None:
        path.insert(0, str(venv_root / "bin"))
        env["VIRTUAL_ENV"] = str(venv_root)
    env["PATH"] = os.pathsep.join(path)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _source_files() -> list[str]:
    """Paths (relative, '/'-separated) of a clean checkout plus new files not yet committed nor ignored."""
    if (REPO / ".git").exists():
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout.decode()
        return sorted(p for p in out.split("\0") if p and (REPO / p).is_file())
    files = []
    for top, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in NOT_SOURCE and not d.endswith(".egg-info")]
        files += [(Path(top) / n).relative_to(REPO).as_posix() for n in names if not n.endswith((".pyc", ".o", ".so"))]
    return sorted(files)


def _wheel_place(rel: str) -> str | None:
    """Where a source file must be in the wheel, or None for files outside the package."""
    top, _, rest = rel.partition("/")
    return f"{WHEEL_PLACE[top]}/{rest}" if top in WHEEL_PLACE and rest else None


def _requirements(wheel: Path, extra: str) -> list[str]:
    """The wheel's Requires-Dist lines that an install of the package and of ``extra`` resolves."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    reqs = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")]
    return sorted(r for r in reqs if "extra ==" not in r or re.search(rf"extra == ['\"]{extra}['\"]", r))


def _wheelhouse(venv: Venv, wheel: Path) -> Path:
    """A folder of wheels for every dependency of ``wheel[EXTRA]``, built once per requirement list."""
    reqs = _requirements(wheel, EXTRA)
    key = hashlib.sha256("\n".join([*reqs, sys.version.split()[0], sysconfig.get_platform()]).encode()).hexdigest()[:16]
    house = WHEELHOUSES / key
    if house.is_dir():
        return house
    WHEELHOUSES.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed into place, so an interrupted run never leaves a partial wheelhouse behind.
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=WHEELHOUSES))
    try:
        _check([venv.python, "-m", "pip", "wheel", "-q", "-w", staging, f"{wheel}[{EXTRA}]"], venv)
        for own in staging.glob("mcucompile-*.whl"):
            own.unlink()
        (staging / "requirements.txt").write_text("\n".join(reqs) + "\n")
        try:
            staging.rename(house)
        except OSError:  # another run finished the same wheelhouse first; theirs is as good
            if not house.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return house


def _install(built: Built, spec: str) -> None:
    _check([built.venv.python, "-m", "pip", "install", "-q", "--no-index", "--find-links", built.wheelhouse, spec],
           built.venv)


def _empty_dir(built: Built, name: str) -> Path:
    work = built.scratch / "cwd" / name
    work.mkdir(parents=True)
    return work


def _mcucompile(built: Built, *args, cwd: Path) -> subprocess.CompletedProcess:
    """The venv's own console script, run from ``cwd``."""
    return _check([built.venv.root / "bin" / "mcucompile", *args], built.venv, cwd=cwd)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Fresh venv, the wheel built into it from a copy of this tree, the base package installed."""
    scratch = tmp_path_factory.mktemp("packaging").resolve()
    assert not scratch.is_relative_to(REPO.resolve()), f"scratch folder {scratch} lies inside the repository"
    for model in (PATCHED_MODEL, TFLITE_MODEL):
        assert model.is_file(), f"{model} is missing: the shared MLPerf Tiny models belong next to the repository " \
                                "(or set MCUCOMPILE_SHARED_MODELS)"
    root = scratch / "venv"
    # sys.executable may itself be a venv's python; venv builds on its base interpreter either way.
    _check([sys.executable, "-m", "venv", root])
    cfg = (root / "pyvenv.cfg").read_text()
    assert re.search(r"include-system-site-packages\s*=\s*false", cfg), cfg
    venv = Venv(root, _clean_env(root))

    # A copy of the tree as a clean checkout has it: no build/ or egg-info left by earlier in-tree
    # builds can leak stale files into the wheel, and builds running at the same time do not collide.
    src = scratch / "src"
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    dist = scratch / "dist"
    # As `pip install .` does: an isolated build env with the [build-system] requirements.
    _check([venv.python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src], venv, cwd=scratch)
    (wheel,) = dist.glob("mcucompile-*.whl")
    built = Built(wheel, venv, _wheelhouse(venv, wheel), scratch)
    _install(built, str(wheel))
    return built


def test_wheel_holds_every_package_and_file(built):
    with zipfile.ZipFile(built.wheel) as z:
        names = set(z.namelist())
    packages = sorted(p.parent.relative_to(REPO).as_posix() for p in (REPO / "compiler").rglob("__init__.py")
                      if "__pycache__" not in p.parts)
    assert "compiler/patch" in packages and "compiler/reference" in packages, packages
    missing = [p for p in packages if _wheel_place(f"{p}/__init__.py") not in names]
    assert not missing, (f"packages missing from the wheel: {missing}; the package configuration in pyproject.toml "
                         "([tool.setuptools]) does not ship them")
    expected = {place for rel in _source_files() if (place := _wheel_place(rel)) is not None}
    lost = sorted(expected - names)
    assert not lost, f"files missing from the wheel: {lost}; add their pattern to [tool.setuptools.package-data]"
    junk = sorted(n for n in names if "__pycache__" in n or n.endswith(".pyc"))
    assert not junk, f"compiled leftovers in the wheel: {junk}"


def test_installed_wheel_runs_from_its_venv(built):
    probe = (
        "import importlib, json, pkgutil, sys\n"
        "import mcucompile\n"
        "names = [m.name for m in pkgutil.walk_packages(mcucompile.__path__, 'mcucompile.')]\n"
        "for name in names:\n"
        "    if not name.endswith('.__main__'):  # that one runs the CLI\n"
        "        importlib.import_module(name)\n"
        "files = {n: getattr(m, '__file__', None) for n, m in sys.modules.items() if n.split('.')[0] == 'mcucompile'}\n"
        "print(json.dumps({'files': files, 'path': sys.path, 'prefix': sys.prefix}))\n"
    )
    out = json.loads(_check([built.venv.python, "-c", probe], built.venv, cwd=_empty_dir(built, "probe")).stdout)
    purelib = built.venv.purelib
    assert Path(out["prefix"]).resolve() == built.venv.root.resolve(), out["prefix"]
    assert {"mcucompile.patch", "mcucompile.reference", "mcucompile.cli"} <= set(out["files"]), sorted(out["files"])
    elsewhere = {n: f for n, f in out["files"].items() if f is None or not Path(f).resolve().is_relative_to(purelib)}
    assert not elsewhere, f"modules not from the venv's site-packages {purelib}: {elsewhere}"
    from_repo = [p for p in out["path"] if p and Path(p).resolve().is_relative_to(REPO.resolve())]
    assert not from_repo, f"the source tree is on the installed package's sys.path: {from_repo}"
    script = built.venv.root / "bin" / "mcucompile"
    assert str(built.venv.root) in script.read_text()[:400], script.read_text()[:400]


def test_installed_wheel_compiles_verifies_and_benches_a_patched_model(built):
    work = _empty_dir(built, "compile")
    _mcucompile(built, PATCHED_MODEL, "--board", "qemu-m7", *PATCH_PLAN, "-o", "out", cwd=work)
    plan = json.loads((work / "out" / "report.json").read_text())["patch_plan"]
    assert plan is not None and (plan["stage_layers"], plan["grid"]) == (4, 2), plan
    assert (work / "out" / "lib").is_dir(), sorted(p.name for p in (work / "out").iterdir())

    res = _mcucompile(built, "verify", PATCHED_MODEL, "--board", "qemu-m7", *PATCH_PLAN, "-n", "2",
                      cwd=_empty_dir(built, "verify"))
    assert re.search(r"C on qemu-m7\s+vs simulator: bit-exact", res.stdout), res.stdout

    res = _mcucompile(built, "bench", PATCHED_MODEL, "--board", "qemu-m7", *PATCH_PLAN, cwd=_empty_dir(built, "bench"))
    assert re.search(r"^\s+#\s+op\s.*instructions", res.stdout, re.M), res.stdout
    assert re.search(r"^\s+total\s+[\d,]+\s+[\d,]+", res.stdout, re.M), res.stdout


def test_tflite_extra_runs_tflite_micro_from_its_venv(built):
    probe = "import tflite_micro, ai_edge_litert; print(tflite_micro.__file__); print(ai_edge_litert.__file__)"
    res = _run([built.venv.python, "-c", probe], built.venv, cwd=_empty_dir(built, "before-extra"))
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr, \
        "the base install already has the TFLite references, so this test would not test the extra: " + res.stdout
    _install(built, f"{built.wheel}[{EXTRA}]")
    res = _check([built.venv.python, "-c", probe], built.venv, cwd=_empty_dir(built, "after-extra"))
    purelib = built.venv.purelib
    for f in res.stdout.split():
        assert Path(f).resolve().is_relative_to(purelib), f"{f} is not in the venv's site-packages {purelib}"

    # the same as the base install, on an int8 .tflite, patched: compile (TFLite Micro's arena measured by the
    # venv's own tflite-micro), verify against TFLite Micro on qemu-m7, bench
    work = _empty_dir(built, "tflite-compile")
    _mcucompile(built, TFLITE_MODEL, "--board", "qemu-m7", *PATCH_PLAN, "-o", "out", cwd=work)
    report = json.loads((work / "out" / "report.json").read_text())
    assert report["tflm_arena_bytes"] and report["patch_plan"]["grid"] == 2, report.get("tflm_arena_note")
    res = _mcucompile(built, "verify", TFLITE_MODEL, "--board", "qemu-m7", *PATCH_PLAN, "-n", "2",
                      cwd=_empty_dir(built, "tflite"))
    assert re.search(r"C on qemu-m7\s+vs simulator: bit-exact", res.stdout), res.stdout
    # The reference ran (a reference that refuses a model is reported, not bit-exact) and agreed.
    assert re.search(r"^C vs tflite[- ]micro\b.*\bbit-exact\s*$", res.stdout, re.M | re.I), res.stdout
    res = _mcucompile(built, "bench", TFLITE_MODEL, "--board", "qemu-m7", *PATCH_PLAN,
                      cwd=_empty_dir(built, "tflite-bench"))
    assert re.search(r"^\s+total\s+[\d,]+\s+[\d,]+", res.stdout, re.M), res.stdout


HOST_MAIN_C = r"""
#include <stdint.h>
#include <stdio.h>

#include "model.h"

int main(void)
{
    int8_t *in = model_input(0);
    for (int32_t i = 0; i < MODEL_INPUT_0_SIZE; i++)
    {
        in[i] = (int8_t)(i * 7);
    }
    if (model_invoke(0) != MCU_OK)
    {
        return 1;
    }
    for (int32_t i = 0; i < MODEL_OUTPUT_0_SIZE; i++)
    {
        printf("%02x", (unsigned)(uint8_t)model_output(0)[i]);
    }
    printf("\n");
    return 0;
}
"""


def test_installed_wheel_cmake_module_builds_a_model_with_its_own_mcucompile(built):
    """The CMake module in the wheel (mcucompile --cmake-dir) finds the mcucompile installed next to it, not one on
    PATH, and compiles the model during a native (host) CMake build; the output matches the simulator."""
    import numpy as np

    from mcucompile.api import CompileOptions, PatchOptions, compile_model
    from mcucompile.api.verify import simulate

    work = _empty_dir(built, "cmake")
    cmake_dir = Path(_mcucompile(built, "--cmake-dir", cwd=work).stdout.strip())
    assert cmake_dir.resolve().is_relative_to(built.venv.purelib) and (cmake_dir / "mcucompileConfig.cmake").is_file()
    assert Path(_mcucompile(built, "platformio-script", cwd=work).stdout.strip()).is_file()
    model = REPO / "models" / "mnist" / "mnist_cnn.onnx"
    (work / "main.c").write_text(HOST_MAIN_C)
    (work / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(app C)\nfind_package(mcucompile REQUIRED)\n"
        "add_executable(app main.c)\n"
        f"mcucompile_add_model(app MODEL {model} BOARD host OPTIONS --no-patch)\n")
    env = dict(built.venv.env)  # the venv's bin is not on PATH: the module must find its mcucompile itself
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != built.venv.root / "bin")
    venvless = Venv(built.venv.root, env)
    _check(["cmake", "-S", work, "-B", work / "b", f"-Dmcucompile_DIR={cmake_dir}"], venvless, cwd=work)
    res = _check(["cmake", "--build", work / "b"], venvless, cwd=work)
    assert "mcucompile: compiling" in res.stdout, res.stdout[-2000:]
    out = _check([work / "b" / "app"], venvless, cwd=work).stdout.strip()
    compiled = compile_model(model, CompileOptions(board="host", progress=False, patch=PatchOptions(mode="off")))
    g = compiled.graph
    x = (np.arange(g.tensors[g.inputs[0]].size) * 7).astype(np.uint8).view(np.int8).reshape(g.tensors[g.inputs[0]].shape)
    assert bytes.fromhex(out) == simulate(compiled, x[None])[0][0].astype(np.int8).tobytes()
