"""Flash a generated firmware project onto a real board with PlatformIO (``pio run -t upload``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import UserError


def flash_with_platformio(project: Path, board_name: str, timeout: float = 900.0) -> None:
    """Build and upload ``project`` (its platformio.ini names the board); UserError with the tail of
    PlatformIO's output when it fails."""
    pio = shutil.which("pio") or shutil.which("platformio")
    if pio is None:
        raise UserError("flashing needs PlatformIO: pip install platformio (or flash the project in "
                        f"{project} yourself and pass --no-upload)")
    try:
        res = subprocess.run([pio, "run", "-t", "upload"], cwd=project, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"'pio run -t upload' did not finish within {timeout:.0f} s for {board_name}; check the "
                        "board's connection and its debug probe") from None
    if res.returncode != 0:
        tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
        raise UserError(f"'pio run -t upload' failed for {board_name} ({' | '.join(tail)}); "
                        "check the board is connected and PlatformIO can install platform ststm32")
