"""The batches `tfgen train` feeds `fit`: a fixed sequence of batches, so that a resumed run sees the same ones.

Batch t of a run (t = 0, 1, … counts optimiser steps) is fixed by (seed, t) alone:
the batches are passes over the data, pass p a shuffle seeded with (seed, p), and
the optional augmentation of batch t draws from a stateless seed made of (seed, t).
A run resumed at any step therefore trains on the batches the uninterrupted run
would have.
"""

from __future__ import annotations

import tensorflow as tf

from tfgen.length import check_augment, steps_per_pass


#: The key of each image's row in a batch of `training_batches(..., with_ids=True)`.
EXAMPLE_IDS = "example_ids"


def training_batches(examples, batch_size: int, seed: int, first_step: int = 0, steps: int | None = None,
                     augment: str | None = None, with_ids: bool = False):
    """Full batches of `examples` (a `tfgen.data.Examples`) for steps `first_step` … `steps − 1` (endless: None).

    Pass p over the data is a shuffle of the example *indices* with a seed made of
    (seed, p) alone, so its order is the same whether the run was interrupted or
    not; a start inside a pass skips that pass's first batches of indices (cheap:
    no image is gathered for them). Shuffling indices (8 bytes each) rather than
    images keeps one decoded copy of the data, the uint8 one inside `examples`:
    each batch is gathered from it and converted to float32 only then.

    augment: None, or "flip": each image mirrored left-right with probability 1/2,
    the coins of step t drawn from the stateless seed (seed, t).

    with_ids: batches are dicts {"images", "labels", `EXAMPLE_IDS`}, the last each image's row
    for per-example values computed once (`tfgen.layers.latent_cache`): its index i in
    `examples`, or N + i where "flip" mirrored it (N examples).
    """
    per_pass = steps_per_pass(examples.info.num_examples, batch_size)
    check_augment(augment)
    n = examples.info.num_examples

    def one_pass(p):
        order = tf.data.Dataset.range(n).shuffle(max(n, 1), seed=p, reshuffle_each_iteration=False)
        return order.batch(batch_size, drop_remainder=True)

    first_pass, skip = divmod(first_step, per_pass)
    # A shuffle's seeds are (TF's global seed, its own seed): here (a function of `seed`, the
    # pass). TF cannot take a tensor seed while the global seed is 0, hence the offset; the
    # global seed is put back to `seed` (what `train` set) afterwards.
    tf.random.set_seed(seed % (2**31 - 1) + 1)
    try:
        passes = tf.data.Dataset.counter(first_pass) if steps is None else tf.data.Dataset.range(
            first_pass, -(-steps // per_pass))
        indices = passes.flat_map(one_pass).skip(skip)
    finally:
        tf.random.set_seed(seed)
    if steps is not None:
        indices = indices.take(steps - first_step)
    batches = indices.map(lambda i: (*examples.lookup(i), i), num_parallel_calls=tf.data.AUTOTUNE)
    if augment == "flip":
        numbered = tf.data.Dataset.zip(tf.data.Dataset.counter(first_step), batches)
        batches = numbered.map(lambda t, batch: flip(batch, tf.stack([tf.cast(seed, tf.int64), t]), n),
                               num_parallel_calls=tf.data.AUTOTUNE)
    if with_ids:
        batches = batches.map(lambda images, labels, ids: {"images": images, "labels": labels, EXAMPLE_IDS: ids})
    else:
        batches = batches.map(lambda images, labels, ids: (images, labels))
    return batches.prefetch(tf.data.AUTOTUNE)


def flip(batch, seed, num_examples=None):
    """`batch` (images NHWC, labels[, ids]) with each image mirrored left-right where a stateless coin of `seed`
    says so; ids (with `num_examples`, N) of the mirrored images become N + id."""
    images, labels, *ids = batch
    coins = tf.random.stateless_uniform(tf.shape(images)[:1], seed=seed) < 0.5
    flipped = tf.where(coins[:, None, None, None], tf.reverse(images, axis=[2]), images), labels
    if not ids:
        return flipped
    return *flipped, ids[0] + tf.cast(coins, ids[0].dtype) * num_examples
