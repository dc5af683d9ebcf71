"""What every autoregressive image model in tfgen shares.

An autoregressive model factorises the likelihood of an image x with D pixels,
read in raster order (row by row, left to right, channels innermost), as

    p(x) = ∏_i p(x_i | x_<i),

each factor a categorical distribution over `levels` values. A colour image is
D = H·W·C sub-pixels, read R, G, B within each pixel (PixelRNN/PixelCNN, van den
Oord et al. 2016; the Image Transformer, Parmar et al. 2018), so a pixel's G is
predicted given its R and B given both. Training maximises
the exact log-likelihood by teacher forcing (one pass computes every factor from
the true previous pixels); sampling draws pixels one at a time. This module
holds the parts that do not depend on the network:

* quantisation of [0, 1] images to `levels` integer values, and the data variant;
* the loss in nats per image and bits per dimension, `log_prob`, `train_step`;
* the sampler: the whole pixel-by-pixel loop is one `tf.while_loop` inside one
  `tf.function`, traced once per model. Each step asks the network for the
  logits of one position given a per-model cache (`_sampler_init`,
  `_sampler_step`), so a step costs far less than a full forward pass;
* completion of given images (`complete`): the same loop, known sub-pixels written in
  instead of drawn — the exact conditional when the known part comes first in raster
  order, importance resampling (`particles`) otherwise.

`AutoregressiveModel` is the base class of these families (as keras-hub's
`CausalLM` is of its language models): it registers nothing itself and takes
the hyperparameters they share; each subclass takes its network's and builds it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgen import checks
from tfgen.eval.likelihood import bits_per_dim
from tfgen.layers import conditioning
from tfgen.models.base import GenerativeModel, check_mask_values, stateless_seed


def quantize(images, levels):
    """[0, 1] floats -> int32 in [0, levels): round(x·(levels − 1)).

    For levels = 2 this is the fixed threshold x ≥ 0.5 → 1 ("statically
    binarised" MNIST); for 256 it recovers the original 8-bit values.
    """
    q = tf.floor(tf.cast(images, tf.float32) * (levels - 1) + 0.5)
    return tf.cast(tf.clip_by_value(q, 0.0, levels - 1.0), tf.int32)


# Levels per channel when none are chosen: binary grayscale pixels (binarised MNIST,
# the literature's benchmark), and 16 per colour channel — 4 bits, 4,096 colours, enough
# for recognisable colour images at a 16th of the softmax width and logits memory of
# 8-bit colour (levels=256 gives bits/dim comparable with published CIFAR-10 numbers).
GRAY_LEVELS, COLOUR_LEVELS = 2, 16


def default_levels(channels):
    """`levels` when the caller chose none: 2 for one channel, 16 per channel for colour."""
    return GRAY_LEVELS if channels == 1 else COLOUR_LEVELS


def sample_categorical(logits, seed, temperature=1.0, top_k=0):
    """One draw per row of `logits` (B, L): softmax(logits / temperature), optionally top-k.

    `top_k` ≤ 0 keeps every level. `top_k` > 0 keeps exactly k levels: equal logits
    are ranked by level, lower first, so `top_k=1` is the greedy (argmax) choice
    whatever the seed. Equal logits are not rare: where a ReLU zeroes every feature
    of a pixel, its logits are the head's biases, all equal at initialisation; a
    threshold at the k-th value would keep every tied level and draw among them.
    A tensor `temperature` and `top_k` keep one traced graph for every setting.
    """
    logits = tf.cast(logits, tf.float32) / tf.cast(temperature, tf.float32)
    levels = tf.shape(logits)[-1]
    k = tf.where(top_k > 0, tf.minimum(top_k, levels), levels)
    order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
    rank = tf.argsort(order, axis=-1, stable=True)  # each level's place in `order`
    logits = tf.where(rank < k, logits, tf.constant(-1e9, tf.float32))
    return tf.cast(tf.random.stateless_categorical(logits, 1, seed)[:, 0], tf.int32)


class AutoregressiveModel(GenerativeModel):
    """Exact-likelihood pixel models over `levels` quantisation levels.

    Subclasses build their network in `__init__` and implement:

    * `pixel_logits(q, labels, training)`: logits (B, H, W, C, levels), float32,
      for the int32 image `q` by teacher forcing — the logits at a pixel may
      depend on pixels before it in raster order only;
    * `_sampler_init(batch, labels)`: the sampler's cache (a tuple of tensors);
    * `_sampler_step(t, canvas, cache, labels)`: the logits (B, levels) of flat
      position t given `canvas` (B, D) int32 (positions < t hold the image so
      far), and the updated cache.

    Data variant: inputs are [0, 1] images; the model quantises every sub-pixel
    to `levels` values with round(x·(levels − 1)), so levels = 2 is MNIST
    binarised with the fixed threshold 0.5. `levels=None` picks
    `default_levels(channels)`: 2 for grayscale, 16 for colour. With `dynamic_binarization=True`
    (levels = 2 only) each training step instead draws x_bin ~ Bernoulli(x)
    afresh (Salakhutdinov & Murray 2008), seeded by the model's seed generator;
    evaluation, `log_prob` and validation always use the fixed threshold, so
    their numbers are deterministic. `data_variant` says which in words.

    Metrics: `loss` is the negative log-likelihood in nats per image, and
    `bits_per_dim` the same in bits per dimension, nats / (D · ln 2).
    """

    def __init__(self, levels=None, conditional=False, dynamic_binarization=False, learning_rate=1e-3, **kwargs):
        super().__init__(**kwargs)
        if levels is None:
            levels = default_levels(self.image_shape[-1])
        self.levels = levels = checks.int_between(levels, "levels", 2, 256)
        if dynamic_binarization and levels != 2:
            raise ValueError(f"dynamic_binarization needs levels=2 (binary pixels), got levels={levels}")
        # `conditional` is the hyperparameter (saved in the config); `requires_labels`, per instance here,
        # is what `unpack`, `sample` and `accepts_labels` (grids, the CLI, eval) read.
        self.conditional = bool(conditional)
        self.requires_labels = self.conditional
        self.dynamic_binarization = bool(dynamic_binarization)
        self.learning_rate = checks.positive_number(learning_rate, "learning_rate")
        height, width, channels = self.image_shape
        self.num_dims = height * width * channels
        self.declare_metrics("loss", "bits_per_dim")

    @property
    def data_variant(self) -> str:
        """The data the likelihoods refer to, in words (for reports next to NLL numbers)."""
        if self.levels == 2:
            fixed = "binarised with a fixed threshold 0.5 (pixel >= 0.5 -> 1)"
            if self.dynamic_binarization:
                return f"training: dynamically binarised, x ~ Bernoulli(pixel) each step; evaluation: {fixed}"
            return fixed
        return f"quantised to {self.levels} levels: round(pixel * {self.levels - 1})"

    def health_checks(self):
        """Bits/dim of fixed training and held-out images, and their gap (`tfgen.health.BitsGap`)."""
        from tfgen.health import BitsGap

        return [BitsGap()]

    def default_compile(self, **kwargs):
        # Global-norm clipping: the occasional very large NLL gradient early in training
        # (thousands of nats per image) otherwise throws attention weights far off.
        self.compile(optimizer=keras.optimizers.Adam(self.learning_rate, global_clipnorm=1.0), **kwargs)

    # ------------------------------------------------------------------ likelihood
    def to_levels(self, images):
        """[0, 1] images -> int32 levels (the fixed-threshold variant when levels = 2)."""
        return quantize(images, self.levels)

    def pixel_logits(self, q, labels=None, training=False):
        raise NotImplementedError

    def call(self, inputs, training=False):
        """Per-pixel logits (B, H, W, C, levels) of a batch of [0, 1] images (teacher forcing)."""
        images, labels = self.unpack(inputs)
        return self.pixel_logits(self.to_levels(images), labels, training=training)

    def _images_and_labels(self, images, labels):
        """Checked [0, 1] images and labels for the likelihood paths (labels: None if unconditional).

        A conditional model requires labels, checked by `conditioning.as_labels` (an int
        is given to every image); an unconditional one ignores them, as it does in batches.
        """
        images = self.check_images(images)
        if not self.requires_labels:
            return images, None
        return images, conditioning.as_labels(labels, self.num_classes, images.shape[0])

    def pixel_log_probs(self, images, labels=None):
        """log p(x_i | x_<i) for every pixel: (B, H, W, C) in nats."""
        images, labels = self._images_and_labels(images, labels)
        q = self.to_levels(images)
        logits = self.pixel_logits(q, labels)
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=q, logits=logits)

    def log_prob(self, images, labels=None):
        """Exact log-likelihood log p(x) in nats per image, shape (B,), of [0, 1] images.

        The images are quantised first (see `data_variant`); this is the
        likelihood of the quantised image under the model.
        """
        return tf.reduce_sum(tf.reshape(self.pixel_log_probs(images, labels), [tf.shape(images)[0], -1]), axis=1)

    def compute_losses(self, q, labels=None, training=False):
        """NLL in nats per image (batch mean) and in bits per dimension."""
        logits = self.pixel_logits(q, labels, training=training)
        per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=q, logits=tf.cast(logits, tf.float32))
        nll = tf.reduce_mean(tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(q)[0], -1]), axis=1))
        return {"loss": nll, "bits_per_dim": bits_per_dim(nll, self.num_dims)}

    def _training_targets(self, images):
        if self.dynamic_binarization:
            # A fresh binarisation each step, from the model's seed generator (never a Python int).
            u = tf.random.stateless_uniform(tf.shape(images), seed=self.draw_seed())
            return tf.cast(u < images, tf.int32)
        return self.to_levels(images)

    def train_step(self, data):
        images, labels = self.unpack(data)
        q = self._training_targets(images)
        with tf.GradientTape() as tape:
            values = self.compute_losses(q, labels, training=True)
            scaled = self.optimizer.scale_loss(self.per_replica(values["loss"]))
        self.minimize(self.optimizer, tape, scaled, self.trainable_variables)
        return self.track(values)

    def test_step(self, data):
        images, labels = self.unpack(data)
        return self.track(self.compute_losses(self.to_levels(images), labels))

    # ------------------------------------------------------------------ sampling
    def _sampler_init(self, batch, labels):
        raise NotImplementedError

    def _sampler_step(self, t, canvas, cache, labels):
        raise NotImplementedError

    def _loop(self, labels, temperature, top_k, seed, teacher=None, given=None):
        """The pixel loop. With `teacher` (B, D) int32 it feeds the true pixels and returns all logits.

        With `given` = (values, known), (B, D) int32 and bool, a known position is written from
        `values` instead of drawn, and the loop returns (canvas, log_weight): log_weight (B,) sums
        log p(x_i | x_<i) over the known positions, the model's (untempered) probability of the given
        values after what was drawn before them (`complete_batch` resamples by it).
        """
        batch, dims = tf.shape(labels)[0], self.num_dims
        cache = self._sampler_init(batch, labels)
        canvas = tf.zeros([batch, dims], tf.int32)
        logits_seen = tf.TensorArray(tf.float32, size=dims)
        log_weight = tf.zeros([batch], tf.float32)

        def body(t, canvas, cache, logits_seen, log_weight):
            logits, cache = self._sampler_step(t, canvas, cache, labels)
            if teacher is None:
                value = sample_categorical(logits, tf.random.experimental.stateless_fold_in(seed, t),
                                           temperature, top_k)
            else:
                value = teacher[:, t]
                logits_seen = logits_seen.write(t, logits)
            if given is not None:
                values, known = given[0][:, t], given[1][:, t]
                value = tf.where(known, values, value)
                log_p = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=values, logits=logits)
                log_weight += tf.where(known, log_p, 0.0)
            # Write position t: a (B, D) int add, negligible next to the network step.
            canvas = canvas + tf.one_hot(t, dims, dtype=tf.int32)[None] * value[:, None]
            return t + 1, canvas, cache, logits_seen, log_weight

        _, canvas, _, logits_seen, log_weight = tf.while_loop(
            lambda t, *_: t < dims, body, (tf.constant(0), canvas, cache, logits_seen, log_weight),
            parallel_iterations=1,
        )
        if given is not None:
            return canvas, log_weight
        if teacher is None:
            return canvas
        return tf.transpose(logits_seen.stack(), [1, 0, 2])

    def _sampler(self):
        # Traced once per model (batch size, temperature, top_k and seed are all
        # tensors in the signature): later calls reuse the graph.
        return self.cached_function("sampler", lambda: tf.function(
            lambda labels, temperature, top_k, seed: self._loop(labels, temperature, top_k, seed),
            input_signature=[
                tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int64),
            ],
            autograph=False,  # an explicit tf.while_loop: the same graph as in an exported endpoint
        ))

    def sample(self, n, labels=None, temperature=1.0, top_k=None, seed=None):
        """Draw `n` images pixel by pixel: float32 (n, H, W, C) in [0, 1], value = level / (levels − 1).

        temperature: divides the logits (< 1 sharper, > 1 more diverse); 1 is the model.
        top_k: keep only the k most likely levels at each pixel (None: all); equal
            logits go to the lower level, so `top_k=1` is greedy whatever the seed.
        labels: conditional models only — an int, a sequence of n ints, or None
            for labels drawn uniformly. Deterministic for an int `seed`.
        """
        n = checks.positive_int(n, "n")
        temperature = checks.positive_number(temperature, "temperature")
        top_k = None if top_k is None else checks.positive_int(top_k, "top_k (or None: every level)")
        # Labels and pixels from two streams split off the seed, as the exported `sample` splits it.
        label_seed, pixel_seed = tf.unstack(tf.random.experimental.stateless_split(self.draw_seed(seed), 2))
        labels = self._sample_labels(n, labels, label_seed)
        canvas = self._sampler()(labels, tf.constant(float(temperature)), tf.constant(int(top_k or 0)), pixel_seed)
        images = tf.reshape(tf.cast(canvas, tf.float32), [n, *self.image_shape])
        return images / float(self.levels - 1)

    # ------------------------------------------------------------------ completion
    def complete_batch(self, images, mask, labels, seed, particles=1):
        """Complete each image by the pixel loop, known sub-pixels written in and the others drawn.

        Each unknown sub-pixel x_i is drawn from p(x_i | x_<i) with the known values in x_<i:
        when every known sub-pixel comes before every unknown one in raster order (a known top
        part: `--mask bottom`), that is exactly the model's conditional p(x_unknown | x_known).
        Otherwise an unknown pixel does not see the known pixels after it (a known bottom
        half constrains nothing above it), and `particles` = K > 1 corrects for that by
        self-normalised importance resampling: K completions are drawn that way and one is
        kept with probability ∝ ∏ p(x_k | x_<k) over the known sub-pixels k, the part of the
        joint the proposal left out — exact as K → ∞, with the cost of K samples. (The
        weights are constant over particles for a raster-order prefix, where K = 1 is exact.)

        Known sub-pixels are returned as given, quantised to the model's levels.
        """
        particles = checks.positive_int(particles, "particles")
        count = images.shape[0]
        values = tf.reshape(self.to_levels(images), [count, self.num_dims])
        known = tf.reshape(mask > 0.5, [count, self.num_dims])
        if self.requires_labels and labels is None:
            raise ValueError(f"{type(self).__name__} requires labels: complete needs the images' labels (labels=...)")
        pixel_seed, pick_seed = tf.unstack(tf.random.experimental.stateless_split(self.draw_seed(seed), 2))
        labels = self._sample_labels(count, labels, None)  # the labels checked, or zeros for an unconditional model
        # Particles of row i are rows i·K … i·K + K − 1.
        canvas, log_weight = self._completer()(tf.repeat(labels, particles, axis=0),
                                               tf.repeat(values, particles, axis=0),
                                               tf.repeat(known, particles, axis=0), pixel_seed)
        pick = tf.random.stateless_categorical(tf.reshape(log_weight, [count, particles]), 1, pick_seed)[:, 0]
        canvas = tf.gather(tf.reshape(canvas, [count, particles, self.num_dims]), pick, batch_dims=1)
        return tf.reshape(tf.cast(canvas, tf.float32), [count, *self.image_shape]) / float(self.levels - 1)

    def _seeded_complete(self, images, mask, seed, labels):
        """`complete_batch` with one particle from graph tensors (the exported endpoint)."""
        count = tf.shape(images)[0]
        values = tf.reshape(self.to_levels(images), [count, self.num_dims])
        known = tf.reshape(check_mask_values(mask) > 0.5, [count, self.num_dims])
        if self.requires_labels:
            labels = conditioning.as_labels(labels, self.num_classes)
        pixel_seed, _ = tf.unstack(tf.random.experimental.stateless_split(stateless_seed(seed), 2))
        canvas, _ = self._loop(labels, tf.constant(1.0), tf.constant(0), pixel_seed, given=(values, known))
        return tf.reshape(tf.cast(canvas, tf.float32), [-1, *self.image_shape]) / float(self.levels - 1)

    def _completer(self):
        return self.cached_function("completer", lambda: tf.function(
            lambda labels, values, known, seed: self._loop(labels, tf.constant(1.0), tf.constant(0), seed,
                                                           given=(values, known)),
            input_signature=[
                tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, self.num_dims], tf.int32),
                tf.TensorSpec([None, self.num_dims], tf.bool), tf.TensorSpec([2], tf.int64),
            ],
            autograph=False,
        ))

    def export_endpoints(self):
        """SavedModel endpoints (see `tfgen.export`): `log_prob(images[, labels])` → nats per image,
        `sample(n, seed)` — `sample(labels, seed)` for conditional models — → images in [0, 1], and
        `complete(images, mask, seed[, labels])` → one completion per image, what `complete(..., n=1,
        particles=1, seed=seed)` gives (mask (B, H, W, C), 1 = known).

        The int64 `seed` plays the part of `sample(..., seed=seed)`: the endpoint returns what
        `model.sample(n, labels, seed=seed)` does (temperature 1, every level).
        """
        seed = tf.TensorSpec([], tf.int64, name="seed")
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        mask = tf.TensorSpec([None, *self.image_shape], tf.float32, name="mask")
        if self.requires_labels:
            labels = tf.TensorSpec([None], tf.int32, name="labels")
            return {"sample": (self._seeded_sample, [labels, seed]), "log_prob": (self.log_prob, [images, labels]),
                    "complete": (self._seeded_complete, [images, mask, seed, labels])}
        return {
            "sample": (lambda n, seed: self._seeded_sample(tf.zeros([n], tf.int32), seed),
                       [tf.TensorSpec([], tf.int32, name="n"), seed]),
            "log_prob": (self.log_prob, [images]),
            "complete": (lambda images, mask, seed: self._seeded_complete(
                images, mask, seed, tf.zeros([tf.shape(images)[0]], tf.int32)), [images, mask, seed]),
        }

    def _seeded_sample(self, labels, seed):
        """`sample` from graph tensors: int32 labels (B,) and an int64 scalar seed."""
        if self.requires_labels:
            labels = conditioning.as_labels(labels, self.num_classes)  # graph assertions on the range
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])  # = draw_seed(int seed)
        _, pixel_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        canvas = self._loop(labels, tf.constant(1.0), tf.constant(0), pixel_seed)
        return tf.reshape(tf.cast(canvas, tf.float32), [-1, *self.image_shape]) / float(self.levels - 1)

    def stepwise_logits(self, images, labels=None):
        """Logits (B, H, W, C, levels) computed by the sampler's cached step, fed the true pixels.

        The same numbers as `pixel_logits` up to rounding; tests compare the two,
        which checks the cache.
        """
        images, labels = self._images_and_labels(images, labels)
        q = tf.reshape(self.to_levels(images), [tf.shape(images)[0], self.num_dims])
        if labels is None:
            labels = tf.zeros([tf.shape(images)[0]], tf.int32)
        stepwise = self.cached_function("stepwise", lambda: tf.function(
            lambda labels, q: self._loop(labels, 1.0, 0, tf.zeros([2], tf.int64), teacher=q), autograph=False))
        logits = stepwise(labels, q)
        return tf.reshape(logits, [tf.shape(images)[0], *self.image_shape, self.levels])

    def _sample_labels(self, n, labels, seed):
        if not self.requires_labels:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is unconditional (conditional=False): do not pass labels")
            return tf.zeros([n], tf.int32)
        if labels is None:  # stateless, from the label stream of `sample`'s seed (the export draws the same)
            return tf.random.stateless_uniform([n], seed=seed, maxval=self.num_classes, dtype=tf.int32)
        return conditioning.as_labels(labels, self.num_classes, n)  # the zoo's checks and messages
