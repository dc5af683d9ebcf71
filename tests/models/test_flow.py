"""Flow matching: the path and loss against hand values, Euler and Heun against the exact velocity of
Gaussian data, guidance and labels, the --sampler option; the registry-wide tests cover the rest."""

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from tfgen.cli import with_sample_options
from tfgen.models.diffusion import VALIDATION_SEED
from tfgen.registry import UnknownNameError
from tfgen.schedules import FlowPath


class GaussianVelocity:
    """The exact velocity for data x_0 ~ N(μ_y, s²) per pixel (μ_y depending on the label), noise ε ~ N(0, 1).

    x_t = (1 − t) x_0 + t ε has mean (1 − t) μ and variance V = (1 − t)² s² + t², so (linear regression)
    E[ε | x_t] = t (x_t − (1 − t) μ) / V and E[x_0 | x_t] = μ + (1 − t) s² (x_t − (1 − t) μ) / V:
    v(x, t) = E[ε − x_0 | x_t] = a(t) (x_t − (1 − t) μ) − μ with a(t) = (t − (1 − t) s²) / V.
    The exact ODE carries N(0, 1) at t = 1 to N(μ, s²) at t = 0.
    """

    def __init__(self, means, std):
        self.means, self.std = tf.constant(means, tf.float32), std

    def __call__(self, inputs, training=False):
        x, time, labels = inputs
        t = tf.reshape(time / FlowPath.TIME_SCALE, [-1, 1, 1, 1])
        mu = tf.reshape(tf.gather(self.means, labels), [-1, 1, 1, 1])
        a = (t - (1 - t) * self.std**2) / ((1 - t) ** 2 * self.std**2 + t**2)
        return a * (x - (1 - t) * mu) - mu


def oracle_flow(means, std=0.1, **overrides):
    model = tfgen.get_model("flow", "tiny", **overrides)
    object.__setattr__(model, "ema_network", GaussianVelocity(means, std))  # bypass Keras tracking
    return model


def exact_moments(sampler, steps, mean, std):
    """(mean, std) of the images Euler or Heun returns with the exact velocity, in float64: every step is
    affine in x, so x = g·x_1 + c with x_1 ~ N(0, 1); track (g, c)."""
    grid = np.arange(1, steps + 1) / steps
    a = lambda t: (t - (1 - t) * std**2) / ((1 - t) ** 2 * std**2 + t**2)  # noqa: E731
    velocity = lambda x, t: np.array([a(t) * x[0], a(t) * (x[1] - (1 - t) * mean) - mean])  # noqa: E731
    x = np.array([1.0, 0.0])
    for i in reversed(range(steps)):
        t, s = grid[i], grid[i - 1] if i > 0 else 0.0
        d = velocity(x, t)
        if sampler == "heun":
            d = (d + velocity(x + (s - t) * d, s)) / 2
        x = x + (s - t) * d
    return (x[1] + 1) / 2, abs(x[0]) / 2


@pytest.mark.parametrize("sampler, steps", [("euler", 1000), ("euler", 10), ("heun", 20), ("heun", 10)])
def test_euler_and_heun_recover_a_gaussian_data_distribution(sampler, steps):
    # Unconditional (the null label, last): data N(0.2, 0.1²) in [−1, 1], i.e. images 0.6 ± 0.05.
    model = oracle_flow([0.0] * 10 + [0.2])
    images = np.asarray(model.sample(64, steps=steps, sampler=sampler, seed=0))
    mean, std = exact_moments(sampler, steps, 0.2, 0.1)
    # 50,176 pixels: standard errors 2e-4 (mean) and 0.3% (std); the bounds are ≥ 6 of them.
    assert images.mean() == pytest.approx(0.6, abs=0.003)
    assert images.std() == pytest.approx(std, rel=0.02)
    assert mean == pytest.approx(0.6, abs=1e-6)  # the mean is exact for both methods
    if steps >= 20:  # many Euler steps, or few Heun ones: the data's spread within 3%
        assert std == pytest.approx(0.05, rel=0.03)


def test_heun_error_is_much_smaller_than_euler_at_equal_steps():
    error = lambda sampler, steps: abs(exact_moments(sampler, steps, 0.2, 0.1)[1] - 0.05)  # noqa: E731
    for steps in (10, 20, 50):  # (at 5 steps, where the toy's field is stiff near t = 0, only half)
        assert error("heun", steps) < error("euler", steps) / 4, steps
        # and at equal network calls (Heun's 2 per step) still less than half
        assert error("heun", steps) < error("euler", 2 * steps) / 2, steps
    # Second order: halving the step size divides Heun's error by about 4, Euler's by about 2.
    errors = {s: [abs(exact_moments(s, n, 0.2, 0.5)[1] - 0.25) for n in (50, 100)] for s in ("euler", "heun")}
    assert errors["heun"][0] / errors["heun"][1] == pytest.approx(4, rel=0.1)
    assert errors["euler"][0] / errors["euler"][1] == pytest.approx(2, rel=0.1)


