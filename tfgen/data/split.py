"""A held-out split that never changes: stratified by class, decided by a hash of each example's key.

Datasets without a train/test split of their own (a folder of images, an
`.npz` of one array) are split here. Each example has a key (a folder image:
its path relative to the folder; an array row: its index); within each class
the examples are ranked by a salted SHA-256 of their key and the first
``round(holdout · n)`` go to the test split. So the split

* is the same on every machine, in every process and for every training seed
  (a model is always evaluated on images it never trained on);
* keeps each class's share in both splits (stratified);
* moves only the affected images when files are added or removed, instead of
  reshuffling everything as a seeded permutation would.

Each split is then ordered by a second salted hash, which mixes the classes,
so `limit=N` takes a sample of every class rather than the first class only.
"""

from __future__ import annotations

import hashlib

import numpy as np

SPLITS = ("train", "test")
DEFAULT_HOLDOUT = 0.1
_SPLIT_SALT = b"tfgen/holdout/v1\x00"
_ORDER_SALT = b"tfgen/order/v1\x00"


def _rank(keys, salt: bytes) -> np.ndarray:
    digests = [hashlib.sha256(salt + key.encode("utf-8")).digest()[:8] for key in keys]
    return np.argsort(np.array([int.from_bytes(d, "big") for d in digests], dtype=np.uint64), kind="stable")


def holdout_count(n: int, holdout: float) -> int:
    """How many of a class's `n` examples are held out: round(holdout·n), halves up, keeping one to train on."""
    return min(int(np.floor(holdout * n + 0.5)), n - 1) if n else 0


def holdout_indices(keys, labels, split: str, holdout: float = DEFAULT_HOLDOUT) -> np.ndarray:
    """Indices into `keys`/`labels` of the examples in `split` ("train" or "test"), in the split's fixed order."""
    keys, labels = list(keys), np.asarray(labels)
    is_test = np.zeros(len(keys), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        ranked = members[_rank([keys[i] for i in members], _SPLIT_SALT)]
        is_test[ranked[:holdout_count(len(members), holdout)]] = True
    chosen = np.flatnonzero(is_test if split == "test" else ~is_test)
    return chosen[_rank([keys[i] for i in chosen], _ORDER_SALT)]
