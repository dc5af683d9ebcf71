"""The batches `tfgen train` feeds `fit`: each epoch its own seeded shuffle, so a resumed run sees the same order."""

from __future__ import annotations

import tensorflow as tf


def training_batches(examples, num_examples: int, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """Full batches for epochs `first_epoch` … `epochs − 1`, one epoch after another.

    Epoch e is `examples` (unbatched) shuffled with a seed made of (seed, e) alone,
    so its order is the same whether the run was interrupted or not. Pass
    `steps_per_epoch = num_examples // batch_size` to `fit`.
    """
    buffer = min(num_examples, 70_000)  # the whole set for MNIST-sized data: a full shuffle

    def one_epoch(epoch):
        return examples.shuffle(buffer, seed=epoch, reshuffle_each_iteration=False).batch(
            batch_size, drop_remainder=True)

    # A shuffle's seeds are (TF's global seed, its own seed): here (a function of `seed`, the
    # epoch). TF cannot take a tensor seed while the global seed is 0, hence the offset; the
    # global seed is put back to `seed` (what `train` set) afterwards.
    tf.random.set_seed(seed % (2**31 - 1) + 1)
    try:
        batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    finally:
        tf.random.set_seed(seed)
    return batches.prefetch(tf.data.AUTOTUNE)
