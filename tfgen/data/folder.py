"""`folder:DIR` — a folder of PNG, JPEG, GIF or BMP images as a dataset.

Layout, as `keras.utils.image_dataset_from_directory` reads it:

* ``DIR/<class>/…/*.png`` — one subfolder per class: labels 0…K−1 in the sorted
  order of the subfolder names (the class names), images found at any depth
  inside a class folder;
* ``DIR/*.png`` — images directly in DIR: an unlabelled dataset (0 classes).

Hidden files and folders (names starting with ".") are ignored; files with
other extensions are not read, but counted and named (`other_files`, in the
summary `tfgen.data.summary` prints). Every image file is checked by Pillow
before anything is decoded (`read_headers`: its header, and for PNG and GIF
the whole file's structure), without TensorFlow, so a corrupt or truncated file
is reported at once, before any other error. Images are decoded once, when the dataset is loaded,
and held in memory as uint8 at the target size: a 3,000-image 32×32 RGB folder
takes 9 MB, and an epoch then costs no decoding at all.

Defaults a user does not have to think about: the size is the images' own when
they all share one (otherwise `image_size` is required), the channels are 3 if
any image is stored in colour and 1 if all are grey. Mixed sizes are centre
cropped to the target aspect ratio and resized; alpha is composited onto a
background (`tfgen.data.pixels`). GIFs give their first frame.

Decoding is TensorFlow's (`tf.io.decode_image`), in parallel, except for BMP
files and GIFs with a transparent colour, which Pillow decodes: TensorFlow's
BMP decoder reads palette indices as grey levels and the reserved fourth byte
of 32-bit BMPs as alpha, and its GIF decoder has no alpha. Pillow also gets a
second try at any file TensorFlow cannot decode, so that only files neither
can read count as unreadable.

The held-out test split (`holdout`, 10% of each class by default) is made by
`tfgen.data.split`: the same for every seed and machine.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgen.checks import check_channels, fraction, parse_image_size
from tfgen.data.messages import warn
from tfgen.data.split import DEFAULT_HOLDOUT, holdout_indices

PREFIX = "folder:"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
_EXTENSIONS_TEXT = ", ".join(IMAGE_EXTENSIONS)
# Pillow modes of greyscale pixels (with or without alpha); palettes are grey when every entry is.
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_DECODE_BATCH = 256


@dataclass(frozen=True)
class FolderData:
    """One split of a folder: uint8 images (N, H, W, C), int32 labels (zeros when unlabelled), class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple


