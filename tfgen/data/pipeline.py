"""The batches `tfgen train` feeds `fit`: each epoch its own seeded shuffle, so a resumed run sees the same order."""

from __future__ import annotations

import tensorflow as tf


def training_batches(examples, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """Full batches of `examples` (a `tfgen.data.Examples`) for epochs `first_epoch` … `epochs − 1`.

    Epoch e is a shuffle of the example *indices* with a seed made of (seed, e)
    alone, so its order is the same whether the run was interrupted or not.
    Shuffling indices (8 bytes each) rather than images keeps one decoded copy of
    the data, the uint8 one inside `examples`: each batch is gathered from it and
    converted to float32 only then. Pass `steps_per_epoch = N // batch_size` to `fit`.
    """
    n = examples.info.num_examples

    def one_epoch(epoch):
        order = tf.data.Dataset.range(n).shuffle(max(n, 1), seed=epoch, reshuffle_each_iteration=False)
        return order.batch(batch_size, drop_remainder=True)

    # A shuffle's seeds are (TF's global seed, its own seed): here (a function of `seed`, the
    # epoch). TF cannot take a tensor seed while the global seed is 0, hence the offset; the
    # global seed is put back to `seed` (what `train` set) afterwards.
    tf.random.set_seed(seed % (2**31 - 1) + 1)
    try:
        indices = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    finally:
        tf.random.set_seed(seed)
    return indices.map(examples.lookup, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
