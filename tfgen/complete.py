"""Masks for completing a given image: what `model.complete(images, mask, ...)` takes, checked once for every family.

A mask says which pixels of a given image are known: 1 where a pixel (or sub-pixel) is
given and must be kept, 0 where the model fills it in. `complete` takes

* an array of 0s and 1s shaped (H, W), (H, W, 1) or (H, W, C) — one mask for every image —
  or (B, H, W), (B, H, W, 1), (B, H, W, C) — one per image; a channel axis of 1 applies to
  every channel, C masks sub-pixels one by one (autoregressive models read them one by one);
* nothing else: values other than 0 and 1, a mask that keeps every pixel of an image
  (nothing to complete) or hides every one (nothing to complete *from*: that is `sample`)
  are one-line errors, as is a shape that fits neither image size nor batch.

The command line names the *hole* (the part the model fills in), as inpainting tools do:
`bottom` hides the bottom half, `box:x,y,w,h` a box (x, y its top-left corner, in pixels),
and a PNG file hides its white (≥ 50% grey) pixels. `mask_from_spec` turns such a name into
a known-pixel mask (1 = known) of a given image size.

Whether a family can complete, and how, is the family's (`GenerativeModel.complete` and
its overrides): this module holds the shared contract only and imports no TensorFlow, so
that the command line checks a `--mask` before TensorFlow loads.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

#: The named holes `--mask` takes (besides box:x,y,w,h and a PNG file).
HALVES = ("top", "bottom", "left", "right")
MASK_HELP = "top|bottom|left|right (the half the model fills in), box:x,y,w,h (a box to fill), or a PNG (white = fill)"


def mask_from_spec(spec: str, image_shape) -> np.ndarray:
    """The known-pixel mask (H, W) float32 (1 = known) for the hole that `spec` names, at `image_shape`.

    "top", "bottom", "left", "right": that half is hidden (an odd side's middle row or column
    counts as hidden). "box:x,y,w,h": the w×h box with top-left corner (x, y) is hidden; it must
    lie inside the image. A path to an image file: its pixels ≥ 50% grey are hidden; it must
    be the image's height and width.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    known = np.ones((height, width), np.float32)
    if spec in HALVES:
        if spec == "top":
            known[:(height + 1) // 2] = 0
        elif spec == "bottom":
            known[height // 2:] = 0
        elif spec == "left":
            known[:, :(width + 1) // 2] = 0
        else:
            known[:, width // 2:] = 0
        return known
    if spec.startswith("box:"):
        x, y, w, h = _box(spec)
        if x + w > width or y + h > height:
            raise ValueError(f"--mask {spec}: the box (x {x}..{x + w - 1}, y {y}..{y + h - 1}) leaves the "
                             f"{height}x{width} image; x + w must be <= {width} and y + h <= {height}")
        known[y:y + h, x:x + w] = 0
        return known
    path = Path(spec)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif") or path.exists():
        return _mask_file(path, height, width)
    raise ValueError(f"--mask {spec!r} is not a mask: expected {MASK_HELP}")


def _box(spec: str) -> tuple[int, int, int, int]:
    match = re.fullmatch(r"box:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", spec)
    if not match or int(match[3]) == 0 or int(match[4]) == 0:
        raise ValueError(f"--mask {spec!r}: expected box:x,y,w,h with integers x, y >= 0 and w, h > 0 "
                         f"(top-left corner and size in pixels), e.g. box:8,8,12,12")
    return tuple(int(v) for v in match.groups())


def _mask_file(path: Path, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"mask file {path} does not exist")
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), np.float32) / 255.0
    except OSError as err:
        raise ValueError(f"mask file {path} is not an image Pillow can read ({err})") from None
    if grey.shape != (height, width):
        raise ValueError(f"mask file {path} is {grey.shape[0]}x{grey.shape[1]}; the model's images are "
                         f"{height}x{width}: draw the mask at that size (white = fill in, black = keep)")
    return (grey < 0.5).astype(np.float32)


def check_mask(mask, images_shape) -> np.ndarray:
    """`mask` broadcast to `images_shape` (B, H, W, C) as float32 0/1, after the checks in the module docstring.

    Every failure is a one-line ValueError saying what was wrong and what was expected.
    """
    batch, height, width, channels = (int(d) for d in images_shape)
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.float32)
    if not np.issubdtype(mask.dtype, np.number):
        raise ValueError(f"mask must be an array of 0s and 1s, got dtype {mask.dtype}")
    shape = mask.shape
    expected = (f"(H, W), (H, W, 1), (H, W, C), (B, H, W), (B, H, W, 1) or (B, H, W, C) with (B, H, W, C) = "
                f"{(batch, height, width, channels)}")
    if mask.ndim == 2 and shape == (height, width):
        mask = mask[None, ..., None]
    elif mask.ndim == 3 and shape[:2] == (height, width) and shape[2] in (1, channels):
        mask = mask[None]  # one (H, W, C) mask for every image
    elif mask.ndim == 3 and shape == (batch, height, width):
        mask = mask[..., None]
    if mask.ndim != 4 or mask.shape[1:3] != (height, width) or mask.shape[0] not in (1, batch) \
            or mask.shape[3] not in (1, channels):
        raise ValueError(f"mask of shape {shape} does not fit images of shape {(batch, height, width, channels)}: "
                         f"expected {expected}")
    if not np.all((mask == 0) | (mask == 1)):
        bad = mask[~((mask == 0) | (mask == 1))]
        raise ValueError(f"mask values must be 0 (fill in) or 1 (known), got {bad.size} other value(s), e.g. "
                         f"{bad.flat[0]!r}")
    mask = np.broadcast_to(mask.astype(np.float32), (batch, height, width, channels))
    known = mask.reshape(batch, -1).sum(axis=1)
    if np.any(known == 0):
        i = int(np.argmax(known == 0))
        raise ValueError(f"mask hides every pixel of image {i}: nothing is given to complete from "
                         f"(draw new images with sample() instead)")
    if np.any(known == mask[0].size):
        i = int(np.argmax(known == mask[0].size))
        raise ValueError(f"mask keeps every pixel of image {i}: nothing to complete (0 marks the pixels to fill in)")
    return np.ascontiguousarray(mask)


def repeat_for_completions(array, n: int):
    """Each row of `array` n times in a row (image i's completions are rows i·n … i·n + n − 1)."""
    return None if array is None else np.repeat(np.asarray(array), n, axis=0)


def raster_prefix(mask) -> bool:
    """Whether, in every image of `mask` (B, H, W, C), each known sub-pixel precedes every unknown one in raster order
    (rows, then columns, channels innermost): where an autoregressive model's completion is exact without resampling."""
    flat = np.asarray(mask).reshape(len(mask), -1)
    # A prefix of 1s then only 0s: no 1 after the first 0.
    return bool(np.all(np.diff(flat, axis=1) <= 0))
