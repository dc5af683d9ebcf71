"""Datasets as `tf.data` pipelines of `(images, labels)`.

`load(name, split, batch_size, seed)` returns batches of float32 images in
[0, 1], shape (H, W, C), with int32 labels, shuffled with the seed, batched and
prefetched. Every tfgen model expects exactly this.

Every dataset is read once into memory as uint8 (`Examples`), and batches are
gathered from that one copy by index: the shuffle buffer holds indices, not
images, and the float conversion is done per batch. Nothing else holds a
decoded copy (no `cache()` of floats, no image shuffle buffer).

Names:

* any TFDS image-classification dataset (`mnist`, `fashion_mnist`, `kmnist`, …),
  with `data_dir`, `manual_dir` (the original files; TFDS verifies checksums)
  and `download`: `tfgen.data.tfds`;
* `idx:DIR` — a directory with the four standard IDX files, gzipped or not
  (e.g. `idx:/usr/share/datasets/fashion-mnist` from Debian); images
  (N, H, W) or (N, H, W, C): `tfgen.data.idx`;
* `folder:DIR` — a folder of PNG/JPEG/GIF/BMP images, one subfolder per class
  or none (unlabelled): `tfgen.data.folder`;
* `npz:FILE` — arrays in a NumPy `.npz` file: `tfgen.data.npz`;
* `mnist_bundled` — real MNIST digits shipped inside tfgen, so that nothing
  needs the network: `tfgen.data.bundled` (see `BUNDLED_DATA.md`).

`image_size` and `channels` resize and convert any of them (centre crop, then
resize; grey <-> RGB); `folder:` datasets take more options (`background`,
`skip_corrupt`, `holdout`), and `npz:` files of one array take `holdout`.

What a dataset holds (counts, classes, split, files not read) is said by
`tfgen.data.summary`, and shown by `tfgen.data.preview` (`real.png`). Importing
this package does not import TensorFlow (loading data does), so the command
line checks a folder before TensorFlow loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgen.checks import UnknownNameError, check_channels, one_of, parse_image_size, positive_int
from tfgen.data.bundled import NAME as BUNDLED_NAME
from tfgen.data.bundled import load_bundled
from tfgen.data.folder import PREFIX as FOLDER_PREFIX
from tfgen.data.idx import PREFIX as IDX_PREFIX
from tfgen.data.messages import DataWarning, ranges, warn
from tfgen.data.npz import PREFIX as NPZ_PREFIX
from tfgen.data.split import DEFAULT_HOLDOUT, SPLITS
from tfgen.data.tfds import DataUnavailableError, network_available, read_tfds

# Keyword arguments of `load` that describe the data (not how it is batched): a run must store
# them with the dataset name and pass them to every later load of that dataset.
DATA_OPTIONS = ("image_size", "channels", "background", "skip_corrupt", "holdout")

__all__ = ["load", "load_arrays", "load_examples", "load_bundled", "Examples", "DatasetInfo", "DataWarning",
           "DataUnavailableError", "DATA_OPTIONS", "parse_image_size", "require_labels", "network_available",
           "absolute_name", "absolute_path", "path_of"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a split holds. `num_classes` is 0 for unlabelled data; `class_names` is () when the data has none."""

    name: str
    image_shape: tuple
    num_classes: int
    num_examples: int
    class_names: tuple = ()

    def check_fits(self, image_shape=None, num_classes=None) -> None:
        """A one-line ValueError if a model of `image_shape` and `num_classes` cannot train on this data
        (None: not checked), naming what the data has and what the model expects."""
        if image_shape is not None and tuple(self.image_shape) != tuple(image_shape):
            raise ValueError(f"dataset {self.name!r} has images of shape {tuple(self.image_shape)}, "
                             f"but the model expects {tuple(image_shape)}")
        if num_classes is not None and self.num_classes > num_classes:
            raise ValueError(f"dataset {self.name!r} has labels up to {self.num_classes - 1}, but the model has "
                             f"num_classes={num_classes} (labels must be in [0, {num_classes}))")


