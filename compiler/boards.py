"""Board descriptions (boards/*.json): core, memory sizes and addresses, PlatformIO id, QEMU machine."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import UserError
from .paths import boards_dir


@dataclass(frozen=True)
class Board:
    name: str
    core: str
    fpu: str
    dsp: bool
    mve: bool
    clock_hz: int
    flash_bytes: int
    sram_bytes: int
    flash_base: str
    sram_base: str
    platformio_board: str | None
    qemu_machine: str | None
    aliases: tuple[str, ...]
    description: str
    console: dict | None = None  # UART the firmware prints on (NUCLEO: the ST-LINK virtual COM port)
    #: stack the linker script reserves after .data/.bss; a 16 KB core (qemu-m0) cannot spare the default 4 KB
    stack_bytes: int = 4096
    #: PlatformIO platform of a real board (its `platform =`), e.g. ststm32, nordicnrf52
    platformio_platform: str = "ststm32"

    @property
    def arena_budget_bytes(self) -> int:
        """SRAM the model's arena may take: the board's SRAM less the stack its firmware reserves."""
        return self.sram_bytes - self.stack_bytes

    @property
    def arch(self) -> str:
        """The core's Arm architecture (gcc's -march spelling): "armv6-m" gets no Thumb-2 / Armv7-M code
        (no IT blocks, no CBZ, no unaligned word loads, no DWT cycle counter), "host" for this PC."""
        return CORE_ARCH[self.core]


#: Arm architecture per core (the cores boards/ uses)
CORE_ARCH = {
    "host": "host",
    "cortex-m0": "armv6-m",
    "cortex-m0plus": "armv6-m",
    "cortex-m4": "armv7e-m",
    "cortex-m7": "armv7e-m",
    "cortex-m33": "armv8-m.main",
    "cortex-m55": "armv8.1-m.main",
}


HOST = Board("host", "host", "none", False, False, 0, 1 << 40, 1 << 40, "0x0", "0x0", None, None, (), "This PC (gcc)")


def all_boards() -> dict[str, Board]:
    out = {}
    for path in sorted(boards_dir().glob("*.json")):
        d = json.loads(path.read_text())
        d["aliases"] = tuple(d.get("aliases", ()))
        out[d["name"]] = Board(**d)
    return out


def get_board(name: str) -> Board:
    if name == "host":
        return HOST
    boards = all_boards()
    for b in boards.values():
        if name == b.name or name in b.aliases:
            return b
    known = ", ".join(sorted(list(boards) + [a for b in boards.values() for a in b.aliases]))
    raise UserError(f"unknown board '{name}'; known boards: {known} (see 'mcucompile boards')")
