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
the forward process and of this step is `tfgen.schedules.NoiseSchedule`; the model
keeps the network, guidance and the loop):

    x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t                    (clipped to [−1, 1], ε̂ recomputed)
    σ_t = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)
    x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ_t²) ε̂ + σ_t z

η = 0 is deterministic DDIM; η = 1 is ancestral sampling with the posterior variance
β̃_t of q(x_{t−1} | x_t, x_0), i.e. Ho et al.'s DDPM sampler (σ² = β̃ choice) when
every timestep is used: `sampler="ddpm"` means exactly that. The whole reverse
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
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgen import checks, schedules
from tfgen.layers import conditioning, ema
from tfgen.layers.unet import build_unet, check_channel_mults
from tfgen.models.base import GenerativeModel
from tfgen.registry import register_model

SAMPLERS = ("ddim", "ddpm")
#: Seed of the fixed noise used by `test_step` and `call`: validation losses are comparable across epochs.
VALIDATION_SEED = (20200619, 0)


@register_model("diffusion")
class Diffusion(GenerativeModel):
    """DDPM-trained U-Net, DDIM/DDPM sampling in one compiled loop, optional classifier-free guidance.

    Labels are optional: `conditional` is False (batches may be images only, and then
    train the unconditional model), but with `class_conditional=True` the model
    `accepts_labels`: labels in a batch train the conditional model too, and

    * `sample(n)` (labels=None) draws from the unconditional model ε(x, ∅);
    * `sample(n, labels=...)` draws digits of those classes, with guidance; label −1
      draws from the unconditional model (as in the exported endpoint).

    So grids draw one row per class, `tfgen sample --labels` works, and evaluation
    measures conditional accuracy, as for the conditional families.
    """

    halving_networks = True

    PRESETS = {
        # Chosen for 2 CPU cores and runs of minutes: 16/32/64 channels at 28/14/7 (0.6M parameters;
        # 16/32/64/64 at 32/16/8/4 for 32×32, 0.95M), attention at the lowest resolution;
        # v-prediction (see the module docstring); a high learning rate (with gradient clipping)
        # and a short EMA horizon (~100 steps) because such runs are a few hundred steps long.
        "default": dict(
            base_channels=16, channel_mults=(1, 2, 4), num_res_blocks=1, attention=True,
            schedule="cosine", prediction="v", learning_rate=2e-3, ema_decay=0.99,
        ),
        # A wider network for machines with a GPU (Ho et al.'s layout at 28×28, scaled down).
        "large": dict(
            base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, attention=True, dropout=0.1,
            schedule="cosine", prediction="v", learning_rate=2e-4, ema_decay=0.9995,
        ),
        "tiny": dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention=False, ema_decay=0.9),
    }
    # Measured on the bundled digits (`default`, 133 steps per epoch): most samples recognisable
    # after 6 epochs, few after 4. About 1 s per step on 2 CPU cores; `--jit-compile on` saves a quarter.
    FIT_DEFAULTS = {"epochs": 10, "batch_size": 64}

    def __init__(
        self,
        timesteps=1000,
        schedule="cosine",
        prediction="epsilon",
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
        self.timesteps = checks.int_at_least(timesteps, "timesteps", 2)
        self.schedule = checks.one_of(schedule, schedules.SCHEDULES, "noise schedule")
        self.prediction = checks.one_of(prediction, schedules.PREDICTIONS, "prediction")
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

        # The forward process and the reverse step's arithmetic; the model keeps the network.
        self.noise_schedule = schedules.NoiseSchedule.named(schedule, self.timesteps, prediction)
        #: The label fed for "no label": the extra embedding row learned through label dropout.
        self.null_label = self.num_classes
        self.network = self.build_network("network")
        self.ema_network = self.build_network("ema_network")
        self.ema_network.trainable = False
        ema.copy_weights(self.ema_network, self.network)
        self.declare_metrics("loss")

    @property
    def accepts_labels(self) -> bool:
        return self.class_conditional

    @classmethod
    def unlabelled_overrides(cls) -> dict:
        return {"class_conditional": False}

    def build_network(self, name):
        return build_unet(
            self.image_shape, num_labels=self.num_classes + 1, base_channels=self.base_channels,
            channel_mults=self.channel_mults, num_res_blocks=self.num_res_blocks, attention=self.attention,
            groups=self.norm_groups, dropout=self.dropout, name=name,
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
        """Mean squared error of the network's prediction of ε (or v) at timesteps t."""
        x0 = images * 2.0 - 1.0
        x_t = self.noise_schedule.add_noise(x0, noise, t)
        prediction = network([x_t, t, labels], training=training)
        target = self.noise_schedule.prediction_target(x0, noise, t)
        return tf.reduce_mean(tf.square(target - tf.cast(prediction, tf.float32)))

    def train_step(self, data):
        images, labels = self.unpack(data)
        batch = tf.shape(images)[0]
        # Timesteps, noise and label dropout come from the model's seed generator: new every step.
        t = tf.random.stateless_uniform([batch], self.draw_seed(), maxval=self.timesteps, dtype=tf.int32)
        noise = self.normal(tf.shape(images))
        labels = self._labels_or_null(labels, batch)
        if self.class_conditional and self.label_dropout > 0:
            drop = tf.random.stateless_uniform([batch], self.draw_seed()) < self.label_dropout
            labels = tf.where(drop, self.null_label, labels)
        with tf.GradientTape() as tape:
            loss = self.denoising_loss(self.network, images, labels, t, noise, training=True)
            scaled = self.optimizer.scale_loss(self.per_replica(loss))
        self.minimize(self.optimizer, tape, scaled, self.network.trainable_variables)
        self.update_ema()
        return self.track({"loss": loss})

    def update_ema(self):
        """The EMA network's update after every step (`tfgen.layers.ema.update_ema`: with warm-up)."""
        ema.update_ema(self.ema_network, self.network, self.ema_decay, self.optimizer.iterations)

    def _validation_inputs(self, images):
        """Fixed timesteps (evenly spread over [0, T) across the batch) and fixed noise."""
        batch = tf.shape(images)[0]
        t = (tf.range(batch) * self.timesteps + self.timesteps // 2) // batch
        noise = tf.random.stateless_normal(tf.shape(images), seed=VALIDATION_SEED)
        return t, noise

    def test_step(self, data):
        """The EMA network's denoising loss at fixed timesteps and noise (the network that samples)."""
        images, labels = self.unpack(data)
        t, noise = self._validation_inputs(images)
        labels = self._labels_or_null(labels, tf.shape(images)[0])
        return self.track({"loss": self.denoising_loss(self.ema_network, images, labels, t, noise)})

    def call(self, inputs, training=False):
        """The EMA network's prediction (ε or v) for the batch noised as in `test_step`: deterministic."""
        images, labels = self.unpack(inputs)
        t, noise = self._validation_inputs(images)
        x_t = self.noise_schedule.add_noise(images * 2.0 - 1.0, noise, t)
        labels = self._labels_or_null(labels, tf.shape(images)[0])
        return self.ema_network([x_t, t, labels], training=training)

    # ------------------------------------------------------------------ sampling
    def sample(self, n, labels=None, steps=50, sampler="ddim", eta=0.0, guidance=None, seed=None):
        """Draw `n` images in [0, 1] with `steps` reverse steps of the EMA network.

        labels: None samples the unconditional model; an int, list, array or tensor of
            class ids samples those classes (an int repeats for all n), −1 the
            unconditional model for that sample.
        sampler: "ddim" (η = `eta`; 0 is deterministic given the seed) or "ddpm"
            (ancestral, η = 1; use steps=1000 for Ho et al.'s sampler; `eta` is ignored).
        guidance: classifier-free guidance scale (default: the model's `guidance`);
            1 disables it, used only when labels are given.
        seed: an int makes the draw reproducible; None draws from the model's generator.
        """
        n = checks.positive_int(n, "n")
        checks.one_of(sampler, SAMPLERS, "sampler")
        eta = 1.0 if sampler == "ddpm" else checks.number_at_least(eta, "eta", 0)
        guidance = self.guidance if guidance is None else checks.number_at_least(guidance, "guidance", 0)
        guided = labels is not None and guidance != 1.0
        labels = self.network_labels(labels, n)
        timesteps = schedules.sampling_timesteps(self.timesteps, steps)
        x0 = self._sampler(guided)(self.draw_seed(seed), labels, tf.constant(timesteps),
                                   tf.constant(eta, tf.float32), tf.constant(guidance, tf.float32))
        return tf.clip_by_value((x0 + 1.0) / 2.0, 0.0, 1.0)

    def export_endpoints(self, steps=50):
        """SavedModel endpoints (see `tfgen.export`): deterministic DDIM (η = 0) with `steps` steps.

        `sample(noise, labels)` (`sample(noise)` when not class-conditional), with the
        model's `guidance`; label −1 draws from the unconditional model ε(x, ∅) (with the
        null label in both halves of the guided batch, guidance leaves ε(x, ∅) unchanged).
        `noise` is x_T, shape (B, H, W, C): the endpoint returns what
        `sample(n, labels, steps=steps, seed=s)` does when x_T = stateless_normal(shape, seed=[s, 0]).
        The step count and guidance are fixed here and reported by the `settings` endpoint.
        """
        timesteps = tf.constant(schedules.sampling_timesteps(self.timesteps, steps))
        noise = tf.TensorSpec([None, *self.image_shape], tf.float32, name="noise")

        def run(noise, labels=None):
            guided = labels is not None and self.guidance != 1.0
            labels = self.network_labels(labels, tf.shape(noise)[0])
            x0 = self.reverse_process(tf.zeros([2], tf.int64), labels, timesteps, tf.constant(0.0),
                                      tf.constant(self.guidance, tf.float32), guided=guided, x_start=noise)
            return tf.clip_by_value((x0 + 1.0) / 2.0, 0.0, 1.0)

        settings = {"steps": int(steps), "guidance": self.guidance, "eta": 0.0, "sampler": "ddim"}
        labels = [tf.TensorSpec([None], tf.int32, name="labels")] if self.class_conditional else []
        if labels:
            settings["unconditional_label"] = -1
        return {"sample": (run, [noise, *labels]), "settings": (lambda: settings, [])}

    def network_labels(self, labels, n):
        """User-given labels (None, or class ids with −1 for "unconditional") → the network's (n,) int32
        labels, with the null class for "unconditional". Checked by `conditioning.as_labels`."""
        if labels is None:
            return tf.fill([n], self.null_label)
        if not self.class_conditional:
            raise ValueError("this diffusion model was built with class_conditional=False: sample with labels=None")
        labels = conditioning.as_labels(labels, self.num_classes, None if tf.is_tensor(n) else n,
                                        allow_unconditional=True)
        return tf.where(labels < 0, self.null_label, labels)

    def _sampler(self, guided):
        spec = [
            tf.TensorSpec([2], tf.int64, name="seed"),
            tf.TensorSpec([None], tf.int32, name="labels"),
            tf.TensorSpec([None], tf.int32, name="timesteps"),
            tf.TensorSpec([], tf.float32, name="eta"),
            tf.TensorSpec([], tf.float32, name="guidance"),
        ]
        # One compiled reverse process per value of `guided` (a second network pass or not).
        return self.cached_function(("sampler", guided), lambda: tf.function(
            lambda *args: self.reverse_process(*args, guided=guided), input_signature=spec, autograph=False))

    def reverse_process(self, seed, labels, timesteps, eta, guidance, guided=False, x_start=None):
        """x_T ~ N(0, I), then DDIM updates along `timesteps` (increasing) from last to first; returns x̂_0.

        Written with an explicit `tf.while_loop` (AutoGraph off) so that it is one graph
        whatever the number of steps, and can go into an exported SavedModel.
        """
        shape = tf.concat([tf.shape(labels), tf.constant(self.image_shape, tf.int32)], 0)
        if x_start is None:  # given by an exported endpoint, which takes its noise as input
            x_start = tf.random.stateless_normal(shape, seed=seed)
        null = tf.fill(tf.shape(labels), self.null_label)

        def predict(x, t):
            t = tf.fill(tf.shape(labels), t)
            if not guided:
                return self.ema_network([x, t, labels], training=False)
            # Conditional and unconditional predictions in one batch of 2n.
            both = self.ema_network([tf.concat([x, x], 0), tf.concat([t, t], 0), tf.concat([labels, null], 0)],
                                    training=False)
            conditional, unconditional = tf.split(both, 2, axis=0)
            return unconditional + guidance * (conditional - unconditional)

        def step(i, x):
            prev_t = tf.where(i > 0, timesteps[tf.maximum(i - 1, 0)], -1)  # −1: the last step returns x̂_0
            z = tf.random.stateless_normal(shape, seed=tf.random.experimental.stateless_fold_in(seed, i + 1))
            model_output = tf.cast(predict(x, timesteps[i]), tf.float32)
            return i - 1, self.noise_schedule.step(model_output, timesteps[i], prev_t, x, eta, z)

        last = tf.shape(timesteps)[0] - 1
        _, x = tf.while_loop(lambda i, x: i >= 0, step, (last, x_start))
        return x
