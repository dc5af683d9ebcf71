"""Per-class diversity of a conditional generator: a mode-collapse monitor (issue 32).

A class-conditional GAN can collapse one class to a few images while the others stay
varied; FID over all classes hides it. Per class c:

    diversity(c) = mean pairwise distance of n samples of class c
                   ÷ mean pairwise distance of n real images of class c,

distances in the features of a fixed random convolutional network (random features keep
distances between images roughly as the pixels' do, Johnson–Lindenstrauss style, while
weighing local structure, and need no trained evaluator: any folder, any size). ≈ 1: the
class's samples vary as much as its real images; near 0: one image drawn over and over.
"""

from __future__ import annotations

import keras
import numpy as np

from tfgen import checks

#: The seed of the random feature network: the same features in every run, so values compare across runs.
FEATURE_SEED = 20200601


def random_features(image_shape, seed: int = FEATURE_SEED) -> keras.Model:
    """A fixed random conv net: images in [0, 1] → flattened features (two stride-2 3×3 convs with ReLU)."""
    images = keras.Input(tuple(image_shape))
    x = images * 2.0 - 1.0
    for i, filters in enumerate((16, 32)):
        init = keras.initializers.HeNormal(seed=seed + i)
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_initializer=init,
                                dtype="float32")(x)
    return keras.Model(images, keras.layers.Flatten()(x), name="diversity_features")


def mean_pairwise_distance(features) -> float:
    """Mean Euclidean distance over the pairs i < j of the rows of `features` (NaN for fewer than 2 rows)."""
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    if len(f) < 2:
        return float("nan")
    squared = np.sum(f * f, axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * f @ f.T, 0.0))
    return float(distances[np.triu_indices(len(f), 1)].mean())


def features_of(features: keras.Model, images, batch_size: int = 256) -> np.ndarray:
    """`features` of `images` (NumPy), in batches. A plain call: `predict_on_batch` would retrace for every
    new count of images (each class's)."""
    images = np.asarray(images, np.float32)
    out = [np.asarray(features(images[i:i + batch_size], training=False)) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, *features.output_shape[1:]), np.float32)


def real_diversities(features: keras.Model, images, labels, num_classes: int) -> np.ndarray:
    """The real images' mean pairwise distance per class (NaN for a class with fewer than 2 images)."""
    feats, labels = features_of(features, images), np.asarray(labels)
    return np.array([mean_pairwise_distance(feats[labels == c]) for c in range(num_classes)])


def class_diversity(model, features: keras.Model, real: np.ndarray, n: int = 32, seed: int = 0,
                    labelled: bool = True) -> np.ndarray:
    """diversity(c) for every class c: `n` samples of c from `model` (seeded) against `real`
    (`real_diversities` of the same features). NaN where the real images give no reference.
    `labelled=False`: one value, of `n` samples drawn without labels, against `real`'s one entry.
    All classes' samples come from one `sample` call and one feature pass (cheap enough for every epoch)."""
    n = checks.int_at_least(n, "n", 2)
    classes = len(real)
    labels = {"labels": np.repeat(np.arange(classes, dtype=np.int32), n)} if labelled else {}
    feats = features_of(features, model.sample(classes * n, seed=seed, **labels))
    return np.array([mean_pairwise_distance(feats[c * n:(c + 1) * n]) / reference for c, reference in enumerate(real)])
