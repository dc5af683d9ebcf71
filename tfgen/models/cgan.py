"""Conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets").

One generator G(z, y) and one discriminator D(x, y), both given the class label y;
the documents' skeleton trained a separate "generator" and "conditional generator"
instead (README defect 15). The losses, the two optimisers and the training
step are the GAN's (tfgen/models/gan.py): the GAN calls `generate(noise, labels)`
and `discriminate(images, labels)`, and this module only makes both networks take
the label.

* G: a learned label embedding is concatenated to the noise. `interpolate` walks
  the embedding from one class to another at fixed noise.
* D: `d_conditioning="projection"` (default) adds ⟨embed(y), φ(x)⟩ to the logit
  (Miyato & Koyama 2018); `"concat"` appends a learned per-class map to the image
  as an extra channel. Projection is the default because it trains better here:
  the label enters the logit linearly, so D cannot ignore it, and from the first
  epochs D penalises a well-drawn digit of the wrong class. With concatenation D
  must first learn to use one extra input channel, and G learns the class later.
  Miyato & Koyama compare the two on CIFAR-10 and ImageNet and find projection
  better; no comparison on tfgen's data sets is recorded in this repository.

Presets, fit defaults and flags: `cgan.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks
from tfgen.layers import conditioning
from tfgen.models.gan import GAN
from tfgen.registry import register_model

D_CONDITIONINGS = ("projection", "concat")
#: The name of the concat discriminator's label-map layer.
LABEL_MAP = "label_map"


@register_model("cgan")
class CGAN(GAN):
    """Class-conditional GAN: `sample(n, labels)` draws digits of the requested classes."""

    def __init__(self, embed_dim=32, d_conditioning="projection", mismatch_weight=1.0, **kwargs):
        # Set before GAN.__init__, which builds the networks from them.
        self.embed_dim = checks.positive_int(embed_dim, "embed_dim")
        self.d_conditioning = checks.one_of(d_conditioning, D_CONDITIONINGS, "d_conditioning")
        self.mismatch_weight = checks.number_at_least(mismatch_weight, "mismatch_weight", 0)
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ networks
    #: The concat discriminator's per-class map is an input channel of D, not a map of its input:
    #: spectral normalisation would only rescale it.
    unnormalised_layers = (LABEL_MAP,)

    def build_generator(self, name="generator"):
        """G(z, y) = body(z, embed(y)); `body` (`<name>_body`) is its own sub-model so that
        `interpolate` can feed it embeddings that belong to no single class."""
        noise = keras.Input((self.latent_dim,), name="noise")
        label_vector = keras.Input((self.embed_dim,), name="label_vector")
        h = layers.Concatenate(name="noise_and_label")([noise, label_vector])
        body = keras.Model([noise, label_vector], self.generator_trunk(h), name=f"{name}_body")

        labels = conditioning.label_input()
        # Initial norm ≈ 1, a one-hot vector's (Mirza & Osindero feed G a one-hot). Louder,
        # N(0, 1) per dimension, G draws one image per class and ignores the noise
        # (within-class spread 0.43 of the data's vs 0.75 here, 5 epochs); much
        # quieter (Keras' ±0.05), it learns the class later.
        embedded = conditioning.embed_labels(labels, self.num_classes, self.embed_dim, stddev=self.embed_dim**-0.5)
        return keras.Model([noise, labels], body([noise, embedded]), name=name)

    def build_discriminator(self):
        images = keras.Input(self.image_shape, name="images")
        labels = conditioning.label_input()
        if self.d_conditioning == "projection":
            logit = conditioning.projection_logit(self.discriminator_trunk(images), labels, self.num_classes)
        else:
            label_map = conditioning.label_channel(labels, self.num_classes, self.image_shape, name=LABEL_MAP)
            x = layers.Concatenate(name="image_and_label")([images, label_map])
            logit = layers.Dense(1, dtype="float32", name="logit")(self.discriminator_trunk(x))
        return keras.Model([images, labels], logit, name="discriminator")

    # ------------------------------------------------------------------ the model
    def generate(self, noise, labels=None, training=False, averaged=False):
        labels = conditioning.as_labels(labels, self.num_classes)
        return (self.sampling_generator if averaged else self.generator)([noise, labels], training=training)

    def discriminate(self, images, labels=None, training=False):
        labels = conditioning.as_labels(labels, self.num_classes)
        return self.discriminator([images, labels], training=training)

    def discriminator_loss(self, real, fake, labels=None, training=False):
        """The GAN's D loss, plus (if `mismatch_weight` > 0) real images paired with wrong labels
        as extra negatives: the matching-aware discriminator of Reed et al. 2016 (GAN-CLS).

        Real-with-wrong-label pairs teach D what the label means from real data
        alone, before G draws anything digit-like; D then penalises a fake of the
        wrong class early. The extra pass scores the real batch only (D is cheap).
        """
        loss, real_logits, fake_logits = super().discriminator_loss(real, fake, labels, training)
        if self.mismatch_weight and self.num_classes > 1:
            # A uniformly drawn *other* class: shift by 1 … num_classes − 1.
            shift = tf.random.stateless_uniform(
                tf.shape(labels), seed=self.draw_seed(), minval=1, maxval=self.num_classes, dtype=tf.int32
            )
            logits = self.discriminate(self.augment(real, training), (labels + shift) % self.num_classes,
                                       training=training)
            # BCE(0, logit) = softplus(logit): "fake" is the target for a mismatched pair.
            loss += self.mismatch_weight * tf.reduce_mean(tf.nn.softplus(tf.cast(logits, tf.float32)))
        return loss, real_logits, fake_logits

    def sample(self, n, labels=None, seed=None):
        """`n` images in [0, 1] of the given classes: an int, a sequence/tensor of `n` ints,
        or None for classes drawn uniformly. Deterministic for an int `seed`."""
        n = checks.positive_int(n, "n")
        labels = conditioning.draw_or_check_labels(self, n, labels, seed)
        return self.images_from_noise(self.normal([n, self.latent_dim], seed=seed), labels)

    def interpolate(self, label_a, label_b, steps=8, n=1, seed=None):
        """Images morphing from class `label_a` to `label_b` at fixed noise.

        The label embedding is interpolated linearly, (1 − t)·e(a) + t·e(b) for t in
        [0, 1]; each of the `n` rows keeps one noise vector (one "style") throughout.
        Returns (n, steps, H, W, C) in [0, 1], drawn by `sampling_generator` as `sample` is.
        """
        n, steps = checks.positive_int(n, "n"), checks.positive_int(steps, "steps")
        ends = conditioning.as_labels([label_a, label_b], self.num_classes, name="label_a, label_b")
        generator = self.sampling_generator
        table = generator.get_layer("label_embedding")
        e_a, e_b = tf.unstack(tf.cast(table(ends), "float32"))
        t = tf.linspace(0.0, 1.0, steps)[:, None]
        vectors = tf.tile((1.0 - t) * e_a + t * e_b, [n, 1])  # row-major: sample i, step j
        noise = tf.repeat(self.normal([n, self.latent_dim], seed=seed), steps, axis=0)
        images = generator.get_layer(f"{generator.name}_body")([noise, vectors], training=False)
        return tf.reshape((tf.cast(images, tf.float32) + 1.0) / 2.0, [n, steps, *self.image_shape])
