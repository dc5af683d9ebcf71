"""Synthetic images and "generators" for the evaluation tests; datasets served by a stand-in `load_arrays`."""

import numpy as np


def stripes(n, shape, seed):
    """Horizontal stripes of random period and phase, in a random colour: float32 (n, H, W, C) in [0, 1]."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    rows = np.arange(h)[None, :, None, None]
    period = rng.uniform(3, 6, (n, 1, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1))
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * rows / period + phase)
    colour = rng.uniform(0.5, 1.0, (n, 1, 1, c))
    return np.broadcast_to(wave * colour, (n, h, w, c)).astype(np.float32)


def discs(n, shape, seed):
    """One bright disc of random size at a random place on a dark background: float32 (n, H, W, C)."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w, c), np.float32)
    for i in range(n):
        r = rng.uniform(0.15, 0.3) * min(h, w)
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        out[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = rng.uniform(0.6, 1.0, c)
    return out


def two_kinds(n, shape, seed):
    """Stripes (label 0) then discs (label 1), shuffled: images and int32 labels."""
    images = np.concatenate([stripes(n // 2, shape, seed), discs(n - n // 2, shape, seed + 1)])
    labels = np.repeat(np.array([0, 1], np.int32), [n // 2, n - n // 2])
    order = np.random.default_rng(seed).permutation(n)
    return images[order], labels[order]


class NoiseModel:
    """Uniform-noise "generator" of 28×28 grey images: the worst a model can do."""

    accepts_labels = requires_labels = False
    num_classes = 10
    image_shape = (28, 28, 1)

    def sample(self, n, labels=None, seed=None):
        return np.random.default_rng(seed).random((n, *self.image_shape), dtype=np.float32)


class FakeFolder:
    """A stand-in for `tfgen.data.load_arrays` serving `two_kinds` at `image_size` (default 16) and `channels`.

    `labelled=False` serves all-zero labels, as a flat folder would; every call is recorded.
    """

    def __init__(self, n_train=96, n_test=48, labelled=True, seed=0):
        self.n = {"train": n_train, "test": n_test}
        self.labelled, self.seed, self.calls = labelled, seed, []

    def __call__(self, name, split="train", limit=None, image_size=16, channels=3):
        self.calls.append((name, split, image_size, channels))
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        images, labels = two_kinds(self.n[split], (*size, channels), self.seed + (split == "test") * 100)
        return images[:limit], (labels if self.labelled else np.zeros_like(labels))[:limit]


def install(monkeypatch, fake):
    """Serve `fake` as `tfgen.data.load_arrays`, with a memo of datasets of its own (the real one comes back after)."""
    import collections

    import tfgen.data
    from tfgen.eval import datasets

    monkeypatch.setattr(tfgen.data, "load_arrays", fake)
    monkeypatch.setattr(datasets, "_MEMORY", collections.OrderedDict())
    return fake
