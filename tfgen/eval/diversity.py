"""Per-class diversity of a conditional generator: a mode-collapse monitor.

A class-conditional GAN can collapse one class to a few images while the others stay
varied; FID over all classes hides it. Per class c:

    diversity(c) = mean pairwise distance of n samples of class c
                   ÷ mean pairwise distance of n real images of class c,

distances in the features of a fixed random convolutional network (random features keep
distances between images roughly as the pixels' do, Johnson–Lindenstrauss style, while
weighing local structure, and need no trained evaluator: any folder, any size). ≈ 1: the
class's samples vary as much as its real images; near 0: one image drawn over and over.

One definition serves every user: `group_spreads` is the per-class (or overall) mean pairwise
distance, and `random_features` builds the network once per image shape and seed, shared by
the training monitors (`tfgen.health`, `tfgen.keep_best`) and `tfgen eval`.
"""

from __future__ import annotations

import keras
import numpy as np

from tfgen import checks

#: The seed of the random feature network: the same features in every run, so values compare across runs.
FEATURE_SEED = 20200601


#: The networks built so far, by (image shape, seed): they are never trained, so one serves every caller.
_NETWORKS: dict = {}


def random_features(image_shape, seed: int = FEATURE_SEED) -> keras.Model:
    """A fixed random conv net: images in [0, 1] → flattened features (two stride-2 3×3 convs with ReLU).
    Built once per `image_shape` and `seed` in a process; later calls return the same network."""
    key = (tuple(int(d) for d in image_shape), seed)
    if key not in _NETWORKS:
        _NETWORKS[key] = _build_random_features(key[0], seed)
    return _NETWORKS[key]


def _build_random_features(image_shape, seed):
    images = keras.Input(image_shape)
    x = images * 2.0 - 1.0
    for i, filters in enumerate((16, 32)):
        init = keras.initializers.HeNormal(seed=seed + i)
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_initializer=init,
                                dtype="float32")(x)
    return keras.Model(images, keras.layers.Flatten()(x), name="diversity_features")


def mean_pairwise_distance(features) -> float:
    """Mean Euclidean distance over the pairs i < j of the rows of `features` (NaN for fewer than 2 rows)."""
    if len(features) < 2:  # before the reshape: an empty group has no row length to infer
        return float("nan")
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    squared = np.sum(f * f, axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * f @ f.T, 0.0))
    return float(distances[np.triu_indices(len(f), 1)].mean())


def features_of(features: keras.Model, images, batch_size: int = 256) -> np.ndarray:
    """`features` of `images` (NumPy), in batches. A plain call: `predict_on_batch` would retrace for every
    new count of images (each class's)."""
    images = np.asarray(images, np.float32)
    out = [np.asarray(features(images[i:i + batch_size], training=False)) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, *features.output_shape[1:]), np.float32)


def group_spreads(features, labels=None, classes=None) -> np.ndarray:
    """`mean_pairwise_distance` of the rows of `features` of each class in `classes` (rows whose entry in
    `labels` is that class), or one value for all rows when `labels` is None. NaN for a group of < 2 rows."""
    features = np.asarray(features)
    if labels is None:
        return np.array([mean_pairwise_distance(features)])
    labels = np.asarray(labels)
    return np.array([mean_pairwise_distance(features[labels == c]) for c in classes])


def real_diversities(features: keras.Model, images, labels, num_classes: int) -> np.ndarray:
    """The real images' mean pairwise distance per class (NaN for a class with fewer than 2 images)."""
    return group_spreads(features_of(features, images), labels, range(num_classes))


def class_diversity(model, features: keras.Model, real: np.ndarray, n: int = 32, seed: int = 0,
                    labelled: bool = True) -> np.ndarray:
    """diversity(c) for every class c: `n` samples of c from `model` (seeded) against `real`
    (`real_diversities` of the same features). NaN where the real images give no reference.
    `labelled=False`: one value, of `n` samples drawn without labels, against `real`'s one entry.
    All classes' samples come from one `sample` call and one feature pass (cheap enough for every epoch)."""
    n = checks.int_at_least(n, "n", 2)
    classes = len(real)
    labels = np.repeat(np.arange(classes, dtype=np.int32), n)
    feats = features_of(features, model.sample(classes * n, seed=seed, **({"labels": labels} if labelled else {})))
    return group_spreads(feats, labels, range(classes)) / np.asarray(real)
