"""Causal ("masked") convolutions for the two stacks of a Gated PixelCNN.

A PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks") masks
its convolution kernels so that the output at pixel (r, c) sees only pixels
before it in raster order. Masking one k×k kernel leaves a *blind spot*: pixels
above-right of (r, c) that no stack of such layers ever reaches. The Gated
PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders") removes it with two stacks:

* the vertical stack sees every pixel in the rows strictly above (r, c), all
  columns within the kernel's reach: kernel k//2 (+1) rows × k columns;
* the horizontal stack sees the pixels to the left in the current row:
  kernel 1 × k//2 (+1) columns, and receives the vertical stack's features.

Instead of multiplying a k×k kernel by a 0/1 mask (half its weights zero and
wasted), each layer here pads the input on one side and uses the smaller kernel
that the mask would leave — the same function, with no masked weights. The
first layer must not see the current pixel ("mask A"): it additionally shifts
its input by one row (vertical) or one column (horizontal). Later layers
("mask B") see position (r, c) of the previous layer's features, which
themselves only depend on earlier pixels.

Both layers work on any height and width: the horizontal convolution on a
single row gives exactly that row of the full-image result, which is what the
row-cached sampler in `tfgen.models.pixelcnn` relies on.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks


def _check_kernel(kernel_size):
    # Odd, so that the kernel has a centre to shift and mask around.
    if checks.int_at_least(kernel_size, "kernel_size", 3) % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size!r}")


@keras.saving.register_keras_serializable(package="tfgen")
class VerticalConv(layers.Layer):
    """Output (r, c) sees input rows r − k//2 … r − 1 (`include_current_row=False`)
    or … r (True), columns c − k//2 … c + k//2."""

    def __init__(self, filters, kernel_size, include_current_row=True, **kwargs):
        super().__init__(**kwargs)
        _check_kernel(kernel_size)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.include_current_row = bool(include_current_row)
        half = self.kernel_size // 2
        rows = half + 1 if self.include_current_row else half
        self.conv = layers.Conv2D(self.filters, (rows, self.kernel_size), padding="valid", name="conv",
                                  dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build((None, None, None, input_shape[-1]))
        self.built = True

    def call(self, x):
        half = self.kernel_size // 2
        if not self.include_current_row:
            x = x[:, :-1]  # drop the last row: after padding, row r reads rows < r only
        # Pad `half` rows on top (one fewer kept row than output rows when shifting)
        # and `half` columns each side: a "valid" conv then has the input's width and height.
        return self.conv(tf.pad(x, [[0, 0], [half, 0], [half, half], [0, 0]]))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "include_current_row": self.include_current_row}


@keras.saving.register_keras_serializable(package="tfgen")
class HorizontalConv(layers.Layer):
    """Output (r, c) sees input row r, columns c − k//2 … c − 1 (`include_current=False`) or … c (True)."""

    def __init__(self, filters, kernel_size, include_current=True, **kwargs):
        super().__init__(**kwargs)
        _check_kernel(kernel_size)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.include_current = bool(include_current)
        half = self.kernel_size // 2
        cols = half + 1 if self.include_current else half
        self.conv = layers.Conv2D(self.filters, (1, cols), padding="valid", name="conv", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build((None, None, None, input_shape[-1]))
        self.built = True

    def call(self, x):
        half = self.kernel_size // 2
        if not self.include_current:
            x = x[:, :, :-1]  # drop the last column: column c reads columns < c only
        return self.conv(tf.pad(x, [[0, 0], [0, 0], [half, 0], [0, 0]]))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "include_current": self.include_current}


@keras.saving.register_keras_serializable(package="tfgen")
class GatedActivation(layers.Layer):
    """tanh(a) ⊙ σ(b) of the two halves a, b of the channels (van den Oord et al. 2016, eq. 2)."""

    def call(self, x):
        a, b = tf.split(x, 2, axis=-1)
        return tf.tanh(a) * tf.sigmoid(b)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)
