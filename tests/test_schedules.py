"""Noise schedules and `NoiseSchedule`'s arithmetic, against values worked out by hand.

The hand-worked cases use a two-step schedule with ᾱ = (0.64, 0.36), whose square roots
are exact: √ᾱ = (0.8, 0.6) and √(1 − ᾱ) = (0.6, 0.8).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfgen import schedules
from tfgen.registry import UnknownNameError
from tfgen.schedules import NoiseSchedule


def test_linear_schedule_matches_ho_et_al():
    a = schedules.alpha_bars("linear", 1000)
    # β_0 = 1e-4, β_1 = 1e-4 + (0.02 − 1e-4)/999, ᾱ_t = ∏ (1 − β_s).
    beta_1 = 1e-4 + (0.02 - 1e-4) / 999
    assert a[0] == pytest.approx(1 - 1e-4, rel=1e-12)
    assert a[1] == pytest.approx((1 - 1e-4) * (1 - beta_1), rel=1e-12)
    # ∏(1 − β) < exp(−Σβ) = exp(−1000 · (1e-4 + 0.02)/2) = exp(−10.05): the last step is nearly pure noise.
    assert 3e-5 < a[-1] < math.exp(-10.05)
    assert np.all(np.diff(a) < 0)
    # Other T are rescaled to the same process: β runs from 1e-3 to 0.2 for T = 100.
    betas = schedules.betas_from_alpha_bars(schedules.alpha_bars("linear", 100))
    np.testing.assert_allclose(betas[[0, -1]], [1e-3, 0.2], rtol=1e-9)


def test_cosine_schedule_matches_nichol_and_dhariwal():
    a = schedules.alpha_bars("cosine", 1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # their eq. 17
    assert a[0] == pytest.approx(f(1) / f(0), rel=1e-9)
    assert a[499] == pytest.approx(0.4938435904, rel=1e-8)  # f(500)/f(0), worked out by hand
    assert np.all(np.diff(a) < 0) and 0 < a[-1] < 1e-6
    # β is clipped at 0.999 where the cosine's ratio would reach 1 (the last step).
    assert schedules.betas_from_alpha_bars(a)[-1] == pytest.approx(0.999)


def test_sampling_timesteps_span_the_whole_process():
    ts = schedules.sampling_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 0 and ts[-1] == 999 and np.all(np.diff(ts) > 0)
    np.testing.assert_array_equal(schedules.sampling_timesteps(10, 10), np.arange(10))
    np.testing.assert_array_equal(schedules.sampling_timesteps(1000, 1), [999])
    for bad in (0, 1001, 2.5):
        with pytest.raises(ValueError, match="steps must be an integer"):
            schedules.sampling_timesteps(1000, bad)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_graph_coefficients_keep_full_float32_precision_near_t0(schedule):
    # 1 − ᾱ_t from a float32 ᾱ_t ≈ 1 keeps only a few digits (√(1 − ᾱ_0) off by ~3e-4 relative
    # for the cosine schedule); computed in float64 and then cast, it is exact to float32 rounding.
    s = NoiseSchedule.named(schedule, 1000)
    t = np.arange(s.timesteps)
    signal, noise_scale = (np.asarray(c, np.float64).reshape(-1) for c in s.coefficients(t))
    np.testing.assert_allclose(noise_scale, np.sqrt(1.0 - s.alpha_bar), rtol=1e-6)
    np.testing.assert_allclose(signal, np.sqrt(s.alpha_bar), rtol=1e-6)
    variance = np.asarray(s.at("one_minus_alpha_bar", t), np.float64)
    np.testing.assert_allclose(variance, 1.0 - s.alpha_bar, rtol=1e-6)


# ---------------------------------------------------------------------------- forward process
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_noising_has_the_right_mean_and_variance(schedule):
    s = NoiseSchedule.named(schedule, 1000)
    x0 = tf.fill([256, 28, 28, 1], 0.5)  # a constant image (0.75 in [0, 1])
    for t in (0, 300, 999):
        x_t = s.add_noise(x0, tf.random.stateless_normal(tf.shape(x0), seed=[t, 0]), tf.fill([256], t))
        a = s.alpha_bar[t]
        # 200k pixels: the standard error of the mean is ~0.002·σ.
        assert float(tf.reduce_mean(x_t)) == pytest.approx(math.sqrt(a) * 0.5, abs=0.01)
        assert float(tf.math.reduce_variance(x_t)) == pytest.approx(1 - a, rel=0.02, abs=1e-5)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_x0_and_noise_are_recovered_from_the_true_target(prediction):
    s = NoiseSchedule.named("cosine", 1000, prediction)
    x0 = tf.random.stateless_uniform([4, 28, 28, 1], seed=[1, 2], minval=-1, maxval=1)
    noise = tf.random.stateless_normal([4, 28, 28, 1], seed=[3, 4])
    t = tf.constant([0, 10, 500, 999])
    x_t = s.add_noise(x0, noise, t)
    target = s.prediction_target(x0, noise, t)
    got_x0, got_noise = s.predicted_x0_and_noise(x_t, target, *s.coefficients(t))
    np.testing.assert_allclose(got_noise, noise, atol=2e-3)
    np.testing.assert_allclose(got_x0[:3], x0[:3], atol=2e-3)  # at t = T−1 x_0 is ill-determined by ε


# ---------------------------------------------------------------------------- by hand, ᾱ = (0.64, 0.36)
def two_steps(prediction="epsilon"):
    return NoiseSchedule([0.64, 0.36], prediction)


def values(x):
    return np.asarray(x, np.float64).reshape(-1)


def test_add_noise_and_targets_by_hand():
    s, x0, noise, t = two_steps("v"), tf.fill([2, 1, 1, 1], 0.5), tf.ones([2, 1, 1, 1]), tf.constant([0, 1])
    # x_t = √ᾱ x_0 + √(1−ᾱ) ε: 0.8·0.5 + 0.6 = 1.0 and 0.6·0.5 + 0.8 = 1.1.
    np.testing.assert_allclose(values(s.add_noise(x0, noise, t)), [1.0, 1.1], rtol=1e-6)
    # v = √ᾱ ε − √(1−ᾱ) x_0: 0.8 − 0.6·0.5 = 0.5 and 0.6 − 0.8·0.5 = 0.2; ε-prediction's target is ε.
    np.testing.assert_allclose(values(s.prediction_target(x0, noise, t)), [0.5, 0.2], rtol=1e-6)
    np.testing.assert_allclose(values(two_steps().prediction_target(x0, noise, t)), [1.0, 1.0])


@pytest.mark.parametrize("prediction, output", [("epsilon", 1.0), ("v", 0.5)])
def test_x0_and_noise_from_the_output_by_hand(prediction, output):
    # At t = 0, x_t = 1.0 is x_0 = 0.5 noised with ε = 1, whose v is 0.5 (above).
    x0, noise = two_steps(prediction).predicted_x0_and_noise(tf.constant(1.0), tf.constant(output), 0.8, 0.6)
    assert (float(x0), float(noise)) == (pytest.approx(0.5, rel=1e-6), pytest.approx(1.0, rel=1e-6))


def step(s, output, t, prev_t, sample, eta=0.0, z=0.0):
    return float(s.step(tf.constant(output), tf.constant(t), tf.constant(prev_t), tf.constant(sample),
                        tf.constant(eta), tf.constant(z)))


def test_ddim_step_with_the_true_noise_retraces_the_forward_process():
    # From x_1 = 1.1 (x_0 = 0.5, ε = 1): x̂_0 = (1.1 − 0.8)/0.6 = 0.5, x_0' = 0.8·0.5 + 0.6·1 = 1.0 = x_0 noised at t = 0.
    assert step(two_steps(), 1.0, 1, 0, 1.1) == pytest.approx(1.0, rel=1e-6)
    assert step(two_steps("v"), 0.2, 1, 0, 1.1) == pytest.approx(1.0, rel=1e-6)  # v at t = 1 is 0.2
    # The last step (prev_t = −1, ᾱ_prev = 1) returns x̂_0 itself, with no noise even for η = 1.
    assert step(two_steps(), 1.0, 0, -1, 1.0, eta=1.0, z=5.0) == pytest.approx(0.5, rel=1e-6)


def test_ddpm_step_adds_the_posterior_variance_by_hand():
    # η = 1: σ² = (1−ᾱ_0)/(1−ᾱ_1) · (1 − ᾱ_1/ᾱ_0) = 0.5625 · 0.4375 = 0.24609375 = β̃_1, the posterior
    # variance; the direction term is √(0.36 − σ²) ε̂ = 0.3375. With z = 1: 0.4 + 0.3375 + √0.24609375.
    assert step(two_steps(), 1.0, 1, 0, 1.1, eta=1.0, z=1.0) == pytest.approx(0.7375 + math.sqrt(0.24609375),
                                                                                rel=1e-6)
    # η = 0.5 halves σ: 0.4 + √(0.36 − σ²/4) + σ/2.
    sigma = 0.5 * math.sqrt(0.24609375)
    assert step(two_steps(), 1.0, 1, 0, 1.1, eta=0.5, z=1.0) == pytest.approx(
        0.4 + math.sqrt(0.36 - sigma**2) + sigma, rel=1e-6)


def test_step_clips_x0_to_the_data_range_and_recomputes_the_noise():
    # ε̂ = −1 at x_1 = 1.1: x̂_0 = (1.1 + 0.8)/0.6 ≈ 3.17 → 1, ε̂ → (1.1 − 0.6·1)/0.8 = 0.625,
    # x_0' = 0.8·1 + 0.6·0.625 = 1.175.
    assert step(two_steps(), -1.0, 1, 0, 1.1) == pytest.approx(1.175, rel=1e-6)
    # The last step returns the clipped x̂_0: (1.0 + 2·0.6)/0.8 = 2.75 → 1.
    assert step(two_steps(), -2.0, 0, -1, 1.0) == pytest.approx(1.0)


def test_unknown_schedule_and_prediction_and_bad_timesteps_are_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown noise schedule 'cosin'.*did you mean 'cosine'"):
        NoiseSchedule.named("cosin", 10)
    with pytest.raises(UnknownNameError, match="unknown prediction 'x0'; choose from epsilon, v"):
        NoiseSchedule([0.5], "x0")
    with pytest.raises(ValueError, match="timesteps must be an integer >= 2, got 1"):
        NoiseSchedule.named("linear", 1)
