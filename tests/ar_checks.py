"""Checks shared by the autoregressive families (pixel_transformer, pixelcnn).

Each check works from the model's public outputs and recomputes what it
verifies independently (NumPy log-softmax, brute-force enumeration), so a bug
in the shared code cannot hide itself.
"""

import itertools
import math
import re

import numpy as np
import pytest
import tensorflow as tf


def flat_logits(logits_fn, images):
    """logits_fn(images) -> (B, D, levels) as NumPy."""
    logits = np.asarray(logits_fn(images))
    return logits.reshape(len(images), -1, logits.shape[-1])


def causality_violations(logits_fn, image, positions, levels=2):
    """Flip pixel i of `image` (one per position) and return, per position, the largest
    change of the logits at pixels ≤ i (must be 0) and at pixels > i (should not all be 0).

    image: one (H, W, 1) image in [0, 1] on the levels grid. One forward pass of
    len(positions) + 1 images.
    """
    h, w, c = image.shape
    batch = np.repeat(image[None], len(positions) + 1, axis=0)
    flat = batch.reshape(len(batch), -1)
    step = 1.0 / (levels - 1)
    for k, i in enumerate(positions):
        # Move pixel i to another level (up one, or down one at the top level).
        flat[k + 1, i] = flat[k + 1, i] + step if flat[k + 1, i] + step <= 1.0 + 1e-6 else flat[k + 1, i] - step
    logits = flat_logits(logits_fn, flat.reshape(batch.shape).astype("float32"))
    base = logits[0]
    before, after = [], []
    for k, i in enumerate(positions):
        diff = np.abs(logits[k + 1] - base).max(axis=-1)
        before.append(diff[: i + 1].max())
        after.append(diff[i + 1:].max() if i + 1 < len(diff) else np.inf)
    return np.array(before), np.array(after)


def assert_causal(logits_fn, image, positions, levels=2):
    before, after = causality_violations(logits_fn, image, positions, levels)
    bad = [(i, b) for i, b in zip(positions, before) if b > 0]
    assert not bad, f"changing pixel i changed the predictions at pixels <= i: (i, max change) {bad[:5]}"
    # The check has power: each flipped pixel does influence some later pixel.
    dead = [i for i, a in zip(positions, after) if a == 0]
    assert not dead, f"pixels {dead[:5]} influence no later prediction"


