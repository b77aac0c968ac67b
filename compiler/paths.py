"""Where the C runtime and the board files are, in a source checkout and in an installed wheel."""

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _data_dir(installed_name: str, checkout_name: str) -> Path:
    installed = _PKG / installed_name
    if installed.is_dir():
        return installed
    return _PKG.parent / checkout_name


def runtime_dir() -> Path:
    """Folder holding the portable C runtime (``include/`` and ``src/``)."""
    return _data_dir("_runtime_c", "runtime_c")


def boards_dir() -> Path:
    """Folder holding one JSON file per board."""
    return _data_dir("_boards", "boards")


def integration_dir() -> Path:
    """Folder holding the build-system integrations: the CMake module (``mcucompile.cmake``,
    ``mcucompileConfig.cmake``) and the PlatformIO extra script (``mcucompile_platformio.py``)."""
    return _PKG / "project" / "integration"
