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
"""

from __future__ import annotations

import numpy as np

from tfgen.registry import UnknownNameError


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
    if name not in SCHEDULES:
        raise UnknownNameError(f"unknown noise schedule {name!r}; choose from {', '.join(SCHEDULES)}")
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 2:
        raise ValueError(f"timesteps must be an integer >= 2, got {timesteps!r}")
    return SCHEDULES[name](timesteps)


def betas_from_alpha_bars(alpha_bar: np.ndarray) -> np.ndarray:
    """β_t = 1 − ᾱ_t / ᾱ_{t−1} (with ᾱ_{−1} = 1)."""
    previous = np.concatenate([[1.0], alpha_bar[:-1]])
    return 1.0 - alpha_bar / previous


def sampling_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """`steps` training timesteps, evenly spaced from 0 to T − 1, increasing (DDIM's sub-sequence τ).

    T − 1 is always included so that sampling starts from (almost) pure noise, and
    0 always included so that it ends at the least noisy step.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be an integer in [1, {timesteps}] (the training timesteps), got {steps!r}")
    if steps == 1:
        return np.array([timesteps - 1], dtype=np.int32)
    return np.round(np.linspace(0, timesteps - 1, int(steps))).astype(np.int32)