@dataclass(frozen=True)
class _Header:
    height: int
    width: int
    colour: bool
    use_pillow: bool  # BMP, or a GIF with a transparent colour: see the module docstring


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _files_under(folder: Path) -> list:
    """Files anywhere under `folder`, as sorted paths; hidden files and folders skipped."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent) / f for f in sorted(files) if not f.startswith(".")]
    return found


def _images_under(folder: Path) -> list:
    """Image files anywhere under `folder`, as sorted paths; hidden files and folders skipped."""
    return [path for path in _files_under(folder) if _is_image(path.name)]


def scan(root) -> tuple:
    """(image paths relative to `root` as POSIX strings, int32 labels, class names) of a folder dataset."""
    root, where = Path(root), f"{PREFIX}{root}"
    if not root.exists():
        raise ValueError(f"{where}: folder does not exist")
    if not root.is_dir():
        raise ValueError(f"{where}: not a folder (expected a folder of images, or of one subfolder of them per class)")
    entries = sorted((e for e in os.scandir(root) if not e.name.startswith(".")), key=lambda e: e.name)
    if not entries:
        raise ValueError(f"{where}: folder is empty (expected image files {_EXTENSIONS_TEXT}, "
                         f"or one subfolder of them per class)")
    classes = [e.name for e in entries if e.is_dir()]
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name)]
    if classes and loose:
        raise ValueError(f"{where}: holds both image files ({len(loose)}, e.g. {loose[0]}) and subfolders "
                         f"({', '.join(classes[:3])}{', ...' if len(classes) > 3 else ''}): put every image in a "
                         f"class subfolder for a labelled dataset, or none for an unlabelled one")
    if not classes:
        if not loose:
            others = [e.name for e in entries]
            raise ValueError(f"{where}: no image files ({_EXTENSIONS_TEXT}) in it; it holds {len(others)} other "
                             f"file(s), e.g. {others[0]}")
        return loose, np.zeros(len(loose), np.int32), ()
    paths, labels = [], []
    for label, name in enumerate(classes):
        found = _images_under(root / name)
        if not found:
            raise ValueError(f"{where}: class folder {name!r} holds no image files ({_EXTENSIONS_TEXT}); "
                             f"add images or remove the folder")
        paths += [p.relative_to(root).as_posix() for p in found]
        labels += [label] * len(found)
    return paths, np.array(labels, np.int32), tuple(classes)


def other_files(root) -> list:
    """Files under a folder dataset's `root` that are not read (other extensions), relative POSIX paths, sorted.

    Hidden files and folders are left out, as the reader leaves them out: they are the
    system's (.DS_Store, .git), not the user's.
    """
    return [path.relative_to(root).as_posix() for path in _files_under(Path(root)) if not _is_image(path.name)]


def _read_header(path: Path) -> _Header:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        mode = image.mode
        colour = mode not in _GREY_MODES
        if mode in ("P", "PA") and image.palette is not None:
            palette = np.frombuffer(bytes(image.palette.palette), np.uint8)
            rgb = palette[: len(palette) // 3 * 3].reshape(-1, 3)
            colour = bool(np.any(rgb != rgb[:, :1]))
        suffix = path.suffix.lower()
        use_pillow = suffix == ".bmp" or (image.format == "GIF" and "transparency" in image.info)
        # PNG: every chunk's CRC and a truncated end are checked without inflating the pixels (a few
        # ms per file), so a cut-off file is found here, before TensorFlow loads, not while decoding.
        image.verify()
    if width <= 0 or height <= 0:
        raise ValueError(f"image has size {width}x{height}")
    return _Header(height, width, colour, use_pillow)


def _describe(err: Exception) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:160]


def read_headers(root: Path, paths) -> tuple:
    """Each file's `_Header`, read by Pillow without decoding the pixels; and {index: error} of unreadable files.

    Remembered per file (path, size, modification time) for the process: the command line checks
    a folder before TensorFlow loads, and training then reads the same headers again.
    """
    headers, bad = {}, {}
    for i, rel in enumerate(paths):
        path = Path(root) / rel
        try:
            stat = path.stat()
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        except OSError as err:
            bad[i] = _describe(err)
            continue
        if key not in _HEADERS:
            try:
                _HEADERS[key] = _read_header(path)
            except Exception as err:  # any failure to parse a header means the file is unreadable: report it, named
                _HEADERS[key] = _describe(err)
        headers.update({i: _HEADERS[key]} if isinstance(_HEADERS[key], _Header) else {})
        bad.update({i: _HEADERS[key]} if isinstance(_HEADERS[key], str) else {})
    return headers, bad


_HEADERS: dict = {}  # (resolved path, size, mtime) -> _Header, or the error text of an unreadable file


def _common_size(where: str, headers: dict, paths) -> tuple:
    sizes = collections.Counter((h.height, h.width) for h in headers.values())
    if len(sizes) == 1:
        return next(iter(sizes))
    (a, n_a), (b, n_b) = sizes.most_common(2)
    odd = next(paths[i] for i, h in headers.items() if (h.height, h.width) == b)
    raise ValueError(f"{where}: images have {len(sizes)} different sizes (height x width: {a[0]}x{a[1]}: {n_a} "
                     f"file(s), {b[0]}x{b[1]}: {n_b} file(s), e.g. {odd}); choose one with image_size (--image-size), "
                     f"and each image is centre-cropped to its shape and resized")


def _pillow_rgba(path: Path) -> np.ndarray:
    """The first frame as uint8 RGBA (H, W, 4), decoded by Pillow (grey repeated, alpha 255 where there is none)."""
    from PIL import Image

    with Image.open(path) as image:
        image.seek(0)
        return np.asarray(image.convert("RGBA"))


def _decode_with_pillow(files, indices, out, size, channels, background) -> dict:
    """Decode `files[i]` for i in `indices` into `out[i]` with Pillow; return {index: error} of those it cannot read.

    Converted in chunks, each size's images as one batch: one TensorFlow call per batch, not per image.
    """
    from tfgen.data.pixels import from_rgba

    bad = {}
    for start in range(0, len(indices), _DECODE_BATCH):
        by_shape = collections.defaultdict(list)
        for i in indices[start:start + _DECODE_BATCH]:
            try:
                rgba = _pillow_rgba(files[i])
                by_shape[rgba.shape].append((i, rgba))
            except Exception as err:  # corrupt or truncated: named in the error, or skipped and counted
                bad[int(i)] = _describe(err)
        for members in by_shape.values():
            rows = [i for i, _ in members]
            out[rows] = from_rgba(np.stack([rgba for _, rgba in members]), size, channels, background).numpy()
    return bad


def _tensorflow_batches(paths, indices, shape, size, channels, background):
    """Batches of (indices, images) decoded by TensorFlow; files that fail are left out (`ignore_errors`).

    With `shape` (height, width) known to be every file's, the costly part (resizing) runs on
    whole batches; otherwise image by image.
    """
    import tensorflow as tf

    from tfgen.data.pixels import from_rgba, to_rgba

    def decode(i, path):
        rgba = to_rgba(tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False))
        if shape is None:
            return i, from_rgba(rgba, size, channels, background)
        return i, tf.ensure_shape(rgba, (*shape, 4))  # a file whose header lied fails here, by name

    ds = (tf.data.Dataset.from_tensor_slices((np.asarray(indices, np.int64), paths))
          .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
          .ignore_errors()  # a file that fails is decoded again by Pillow, or reported by name
          .batch(_DECODE_BATCH))
    if shape is not None:
        ds = ds.map(lambda i, rgba: (i, from_rgba(rgba, size, channels, background)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(1)


def _decode_with_tensorflow(files, shapes, out, size, channels, background) -> np.ndarray:
    """Decode every file whose shape is not None into `out` (rows = file indices); return the mask of rows filled."""
    filled = np.zeros(len(out), bool)
    groups = collections.defaultdict(list)
    for i, shape in enumerate(shapes):
        if shape is not None:
            groups[shape].append(i)
    # Sizes shared by many files are resized in batches; the rest together, one by one.
    singles = [i for members in groups.values() if len(members) < _DECODE_BATCH // 8 for i in members]
    jobs = [(shape, members) for shape, members in groups.items() if len(members) >= _DECODE_BATCH // 8]
    for shape, members in jobs + ([(None, singles)] if singles else []):
        ds = _tensorflow_batches([str(files[i]) for i in members], members, shape, size, channels, background)
        for rows, images in ds.as_numpy_iterator():
            out[rows] = images
            filled[rows] = True
    return filled


def decode(files, shapes, size, channels, background) -> tuple:
    """uint8 (N, *size, channels) of `files`, and {index: error} of the files no decoder could read.

    shapes: each file's (height, width) from its header, or None for files that Pillow decodes.
    """
    out = np.zeros((len(files), *size, channels), np.uint8)
    filled = _decode_with_tensorflow(files, shapes, out, size, channels, background)
    return out, _decode_with_pillow(files, np.flatnonzero(~filled), out, size, channels, background)


def _unreadable(where: str, bad: dict, skip_corrupt: bool) -> None:
    """`bad` ({relative path: error}): an error naming the first, or with `skip_corrupt` one warning line."""
    if not bad:
        return
    first = min(bad)
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    if not skip_corrupt:
        raise ValueError(f"{where}: cannot read image {first} ({bad[first]}){more}; fix or remove it, or "
                         f"skip unreadable files with skip_corrupt=True (--skip-corrupt)")
    warn(f"{where}: skipped {len(bad)} unreadable image file(s): {first} ({bad[first]}){more}")


@dataclass(frozen=True)
class Survey:
    """A folder dataset as found before any pixel is decoded: its files, labels, headers and target shape.

    paths: image files relative to `root`; labels: int32, one per path; headers: {index into paths:
    `_Header`} of the readable ones; unreadable: {path: error} of the others; size (height, width)
    and channels: what the images are converted to.
    """

    root: Path
    paths: list
    labels: np.ndarray
    class_names: tuple
    headers: dict
    unreadable: dict
    size: tuple
    channels: int

    @property
    def readable(self) -> np.ndarray:
        return np.array(sorted(self.headers), np.int64)


def survey(root, image_size=None, channels=None, skip_corrupt: bool = False) -> Survey:
    """Scan a folder and check every image file's header with Pillow (no TensorFlow, no decoding).

    Errors, one line each, in the order a user meets them: the folder (missing, empty, ...),
    then an unreadable file (unless `skip_corrupt` and some file is readable), then mixed sizes
    without `image_size`. Arguments as `read_folder`'s.
    """
    where = f"{PREFIX}{root}"
    size, channels = parse_image_size(image_size), check_channels(channels)
    root = Path(root).expanduser()  # "folder:~/pictures": no shell expands a tilde after "folder:"
    paths, labels, class_names = scan(root)
    headers, bad = read_headers(root, paths)
    bad = {paths[i]: error for i, error in bad.items()}
    if not skip_corrupt or not headers:
        _unreadable(where, bad, skip_corrupt=False)
    size = size or _common_size(where, headers, paths)
    channels = channels or (3 if any(h.colour for h in headers.values()) else 1)
    return Survey(root, paths, labels, class_names, headers, bad, size, channels)


def read_folder(root, split: str, *, image_size=None, channels=None, background="white",
                skip_corrupt: bool = False, holdout: float = DEFAULT_HOLDOUT, limit=None) -> FolderData:
    """One split ("train" or "test") of the folder dataset in `root`: see the module docstring.

    image_size: None (the images' common size), an int, or (height, width).
    channels: None (from the data), 1 or 3. background: what alpha is composited onto
    ("white", "black" or (r, g, b)). skip_corrupt: skip unreadable files with one
    warning instead of failing. holdout: the test fraction of each class.
    limit: decode only the first `limit` images of the split (in its fixed order).
    """
    from tfgen.data.pixels import background_rgb

    where = f"{PREFIX}{root}"
    parse_image_size(image_size)  # the options' errors in the order the signature names them
    check_channels(channels)
    background, holdout = background_rgb(background), fraction(holdout, "holdout", closed=False)
    found = survey(root, image_size, channels, skip_corrupt)
    paths, labels, headers, readable = found.paths, found.labels, found.headers, found.readable
    chosen = readable[holdout_indices([paths[i] for i in readable], labels[readable], split, holdout)]
    chosen = chosen[:limit] if limit is not None else chosen
    shapes = [None if headers[i].use_pillow else (headers[i].height, headers[i].width) for i in chosen]
    images, failed = decode([found.root / paths[i] for i in chosen], shapes, found.size, found.channels, background)
    # Skipping is no help when nothing readable is left: then the unreadable files are the error.
    _unreadable(where, {**found.unreadable, **{paths[chosen[i]]: error for i, error in failed.items()}},
                skip_corrupt and (len(failed) < len(chosen) or not len(chosen)))
    if failed:
        keep = np.setdiff1d(np.arange(len(chosen)), list(failed))
        images, chosen = images[keep], chosen[keep]
    return FolderData(images, labels[chosen], found.class_names)
