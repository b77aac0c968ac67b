"""Real-photo inputs offline: seeded random crops of scikit-image's sample photos, resized to a model's input.

Used by bench/calibration.py and the calibration tests as "real inputs" for image models that have no
data set offline (VWW at 96x96x3; ResNet-8 at 32x32x3 as "real-ish": these are not CIFAR-10 images).

Calibration and test crops never share a pixel: every photo is cut in two halves (left | right along its
longer side), calibration crops come from the first half and test crops from the second. Crops are
square, 35-100% of the half's shorter side, at a random position, flipped left-right with probability
1/2, resized with anti-aliasing (scikit-image) and returned as float32 in [0, 1] (the MLPerf Tiny VWW
preprocessing: its int8 TFLite input has scale 1/255, zero point -128, i.e. real = (q + 128) / 255).
Grey photos are repeated to RGB. Deterministic for a given seed (numpy's default_rng).
"""

from __future__ import annotations

import numpy as np

#: scikit-image sample photos that ship with the wheel (no download): real camera images of scenes
#: and objects; the textures and scans add the low-contrast and high-frequency content a camera sees
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "stereo_motorcycle", "clock", "coins", "moon",
          "brick", "grass", "gravel", "page", "text", "hubble_deep_field", "immunohistochemistry", "cell")
SPLITS = ("calib", "test")


def load_photo(name: str) -> np.ndarray:
    """One photo as float [H, W, 3] in [0, 1]."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3].astype(np.float32) / 255.0


def _half(img: np.ndarray, split: str) -> np.ndarray:
    """The calibration (first) or test (second) half of a photo, cut across its longer side."""
    h, w = img.shape[:2]
    if w >= h:
        return img[:, : w // 2] if split == "calib" else img[:, w // 2 :]
    return img[: h // 2] if split == "calib" else img[h // 2 :]


def photo_crops(n: int, size: tuple[int, int] = (96, 96), split: str = "calib", seed: int = 0,
                photos: tuple[str, ...] = PHOTOS) -> np.ndarray:
    """``n`` crops [n, size[0], size[1], 3] float32 in [0, 1] (NHWC) from the ``split`` half of each photo.

    Parameters
    ----------
    n : number of crops (cycled over the photos, so each photo gives about n / len(photos))
    size : (height, width) of the model input
    split : "calib" or "test": which half of every photo the crops come from (never the same pixels)
    seed : crops, scales and flips are drawn from ``numpy.random.default_rng((seed, split index))``
    photos : skimage.data names
    """
    from skimage.transform import resize

    if split not in SPLITS:
        raise ValueError(f"split {split!r}: give one of {SPLITS}")
    rng = np.random.default_rng((seed, SPLITS.index(split)))
    halves = [_half(load_photo(p), split) for p in photos]
    out = np.empty((n, size[0], size[1], 3), np.float32)
    for i in range(n):
        src = halves[i % len(halves)]
        h, w = src.shape[:2]
        side = int(round(min(h, w) * rng.uniform(0.35, 1.0)))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = src[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = resize(crop, size, order=1, anti_aliasing=True, preserve_range=True).clip(0.0, 1.0)
    return out
