"""Causal self-attention with a key/value cache, and learned 2-D position embeddings.

The blocks of a decoder-only Transformer (Vaswani et al. 2017, "Attention Is All
You Need"; GPT-style pre-norm blocks, Radford et al. 2019) with two ways to run:

* `call(x)`: the whole sequence at once with a causal mask — teacher forcing in
  training and exact likelihoods;
* `step(x_t, cache, t)`: one position, reading the keys/values of positions < t
  from a cache and writing position t's into it. Sampling then costs one
  position per step instead of re-running the whole sequence.

Both paths use the same weights and the same arithmetic, so they give the same
outputs (tested). The cache of one attention layer is a pair of tensors of shape
(batch, heads, slots, head_dim): slots = T for full attention, and only the two
blocks a position can see (a ring buffer) for local attention.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks


@keras.saving.register_keras_serializable(package="tfgen")
class CausalSelfAttention(layers.Layer):
    """Multi-head causal self-attention: position t attends to positions ≤ t only.

    block_size = 0: full attention, every position sees all earlier ones; the
        cost of one layer grows as T² (for a 28×28 image, 784² scores per head).
    block_size = L > 0: local attention (the Image Transformer's "1-D local"
        attention, Parmar et al. 2018): the sequence is cut into blocks of L
        positions and each block attends to itself (causally) and to the block
        before it, so position t sees positions ≥ start of its block − L. The
        cost is T·2L, and stacked layers still reach far back (each layer adds
        up to two blocks of context).
    """

    def __init__(self, dim, num_heads, block_size=0, **kwargs):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.block_size = checks.int_at_least(block_size, "block_size (0 = full attention)", 0)
        self.head_dim = self.dim // self.num_heads
        # One projection for q, k and v: one matmul instead of three.
        self.qkv = layers.Dense(3 * self.dim, name="qkv", dtype=self.dtype_policy)
        self.out = layers.Dense(self.dim, name="out", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.out.build(tuple(input_shape[:-1]) + (self.dim,))
        self.built = True

    def _heads(self, x):
        # (B, T, 3·dim) -> three tensors (B, heads, T, head_dim)
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, [b, t, 3, self.num_heads, self.head_dim])
        x = tf.transpose(x, [2, 0, 3, 1, 4])
        # unstack, not x[0], x[1], x[2]: the gradient of an index is a StridedSliceGrad that
        # zero-fills a tensor as large as x for each of the three (31% of the default
        # preset's op time on a 2-core CPU); the gradient of unstack is one stack.
        q, k, v = tf.unstack(x, num=3, axis=0)
        return q, k, v

    def _merge(self, x):
        # (B, heads, T, head_dim) -> (B, T, dim)
        b, t = tf.shape(x)[0], tf.shape(x)[2]
        return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, self.dim])

    def _attend(self, q, k, v, mask):
        # Softmax in float32: a float16 softmax over hundreds of positions loses mass.
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), "float32") / math.sqrt(self.head_dim)
        scores = tf.where(mask, scores, tf.constant(-1e9, "float32"))
        weights = tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype)
        return tf.matmul(weights, v)

    def call(self, x):
        """x: (B, T, dim) -> (B, T, dim); output t depends on inputs ≤ t only."""
        q, k, v = self._heads(self.qkv(x))
        if self.block_size:
            return self.out(self._merge(self._attend_local(q, k, v)))
        t = tf.shape(x)[1]
        # Lower-triangular (T, T) mask: row i may look at columns j ≤ i.
        causal = tf.linalg.band_part(tf.ones([t, t], tf.bool), -1, 0)
        return self.out(self._merge(self._attend(q, k, v, causal)))

    def _attend_local(self, q, k, v):
        b, t, size = tf.shape(q)[0], tf.shape(q)[2], self.block_size
        blocks = (t + size - 1) // size
        pad = [[0, 0], [0, 0], [0, blocks * size - t], [0, 0]]  # at the end: causality makes it inert

        def split(x):  # (B, H, T, d) -> (B, H, blocks, size, d)
            return tf.reshape(tf.pad(x, pad), [b, self.num_heads, blocks, size, self.head_dim])

        q, k, v = split(q), split(k), split(v)

        def with_previous(x):  # each block preceded by the block before it: (B, H, blocks, 2·size, d)
            # split, not x[:, :, :-1], for the same reason as in `_heads`: a cheap gradient.
            all_but_last, _ = tf.split(x, tf.stack([blocks - 1, 1]), axis=2)
            previous = tf.pad(all_but_last, [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]])
            return tf.concat([previous, x], axis=3)

        # Query i of block n sits at n·size + i; key j of its context at (n − 1)·size + j.
        i = tf.range(size)[:, None]
        j = tf.range(2 * size)[None, :]
        causal = j <= i + size  # (size, 2·size)
        first = tf.range(blocks)[:, None, None] == 0
        mask = causal[None] & (~first | (j >= size)[None])  # block 0 has no previous block
        out = self._attend(q, with_previous(k), with_previous(v), mask)
        out = tf.reshape(out, [b, self.num_heads, blocks * size, self.head_dim])
        sequence, _ = tf.split(out, tf.stack([t, blocks * size - t]), axis=2)  # drop the padding
        return sequence

    def cache_length(self, sequence_length):
        """Positions the cache holds: all of them, or with local attention the last two blocks
        (a ring buffer: position p lives in slot p mod 2·block_size)."""
        if self.block_size and 2 * self.block_size < sequence_length:
            return 2 * self.block_size
        return sequence_length

    def _slot_positions(self, t, length):
        # The position each cache slot holds when step t runs (slots beyond t: not yet written).
        slots = tf.range(length)
        if length == 2 * self.block_size:
            window_start = (t // self.block_size - 1) * self.block_size
            return window_start + tf.math.floormod(slots - window_start, length)
        return slots

    def visible(self, t, length):
        """Which of the `length` cache slots position t attends to (bool vector): exactly the
        positions `call` lets it see."""
        positions = self._slot_positions(t, length)
        mask = (positions <= t) & (positions >= 0)
        if self.block_size:
            mask &= positions >= (t // self.block_size - 1) * self.block_size
        return mask

    def step(self, x_t, cache, t):
        """One position. x_t: (B, 1, dim); cache: (keys, values), each (B, heads, slots, head_dim).

        Writes position t's key and value into the cache, attends over the
        positions that `call` would let t see, returns (output (B, 1, dim),
        updated cache). The cost is one position's projections plus attention
        over the cache's slots, whatever t is.
        """
        keys, values = cache
        q, k, v = self._heads(self.qkv(x_t))  # each (B, heads, 1, head_dim)
        length = int(keys.shape[2])  # static: the cache's size is fixed at construction
        # Write slot t mod length with a one-hot blend: no gather/scatter copies of the cache.
        at_t = tf.cast(tf.range(length) == t % length, keys.dtype)[None, None, :, None]
        keys = keys + at_t * (k - keys)
        values = values + at_t * (v - values)
        out = self._attend(q, keys, values, self.visible(t, length))
        return self.out(self._merge(out)), (keys, values)

    def empty_cache(self, batch, sequence_length):
        shape = [batch, self.num_heads, self.cache_length(sequence_length), self.head_dim]
        return tf.zeros(shape, self.compute_dtype), tf.zeros(shape, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="tfgen")
class TransformerBlock(layers.Layer):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x)) (GELU, `mlp_ratio`× wide)."""

    def __init__(self, dim, num_heads, mlp_ratio=4, dropout=0.0, block_size=0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.mlp_ratio, self.dropout = int(dim), int(num_heads), int(mlp_ratio), dropout
        self.block_size = int(block_size)
        policy = self.dtype_policy
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1", dtype=policy)
        self.attention = CausalSelfAttention(dim, num_heads, block_size, name="attention", dtype=policy)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2", dtype=policy)
        self.mlp_in = layers.Dense(self.mlp_ratio * self.dim, name="mlp_in", dtype=policy)
        # GELU in float32 whatever the policy, as the mixed-precision practice keeps elementwise
        # nonlinearities (bfloat16 has 8 significant bits); mlp_out casts back (one cast). Its speed
        # effect, measured before/after in one run on an AVX512-BF16 CPU, was within noise (1.01–1.02×).
        # Same weights and maths as Dense(activation="gelu"): files saved before load unchanged.
        self.gelu = layers.Activation("gelu", dtype="float32", name="gelu")
        self.mlp_out = layers.Dense(self.dim, name="mlp_out", dtype=policy)
        self.drop = layers.Dropout(dropout)

    def build(self, input_shape):
        for layer in (self.norm1, self.attention, self.norm2, self.mlp_in):
            layer.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_ratio * self.dim,))
        self.built = True

    def _mlp(self, x, training=False):
        return self.drop(self.mlp_out(self.gelu(self.mlp_in(self.norm2(x)))), training=training)

    def call(self, x, training=False):
        x = x + self.drop(self.attention(self.norm1(x)), training=training)
        return x + self._mlp(x, training)

    def step(self, x_t, cache, t):
        """The block at one position, with its attention layer's cache (see `CausalSelfAttention.step`)."""
        a, cache = self.attention.step(self.norm1(x_t), cache, t)
        x_t = x_t + a
        return x_t + self._mlp(x_t), cache

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio, "dropout": self.dropout, "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="tfgen")
class ImagePositionEmbedding(layers.Layer):
    """Learned row + column (+ channel) embeddings for an image read in raster order.

    Position t of the flattened (H, W, C) image is row t // (W·C), column
    (t // C) % W, channel t % C. Separate row and column tables (H + W rows
    instead of H·W) share what is common to a row or a column, as in the Image
    Transformer (Parmar et al. 2018). `call(x)` adds the table to (B, T, dim) inputs.
    """

    def __init__(self, image_shape, dim, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.dim = int(dim)
        h, w, c = self.image_shape
        t = tf.range(h * w * c)
        self._rows, self._cols, self._chans = t // (w * c), (t // c) % w, t % c

    def build(self, input_shape=None):
        h, w, c = self.image_shape
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.rows = self.add_weight(shape=(h, self.dim), initializer=init, name="rows")
        self.cols = self.add_weight(shape=(w, self.dim), initializer=init, name="cols")
        self.chans = self.add_weight(shape=(c, self.dim), initializer=init, name="channels") if c > 1 else None
        self.built = True

    def table(self):
        """The (T, dim) embedding of every position."""
        table = tf.gather(self.rows, self._rows) + tf.gather(self.cols, self._cols)
        if self.chans is not None:
            table += tf.gather(self.chans, self._chans)
        return tf.cast(table, self.compute_dtype)

    def call(self, x):
        """x: (B, T, dim) token embeddings -> x plus the embedding of each position."""
        return x + self.table()[None]

    def at(self, t):
        """The (1, dim) embedding of position t (a scalar tensor), without building the table."""
        h, w, c = self.image_shape
        t = tf.reshape(t, [1])
        embedding = tf.gather(self.rows, t // (w * c)) + tf.gather(self.cols, (t // c) % w)
        if self.chans is not None:
            embedding += tf.gather(self.chans, t % c)
        return tf.cast(embedding, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape), "dim": self.dim}
