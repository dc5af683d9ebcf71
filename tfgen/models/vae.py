"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

The documents' "VAE" used flattened conv features directly as z, with a KL term
that was not a KL divergence (README defects 10–14). This is the real thing:

    q(z | x) = N(μ(x), diag σ²(x)),  p(z) = N(0, I),  p(x | z) = Bernoulli(decoder(z))
    ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z))

trained by maximising a one-sample estimate of the ELBO with the
reparameterisation z = μ + σ·ε. The loss is −ELBO in nats per image:
reconstruction summed over pixels plus `beta` × KL summed over latent dims,
both averaged over the batch (`beta` = 1 is the ELBO; β-VAE, Higgins et al. 2017,
otherwise).

Colour images get one Bernoulli logit per pixel and channel, and samples are the
decoder's means σ(logit) per channel. On continuous pixels the Bernoulli
cross-entropy is not a normalised likelihood (its normaliser is missing: Loaiza-Ganem
& Cunningham 2019, "The continuous Bernoulli"), but it is the common simple choice
(keras.io's VAE, most VAE zoos), its minimiser is still the pixel value, and it
keeps one loss for grey and colour data; nats are then comparable between runs of
this model, not with published likelihoods on colour images.

Given images: `reconstruct`, `interpolate(first, second)` between their codes, and
`complete(images, mask)` by the encode–decode chain of Rezende et al. 2014 (`complete_batch`).

Presets, fit defaults and flags: `vae.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks, losses
from tfgen.layers import conditioning
from tfgen.layers.networks import DOWNSAMPLING, conv_features, dense_stack, upsampling_decoder
from tfgen.models.base import GenerativeModel, check_mask_values, stateless_seed
from tfgen.registry import register_model


@register_model("vae")
class VAE(GenerativeModel):
    """Convolutional VAE with a Gaussian posterior and a Bernoulli decoder (logits)."""

    def __init__(
        self,
        latent_dim=16,
        encoder_filters=(32, 64),
        downsample="stride",
        hidden_units=(256,),
        decoder_filters=(64, 32),
        beta=1.0,
        learning_rate=1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.latent_dim = checks.positive_int(latent_dim, "latent_dim")
        self.encoder_filters = tuple(encoder_filters)
        self.downsample = checks.one_of(downsample, DOWNSAMPLING, "downsample")
        self.hidden_units = tuple(hidden_units)
        self.decoder_filters = tuple(decoder_filters)
        self.beta = checks.number_at_least(beta, "beta", 0)
        self.learning_rate = checks.positive_number(learning_rate, "learning_rate")
        self.encoder = self.build_encoder()
        self.decoder = self.build_decoder()
        self.declare_metrics("loss", "reconstruction_loss", "kl_loss")

    # Conditional subclasses extend these two builders with a label input.
    def build_encoder(self, extra_inputs=()):
        images = keras.Input(self.image_shape, name="images")
        h = conv_features(images, self.encoder_filters, self.downsample, name="enc_conv")
        if extra_inputs:
            h = layers.Concatenate()([h, *(e for _, e in extra_inputs)])
        h = dense_stack(h, self.hidden_units, name="enc_dense")
        # float32 heads: exp(log_var) and the KL are computed in float32 under mixed precision.
        z_mean = layers.Dense(self.latent_dim, dtype="float32", name="z_mean")(h)
        z_log_var = layers.Dense(self.latent_dim, dtype="float32", name="z_log_var")(h)
        inputs = [images, *(i for i, _ in extra_inputs)]
        return keras.Model(inputs if extra_inputs else images, [z_mean, z_log_var], name="encoder")

    def build_decoder(self, extra_inputs=()):
        z = keras.Input((self.latent_dim,), name="z")
        h = layers.Concatenate()([z, *(e for _, e in extra_inputs)]) if extra_inputs else z
        logits = upsampling_decoder(
            h, self.image_shape, self.decoder_filters, dense_units=tuple(reversed(self.hidden_units)), name="dec"
        )
        inputs = [z, *(i for i, _ in extra_inputs)]
        return keras.Model(inputs if extra_inputs else z, logits, name="decoder")

    def default_compile(self, **kwargs):
        self.compile(optimizer=keras.optimizers.Adam(self.learning_rate), **kwargs)

    # ------------------------------------------------------------------ the model
    def _encoder_inputs(self, images, labels):
        return images

    def _decoder_inputs(self, z, labels):
        return z

    def encode(self, images, labels=None, training=False):
        """Posterior parameters (z_mean, z_log_var) of q(z | x)."""
        return self.encoder(self._encoder_inputs(images, labels), training=training)

    def decode_logits(self, z, labels=None, training=False):
        return self.decoder(self._decoder_inputs(z, labels), training=training)

    def decode(self, z, labels=None):
        """Mean of p(x | z): pixel probabilities in [0, 1]."""
        return tf.sigmoid(tf.cast(self.decode_logits(z, labels), tf.float32))

    def reparameterize(self, z_mean, z_log_var, seed=None):
        eps = self.normal(tf.shape(z_mean), seed=seed)
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    def reconstruct(self, images, labels=None):
        """Decode the posterior mean: the deterministic reconstruction."""
        z_mean, _ = self.encode(images, labels)
        return self.decode(z_mean, labels)

    def health_checks(self):
        """KL per latent dimension and active units (`tfgen.health.LatentUsage`): posterior collapse shows there."""
        from tfgen.health import LatentUsage

        return [LatentUsage()]

    def sample(self, n, labels=None, seed=None):
        """Decode `n` draws from the prior N(0, I): pixel probabilities in [0, 1]."""
        z = self.normal([checks.positive_int(n, "n"), self.latent_dim], seed=seed)
        return self.decode(z, labels)

    # ------------------------------------------------------------------ completion, interpolation
    #: Passes of the encode–decode chain that `complete` runs when none are asked for.
    COMPLETE_ITERATIONS = 50

    def complete_batch(self, images, mask, labels, seed, iterations=None):
        """Fill in the unknown pixels by iterating the latent: the chain of Rezende et al. 2014 ("Stochastic
        Backpropagation and Approximate Inference in Deep Generative Models", §7.3 and App. F).

        Start from the known pixels with the unknown ones decoded from a prior draw z ~ p(z); then,
        `iterations` times (default `COMPLETE_ITERATIONS`): draw z ~ q(z | x) from the encoder, decode
        it, and replace the unknown pixels by the decoder's mean, keeping the known ones. Each pass
        pulls z towards codes that explain the known pixels; Rezende et al. show the chain
        converges to the model's conditional when q is exact (with an approximate q it is an
        approximation: Mattei & Frellsen 2018 correct it with Metropolis–Hastings). Known pixels
        are returned as given; the draws make the n completions of an image differ.

        A conditional model (cVAE) given no labels does not need the class: each completion draws it from
        p(y | known pixels) (`class_posterior`), so it completes from the mixture over classes.
        """
        iterations = checks.positive_int(self.COMPLETE_ITERATIONS if iterations is None else iterations, "iterations")
        count = images.shape[0]
        if self.requires_labels and labels is None:  # the class too is unknown: drawn from p(y | known pixels)
            chain = self.cached_function("complete_any_class",
                                         lambda: tf.function(self._class_inferred_chain, autograph=False))
            return chain(images, mask, self.draw_seed(seed), tf.constant(iterations))
        if self.requires_labels:
            labels = conditioning.as_labels(labels, self.num_classes, count)
        elif labels is not None:
            raise ValueError(f"{type(self).__name__} is unconditional: complete takes no labels")
        else:
            labels = tf.zeros([count], tf.int32)
        chain = self.cached_function("complete", lambda: tf.function(self._latent_chain, autograph=False))
        return chain(images, mask, labels, self.draw_seed(seed), tf.constant(iterations))

    def _latent_chain(self, images, mask, labels, seed, iterations):
        labels = labels if self.requires_labels else None
        keep = lambda decoded: mask * images + (1.0 - mask) * decoded
        z = tf.random.stateless_normal([tf.shape(images)[0], self.latent_dim], seed=seed)

        def body(k, x):
            z_mean, z_log_var = self.encode(x, labels)
            eps = tf.random.stateless_normal(tf.shape(z_mean), seed=tf.random.experimental.stateless_fold_in(seed, k))
            return k + 1, keep(self.decode(z_mean + tf.exp(0.5 * z_log_var) * eps, labels))

        _, x = tf.while_loop(lambda k, x: k <= iterations, body, (tf.constant(1), keep(self.decode(z, labels))))
        return x

    def class_posterior(self, images, mask, seed=None, iterations=None):
        """Conditional models: p(y | the known pixels), (B, num_classes), each class's probability given only
        the pixels where `mask` is 1 — the model used as a classifier of partial images (Bayes' rule with a
        uniform prior over classes). Per class, the completion chain runs with that class, and the class's
        evidence log p(x_known | y) is approximated by the ELBO of the known pixels at the chain's end
        (`_known_pixel_elbo`); the softmax of those over the classes is the posterior."""
        if not self.requires_labels:
            raise ValueError(f"{type(self).__name__} is unconditional: it has no classes to weigh")
        images = self.check_images(images)
        from tfgen.complete import check_mask

        mask = tf.constant(check_mask(mask, images.shape))
        iterations = checks.positive_int(self.COMPLETE_ITERATIONS if iterations is None else iterations, "iterations")
        scores = self.cached_function("class_scores", lambda: tf.function(self._class_scores, autograph=False))
        return tf.nn.softmax(scores(images, mask, self.draw_seed(seed), tf.constant(iterations))[0], axis=-1)

    def _class_scores(self, images, mask, seed, iterations):
        """(scores (B, K): the known pixels' ELBO under each class, completions (B, K, H, W, C): the chain's
        end under each class), all classes of all images in one batch."""
        classes, count = self.num_classes, tf.shape(images)[0]
        every_class = tf.tile(tf.range(classes, dtype=tf.int32), [count])
        tiled_images, tiled_mask = tf.repeat(images, classes, axis=0), tf.repeat(mask, classes, axis=0)
        completed = self._latent_chain(tiled_images, tiled_mask, every_class, seed, iterations)
        scores = self._known_pixel_elbo(completed, tiled_mask, every_class)
        return (tf.reshape(scores, [count, classes]),
                tf.reshape(completed, [count, classes, *self.image_shape]))

    def _known_pixel_elbo(self, images, mask, labels):
        """log p(x_known | y) ≈ E_q[log p(x_known | z, y)] − KL(q(z | x, y) ‖ p(z)), with the expectation taken
        at the posterior mean (one deterministic point: enough to rank classes whose evidence differs by
        many nats). Only the known sub-pixels count: the unknown ones were filled in by the model itself."""
        z_mean, z_log_var = self.encode(images, labels)
        reconstruction = losses.bernoulli_nll(images, self.decode_logits(z_mean, labels), mask)
        return -reconstruction - losses.gaussian_kl(z_mean, z_log_var)

    def _class_inferred_chain(self, images, mask, seed, iterations):
        """Completion when the class is unknown too: p(x_unknown | x_known) = Σ_y p(y | x_known) p(x_unknown |
        x_known, y). Each row draws its class from `class_posterior`'s estimate and keeps that class's chain."""
        scores, completed = self._class_scores(images, mask, seed, iterations)
        chosen = tf.random.stateless_categorical(
            scores, 1, seed=tf.random.experimental.stateless_fold_in(seed, self.CLASS_DRAW_STREAM))[:, 0]
        return tf.gather(completed, tf.cast(chosen, tf.int32), batch_dims=1)

    #: The seed stream (`stateless_fold_in`) of the class draw, apart from the chain's streams 1…iterations.
    CLASS_DRAW_STREAM = 2**30

    def interpolate(self, first, second, steps=8, labels=None, method="slerp"):
        """Decode points on the way between the codes (posterior means) of two batches of images:
        (B, steps, H, W, C) in [0, 1], the first and last being the two reconstructions.

        method: "slerp" (default, along the great circle, White 2016) or "linear" (`tfgen.plotting.interpolate`).
        labels: conditional models only — the class to encode and decode every image with (an int or B ids).
        """
        from tfgen.plotting import interpolate

        first, second = self.check_images(first), self.check_images(second)
        if first.shape[0] != second.shape[0]:
            raise ValueError(f"interpolate needs as many first images as second ones, got {first.shape[0]} and "
                             f"{second.shape[0]}")
        count = first.shape[0]
        if self.requires_labels:
            labels = conditioning.as_labels(labels, self.num_classes, count)
        elif labels is not None:
            raise ValueError(f"{type(self).__name__} is unconditional: interpolate takes no labels")
        z = interpolate(self.encode(first, labels)[0].numpy(), self.encode(second, labels)[0].numpy(), steps, method)
        decoded_labels = None if labels is None else tf.repeat(labels, steps)
        return tf.reshape(self.decode(tf.constant(z), decoded_labels), [count, steps, *self.image_shape])

    def export_endpoints(self):
        """`sample(noise[, labels])` and `decode(z[, labels])` → images in [0, 1];
        `complete(images, mask, seed[, labels])` → `complete(..., n=1, seed=seed)`'s completions;
        `interpolate(first, second, steps[, labels])` → `interpolate(first, second, steps, method="linear")`,
        (B, steps, H, W, C): the straight line between posterior means (the natural path between two given
        images' codes; slerp is for prior draws, White 2016);
        `encode(images[, labels])` → {z_mean, z_log_var} (outputs named, for `saved_model_cli` and TF Serving).
        Labels for conditional subclasses."""
        labels = [tf.TensorSpec([None], tf.int32, name="labels")] if self.requires_labels else []
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        mask = tf.TensorSpec([None, *self.image_shape], tf.float32, name="mask")

        def complete(images, mask, seed, labels=None):
            labels = tf.zeros([tf.shape(images)[0]], tf.int32) if labels is None else labels
            return self._latent_chain(images, check_mask_values(mask), labels, stateless_seed(seed),
                                      tf.constant(self.COMPLETE_ITERATIONS))

        def interpolate(first, second, steps, labels=None):
            count = tf.shape(first)[0]
            z0, z1 = self.encode(first, labels)[0], self.encode(second, labels)[0]
            t = tf.linspace(0.0, 1.0, steps)[None, :, None]  # (1, steps, 1)
            z = tf.reshape((1.0 - t) * z0[:, None] + t * z1[:, None], [-1, self.latent_dim])
            decoded = self.decode(z, None if labels is None else tf.repeat(labels, steps))
            return tf.reshape(decoded, [count, steps, *self.image_shape])

        return {
            "sample": (self.decode, [tf.TensorSpec([None, self.latent_dim], tf.float32, name="noise"), *labels]),
            "interpolate": (interpolate, [tf.TensorSpec([None, *self.image_shape], tf.float32, name="first"),
                                          tf.TensorSpec([None, *self.image_shape], tf.float32, name="second"),
                                          tf.TensorSpec([], tf.int32, name="steps"), *labels]),
            "encode": (self._encode_named, [images, *labels]),
            "decode": (self.decode, [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z"), *labels]),
            "complete": (complete, [images, mask, tf.TensorSpec([], tf.int64, name="seed"), *labels]),
        }

    def _encode_named(self, images, labels=None):
        z_mean, z_log_var = self.encode(images, labels)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def call(self, inputs, training=False):
        """Reconstruction logits from the posterior mean (deterministic; what `predict` returns)."""
        images, labels = self.unpack(inputs)
        z_mean, _ = self.encode(images, labels, training=training)
        return self.decode_logits(z_mean, labels, training=training)

    def compute_losses(self, images, labels=None, training=False):
        """−ELBO and its two terms, in nats per image (batch means)."""
        z_mean, z_log_var = self.encode(images, labels, training=training)
        z = self.reparameterize(z_mean, z_log_var)
        logits = self.decode_logits(z, labels, training=training)
        reconstruction = tf.reduce_mean(losses.bernoulli_nll(images, logits))
        kl = tf.reduce_mean(losses.gaussian_kl(z_mean, z_log_var))
        return {"loss": reconstruction + self.beta * kl, "reconstruction_loss": reconstruction, "kl_loss": kl}

    def train_step(self, data):
        images, labels = self.unpack(data)
        with tf.GradientTape() as tape:
            values = self.compute_losses(images, labels, training=True)
            scaled = self.optimizer.scale_loss(self.per_replica(values["loss"]))
        self.minimize(self.optimizer, tape, scaled, self.trainable_variables)
        return self.track(values)

    def test_step(self, data):
        images, labels = self.unpack(data)
        return self.track(self.compute_losses(images, labels))
