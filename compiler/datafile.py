"""Reading the user's sample arrays (calibration and test data): .npy, or .npz with ``x`` (and ``y``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def read_arrays(path: str | Path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) from a .npy (x only) or .npz (key ``x`` or the first array; labels ``y`` when present).

    ``what`` names the data in messages ("calibration data", "test data"). The file kind is taken from its
    first bytes, not its name, so a text or image file gets a message about what it is, not numpy's."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} not found: {path}")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a file; give a .npy or .npz array")
    with open(path, "rb") as f:
        head = f.read(6)
    hint = "give a .npy or .npz numpy array [N, ...] in the model's input layout (numpy.save / numpy.savez)"
    if head.startswith(ZIP_MAGIC[:4]):
        try:
            with np.load(path, allow_pickle=False) as z:
                if not z.files:
                    raise UserError(f"{what} {path} holds no arrays; {hint}")
                x = z["x"] if "x" in z.files else z[z.files[0]]
                y = z["y"] if "y" in z.files else None
        except UserError:
            raise
        except (ValueError, OSError, EOFError, KeyError) as e:
            raise UserError(f"cannot read {what} {path} ({' '.join(str(e).split())[:120]}); {hint}") from None
    elif head == NPY_MAGIC:
        try:
            x, y = np.load(path, allow_pickle=False), None
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"cannot read {what} {path} ({' '.join(str(e).split())[:120]}); {hint}") from None
    else:
        raise UserError(f"{what} {path} is not a numpy .npy/.npz file; {hint}")
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise UserError(f"{what} {path} has dtype {x.dtype}; it must be numeric")
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "iu" or y.ndim != 1 or len(y) != len(x):
            raise UserError(f"labels 'y' in {what} {path} must be {len(x)} integer class indices, one per sample "
                            f"(got dtype {y.dtype}, shape {list(y.shape)})")
    return x, y


def as_samples(x: np.ndarray, input_shape: tuple[int, ...], what: str, path: str | Path) -> np.ndarray:
    """[N, *input_shape[1:]] float32 (a single sample of the input shape is accepted), finite, not empty."""
    want = tuple(input_shape[1:])
    if x.shape == tuple(input_shape):
        x = x.reshape((1,) + want)
    if x.ndim != len(input_shape) or tuple(x.shape[1:]) != want:
        raise UserError(
            f"{what} {path} has shape {list(x.shape)}, but the model input is {list(input_shape)}; "
            f"give an array of shape [N, {', '.join(map(str, want))}] in the model's input layout")
    if len(x) == 0:
        raise UserError(f"{what} {path} is empty")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise UserError(f"{what} {path} contains NaN or Inf values")
    return x
