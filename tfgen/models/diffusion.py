"""Denoising diffusion (Ho et al. 2020, "Denoising Diffusion Probabilistic Models").

Forward process, fixed: q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), t = 0 … T−1, with ᾱ
from a named schedule (`tfgen.schedules`: `linear`, `cosine`). A U-Net
(`tfgen.layers.unet`) is trained to undo it:

* `prediction="epsilon"`: predict the noise ε in x_t = √ᾱ x_0 + √(1−ᾱ) ε and minimise
  ‖ε − ε̂‖² (Ho et al.'s "simple" loss);
* `prediction="v"`: predict v = √ᾱ ε − √(1−ᾱ) x_0 (Salimans & Ho 2022, "Progressive
  Distillation", §4), which stays well scaled at both ends of the schedule.

Either way the loss is the mean squared error per pixel, a batch mean over uniform t.

The `default` and `large` presets predict v. With ε-prediction, x̂_0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ
divides the network's error by √ᾱ, which is 0.016 at t = 990 of the cosine schedule: a
short run's small error in ε̂ becomes a wrong x̂_0 (measured after 400 steps on the
bundled digits: mean squared error of the clipped x̂_0 1.3 at t = 990, worse than guessing
the mean digit; the image-mean error alone 0.54 on a [−1, 1] scale). Deterministic DDIM
keeps what the first steps decide, so about half the samples got grey or white
backgrounds. A v-network predicts −x_0 directly at high noise (x̂_0 error 0.26 at
t = 990 after the same 400 steps) and every background came out black. `epsilon`
remains the constructor's default, as in Ho et al.

Sampling runs the reverse process with DDIM (Song et al. 2021, "Denoising Diffusion
Implicit Models", eq. 12) on a sub-sequence of `steps` timesteps (the arithmetic of
the forward process and of this step is `tfgen.schedules.NoiseSchedule`, the step a
sampler object of `tfgen.samplers`; the model keeps the network, guidance and the loop):

    x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t                    (clipped to [−1, 1], ε̂ recomputed)
    σ_t = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)
    x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ_t²) ε̂ + σ_t z

η = 0 is deterministic DDIM; η = 1 is ancestral sampling with the posterior variance
β̃_t of q(x_{t−1} | x_t, x_0), i.e. Ho et al.'s DDPM sampler (σ² = β̃ choice) when
every timestep is used: `sampler="ddpm"` means exactly that. `sampler="dpm++"` is
DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2: a second-order multistep solver of the
same process's ODE, deterministic like DDIM with η = 0, on timesteps evenly spaced in
log-SNR, `schedules.log_snr_timesteps`), which needs fewer steps: with the exact denoiser
of Gaussian data it gets the data's spread within 4% at 15 steps, where DDIM loses a
third of it (tests/models/test_dpm_solver.py). The whole reverse
process is one `tf.while_loop` inside one compiled `tf.function` — not, as in the
keras.io examples, a Python loop calling `predict` once per step (see
benchmarks/diffusion_sampling.py for what that costs).

Class conditioning with classifier-free guidance (Ho & Salimans 2022): a label
embedding with an extra null class; during training a label is replaced by the null
class with probability `label_dropout`, so one network learns both ε(x, c) and ε(x, ∅).
At sampling, ε̃ = ε(x, ∅) + guidance · (ε(x, c) − ε(x, ∅)): `guidance` = 1 is the
plain conditional model, > 1 trades diversity for fidelity to the class (their w is
guidance − 1).

Sampling uses an exponential moving average (EMA) of the weights (Ho et al. 2020,
App. B; decay 0.9999 there, with warm-up here for short runs). The EMA network is a
second sub-model, `ema_network`, updated at the end of every `train_step`, so a
`.keras` file saves it with the model.

Given images: `complete(images, mask)` inpaints by RePaint (Lugmayr et al. 2022: the known region
replaced at every step by the image noised to that step's level, with resampling), and
`edit(images, strength)` is SDEdit (Meng et al. 2022: noise the image part of the way, denoise);
both run in one compiled loop and are exported as endpoints.

Everything but the process is `DenoisingModel`, which the `flow` family
(`tfgen.models.flow`) shares: a family is its process (`build_process`) and its samplers
(`SAMPLERS`, `make_sampler`).

Presets, fit defaults and flags: `diffusion.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfgen import checks, samplers, schedules
from tfgen.layers import conditioning, ema
from tfgen.layers.unet import build_unet, check_channel_mults
from tfgen.models.base import GenerativeModel, check_mask_values, stateless_seed
from tfgen.registry import register_model

SAMPLERS = ("ddim", "ddpm", "dpm++")
#: Seed of the fixed noise used by `test_step` and `call`: validation losses are comparable across epochs.
VALIDATION_SEED = (20200619, 0)


class DenoisingModel(GenerativeModel):
    """What diffusion and flow matching share: a U-Net (`tfgen.layers.unet`) trained to undo a
    process that noises the data, its EMA copy, optional class labels with label dropout and
    classifier-free guidance, and a sampler that walks the process back in one compiled loop.

    A subclass is its process and its samplers: `build_process()` returns the process object
    (`schedules.NoiseSchedule`, `schedules.FlowPath`: training times, noising, the target,
    the network's time input, the sampling grid), `SAMPLERS` names the samplers and
    `make_sampler` builds one (`tfgen.samplers`). The space the process runs in is four
    hooks (`sample_shape`, `to_model_space`, `to_images`, `clip_denoised`), so a family
    that runs it on latents overrides those.

    Labels are optional: `requires_labels` is False (batches may be images only, and then
    train the unconditional model), but with `class_conditional=True` the model
    `accepts_labels`: labels in a batch train the conditional model too, and

    * `sample(n)` (labels=None) draws from the unconditional model ε(x, ∅);
    * `sample(n, labels=...)` draws digits of those classes, with guidance; label −1
      draws from the unconditional model (as in the exported endpoint).

    So grids draw one row per class, `tfgen sample --labels` works, and evaluation
    measures conditional accuracy, as for the conditional families.
    """

    #: The samplers `sample` takes; the first is the exported endpoint's.
    SAMPLERS: tuple[str, ...] = ()

    def __init__(
        self,
        base_channels=16,
        channel_mults=(1, 2, 4),
        num_res_blocks=1,
        attention=True,
        norm_groups=8,
        dropout=0.0,
        class_conditional=True,
        label_dropout=0.1,
        guidance=2.0,
        ema_decay=0.995,
        learning_rate=1e-3,
        grad_clip_norm=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.base_channels = checks.positive_int(base_channels, "base_channels")
        self.channel_mults = check_channel_mults(channel_mults)
        self.num_res_blocks = checks.positive_int(num_res_blocks, "num_res_blocks")
        self.attention = bool(attention)
        self.norm_groups = checks.positive_int(norm_groups, "norm_groups")
        self.dropout = checks.fraction_below_one(dropout, "dropout")
        self.class_conditional = bool(class_conditional)
        self.label_dropout = checks.fraction(label_dropout, "label_dropout")
        self.guidance = checks.number_at_least(guidance, "guidance", 0)
        self.ema_decay = checks.fraction_below_one(ema_decay, "ema_decay")
        self.learning_rate = checks.positive_number(learning_rate, "learning_rate")
        self.grad_clip_norm = checks.number_at_least(grad_clip_norm, "grad_clip_norm", 0)

        # The process noising the data, and its arithmetic; the model keeps the network.
        self.process = self.build_process()
        #: The label fed for "no label": the extra embedding row learned through label dropout.
        self.null_label = self.num_classes
        self.network = self.build_network("network")
        self.ema_network = self.build_network("ema_network")
        self.ema_network.trainable = False
        ema.copy_weights(self.ema_network, self.network)
        self.declare_metrics("loss")

    def build_process(self):
        """The process the model learns to reverse (called once, in `__init__`, before the networks)."""
        raise NotImplementedError

    def sampling_grid(self, name, steps):
        """The times the sampler called `name` visits in `steps` steps (the process's grid)."""
        return self.process.sampling_grid(steps)

    def make_sampler(self, name, eta):
        """The sampler called `name` (one of `SAMPLERS`); `eta` is a float32 scalar tensor, for those that take it."""
        raise NotImplementedError

    @property
    def accepts_labels(self) -> bool:
        return self.class_conditional

    @classmethod
    def unlabelled_overrides(cls) -> dict:
        return {"class_conditional": False}

    # ------------------------------------------------------------------ the space the process runs in
    # Pixel diffusion noises the images themselves, scaled to [−1, 1]. A family that diffuses
    # elsewhere (latent diffusion: an autoencoder's latents) overrides these three and
    # `clip_denoised`; training, the sampler and the export go through them only.
    #: Whether each reverse step clips x̂_0 to [−1, 1] (Ho et al.'s "clip_denoised"): right for
    #: pixels, which live there; wrong for unbounded latents.
    clip_denoised = True

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """The shape of one x_t (the network's input and output): here the image's."""
        return tuple(self.image_shape)

    def to_model_space(self, images):
        """Training images in [0, 1] → the x_0 that the forward process noises: pixels in [−1, 1]."""
        return images * 2.0 - 1.0

    def to_images(self, x0):
        """A sampled x̂_0 → images in [0, 1] (`sample` and the exported endpoint return these)."""
        return tf.clip_by_value((x0 + 1.0) / 2.0, 0.0, 1.0)

    def build_network(self, name):
        return build_unet(
            self.sample_shape, num_labels=self.num_classes + 1, base_channels=self.base_channels,
            channel_mults=self.channel_mults, num_res_blocks=self.num_res_blocks, attention=self.attention,
            groups=self.norm_groups, dropout=self.dropout, time_dtype=self.process.time_dtype.name, name=name,
        )

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Build the optimiser's slots now (inside any strategy scope). Built lazily, they are
        # created inside the first traced step, which makes TensorFlow trace it twice: with
        # ~100 U-Net variables that costs more than the first epoch of a small run.
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.network.trainable_variables)

    def default_compile(self, **kwargs):
        # Gradient clipping as in Ho et al.'s code: early ε-losses at t ≈ 0 are spiky.
        clip = self.grad_clip_norm or None
        self.compile(optimizer=keras.optimizers.Adam(self.learning_rate, global_clipnorm=clip), **kwargs)

    # ------------------------------------------------------------------ training
    def _labels_or_null(self, labels, batch):
        if labels is None or not self.class_conditional:
            return tf.fill([batch], self.null_label)
        return labels

    def denoising_loss(self, network, images, labels, t, noise, training=False):
        """Mean squared error of the network's prediction of the process's target (ε, v, …) at times t."""
        return self.process_loss(network, self.to_model_space(images), labels, t, noise, training)

    def process_loss(self, network, x0, labels, t, noise, training=False):
        """`denoising_loss` of x_0 already in the space the process runs in."""
        x_t = self.process.add_noise(x0, noise, t)
        prediction = network([x_t, self.process.network_time(t), labels], training=training)
        target = self.process.prediction_target(x0, noise, t)
        return tf.reduce_mean(tf.square(target - tf.cast(prediction, tf.float32)))

    def training_batch(self, data):
        """(x_0, labels) of a training batch: its images in the space the process runs in (`to_model_space`).

        A family whose training data can skip that conversion (latent diffusion's cached
        latents) overrides this.
        """
        images, labels = self.unpack(data)
        return self.to_model_space(images), labels

    def train_step(self, data):
        x0, labels = self.training_batch(data)
        batch = tf.shape(x0)[0]
        # Times, noise and label dropout come from the model's seed generator: new every step.
        t = self.process.draw_times(batch, self.draw_seed())
        noise = self.normal(tf.concat([[batch], self.sample_shape], 0))
        labels = self._labels_or_null(labels, batch)
        if self.class_conditional and self.label_dropout > 0:
            drop = tf.random.stateless_uniform([batch], self.draw_seed()) < self.label_dropout
            labels = tf.where(drop, self.null_label, labels)
        with tf.GradientTape() as tape:
            loss = self.process_loss(self.network, x0, labels, t, noise, training=True)
            scaled = self.optimizer.scale_loss(self.per_replica(loss))
        self.minimize(self.optimizer, tape, scaled, self.network.trainable_variables)
        self.update_ema()
        return self.track({"loss": loss})

    def health_checks(self):
        """The held-out loss in bands of noise level (`tfgen.health.NoiseBands`)."""
        from tfgen.health import NoiseBands

        return [NoiseBands()]

    def update_ema(self):
        """The EMA network's update after every step (`tfgen.layers.ema.update_ema`: with warm-up)."""
        ema.update_ema(self.ema_network, self.network, self.ema_decay, self.optimizer.iterations)

    def _validation_inputs(self, images):
        """Fixed times (`process.validation_times`) and fixed noise."""
        batch = tf.shape(images)[0]
        noise = tf.random.stateless_normal(tf.concat([[batch], self.sample_shape], 0), seed=VALIDATION_SEED)
        return self.process.validation_times(batch), noise

    def test_step(self, data):
        """The EMA network's denoising loss at fixed times and noise (the network that samples)."""
        images, labels = self.unpack(data)
        t, noise = self._validation_inputs(images)
        labels = self._labels_or_null(labels, tf.shape(images)[0])
        return self.track({"loss": self.denoising_loss(self.ema_network, images, labels, t, noise)})

    def call(self, inputs, training=False):
        """The EMA network's prediction for the batch noised as in `test_step`: deterministic."""
        images, labels = self.unpack(inputs)
        t, noise = self._validation_inputs(images)
        x_t = self.process.add_noise(self.to_model_space(images), noise, t)
        labels = self._labels_or_null(labels, tf.shape(images)[0])
        return self.ema_network([x_t, self.process.network_time(t), labels], training=training)

    # ------------------------------------------------------------------ sampling
    def draw(self, n, labels, steps, sampler, guidance, seed, eta=0.0):
        """`sample`'s work once its family has checked its own options: `steps` steps of `sampler`."""
        guidance = self.guidance if guidance is None else checks.number_at_least(guidance, "guidance", 0)
        guided = labels is not None and guidance != 1.0
        labels = self.network_labels(labels, n)
        grid = self.sampling_grid(sampler, steps)
        x0 = self._sampler(sampler, guided)(self.draw_seed(seed), labels, tf.constant(grid),
                                            tf.constant(eta, tf.float32), tf.constant(guidance, tf.float32))
        return self.to_images(x0)

    def export_endpoints(self, steps=50):
        """SavedModel endpoints (see `tfgen.export`): the first of `SAMPLERS` (deterministic) with `steps` steps.

        `sample(noise, labels)` (`sample(noise)` when not class-conditional), with the
        model's `guidance`; label −1 draws from the unconditional model (with the null
        label in both halves of the guided batch, guidance leaves its prediction unchanged).
        `noise` is x_T, shape (B, *sample_shape) — (B, H, W, C) for pixels: the endpoint returns what
        `sample(n, labels, steps=steps, seed=s)` does when x_T = stateless_normal(shape, seed=[s, 0]).
        The sampler, step count and guidance are fixed here and reported by the `settings` endpoint.
        """
        sampler = self.SAMPLERS[0]
        grid = tf.constant(self.sampling_grid(sampler, steps))
        noise = tf.TensorSpec([None, *self.sample_shape], tf.float32, name="noise")

        def run(noise, labels=None):
            guided = labels is not None and self.guidance != 1.0
            labels = self.network_labels(labels, tf.shape(noise)[0])
            x0 = self.reverse_process(tf.zeros([2], tf.int64), labels, grid, tf.constant(0.0),
                                      tf.constant(self.guidance, tf.float32), guided=guided, x_start=noise,
                                      sampler=sampler)
            return self.to_images(x0)

        settings = {"steps": int(steps), "guidance": self.guidance, **self.export_sampler_settings(),
                    "complete_sampler": self.REPAINT_SAMPLER, "complete_resample": self.RESAMPLE}
        labels = [tf.TensorSpec([None], tf.int32, name="labels")] if self.class_conditional else []
        if labels:
            settings["unconditional_label"] = -1
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        mask = tf.TensorSpec([None, *self.image_shape], tf.float32, name="mask")
        seed = tf.TensorSpec([], tf.int64, name="seed")
        strength = tf.TensorSpec([], tf.float32, name="strength")
        repaint_grid = tf.constant(self.sampling_grid(self.REPAINT_SAMPLER, steps))
        repaint_eta = tf.constant(self.sampler_eta(self.REPAINT_SAMPLER, None), tf.float32)
        guidance = tf.constant(self.guidance, tf.float32)

        def complete(images, mask, seed, labels=None):
            guided = labels is not None and self.guidance != 1.0
            return self.repaint_images(stateless_seed(seed), self.network_labels(labels, tf.shape(images)[0]),
                                       repaint_grid, repaint_eta, guidance, images, check_mask_values(mask),
                                       tf.constant(self.RESAMPLE), guided=guided, sampler=self.REPAINT_SAMPLER)

        def edit(images, strength, seed, labels=None):
            guided = labels is not None and self.guidance != 1.0
            return self.edit_process(stateless_seed(seed), self.network_labels(labels, tf.shape(images)[0]), grid,
                                     tf.constant(0.0), guidance, images, strength, guided=guided, sampler=sampler)

        return {"sample": (run, [noise, *labels]), "settings": (lambda: settings, []),
                "complete": (complete, [images, mask, seed, *labels]),
                "edit": (edit, [images, strength, seed, *labels])}

    def export_sampler_settings(self) -> dict:
        """How the exported `sample` samples, for its `settings` endpoint."""
        return {"sampler": self.SAMPLERS[0]}

    def network_labels(self, labels, n):
        """User-given labels (None, or class ids with −1 for "unconditional") → the network's (n,) int32
        labels, with the null class for "unconditional". Checked by `conditioning.as_labels`."""
        if labels is None:
            return tf.fill([n], self.null_label)
        if not self.class_conditional:
            raise ValueError(f"this {self.registry_name} model was built with class_conditional=False: "
                             f"sample with labels=None")
        labels = conditioning.as_labels(labels, self.num_classes, None if tf.is_tensor(n) else n,
                                        allow_unconditional=True)
        return tf.where(labels < 0, self.null_label, labels)

    def _sampler(self, name, guided):
        spec = [
            tf.TensorSpec([2], tf.int64, name="seed"),
            tf.TensorSpec([None], tf.int32, name="labels"),
            tf.TensorSpec([None], self.process.time_dtype, name="grid"),
            tf.TensorSpec([], tf.float32, name="eta"),
            tf.TensorSpec([], tf.float32, name="guidance"),
        ]
        # One compiled reverse process per sampler and value of `guided` (a second network pass or not).
        return self.cached_function(("sampler", name, guided), lambda: tf.function(
            lambda *args: self.reverse_process(*args, guided=guided, sampler=name), input_signature=spec,
            autograph=False))

    def reverse_process(self, seed, labels, grid, eta, guidance, guided=False, x_start=None, sampler=None):
        """x_T ~ N(0, I), then the steps of the sampler called `sampler` (default: the first of `SAMPLERS`)
        along `grid` (increasing) from last to first; returns x̂_0. `eta`: for the samplers that take it.

        Written with an explicit `tf.while_loop` (AutoGraph off) so that it is one graph
        whatever the number of steps, and can go into an exported SavedModel.
        """
        sampler = self.make_sampler(sampler or self.SAMPLERS[0], eta)
        shape = tf.concat([tf.shape(labels), tf.constant(self.sample_shape, tf.int32)], 0)
        if x_start is None:  # given by an exported endpoint, which takes its noise as input
            x_start = tf.random.stateless_normal(shape, seed=seed)
        predict = self.guided_prediction(labels, guidance, guided)

        def step(i, x, state):
            z = None
            if sampler.stochastic:
                z = tf.random.stateless_normal(shape, seed=tf.random.experimental.stateless_fold_in(seed, i + 1))
            x, state = sampler.step(predict, grid, i, x, state, z)
            return i - 1, x, state

        last = tf.shape(grid)[0] - 1
        _, x, _ = tf.while_loop(lambda i, x, state: i >= 0, step, (last, x_start, sampler.initial_state(x_start)))
        return x

    def guided_prediction(self, labels, guidance, guided):
        """`predict(x, t)`: the EMA network's output at the scalar time t for the (n,) `labels`, with
        classifier-free guidance when `guided` (a second pass with the null label)."""
        null = tf.fill(tf.shape(labels), self.null_label)

        def predict(x, t):
            t = tf.fill(tf.shape(labels), self.process.network_time(t))
            if not guided:
                return tf.cast(self.ema_network([x, t, labels], training=False), tf.float32)
            # Conditional and unconditional predictions in one batch of 2n.
            both = self.ema_network([tf.concat([x, x], 0), tf.concat([t, t], 0), tf.concat([labels, null], 0)],
                                    training=False)
            conditional, unconditional = tf.split(both, 2, axis=0)
            return tf.cast(unconditional + guidance * (conditional - unconditional), tf.float32)

        return predict

    # ------------------------------------------------------------------ completion and editing
    #: RePaint's resampling when none is asked for: each step is taken this many times, the result
    #: re-noised back to the step's start in between (see `complete_batch`).
    RESAMPLE = 3
    #: The sampler `complete` uses when none is asked for (one of `SAMPLERS`; each family sets it).
    REPAINT_SAMPLER = ""

    def mask_to_model_space(self, mask):
        """A pixel mask (N, H, W, C), 1 = known → the mask of x_t's known entries: here the same."""
        return mask

    def sampler_eta(self, sampler, eta):
        """The η that `sampler` runs with (`eta` as the user gave it, None for the default)."""
        return 0.0

    def complete_batch(self, images, mask, labels, seed, steps=50, resample=None, sampler=None, eta=None,
                       guidance=None):
        """RePaint inpainting (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic
        Models", Alg. 1) in the compiled reverse loop.

        After every reverse step to time s, the known entries of x_s are replaced by the given image
        noised to s by the forward process, x_s = q(x_s | x_0) (fresh noise each time), so the
        unknown part is generated next to a known part at its own noise level; the last step
        pastes the image itself. Each step is taken `resample` times (default `RESAMPLE`): between
        two, x_s goes back to the step's start t by the forward transition q(x_t | x_s), which
        lets the generated part adapt to the known one (RePaint's resampling with jumps of one
        step; their 250 steps × 10 resamplings cost 2,500 network calls, the default here
        50 × 3). `sampler` as `sample`'s (default: the family's `REPAINT_SAMPLER`, stochastic
        like RePaint's ancestral steps, for diffusion); multistep DPM-Solver++ only without resampling. Known
        pixels are returned as given.
        """
        steps = checks.positive_int(steps, "steps")
        resample = checks.positive_int(self.RESAMPLE if resample is None else resample, "resample")
        sampler = checks.one_of(sampler or self.REPAINT_SAMPLER, self.SAMPLERS, "sampler")
        if resample > 1 and self.make_sampler(sampler, tf.constant(0.0)).initial_state(tf.zeros([1])):
            raise ValueError(f"sampler {sampler!r} carries state from step to step, which resampling would undo: "
                             f"use resample=1 or another sampler ({', '.join(self.SAMPLERS)})")
        guidance = self.guidance if guidance is None else checks.number_at_least(guidance, "guidance", 0)
        guided = labels is not None and guidance != 1.0
        labels = self.network_labels(labels, images.shape[0])
        repaint = self.cached_function(("repaint", sampler, guided), lambda: tf.function(
            lambda *args: self.repaint_images(*args, guided=guided, sampler=sampler), autograph=False))
        return repaint(self.draw_seed(seed), labels, tf.constant(self.sampling_grid(sampler, steps)),
                       tf.constant(self.sampler_eta(sampler, eta), tf.float32), tf.constant(guidance, tf.float32),
                       images, mask, tf.constant(resample))

    def repaint_images(self, seed, labels, grid, eta, guidance, images, mask, resample, guided=False, sampler=None):
        """`repaint_process` from images and a pixel mask to images, the known pixels pasted (one graph: the
        compiled `complete` and the exported endpoint)."""
        x0 = self.repaint_process(seed, labels, grid, eta, guidance, self.to_model_space(images),
                                  self.mask_to_model_space(mask), resample, guided=guided, sampler=sampler)
        return mask * images + (1.0 - mask) * self.to_images(x0)

    def repaint_process(self, seed, labels, grid, eta, guidance, known, mask, resample, guided=False, sampler=None,
                        trace=False):
        """The reverse process with RePaint's known region (see `complete_batch`): x̂_0, or with `trace`
        (x̂_0, trajectory, times) — x after each pass of the loop and the grid index it is at (−1: the data).

        known: the given x_0 (model space); mask: 1 on its known entries.
        """
        sampler = self.make_sampler(sampler or self.SAMPLERS[0], eta)
        predict = self.guided_prediction(labels, guidance, guided)
        shape = tf.shape(known)
        step_seed, known_seed, back_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        noise = lambda stream, k: tf.random.stateless_normal(shape, seed=tf.random.experimental.stateless_fold_in(
            stream, k))
        last = tf.shape(grid)[0] - 1

        def known_at(index, k):
            """The known entries noised to grid[index] (the data itself at index −1)."""
            noised = self.process.add_noise(known, noise(known_seed, k), grid[tf.maximum(index, 0)])
            return tf.where(index >= 0, noised, known)

        def body(k, i, u, x, state, trajectory, times):
            z = noise(step_seed, k) if sampler.stochastic else None
            x_prev, new_state = sampler.step(predict, grid, i, x, state, z)
            x_prev = mask * known_at(i - 1, k) + (1.0 - mask) * x_prev
            back = (u + 1 < resample) & (i > 0)  # resample this step: from grid[i − 1] back to grid[i]
            renoised = self.process.forward_transition(x_prev, grid[tf.maximum(i - 1, 0)], grid[i], noise(back_seed, k))
            x = tf.where(back, renoised, x_prev)
            state = tf.nest.map_structure(lambda old, new: tf.where(back, old, new), state, new_state)
            at = tf.where(back, i, i - 1)  # the grid index x is now at
            if trace:
                trajectory, times = trajectory.write(k, x), times.write(k, at)
            return k + 1, at, tf.where(back, u + 1, 0), x, state, trajectory, times

        x_start = mask * known_at(last, -1) + (1.0 - mask) * tf.random.stateless_normal(shape, seed=step_seed)
        loop = (tf.constant(0), last, tf.constant(0), x_start, sampler.initial_state(x_start),
                tf.TensorArray(tf.float32, size=0, dynamic_size=True), tf.TensorArray(tf.int32, size=0,
                                                                                      dynamic_size=True))
        _, _, _, x, _, trajectory, times = tf.while_loop(lambda k, i, *_: i >= 0, body, loop)
        return (x, trajectory.stack(), times.stack()) if trace else x

    def edit(self, images, strength=0.5, n=1, labels=None, seed=None, steps=50, sampler=None, eta=None,
             guidance=None):
        """SDEdit image-to-image (Meng et al. 2022, "SDEdit: Guided Image Synthesis and Editing with Stochastic
        Differential Equations", §3): noise each image to the time a fraction `strength` of the way from
        the data to pure noise, then run the reverse process from there: (B, n, H, W, C) in [0, 1].

        strength in (0, 1]: near 0 returns the image nearly as it is, 1 is a fresh sample (nothing
        kept); between, the result keeps the image's layout and colours and redraws its detail
        (Meng et al.'s realism-faithfulness trade-off). `steps` are the whole process's: an edit
        runs the last round(strength · steps) of them (at least one). `sampler`, `eta`, `guidance`,
        `labels` as `sample`'s.
        """
        images = self.check_images(images)
        strength = checks.fraction(strength, "strength")
        if strength == 0:
            raise ValueError("strength must be in (0, 1]: 0 would return the images unchanged")
        n, steps = checks.positive_int(n, "n"), checks.positive_int(steps, "steps")
        sampler = checks.one_of(sampler or self.SAMPLERS[0], self.SAMPLERS, "sampler")
        guidance = self.guidance if guidance is None else checks.number_at_least(guidance, "guidance", 0)
        guided = labels is not None and guidance != 1.0
        batch = images.shape[0]
        if labels is not None and np.ndim(labels) > 0:
            labels = np.repeat(np.asarray(labels), n, axis=0)
        labels = self.network_labels(labels, batch * n)
        editor = self.cached_function(("edit", sampler, guided), lambda: tf.function(
            lambda *args: self.edit_process(*args, guided=guided, sampler=sampler), autograph=False))
        edited = editor(self.draw_seed(seed), labels, tf.constant(self.sampling_grid(sampler, steps)),
                        tf.constant(self.sampler_eta(sampler, eta), tf.float32), tf.constant(guidance, tf.float32),
                        tf.repeat(images, n, axis=0), tf.constant(strength, tf.float32))
        return tf.reshape(edited, [batch, n, *self.image_shape])

    def edit_process(self, seed, labels, grid, eta, guidance, images, strength, guided=False, sampler=None):
        """SDEdit in one graph (`edit`, the exported endpoint): images noised to the grid's first
        max(1, round(strength · steps)) times (round half to even), the reverse process from there."""
        count = tf.shape(grid)[0]
        kept = tf.clip_by_value(tf.cast(tf.round(strength * tf.cast(count, tf.float32)), tf.int32), 1, count)
        grid = grid[:kept]
        x0 = self.to_model_space(images)
        x_start = self.process.add_noise(x0, tf.random.stateless_normal(tf.shape(x0), seed), grid[-1])
        return self.to_images(self.reverse_process(tf.random.experimental.stateless_fold_in(seed, 1), labels, grid,
                                                   eta, guidance, guided=guided, sampler=sampler, x_start=x_start))


@register_model("diffusion")
class Diffusion(DenoisingModel):
    """DDPM-trained U-Net, DDIM/DDPM/DPM-Solver++ sampling in one compiled loop, optional
    classifier-free guidance (everything but the process: `DenoisingModel`)."""

    SAMPLERS = SAMPLERS

    def __init__(self, timesteps=1000, schedule="cosine", prediction="epsilon", **kwargs):
        self.timesteps = checks.int_at_least(timesteps, "timesteps", 2)
        self.schedule = checks.one_of(schedule, schedules.SCHEDULES, "noise schedule")
        self.prediction = checks.one_of(prediction, schedules.PREDICTIONS, "prediction")
        super().__init__(**kwargs)

    def build_process(self):
        return schedules.NoiseSchedule.named(self.schedule, self.timesteps, self.prediction)

    @property
    def noise_schedule(self) -> schedules.NoiseSchedule:
        """The forward process and the DDIM step's arithmetic (`process`, by its diffusion name)."""
        return self.process

    def sampling_grid(self, name, steps):
        # DPM-Solver++ on timesteps evenly spaced in log-SNR (see `schedules.log_snr_timesteps`).
        return self.process.sampling_grid(steps, "log_snr" if name == "dpm++" else "time")

    #: RePaint's sampler: ancestral steps, as in Lugmayr et al.
    REPAINT_SAMPLER = "ddpm"

    def sampler_eta(self, sampler, eta):
        if sampler == "ddpm":
            return 1.0
        if sampler == "dpm++":
            return 0.0
        return 0.0 if eta is None else checks.number_at_least(eta, "eta", 0)

    def make_sampler(self, name, eta):
        if name == "dpm++":
            return samplers.DPMSolverPP(self.process, clip=self.clip_denoised)
        return samplers.DDIM(self.process, eta, clip=self.clip_denoised)

    def sample(self, n, labels=None, steps=50, sampler="ddim", eta=0.0, guidance=None, seed=None):
        """Draw `n` images in [0, 1] with `steps` reverse steps of the EMA network.

        labels: None samples the unconditional model; an int, list, array or tensor of
            class ids samples those classes (an int repeats for all n), −1 the
            unconditional model for that sample.
        sampler: "ddim" (η = `eta`; 0 is deterministic given the seed), "ddpm"
            (ancestral, η = 1; use steps=1000 for Ho et al.'s sampler; `eta` is ignored)
            or "dpm++" (DPM-Solver++(2M), deterministic, on timesteps evenly spaced in log-SNR;
            10–20 steps; `eta` is ignored).
        guidance: classifier-free guidance scale (default: the model's `guidance`);
            1 disables it, used only when labels are given.
        seed: an int makes the draw reproducible; None draws from the model's generator.
        """
        n = checks.positive_int(n, "n")
        checks.one_of(sampler, SAMPLERS, "sampler")
        return self.draw(n, labels, steps, sampler, guidance, seed, self.sampler_eta(sampler, eta))

    def export_sampler_settings(self) -> dict:
        return {"eta": 0.0, "sampler": "ddim"}
