"""Samplers: the step that walks a process (`tfgen.schedules`) backwards, one object per method.

As in diffusers, where each sampler is a scheduler object with a `step`, the model
keeps the network, classifier-free guidance and the loop
(`tfgen.models.diffusion.DenoisingModel.reverse_process`: one `tf.while_loop`, AutoGraph
off, exportable), and a sampler only says what one step does:

    x, state = sampler.step(predict, grid, i, x, state, z)

`grid` is the process's sampling grid (`sampling_grid(steps)`: increasing timesteps, or
times in (0, 1]); the loop runs i = last … 0 and step i moves x from grid[i] to grid[i − 1],
or to clean data when i = 0. `predict(x, t)` is the guided network output at the scalar
time t (float32); a sampler calls it once (DDIM, DPM-Solver++, Euler) or twice (Heun).
`network_calls_per_step` says how many times a step calls `predict`: with the step count, the
number of network evaluations (NFE) per image, the cost in which samplers are compared.
`state` is what a multistep method carries from one step to the next (DPM-Solver++(2M):
the previous x̂_0), `initial_state(x)` its value before the first step; `z` is fresh
N(0, I) noise shaped like x for samplers with `stochastic = True`, else None.

For diffusion (`NoiseSchedule`): `DDIM` (and DDPM, η = 1) and `DPMSolverPP`. For flow
matching (`FlowPath`): `Euler` and `Heun`.
"""

from __future__ import annotations

import tensorflow as tf


def previous_time(grid, i, clean):
    """grid[i − 1], or `clean` (the time of the data) when i = 0."""
    return tf.where(i > 0, grid[tf.maximum(i - 1, 0)], tf.cast(clean, grid.dtype))


class Sampler:
    """A sampler without state or noise; subclasses define `step`."""

    stochastic = False
    network_calls_per_step = 1

    def initial_state(self, x):
        return ()

    def step(self, predict, grid, i, x, state, z):
        raise NotImplementedError


class DDIM(Sampler):
    """Song et al. 2021 ("Denoising Diffusion Implicit Models", eq. 12) with noise scale η
    (`NoiseSchedule.step`); η = 1 over every timestep is Ho et al.'s 2020 DDPM sampler."""

    stochastic = True  # η is a tensor: whether it is 0 is known only when the graph runs

    def __init__(self, schedule, eta, clip=True):
        self.schedule, self.eta, self.clip = schedule, eta, clip

    def step(self, predict, grid, i, x, state, z):
        prev_t = previous_time(grid, i, -1)  # −1: the last step returns x̂_0
        return self.schedule.step(predict(x, grid[i]), grid[i], prev_t, x, self.eta, z, clip=self.clip), state


class DPMSolverPP(Sampler):
    """DPM-Solver++(2M): Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
    Probabilistic Models", Algorithm 2 (data prediction, multistep, second order).

    With α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), λ_t = log(α_t/σ_t) and x̂_0 the network's data prediction
    at the step's start t (clipped to [−1, 1] for pixels, as DDIM's), one step t → s, h = λ_s − λ_t:

        D   = x̂_0(t)                                        first step (no previous x̂_0)
        D   = (1 + 1/(2r)) x̂_0(t) − 1/(2r) x̂_0(t_prev),      r = h_prev / h   (otherwise)
        x_s = (σ_s/σ_t) x_t − α_s (e^{−h} − 1) D

    The first step is first order (DDIM's update: there is no previous x̂_0) and so is the
    last, to the data (σ_s = 0, λ_s = ∞): it returns x̂_0, as DDIM's last step does (diffusers'
    `lower_order_final`; the second-order formula would divide by h = ∞). The state is the
    previous step's x̂_0. Diffusion runs it on timesteps evenly spaced in λ
    (`schedules.log_snr_timesteps`), where r stays near 1.
    """

    def __init__(self, schedule, clip=True):
        self.schedule, self.clip = schedule, clip

    def initial_state(self, x):
        return (tf.zeros_like(x),)

    def step(self, predict, grid, i, x, state, z):
        (previous_x0,) = state
        schedule, t = self.schedule, grid[i]
        signal, noise_scale = schedule.at("sqrt_alpha_bar", t), schedule.at("sqrt_one_minus_alpha_bar", t)
        x0, _ = schedule.predicted_x0_and_noise(x, predict(x, t), signal, noise_scale)
        if self.clip:
            x0 = tf.clip_by_value(x0, -1.0, 1.0)
        s = grid[tf.maximum(i - 1, 0)]
        lam_t, lam_s = schedule.at("log_snr_half", t), schedule.at("log_snr_half", s)
        h = lam_s - lam_t
        # r = h_prev / h, with h_prev the step that ended at t (from grid[i + 1]); none at the first step.
        first = tf.equal(i, tf.shape(grid)[0] - 1)
        h_prev = lam_t - schedule.at("log_snr_half", grid[tf.minimum(i + 1, tf.shape(grid)[0] - 1)])
        half_over_r = tf.where(first, 0.0, h / (2.0 * tf.where(first, 1.0, h_prev)))
        d = x0 + half_over_r * (x0 - previous_x0)  # (1 + 1/(2r)) x̂_0 − 1/(2r) x̂_0,prev
        ratio = schedule.at("sqrt_one_minus_alpha_bar", s) / noise_scale
        x_s = ratio * x - schedule.at("sqrt_alpha_bar", s) * tf.math.expm1(-h) * d
        return tf.where(i > 0, x_s, x0), (x0,)


class Euler(Sampler):
    """Euler's method for dx/dt = v(x, t) from t = 1 to 0: x_s = x_t + (s − t) v(x_t, t)."""

    def step(self, predict, grid, i, x, state, z):
        t, s = grid[i], previous_time(grid, i, 0.0)
        return x + (s - t) * predict(x, t), state


class Heun(Sampler):
    """Heun's second-order method (Karras et al. 2022, "Elucidating the Design Space of
    Diffusion-Based Generative Models", Algorithm 1 without churn) for dx/dt = v(x, t):

        d = v(x_t, t),  x̃ = x_t + (s − t) d,  x_s = x_t + (s − t) (d + v(x̃, s)) / 2

    on every step, the last one (to s = 0) included: Alg. 1 takes a plain Euler step there
    because its derivative (x − D(x; σ))/σ is undefined at σ = 0, but the flow's velocity is
    defined at t = 0 (E[ε − x_0 | x_0] = −x_0), and with the exact velocity of Gaussian data
    (tests/models/test_flow.py) an Euler last step left most of the error (at 10 steps, the
    spread 30% too small against 8% with the correction). `steps` steps cost 2·steps network calls.
    """

    network_calls_per_step = 2

    def step(self, predict, grid, i, x, state, z):
        t, s = grid[i], previous_time(grid, i, 0.0)
        d = predict(x, t)
        euler = x + (s - t) * d
        return x + (s - t) * 0.5 * (d + predict(euler, s)), state
