"""Loss functions against values worked out by hand."""

import math

import numpy as np
import tensorflow as tf

from tfgen import losses


def test_bernoulli_nll_is_summed_over_pixels():
    # Logits 0 mean p = 1/2 for every pixel: −log p(x) = 784 · ln 2 per image, whatever x is.
    # A per-pixel *mean* here (README defect 13) would give ln 2 and drown it in the KL term.
    targets = tf.random.uniform([3, 28, 28, 1])
    nll = losses.bernoulli_nll(targets, tf.zeros([3, 28, 28, 1]))
    np.testing.assert_allclose(nll, [784 * math.log(2)] * 3, rtol=1e-6)


def test_gaussian_kl_closed_form_and_monte_carlo():
    assert float(losses.gaussian_kl(tf.zeros([1, 4]), tf.zeros([1, 4]))[0]) == 0.0
    # One dimension, μ = 1, σ² = e: −½(1 + 1 − 1 − e) = (e − 1)/2.
    np.testing.assert_allclose(losses.gaussian_kl(tf.ones([1, 1]), tf.ones([1, 1])), [(math.e - 1) / 2], rtol=1e-6)
    # Monte Carlo: E_q[log q(z) − log p(z)] for q = N(μ, σ²) in 3 dimensions.
    mean, log_var = tf.constant([[0.5, -1.0, 2.0]]), tf.constant([[0.3, -0.7, 0.1]])
    z = mean + tf.exp(0.5 * log_var) * tf.random.stateless_normal([200_000, 3], seed=[1, 2])
    mc = tf.reduce_mean(losses.gaussian_log_prob(z, mean, log_var) - losses.gaussian_log_prob(z))
    np.testing.assert_allclose(float(mc), float(losses.gaussian_kl(mean, log_var)[0]), rtol=0.02)


def test_discriminator_loss_sees_both_real_and_fake():
    # README defect 4: the documents' D loss never saw the fakes, so it did not depend on them.
    real = tf.constant([[2.0], [1.0]])
    d1 = losses.discriminator_loss(real, tf.constant([[-3.0], [-2.0]]))
    d2 = losses.discriminator_loss(real, tf.constant([[3.0], [2.0]]))
    assert float(d2) > float(d1) + 1.0
    # At logits 0 each term is ln 2.
    np.testing.assert_allclose(losses.discriminator_loss(tf.zeros([4, 1]), tf.zeros([4, 1])), 2 * math.log(2), rtol=1e-6)


def test_generator_loss_is_non_saturating():
    # −log σ(l): large when D confidently rejects the fake, with a gradient that does not vanish.
    logits = tf.Variable([[-10.0]])
    with tf.GradientTape() as tape:
        loss = losses.generator_loss(logits)
    np.testing.assert_allclose(float(loss), 10.0 + math.log1p(math.exp(-10.0)), rtol=1e-6)
    assert abs(float(tape.gradient(loss, logits)[0, 0])) > 0.99
