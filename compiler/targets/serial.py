"""Read a firmware's result lines from a serial port (a NUCLEO's ST-LINK virtual COM port, or any
pyserial URL such as socket://127.0.0.1:4444 for an emulated UART)."""

from __future__ import annotations

import time

from ..errors import UserError
from .firmware import FirmwareRun, parse_lines

BAUD = 115200


def open_port(url: str, wait: float = 5.0):
    """Open a serial port (retrying for ``wait`` seconds while it appears, e.g. after a reset)."""
    try:
        import serial
    except ImportError:
        raise UserError("reading a board over --port needs pyserial: pip install 'mcucompile[serial]'") from None
    deadline = time.monotonic() + wait
    while True:
        try:
            return serial.serial_for_url(url, baudrate=BAUD, timeout=0.5)
        except Exception as e:  # noqa: BLE001 - pyserial raises SerialException / OSError / ValueError
            if time.monotonic() >= deadline:
                raise UserError(f"cannot open port {url} ({e}); check the board is connected (ls /dev/ttyACM*) "
                                "and that you may open it (dialout group)") from None
            time.sleep(0.1)


def read_run(port, timeout: float = 120.0, board: str = "board") -> FirmwareRun:
    """Collect lines until 'MCU END' or 'MCU FAULT'; a fault or silence past ``timeout`` is an error."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = port.read(max(1, port.in_waiting))
        except Exception:  # noqa: BLE001 - the other end went away (an emulator exiting): keep what came
            break
        if chunk:
            buf.extend(chunk)
            text = buf.decode(errors="replace")
            if any(marker in text and "\n" in text.split(marker)[-1] for marker in ("MCU END", "MCU FAULT")):
                break
    text = buf.decode(errors="replace").replace("\r", "")
    run = parse_lines(text)
    if run.fault:
        raise UserError(f"firmware faulted on {board}: {run.fault}")
    if run.status is None:
        got = f"last output: {text[-200:]!r}" if text else "nothing was received"
        raise UserError(f"no complete result from {board} within {timeout:.0f} s ({got}); is the firmware flashed, "
                        "the board reset, and the port the board's (115200 baud)?")
    return run
