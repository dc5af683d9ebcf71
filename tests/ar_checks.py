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


def flip_changes(logits_fn, image, positions, levels=2):
    """Move sub-pixel i of `image` to another level (one copy per position in `positions`)
    and return the largest change of the logits at every position: (len(positions), D).

    image: one (H, W, C) image in [0, 1] on the levels grid; positions index its
    raster order with channels innermost. One forward pass of len(positions) + 1 images.
    """
    batch = np.repeat(image[None], len(positions) + 1, axis=0)
    flat = batch.reshape(len(batch), -1)
    step = 1.0 / (levels - 1)
    for k, i in enumerate(positions):
        # Up one level, or down one at the top level.
        flat[k + 1, i] = flat[k + 1, i] + step if flat[k + 1, i] + step <= 1.0 + 1e-6 else flat[k + 1, i] - step
    logits = flat_logits(logits_fn, flat.reshape(batch.shape).astype("float32"))
    return np.abs(logits[1:] - logits[:1]).max(axis=-1)


def causality_violations(logits_fn, image, positions, levels=2):
    """Per flipped position i: the largest change of the logits at positions ≤ i (must be 0)
    and at positions > i (should not all be 0). See `flip_changes`."""
    changes = flip_changes(logits_fn, image, positions, levels)
    before = np.array([row[: i + 1].max() for row, i in zip(changes, positions)])
    after = np.array([row[i + 1:].max() if i + 1 < len(row) else np.inf for row, i in zip(changes, positions)])
    return before, after


def assert_causal(logits_fn, image, positions, levels=2):
    """Sub-pixel i never changes the logits at positions ≤ i, and does change later ones.

    With colour the check has power inside a pixel too: a pixel's R must change the
    prediction of its G, and its G that of its B (masks that are too strict fail here).
    """
    changes = flip_changes(logits_fn, image, positions, levels)
    bad = [(i, row[: i + 1].max()) for row, i in zip(changes, positions) if row[: i + 1].max() > 0]
    assert not bad, f"changing sub-pixel i changed the predictions at positions <= i: (i, max change) {bad[:5]}"
    # The check has power: each flipped sub-pixel does influence some later one.
    dead = [i for row, i in zip(changes, positions) if i + 1 < len(row) and row[i + 1:].max() == 0]
    assert not dead, f"sub-pixels {dead[:5]} influence no later prediction"
    channels = image.shape[-1]
    unseen = [i for row, i in zip(changes, positions) if i % channels < channels - 1 and row[i + 1] == 0]
    assert not unseen, f"sub-pixels {unseen[:5]} do not influence the next channel of their own pixel"


def boundary_positions(image_shape, extra=(), rng=None, n_random=0):
    """Sub-pixel indices worth checking: corners, row starts/ends (every channel), and some random ones."""
    h, w, c = image_shape
    d = h * w * c
    row = w * c
    picks = {0, 1, row - 1, row, row + 1, 2 * row - 1, d // 2, d - row - 1, d - row, d - 2, d - 1, *extra}
    picks |= {p + k for p in (0, row - c, row, d // 2, d - c) for k in range(c)}
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
    labels = [1] if model.requires_labels else None
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


def colour_images(shape, levels, n=2, seed=0):
    """`n` random (H, W, C) images on the levels grid, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, levels, (n, *shape)) / (levels - 1)).astype("float32")


def assert_colour_model_trains_samples_round_trips_and_exports(name, tmp_path, **overrides):
    """A tiny 32×32×3 model: 16 levels per channel by default, one training step, samples
    (N, 32, 32, 3) on the levels grid, `.keras` round trip, and a SavedModel whose `sample`
    and `log_prob` endpoints give the model's own numbers; exact NLL in bits/dim over D = H·W·C."""
    import tfgen
    from model_checks import assert_roundtrip
    from tfgen.eval.likelihood import exact_nll
    from tfgen.export import export_model

    model = tfgen.get_model(name, "tiny", seed=0, image_shape=(32, 32, 3), **overrides)
    assert model.levels == 16 and "16 levels" in model.data_variant
    images = colour_images(model.image_shape, model.levels)
    model.default_compile()
    history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(2), verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["bits_per_dim"][0] == pytest.approx(
        history["loss"][0] / (32 * 32 * 3 * math.log(2)), rel=1e-5)
    samples = np.asarray(model.sample(2, seed=3))
    assert samples.shape == (2, 32, 32, 3) and samples.dtype == np.float32
    np.testing.assert_allclose(samples * 15, np.rint(samples * 15), atol=1e-5)  # on the grid, in [0, 1]
    assert samples.min() >= 0 and samples.max() <= 1 and len(np.unique(samples)) > 2
    assert_roundtrip(model, images, tmp_path)

    log_p = np.asarray(model.log_prob(images))
    row = exact_nll(model, images)
    assert row["bits_per_dim"] == pytest.approx(-log_p.mean() / (32 * 32 * 3 * math.log(2)), rel=1e-5)
    exported = tf.saved_model.load(str(export_model(model, tmp_path / "export")))
    np.testing.assert_allclose(exported.log_prob(tf.constant(images)), log_p, rtol=1e-5)
    # The same levels (divided by 15 in another graph: equal to the last bit or so).
    np.testing.assert_allclose(exported.sample(tf.constant(2), tf.constant(3, tf.int64)), samples, atol=1e-6)
