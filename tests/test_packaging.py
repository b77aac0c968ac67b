"""Installed as a user would (a built wheel, not the source tree): the runtime, board files, templates
and the QEMU dev-platform ship inside the package, and a compile + host verify + firmware build work."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def test_wheel_install_works(tmp_path):
    wheels = tmp_path / "wheels"
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                          str(wheels), str(REPO)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next(wheels.glob("mcucompile-*.whl"))
    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(target))
    code = (
        "import mcucompile, pathlib; from mcucompile.paths import runtime_dir, boards_dir;"
        "from mcucompile.project.firmware import qemu_platform_dir;"
        f"assert pathlib.Path(mcucompile.__file__).is_relative_to({str(target)!r}), mcucompile.__file__;"
        "assert (runtime_dir() / 'include' / 'mcunn.h').exists() and (boards_dir() / 'qemu-m7.json').exists();"
        "assert (qemu_platform_dir() / 'builder' / 'main.py').exists();"
        "assert runtime_dir().is_relative_to(pathlib.Path(mcucompile.__file__).parent)"
    )
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    mnist = REPO / "models" / "mnist"
    res = subprocess.run([sys.executable, "-m", "mcucompile", "verify", str(mnist / "mnist_cnn.onnx"), "--board", "qemu-m7",
                          "--calib", str(mnist / "mnist_calib_200.npz"), "-n", "2"], env=env, capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0 and "bit-exact" in res.stdout, res.stdout + res.stderr