def test_path_and_loss_target_are_the_hand_values():
    model = tfgen.get_model("flow", "tiny")
    seen = {}

    def network(inputs, training=False):
        x, time, labels = inputs
        seen.update(x=np.asarray(x), time=np.asarray(time))
        return 0.5 * x

    images = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    noise = np.random.default_rng(1).normal(size=(2, 28, 28, 1)).astype(np.float32)
    t = np.array([0.25, 0.9], np.float32)
    loss = model.denoising_loss(network, images, tf.constant([4, 10]), tf.constant(t), noise)
    x0, tb = 2.0 * images.astype(np.float64) - 1.0, t.astype(np.float64)[:, None, None, None]
    x_t = (1 - tb) * x0 + tb * noise
    np.testing.assert_allclose(seen["x"], x_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seen["time"], 1000 * t)  # the U-Net's sinusoids see 1000·t
    assert float(loss) == pytest.approx(np.mean((noise - x0 - 0.5 * x_t) ** 2), rel=1e-5)  # target ε − x_0


def test_training_times_follow_the_chosen_distribution():
    seed = tf.constant([3, 4], tf.int64)
    logit_normal = np.asarray(FlowPath("logit_normal").draw_times(20000, seed))
    uniform = np.asarray(FlowPath("uniform").draw_times(20000, seed))
    assert 0 < logit_normal.min() and logit_normal.max() < 1 and 0 <= uniform.min() and uniform.max() < 1
    logits = np.log(logit_normal / (1 - logit_normal))
    assert logits.mean() == pytest.approx(0, abs=0.03) and logits.std() == pytest.approx(1, abs=0.03)
    assert uniform.mean() == pytest.approx(0.5, abs=0.01) and uniform.std() == pytest.approx(12**-0.5, abs=0.01)
    with pytest.raises(UnknownNameError, match="unknown time distribution 'beta'"):
        tfgen.get_model("flow", "tiny", time_distribution="beta")


def test_validation_loss_is_deterministic_and_starts_at_the_target_variance(random_batches):
    model = tfgen.get_model("flow", "tiny", seed=0)
    model.default_compile()
    losses = [model.evaluate(random_batches, verbose=0, return_dict=True)["loss"] for _ in range(2)]
    # The zero-initialised output layer predicts 0: the loss is the mean (ε − x_0)² over the batches,
    # with the same fixed validation noise for each batch of 8.
    noise = np.asarray(tf.random.stateless_normal([8, 28, 28, 1], seed=VALIDATION_SEED), np.float64)
    x0 = np.concatenate([2.0 * x - 1.0 for x, _ in random_batches.as_numpy_iterator()]).reshape(8, 8, 28, 28, 1)
    assert losses[0] == losses[1] == pytest.approx(np.mean((noise - x0) ** 2), rel=1e-4)


def test_guidance_and_the_unconditional_label():
    means = [-0.5 + 0.1 * k for k in range(10)] + [0.0]
    model = oracle_flow(means, std=0.05)
    labels = np.arange(10)
    per_class = lambda g: np.asarray(model.sample(10, labels=labels, guidance=g, steps=20, seed=1)).mean(axis=(1, 2, 3))  # noqa: E731
    np.testing.assert_allclose(per_class(1.0), (np.array(means[:10]) + 1) / 2, atol=0.01)
    np.testing.assert_allclose(per_class(0.0), np.full(10, 0.5), atol=0.01)
    strong = per_class(2.0)
    assert strong[0] < per_class(1.0)[0] < 0.5 < per_class(1.0)[9] < strong[9]
    np.testing.assert_allclose(model.sample(2, labels=-1, steps=3, seed=5), model.sample(2, steps=3, seed=5),
                               atol=1e-5)


def test_samplers_are_seeded_checked_and_chosen_by_the_cli_option():
    model = tfgen.get_model("flow", "tiny", seed=0)
    euler = np.asarray(model.sample(2, steps=4, seed=3))
    np.testing.assert_array_equal(euler, model.sample(2, steps=4, sampler="euler", seed=3))
    heun = np.asarray(with_sample_options(model, sampler="heun").sample(2, steps=4, seed=3))
    np.testing.assert_array_equal(heun, model.sample(2, steps=4, sampler="heun", seed=3))
    with pytest.raises(UnknownNameError, match="unknown sampler 'ddim'.*euler, heun"):
        tfgen.get_model("flow", "tiny").sample(2, sampler="ddim")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        tfgen.get_model("flow", "tiny").sample(2, steps=0)
    with pytest.raises(ValueError, match="--sampler: VAE has no such sampling option"):
        with_sample_options(tfgen.get_model("vae", "tiny"), sampler="heun")
