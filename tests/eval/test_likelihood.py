"""ELBO / IWAE bounds (Burda et al. 2016) and exact-NLL plumbing."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfgen.eval import likelihood as lik


class OnePixelVAE:
    """A 1-pixel, 1-latent "VAE" whose log p(x) is known by quadrature.

    p(z) = N(0, 1), p(x = 1 | z) = sigmoid(a z + b); q(z | x) = N(m_x, s²) deliberately
    not the true posterior, so ELBO < log p(x) strictly and IWAE_k climbs towards it.
    """

    latent_dim = 1
    requires_labels = False
    image_shape = (1, 1, 1)

    def __init__(self, a=3.0, b=-0.5, q_mean=(0.2, -0.3), q_log_var=-1.0):
        self.a, self.b, self.q_mean, self.q_log_var = a, b, q_mean, q_log_var

    def encode(self, images, labels=None):
        x = tf.reshape(tf.cast(images, tf.float32), [-1, 1])
        mean = tf.where(x > 0.5, self.q_mean[0], self.q_mean[1])
        return mean, tf.fill(tf.shape(mean), self.q_log_var)

    def decode_logits(self, z, labels=None):
        return tf.reshape(self.a * z + self.b, [-1, 1, 1, 1])

    def log_p(self, x):
        """log p(x) by Gauss-Hermite quadrature (exact to ~1e-10 here)."""
        nodes, weights = np.polynomial.hermite_e.hermegauss(200)
        p1 = np.sum(weights / math.sqrt(2 * math.pi) / (1 + np.exp(-(self.a * nodes + self.b))))
        return math.log(p1 if x > 0.5 else 1 - p1)


class Factorised:
    """An exact-likelihood model of binary pixels: each pixel "on" with probability 1/4, independently."""

    requires_labels = False
    levels = 2
    data_variant = "binarised (threshold 0.5)"

    def log_prob(self, images, labels=None):
        x = np.asarray(images) > 0.5
        return np.sum(np.where(x, math.log(0.25), math.log(0.75)), axis=(1, 2, 3))


@pytest.mark.parametrize("x", [0.0, 1.0])
def test_iwae_approaches_exact_log_likelihood(x):
    model = OnePixelVAE()
    images = np.full((256, 1, 1, 1), x, np.float32)
    # max_decodes far below k forces the running log-sum-exp across chunks and several image batches.
    bounds = lik.importance_weighted_bound(model, images, ks=(1, 10, 2000), seed=3, max_decodes=512)
    exact = model.log_p(x)
    elbo, iwae = bounds["elbo"].mean(), {k: v.mean() for k, v in bounds["iwae"].items()}
    assert elbo < exact - 0.01, (elbo, exact)  # q is not the posterior: a strict gap
    # IWAE_1 is a one-sample ELBO estimate: equal in expectation (4 standard errors here).
    se = bounds["iwae"][1].std() / math.sqrt(len(images))
    assert iwae[1] == pytest.approx(elbo, abs=4 * se)
    assert elbo < iwae[10] < iwae[2000] + 1e-3
    assert iwae[2000] == pytest.approx(exact, abs=0.01)
    assert iwae[2000] <= exact + 0.005  # a lower bound, up to Monte Carlo noise


def test_bound_is_exact_when_q_is_the_posterior():
    # Decoder independent of z and q = prior: every importance weight equals p(x).
    model = OnePixelVAE(a=0.0, b=0.7, q_mean=(0.0, 0.0), q_log_var=0.0)
    images = np.array([[[[1.0]]], [[[0.0]]]], np.float32)
    bounds = lik.importance_weighted_bound(model, images, ks=(1, 7))
    exact = np.array([model.log_p(1.0), model.log_p(0.0)])
    np.testing.assert_allclose(bounds["elbo"], exact, atol=1e-5)
    np.testing.assert_allclose(bounds["iwae"][1], exact, atol=1e-5)
    np.testing.assert_allclose(bounds["iwae"][7], exact, atol=1e-5)


def test_bits_per_dim_and_binarize():
    assert lik.bits_per_dim(784 * math.log(2), (28, 28, 1)) == pytest.approx(1.0)
    np.testing.assert_array_equal(lik.binarize(np.array([0.2, 0.5, 0.51, 1.0])), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="positive"):
        lik.importance_weighted_bound(OnePixelVAE(), np.zeros((2, 1, 1, 1), np.float32), ks=(0,))


def test_exact_nll_uses_log_prob_and_states_the_variant():
    images = np.zeros((10, 2, 2, 1), np.float32)
    images[:, 0, 0] = 1.0  # one "on" pixel of four per image
    row = lik.exact_nll(Factorised(), images, batch_size=3)
    expected = -(math.log(0.25) + 3 * math.log(0.75))
    assert row["nll_nats"] == pytest.approx(expected)
    assert row["bits_per_dim"] == pytest.approx(expected / (4 * math.log(2)))
    assert row["variant"] == "binarised (threshold 0.5)"



def test_stochastic_binarisation_draws_each_pixel_once_with_its_grey_level_as_probability():
    images = np.full((40, 28, 28, 1), 0.3, np.float32)
    images[:, 0] = 0.0
    images[:, 1] = 1.0
    drawn = lik.stochastic_binarize(images, seed=3)
    assert drawn.dtype == np.float32 and set(np.unique(drawn)) == {0.0, 1.0}
    assert not drawn[:, 0].any() and drawn[:, 1].all()  # 0 and 1 are certain
    # 40·26·28 = 29,120 draws at p = 0.3: standard error 0.0027.
    assert drawn[:, 2:].mean() == pytest.approx(0.3, abs=0.011)
    np.testing.assert_array_equal(drawn, lik.stochastic_binarize(images, seed=3))  # the same test set each time
    assert not np.array_equal(drawn, lik.stochastic_binarize(images, seed=4))
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        lik.stochastic_binarize(images * 255)


def test_exact_nll_on_stochastically_binarised_images_scores_the_drawn_images():
    images = np.full((50, 2, 2, 1), 0.4, np.float32)  # all "off" after thresholding, 40% "on" when drawn
    fixed = lik.exact_nll(Factorised(), images)
    assert fixed["nll_nats"] == pytest.approx(-4 * math.log(0.75))
    row = lik.exact_nll(Factorised(), images, stochastic_seed=1)
    drawn = lik.stochastic_binarize(images, seed=1)
    assert row["nll_nats"] == pytest.approx(-np.mean(Factorised().log_prob(drawn)))
    assert row["nll_nats"] > fixed["nll_nats"]  # the "on" draws cost log(0.75/0.25) more each
    assert row["variant"] == lik.STOCHASTIC.format(seed=1) and "seed 1" in row["variant"]
    sixteen_levels = Factorised()
    sixteen_levels.levels = 16
    with pytest.raises(ValueError, match="binary pixels.*levels=16"):
        lik.exact_nll(sixteen_levels, images, stochastic_seed=1)


@pytest.mark.learning
def test_iwae_rises_with_k_on_a_trained_vae(digits):
    import tfgen

    x_train, _, x_test, _ = digits
    tf.keras.utils.set_random_seed(0)
    # The tiny preset (latent_dim=2) collapses its posterior in a few seconds (KL ≈ 0, so every bound
    # is equal); a slightly wider VAE learns a real posterior in ~10 s.
    model = tfgen.get_model("vae", "tiny", seed=0, latent_dim=8, encoder_filters=(8, 16), hidden_units=(64,),
                            decoder_filters=(16, 8), learning_rate=2e-3)
    model.default_compile()
    model.fit(x_train[:4096], epochs=3, batch_size=64, verbose=0)
    rows = lik.vae_bounds(model, x_test[:100], ks=(1, 10, 100), seed=0)
    assert [r["variant"] for r in rows] == [lik.CONTINUOUS, lik.BINARISED]
    for row in rows:
        elbo, iwae = row["elbo_nats"], row["iwae_nats"]
        # Negated bounds: nats are upper bounds on -log p(x), falling as k grows.
        assert iwae["1"] == pytest.approx(elbo, abs=3 * row["elbo_nats_se"] + 1.0)
        assert iwae["10"] < elbo
        assert iwae["100"] < iwae["10"]
        assert np.isfinite(row["iwae_bits_per_dim"]["100"])
    # The model learned something: far better than the mean image (~420 nats, what a collapsed
    # posterior gives) and than uniform Bernoulli pixels (784 ln 2 = 543 nats).
    assert rows[1]["iwae_nats"]["100"] < 300
