"""PlatformIO dev-platform class for mcucompile's emulated boards (nothing beyond the defaults)."""

from platformio.public import PlatformBase


class McucompileqemuPlatform(PlatformBase):
    pass
