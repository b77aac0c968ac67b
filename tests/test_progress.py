"""Progress: one updating line on a terminal (stderr) for the long steps, nothing at all with --quiet or
when stderr is not a terminal, and the command's stdout the same either way. The command-line checks run
mcucompile with its stderr on a pseudo-terminal (pty), as a user's shell gives it, and on a pipe."""

from __future__ import annotations

import fcntl
import io
import os
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from conftest import REPO
from mcucompile.progress import CLEAR_LINE, QUIET, Progress

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
MNIST_CALIB = REPO / "models" / "mnist" / "mnist_calib_200.npz"


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, and remembers everything written to it."""

    def isatty(self) -> bool:
        return True


# --- the module --------------------------------------------------------------------------------------------

def test_a_counted_step_draws_its_bar_and_clears_the_line():
    term = FakeTerminal()
    progress = Progress(True, term)
    with progress.step("simulating", total=4) as step:
        for _ in range(4):
            step.advance()
    text = term.getvalue()
    assert "simulating [" in text and "4/4" in text, text
    assert text.endswith(CLEAR_LINE), "the line is cleared at the end, so what follows prints on a clean line"
    assert "\n" not in text, "one line, redrawn in place"


def test_a_step_of_unknown_length_shows_the_elapsed_seconds():
    term = FakeTerminal()
    with Progress(True, term).step("building the firmware"):
        time.sleep(0.6)  # a few redraws by the ticker
    frames = [f for f in term.getvalue().split(CLEAR_LINE) if f]
    assert len(frames) >= 2 and all(f.startswith("building the firmware ... ") and f.endswith(" s") for f in frames)
    assert float(frames[-1].split("... ")[1].removesuffix(" s")) >= 0.4


def test_nested_steps_redraw_the_outer_one():
    term = FakeTerminal()
    progress = Progress(True, term)
    with progress.step("verifying", total=2) as outer:
        with progress.step("building"):
            pass
        outer.advance(2)
    frames = [f for f in term.getvalue().split(CLEAR_LINE) if f]
    assert frames[0].startswith("verifying") and frames[1].startswith("building")
    assert frames[2].startswith("verifying") and frames[-1].startswith("verifying") and "2/2" in frames[-1]


@pytest.mark.parametrize("stream, wanted", [(io.StringIO(), True), (FakeTerminal(), False)])
def test_nothing_without_a_terminal_or_when_not_wanted(stream, wanted):
    progress = Progress(wanted, stream)
    assert not progress.enabled
    with progress.step("calibrating", total=3) as step:
        step.update(3)
    with progress.step("building"):
        time.sleep(0.3)
    assert stream.getvalue() == ""
    assert not QUIET.enabled


def test_a_line_never_wraps():
    """Wider than the terminal, the line would wrap and "\\r" would no longer redraw it in place."""
    term = FakeTerminal()
    with Progress(True, term).step("x" * 300):
        pass
    assert max(len(f) for f in term.getvalue().split(CLEAR_LINE)) < 80


# --- the command line on a terminal and on a pipe ------------------------------------------------------------------

def run_on_pty(args: list[str], cwd, columns: int = 120) -> tuple[int, str, str]:
    """Run mcucompile with stderr on a pseudo-terminal ``columns`` wide and stdout on a pipe: exit code, stdout,
    and everything the terminal received."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mcucompile", *args], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, cwd=cwd)
    os.close(slave)
    received = bytearray()

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    stdout, _ = proc.communicate(timeout=300)
    reader.join(10)
    os.close(master)
    return proc.returncode, stdout.decode(), received.decode(errors="replace")


def run_on_pipe(args: list[str], cwd) -> tuple[int, str, str]:
    res = subprocess.run([sys.executable, "-m", "mcucompile", *args], capture_output=True, text=True, cwd=cwd,
                         stdin=subprocess.DEVNULL, timeout=300)
    return res.returncode, res.stdout, res.stderr


def test_compile_shows_progress_on_a_terminal_only(tmp_path):
    args = [str(MNIST), "--calib", str(MNIST_CALIB), "-o", "out"]
    rc, stdout_tty, term = run_on_pty(args, tmp_path)
    assert rc == 0, term
    assert "calibrating" in term and "planning memory and patches" in term, term
    assert "\r" in term, "an updating line"
    rc, stdout_pipe, err = run_on_pipe(args, tmp_path)
    assert rc == 0, err
    assert stdout_pipe == stdout_tty, "stdout is the same with and without progress"
    assert "\r" not in err and "\x1b[" not in err and "planning" not in err, "no progress on a pipe"
    assert "warning" not in err
    rc, stdout_quiet, term = run_on_pty([*args, "--quiet"], tmp_path)
    assert rc == 0, term
    assert "\r" not in term and "calibrating" not in term and "planning" not in term, "--quiet: no progress"
    assert stdout_quiet == run_on_pipe([*args, "--quiet"], tmp_path)[1]


def test_verify_shows_its_build_run_and_references(tmp_path):
    args = ["verify", str(MNIST), "--calib", str(MNIST_CALIB), "-n", "3"]
    rc, stdout_tty, term = run_on_pty(args, tmp_path)
    assert rc == 0, term
    for step in ("building the library for this PC", "running 3 samples on this PC", "simulating",
                 "running the reference onnxruntime float"):
        assert step in term, (step, term)
    rc, stdout_pipe, err = run_on_pipe(args, tmp_path)
    assert rc == 0 and stdout_pipe == stdout_tty and "\r" not in err and "simulating" not in err
    rc, _, term = run_on_pty([*args, "--quiet"], tmp_path)
    assert rc == 0 and "\r" not in term and "building" not in term


def test_bench_shows_the_firmware_build_and_the_emulator_run(tmp_path):
    rc, stdout, term = run_on_pty(["bench", str(MNIST), "--calib", str(MNIST_CALIB), "--board", "qemu-m4"], tmp_path)
    assert rc == 0, term
    assert "building the firmware for qemu-m4" in term and "running 1 sample on qemu-m4 (QEMU)" in term, term
    assert "\x1b[" not in stdout and "\r" not in stdout, "progress never goes to stdout"
    assert "flash (ELF)" in stdout


def test_a_terminal_that_never_set_its_size_gets_80_columns():
    """A fresh pty reports 0 columns; the line must still show its label, not 10 characters of it."""
    from mcucompile.progress import _columns

    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as stream:
            assert os.get_terminal_size(stream.fileno()).columns == 0
            assert _columns(stream) == 80
    finally:
        os.close(master)
