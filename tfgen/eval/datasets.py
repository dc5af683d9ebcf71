"""A dataset as the evaluator sees it: both splits as arrays, whether it has labels, and a fingerprint.

A dataset is named by a `tfgen.data` spec (`mnist_bundled`, `fashion_mnist`,
`idx:DIR`, `folder:DIR`, …) plus the data options it was read with (e.g.
`image_size`, `channels`), which `tfgen.data.load_arrays` receives unchanged.
The same spec can mean different images — `folder:DIR` at another
`--image-size`, a relative path from another directory, a folder whose files
changed — so evaluators are cached under a key made from the image shape and
a SHA-256 of the pixels and labels themselves, not from the name alone.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
from dataclasses import dataclass, field

import numpy as np

#: Images hashed per chunk, so fingerprinting a large split needs no second full copy.
_HASH_CHUNK = 4096


@dataclass(frozen=True, eq=False)
class DatasetArrays:
    """Both splits of one dataset: float32 images in [0, 1] (N, H, W, C) and int32 labels.

    `labelled` is False when the dataset has no labels or fewer than two
    classes (an unlabelled folder); its labels are then all zero.
    """

    spec: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labelled: bool
    fingerprint: str
    data_kwargs: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1 if self.labelled else 0

    @property
    def key(self) -> str:
        """The evaluator cache's folder name: `<spec>-<H>x<W>x<C>-<fingerprint>`, the spec's path made absolute:
        `folder:emoji` from /data and `folder:/data/emoji` are one folder, so one evaluator (and the same
        scores), however the path was written."""
        from tfgen.data import absolute_name

        spec = safe_name(absolute_name(self.spec))
        return f"{spec}-{'x'.join(map(str, self.image_shape))}-{self.fingerprint[:12]}"


def safe_name(dataset: str, max_length: int = 60) -> str:
    """A dataset spec as part of a directory name: `idx:/usr/share/x` → `idx_usr_share_x` (last 60 characters)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("_") or "dataset"
    return name[-max_length:]


def is_labelled(labels) -> bool:
    """Labels that can train a classifier: present, non-negative, and at least two distinct classes."""
    if labels is None or len(labels) == 0:
        return False
    labels = np.asarray(labels)
    return bool(labels.min() >= 0 and len(np.unique(labels)) >= 2)


def fingerprint(x_train, y_train, x_test, y_test, labelled: bool) -> str:
    """SHA-256 of both splits' shapes, 8-bit-quantised pixels and labels (labels only if `labelled`).

    Pixels are quantised to the 0–255 grid they were decoded from, so float
    noise in a resize does not change the key.
    """
    digest = hashlib.sha256()
    for name, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        digest.update(f"{name}:{images.shape}:".encode())
        for start in range(0, len(images), _HASH_CHUNK):
            chunk = np.clip(images[start:start + _HASH_CHUNK], 0.0, 1.0)
            digest.update(np.round(chunk * 255).astype(np.uint8).tobytes())
        digest.update(np.asarray(labels, np.int32).tobytes() if labelled else b"unlabelled")
    return digest.hexdigest()


def dataset_arrays(dataset: str, data_kwargs: dict | None = None) -> DatasetArrays:
    """Both splits of `dataset` read by `tfgen.data.load_arrays(dataset, split, **data_kwargs)`; memoised.

    The two most recent datasets are kept in memory, so `get_evaluator` and
    `evaluate` read and hash the data once per process.
    """
    data_kwargs = dict(data_kwargs or {})
    key = (dataset, json.dumps(data_kwargs, sort_keys=True, default=str))
    if key not in _MEMORY:
        _MEMORY[key] = _load(dataset, data_kwargs)
        while len(_MEMORY) > _MEMORY_SIZE:
            _MEMORY.popitem(last=False)
    _MEMORY.move_to_end(key)
    return _MEMORY[key]


_MEMORY: collections.OrderedDict = collections.OrderedDict()
_MEMORY_SIZE = 2


def _load(dataset: str, data_kwargs: dict) -> DatasetArrays:
    from tfgen.data import load_arrays

    x_train, y_train = load_arrays(dataset, "train", **data_kwargs)
    x_test, y_test = load_arrays(dataset, "test", **data_kwargs)
    x_train, x_test = _as_nhwc(x_train), _as_nhwc(x_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"dataset {dataset!r}: train images are {x_train.shape[1:]} but test images "
                         f"{x_test.shape[1:]}")
    labelled = is_labelled(y_train) and is_labelled(y_test)
    if labelled:
        y_train, y_test = np.asarray(y_train, np.int32), np.asarray(y_test, np.int32)
    else:
        y_train, y_test = np.zeros(len(x_train), np.int32), np.zeros(len(x_test), np.int32)
    return DatasetArrays(dataset, x_train, y_train, x_test, y_test, labelled,
                         fingerprint(x_train, y_train, x_test, y_test, labelled), data_kwargs)


def _as_nhwc(images) -> np.ndarray:
    images = np.asarray(images, np.float32)
    return images[..., None] if images.ndim == 3 else images
