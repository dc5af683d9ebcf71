"""Latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models").

Diffuse an autoencoder's latents instead of pixels. A small KL-regularised autoencoder
(`tfgen.layers.autoencoder`) maps an H×W image to an (H/4)×(W/4)×4 latent and back; the
diffusion U-Net of `tfgen.models.diffusion` is trained on those latents and samples them,
and the decoder turns a sampled latent into an image. At 64×64 the U-Net runs at 16×16, a
sixteenth of the positions, which is the point: most of the cost of pixel diffusion is
spent on pixel-level detail the autoencoder can be trusted with (their §3).

Two stages, both trained by one `fit` (one `tfgen train`), each with its own optimiser and
its own variables:

1. the first `autoencoder_steps` steps train the encoder and decoder on reconstruction plus a
   small KL term (`tfgen.layers.autoencoder.autoencoder_losses`; logged as `ae_loss`,
   `recon_loss`, `kl_loss`). Each step also updates running means of the latents' first
   two moments (over the last ~100 steps), from which the scale factor follows:
2. the steps after train the denoiser on the encoder's latents times `latent_scale` = 1/std
   of the latents (Rombach et al.'s scale factor, their §4.3.2: diffusion's
   schedules assume unit-variance data), with the process's own loss (`loss`). The
   autoencoder is frozen: its optimiser no longer runs and the process's optimiser only ever
   sees the denoiser's variables, as in the paper (the decoder is never fine-tuned).

The metric `stage` (1 or 2, averaged over an epoch) says which one ran. `latent_scale` and
the moments are non-trainable variables of the model, so a `.keras` file, `--resume` and the
exported SavedModel carry them.

Why the stage is chosen outside the compiled step: a `tf.cond` around the two optimiser
updates works on one device, but under `tf.distribute` an optimiser's gradient all-reduce
inside a conditional branch is refused by TensorFlow ("`merge_call` called while defining a
new graph or a tf.function ... control flow statements that may potentially cross a
synchronization boundary"). So `fit` compiles one step function per stage and picks one
before each call from the autoencoder optimiser's step count (`make_train_function`); with
`steps_per_execution` k > 1 the switch comes at the first call after `autoencoder_steps`,
up to k − 1 steps late. `train_step` itself (for custom loops on one device) is that
`tf.cond`.

The latent-space logic lives in `LatentMixin`, written against the four hooks of
`Diffusion` (`sample_shape`, `to_model_space`, `to_images`, `clip_denoised`) and its
`train_step`, so it combines with any process that subclasses `Diffusion`:
`LatentDiffusion(LatentMixin, Diffusion)` here.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgen import checks
from tfgen.layers import autoencoder, resolution
from tfgen.models.base import GenerativeModel
from tfgen.models.diffusion import Diffusion
from tfgen.registry import register_model

#: The stage numbers logged by the `stage` metric.
AUTOENCODER_STAGE, LATENT_STAGE = 1, 2
#: Horizon of the running latent moments, in autoencoder steps (the decay's ceiling is 1 − 1/horizon).
MOMENTS_HORIZON = 100


class LatentMixin(GenerativeModel):
    """The autoencoder, the latent space hooks and the two-stage training of latent diffusion.

    Put it before a diffusion process class: `class Latent...(LatentMixin, Diffusion)`.
    """

    # Latents are unbounded: clipping x̂_0 to [−1, 1] at each reverse step would cut off
    # the tails of unit-variance latents (≈ 5% of values beyond ±2σ = ±2).
    clip_denoised = False
    # The image sizes are those whose latents the U-Net can use (`check_image_size` below).
    halving_networks = False

    def __init__(
        self,
        latent_channels=4,
        autoencoder_channels=(32, 64, 64),
        kl_weight=1e-6,
        autoencoder_steps=1000,
        autoencoder_learning_rate=1e-3,
        **kwargs,
    ):
        # Set before the process builds its networks: `sample_shape` needs latent_channels.
        self.latent_channels = checks.positive_int(latent_channels, "latent_channels")
        self.autoencoder_channels = autoencoder.check_channels(autoencoder_channels)
        self.kl_weight = checks.number_at_least(kl_weight, "kl_weight", 0)
        self.autoencoder_steps = checks.int_at_least(autoencoder_steps, "autoencoder_steps", 0)
        self.autoencoder_learning_rate = checks.positive_number(autoencoder_learning_rate, "autoencoder_learning_rate")
        super().__init__(**kwargs)
        groups = getattr(self, "norm_groups", 8)
        self.encoder = autoencoder.build_encoder(self.image_shape, self.latent_channels, self.autoencoder_channels,
                                                 groups)
        self.decoder = autoencoder.build_decoder(self.image_shape, self.latent_channels, self.autoencoder_channels,
                                                 groups)
        self.autoencoder_optimizer = None
        # Running means of the latents' E[z] and E[z²] (means of replicas' means are the global
        # batch's, so these agree across devices), and the scale factor 1/std they give.
        self.latent_moments = self.add_weight(shape=(2,), initializer=keras.initializers.Constant([0.0, 1.0]),
                                              trainable=False, name="latent_moments", aggregation="mean")
        self.latent_scale = self.add_weight(shape=(), initializer="ones", trainable=False, name="latent_scale",
                                            aggregation="mean")
        self.declare_metrics("ae_loss", "recon_loss", "kl_loss", "stage")

    @classmethod
    def check_image_size(cls, image_shape, **hyperparameters):
        """Sizes whose sides divide by 4 into a latent the U-Net can use (4 to 8 times a power of two,
        1 or more): 16, 20, …, 32, 40, 48, 56, 64, 48×64, …; a one-line ValueError otherwise."""
        shape = super().check_image_size(image_shape, **hyperparameters)
        height, width = shape[:2]
        latent = autoencoder.latent_shape(shape, 1)
        if height % autoencoder.DOWNSAMPLE or width % autoencoder.DOWNSAMPLE or resolution.size_error(latent, 0):
            raise ValueError(
                f"{cls.__name__} cannot use {height}×{width} images: its autoencoder makes latents 4 times "
                f"smaller per side, which the U-Net halves down to 4–8 pixels, so each side must be 4 × 4 to 8 "
                f"times the same power of two, 1 or more (e.g. 28, 32, 48, 64, 48×64)")
        return shape

    # ------------------------------------------------------------------ the latent space (Diffusion's hooks)
    @property
    def sample_shape(self):
        return autoencoder.latent_shape(self.image_shape, self.latent_channels)

    def encode(self, images):
        """Images in [0, 1] → the posterior means, scaled to unit variance: what the process diffuses.

        The mean, not a draw from q(z | x) as Rombach et al.: deterministic (validation and
        `call` stay comparable), and with kl_weight 1e-6 the posterior's σ is small next to
        the latents' spread once the autoencoder is trained.
        """
        z_mean, _ = self.encoder(images, training=False)
        return tf.stop_gradient(tf.cast(z_mean, tf.float32)) * self.latent_scale

    def decode(self, latents):
        """Scaled latents → images in [0, 1]."""
        images = self.decoder(latents / self.latent_scale, training=False)
        return tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)

    def to_model_space(self, images):
        return self.encode(images)

    def mask_to_model_space(self, mask):
        """A pixel mask → a latent mask: a latent position is known when all of the 4×4 pixels (every channel)
        it encodes are known (a min-pool), so RePaint never pins a latent that also encodes unknown pixels.

        An approximation, as latent inpainting is (Rombach et al. 2022 train a model conditioned on the mask
        instead): the autoencoder's receptive field is wider than 4×4, and a known pixel in a cell that is
        partly unknown is held only by the final paste of the given pixels (`complete_batch`), so a seam can
        show at the hole's edge.
        """
        cells = -tf.nn.max_pool2d(-tf.reduce_min(mask, axis=-1, keepdims=True), autoencoder.DOWNSAMPLE,
                                  autoencoder.DOWNSAMPLE, "VALID")
        return tf.repeat(cells, self.latent_channels, axis=-1)

    def to_images(self, x0):
        return self.decode(x0)

    # ------------------------------------------------------------------ compile
    @property
    def autoencoder_variables(self):
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    def compile(self, *args, autoencoder_optimizer=None, **kwargs):
        """The process's optimiser as `optimizer` (the denoiser's), and the first stage's.

        Without `autoencoder_optimizer`, the first stage uses a fresh optimiser with the
        settings of `optimizer` (its own state and step count).
        """
        super().compile(*args, **kwargs)
        if autoencoder_optimizer is None and self.optimizer is not None:
            autoencoder_optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(self.optimizer))
        if autoencoder_optimizer is not None:
            self.autoencoder_optimizer = self.wrap_optimizer(autoencoder_optimizer)
            # Built now, inside any strategy scope (as the GAN's second optimiser).
            self.autoencoder_optimizer.build(self.autoencoder_variables)

    def default_compile(self, **kwargs):
        super().default_compile(
            autoencoder_optimizer=keras.optimizers.Adam(self.autoencoder_learning_rate), **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is None or self.autoencoder_optimizer is None:
            return config
        return {**config, "autoencoder_optimizer": keras.optimizers.serialize(self.autoencoder_optimizer)}

    def compile_from_config(self, config):
        config = dict(config)
        autoencoder_optimizer = config.pop("autoencoder_optimizer", None)
        optimizer = keras.optimizers.deserialize(config.pop("optimizer"))
        config = {k: v for k, v in config.items() if k in ("jit_compile", "steps_per_execution", "run_eagerly")}
        self.compile(optimizer=optimizer, autoencoder_optimizer=autoencoder_optimizer and
                     keras.optimizers.deserialize(autoencoder_optimizer), **config)

    # ------------------------------------------------------------------ training
    @property
    def training_steps(self):
        """Steps of both stages: each step runs one of the two optimisers."""
        return self.autoencoder_optimizer.iterations.value + self.optimizer.iterations.value

    def in_autoencoder_stage(self):
        """Whether the next step trains the autoencoder (a boolean tensor)."""
        return self.autoencoder_optimizer.iterations < self.autoencoder_steps

    def make_train_function(self, force=False):
        """One compiled step per stage; before each call, the stage the step count is in picks one.

        (See the module docstring for why not one `tf.cond`.) Keras' own `_make_function`
        builds each: distribution, `steps_per_execution` and `jit_compile` as for any model.
        """
        if self.train_function is not None and not force:
            return self.train_function
        stages = {True: self._make_function(self.autoencoder_train_step),
                  False: self._make_function(self.latent_train_step)}

        def train_function(iterator):
            return stages[bool(self.in_autoencoder_stage())](iterator)

        self.train_function = train_function
        return train_function

    def train_step(self, data):
        """One step of the stage the step count is in (`fit` uses one compiled function per stage instead)."""
        return tf.cond(self.in_autoencoder_stage(), lambda: self.autoencoder_train_step(data),
                       lambda: self.latent_train_step(data))

    def autoencoder_train_step(self, data):
        """Stage 1: one step of the autoencoder's optimiser on reconstruction + KL; the latent moments."""
        images, _ = self.unpack(data)
        with tf.GradientTape() as tape:
            values, z_mean = self.autoencoder_losses(images, training=True)
            scaled = self.autoencoder_optimizer.scale_loss(self.per_replica(values["ae_loss"]))
        self.minimize(self.autoencoder_optimizer, tape, scaled, self.autoencoder_variables)
        self.update_latent_scale(z_mean)
        return self.track({**values, "stage": AUTOENCODER_STAGE})

    def latent_train_step(self, data):
        """Stage 2: one step of the process (its loss, optimiser and EMA) on the scaled latents."""
        self._trackers["stage"].update_state(LATENT_STAGE)
        return super().train_step(data)

    def autoencoder_losses(self, images, training=False):
        """(the first stage's loss terms, the posterior means); z ~ q(z | x) by reparameterisation."""
        z_mean, z_log_var = self.encoder(images, training=training)
        z_log_var = autoencoder.clamp_log_var(z_log_var)
        z = tf.cast(z_mean, tf.float32) + tf.exp(0.5 * z_log_var) * self.normal(tf.shape(z_mean))
        reconstruction = self.decoder(z, training=training)
        return autoencoder.autoencoder_losses(images, reconstruction, z_mean, z_log_var, self.kl_weight), z_mean

    def update_latent_scale(self, z_mean):
        """Running E[z], E[z²] of the batches' posterior means, and latent_scale = 1/std from them.

        After the n-th autoencoder step the decay is min(1 − 1/MOMENTS_HORIZON, 1 − 1/n): the
        plain mean of all steps so far, then an exponential average over the last ~100 (the
        initial values never count). So the scale is the latents' at the end of the first stage.
        """
        z = tf.stop_gradient(tf.cast(z_mean, tf.float32))
        moments = tf.stack([tf.reduce_mean(z), tf.reduce_mean(tf.square(z))])
        step = tf.cast(self.autoencoder_optimizer.iterations, tf.float32)  # already counts this step
        decay = tf.minimum(1.0 - 1.0 / MOMENTS_HORIZON, 1.0 - 1.0 / tf.maximum(step, 1.0))
        self.latent_moments.assign(decay * self.latent_moments + (1.0 - decay) * moments)
        variance = self.latent_moments[1] - tf.square(self.latent_moments[0])
        self.latent_scale.assign(tf.math.rsqrt(tf.maximum(variance, 1e-8)))

    def test_step(self, data):
        """Both stages' validation losses: the autoencoder's (reconstruction from the posterior
        mean) and the process's (on the scaled latents, at fixed timesteps and noise)."""
        images, _ = self.unpack(data)
        z_mean, z_log_var = self.encoder(images, training=False)
        reconstruction = self.decoder(z_mean, training=False)
        values = autoencoder.autoencoder_losses(images, reconstruction, z_mean, z_log_var, self.kl_weight)
        stage = tf.where(self.in_autoencoder_stage(), AUTOENCODER_STAGE, LATENT_STAGE)
        self.track({**values, "stage": stage})
        return super().test_step(data)

    def export_endpoints(self, steps=50):
        """The process's `sample(noise[, labels])` with noise of the latent shape, plus
        `encode(images)` → scaled latents and `decode(latents)` → images in [0, 1]."""
        endpoints = super().export_endpoints(steps)
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        latents = tf.TensorSpec([None, *self.sample_shape], tf.float32, name="latents")
        return {**endpoints, "encode": (self.encode, [images]), "decode": (self.decode, [latents])}


