"""Progress on the terminal: one updating line on stderr for the steps that can take more than a second.

Every long step (calibration, the patch search, firmware and host builds, emulator runs, verify over many
samples, references, bench) reports through this module; no other module writes terminal control codes.
A step shows its name and either ``count/total`` (with a bar) or, when its length is unknown (a build, an
emulator run), the seconds elapsed, redrawn a few times a second. The line is cleared when the step ends, so
what the command prints afterwards (stdout and stderr) is exactly what it prints without progress.

Progress is shown only when it was wanted (``CompileOptions.progress``; ``--quiet`` turns it off) and the
stream is a terminal: a pipe, a file or a CI log never gets any of it.

Usage::

    progress = Progress(options.progress)
    with progress.step("building firmware"):          # elapsed seconds
        build_firmware(project)
    with progress.step("simulating", total=len(x)) as step:
        for i, sample in enumerate(x):
            ...
            step.update(i + 1)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

#: Seconds between redraws of the elapsed time (and the least time between two count redraws).
REDRAW_SECONDS = 0.25
BAR_WIDTH = 24
# Start of line, then erase to its end (VT100; every terminal emulator in use understands it).
CLEAR_LINE = "\r\x1b[K"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _columns(stream: TextIO) -> int:
    """The terminal's width: a line longer than it would wrap, and "\\r" would no longer redraw it in place."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80
    return columns if columns > 0 else 80  # a terminal that never set its size (a fresh pty) says 0


class Progress:
    """Where the progress of a command goes: one line on ``stream`` (default stderr), redrawn in place.

    Parameters
    ----------
    wanted : False (``--quiet``, ``progress=False``) shows nothing
    stream : the terminal (default ``sys.stderr`` at the time of the call); nothing is shown unless it is one
    """

    def __init__(self, wanted: bool = True, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(wanted) and _is_terminal(self.stream)
        self._lock = threading.Lock()
        self._active: list[Step] = []  # nested steps: the innermost is drawn
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def step(self, label: str, total: int | None = None) -> "Step":
        """A step to use as a context manager: ``total`` items (``update`` / ``advance`` count them) or,
        with ``total`` None, a step of unknown length whose elapsed seconds are shown."""
        return Step(self, label, total)

    # -- drawing (only ever called with the lock held) ------------------------------------------------

    def _draw(self) -> None:
        if not self._active:
            return
        line = self._active[-1].line()
        width = max(_columns(self.stream) - 1, 10)
        if len(line) > width:
            line = line[: width - 3] + "..."
        try:
            self.stream.write(CLEAR_LINE + line)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away (closed, hung up): progress is not worth an error
            self.enabled = False

    def _clear(self) -> None:
        try:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def _enter(self, step: "Step") -> None:
        if not self.enabled:
            return
        with self._lock:
            self._active.append(step)
            self._draw()
            if self._ticker is None:
                self._stop.clear()
                self._ticker = threading.Thread(target=self._tick, name="mcucompile-progress", daemon=True)
                self._ticker.start()

    def _exit(self, step: "Step") -> None:
        if not self.enabled and not self._active:
            return
        with self._lock:
            if step in self._active:
                self._active.remove(step)
            if self._active:
                self._draw()  # the enclosing step again
                return
            self._clear()
            ticker, self._ticker = self._ticker, None
            self._stop.set()
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join()

    def _update(self, step: "Step", force: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if self._active and self._active[-1] is step and (force or now - step.drawn >= REDRAW_SECONDS):
                step.drawn = now
                self._draw()

    def _tick(self) -> None:
        """Redraw the innermost step a few times a second, so its elapsed time moves while it blocks."""
        while not self._stop.wait(REDRAW_SECONDS):
            with self._lock:
                if self.enabled:
                    self._draw()


class Step:
    """One step of a :class:`Progress` (made by ``Progress.step``): a context manager; ``update(done)``
    and ``advance(n)`` count its items."""

    def __init__(self, progress: Progress, label: str, total: int | None):
        self.progress, self.label = progress, label
        self.total = None if total is None else max(int(total), 0)
        self.done = 0
        self.start = time.monotonic()
        self.drawn = 0.0

    def __enter__(self) -> "Step":
        self.start = time.monotonic()
        self.progress._enter(self)
        return self

    def __exit__(self, *exc) -> None:
        self.progress._exit(self)

    def update(self, done: int) -> None:
        """``done`` of ``total`` items finished (redrawn at most a few times a second, and at the end)."""
        self.done = int(done)
        self.progress._update(self, force=self.total is not None and self.done >= self.total)

    def advance(self, n: int = 1) -> None:
        """``n`` more items finished."""
        self.update(self.done + n)

    def line(self) -> str:
        """The text of the progress line, e.g. "simulating [######......] 12/40 3.1 s"."""
        elapsed = f"{time.monotonic() - self.start:.1f} s"
        if self.total:
            fill = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            bar = "#" * fill + "." * (BAR_WIDTH - fill)
            return f"{self.label} [{bar}] {self.done}/{self.total} {elapsed}"
        return f"{self.label} ... {elapsed}"


#: Shows nothing: for callers that pass no progress.
QUIET = Progress(False)
