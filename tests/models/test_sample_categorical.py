"""`sample_categorical`, the draw both autoregressive families make at every sub-pixel."""

import numpy as np
import tensorflow as tf

from tfgen.models.autoregressive import sample_categorical


def draws(logits, top_k, seeds=range(20), temperature=1.0):
    logits = tf.constant(logits, tf.float32)
    return np.stack([sample_categorical(logits, tf.constant([seed, 0], tf.int64), temperature, tf.constant(top_k))
                     for seed in seeds])


def test_top_k_keeps_exactly_k_levels_when_logits_are_equal():
    # A pixel whose features a ReLU zeroed has logits equal to the head's biases: all equal
    # at initialisation. A threshold at the k-th value kept every tied level.
    tied = [[0.0, 0.0, 0.0, 0.0], [0.1, 0.3, 0.3, 0.3]]
    assert np.all(draws(tied, 1) == [0, 1])  # greedy: the lower of the tied levels
    two = draws(tied, 2)
    assert set(two[:, 0]) == {0, 1} and set(two[:, 1]) == {1, 2}


def test_top_k_zero_keeps_every_level_and_temperature_sharpens():
    logits = [[0.0, 0.0, 0.0, 0.0]]
    assert set(draws(logits, 0, seeds=range(60))[:, 0]) == {0, 1, 2, 3}
    skewed = [[0.0, 1.0, 0.0, 0.0]]
    assert np.all(draws(skewed, 0, temperature=0.01) == 1)