@register_model("latent_diffusion")
class LatentDiffusion(LatentMixin, Diffusion):
    """DDPM-trained U-Net on the latents of a KL autoencoder; DDIM/DDPM sampling, classifier-free guidance.

    Everything of `Diffusion` (samplers, guidance, labels, EMA) applies, in latent space.
    """

    AUTO_BFLOAT16 = ()

    PRESETS = {
        # For 32×32 colour on 2 CPU cores, runs of minutes: an autoencoder of 16/32/64 channels at
        # 32/16/8 and a U-Net of 32/64 channels at the 8×8 latents (64/4 with attention), v-prediction
        # and the short EMA horizon of pixel diffusion's default. Narrower than 8×8 latents could afford,
        # because the same preset runs at 64×64 (16×16 latents), where its speed over pixel diffusion
        # is the point, and a 64-channel U-Net there cost about as much as the encoder and pixel
        # diffusion's first levels together (benchmarks/latent_speed.py).
        "default": dict(
            latent_channels=4, autoencoder_channels=(16, 32, 64), kl_weight=1e-6, autoencoder_steps=500,
            autoencoder_learning_rate=1e-3, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
            attention=True, schedule="cosine", prediction="v", learning_rate=2e-3, ema_decay=0.99,
        ),
        "large": dict(
            latent_channels=4, autoencoder_channels=(64, 128, 128), kl_weight=1e-6, autoencoder_steps=5000,
            autoencoder_learning_rate=4e-4, base_channels=128, channel_mults=(1, 2, 2), num_res_blocks=2,
            attention=True, dropout=0.1, schedule="cosine", prediction="v", learning_rate=2e-4, ema_decay=0.9995,
        ),
        # v-prediction here too: latents are not clipped (`clip_denoised`), and an ε-network's
        # x̂_0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ divides its error by √ᾱ = 5e-5 at t = 999 of the cosine schedule:
        # an untrained tiny ε-model's sampled latents overflowed its float16 decoder (NaN samples).
        "tiny": dict(
            latent_channels=4, autoencoder_channels=(8, 8, 8), autoencoder_steps=2, base_channels=8,
            channel_mults=(1, 2), num_res_blocks=1, attention=False, prediction="v", ema_decay=0.9,
        ),
    }
    # 500 autoencoder steps (the preset's), then 1,500 latent steps: more than the 1,320 after which
    # pixel diffusion's default draws recognisable digits, since a latent step costs a fraction of a
    # pixel step. Not yet measured for quality.
    FIT_DEFAULTS = {"steps": 2000, "batch_size": 64}
