"""The real MNIST digits shipped inside tfgen (`mnist_bundled`): nothing to download.

Provenance, licence and the split are in `BUNDLED_DATA.md` beside this file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgen.checks import one_of
from tfgen.data.split import SPLITS

NAME = "mnist_bundled"
PATH = Path(__file__).with_name("mnist_bundled.npz")


def load_bundled(split: str = "train"):
    """The bundled real MNIST digits: uint8 images (N, 28, 28) and int32 labels."""
    split = one_of(split, SPLITS, "split")
    with np.load(PATH) as data:
        return data[f"x_{split}"], data[f"y_{split}"].astype(np.int32)
