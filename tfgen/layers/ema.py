"""Exponential moving average of a network's weights, with warm-up, kept in a second network.

Used by diffusion (Ho et al. 2020, App. B) and by the GANs' averaged generator (Karras
et al. 2018, "Progressive Growing of GANs", §A.1; Yazıcı et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"). The average is a sub-model of the same
architecture as the trained one, so a `.keras` file and a checkpoint save it with the model.
"""

from __future__ import annotations

import tensorflow as tf


def copy_weights(target, source) -> None:
    """Start the average from the network's initial weights (every weight: batch-norm statistics too)."""
    for t, s in zip(target.weights, source.weights):
        t.assign(s)


def warmup_decay(decay, step):
    """min(decay, (1 + n)/(10 + n)) after n updates, as `tf.train.ExponentialMovingAverage(num_updates=n)`.

    The warm-up lets the average follow the fast early changes, so that a short run's average is
    made of trained weights, not of the initialisation: decay 0.999 would keep 37% of the initial
    weights after 1,000 steps, while with warm-up the weight of step 0 after n steps is ~10/n.
    """
    step = tf.cast(step, tf.float32)
    return tf.minimum(tf.cast(decay, tf.float32), (1.0 + step) / (10.0 + step))


def update_ema(average, network, decay, step, trainable_only=False) -> None:
    """average ← d·average + (1 − d)·network for every weight, d = `warmup_decay(decay, step)`.

    `step`: the number of optimiser updates done (the optimiser's `iterations`). Call it inside
    a training step, in replica context under `tf.distribute` or outside any strategy.
    `trainable_only`: average the network's trainable weights only, leaving statistics such as
    batch norm's moving mean and variance to the caller (an average of the trained network's
    statistics is not the statistics of the averaged network).
    """
    d = warmup_decay(decay, step)
    pairs = [(a.value, w.value) for a, w in zip(average.weights, network.weights) if w.trainable or not trainable_only]

    def update(strategy):
        # In cross-replica context: each replica's copy is updated from its own (identical)
        # weights. A plain assign in replica context fails for mirrored variables.
        for average_weight, weight in pairs:
            strategy.extended.update(average_weight, lambda a, w: a.assign(d * a + (1.0 - d) * w),
                                     args=(weight,), group=False)

    tf.distribute.get_replica_context().merge_call(update)
