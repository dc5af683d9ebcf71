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

Colour (channels C > 1): the image is read sub-pixel by sub-pixel, R then G
then B within each pixel, so the prediction of a pixel's G may use its R but
not its G or B. As in PixelRNN/PixelCNN (van den Oord et al. 2016, "Pixel
Recurrent Neural Networks", Figure 2) every feature map belongs to one colour
group (`feature_groups`), and at the *current* pixel a connection runs from
input group g to output group g' only if g < g' (mask A, the first layer) or
g ≤ g' (mask B, every later layer); taps at earlier pixels see every group.
`ChannelMaskedConv2D` applies such a mask to a kernel's current-pixel tap: the
horizontal stack's convolution (whose last column is the current pixel) and
the 1×1 convolutions after it. The vertical stack needs none: it only sees
rows above, all of whose sub-pixels come before the current one. With C = 1
nothing is masked and the layers are exactly the grayscale ones.

Both layers work on any height and width: the horizontal convolution on a
single row gives exactly that row of the full-image result, which is what the
row-cached sampler in `tfgen.models.pixelcnn` relies on.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tfgen import checks
from tfgen.checks import one_of

MASK_TYPES = ("A", "B")


def _check_kernel(kernel_size):
    # Odd, so that the kernel has a centre to shift and mask around.
    if checks.int_at_least(kernel_size, "kernel_size", 3) % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size!r}")


def feature_groups(features, channels, parts=1):
    """The colour group (0 = R, 1 = G, 2 = B, …) of each of `features` feature maps.

    Each of `parts` equal parts of the features (the two halves that a gated
    activation multiplies) is cut into `channels` contiguous blocks, so that
    features f and f + features/parts share a group. An image's own channels
    (features = channels) are their own groups; logits for C channels × L
    levels (features = C·L) are grouped by channel.
    """
    per_part = features // parts
    return (np.arange(features) % per_part) * channels // per_part


def channel_mask(in_features, out_features, channels, mask_type, output_parts=1):
    """(in, out) 0/1 float32 matrix: may output feature j at a pixel read input feature i at that pixel?

    Mask A (strict, g_in < g_out) for the first layer, which must not see the sub-pixel it
    predicts; mask B (g_in ≤ g_out) for later layers, whose inputs already exclude it.
    """
    one_of(mask_type, MASK_TYPES, "mask type")
    if min(in_features, out_features // output_parts) < channels:
        raise ValueError(f"a channel-masked layer needs at least {channels} features per part (one per colour "
                         f"channel), got {in_features} in, {out_features} out in {output_parts} part(s)")
    g_in = feature_groups(in_features, channels)[:, None]
    g_out = feature_groups(out_features, channels, output_parts)[None, :]
    allowed = g_in < g_out if mask_type == "A" else g_in <= g_out
    return allowed.astype("float32")


@keras.saving.register_keras_serializable(package="tfgen")
class ChannelMaskedConv2D(layers.Conv2D):
    """A Conv2D whose current-pixel tap (the kernel's last row and column) is channel-masked.

    Taps at earlier pixels keep every weight. The mask multiplies the kernel in
    every call, so masked weights get zero gradient and never act, whatever the
    optimiser does to them.
    """

    def __init__(self, filters, kernel_size, channels, mask_type="B", output_parts=1, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.channels, self.output_parts = int(channels), int(output_parts)
        self.mask_type = one_of(mask_type, MASK_TYPES, "mask type")

    def build(self, input_shape):
        super().build(input_shape)
        rows, cols = self.kernel_size
        mask = np.ones((rows, cols, int(input_shape[-1]), self.filters), "float32")
        mask[-1, -1] = channel_mask(int(input_shape[-1]), self.filters, self.channels, self.mask_type,
                                    self.output_parts)
        self.kernel_mask = tf.constant(mask)

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * tf.cast(self.kernel_mask, kernel.dtype))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "mask_type": self.mask_type,
                "output_parts": self.output_parts}


class _WrappedConv(layers.Layer):
    """A layer around one convolution `self.conv` (made in `__init__`), built with the input's channels."""

    def build(self, input_shape):
        self.conv.build((None, None, None, input_shape[-1]))
        self.built = True


@keras.saving.register_keras_serializable(package="tfgen")
class VerticalConv(_WrappedConv):
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
class HorizontalConv(_WrappedConv):
    """Output (r, c) sees input row r, columns c − k//2 … c − 1 (`include_current=False`) or … c (True).

    With `channels` > 1 the current column c is channel-masked (`mask_type` A or B,
    outputs in two parts for the gate; see `ChannelMaskedConv2D`).
    """

    def __init__(self, filters, kernel_size, include_current=True, channels=1, mask_type="B", **kwargs):
        super().__init__(**kwargs)
        _check_kernel(kernel_size)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.include_current = bool(include_current)
        self.channels, self.mask_type = int(channels), mask_type
        half = self.kernel_size // 2
        cols = half + 1 if self.include_current else half
        if self.channels > 1 and self.include_current:
            self.conv = ChannelMaskedConv2D(self.filters, (1, cols), self.channels, mask_type, output_parts=2,
                                            padding="valid", name="conv", dtype=self.dtype_policy)
        else:
            self.conv = layers.Conv2D(self.filters, (1, cols), padding="valid", name="conv",
                                      dtype=self.dtype_policy)

    def call(self, x):
        half = self.kernel_size // 2
        if not self.include_current:
            x = x[:, :, :-1]  # drop the last column: column c reads columns < c only
        return self.conv(tf.pad(x, [[0, 0], [0, 0], [half, 0], [0, 0]]))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "include_current": self.include_current, "channels": self.channels, "mask_type": self.mask_type}


@keras.saving.register_keras_serializable(package="tfgen")
class GatedActivation(layers.Layer):
    """tanh(a) ⊙ σ(b) of the two halves a, b of the channels (van den Oord et al. 2016, eq. 2)."""

    def call(self, x):
        a, b = tf.split(x, 2, axis=-1)
        return tf.tanh(a) * tf.sigmoid(b)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)