def boundary_positions(image_shape, extra=(), rng=None, n_random=0):
    """Pixel indices worth checking: corners, row starts/ends, and some random ones."""
    h, w, c = image_shape
    d = h * w * c
    picks = {0, 1, w - 1, w, w + 1, 2 * w - 1, d // 2, d - w - 1, d - w, d - 2, d - 1, *extra}
    if rng is not None and n_random:
        picks |= set(rng.choice(d, n_random, replace=False).tolist())
    return sorted(p for p in picks if 0 <= p < d)


def log_softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def conditional_log_probs(logits, images, levels):
    """log p(x_i | x_<i) at the true levels, from logits (B, ..., levels), by hand."""
    q = np.floor(np.asarray(images, np.float64) * (levels - 1) + 0.5).astype(int)
    lp = log_softmax(np.asarray(logits, np.float64))
    return np.take_along_axis(lp, q[..., None], axis=-1)[..., 0]


def all_images(image_shape, levels):
    """Every image of `image_shape` on the levels grid: (levels^D, H, W, C) float32 in [0, 1]."""
    d = int(np.prod(image_shape))
    grid = np.array(list(itertools.product(range(levels), repeat=d)), np.float32) / (levels - 1)
    return grid.reshape(-1, *image_shape)


def assert_normalised(model, labels=None):
    """Σ_x p(x) = 1 over every image x: the likelihood is exact, not a bound."""
    images = all_images(model.image_shape, model.levels)
    if labels is not None:
        labels = np.full(len(images), labels, np.int32)
    log_p = np.asarray(model.log_prob(images, labels), np.float64)
    total = np.exp(log_p).sum()
    assert abs(total - 1.0) < 1e-4, f"Σ p(x) over all {len(images)} images = {total}"
    return log_p


def assert_samples_follow_the_model(model, log_p, n=4000, seed=0):
    """Empirical frequencies of sampled images match exp(log_prob) (small image, all images enumerable)."""
    samples = np.asarray(model.sample(n, seed=seed))
    levels, d = model.levels, int(np.prod(model.image_shape))
    q = np.rint(samples.reshape(n, d) * (levels - 1)).astype(int)
    index = (q * levels ** np.arange(d - 1, -1, -1)).sum(axis=1)  # same order as all_images
    counts = np.bincount(index, minlength=levels ** d)
    expected = n * np.exp(log_p)
    # Each count is Binomial(n, p): allow 5 standard deviations (plus one for rounding).
    tolerance = 5 * np.sqrt(expected * (1 - np.exp(log_p))) + 1
    worst = np.argmax(np.abs(counts - expected) - tolerance)
    assert np.all(np.abs(counts - expected) <= tolerance), (
        f"image {worst}: sampled {counts[worst]} times, expected {expected[worst]:.1f}"
    )


def assert_cache_matches_forward(model, images, labels=None, atol=1e-4):
    """The sampler's cached step, fed the true pixels, gives the teacher-forced logits."""
    inputs = images if labels is None else (images, labels)
    full = np.asarray(model(inputs))
    stepwise = np.asarray(model.stepwise_logits(images, labels))
    assert full.shape == stepwise.shape == (len(images), *model.image_shape, model.levels)
    np.testing.assert_allclose(stepwise, full, atol=atol)
    return full, stepwise


def assert_log_prob_is_sum_of_conditionals(model, images, labels=None):
    """log_prob(x) = Σ_i log p(x_i | x_<i), with the conditionals taken from the cached sampler."""
    stepwise = np.asarray(model.stepwise_logits(images, labels))
    by_hand = conditional_log_probs(stepwise, images, model.levels).reshape(len(images), -1).sum(axis=1)
    log_p = np.asarray(model.log_prob(images, labels))
    assert log_p.shape == (len(images),)
    np.testing.assert_allclose(log_p, by_hand, rtol=1e-5, atol=1e-3)
    return log_p


def assert_metrics_in_nats_and_bits(model, images, labels=None):
    """`loss` is −mean log p(x) in nats per image; `bits_per_dim` = loss / (D · ln 2)."""
    q = model.to_levels(images)
    values = model.compute_losses(q, None if labels is None else tf.constant(labels))
    log_p = np.asarray(model.log_prob(images, labels))
    np.testing.assert_allclose(float(values["loss"]), -log_p.mean(), rtol=1e-5)
    d = int(np.prod(model.image_shape))
    np.testing.assert_allclose(float(values["bits_per_dim"]), -log_p.mean() / (d * math.log(2)), rtol=1e-5)


def assert_arguments_are_checked(model):
    """A conditional `model` checks image shapes, labels and counts with the zoo's messages."""
    images = np.zeros((2, *model.image_shape), np.float32)
    wrong = np.zeros((2, model.image_shape[0] + 1, *model.image_shape[1:]), np.float32)
    for fn in (model.log_prob, model.stepwise_logits):
        with pytest.raises(ValueError, match=re.escape(f"expects images of shape {tuple(model.image_shape)}")):
            fn(wrong, [1, 2])
        # −1 must not become another token (the pixel transformer's class token is levels + label).
        with pytest.raises(ValueError, match=r"must be in \[0, 10\).*\[-1\]"):
            fn(images, [-1, 2])
        with pytest.raises(ValueError, match="conditional"):
            fn(images)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(2.5)
    # An int label is every image's.
    np.testing.assert_array_equal(model.log_prob(images, 3), model.log_prob(images, [3, 3]))


def assert_conditional_model_trains_and_round_trips(name, random_batches, tmp_path):
    """A conditional model with 3 levels trains, reports nats and bits/dim, and reloads from `.keras`."""
    import tfgen
    from model_checks import assert_roundtrip

    model = tfgen.get_model(name, "tiny", seed=0, conditional=True, levels=3)
    model.default_compile()
    history = model.fit(random_batches.take(2), validation_data=random_batches.take(1), verbose=0).history
    assert set(history) >= {"loss", "bits_per_dim", "val_loss", "val_bits_per_dim"}
    images, labels = next(iter(random_batches))
    loaded = assert_roundtrip(model, images.numpy(), tmp_path, labels.numpy())
    assert loaded.conditional and loaded.levels == 3


def assert_compiled_functions_are_not_tracked(model):
    """The compiled sampler and stepwise pass are caches, not part of the model's TensorFlow object graph."""
    images = np.zeros((1, *model.image_shape), np.float32)
    labels = [1] if model.conditional else None
    model.sample(1, labels=labels, seed=0)
    model.stepwise_logits(images, labels)
    children = model._trackable_children("savedmodel")
    assert not [name for name, child in children.items() if isinstance(child, tf.types.experimental.GenericFunction)]


def binarised_digits(digits, n_train=None, n_test=None):
    """Bundled digits (x in [0, 1]) as (train, test) tf.data pipelines of (images, labels)."""
    x_train, y_train, x_test, y_test = digits
    train = tf.data.Dataset.from_tensor_slices((x_train[:n_train], y_train[:n_train]))
    test = tf.data.Dataset.from_tensor_slices((x_test[:n_test], y_test[:n_test]))
    return train, test
