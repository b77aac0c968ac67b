"""Package discovery for setuptools; everything else is in pyproject.toml.

Every folder under compiler/ ships as ``mcucompile.<folder>``: those with an __init__.py as packages, the data
folders (templates, the QEMU platform, build-system integration files) as namespace packages, so setuptools
knows each folder it copies and a new package or data folder needs no edit anywhere. This lives here because
pyproject.toml's ``packages.find`` names a package after its folder and cannot add the ``mcucompile.`` prefix
that compiler/ maps to.
"""

from setuptools import find_namespace_packages, setup

setup(packages=["mcucompile", *(f"mcucompile.{name}" for name in find_namespace_packages("compiler", exclude=["*__pycache__*"])),
                "mcucompile._runtime_c", "mcucompile._runtime_c.include", "mcucompile._runtime_c.src",
                "mcucompile._boards"])
