"""Pixel Transformer: a decoder-only Transformer over the pixels of an image in raster order.

The documents present autoregressive models as "predict the next value from the
previous ones", with self-attention Transformers (Vaswani et al. 2017) as their
modern form. Applied to images (Parmar et al. 2018, "Image Transformer"; Chen et
al. 2020, "Generative Pretraining from Pixels") the sequence is the image read row
by row, each pixel a token with `levels` possible values:

    p(x) = ∏_t p(x_t | x_<t),   logits_t = Transformer(start, x_1, …, x_{t−1})_t

* Input at position t is the embedding of pixel t − 1 (teacher forcing in
  training) plus learned row and column embeddings of position t. Position 0
  reads a start token — or, with `conditional=True`, a class token, one per
  label, so every pixel can attend to the label.
* Pre-norm blocks of causal multi-head self-attention and a GELU MLP; a final
  linear layer gives `levels` logits per pixel (float32).
* Exact log-likelihood in one pass; sampling with a key/value cache, so each of
  the D steps runs the network on one position (`tfgen.layers.attention`), all
  inside one compiled `tf.while_loop`.

Colour: each sub-pixel is one position, channels innermost (R, G, B of a pixel
are three consecutive tokens, as in the Image Transformer), with a learned
channel embedding added to the row and column ones; D = H·W·C positions, so a
32×32×3 image is a sequence of 3,072.

Data variant: [0, 1] images quantised to `levels` values per channel; levels = 2 is
MNIST binarised with the fixed threshold 0.5, optionally dynamically binarised
in training (see `AutoregressiveModel`; `model.data_variant` says which).

Presets, fit defaults and flags: `pixel_transformer.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks
from tfgen.layers.attention import ImagePositionEmbedding, TransformerBlock
from tfgen.models.autoregressive import AutoregressiveModel
from tfgen.registry import register_model


@register_model("pixel_transformer")
class PixelTransformer(AutoregressiveModel):
    """Decoder-only Transformer over raster-order pixels with `levels` values each."""

    def __init__(self, dim=64, num_layers=4, num_heads=2, mlp_ratio=4, dropout=0.0, block_size=None, **kwargs):
        # levels, conditional, dynamic_binarization, learning_rate: see AutoregressiveModel.
        super().__init__(**kwargs)
        self.dim = checks.positive_int(dim, "dim")
        self.num_layers = checks.positive_int(num_layers, "num_layers")
        self.num_heads = checks.positive_int(num_heads, "num_heads")
        self.mlp_ratio = checks.positive_int(mlp_ratio, "mlp_ratio")
        self.dropout = checks.fraction_below_one(dropout, "dropout")
        if block_size is None:
            block_size = 2 * self.image_shape[1] * self.image_shape[2]  # two image rows of sub-pixels
        self.block_size = checks.int_at_least(block_size, "block_size (0 = full attention, None = two image rows)", 0)
        # Vocabulary: the `levels` pixel values, then the start token (unconditional)
        # or one class token per label (conditional).
        self.start_token = self.levels
        self.network = self.build_network()

    def build_network(self):
        tokens = keras.Input((self.num_dims,), dtype="int32", name="tokens")
        vocabulary = self.levels + (self.num_classes if self.requires_labels else 1)
        x = layers.Embedding(vocabulary, self.dim, name="token_embedding",
                             embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))(tokens)
        x = ImagePositionEmbedding(self.image_shape, self.dim, name="position_embedding")(x)
        for i in range(self.num_layers):
            x = TransformerBlock(self.dim, self.num_heads, self.mlp_ratio, self.dropout, self.block_size,
                                 name=f"block{i}")(x)
        x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
        logits = layers.Dense(self.levels, dtype="float32", name="logits")(x)
        return keras.Model(tokens, logits, name="transformer")

    # The network's layers, looked up by name (not stored twice as attributes, so
    # each weight has exactly one path in a saved file).
    def _layer(self, name):
        return self.network.get_layer(name)

    # ------------------------------------------------------------------ teacher forcing
    def _first_token(self, labels, batch):
        if self.requires_labels:
            return self.start_token + tf.reshape(labels, [-1])
        return tf.fill([batch], self.start_token)

    def pixel_logits(self, q, labels=None, training=False):
        batch = tf.shape(q)[0]
        flat = tf.reshape(q, [batch, self.num_dims])
        # Shift right: position t reads pixel t − 1; position 0 reads the start/class token.
        tokens = tf.concat([self._first_token(labels, batch)[:, None], flat[:, :-1]], axis=1)
        logits = self.network(tokens, training=training)
        return tf.reshape(logits, [batch, *self.image_shape, self.levels])

    # ------------------------------------------------------------------ cached sampling
    def _sampler_init(self, batch, labels):
        return tuple(self._layer(f"block{i}").attention.empty_cache(batch, self.num_dims)
                     for i in range(self.num_layers))

    def _sampler_step(self, t, canvas, cache, labels):
        batch = tf.shape(canvas)[0]
        previous = tf.gather(canvas, tf.maximum(t - 1, 0), axis=1)
        token = tf.where(t > 0, previous, self._first_token(labels, batch))
        x = self._layer("token_embedding")(token[:, None])  # (B, 1, dim)
        x = x + self._layer("position_embedding").at(t)[None]
        new_cache = []
        for i in range(self.num_layers):
            x, layer_cache = self._layer(f"block{i}").step(x, cache[i], t)
            new_cache.append(layer_cache)
        logits = self._layer("logits")(self._layer("final_norm")(x))
        return tf.cast(logits[:, 0], tf.float32), tuple(new_cache)
