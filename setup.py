"""Package discovery for setuptools; everything else is in pyproject.toml.

Every package under compiler/ (a folder with an __init__.py) ships as ``mcucompile.<folder>``: a new
package needs no edit anywhere. This lives here because pyproject.toml's ``packages.find`` names a
package after its folder and cannot add the ``mcucompile.`` prefix that compiler/ maps to.
"""

from setuptools import find_packages, setup

setup(packages=["mcucompile", *(f"mcucompile.{name}" for name in find_packages("compiler")),
                "mcucompile._runtime_c", "mcucompile._boards"])
