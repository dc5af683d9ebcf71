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
2. the steps after train the denoiser on latents z ~ q(z | x) of the training images times
   `latent_scale` = 1/std of the latents (Rombach et al.'s scale factor, their §4.3.2:
   diffusion's schedules assume unit-variance data), with the process's own loss (`loss`).
   The autoencoder is frozen: its optimiser no longer runs and the process's optimiser only
   ever sees the denoiser's variables, as in the paper (the decoder is never fine-tuned).

Stage 2 without the encoder: a frozen encoder gives every image the same posterior at
every step, so, as Rombach et al.'s code and most latent models do, the training set is
encoded once when the latent stage begins (`tfgen.layers.latent_cache`: μ and log σ² of
each image, and of its mirror image under `--augment flip`) and each step draws its z from
the stored posterior of its batch. `use_latent_cache(images)` sets that up (`tfgen train`
calls it through `prepare_training_data`); batches then carry each image's row
(`example_ids`). Without it, or for batches without ids, the step runs the encoder.
At 64×64 (default preset) the encoder's forward pass was about a fifth of a latent step.

The first stage can come from an earlier run instead (`load_autoencoder`, `tfgen train
--autoencoder-from`): its encoder, decoder and scale are copied and `autoencoder_steps`
becomes 0.

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

Presets, fit defaults and flags: `latent_diffusion.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

from tfgen import checks
from tfgen.data.pipeline import EXAMPLE_IDS
from tfgen.layers import autoencoder, latent_cache, resolution
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
        # The training set's posteriors (`use_latent_cache`): derived data, not state to save, so
        # outside Keras' tracking (checkpoints and SavedModels do not hold it).
        object.__setattr__(self, "latent_cache", None)

    @classmethod
    def image_size_error(cls, image_shape, **hyperparameters):
        """Sizes whose sides divide by 4 into a latent the U-Net can use (4 to 8 times a power of two,
        1 or more): 16, 20, …, 32, 40, 48, 56, 64, 48×64, …"""
        height, width = image_shape[:2]
        latent = autoencoder.latent_shape(image_shape, 1)
        if height % autoencoder.DOWNSAMPLE or width % autoencoder.DOWNSAMPLE or resolution.size_error(latent, 0):
            return (f"cannot use {height}×{width} images: its autoencoder makes latents 4 times smaller per side, "
                    f"which the U-Net halves down to 4–8 pixels, so each side must be 4 × 4 to 8 times the same "
                    f"power of two, 1 or more (e.g. 28, 32, 48, 64, 48×64)")
        return None

    # ------------------------------------------------------------------ the latent space (Diffusion's hooks)
    @property
    def sample_shape(self):
        return autoencoder.latent_shape(self.image_shape, self.latent_channels)

    def encode(self, images):
        """Images in [0, 1] → the posterior means, scaled to unit variance.

        The mean, deterministic: what validation, `call` and the exported `encode` use. Training
        diffuses draws from q(z | x) instead (`training_batch`), as Rombach et al.; with
        kl_weight 1e-6 the posterior's σ is small next to the latents' spread once the
        autoencoder is trained, so the two differ little.
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

    # ------------------------------------------------------------------ the first stage from an earlier run
    def load_autoencoder(self, source):
        """Take the trained first stage of an earlier latent model and skip this model's.

        source: a run directory of latent_diffusion (its model.keras, else its last checkpoint),
            a `.keras` file of one, or such a model. Its encoder's and decoder's weights and
            its `latent_scale` (and latent moments) are copied; `autoencoder_steps` becomes 0,
            so `fit` trains the latent model only (and the config says so). The source must
            have the same image shape, `latent_channels` and `autoencoder_channels`, and a
            finished first stage: else a one-line ValueError.
        """
        name = source if isinstance(source, keras.Model) else str(source)
        if not isinstance(source, keras.Model):
            from tfgen.runs import load_run_or_file

            source = load_run_or_file(source, "take the autoencoder from")
        if not isinstance(source, LatentMixin):
            raise ValueError(f"{name} holds a {type(source).__name__} model, which has no autoencoder: give a run or "
                             f".keras file of latent_diffusion")
        mine = {"image shape": tuple(self.image_shape), "latent_channels": self.latent_channels,
                "autoencoder_channels": tuple(self.autoencoder_channels)}
        theirs = {"image shape": tuple(source.image_shape), "latent_channels": source.latent_channels,
                  "autoencoder_channels": tuple(source.autoencoder_channels)}
        differ = [f"{k} {theirs[k]} (this model: {mine[k]})" for k in mine if mine[k] != theirs[k]]
        if differ:
            raise ValueError(f"the autoencoder of {name} does not fit this model: its {', '.join(differ)}")
        if source.autoencoder_optimizer is not None and bool(source.in_autoencoder_stage()):
            raise ValueError(f"the autoencoder of {name} is not trained yet: its first stage stopped after "
                             f"{int(source.autoencoder_optimizer.iterations)} of {source.autoencoder_steps} steps")
        self.encoder.set_weights(source.encoder.get_weights())
        self.decoder.set_weights(source.decoder.get_weights())
        self.latent_scale.assign(source.latent_scale)
        self.latent_moments.assign(source.latent_moments)
        self.autoencoder_steps = 0
        self.train_function = None  # the stage each call trains is chosen anew
        if self.latent_cache is not None:
            self.latent_cache.filled = False  # encoded by the old autoencoder

    # ------------------------------------------------------------------ the latent cache
    def use_latent_cache(self, images, flip=False) -> bool:
        """Encode `images` once when the latent stage begins, instead of every batch: True if set up.

        images: the training images, (N, H, W, C), uint8 or float in [0, 1] (kept by reference).
        flip: the batches may hold mirrored images (`--augment flip`): their posteriors are
            encoded too, from the mirrored pixels.
        `fit`'s batches must then be dicts {"images", "labels", "example_ids"}, "example_ids" each
        image's index i in `images`, N + i if mirrored (`tfgen.data.pipeline.training_batches`
        with `with_ids=True` makes them); batches without ids are encoded as before. More than
        `latent_cache.MAX_BYTES` of posteriors: a warning, False, and every batch is encoded.
        """
        count = int(images.shape[0])
        size = latent_cache.table_bytes(count, self.image_shape, self.latent_channels, flip)
        if size > latent_cache.MAX_BYTES:
            warnings.warn(f"{count:,} training images make {size / 2**30:.1f} GiB of latent posteriors, more "
                          f"than the cache's {latent_cache.MAX_BYTES / 2**30:g} GiB: the latent stage encodes every "
                          f"batch instead", stacklevel=2)
            object.__setattr__(self, "latent_cache", None)
            return False
        object.__setattr__(self, "latent_cache", latent_cache.LatentCache(images, self.latent_channels, flip))
        self.train_function = None  # the latent step is traced again, with the table
        return True

    def prepare_training_data(self, examples, augment=None) -> bool:
        return self.use_latent_cache(examples.images, flip=augment == "flip")

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
        Before the first call of the latent stage, the latent cache (`use_latent_cache`), if
        any, is filled: the autoencoder is final from then on, and the latent step, traced
        at that call, reads the filled table.
        """
        if self.train_function is not None and not force:
            return self.train_function
        stages = {True: self._make_function(self.autoencoder_train_step),
                  False: self._make_function(self.latent_train_step)}

        def train_function(iterator):
            first_stage = bool(self.in_autoencoder_stage())
            if not first_stage and self.latent_cache is not None and not self.latent_cache.filled:
                self.latent_cache.fill(self.encoder)
            return stages[first_stage](iterator)

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
            values, z = self.autoencoder_losses(images, training=True)
            scaled = self.autoencoder_optimizer.scale_loss(self.per_replica(values["ae_loss"]))
        self.minimize(self.autoencoder_optimizer, tape, scaled, self.autoencoder_variables)
        self.update_latent_scale(z)
        return self.track({**values, "stage": AUTOENCODER_STAGE})

    def latent_train_step(self, data):
        """Stage 2: one step of the process (its loss, optimiser and EMA) on the scaled latents."""
        self._trackers["stage"].update_state(LATENT_STAGE)
        return super().train_step(data)

    def training_batch(self, data):
        """The latent stage's (x_0, labels): z ~ q(z | x) of each image, times `latent_scale`.

        q(z | x) comes from the latent cache when the batch carries `example_ids` and the
        cache is filled (decided when the step is traced: `fit` fills it first), else from
        the encoder. Either way z = μ + σ ε with ε the first draw of the step, so both give
        the same z for the same seed.
        """
        images, labels = self.unpack(data)
        cache = self.latent_cache
        if cache is not None and cache.filled and isinstance(data, dict) and EXAMPLE_IDS in data:
            z_mean, z_log_var = cache.lookup(data[EXAMPLE_IDS])
        else:
            z_mean, z_log_var = self.encoder(images, training=False)
        z = self.draw_latents(z_mean, z_log_var)
        return tf.stop_gradient(z) * self.latent_scale, labels

    def draw_latents(self, z_mean, z_log_var):
        """z ~ q(z | x) = N(μ, σ²) by reparameterisation (μ + σ ε), float32; log σ² clamped."""
        z_log_var = autoencoder.clamp_log_var(z_log_var)
        return tf.cast(z_mean, tf.float32) + tf.exp(0.5 * z_log_var) * self.normal(tf.shape(z_mean))

    def autoencoder_losses(self, images, training=False):
        """(the first stage's loss terms, the latents z ~ q(z | x) the decoder reconstructs from)."""
        z_mean, z_log_var = self.encoder(images, training=training)
        z = self.draw_latents(z_mean, z_log_var)
        reconstruction = self.decoder(z, training=training)
        return autoencoder.autoencoder_losses(images, reconstruction, z_mean, z_log_var, self.kl_weight), z

    def update_latent_scale(self, z):
        """Running E[z], E[z²] of the batches' latents, and latent_scale = 1/std from them.

        After the n-th autoencoder step the decay is min(1 − 1/MOMENTS_HORIZON, 1 − 1/n): the
        plain mean of all steps so far, then an exponential average over the last ~100 (the
        initial values never count). So the scale is the latents' at the end of the first stage.
        The latents are draws from q(z | x), what the latent stage diffuses (Rombach et al. take
        the std of such draws).
        """
        z = tf.stop_gradient(tf.cast(z, tf.float32))
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

    def health_checks(self):
        """The process's noise bands (`tfgen.health.NoiseBands`), once the denoiser trains (NaN before)."""
        from tfgen.health import NoiseBands

        return [NoiseBands(when=lambda model: not bool(model.in_autoencoder_stage()))]

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
