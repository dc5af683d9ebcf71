"""The evaluator networks: a CNN classifier (labelled data) and a convolutional autoencoder (unlabelled data).

Both share one convolutional body, sized from the image shape: conv-BN-ReLU
blocks with 2×2 max-pooling until the feature map is at most 8 pixels on its
shorter side (two poolings for 28×28 or 32×32, three for 48 or 64 pixels), so
the flattened map stays a few thousand numbers at any size and the network
stays cheap on a CPU. The layer named `features` is what FID, KID and
precision/recall are computed on.
"""

from __future__ import annotations

import math

FEATURES_LAYER = "features"
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
