"""Firmware projects for a board: PlatformIO (platformio.ini) and plain Make, around the C library."""

from .firmware import cpu_flags, project_files

__all__ = ["cpu_flags", "project_files"]
