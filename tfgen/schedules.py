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


PREDICTIONS = ("epsilon", "v")
#: What the graphs gather per timestep, computed from ᾱ in float64 and only then cast to float32:
#: 1 − ᾱ_t computed in float32 from ᾱ_t ≈ 1 would keep only a few digits at small t.
TABLES = {
    "alpha_bar": lambda a: a,
    "one_minus_alpha_bar": lambda a: 1.0 - a,
    "sqrt_alpha_bar": np.sqrt,
    "sqrt_one_minus_alpha_bar": lambda a: np.sqrt(1.0 - a),
}


class NoiseSchedule:
    """The forward process q(x_t | x_0) of one schedule, and the DDIM/DDPM step that reverses it.

    alpha_bar: ᾱ_t for t = 0 … T−1 (float64; `named` builds it from a schedule's name);
    prediction: what the network predicts, "epsilon" (the noise ε, Ho et al. 2020) or
    "v" (v = √ᾱ ε − √(1−ᾱ) x_0, Salimans & Ho 2022, §4). Timesteps `t` are int
    tensors of any shape; images are float32 (B, H, W, C) in [−1, 1].
    """

    def __init__(self, alpha_bar, prediction: str = "epsilon"):
        self.alpha_bar = np.asarray(alpha_bar, np.float64)  # the float32 tables are computed from it
        self.timesteps = len(self.alpha_bar)
        self.prediction = checks.one_of(prediction, PREDICTIONS, "prediction")
        self._tables = {key: table(self.alpha_bar) for key, table in TABLES.items()}

    @classmethod
    def named(cls, name: str, timesteps: int, prediction: str = "epsilon") -> NoiseSchedule:
        """The schedule called `name` (`SCHEDULES`) over `timesteps` steps."""
        return cls(alpha_bars(name, timesteps), prediction)

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
