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

For small data sets, each a constructor hyperparameter, off at the constructor's defaults
(so a config or `.keras` file that does not name them describes the plain GAN):

* `diff_augment`: differentiable augmentation of every image D sees, real and fake, in both
  steps (Zhao et al. 2020, `tfgen.layers.augment`); `tfgen.train` turns it on for training
  sets below `SMALL_DATA_EXAMPLES` images (`small_data_overrides`);
* `ema_decay`: an exponential moving average of G's weights, `ema_generator`, updated after
  every G step (Karras et al. 2018; Yazıcı et al. 2019). `sample`, and so the grids,
  evaluation, the `.keras` file's samples and the SavedModel export, draw with it; the
  optimiser trains `generator`;
* `r1_gamma`, `r1_every`: the R1 gradient penalty on real images (Mescheder et al. 2018),
  lazily every `r1_every` steps (Karras et al. 2020);
* `spectral_norm`: spectral normalisation of D's conv and dense layers (Miyato et al. 2018,
  `tfgen.layers.spectral_norm`).

Images are [0, 1] outside the model and [−1, 1] inside (tanh generator output).

Presets, fit defaults and flags: `gan.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks, losses
from tfgen.layers import augment, ema
from tfgen.layers.networks import conv_features, dense_stack, upsampling_decoder
from tfgen.layers.spectral_norm import spectrally_normalized
from tfgen.models.base import GenerativeModel
from tfgen.registry import register_model

ARCHITECTURES = ("dcgan", "mlp")
#: Former names of architectures (and presets) that still work, e.g. in `.keras` files saved before.
FORMER_NAMES = {"document": "mlp"}
#: Below this many training images `tfgen.train` turns DiffAugment on (`small_data_overrides`).
#: Zhao et al. 2020 measured DiffAugment's gains growing as the data shrink: modest on all of
#: CIFAR-10 (50k), large at 10% of it, decisive on their 100-shot sets (100–400 images), where the
#: unaugmented baselines collapse. Those gains are at convergence, after D has begun to memorise
#: the data; before that, augmenting D's view slows G down. In this project's runs of a few
#: thousand steps D had not begun to memorise even 200 images (its accuracy on reals 0.76 after
#: 3,000 steps = 240 epochs), and DiffAugment raised the FID 1.3–2.4× at every size measured: the first
#: 200, 500 and 2,000 bundled digits and the emoji folder, 1,715 training images (benchmarks/results/
#: gan_small_data*.md). So it is on only in the few-shot range, below the smallest size measured.
SMALL_DATA_EXAMPLES = 200


@register_model("gan")
class GAN(GenerativeModel):
    """Unconditional GAN: `architecture` picks the networks, `width` scales them."""

    CANNOT_COMPLETE = ("a GAN has no encoder, so no way to find the noise that explains given pixels "
                       "(a latent-optimisation inversion is not implemented); use diffusion, flow, a VAE or an "
                       "autoregressive model")

    def __init__(
        self, architecture="dcgan", latent_dim=64, width=64, dropout=0.0, learning_rate=2e-4, beta_1=0.5,
        diff_augment="", ema_decay=0.0, r1_gamma=0.0, r1_every=16, spectral_norm=False, **kwargs
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
        self.diff_augment = ",".join(augment.parse_policy(diff_augment))
        self.ema_decay = checks.fraction_below_one(ema_decay, "ema_decay")
        self.r1_gamma = checks.number_at_least(r1_gamma, "r1_gamma", 0)
        self.r1_every = checks.positive_int(r1_every, "r1_every")
        self.spectral_norm = bool(spectral_norm)
        self.generator = self.build_generator()
        discriminator = self.build_discriminator()
        if self.spectral_norm:  # a copy with normalised layers; the plain D is never an attribute (nor saved)
            discriminator = spectrally_normalized(discriminator, keep=self.unnormalised_layers)
        self.discriminator = discriminator
        if self.ema_decay:  # built after D: G's and D's initial weights are those of the same seed without EMA
            self.ema_generator = self.build_generator(name="ema_generator")
            self.ema_generator.trainable = False
            # Its batch norms stay trainable, so that a training-mode call updates their statistics
            # (`update_ema_generator`); no optimiser holds their variables.
            for layer in self.ema_generator._flatten_layers():
                if isinstance(layer, layers.BatchNormalization):
                    layer.trainable = True
            ema.copy_weights(self.ema_generator, self.generator)
        self.d_optimizer = None
        self.g_optimizer = None
        # D's accuracy on real and on fake images (logit > 0 means "real"): near 1 and 1, D has
        # won and G's gradient fades; both near 0.5 with falling quality, G may have collapsed.
        self.declare_metrics("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")

    #: Names of D's layers that `spectral_norm` leaves alone (inputs of D, not maps of its input).
    unnormalised_layers = ()

    @classmethod
    def small_data_overrides(cls, num_examples):
        """DiffAugment for training sets below `SMALL_DATA_EXAMPLES` images (see there)."""
        return {"diff_augment": augment.ALL} if num_examples < SMALL_DATA_EXAMPLES else {}

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

    def build_generator(self, name="generator"):
        noise = keras.Input((self.latent_dim,), name="noise")
        return keras.Model(noise, self.generator_trunk(noise), name=name)

    def build_discriminator(self):
        images = keras.Input(self.image_shape, name="images")
        logit = layers.Dense(1, dtype="float32", name="logit")(self.discriminator_trunk(images))
        return keras.Model(images, logit, name="discriminator")

    @classmethod
    def image_size_error(cls, image_shape, architecture="dcgan", **hyperparameters):
        """Any size of `tfgen.layers.resolution` for the DCGAN networks; 28×28 only for the articles'
        dense networks, whose layer sizes are the articles' (a dense discriminator on 64×64×3 pixels
        would have 13M weights in its first layer alone)."""
        if FORMER_NAMES.get(architecture, architecture) == "mlp" and tuple(image_shape[:2]) != (28, 28):
            return (f"architecture 'mlp' (the articles' networks) is for 28×28 images only, got "
                    f"{image_shape[0]}×{image_shape[1]}: use architecture 'dcgan' for other sizes")
        return super().image_size_error(image_shape, **hyperparameters)

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
    @property
    def sampling_generator(self):
        """The generator that `sample` and the exports draw with: the averaged one when `ema_decay` > 0."""
        return self.ema_generator if self.ema_decay else self.generator

    def generate(self, noise, labels=None, training=False, averaged=False):
        """Generator output in [−1, 1]; `averaged`: from `sampling_generator`, else from the trained one."""
        return (self.sampling_generator if averaged else self.generator)(noise, training=training)

    def discriminate(self, images, labels=None, training=False):
        return self.discriminator(images, training=training)

    def images_from_noise(self, noise, labels=None):
        """G(z) mapped to [0, 1], float32: what `sample` returns for the noise it draws."""
        return (tf.cast(self.generate(noise, labels, averaged=True), tf.float32) + 1.0) / 2.0

    def health_checks(self):
        """The samples' diversity against the real images': per class when the model takes labels
        (a cGAN's classes can collapse one by one), else overall (`tfgen.health.Diversity`)."""
        from tfgen.health import Diversity

        return [Diversity()]

    def sample(self, n, labels=None, seed=None):
        noise = self.normal([checks.positive_int(n, "n"), self.latent_dim], seed=seed)
        return self.images_from_noise(noise, labels)

    def export_endpoints(self):
        """`sample(noise[, labels])` → images in [0, 1] (labels for conditional subclasses)."""
        labels = [tf.TensorSpec([None], tf.int32, name="labels")] if self.requires_labels else []
        noise = tf.TensorSpec([None, self.latent_dim], tf.float32, name="noise")
        return {"sample": (self.images_from_noise, [noise, *labels])}

    def call(self, inputs, training=False):
        """Discriminator logits for a batch of [0, 1] images."""
        images, labels = self.unpack(inputs)
        return self.discriminate(images * 2.0 - 1.0, labels, training=training)

    def augment(self, images, training=True, seed=None):
        """`images` through DiffAugment's `diff_augment` policy in training (unchanged otherwise, or without one).

        Every image D sees in training goes through here, real and fake, in D's step and in
        G's (Zhao et al. 2020, §3); `seed` defaults to the next of the model's draws.
        """
        if not (training and self.diff_augment):
            return images
        return augment.diff_augment(images, self.diff_augment, self.draw_seed() if seed is None else seed)

    def discriminator_loss(self, real, fake, labels=None, training=False):
        """D's loss on a batch of real and fake images (augmented in training), and D's logits on
        the reals and on the fakes."""
        batch = tf.shape(real)[0]
        # One discriminator pass over real and fake together: one larger matmul is
        # cheaper than two, and D has no batch norm whose statistics would mix them.
        both_labels = None if labels is None else tf.concat([labels, labels], 0)
        both = self.augment(tf.concat([real, tf.cast(fake, real.dtype)], 0), training)
        logits = self.discriminate(both, both_labels, training=training)
        return losses.discriminator_loss(logits[:batch], logits[batch:]), logits[:batch], logits[batch:]

    def compute_losses(self, real, labels=None, training=False):
        """Both losses, and D's accuracies, against the current discriminator (for evaluation)."""
        fake = self.generate(self.normal([tf.shape(real)[0], self.latent_dim]), labels, training=training)
        d_loss, real_logits, fake_logits = self.discriminator_loss(real, fake, labels, training)
        return {"d_loss": d_loss, "g_loss": losses.generator_loss(fake_logits),
                **losses.discriminator_accuracies(real_logits, fake_logits)}

    def r1_penalty(self, real, labels=None, seed=None):
        """γ/2 · E‖∇ₓ D(x)‖² on the (augmented) real images x (Mescheder et al. 2018, eq. 9).

        D is evaluated in inference mode here (no dropout; spectral normalisation's `u` not
        updated), so that the penalty's second-order pass can sit in a `tf.cond`.
        """
        images = self.augment(real, True, seed)
        with tf.GradientTape() as tape:
            tape.watch(images)
            total = tf.reduce_sum(tf.cast(self.discriminate(images, labels, training=False), tf.float32))
        return losses.r1_penalty(tape.gradient(total, images), self.r1_gamma)

    def lazy_r1(self, real, labels=None):
        """`r1_every` × the R1 penalty on every `r1_every`-th D step, else 0 (Karras et al. 2020, "Analyzing
        and Improving the Image Quality of StyleGAN", App. B: lazy regularisation, scaled to keep its weight)."""
        if not self.r1_gamma:
            return 0.0
        seed = self.draw_seed()  # drawn every step, outside the cond: one random stream, whichever branch runs
        due = tf.equal(self.d_optimizer.iterations % self.r1_every, 0)
        return tf.cond(due, lambda: float(self.r1_every) * self.r1_penalty(real, labels, seed), lambda: 0.0)

    def update_ema_generator(self, noise, labels=None):
        """Average G's trained weights into `ema_generator`, then refresh its batch-norm statistics.

        The moving mean and variance are not averaged: those of the trained G describe the trained
        G's activations, not the averaged G's. Instead the averaged G runs once in training mode on
        this step's noise, so that its moving statistics follow its own activations (BigGAN's
        "standing statistics", Brock et al. 2019, kept up to date). Measured on the emoji folder
        (2,500 steps, seed 0, the same run): FID 37.8 with averaged statistics, 34.5 with its own.
        """
        ema.update_ema(self.ema_generator, self.generator, self.ema_decay, self.g_optimizer.iterations,
                       trainable_only=True)
        self.generate(noise, labels, training=True, averaged=True)

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
                d_loss, real_logits, fake_logits = self.discriminator_loss(real, fake, labels, training=True)
                regularised = d_loss + self.lazy_r1(real, labels)
                d_scaled = self.d_optimizer.scale_loss(self.per_replica(regularised))
            self.minimize(self.d_optimizer, d_tape, d_scaled, self.discriminator.trainable_variables)
            # The same policy as D's step, new draws: G learns against D's view of augmented fakes.
            g_loss = losses.generator_loss(self.discriminate(self.augment(fake), labels, training=True))
            g_scaled = self.g_optimizer.scale_loss(self.per_replica(g_loss))
        self.minimize(self.g_optimizer, g_tape, g_scaled, self.generator.trainable_variables)
        if self.ema_decay:
            self.update_ema_generator(noise, labels)
        return self.track({"d_loss": d_loss, "g_loss": g_loss,
                           **losses.discriminator_accuracies(real_logits, fake_logits)})

    def test_step(self, data):
        images, labels = self.unpack(data)
        return self.track(self.compute_losses(images * 2.0 - 1.0, labels, training=False))
