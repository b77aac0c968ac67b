"""Build a generated firmware project with make + arm-none-eabi-gcc and run it in QEMU; parse its lines."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..boards import Board
from ..errors import UserError

APT_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"


def require_tool(tool: str, package_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise UserError(f"'{tool}' not found on PATH; install it: {package_hint}")
    return path


@dataclass(frozen=True)
class ElfSize:
    text: int
    data: int
    bss: int

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def sram_bytes(self) -> int:
        return self.data + self.bss


def build_firmware(project: Path, jobs: int = 2) -> Path:
    """Run the project's Makefile; returns the ELF."""
    require_tool("arm-none-eabi-gcc", APT_HINT)
    require_tool("make", "apt-get install make")
    res = subprocess.run(["make", "-C", str(project), f"-j{jobs}", "build/firmware.elf"], capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout)[-3000:]
        if "will not fit in region" in tail or "overflowed by" in tail:
            m = re.search(r"region `(\w+)' overflowed by (\d+) bytes", tail)
            if m and m.group(1) == "RAM":
                # the fit check compares the arena alone with the board's SRAM; the linker adds the stack
                # (boards/<board>.json stack_bytes) and the firmware's own variables
                over = int(m.group(2))
                raise UserError(f"firmware does not fit the board's SRAM (RAM overflowed by {over:,} B: the model's "
                                "arena, the stack and the firmware's variables together); try an --sram-limit at "
                                f"least {over:,} B below the model's peak SRAM, or a board with more SRAM")
            what = f"{m.group(1)} overflowed by {int(m.group(2)):,} B" if m else "memory region overflow"
            raise UserError(f"firmware does not fit the board ({what}); try fewer test inputs (-n) or a board "
                            "with more flash")
        raise RuntimeError(f"firmware build failed in {project}:\n{tail}")
    return project / "build" / "firmware.elf"


def elf_size(elf: Path) -> ElfSize:
    size = require_tool("arm-none-eabi-size", APT_HINT)
    out = subprocess.run([size, "-B", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return ElfSize(text, data, bss)


@dataclass
class FirmwareRun:
    outputs: dict[int, bytes] = field(default_factory=dict)
    layers: dict[int, int] = field(default_factory=dict)
    total: int | None = None
    times: dict[int, int] = field(default_factory=dict)  # sample -> the whole invoke (MCU TIME)
    unit: str = ""
    status: int | None = None
    exit_code: int | None = None
    fault: str | None = None
    log: str = ""


def parse_lines(text: str) -> FirmwareRun:
    run = FirmwareRun(log=text)
    partial = ""
    for raw in text.splitlines():
        line = partial + raw if partial else raw
        partial = ""
        parts = line.split()
        if not parts or parts[0] != "MCU":
            continue
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "BEGIN":
            m = re.search(r"unit=(\w+)", line)
            run.unit = m.group(1) if m else ""
        elif kind == "OUT" and len(parts) >= 4:
            run.outputs[int(parts[2])] = bytes.fromhex("".join(parts[3:]))
        elif kind == "LAYER":
            run.layers[int(parts[2])] = int(parts[3])
        elif kind == "TIME" and len(parts) >= 4:
            run.times[int(parts[2])] = int(parts[3])
        elif kind == "TOTAL":
            run.total = int(parts[2])
        elif kind == "END":
            run.status = int(parts[2])
        elif kind == "FAULT":
            run.fault = " ".join(parts[2:])
    return run


def run_qemu(elf: Path, board: Board, timeout: float = 300.0) -> FirmwareRun:
    """Run ``elf`` on the board's QEMU machine with semihosting and -icount shift=0 (deterministic counts)."""
    qemu = require_tool("qemu-system-arm", "apt-get install qemu-system-arm")
    cmd = [qemu, "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise UserError(f"firmware on {board.name} did not finish within {timeout:.0f} s (hang?); "
                        f"last output: {(e.stdout or b'')[-200:].decode(errors='replace')!r}") from None
    text = res.stdout.decode(errors="replace")
    run = parse_lines(text)
    run.exit_code = res.returncode
    if run.fault:
        raise UserError(f"firmware faulted on {board.name}: {run.fault}")
    if res.returncode != 0 or run.status is None:
        raise UserError(f"firmware on {board.name} exited with code {res.returncode} and status {run.status}: "
                        f"{text[-300:]!r}")
    return run


def outputs_as_arrays(run: FirmwareRun, samples: int, output_sizes: list[int]) -> list[np.ndarray]:
    per = sum(output_sizes)
    rows = []
    for s in range(samples):
        raw = run.outputs.get(s)
        if raw is None or len(raw) != per:
            raise RuntimeError(f"firmware printed no complete output for sample {s}")
        rows.append(np.frombuffer(raw, np.int8))
    arr = np.stack(rows)
    outs, start = [], 0
    for size in output_sizes:
        outs.append(arr[:, start : start + size].copy())
        start += size
    return outs
