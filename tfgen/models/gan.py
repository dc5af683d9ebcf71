"""Generative adversarial network (Goodfellow et al. 2014) with two optimisers.

The documents' GAN had generator and discriminator re-created on every call,
the generator outside the gradient tape, a discriminator loss that never saw a
fake, and one optimiser for both networks (README defects 1–9). Here:

* generator G and discriminator D are built once, as named sub-models;
* D minimises BCE(1, D(x)) + BCE(0, D(G(z))), G the non-saturating −log D(G(z)),
  both on logits;
* each network has its own optimiser: `compile(d_optimizer=..., g_optimizer=...)`;
* one step draws the fakes once: D is updated on them, then G is updated through
  the same fakes scored by the updated D (alternating updates, one generator
  pass; the common Keras pattern runs the generator twice per step).

Images are [0, 1] outside the model and [−1, 1] inside (tanh generator output).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks, losses
from tfgen.layers.networks import conv_features, dense_stack, upsampling_decoder
from tfgen.models.base import GenerativeModel
from tfgen.registry import register_model

ARCHITECTURES = ("dcgan", "mlp")
#: Former names of architectures (and presets) that still work, e.g. in `.keras` files saved before.
FORMER_NAMES = {"document": "mlp"}


@register_model("gan")
class GAN(GenerativeModel):
    """Unconditional GAN: `architecture` picks the networks, `width` scales them."""

    halving_networks = True

    PRESETS = {
        # The articles' networks, corrected for 28×28×1 (formerly `document`; 28×28 only). Generator: an
        # MLP, Dense 4096 → 2048 → 7·7·64, then transposed convs 128, 256 → 28×28×1; discriminator:
        # an MLP, Flatten → Dense 1024-512-256-128-64 → 1 logit. Noise dim 100.
        "mlp": dict(architecture="mlp", latent_dim=100, width=64),
        # DCGAN-style (Radford et al. 2016): transposed convs with batch norm in G, strided convs
        # in D. Width 32, not DCGAN's 64: a quarter of the cost per image, and a GAN's quality
        # on a CPU budget is bound by the number of updates, not by capacity (measured on the
        # bundled digits: width 64, batch 64, 5 epochs = 660 steps, 137 images/s, no
        # recognisable digits; width 32, batch 32: 430 images/s, digits by ~10 epochs).
        "default": dict(architecture="dcgan", latent_dim=64, width=32),
        "tiny": dict(architecture="dcgan", latent_dim=8, width=4),
    }
    PRESET_ALIASES = FORMER_NAMES
    # Small batches: more updates per epoch (see the `default` preset). Measured on the bundled
    # digits, 5 epochs each, evaluator-feature FID of 1000 samples: batch 32 27.1, batch 16 15.9,
    # batch 8 14.3 (at 1.3× the time of batch 16); learning rate 5e-4 at batch 32: 18.9.
    FIT_DEFAULTS = {"steps": 5310, "batch_size": 16}  # 10 passes over the 8,499 bundled digits

    def __init__(
        self, architecture="dcgan", latent_dim=64, width=64, dropout=0.0, learning_rate=2e-4, beta_1=0.5, **kwargs
    ):
        super().__init__(**kwargs)
        self.architecture = checks.one_of(FORMER_NAMES.get(architecture, architecture), ARCHITECTURES,
                                          "GAN architecture")
        self.check_image_size(self.image_shape, architecture=self.architecture)
        self.latent_dim = checks.positive_int(latent_dim, "latent_dim")
        self.width = checks.positive_int(width, "width")
        self.dropout = checks.fraction_below_one(dropout, "dropout")
        self.learning_rate = checks.positive_number(learning_rate, "learning_rate")
        self.beta_1 = checks.fraction_below_one(beta_1, "beta_1")
        self.generator = self.build_generator()
        self.discriminator = self.build_discriminator()
        self.d_optimizer = None
        self.g_optimizer = None
        self.declare_metrics("d_loss", "g_loss")

    # ------------------------------------------------------------------ networks
    def generator_trunk(self, inputs):
        """Noise (plus any conditioning, concatenated by subclasses) → image in [−1, 1], tanh per channel.

        DCGAN widths (2w, w) from the lowest resolution outward (the discriminator's (w, 2w)
        inward); an image that needs more levels (`tfgen.layers.resolution`) repeats 2w at the
        lower ones. Radford et al. double the width at each level instead: at 32×32 that
        costs 1.4× this step's FLOPs, on a CPU budget where a GAN is bound by its update count.
        """
        w = self.width
        if self.architecture == "mlp":
            x = upsampling_decoder(
                inputs, self.image_shape, (2 * w, 4 * w), activation="leaky_relu", batch_norm=True,
                kernel_size=4, dense_units=(4 * 4 * 4 * w, 4 * 4 * 2 * w), name="gen",
            )
        else:
            x = upsampling_decoder(
                inputs, self.image_shape, (2 * w, w), activation="leaky_relu", batch_norm=True, kernel_size=4,
                name="gen",
            )
        return layers.Activation("tanh", dtype="float32", name="to_image")(x)

    def discriminator_trunk(self, images):
        """Image → feature vector (the last layer before the logit)."""
        w = self.width
        if self.architecture == "mlp":
            return dense_stack(layers.Flatten()(images), (16 * w, 8 * w, 4 * w, 2 * w, w), name="disc_dense")
        h = conv_features(images, (w, 2 * w), activation="leaky_relu", kernel_size=4, name="disc_conv")
        return layers.Dropout(self.dropout)(h) if self.dropout else h

    def build_generator(self):
        noise = keras.Input((self.latent_dim,), name="noise")
        return keras.Model(noise, self.generator_trunk(noise), name="generator")

    def build_discriminator(self):
        images = keras.Input(self.image_shape, name="images")
        logit = layers.Dense(1, dtype="float32", name="logit")(self.discriminator_trunk(images))
        return keras.Model(images, logit, name="discriminator")

    @classmethod
    def check_image_size(cls, image_shape, architecture="dcgan", **hyperparameters):
        """Any size of `tfgen.layers.resolution` for the DCGAN networks; 28×28 only for the documents'
        dense networks, whose layer sizes are the articles' (a dense discriminator on 64×64×3 pixels
        would have 13M weights in its first layer alone)."""
        shape = super().check_image_size(image_shape, **hyperparameters)
        if FORMER_NAMES.get(architecture, architecture) == "mlp" and shape[:2] != (28, 28):
            raise ValueError(f"{cls.__name__} architecture 'mlp' (the articles' networks) is for 28×28 images "
                             f"only, got {shape[0]}×{shape[1]}: use architecture 'dcgan' for other sizes")
        return shape

    # ------------------------------------------------------------------ compile
    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Two optimisers, one per network (the documents shared one: README defect 5)."""
        # The base optimizer slot is unused; give Keras the generator's so that
        # `model.optimizer.iterations` counts training steps.
        self.d_optimizer = self.wrap_optimizer(d_optimizer or self.make_optimizer())
        self.g_optimizer = self.wrap_optimizer(g_optimizer or self.make_optimizer())
        super().compile(optimizer=self.g_optimizer, **kwargs)
        # Build the optimiser slots now, inside any strategy scope: Keras 3.15 crashes
        # under MirroredStrategy when an extra optimiser builds lazily inside the step.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def make_optimizer(self):
        return keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1)

    def default_compile(self, **kwargs):
        self.compile(**kwargs)

    def get_compile_config(self):
        # Without this a reloaded .keras GAN silently loses both optimisers.
        if self.d_optimizer is None:  # never compiled: nothing to restore
            return None
        config = super().get_compile_config() or {}
        config.pop("optimizer", None)
        return {
            **config,
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
        }

    def compile_from_config(self, config):
        config = dict(config)
        d_optimizer = keras.optimizers.deserialize(config.pop("d_optimizer"))
        g_optimizer = keras.optimizers.deserialize(config.pop("g_optimizer"))
        config = {k: v for k, v in config.items() if k in ("jit_compile", "steps_per_execution", "run_eagerly")}
        self.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer, **config)

    # ------------------------------------------------------------------ the model
    def generate(self, noise, labels=None, training=False):
        """Generator output in [−1, 1]."""
        return self.generator(noise, training=training)

    def discriminate(self, images, labels=None, training=False):
        return self.discriminator(images, training=training)

    def images_from_noise(self, noise, labels=None):
        """G(z) mapped to [0, 1], float32: what `sample` returns for the noise it draws."""
        return (tf.cast(self.generate(noise, labels), tf.float32) + 1.0) / 2.0

    def sample(self, n, labels=None, seed=None):
        noise = self.normal([checks.positive_int(n, "n"), self.latent_dim], seed=seed)
        return self.images_from_noise(noise, labels)

    def export_endpoints(self):
        """`sample(noise[, labels])` → images in [0, 1] (labels for conditional subclasses)."""
        labels = [tf.TensorSpec([None], tf.int32, name="labels")] if self.conditional else []
        noise = tf.TensorSpec([None, self.latent_dim], tf.float32, name="noise")
        return {"sample": (self.images_from_noise, [noise, *labels])}

    def call(self, inputs, training=False):
        """Discriminator logits for a batch of [0, 1] images."""
        images, labels = self.unpack(inputs)
        return self.discriminate(images * 2.0 - 1.0, labels, training=training)

    def discriminator_loss(self, real, fake, labels=None, training=False):
        """D's loss on a batch of real and fake images; also returns D's logits on the fakes."""
        batch = tf.shape(real)[0]
        # One discriminator pass over real and fake together: one larger matmul is
        # cheaper than two, and D has no batch norm whose statistics would mix them.
        both_labels = None if labels is None else tf.concat([labels, labels], 0)
        logits = self.discriminate(tf.concat([real, tf.cast(fake, real.dtype)], 0), both_labels, training=training)
        return losses.discriminator_loss(logits[:batch], logits[batch:]), logits[batch:]

    def compute_losses(self, real, labels=None, training=False):
        """Both losses against the current discriminator (for evaluation)."""
        fake = self.generate(self.normal([tf.shape(real)[0], self.latent_dim]), labels, training=training)
        d_loss, fake_logits = self.discriminator_loss(real, fake, labels, training)
        return {"d_loss": d_loss, "g_loss": losses.generator_loss(fake_logits)}

    def train_step(self, data):
        """Alternating updates with one generator pass.

        D is updated first on this step's fakes; G's loss then scores the *same*
        fakes with the updated D. Alternating (not simultaneous) updates are the
        stable choice (Mescheder et al. 2017, "The Numerics of GANs"), and reusing
        the fakes avoids the second generator pass of the usual Keras pattern.
        """
        images, labels = self.unpack(data)
        real = images * 2.0 - 1.0
        noise = self.normal([tf.shape(real)[0], self.latent_dim])
        with tf.GradientTape() as g_tape:
            fake = self.generate(noise, labels, training=True)
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                d_loss, _ = self.discriminator_loss(real, fake, labels, training=True)
                d_scaled = self.d_optimizer.scale_loss(self.per_replica(d_loss))
            self.minimize(self.d_optimizer, d_tape, d_scaled, self.discriminator.trainable_variables)
            g_loss = losses.generator_loss(self.discriminate(fake, labels, training=True))
            g_scaled = self.g_optimizer.scale_loss(self.per_replica(g_loss))
        self.minimize(self.g_optimizer, g_tape, g_scaled, self.generator.trainable_variables)
        return self.track({"d_loss": d_loss, "g_loss": g_loss})

    def test_step(self, data):
        images, labels = self.unpack(data)
        return self.track(self.compute_losses(images * 2.0 - 1.0, labels, training=False))
