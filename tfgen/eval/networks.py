"""The evaluator networks: a CNN classifier (labelled data) and a convolutional autoencoder (unlabelled data),
and `Evaluator`, a trained one with its features and predictions.

Both share one convolutional body, sized from the image shape: conv-BN-ReLU
blocks with 2×2 max-pooling until the feature map is at most 8 pixels on its
shorter side (two poolings for 28×28 or 32×32, three for 48 or 64 pixels), so
the flattened map stays a few thousand numbers at any size and the network
stays cheap on a CPU. The layer named `features` is what FID, KID and
precision/recall are computed on.

`Evaluator` is here rather than in `tfgen.eval.evaluator` (which finds, caches and
trains evaluators) because training (`tfgen.eval.evaluator_training`) makes one too:
both import it from here, so neither imports the other.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

FEATURES_LAYER = "features"
CLASSIFIER, AUTOENCODER = "classifier", "autoencoder"
#: Bump when the architecture or training recipe changes: older caches are then retrained.
RECIPE_VERSION = 1
#: Poolings continue until the shorter side is at most this many pixels.
MAX_FINAL_SIDE = 8


def pooling_levels(image_shape) -> int:
    """How many 2×2 poolings the body applies: at least 2, more for large images, never below 1 pixel."""
    side = min(image_shape[:2])
    levels = 2
    while side / 2 ** levels > MAX_FINAL_SIDE:
        levels += 1
    return min(levels, int(math.log2(side)))


def _body(inputs, image_shape, width, seed):
    """conv(w)-pool → conv(2w)-pool → conv(2w) [→ pool → conv(2w) …]: the classic small MNIST convnet, extended."""
    import keras
    from keras import layers

    pools = pooling_levels(image_shape)
    x = inputs
    for i in range(pools + 1):
        filters = width if i == 0 else 2 * width
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU()(x)
        if i < pools:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    return x


def build_classifier(image_shape=(28, 28, 1), num_classes=10, width=32, feature_dim=128, dropout=0.3, seed=0):
    """The convolutional body → Dense(feature_dim, ReLU) = `features` → logits, with batch norm and dropout.

    At 28×28 this is the classic small MNIST convnet (~0.5M parameters, ~6M
    multiply-adds per image): >99% on full MNIST, and cheap enough to train in
    about a minute on two CPU cores for the bundled digits. Initialisers and
    dropout are seeded so that a retrained evaluator is the same network up to
    floating-point nondeterminism.
    """
    import keras
    from keras import layers

    inputs = keras.Input(tuple(image_shape), name="images")
    x = layers.Flatten()(_body(inputs, image_shape, width, seed))
    x = layers.Dropout(dropout, seed=seed)(x)
    # The features used by FID/KID/precision-recall: the last hidden layer, after ReLU.
    x = layers.Dense(feature_dim, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed=seed + 10),
                     name=FEATURES_LAYER)(x)
    x = layers.Dropout(dropout, seed=seed + 1)(x)
    logits = layers.Dense(num_classes, dtype="float32", kernel_initializer=keras.initializers.GlorotUniform(seed),
                          name="logits")(x)
    return keras.Model(inputs, logits, name="evaluator")


def build_autoencoder(image_shape=(28, 28, 1), width=32, feature_dim=128, noise=0.1, seed=0):
    """A denoising convolutional autoencoder whose linear bottleneck is the `features` layer.

    Encoder: the classifier's body → Dense(feature_dim) (linear, so features
    are closer to Gaussian, as the Fréchet distance assumes). Decoder: Dense →
    reshape → (upsample, conv with half the channels of the last) per pooling
    → sigmoid conv back to the image (about twice the encoder's cost in all),
    resized if pooling floored an odd side. Gaussian input noise (active in
    training only) makes it a denoising autoencoder (Vincent et al. 2008), whose
    features describe the image's structure rather than its exact pixels.
    Every initialiser is seeded, as in the classifier.
    """
    import keras
    from keras import layers

    height, width_px, channels = image_shape
    inputs = keras.Input(tuple(image_shape), name="images")
    x = layers.GaussianNoise(noise, seed=seed)(inputs)
    body = _body(x, image_shape, width, seed)
    map_shape = tuple(body.shape[1:])
    z = layers.Dense(feature_dim, kernel_initializer=keras.initializers.GlorotUniform(seed + 10),
                     name=FEATURES_LAYER)(layers.Flatten()(body))
    x = layers.Dense(math.prod(map_shape), activation="relu", name="decode_dense",
                     kernel_initializer=keras.initializers.HeNormal(seed=seed + 11))(z)
    x = layers.Reshape(map_shape)(x)
    for i in range(pooling_levels(image_shape)):
        # Channels halve at every upsampling (from `width`): at full resolution the decoder's convolutions
        # would otherwise cost several times the whole encoder.
        x = layers.UpSampling2D(2)(x)
        x = layers.Conv2D(max(width // 2 ** i, 4), 3, padding="same", activation="relu",
                          kernel_initializer=keras.initializers.HeNormal(seed=seed + 20 + i), name=f"deconv{i}")(x)
    if tuple(x.shape[1:3]) != (height, width_px):
        x = layers.Resizing(height, width_px, interpolation="bilinear")(x)
    out = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", dtype="float32", name="reconstruction",
                        kernel_initializer=keras.initializers.GlorotUniform(seed + 30))(x)
    return keras.Model(inputs, out, name="evaluator_autoencoder")


def multiply_adds(net) -> int:
    """Multiply-adds of one forward pass of one image through the convolutions and dense layers."""
    from keras import layers

    total = 0
    for layer in net.layers:
        if isinstance(layer, layers.Conv2D):
            h, w = layer.output.shape[1:3]
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * layer.filters
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


#: CPU-seconds per forward multiply-add per training image, measured by training the shipped
#: bundled-digits evaluator (112 CPU-s for 8 epochs × 8,499 images × 6.0M multiply-adds).
CPU_SECONDS_PER_MAC = 112 / (8 * 8499 * 6.05e6)


def training_minutes(net, images: int, epochs: int, cores: int | None = None) -> float:
    """A rough wall-clock estimate for training `net`: its size × images seen, on this machine's cores.

    Small convnets do not use more than a few cores well, so at most 4 count.
    """
    import os

    cores = min(cores or os.cpu_count() or 1, 4)
    return multiply_adds(net) * images * epochs * CPU_SECONDS_PER_MAC / cores / 60


class Evaluator:
    """A trained evaluator network and its features (plus class predictions if it is a classifier).

    Attributes: `dataset`, `kind` ("classifier" or "autoencoder"), `labelled`,
    `accuracy` (test-split accuracy in [0, 1]; None for an autoencoder),
    `image_shape`, `num_classes` (0 for an autoencoder), `meta` (everything
    recorded in evaluator.json), `directory`.
    """

    def __init__(self, network, meta: dict, directory=None):
        import keras
        import tensorflow as tf

        self.network = network
        self.meta = dict(meta)
        self.directory = Path(directory) if directory is not None else None
        self.dataset = meta["dataset"]
        self.kind = meta.get("kind", CLASSIFIER)
        self.labelled = self.kind == CLASSIFIER
        self.accuracy = float(meta["test_accuracy"]) if self.labelled else None
        self.image_shape = tuple(meta["image_shape"])
        self.num_classes = int(meta["num_classes"]) if self.labelled else 0
        # Features are multiplied by a fixed scale chosen at training time so that real images have
        # mean ||f||²/d = 1: KID's kernel (x·y/d + 1)³ then works on O(1) inputs, as with Inception features.
        self.feature_scale = float(meta.get("feature_scale", 1.0))
        outputs = [network.get_layer(FEATURES_LAYER).output] + ([network.outputs[0]] if self.labelled else [])
        feature_model = keras.Model(network.inputs, outputs)
        spec = tf.TensorSpec((None, *self.image_shape), tf.float32)
        # One traced function for every batch size: features (and logits) in one pass.
        self._forward = tf.function(lambda x: feature_model(x, training=False), input_signature=[spec])

    def __repr__(self):
        return f"Evaluator({self.describe()!r}, feature_dim={self.meta.get('feature_dim')})"

    def describe(self) -> str:
        """One line: what the network is, what it was trained on, how good it is on the test split."""
        if self.labelled:
            return f"CNN classifier trained on {self.dataset}, test accuracy {100 * self.accuracy:.2f}%"
        rmse = self.meta.get("test_rmse")
        quality = f", test reconstruction RMSE {rmse:.3f}" if rmse is not None else ""
        return f"convolutional autoencoder trained on {self.dataset} without labels{quality}"

    def _run(self, images, batch_size=1000):
        images = self._check_images(images)
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            out = self._forward(images[start:start + batch_size])
            out = out if isinstance(out, (list, tuple)) else (out,)  # a one-output model returns a tensor
            feats.append(np.asarray(out[0]) * np.float32(self.feature_scale))
            if self.labelled:
                logits.append(np.asarray(out[1]))
        if not feats:
            return np.zeros((0, self.meta["feature_dim"]), np.float32), np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(feats), (np.concatenate(logits) if self.labelled else None)

    def _check_images(self, images):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3 and self.image_shape[-1] == 1:
            images = images[..., None]
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"the {self.dataset} evaluator expects images of shape (N, "
                             f"{', '.join(map(str, self.image_shape))}) in [0, 1], got shape {images.shape}")
        if images.size and not np.all(np.isfinite(images)):
            raise ValueError("images contain NaN or infinite values")
        return images

    def _need_labels(self, what: str):
        if not self.labelled:
            raise ValueError(f"{what} needs a classifier, but the {self.dataset} evaluator is an autoencoder "
                             "(the dataset has no labels)")

    def features(self, images) -> np.ndarray:
        """Feature-layer activations (scaled), float32 (N, feature_dim)."""
        return self._run(images)[0]

    def logits(self, images) -> np.ndarray:
        self._need_labels("logits")
        return self._run(images)[1]

    def probabilities(self, images) -> np.ndarray:
        """Class probabilities, float64 (N, num_classes), rows summing to 1."""
        return softmax(self.logits(images))

    def predict_labels(self, images) -> np.ndarray:
        """Most probable class of each image, int32 (N,)."""
        return np.argmax(self.logits(images), axis=1).astype(np.int32)

    def features_and_probabilities(self, images):
        """Features and class probabilities; probabilities are None for an autoencoder."""
        feats, logits = self._run(images)
        return feats, (softmax(logits) if logits is not None else None)


def softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
