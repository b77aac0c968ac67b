"""Firmware projects for a board: PlatformIO (platformio.ini) and plain Make, around the C library."""

from .firmware import cpu_flags, write_project

__all__ = ["cpu_flags", "write_project"]
