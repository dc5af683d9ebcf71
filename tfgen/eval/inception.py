"""Inception-v3 pool features (`features="inception"`): the feature space published FIDs use.

Heusel et al. (2017) defined FID on the 2048-d average-pool activations of
Inception-v3 (Szegedy et al. 2016) trained on ImageNet. Published numbers
also depend on how images are resized to the network's 299×299 input
(Parmar et al. 2022, "On Aliased Resizing and Surprising Subtleties in GAN
Evaluation"); tfgen resizes as their clean-fid does: images quantised to
8 bits, each channel resized on its own by PIL's bicubic filter in 32-bit
float mode, clipped to [0, 255]; grey images are repeated to RGB.

The weights are Keras' ImageNet Inception-v3 (`keras.applications`), the
file `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`. It is not
downloaded here: it must already be in Keras' cache (`~/.keras/models/`, or
`$KERAS_HOME/models/`), or be named by `weights=` / $TFGEN_INCEPTION_WEIGHTS.
These are not bit-for-bit the TF1 graph that pytorch-fid and clean-fid load,
so scores are close to, not identical with, published FIDs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + WEIGHTS_FILE
ENV_WEIGHTS = "TFGEN_INCEPTION_WEIGHTS"
INPUT_SIDE = 299
FEATURE_DIM = 2048


def keras_cache_file() -> Path:
    """Where `keras.applications` keeps this file: $KERAS_HOME/models/, else ~/.keras/models/."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home) / "models" / WEIGHTS_FILE


def weights_path(weights=None) -> Path:
    """The weights file to load (`weights`, else $TFGEN_INCEPTION_WEIGHTS, else Keras' cache); it must exist.

    Checked before Keras is asked, because Keras would otherwise try to download it.
    """
    path = Path(weights or os.environ.get(ENV_WEIGHTS) or keras_cache_file()).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception-v3 weights not found at {path}: download {WEIGHTS_URL} and save it there "
            f"(${ENV_WEIGHTS} names another file)")
    return path


def resize_like_clean_fid(images, side: int = INPUT_SIDE) -> np.ndarray:
    """[0, 1] images (N, H, W, 1 or 3) → float32 (N, side, side, 3) in [0, 255], resized as clean-fid does."""
    from PIL import Image

    pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.float32)  # the 8-bit images clean-fid reads
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    out = np.empty((len(pixels), side, side, 3), np.float32)
    for i, image in enumerate(pixels):
        for c in range(3):
            channel = Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F")
            out[i, ..., c] = np.asarray(channel.resize((side, side), resample=Image.BICUBIC))
    return np.clip(out, 0.0, 255.0)


class InceptionFeatures:
    """An evaluator-like feature extractor: `features(images)` → float32 (N, 2048) for any (H, W, 1|3) images.

    It has no classes of the dataset, so class-based scores (classifier score,
    conditional accuracy) do not apply (`labelled` is False).
    """

    kind = "inception"
    labelled = False
    accuracy = None
    num_classes = 0
    image_shape = None  # any size: images are resized to 299×299

    def __init__(self, weights=None, batch_size: int = 50):
        import keras
        import tensorflow as tf

        self.weights = weights_path(weights)
        self.batch_size = batch_size
        self.network = keras.applications.InceptionV3(include_top=False, weights=str(self.weights),
                                                      input_shape=(INPUT_SIDE, INPUT_SIDE, 3), pooling="avg")
        self.meta = {"kind": self.kind, "weights": str(self.weights), "feature_dim": FEATURE_DIM}
        self.dataset = None
        spec = tf.TensorSpec((None, INPUT_SIDE, INPUT_SIDE, 3), tf.float32)
        # Keras' Inception expects [-1, 1] inputs (inception_v3.preprocess_input).
        self._forward = tf.function(lambda x: self.network(x / 127.5 - 1.0, training=False), input_signature=[spec])

    def __repr__(self):
        return f"InceptionFeatures(weights={str(self.weights)!r})"

    def describe(self) -> str:
        return "Inception-v3 pool features (ImageNet weights, clean-fid resize)"

    def features(self, images) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"Inception features need images of shape (N, H, W, 1 or 3) in [0, 1], "
                             f"got shape {images.shape}")
        if images.size and not np.all(np.isfinite(images)):
            raise ValueError("images contain NaN or infinite values")
        out = [np.asarray(self._forward(resize_like_clean_fid(images[start:start + self.batch_size])))
               for start in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)

    def features_and_probabilities(self, images):
        """Features, and None: there are no dataset classes to give probabilities of."""
        return self.features(images), None
