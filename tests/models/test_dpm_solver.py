"""DPM-Solver++(2M) for diffusion: its steps against a float64 hand computation, and the Gaussian oracle."""

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from test_diffusion import oracle_model, stub_network
from tfgen import schedules


def lam(alpha_bar):
    return 0.5 * np.log(alpha_bar / (1.0 - alpha_bar))


def hand_dpm_solver(alpha_bar, grid, x, predict_x0):
    """Lu et al. 2022, Algorithm 2 written out in float64: the first step first order, then second
    order, the last step (to the data) x̂_0. predict_x0(x, t) is the data prediction."""
    previous = None
    for i in reversed(range(len(grid))):
        t = grid[i]
        x0 = predict_x0(x, t)
        if i == 0:
            return x0
        s = grid[i - 1]
        a_t, a_s = alpha_bar[t], alpha_bar[s]
        h = lam(a_s) - lam(a_t)
        d = x0
        if previous is not None:
            r = (lam(a_t) - lam(alpha_bar[grid[i + 1]])) / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous
        x = np.sqrt(1 - a_s) / np.sqrt(1 - a_t) * x - np.sqrt(a_s) * (np.exp(-h) - 1) * d
        previous = x0


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_dpm_solver_steps_are_the_hand_computation(steps):
    # Three training timesteps: with steps=3 a first-order step (2 → 1), a second-order one (1 → 0),
    # then x̂_0; steps=2 one first-order step (2 → 0), then x̂_0; steps=1 x̂_0 at once.
    model = tfgen.get_model("diffusion", "tiny", timesteps=3, schedule="cosine", prediction="epsilon")
    object.__setattr__(model, "ema_network", stub_network)  # ε̂ = 0.5 x + 0.001 t + 0.01 · label (null: 10)
    model.clip_denoised = False  # the solver's arithmetic alone (the clip is DDIM's, tested there)
    alpha_bar = schedules.alpha_bars("cosine", 3)
    grid = model.sampling_grid("dpm++", steps)
    assert list(grid) == [[2], [0, 2], [0, 1, 2]][steps - 1]

    def predict_x0(x, t):
        eps = 0.5 * x + 0.001 * t + 0.01 * 10
        return (x - np.sqrt(1 - alpha_bar[t]) * eps) / np.sqrt(alpha_bar[t])

    x_start = tf.random.stateless_normal([2, 28, 28, 1], seed=[7, 0])
    expected = hand_dpm_solver(alpha_bar, grid, np.asarray(x_start, np.float64), predict_x0)
    # The loop itself (not `sample`, whose `to_images` would clip the large x̂_0 of an ε-network at ᾱ ≈ 0).
    got = model.reverse_process(tf.constant([7, 0], tf.int64), model.network_labels(None, 2), tf.constant(grid),
                                tf.constant(0.0), tf.constant(1.0), sampler="dpm++")
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_dpm_solver_second_order_step_differs_from_a_first_order_one():
    # The same three-timestep case, checked for what would go unnoticed if the second-order term were
    # dropped: its result differs from DDIM's (first order, the same grid) by far more than float32 noise.
    model = tfgen.get_model("diffusion", "tiny", timesteps=3)
    object.__setattr__(model, "ema_network", stub_network)
    model.clip_denoised = False
    dpm = np.asarray(model.sample(2, steps=3, sampler="dpm++", seed=7))
    ddim = np.asarray(model.sample(2, steps=3, sampler="ddim", seed=7))
    assert np.abs(dpm - ddim).max() > 1e-3


def exact_dpm_solver_moments(schedule, steps, mean, std):
    """(mean, std) of the images DPM-Solver++ returns for data N(mean, std²) and the exact denoiser, in float64.

    With that denoiser x̂_0 is affine in x, so every x̃ is g·x_T + c (x_T ~ N(0, 1)): track (g, c).
    """
    alpha_bar = schedules.alpha_bars(schedule, 1000)
    grid = schedules.log_snr_timesteps(alpha_bar, steps)

    def predict_x0(x, t):  # x = (g, c)
        a = alpha_bar[t]
        k = np.sqrt(1 - a) / (a * std**2 + 1 - a)  # ε̂ = k (x − √ᾱ μ)
        return ((1 - np.sqrt(1 - a) * k) * x[0] / np.sqrt(a),
                (x[1] - np.sqrt(1 - a) * k * (x[1] - np.sqrt(a) * mean)) / np.sqrt(a))

    g, c = hand_dpm_solver(alpha_bar, grid, np.array([1.0, 0.0]), lambda x, t: np.array(predict_x0(x, t)))
    return (c + 1) / 2, abs(g) / 2


@pytest.mark.parametrize("prediction, schedule", [("v", "cosine"), ("epsilon", "linear")])
def test_dpm_solver_at_15_steps_recovers_a_gaussian_data_distribution(prediction, schedule):
    # Data N(0.2, 0.1²) in [−1, 1]: images 0.6 ± 0.05, as in test_diffusion's oracle tests.
    model = oracle_model([0.0] * 10 + [0.2], prediction=prediction, schedule=schedule)
    images = np.asarray(model.sample(64, steps=15, sampler="dpm++", seed=0))
    mean, std = exact_dpm_solver_moments(schedule, 15, 0.2, 0.1)
    # 50,176 pixels: standard errors 2e-4 (mean) and 0.3% (std); the bounds are ≥ 6 of them.
    assert images.mean() == pytest.approx(0.6, abs=0.003)
    assert images.std() == pytest.approx(std, rel=0.02)
    # What the solver itself gets right at 15 steps: the data's spread within 5% (exactly: 1.5% too large
    # on the cosine schedule, 1.3% on the linear; 2–4% for data std 0.3 or 0.5), where DDIM at 15 steps
    # (test_diffusion's exact_sample_std) loses a third (cosine) to a half (linear) of it.
    assert mean == pytest.approx(0.6, abs=1e-3)
    assert std == pytest.approx(0.05, rel=0.05)


def test_log_snr_timesteps_are_distinct_and_span_the_schedule():
    alpha_bar = schedules.alpha_bars("cosine", 1000)
    for steps in (2, 10, 15, 50, 1000):
        grid = schedules.log_snr_timesteps(alpha_bar, steps)
        assert len(grid) == steps and grid[0] == 0 and grid[-1] == 999 and np.all(np.diff(grid) > 0)
    # Away from the clipped end (the last timestep's λ is 3.5 below its neighbour's, so the top
    # timesteps are consecutive), the λ-intervals are nearly equal (the step ratio r near 1).
    h = np.diff(lam(alpha_bar[schedules.log_snr_timesteps(alpha_bar, 15)[::-1]]))
    assert np.all(np.abs(h[5:] / h[5:].mean() - 1) < 0.1), h
