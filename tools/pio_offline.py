#!/usr/bin/env python3
"""Set up PlatformIO to build offline (no registry): a private core dir with

- a toolchain package `toolchain-gccarmnoneeabi` whose bin/ links to Debian's arm-none-eabi-* tools,
- a `tool-scons` package made from PyPI's scons (pip install --no-deps --target),
- `.pio-link` files naming owner "platformio" (PlatformIO ignores links with owner null).

Real users with internet need none of this. Prints the environment variables to export; the tests use
`setup(dir)` directly. Usage: python tools/pio_offline.py [DIR]   (default ~/.cache/mcucompile/pio)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCONS_VERSION = "4.11.1"
TOOLS = ("gcc", "g++", "as", "ld", "ar", "objcopy", "objdump", "size", "nm", "ranlib", "gcc-ar", "gcc-ranlib",
         "gcc-nm", "readelf", "strip", "cpp")


def _link(core: Path, name: str, target: Path) -> None:
    spec = {"owner": "platformio", "id": None, "name": name, "requirements": None, "uri": f"symlink://{target}"}
    (core / "packages").mkdir(parents=True, exist_ok=True)
    (core / "packages" / f"{name}.pio-link").write_text(json.dumps({"cwd": str(target.parent), "spec": spec}))


def setup(root: Path) -> dict[str, str]:
    """Prepare ``root``; returns the environment variables PlatformIO needs."""
    root = root.resolve()
    core = root / "core"
    tc = root / "toolchain-gccarmnoneeabi"
    (tc / "bin").mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        src = shutil.which(f"arm-none-eabi-{tool}")
        dst = tc / "bin" / f"arm-none-eabi-{tool}"
        if src and not dst.exists():
            dst.symlink_to(src)
    if not (tc / "bin" / "arm-none-eabi-gcc").exists():
        raise SystemExit("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    (tc / "package.json").write_text(json.dumps({"name": "toolchain-gccarmnoneeabi", "version": "1.120201.0", "system": "*"}))
    scons = root / "tool-scons"
    if not (scons / "SCons").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(scons),
                        f"scons=={SCONS_VERSION}"], check=True)
    (scons / "scons.py").write_text("import sys\nfrom SCons.Script import main\n\nif __name__ == '__main__':\n    sys.exit(main())\n")
    (scons / "package.json").write_text(json.dumps({"name": "tool-scons", "version": "4.41101.0", "system": "*"}))
    _link(core, "toolchain-gccarmnoneeabi", tc)
    _link(core, "tool-scons", scons)
    return {"PLATFORMIO_CORE_DIR": str(core), "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
            "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true", "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "36500"}


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache" / "mcucompile" / "pio"
    for k, v in setup(target).items():
        print(f"export {k}={v}")
    os.sys.exit(0)
