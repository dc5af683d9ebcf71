"""Datasets as `tf.data` pipelines of `(images, labels)`.

`load(name, split, batch_size, seed)` returns batches of float32 images in
[0, 1], shape (H, W, C), with int32 labels: shuffled with the seed, cached,
batched and prefetched. Every tfgen model expects exactly this.

Names:

* any TFDS image-classification dataset (`mnist`, `fashion_mnist`, `kmnist`, …),
  with `data_dir`, `manual_dir` (the original files; TFDS verifies checksums)
  and `download`;
* `idx:DIR` — a directory with the four standard IDX files, gzipped or not
  (e.g. `idx:/usr/share/datasets/fashion-mnist` from Debian);
* `mnist_bundled` — real MNIST digits shipped inside tfgen, so that nothing
  needs the network (see `BUNDLED_DATA.md`).
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgen.checks import did_you_mean
from tfgen.registry import UnknownNameError

BUNDLED_NAME = "mnist_bundled"
BUNDLED_PATH = Path(__file__).with_name("mnist_bundled.npz")
IDX_PREFIX = "idx:"
SPLITS = ("train", "test")


class DataUnavailableError(RuntimeError):
    """The data cannot be had here (not prepared, and no network to download it).

    The message names the offline options as keyword arguments of `load`; `cli_message()`
    names them as the command line's flags (`tfgen` prints that one).
    """

    def cli_message(self) -> str:
        return str(self).replace(_OFFLINE_HINT, _OFFLINE_HINT_CLI)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    image_shape: tuple
    num_classes: int
    num_examples: int


def load(
    name: str = "mnist",
    split: str = "train",
    batch_size: int = 64,
    seed: int = 0,
    *,
    shuffle: bool | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool = True,
    cache: bool = True,
    drop_remainder: bool = False,
    limit: int | None = None,
    image_shape: tuple | None = None,
    num_classes: int | None = None,
    with_info: bool = False,
):
    """Load a dataset as batches of `(images in [0, 1] float32 NHWC, labels int32)`.

    shuffle: defaults to True for training splits. The order is a function of `seed`.
    limit: keep only the first `limit` examples (before shuffling).
    image_shape, num_classes: what the model expects; a dataset that does not
        fit is a clear error here rather than a shape error deep inside `fit`.
    with_info: also return a `DatasetInfo`.
    """
    for arg, value in (("batch_size", batch_size), ("limit", limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    if name == BUNDLED_NAME:
        images, labels = load_bundled(split)
        ds, info = _from_arrays(name, images, labels, limit)
    elif name.startswith(IDX_PREFIX):
        from tfgen.data.idx import load_idx_split

        images, labels = load_idx_split(name[len(IDX_PREFIX):], _check_split(split))
        ds, info = _from_arrays(name, images, labels, limit)
    else:
        ds, info = _from_tfds(name, split, data_dir, manual_dir, download, limit)
    if info.num_examples == 0:
        raise ValueError(f"dataset {name!r} split {split!r} is empty")
    _check_fits(info, image_shape, num_classes)

    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle if shuffle is not None else split.startswith("train"):
        # A buffer the size of the data is a full shuffle; MNIST-sized sets fit easily.
        ds = ds.shuffle(min(info.num_examples, 70_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return (ds, info) if with_info else ds


def load_arrays(name: str = BUNDLED_NAME, split: str = "train", limit: int | None = None, **kwargs):
    """The whole split as NumPy arrays (images float32 in [0, 1] NHWC, labels int32)."""
    ds = load(name, split, batch_size=4096, shuffle=False, cache=False, limit=limit, **kwargs)
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(images), np.concatenate(labels)


def load_bundled(split: str = "train"):
    """The bundled real MNIST digits: uint8 images (N, 28, 28) and int32 labels."""
    split = _check_split(split)
    with np.load(BUNDLED_PATH) as data:
        return data[f"x_{split}"], data[f"y_{split}"].astype(np.int32)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} for this dataset, got {split!r}")
    return split


def _from_arrays(name, images, labels, limit):
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"dataset {name!r}: images must have shape (N, H, W[, C]), got {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"dataset {name!r}: {len(images)} images but {len(labels)} labels")
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    info = DatasetInfo(name, tuple(images.shape[1:]), num_classes, len(images))
    return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32))), info


def _from_tfds(name, split, data_dir, manual_dir, download, limit):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        known = [BUNDLED_NAME, *tfds.list_builders(with_community_datasets=False)]
        raise UnknownNameError(
            f"unknown dataset {name!r}{did_you_mean(name, known)}: use a TFDS image dataset name (mnist, fashion_mnist, kmnist, ...), "
            f"{BUNDLED_NAME!r}, or {IDX_PREFIX}DIR for a directory of IDX files"
        ) from None
    if manual_dir is not None:
        # TFDS finds the original files by name in manual_dir and verifies their checksums.
        config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir), try_download_gcs=False)
        builder.download_and_prepare(download_config=config)
    elif not builder.is_prepared():
        if not download:
            raise DataUnavailableError(f"TFDS dataset {name!r} is not prepared in {builder.data_dir} "
                                       f"and download=False. {_OFFLINE_HINT}")
        if not network_available():
            raise DataUnavailableError(f"TFDS dataset {name!r} is not prepared and there is no network "
                                       f"to download it. {_OFFLINE_HINT}")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ValueError(f"TFDS dataset {name!r} has no 'image' and 'label' features: not an image classification set")
    if limit is not None:
        split = f"{split}[:{limit}]"
    try:
        ds = builder.as_dataset(split=split, as_supervised=True)
    except ValueError as err:  # unknown split: TFDS lists the valid ones
        raise ValueError(f"TFDS dataset {name!r}: {err}") from None
    num_examples = int(ds.cardinality()) if ds.cardinality() >= 0 else -1
    info = DatasetInfo(name, tuple(features["image"].shape), int(features["label"].num_classes), num_examples)
    return ds, info


_OFFLINE_HINT = (
    f"Offline options: name={BUNDLED_NAME!r} (real digits shipped with tfgen); "
    f"name='{IDX_PREFIX}DIR' (a directory of IDX files); manual_dir=DIR holding the original "
    "*-ubyte.gz files; or data_dir=DIR with a TFDS copy prepared on another machine."
)
#: The same options as `tfgen` flags.
_OFFLINE_HINT_CLI = (
    f"Offline options: --dataset {BUNDLED_NAME} (real digits shipped with tfgen); "
    f"--dataset {IDX_PREFIX}DIR (a directory of IDX files); --manual-dir DIR holding the original "
    "*-ubyte.gz files; or --data-dir DIR with a TFDS copy prepared on another machine."
)


def network_available(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """Whether TFDS's download host resolves within `timeout` seconds.

    Without this check an offline TFDS download retries for minutes before it
    fails; a name lookup answers (or not) in a moment.
    """
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(socket.getaddrinfo, host, 443).result(timeout=timeout)
        return True
    except Exception:
        return False
    finally:
        pool.shutdown(wait=False)


def _check_fits(info: DatasetInfo, image_shape, num_classes) -> None:
    if image_shape is not None and tuple(info.image_shape) != tuple(image_shape):
        raise ValueError(
            f"dataset {info.name!r} has images of shape {tuple(info.image_shape)}, "
            f"but the model expects {tuple(image_shape)}"
        )
    if num_classes is not None and info.num_classes > num_classes:
        raise ValueError(
            f"dataset {info.name!r} has labels up to {info.num_classes - 1}, "
            f"but the model has num_classes={num_classes} (labels must be in [0, {num_classes}))"
        )


def _to_float(images, labels):
    return tf.cast(images, tf.float32) / 255.0, tf.cast(labels, tf.int32)
