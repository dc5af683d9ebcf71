"""Noise schedules for diffusion models, chosen by name.

A schedule is the sequence ᾱ_t = ∏_{s≤t} (1 − β_s), t = 0 … T−1, of the forward
process q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I). Everything a diffusion model
needs (β_t, the posterior variance, DDIM's coefficients) follows from ᾱ, so a
schedule here is just a function `T -> ᾱ` as a float64 NumPy array:

* `linear`: β_t linear from 1e-4 to 0.02 over T = 1000 steps (Ho et al. 2020,
  "Denoising Diffusion Probabilistic Models", §4). The endpoints are rescaled by
  1000 / T so that other T give the same process (Nichol & Dhariwal 2021, §2.4 /
  their code), e.g. T = 100 steps of β up to 0.2.
* `cosine`: ᾱ_t = f(t + 1) / f(0) for the 0-based t here (their ᾱ_t = f(t) / f(0) with
  t = 1 … T), f(t) = cos²(((t / T) + s) / (1 + s) · π/2), s = 0.008, with β clipped to
  ≤ 0.999 (Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models",
  eq. 17); the clip raises ᾱ_t above f(t + 1) / f(0) only from the first clipped
  step on (for T = 1000: the last step). It destroys information more slowly at the start
  than `linear`, which wastes fewer steps on nearly pure noise at small resolutions.

Timesteps are 0-based: ᾱ_0 is after the first noising step (slightly below 1),
ᾱ_{T−1} is the last (close to 0).

`NoiseSchedule` holds the arithmetic a diffusion model does with ᾱ (in the manner of
diffusers' `DDIMScheduler`): noising (`add_noise`), the training target and its
inverse for ε- and v-prediction, and one DDIM/DDPM reverse step. It has no network
and no loop, so it is tested against values worked out by hand.

`FlowPath` is the same kind of object for flow matching (the `flow` family): the
straight path from data to noise and its velocity target. Both are *processes*: what
a denoising model (`tfgen.models.diffusion.DenoisingModel`) trains against and
samples along, through the same few methods (`draw_times`, `validation_times`,
`add_noise`, `prediction_target`, `network_time`, `sampling_grid`, `time_dtype`). The
steps that walk a process backwards are `tfgen.samplers`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfgen import checks


def linear_alpha_bars(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    scale = 1000.0 / timesteps
    betas = np.linspace(scale * beta_start, scale * beta_end, timesteps, dtype=np.float64)
    if betas[-1] >= 1.0:
        raise ValueError(f"the linear schedule needs timesteps >= 21 (beta_T = {betas[-1]:.3f} >= 1 for T = {timesteps})")
    return np.cumprod(1.0 - betas)


def cosine_alpha_bars(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    def f(t):
        return np.cos((t / timesteps + s) / (1.0 + s) * np.pi / 2.0) ** 2

    t = np.arange(timesteps + 1, dtype=np.float64)
    # β_t = 1 − ᾱ_t / ᾱ_{t−1}, clipped: near t = T the cosine's ratio → 0 and β → 1,
    # which would make the last step singular.
    betas = np.minimum(1.0 - f(t[1:]) / f(t[:-1]), max_beta)
    return np.cumprod(1.0 - betas)


SCHEDULES = {"linear": linear_alpha_bars, "cosine": cosine_alpha_bars}


def alpha_bars(name: str, timesteps: int) -> np.ndarray:
    """ᾱ_t for t = 0 … timesteps − 1 of the schedule called `name`."""
    checks.one_of(name, SCHEDULES, "noise schedule")
    return SCHEDULES[name](checks.int_at_least(timesteps, "timesteps", 2))


def betas_from_alpha_bars(alpha_bar: np.ndarray) -> np.ndarray:
    """β_t = 1 − ᾱ_t / ᾱ_{t−1} (with ᾱ_{−1} = 1)."""
    previous = np.concatenate([[1.0], alpha_bar[:-1]])
    return 1.0 - alpha_bar / previous


def sampling_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """`steps` training timesteps, evenly spaced from 0 to T − 1, increasing (DDIM's sub-sequence τ).

    T − 1 is always included so that sampling starts from (almost) pure noise, and
    0 always included so that it ends at the least noisy step.
    """
    steps = checks.int_between(steps, "steps", 1, timesteps, "the training timesteps")
    if steps == 1:
        return np.array([timesteps - 1], dtype=np.int32)
    return np.round(np.linspace(0, timesteps - 1, int(steps))).astype(np.int32)


def log_snr_timesteps(alpha_bar: np.ndarray, steps: int) -> np.ndarray:
    """`steps` distinct training timesteps, increasing, near-evenly spaced in λ_t = log(√ᾱ_t/√(1−ᾱ_t)).

    The "logSNR" step spacing of Lu et al. 2022 ("DPM-Solver", §3.3 and their code's
    `skip_type="logSNR"`, recommended there for low-resolution images): a multistep solver's
    step ratio r = h_prev/h stays near 1. On the evenly spaced timesteps of
    `sampling_timesteps` the last steps' λ-intervals grow fast (at 15 steps of the cosine schedule
    the last is 4.5× the one before it), the second-order extrapolation is then far from its
    centre, and with the exact denoiser of Gaussian data the spread came out 16–26% too large;
    on this spacing within 4% (tests/models/test_dpm_solver.py). Each λ is rounded to the nearest timestep; where the
    schedule's λ jumps by more than one interval between neighbouring timesteps (the clipped end
    of the cosine schedule), the timesteps are moved apart so that there are exactly `steps`.
    """
    timesteps = len(alpha_bar)
    steps = checks.int_between(steps, "steps", 1, timesteps, "the training timesteps")
    if steps == 1:
        return np.array([timesteps - 1], dtype=np.int32)
    lam = 0.5 * (np.log(alpha_bar) - np.log1p(-alpha_bar))  # decreasing in t
    targets = np.linspace(lam[-1], lam[0], steps)[::-1]  # increasing t
    chosen = np.array([np.argmin(np.abs(lam - target)) for target in targets])
    chosen[-1], chosen[0] = timesteps - 1, 0
    for k in range(steps - 2, -1, -1):  # distinct from the top down ...
        chosen[k] = min(chosen[k], chosen[k + 1] - 1)
    return np.maximum(chosen, np.arange(steps)).astype(np.int32)  # ... and from the bottom up


PREDICTIONS = ("epsilon", "v")
#: What the graphs gather per timestep, computed from ᾱ in float64 and only then cast to float32:
#: 1 − ᾱ_t computed in float32 from ᾱ_t ≈ 1 would keep only a few digits at small t.
TABLES = {
    "alpha_bar": lambda a: a,
    "one_minus_alpha_bar": lambda a: 1.0 - a,
    "sqrt_alpha_bar": np.sqrt,
    "sqrt_one_minus_alpha_bar": lambda a: np.sqrt(1.0 - a),
    # λ_t = log(√ᾱ_t / √(1 − ᾱ_t)), half the log signal-to-noise ratio: DPM-Solver's time variable.
    "log_snr_half": lambda a: 0.5 * (np.log(a) - np.log1p(-a)),
}


class NoiseSchedule:
    """The forward process q(x_t | x_0) of one schedule, and the DDIM/DDPM step that reverses it.

    alpha_bar: ᾱ_t for t = 0 … T−1 (float64; `named` builds it from a schedule's name);
    prediction: what the network predicts, "epsilon" (the noise ε, Ho et al. 2020) or
    "v" (v = √ᾱ ε − √(1−ᾱ) x_0, Salimans & Ho 2022, §4). Timesteps `t` are int
    tensors of any shape; images are float32 (B, H, W, C) in [−1, 1].
    """

    #: The dtype of timesteps: of the network's time input and of a sampling grid.
    time_dtype = tf.int32

    def __init__(self, alpha_bar, prediction: str = "epsilon"):
        self.alpha_bar = np.asarray(alpha_bar, np.float64)  # the float32 tables are computed from it
        self.timesteps = len(self.alpha_bar)
        self.prediction = checks.one_of(prediction, PREDICTIONS, "prediction")
        self._tables = {key: table(self.alpha_bar) for key, table in TABLES.items()}

    @classmethod
    def named(cls, name: str, timesteps: int, prediction: str = "epsilon") -> NoiseSchedule:
        """The schedule called `name` (`SCHEDULES`) over `timesteps` steps."""
        return cls(alpha_bars(name, timesteps), prediction)

    def draw_times(self, batch, seed):
        """Training timesteps: uniform over 0 … T−1 (Ho et al. 2020, Alg. 1)."""
        return tf.random.stateless_uniform([batch], seed, maxval=self.timesteps, dtype=tf.int32)

    def validation_times(self, batch):
        """Fixed timesteps, evenly spread over [0, T) across the batch (validation losses are comparable)."""
        return (tf.range(batch) * self.timesteps + self.timesteps // 2) // batch

    def network_time(self, t):
        """What the network's time input gets: the integer timestep itself."""
        return t

    def sampling_grid(self, steps, spacing="time"):
        """The timesteps a sampler visits, increasing; it walks them backwards.

        spacing: "time", evenly spaced timesteps (`sampling_timesteps`, DDIM's sub-sequence), or
        "log_snr", evenly spaced λ (`log_snr_timesteps`, for DPM-Solver++).
        """
        if spacing == "log_snr":
            return log_snr_timesteps(self.alpha_bar, steps)
        return sampling_timesteps(self.timesteps, steps)

    def at(self, table: str, t):
        """`TABLES[table]` at int timesteps t (any shape), float32."""
        return tf.gather(tf.constant(self._tables[table], tf.float32), t)

    def coefficients(self, t):
        """(√ᾱ_t, √(1 − ᾱ_t)) for a batch of int timesteps, each (B, 1, 1, 1) to broadcast over images."""
        return tuple(tf.reshape(self.at(table, t), [-1, 1, 1, 1])
                     for table in ("sqrt_alpha_bar", "sqrt_one_minus_alpha_bar"))

    def add_noise(self, x0, noise, t):
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: a draw from q(x_t | x_0) given the noise ε (DDPM's q_sample)."""
        signal, noise_scale = self.coefficients(t)
        return signal * x0 + noise_scale * noise

    def forward_transition(self, x_s, s, t, noise):
        """A draw from q(x_t | x_s) for int timesteps s < t: √(ᾱ_t/ᾱ_s) x_s + √(1 − ᾱ_t/ᾱ_s) ε (Ho et al. 2020, eq. 2
        over several steps; RePaint's way back up), with 1 − ᾱ_t/ᾱ_s from the accurate 1 − ᾱ values."""
        ratio = self.at("alpha_bar", t) / self.at("alpha_bar", s)
        gap = (self.at("one_minus_alpha_bar", t) - self.at("one_minus_alpha_bar", s)) / self.at("alpha_bar", s)
        return tf.sqrt(ratio) * x_s + tf.sqrt(tf.maximum(gap, 0.0)) * noise

    def prediction_target(self, x0, noise, t):
        """What the network learns to output at x_t: ε, or v = √ᾱ_t ε − √(1 − ᾱ_t) x_0."""
        if self.prediction == "epsilon":
            return noise
        signal, noise_scale = self.coefficients(t)
        return signal * noise - noise_scale * x0

    def predicted_x0_and_noise(self, sample, model_output, signal, noise_scale):
        """(x̂_0, ε̂) from the network's output at x_t = `sample`; signal = √ᾱ_t, noise_scale = √(1 − ᾱ_t).

        ε: x̂_0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ. v: x̂_0 = √ᾱ x_t − √(1−ᾱ) v̂ and ε̂ = √(1−ᾱ) x_t + √ᾱ v̂
        (substitute x_t = √ᾱ x_0 + √(1−ᾱ) ε and use ᾱ + (1 − ᾱ) = 1).
        """
        if self.prediction == "epsilon":
            return (sample - noise_scale * model_output) / signal, model_output
        return signal * sample - noise_scale * model_output, noise_scale * sample + signal * model_output

    def step(self, model_output, t, prev_t, sample, eta, variance_noise, clip=True):
        """One reverse step x_t → x_prev (DDIM, Song et al. 2021, eq. 12); prev_t < 0 means x_0 (ᾱ = 1).

            x̂_0 = clip(x̂_0(model_output), −1, 1), ε̂ recomputed to match (Ho et al.'s "clip_denoised")
            σ_t = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)
            x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ_t²) ε̂ + σ_t z

        η = 0 is deterministic DDIM; η = 1 with every timestep is Ho et al.'s DDPM
        ancestral sampler (σ² = the posterior variance β̃_t). t, prev_t: int scalars;
        variance_noise: z ~ N(0, I) shaped like `sample` (the caller's randomness).
        clip: clip x̂_0 to [−1, 1] (pixels); False for data that is not bounded there (latents).
        """
        signal, noise_scale, variance = (self.at(table, t) for table in (
            "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar", "one_minus_alpha_bar"))
        a_prev, signal_prev, variance_prev = (
            tf.where(prev_t >= 0, self.at(table, tf.maximum(prev_t, 0)), clean)
            for table, clean in (("alpha_bar", 1.0), ("sqrt_alpha_bar", 1.0), ("one_minus_alpha_bar", 0.0)))
        x0, noise = self.predicted_x0_and_noise(sample, model_output, signal, noise_scale)
        if clip:
            x0 = tf.clip_by_value(x0, -1.0, 1.0)
            noise = (sample - signal * x0) / noise_scale
        # σ² = η² (1−ᾱ_prev)/(1−ᾱ_t) (1 − ᾱ_t/ᾱ_prev), with 1 − ᾱ_t/ᾱ_prev = ((1−ᾱ_t) − (1−ᾱ_prev))/ᾱ_prev:
        # a difference of the accurate 1 − ᾱ values, not of two float32 numbers close to 1.
        sigma = eta * tf.sqrt(variance_prev / variance * (variance - variance_prev) / a_prev)
        direction = tf.sqrt(tf.maximum(variance_prev - sigma**2, 0.0)) * noise
        return signal_prev * x0 + direction + sigma * variance_noise


TIME_DISTRIBUTIONS = ("logit_normal", "uniform")


class FlowPath:
    """The straight path of flow matching / rectified flow, and its velocity target.

    x_t = (1 − t) x_0 + t ε, t ∈ [0, 1], ε ~ N(0, I): the conditional optimal-transport
    path of Lipman et al. 2023 ("Flow Matching for Generative Modeling", eq. 20–23, with
    σ_min = 0 and time reversed: t = 0 is data here, as in Esser et al. 2024), which is Liu
    et al.'s 2023 rectified flow ("Flow Straight and Fast", eq. 1). Its velocity is
    dx_t/dt = ε − x_0: the network learns v(x_t, t) = E[ε − x_0 | x_t] by regression, and
    sampling integrates dx/dt = v from t = 1 (noise) to t = 0.

    time_distribution: how training draws t.
      * "logit_normal" (the default): t = sigmoid(u), u ~ N(0, 1) (Esser et al. 2024, "Scaling
        Rectified Flow Transformers", §3.1, eq. 19, m = 0, s = 1), which was the best of
        their samplers of t. Near t = 0 the best prediction is E[ε] − x_0 = −x_t, near t = 1
        it is ε − E[x_0] ≈ x_t − mean: both ends are easy; the middle, where the image is
        decided, is where the network needs the training. Its density is 0 at both ends.
      * "uniform": t ~ U(0, 1) (Lipman et al., Liu et al.).

    The network sees 1000·t (`network_time`): the U-Net's sinusoidal embedding has
    frequencies from 1 down to 1/10,000 per unit, made for integer timesteps up to ~1000;
    t itself in [0, 1] would leave all but the fastest few nearly constant.
    """

    time_dtype = tf.float32
    #: The network's time input is TIME_SCALE · t (see the class docstring).
    TIME_SCALE = 1000.0

    def __init__(self, time_distribution: str = "logit_normal"):
        self.time_distribution = checks.one_of(time_distribution, TIME_DISTRIBUTIONS, "time distribution")

    def draw_times(self, batch, seed):
        """Training times t in (0, 1) from `time_distribution`."""
        if self.time_distribution == "uniform":
            return tf.random.stateless_uniform([batch], seed)
        return tf.sigmoid(tf.random.stateless_normal([batch], seed))

    def validation_times(self, batch):
        """Fixed times, the midpoints of `batch` equal parts of [0, 1]."""
        return (tf.cast(tf.range(batch), tf.float32) + 0.5) / tf.cast(batch, tf.float32)

    def network_time(self, t):
        return self.TIME_SCALE * t

    @staticmethod
    def _broadcast(t):
        return tf.reshape(tf.cast(t, tf.float32), [-1, 1, 1, 1])

    def add_noise(self, x0, noise, t):
        """x_t = (1 − t) x_0 + t ε."""
        t = self._broadcast(t)
        return (1.0 - t) * x0 + t * noise

    def forward_transition(self, x_s, s, t, noise):
        """A draw of x_t given x_s on the path, s < t (scalars): x_t = r x_s + √(t² − (r s)²) ε, r = (1 − t)/(1 − s).

        x_s = (1 − s) x_0 + s ε₁, so r x_s = (1 − t) x_0 + r s ε₁, and the independent ε adds the noise that
        takes the total to t² (r s < t for s < t): the marginal of x_t given x_0 is the path's."""
        s, t = tf.cast(s, tf.float32), tf.cast(t, tf.float32)
        ratio = (1.0 - t) / (1.0 - s)
        return ratio * x_s + tf.sqrt(tf.maximum(t**2 - (ratio * s) ** 2, 0.0)) * noise

    def prediction_target(self, x0, noise, t):
        """The velocity v = dx_t/dt = ε − x_0 (the same at every t on a straight path)."""
        return noise - x0

    def sampling_grid(self, steps):
        """The times a sampler visits, increasing: i/steps for i = 1 … steps (it walks them backwards to 0)."""
        steps = checks.positive_int(steps, "steps")
        return (np.arange(1, steps + 1, dtype=np.float64) / steps).astype(np.float32)