class Examples:
    """One split held in memory once: uint8 images (N, H, W, C) and int32 labels as tensors, and its info.

    `batches` serves shuffled batches from this copy; a training loop with its own
    order (e.g. one seeded shuffle per epoch) shuffles `tf.data.Dataset.range(N)`,
    batches the indices and maps `lookup` over them.
    """

    def __init__(self, images, labels, info: DatasetInfo):
        import tensorflow as tf

        # A variable, not a constant: a `tf.data` function captures a constant by copying it
        # (a second copy of the data per pipeline), a variable by reference. Make `Examples`
        # outside a distribution strategy's scope, or the variable is mirrored per replica.
        with tf.device("/CPU:0"):
            self.images = tf.Variable(images, trainable=False, dtype=tf.uint8, name="images")
        self.labels = tf.convert_to_tensor(labels, tf.int32)
        self.info = info

    def lookup(self, indices):
        """(float32 images in [0, 1], int32 labels) of a batch of example indices."""
        import tensorflow as tf

        return tf.cast(tf.gather(self.images, indices), tf.float32) / 255.0, tf.gather(self.labels, indices)

    def batches(self, batch_size: int, seed: int | None = None, drop_remainder: bool = False):
        """Batches of `lookup`, in file order (`seed` None) or in a new seeded order each iteration."""
        import tensorflow as tf

        order = tf.data.Dataset.range(self.info.num_examples)
        if seed is not None:
            # A buffer of every index is a full shuffle, and costs 8 bytes per example.
            order = order.shuffle(max(self.info.num_examples, 1), seed=seed, reshuffle_each_iteration=True)
        return (order.batch(batch_size, drop_remainder=drop_remainder)
                .map(self.lookup, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def load(
    name: str = "mnist",
    split: str = "train",
    batch_size: int = 64,
    seed: int = 0,
    *,
    shuffle: bool | None = None,
    drop_remainder: bool = False,
    image_shape: tuple | None = None,
    num_classes: int | None = None,
    with_info: bool = False,
    **options,
):
    """Load a dataset as batches of `(images in [0, 1] float32 NHWC, labels int32)`.

    shuffle: defaults to True for training splits. The order is a function of `seed`.
    image_shape, num_classes: what the model expects; a dataset that does not
        fit is a clear error here rather than a shape error deep inside `fit`.
    with_info: also return a `DatasetInfo`.
    options: those of `load_examples` (limit, image_size, channels, the folder options, TFDS's).
    """
    batch_size = positive_int(batch_size, "batch_size")
    examples = load_examples(name, split, **options)
    examples.info.check_fits(image_shape, num_classes)
    shuffle = shuffle if shuffle is not None else split.startswith("train")
    ds = examples.batches(batch_size, seed if shuffle else None, drop_remainder)
    return (ds, examples.info) if with_info else ds


def load_examples(name: str = "mnist", split: str = "train", *, limit: int | None = None, image_size=None,
                  channels: int | None = None, background="white", skip_corrupt: bool = False,
                  holdout: float = DEFAULT_HOLDOUT, data_dir=None, manual_dir=None,
                  download: bool = True) -> Examples:
    """One split of a dataset, read into memory once as uint8: see `Examples`.

    limit: keep only the first `limit` examples (of a folder: decode only those).
    image_size (int, (height, width) or "HxW") and channels (1 or 3): convert the images,
        by centre crop and resize (`tfgen.data.pixels`); default: as stored.
    background, skip_corrupt: `folder:` datasets only (`tfgen.data.folder.read_folder`).
    holdout: the test fraction of `folder:` datasets and of `.npz` files of one array.
    data_dir, manual_dir, download: TFDS datasets only.
    """
    if limit is not None:
        limit = positive_int(limit, "limit")
    size, channels = parse_image_size(image_size), check_channels(channels)
    if name.startswith(FOLDER_PREFIX):
        from tfgen.data.folder import read_folder

        folder = read_folder(name[len(FOLDER_PREFIX):], _check_split(split), image_size=size, channels=channels,
                             background=background, skip_corrupt=skip_corrupt, holdout=holdout, limit=limit)
        images, labels, class_names = folder.images, folder.labels, folder.class_names
        num_classes = len(class_names)
    else:
        images, labels, num_classes = _read_arrays(name, split, holdout, limit, data_dir, manual_dir, download)
        images, labels, class_names = images[:limit], labels[:limit], ()
        images = _convert(name, images, size, channels)
    if len(images) == 0:
        raise ValueError(f"dataset {name!r} split {split!r} is empty")
    info = DatasetInfo(name, tuple(int(d) for d in images.shape[1:]), num_classes, len(images), class_names)
    return Examples(images, labels, info)


def _read_arrays(name, split, holdout, limit, data_dir, manual_dir, download):
    """(uint8 images NHWC, int32 labels, number of classes) of a dataset other than a folder."""
    if name == BUNDLED_NAME:
        images, labels = load_bundled(split)
        labelled = True
    elif name.startswith(IDX_PREFIX):
        from tfgen.data.idx import load_idx_split

        images, labels = load_idx_split(name[len(IDX_PREFIX):], _check_split(split))
        labelled = True
    elif name.startswith(NPZ_PREFIX):
        from tfgen.data.npz import read_npz

        images, labels, labelled = read_npz(name[len(NPZ_PREFIX):], _check_split(split), holdout)
    else:
        _refuse_bare_path(name)
        return read_tfds(name, split, data_dir, manual_dir, download, limit)
    if images.ndim == 3:
        images = images[..., None]
    num_classes = int(labels.max()) + 1 if labelled and len(labels) else 0
    if labelled and split == "train":  # the training split decides the model's classes
        _warn_empty_classes(name, split, labels, num_classes)
    return images, labels, num_classes


def absolute_name(name: str, base=None) -> str:
    """`name` with the path of a `folder:`, `idx:` or `npz:` dataset made absolute (`~` expanded, resolved
    against `base`, default the working directory); other names as they are. A run stores its dataset so,
    and is then resumed or evaluated from any directory."""
    for prefix in (FOLDER_PREFIX, IDX_PREFIX, NPZ_PREFIX):
        if name.startswith(prefix):
            return prefix + absolute_path(name[len(prefix):], base)
    return name


def absolute_path(path, base=None) -> str:
    """`path` (`~` expanded) resolved against `base` (default: the working directory)."""
    return str((Path(base or Path.cwd()) / Path(path).expanduser()).resolve())


def path_of(name: str) -> str | None:
    """The path in a `folder:`, `idx:` or `npz:` dataset name; None for other names."""
    return next((name[len(p):] for p in (FOLDER_PREFIX, IDX_PREFIX, NPZ_PREFIX) if name.startswith(p)), None)


def _refuse_bare_path(name: str) -> None:
    """A path given without its prefix: say which prefix, rather than let TFDS fail to parse it as a name."""
    path = Path(name)
    if path.is_dir():
        raise UnknownNameError(f"unknown dataset {name!r}: for a folder of images write {FOLDER_PREFIX}{name} "
                               f"(for a directory of IDX files {IDX_PREFIX}{name})")
    if path.is_file() or os.sep in name or name.endswith(".npz"):
        raise UnknownNameError(f"unknown dataset {name!r}: a path needs a prefix: {FOLDER_PREFIX}DIR (images), "
                               f"{IDX_PREFIX}DIR (IDX files) or {NPZ_PREFIX}FILE (.npz arrays)")


def _warn_empty_classes(name, split, labels, num_classes) -> None:
    """Labels that skip values (e.g. 10-19) make a model with empty classes: say so, naming them.

    The labels are kept as they are in the files rather than renumbered: a renumbering
    would silently change what `--labels 15` means and could differ between splits.
    """
    empty = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
    if len(empty):
        warn(f"dataset {name!r} split {split!r}: no examples of class(es) {ranges(empty)} of labels "
             f"0-{num_classes - 1}: a model trained on it has {num_classes} classes, {len(empty)} of them empty "
             f"(renumber the labels from 0 to avoid that)")


def _convert(name, images, size, channels):
    """`images` at `size` with `channels`, converted in chunks (only when they differ from the stored ones)."""
    size = size or tuple(images.shape[1:3])
    channels = channels or images.shape[-1]
    if (*size, channels) == tuple(images.shape[1:]):
        return images
    from tfgen.data.pixels import from_rgba, to_rgba

    out = np.empty((len(images), *size, channels), np.uint8)
    for start in range(0, len(images), 1024):
        out[start:start + 1024] = from_rgba(to_rgba(images[start:start + 1024]), size, channels).numpy()
    return out


def load_arrays(name: str = BUNDLED_NAME, split: str = "train", limit: int | None = None, *,
                image_shape: tuple | None = None, num_classes: int | None = None, **options):
    """The whole split as NumPy arrays (images float32 in [0, 1] NHWC, labels int32); arguments as `load`'s."""
    import tensorflow as tf

    examples = load_examples(name, split, limit=limit, **options)
    examples.info.check_fits(image_shape, num_classes)
    images, labels = examples.lookup(tf.range(examples.info.num_examples))
    return images.numpy(), labels.numpy()


def require_labels(info: DatasetInfo, what: str) -> None:
    """A one-line error when `what` (e.g. "cgan") needs class labels and the dataset has none."""
    if info.num_classes == 0:
        raise ValueError(f"{what} needs class labels, but dataset {info.name!r} has none (a folder without class "
                         f"subfolders, or arrays without labels): put the images in one subfolder per class")


def _check_split(split: str) -> str:
    return one_of(split, SPLITS, "split")
