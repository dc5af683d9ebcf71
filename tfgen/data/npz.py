"""`npz:FILE` — images in a NumPy `.npz` file, for people who have arrays.

The file holds either

* ``images`` — (N, H, W) or (N, H, W, C) with C = 1 or 3, uint8 0–255 or float
  in [0, 1] — and optionally ``labels`` (N,) of integers >= 0; the test split is
  then held out by `tfgen.data.split` (10% of each class by default, the same
  split every time); or
* ``x_train``, ``x_test`` and optionally ``y_train``, ``y_test`` — the two splits
  as given (the layout of tfgen's own `mnist_bundled.npz`).

Without labels the dataset is unlabelled (0 classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgen.data.split import DEFAULT_HOLDOUT, holdout_indices

PREFIX = "npz:"


def _as_uint8(where: str, key: str, images: np.ndarray) -> np.ndarray:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(f"{where}: {key!r} must have shape (N, H, W) or (N, H, W, C) with C = 1 or 3, "
                         f"got {images.shape}")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{where}: {key!r} must be uint8 (0-255) or float in [0, 1], got {images.dtype}")
    if images.size and not (np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0):
        raise ValueError(f"{where}: {key!r} is float but not in [0, 1] (min {np.nanmin(images):.3g}, "
                         f"max {np.nanmax(images):.3g}, or not finite): scale the pixels to [0, 1] or store uint8")
    return np.rint(images * 255.0).astype(np.uint8)


def _labels(where: str, key: str, labels, n: int) -> np.ndarray:
    if labels is None:
        return np.zeros(n, np.int32)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or (n and labels.min() < 0):
        raise ValueError(f"{where}: {key!r} must be {n} integers >= 0 (one per image), "
                         f"got {labels.dtype} with shape {labels.shape}")
    return labels.astype(np.int32)


def read_npz(path, split: str, holdout: float = DEFAULT_HOLDOUT) -> tuple:
    """(uint8 images (N, H, W[, C]), int32 labels, labelled) of one split of an `.npz` file."""
    where = f"{PREFIX}{path}"
    if not Path(path).is_file():
        raise ValueError(f"{where}: file does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # not a zip, or a truncated one
        raise ValueError(f"{where}: not a readable .npz file ({type(err).__name__}: {err})") from None
    with archive:
        keys = set(archive.files)
        if "images" in keys:
            images = _as_uint8(where, "images", archive["images"])
            labelled = "labels" in keys
            labels = _labels(where, "labels", archive["labels"] if labelled else None, len(images))
            chosen = holdout_indices([str(i) for i in range(len(images))], labels, split, holdout)
            return images[chosen], labels[chosen], labelled
        if {"x_train", "x_test"} <= keys:
            images = _as_uint8(where, f"x_{split}", archive[f"x_{split}"])
            labelled = f"y_{split}" in keys
            return images, _labels(where, f"y_{split}", archive[f"y_{split}"] if labelled else None,
                                   len(images)), labelled
    raise ValueError(f"{where}: expected an array 'images' (and optionally 'labels'), or 'x_train' and 'x_test'; "
                     f"found {', '.join(sorted(keys)) or 'no arrays'}")
