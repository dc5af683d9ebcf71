"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

An autoregressive model whose conditionals p(x_i | x_<i) all come from one
convolutional network, masked so that the output at a pixel only sees pixels
before it in raster order (see `tfgen.layers.masked_conv`):

* a vertical stack (everything above the current row) and a horizontal stack
  (the current row, to the left), so there is no blind spot;
* gated activations tanh(W_f ∗ x) ⊙ σ(W_g ∗ x); the vertical stack feeds the
  horizontal stack through a 1×1 convolution at every layer; residual
  connections in the horizontal stack;
* with `conditional=True`, a learned per-class bias in every gate (the paper's
  V^T h with a one-hot h);
* a 1×1 ReLU head gives `levels` logits per pixel (float32).

Sampling runs all D pixel steps in one compiled `tf.while_loop` with a row
cache: the vertical stack, which cannot see the current row, runs once per
row (on just the rows its receptive field covers), and each pixel step runs
only the horizontal stack on the few columns to its left that can reach it.
This is the idea of Ramachandran et al. 2017 ("Fast Generation for
Convolutional Autoregressive Models": cache what earlier steps computed)
applied at row and receptive-field granularity, not their full per-layer
queues; `benchmarks/ar_sampling.py` measures what it buys.

Colour: the sub-pixels of a pixel are predicted in order, R, then G given R,
then B given R and G (van den Oord et al. 2016, "Pixel Recurrent Neural
Networks"): the horizontal stack's features are split into colour groups and
its current-pixel connections are masked across them (mask A in the first
layer, B after; see `tfgen.layers.masked_conv`); the head gives `levels`
logits per channel. The sampler then runs the horizontal strip once per
sub-pixel. With one channel the network is exactly the grayscale one.

Data variant: [0, 1] images quantised to `levels` values per channel; levels = 2
is MNIST binarised with the fixed threshold 0.5, optionally dynamically binarised
in training (see `AutoregressiveModel`; `model.data_variant` says which).

Presets, fit defaults and flags: `pixelcnn.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks
from tfgen.layers.masked_conv import ChannelMaskedConv2D, GatedActivation, HorizontalConv, VerticalConv
from tfgen.models.autoregressive import AutoregressiveModel
from tfgen.registry import register_model


@register_model("pixelcnn")
class PixelCNN(AutoregressiveModel):
    """Gated PixelCNN over `levels` quantisation levels, optionally class-conditional."""

    def __init__(self, filters=32, num_layers=8, kernel_size=3, first_kernel_size=7, head_filters=64, **kwargs):
        # levels, conditional, dynamic_binarization, learning_rate: see AutoregressiveModel.
        super().__init__(**kwargs)
        self.channels = self.image_shape[-1]
        # Each colour needs features of its own (channel-group masks split the features by colour).
        self.filters = checks.int_at_least(filters, f"filters for {self.channels}-channel images", self.channels)
        self.num_layers = checks.positive_int(num_layers, "num_layers")
        self.head_filters = checks.int_at_least(head_filters, f"head_filters for {self.channels}-channel images",
                                                self.channels)
        self.kernel_size, self.first_kernel_size = int(kernel_size), int(first_kernel_size)  # checked by the layers
        # How far up (rows) and left (columns) the network sees from a pixel: the
        # first layer reaches k₀//2, each later one k//2 further.
        self.reach = self.first_kernel_size // 2 + (self.num_layers - 1) * (self.kernel_size // 2)
        self.vertical = self.build_vertical()
        self.horizontal = self.build_horizontal()

    # ------------------------------------------------------------------ networks
    def _kernel(self, layer):
        return self.first_kernel_size if layer == 0 else self.kernel_size

    def build_vertical(self):
        """Image (+ labels) -> per layer, the vertical stack's contribution to the horizontal stack.

        Any height and width: the sampler runs it on a window of rows.
        """
        f2 = 2 * self.filters
        image = keras.Input((None, None, self.channels), name="image")
        inputs = [image]
        if self.requires_labels:
            labels = keras.Input((), dtype="int32", name="labels")
            inputs.append(labels)
        v, links = image, []
        for i in range(self.num_layers):
            # Layer 0 is shifted down one row: the vertical stack never sees the current row.
            pre = VerticalConv(f2, self._kernel(i), include_current_row=i > 0, name=f"v_conv{i}")(v)
            link = layers.Conv2D(f2, 1, name=f"v_to_h{i}")(pre)
            if self.requires_labels:
                # Class-conditional gate biases, one per stack (the h-stack's rides on the link).
                pre = pre + layers.Reshape((1, 1, f2))(layers.Embedding(self.num_classes, f2, name=f"v_class{i}")(labels))
                link = link + layers.Reshape((1, 1, f2))(layers.Embedding(self.num_classes, f2, name=f"h_class{i}")(labels))
            v = GatedActivation(name=f"v_gate{i}")(pre)
            links.append(link)
        return keras.Model(inputs, links, name="vertical_stack")

    def _horizontal_conv(self, layer):
        if self.channels == 1:
            # Layer 0 is shifted right one column: the prediction for a pixel never sees the pixel.
            return HorizontalConv(2 * self.filters, self._kernel(layer), include_current=layer > 0,
                                  name=f"h_conv{layer}")
        # Colour: every layer sees the current pixel, masked across channels (A: only earlier colours).
        return HorizontalConv(2 * self.filters, self._kernel(layer), include_current=True, channels=self.channels,
                              mask_type="A" if layer == 0 else "B", name=f"h_conv{layer}")

    def _pointwise(self, filters, name, **kwargs):
        """A 1×1 convolution of the horizontal stack; with colour, masked so no colour reads a later one."""
        if self.channels == 1:
            return layers.Conv2D(filters, 1, name=name, **kwargs)
        return ChannelMaskedConv2D(filters, 1, self.channels, "B", name=name, **kwargs)

    def build_horizontal(self):
        """Image rows + the vertical links for those rows -> logits (B, rows, W, C·levels)."""
        f2 = 2 * self.filters
        image = keras.Input((None, None, self.channels), name="image")
        # The links need no mask: the vertical stack only sees rows above the current one.
        links = [keras.Input((None, None, f2), name=f"link{i}") for i in range(self.num_layers)]
        h = image
        for i in range(self.num_layers):
            pre = self._horizontal_conv(i)(h)
            pre = layers.Add(name=f"h_add{i}")([pre, links[i]])
            out = self._pointwise(self.filters, f"h_out{i}")(GatedActivation(name=f"h_gate{i}")(pre))
            h = out if i == 0 else layers.Add(name=f"h_res{i}")([h, out])
        h = self._pointwise(self.head_filters, "head", activation="relu")(layers.ReLU()(h))
        # Channel-major logits: feature c·levels + l is level l of channel c.
        logits = self._pointwise(self.channels * self.levels, "logits", dtype="float32")(h)
        return keras.Model([image, *links], logits, name="horizontal_stack")

    def _network_input(self, q):
        # Levels to [−1, 1]: centred inputs for the first convolution.
        return tf.cast(q, self.compute_dtype) * (2.0 / (self.levels - 1)) - 1.0

    def _links(self, image, labels, training=False):
        links = self.vertical([image, labels] if self.requires_labels else image, training=training)
        return list(links) if isinstance(links, (list, tuple)) else [links]

    def pixel_logits(self, q, labels=None, training=False):
        image = self._network_input(q)
        logits = self.horizontal([image, *self._links(image, labels, training)], training=training)
        return tf.reshape(tf.cast(logits, tf.float32), [tf.shape(q)[0], *self.image_shape, self.levels])

    # ------------------------------------------------------------------ row-cached sampling
    def _sampler_init(self, batch, labels):
        # The cache: the vertical links of the current row, (B, 1, W, 2·filters) per layer.
        width = self.image_shape[1]
        return tuple(tf.zeros([batch, 1, width, 2 * self.filters], self.compute_dtype)
                     for _ in range(self.num_layers))

    def _sampler_step(self, t, canvas, cache, labels):
        # Step t is sub-pixel t: channel t % C of pixel t // C (channels innermost).
        height, width, channels = self.image_shape
        pixel, channel = t // channels, t % channels
        row, col = pixel // width, pixel % width
        image = self._network_input(tf.reshape(canvas, [-1, height, width, channels]))

        def row_links():
            # Row `row` of the vertical stack needs only the `reach` rows above it
            # (and the row itself, whose values it never reads).
            top = tf.maximum(row - self.reach, 0)
            links = self._links(image[:, top:row + 1], labels)
            return tuple(tf.ensure_shape(link[:, -1:], [None, 1, width, 2 * self.filters]) for link in links)

        # New row: refresh the vertical cache (all of this row's pixels depend on the same rows above).
        cache = tf.cond(tf.equal(col, 0) & tf.equal(channel, 0), row_links, lambda: cache)
        left = tf.maximum(col - self.reach, 0)
        strip = image[:, row:row + 1, left:col + 1]
        logits = self.horizontal([strip, *(link[:, :, left:col + 1] for link in cache)])
        # This pixel's logits for every channel; the masks make channel `channel`'s
        # independent of the canvas's not-yet-drawn (zero) sub-pixels.
        logits = tf.reshape(logits[:, 0, -1], [-1, channels, self.levels])
        return tf.cast(tf.gather(logits, channel, axis=1), tf.float32), cache
