"""Loss functions as pure functions of tensors, each returning one value per example
or a batch mean, in float32 whatever the compute dtype (mixed precision keeps loss
maths in float32)."""

from __future__ import annotations

import tensorflow as tf


def bernoulli_nll(targets, logits, mask=None):
    """−log p(x | logits) for Bernoulli pixels, summed over all pixels of each example (over the pixels where
    `mask`, of the targets' shape, is 1: the likelihood of a known part only).

    Computed from logits (`sigmoid_cross_entropy_with_logits`), which is stable where
    the documents' sigmoid-then-BCE is not. Summed, not averaged, over pixels: the
    ELBO is a sum over dimensions, and averaging here while summing the KL weights
    the KL term ~784× too much (README defect 13).
    """
    logits = tf.cast(logits, tf.float32)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(targets, tf.float32), logits=logits)
    if mask is not None:
        per_pixel *= tf.cast(mask, tf.float32)
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=1)


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) in closed form, summed over latent dims.

    KL = −½ Σ (1 + log σ² − μ² − σ²)  (Kingma & Welling 2014, Appendix B).
    """
    mean = tf.cast(mean, tf.float32)
    log_var = tf.cast(log_var, tf.float32)
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)


def gaussian_log_prob(x, mean=0.0, log_var=0.0):
    """log N(x; mean, exp(log_var)) summed over the last axis (for importance weights)."""
    x = tf.cast(x, tf.float32)
    return -0.5 * tf.reduce_sum(
        tf.math.log(2.0 * 3.141592653589793) + log_var + tf.square(x - mean) / tf.exp(log_var), axis=-1
    )


def discriminator_loss(real_logits, fake_logits):
    """GAN discriminator loss: BCE(1, D(x)) + BCE(0, D(G(z))), batch means, from logits.

    Both terms are needed: the documents' version scored the real batch twice and
    never showed the discriminator a fake (README defect 4).
    """
    real_logits = tf.cast(real_logits, tf.float32)
    fake_logits = tf.cast(fake_logits, tf.float32)
    real = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(real_logits), logits=real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
    return tf.reduce_mean(real) + tf.reduce_mean(fake)


def generator_loss(fake_logits):
    """Non-saturating generator loss −log D(G(z)) = BCE(1, D(G(z))) (Goodfellow et al. 2014, §3).

    Preferred to minimising log(1 − D(G(z))), whose gradient vanishes exactly when
    the generator is poor and the discriminator confident.
    """
    fake_logits = tf.cast(fake_logits, tf.float32)
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits)
    )


def discriminator_accuracies(real_logits, fake_logits):
    """{"d_real_accuracy", "d_fake_accuracy"}: the fractions of real images D calls real (logit > 0)
    and of fakes it calls fake (logit < 0). Health signals, not losses: both near 1 for long, D
    has won and G's gradient fades (or D memorised a small data set)."""
    real = tf.reduce_mean(tf.cast(tf.cast(real_logits, tf.float32) > 0.0, tf.float32))
    fake = tf.reduce_mean(tf.cast(tf.cast(fake_logits, tf.float32) < 0.0, tf.float32))
    return {"d_real_accuracy": real, "d_fake_accuracy": fake}


def r1_penalty(gradients, gamma):
    """R1 = γ/2 · E‖∇ₓ D(x)‖² from D's input gradients on real images x (Mescheder, Geiger & Nowozin
    2018, "Which Training Methods for GANs do actually Converge?", eq. 9): a batch mean of each
    example's squared gradient norm. It penalises D for a slope on the data, which makes
    simultaneous gradient descent converge locally where the unregularised GAN oscillates.
    """
    gradients = tf.cast(gradients, tf.float32)
    squared_norms = tf.reduce_sum(tf.reshape(tf.square(gradients), [tf.shape(gradients)[0], -1]), axis=1)
    return 0.5 * gamma * tf.reduce_mean(squared_norms)
