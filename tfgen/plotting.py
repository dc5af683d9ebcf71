"""Sample grids as PNG or JPEG files (row labels for class-conditional grids), and figures for notebooks."""

from __future__ import annotations

import numpy as np

from tfgen.checks import fraction, int_at_least, one_of
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


#: File formats `save_grid` writes, by extension (Pillow's names).
GRID_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def grid_format(path) -> str:
    """Pillow's format name for `path`'s extension; a one-line ValueError for any other extension."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in GRID_FORMATS:
        raise ValueError(f"cannot write a grid to {str(path)!r}: use a file name ending in "
                         f"{', '.join(GRID_FORMATS)}")
    return GRID_FORMATS[suffix]


def render_grid(images, ncols: int | None = None, scale: int = 2, row_labels=None) -> np.ndarray:
    """A grid of images in [0, 1] as uint8 pixels (H, W, 1 or 3), upscaled `scale`×, nearest neighbour.

    row_labels: one string per grid row (a class index or name), written in a margin on the left.
    """
    grid = tile(images, ncols)
    grid = (np.rint(grid * 255)).astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)
    if row_labels is None:
        return grid
    return _label_rows(grid, list(map(str, row_labels)))


def _label_rows(grid: np.ndarray, labels: list) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    mode = "L" if grid.shape[-1] == 1 else "RGB"
    probe = ImageDraw.Draw(Image.new(mode, (1, 1)))
    boxes = [probe.textbbox((0, 0), text, font=font) for text in labels]
    margin = max(box[2] for box in boxes) + 8
    canvas = Image.new(mode, (grid.shape[1] + margin, grid.shape[0]), color=255 if mode == "L" else (255,) * 3)
    canvas.paste(Image.fromarray(grid[..., 0] if mode == "L" else grid), (margin, 0))
    draw, row_height = ImageDraw.Draw(canvas), grid.shape[0] / len(labels)
    for row, (text, box) in enumerate(zip(labels, boxes)):
        y = row * row_height + (row_height - (box[3] - box[1])) / 2 - box[1]
        draw.text((margin - 4 - box[2], y), text, font=font, fill=0 if mode == "L" else (0,) * 3)
    out = np.asarray(canvas)
    return out[..., None] if mode == "L" else out


def save_grid(images, path, ncols: int | None = None, scale: int = 2, row_labels=None) -> None:
    """Write a grid of images in [0, 1] to a PNG or JPEG file (by its extension; atomically), upscaled
    `scale`× for viewing, with `row_labels` (one per row) in a left margin when given."""
    # Pillow directly: no pyplot and no backend, so saving grids from a training callback
    # leaves a notebook's inline figures alone.
    from PIL import Image

    fmt = grid_format(path)
    grid = render_grid(images, ncols, scale, row_labels)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))


#: The widest a class-conditional grid gets: past this many images a class's block wraps onto more rows,
#: so a grid of 25 images per class is a readable 10-column block per class, not a 25-wide strip.
MAX_CLASS_COLUMNS = 10


def per_class_count(model, n: int):
    """Images per class in `sample_for_grid(model, n)`'s grid of class blocks (None for a model without labels)."""
    return max(1, n // model.num_classes) if model.accepts_labels else None


def class_blocks(images, num_classes: int, ncols: int) -> np.ndarray:
    """`images` of `num_classes` equal runs (one per class) padded with blank (white) tiles so that
    `tile(..., ncols)` starts each class on a new row: one block of rows per class."""
    images = np.asarray(images, dtype=np.float32)
    per_class = len(images) // num_classes
    rows = -(-per_class // ncols)
    blocks = np.ones((num_classes, rows * ncols, *images.shape[1:]), np.float32)
    blocks[:, :per_class] = images.reshape(num_classes, per_class, *images.shape[1:])
    return blocks.reshape(-1, *images.shape[1:])


def sample_for_grid(model, n: int, seed: int | None = None, labels=None, **options):
    """Samples for a grid, and its column count.

    Models that take labels (conditional models, diffusion trained with class
    conditioning) get one block of rows per class (unless labels are given), so a
    grid shows at a glance whether the model draws the class it was asked for;
    `n` is then rounded to a multiple of the number of classes (at least one
    image per class), a block is at most `MAX_CLASS_COLUMNS` wide, and blank tiles
    fill its last row. `class_row_labels` names the blocks. `options` go to `model.sample`.
    """
    per_class = per_class_count(model, n) if labels is None else None
    if per_class is not None:
        labels = np.repeat(np.arange(model.num_classes), per_class)
        # As few rows as `MAX_CLASS_COLUMNS` allows, filled evenly: 11 a class as 2 rows of 6, not 10 and 1.
        ncols = -(-per_class // -(-per_class // MAX_CLASS_COLUMNS))
        return class_blocks(model.sample(len(labels), labels=labels, seed=seed, **options), model.num_classes, ncols), ncols
    if labels is not None:
        return model.sample(len(labels), labels=labels, seed=seed, **options), None
    return model.sample(n, seed=seed, **options), None


def class_row_labels(model, labels=None, class_names=None, n: int | None = None):
    """Row labels for `sample_for_grid(model, n, labels=labels)`: the class (its name from `class_names`
    when given, else its index) on the first row of each class's block, "" on the block's other rows,
    when the grid has a block per class; else None. Without `n`: one row per class."""
    if labels is not None or not model.accepts_labels:
        return None
    if class_names is not None and len(class_names) != model.num_classes:
        raise ValueError(f"class_names must name the model's {model.num_classes} classes, got {len(class_names)}")
    names = list(class_names) if class_names is not None else [str(c) for c in range(model.num_classes)]
    rows = 1 if n is None else -(-per_class_count(model, n) // MAX_CLASS_COLUMNS)
    return [name if row == 0 else "" for name in names for row in range(rows)]


# ---------------------------------------------------------------------------- notebooks
# Figures for the teaching notebooks (and any interactive session). They draw with
# Matplotlib's pyplot, so they show inline in Jupyter; each returns its Figure.


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _imshow(ax, grid):
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _pixel_figure(width_px: float, height_px: float):
    """A figure of an exact size in screen pixels (at the current `figure.dpi`).

    Sized so that each image pixel covers exactly `scale` screen pixels: nearest-
    neighbour drawing at a non-integer scale makes the white lines between tiles
    come and go. Titles and labels fall outside; Jupyter's inline backend crops
    figures to their content (`bbox_inches="tight"`), so they still show.
    """
    import matplotlib.pyplot as plt

    dpi = plt.rcParams["figure.dpi"]
    return plt.figure(figsize=(width_px / dpi, height_px / dpi))


def show_grid(images, ncols: int | None = None, title: str | None = None, ax=None, scale: int = 2, pad: int = 1):
    """Draw (N, H, W, C) images in [0, 1] as one grid, each image pixel `scale` screen pixels wide.

    `pad=0` joins the images without white lines (e.g. a decoded latent manifold).
    With `ax`, draws into that axes at whatever size it has.
    """
    grid = tile(images, ncols, pad=pad)
    if ax is None:
        ax = _pixel_figure(grid.shape[1] * scale, grid.shape[0] * scale).add_axes((0, 0, 1, 1))
    _imshow(ax, grid)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def show_rows(rows, row_titles=None, col_titles=None, title: str | None = None, scale: int = 2):
    """Draw several image sequences, one row each: samples over epochs, interpolations,
    denoising trajectories, pixel-by-pixel generation.

    rows: a sequence of (K, H, W, C) arrays in [0, 1] (or one (R, K, H, W, C) array);
    rows may have different lengths and are drawn at the same scale, left-aligned.
    row_titles label rows on the left; col_titles (one per column of the longest
    row) label columns above the first row.
    """
    rows = [np.asarray(r, dtype=np.float32) for r in rows]
    if not rows or any(r.ndim != 4 for r in rows):
        raise ValueError("rows must be a non-empty sequence of (K, H, W, C) image arrays")
    for names, what in ((row_titles, len(rows)), (col_titles, max(len(r) for r in rows))):
        if names is not None and len(names) != what:
            raise ValueError(f"expected {what} titles, got {len(names)}")
    ncols = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    strip_w, strip_h, gap = ncols * (w + 1) + 1, h + 2, 3  # image pixels, as `tile` pads them
    top = 14 if col_titles is not None else 0  # screen pixels for the column titles
    fig_w, fig_h = strip_w * scale, len(rows) * (strip_h + gap) * scale + top
    fig = _pixel_figure(fig_w, fig_h)
    for i, row in enumerate(rows):
        bottom = (len(rows) - 1 - i) * (strip_h + gap) * scale
        ax = fig.add_axes((0, bottom / fig_h, 1, strip_h * scale / fig_h))
        _imshow(ax, tile(row, ncols=len(row)))
        ax.set_xlim(-0.5, strip_w - 0.5)
        if row_titles is not None:
            ax.set_ylabel(str(row_titles[i]), rotation=0, ha="right", va="center", fontsize=9)
        if i == 0 and col_titles is not None:
            for j, name in enumerate(col_titles):
                ax.text(1 + j * (w + 1) + (w - 1) / 2, -1, str(name), ha="center", va="bottom", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10, y=1.0, va="bottom")
    return fig


def plot_history(history, keys=None, ax=None, title: str | None = None, xlabel: str = "epoch",
                 logy: bool = False):
    """Training curves from a Keras `History` (or a dict of name -> values).

    Each `val_` series is drawn dashed in its training series' colour. `keys`
    picks the (training) series to draw; default: all.
    """
    series = dict(getattr(history, "history", history))
    keys = list(keys) if keys is not None else [k for k in series if not k.startswith("val_")]
    missing = [k for k in keys if k not in series]
    if missing:
        raise KeyError(f"no series {missing} in the history; it has {sorted(series)}")
    ax = _new_axes(ax, (5, 3))
    for key in keys:
        values = np.asarray(series[key], dtype=float)
        (line,) = ax.plot(np.arange(1, len(values) + 1), values, label=key)
        if f"val_{key}" in series:
            val = np.asarray(series[f"val_{key}"], dtype=float)
            ax.plot(np.arange(1, len(val) + 1), val, "--", color=line.get_color(), label=f"val_{key}")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def plot_latent_map(z, labels, ax=None, title: str | None = None, num_classes: int | None = None,
                    point_size: float = 3.0):
    """Scatter 2-D latent codes coloured by class label (e.g. a VAE with latent_dim=2)."""
    z = np.asarray(z, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"expected 2-D codes of shape (N, 2), got {z.shape}: train with latent_dim=2 to draw a map")
    if len(labels) != len(z):
        raise ValueError(f"{len(z)} codes but {len(labels)} labels")
    import matplotlib.pyplot as plt

    num_classes = num_classes or int(labels.max()) + 1
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20", num_classes)
    ax = _new_axes(ax, (4.5, 4))
    for c in range(num_classes):
        pts = z[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=point_size, color=cmap(c), label=str(c), alpha=0.7, linewidths=0)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def latent_grid(n: int = 15, coverage: float = 0.95) -> np.ndarray:
    """An n×n grid of 2-D latent points at Gaussian quantiles, shape (n·n, 2), float32.

    Points are evenly spaced in probability, not in z: each axis runs over the
    central `coverage` of N(0, 1), so the grid covers where the prior puts its mass
    (Kingma & Welling 2014, fig. 4). Row-major with z₂ decreasing down the rows
    and z₁ increasing along them, so `show_grid(model.decode(latent_grid(n)), ncols=n)`
    is oriented like `plot_latent_map`.
    """
    from statistics import NormalDist

    n = int_at_least(n, "n", 2)
    coverage = fraction(coverage, "coverage", closed=False)
    tail = (1.0 - coverage) / 2.0
    axis = np.array([NormalDist().inv_cdf(p) for p in np.linspace(tail, 1.0 - tail, n)], dtype=np.float32)
    z1, z2 = np.meshgrid(axis, axis[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1)


def interpolate(z0, z1, steps: int = 8, method: str = "slerp") -> np.ndarray:
    """Points from z0 to z1 (both included): (steps, d) for vectors, (B·steps, d) for (B, d) batches.

    "slerp" follows the great circle (White 2016, "Sampling Generative Networks"):
    a straight line between two Gaussian draws passes through points of unusually
    small norm, which the model rarely saw in training; "linear" is the straight line.
    Batched output is row-major, so `show_grid(decode(z), ncols=steps)` shows one
    interpolation per row.
    """
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    if z0.shape != z1.shape or z0.ndim not in (1, 2):
        raise ValueError(f"z0 and z1 must have the same shape (d,) or (B, d), got {z0.shape} and {z1.shape}")
    steps = int_at_least(steps, "steps", 2)
    one_of(method, ("slerp", "linear"), "interpolation method")
    a, b = np.atleast_2d(z0), np.atleast_2d(z1)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]  # (1, steps, 1)
    linear = (1.0 - t) * a[:, None] + t * b[:, None]
    if method == "linear":
        out = linear
    else:
        cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        omega = np.arccos(np.clip(cos, -1.0, 1.0))[:, None, None]
        sin = np.sin(omega)
        # Nearly parallel vectors: the great circle is the straight line.
        safe = np.where(sin > 1e-6, sin, 1.0)
        slerp = (np.sin((1.0 - t) * omega) * a[:, None] + np.sin(t * omega) * b[:, None]) / safe
        out = np.where(sin > 1e-6, slerp, linear)
    out = out.astype(np.float32)
    return out[0] if z0.ndim == 1 else out.reshape(-1, a.shape[1])


def raster_frames(images, counts, fill: float = 0.5) -> np.ndarray:
    """Snapshots of images drawn pixel by pixel in raster order: (N, len(counts), H, W, C).

    Frame j shows the first `counts[j]` pixels (row by row, left to right,
    channels innermost) and `fill` (grey) where nothing has been drawn yet. For an
    autoregressive sample this is exactly the sampler's canvas after that many
    steps, since pixel i is drawn from the pixels before it only.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, H, W, C), got {images.shape}")
    order = np.arange(int(np.prod(images.shape[1:]))).reshape(images.shape[1:])
    return np.stack([np.where(order < k, images, np.float32(fill)) for k in counts], axis=1)
