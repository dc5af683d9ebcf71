"""Small convolutional and dense stacks shared by the model families.

Each builder returns a functional `keras.Model`, built at construction, so a
family's variables exist before `fit` (needed to build optimisers inside a
`tf.distribute` scope) and a `.keras` file reloads into the same structure.
"""

from __future__ import annotations

import tensorflow as tf
from keras import layers

from tfgen.layers.resolution import halvings, level_widths
from tfgen import checks

#: How `conv_features` halves the resolution: a stride-2 convolution, or convolution + 2×2 max-pooling.
DOWNSAMPLING = ("stride", "pool")


def batch_norm_layer(name: str):
    """Batch normalisation whose moving statistics follow training closely.

    Samples are drawn in inference mode, with the moving mean and variance.
    Keras' default momentum 0.99 averages over the last ~100 steps: after one
    short epoch those statistics are still half the initial (0, 1), and a GAN
    generator that draws digits in training mode draws flat grey images in
    inference mode (measured: 0% background pixels vs 58–77% in training mode,
    64 steps). Momentum 0.9 (the DCGAN reference code's) averages ~10 steps.

    Built under a `tf.distribute` strategy with several replicas, the batch
    statistics are synchronised across replicas (one small all-reduce per layer):
    they are then those of the global batch, so a step on N devices is the step
    on one device, instead of normalising each replica's slice by its own
    statistics (tests/test_distribute.py). On one device nothing is synchronised.
    """
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return layers.BatchNormalization(momentum=0.9, synchronized=synchronized, name=name)


def _activation(name: str):
    return layers.LeakyReLU(0.2) if name == "leaky_relu" else layers.Activation(name)


def conv_features(
    inputs, filters, downsample="stride", activation="relu", batch_norm=False, kernel_size=3, name="conv"
):
    """Convolutions that halve the resolution at each level, then flattened features.

    The depth follows the input's size (`tfgen.layers.resolution.halvings`: 2 levels
    at 28×28, 3 at 32×32 and 48×48, 4 at 64×64) down to 4–8 pixels a side; `filters`
    lists one width per level from the full resolution inward, fitted to that depth
    by `level_widths` (the innermost repeated, or dropped).

    `downsample="stride"` uses stride-2 convolutions (cheaper, learned);
    `downsample="pool"` uses convolution + 2×2 max-pooling, as in the documents' encoder.
    """
    checks.one_of(downsample, DOWNSAMPLING, "downsample")
    x = inputs
    for i, f in enumerate(level_widths(filters, halvings(*inputs.shape[1:3]))):
        if downsample == "stride":
            x = layers.Conv2D(f, kernel_size, strides=2, padding="same", name=f"{name}{i}")(x)
        else:
            x = layers.Conv2D(f, kernel_size, padding="same", name=f"{name}{i}")(x)
            x = layers.MaxPooling2D(2, padding="same", name=f"{name}{i}_pool")(x)
        if batch_norm:
            x = batch_norm_layer(f"{name}{i}_bn")(x)
        x = _activation(activation)(x)
    return layers.Flatten(name=f"{name}_flatten")(x)


def dense_stack(x, units, activation="relu", name="dense"):
    for i, u in enumerate(units):
        x = layers.Dense(u, name=f"{name}{i}")(x)
        x = _activation(activation)(x)
    return x


def upsampling_decoder(
    inputs, image_shape, filters, activation="relu", batch_norm=False, kernel_size=3, dense_units=(), name="dec"
):
    """Dense → reshape to the lowest resolution → stride-2 transposed convolutions → `channels` maps.

    The depth follows the image size as the encoders' does (`tfgen.layers.resolution`):
    the start is 7×7 for 28×28 (two levels; the documents' 4×4 start ended at 32×32,
    the wrong size for MNIST: README defect 2), 4×4 for 32×32 and 64×64, 6×6 for 48×48. `filters`
    lists one width per level from the lowest resolution outward, fitted to that
    depth by `level_widths` on the reversed list (the lowest-resolution width repeated,
    or dropped). Returns pre-activation maps (logits), one per channel.
    """
    height, width, channels = image_shape
    levels = halvings(height, width)
    filters = tuple(reversed(level_widths(tuple(reversed(filters)), levels)))
    h0, w0 = height // 2**levels, width // 2**levels
    x = dense_stack(inputs, dense_units, activation, name=f"{name}_dense")
    x = layers.Dense(h0 * w0 * filters[0], name=f"{name}_project")(x)
    if batch_norm:
        x = batch_norm_layer(f"{name}_project_bn")(x)
    x = _activation(activation)(x)
    x = layers.Reshape((h0, w0, filters[0]))(x)
    for i, f in enumerate(filters):
        x = layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same", name=f"{name}_up{i}")(x)
        if batch_norm:
            x = batch_norm_layer(f"{name}_up{i}_bn")(x)
        x = _activation(activation)(x)
    # float32 output so that losses and sampled images stay float32 under mixed precision.
    return layers.Conv2D(channels, 3, padding="same", dtype="float32", name=f"{name}_out")(x)
