"""TensorFlow Datasets (TFDS) image-classification sets: `tfgen.data.load("mnist")`, `"fashion_mnist"`, ...

A dataset TFDS has not prepared is downloaded and prepared first, unless there is no
network (checked in a moment by `network_available`, rather than letting TFDS retry for
minutes) or `download=False`: then a `DataUnavailableError` names the offline options.
`manual_dir` prepares a dataset from its original files (TFDS verifies their checksums).
Importing this module does not import TensorFlow or TFDS; reading a dataset does.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
from pathlib import Path

import numpy as np

from tfgen.checks import UnknownNameError, did_you_mean
from tfgen.data.bundled import NAME as BUNDLED_NAME
from tfgen.data.idx import PREFIX as IDX_PREFIX


class DataUnavailableError(RuntimeError):
    """The data cannot be had here (not prepared, and no network to download it).

    The message names the offline options as keyword arguments of `load`; `cli_message()`
    names them as the command line's flags (`tfgen` prints that one).
    """

    def cli_message(self) -> str:
        return str(self).replace(_OFFLINE_HINT, _OFFLINE_HINT_CLI)


def read_tfds(name, split, data_dir, manual_dir, download, limit):
    """(uint8 images, int32 labels, number of classes) of a TFDS split, prepared first if need be."""
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
        _prepare_from_manual_dir(builder, name, manual_dir)
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
    parts = [(x, y) for x, y in ds.batch(4096).as_numpy_iterator()]
    if not parts:
        return np.zeros((0, *features["image"].shape), np.uint8), np.zeros(0, np.int32), 0
    images, labels = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
    return images, labels.astype(np.int32), int(features["label"].num_classes)


def _prepare_from_manual_dir(builder, name: str, manual_dir) -> None:
    """Prepare a TFDS dataset from the original files in `manual_dir`, or fail in one line, leaving nothing behind.

    TFDS finds the files by name and verifies their checksums. Files that were
    recompressed (Debian's `dataset-fashion-mnist` rewrote the .gz headers) fail
    that check though their content is intact; IDX files can then be read with
    `idx:DIR`, which checks their structure instead. TFDS leaves the empty
    folders it made on failure, which later runs warn about: they are removed.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    root = Path(builder.data_dir_root)
    folders = [*_ancestors_below(Path(builder.data_dir), root), root / "downloads" / "extracted", root / "downloads", root]
    made = [p for p in folders if not p.exists()]
    config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir), try_download_gcs=False)
    try:
        builder.download_and_prepare(download_config=config)
    except NonMatchingChecksumError as err:
        _remove_empty_dirs(made)
        file = Path(str(err).split(" downloaded to ", 1)[-1].split(",", 1)[0]).name or "a file"
        raise DataUnavailableError(
            f"{file} in {manual_dir} is not the file TFDS knows for {name!r} (its checksum differs; "
            f"recompressed copies such as Debian's differ this way); if the files are IDX, "
            f"read them with --dataset {IDX_PREFIX}{manual_dir}") from None
    except BaseException:
        _remove_empty_dirs(made)
        raise


def _ancestors_below(path: Path, root: Path) -> list[Path]:
    """`path` and its parents up to (not including) `root`, deepest first."""
    chain = []
    while path != root and root in path.parents:
        chain.append(path)
        path = path.parent
    return chain


def _remove_empty_dirs(paths) -> None:
    for path in paths:  # deepest first: a parent is empty once its children are gone
        try:
            path.rmdir()
        except OSError:  # not empty (TFDS wrote something worth keeping) or already gone
            pass


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
