"""Sample grids as PNG files."""

from __future__ import annotations

import numpy as np

from tfgen.io import atomic_path


def tile(images, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile (N, H, W, C) images in [0, 1] into one (rows·H, cols·W, C) array with padding."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, H, W, C), got {images.shape}")
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = image
    return grid


def save_grid(images, path, ncols: int | None = None, scale: int = 2) -> None:
    """Write a grid of images in [0, 1] to a PNG file (atomically), upscaled `scale`× for viewing."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image

    grid = tile(images, ncols)
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")


def sample_for_grid(model, n: int, seed: int | None = None, labels=None):
    """Samples for a grid, and its column count.

    Conditional models get one row per class (unless labels are given), so a grid
    shows at a glance whether the model draws the digit it was asked for.
    """
    if labels is None and getattr(model, "conditional", False):
        per_class = max(1, n // model.num_classes)
        labels = np.repeat(np.arange(model.num_classes), per_class)
        return model.sample(len(labels), labels=labels, seed=seed), per_class
    if labels is not None:
        return model.sample(len(labels), labels=labels, seed=seed), None
    return model.sample(n, seed=seed), None
