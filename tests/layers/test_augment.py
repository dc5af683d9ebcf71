"""DiffAugment (Zhao et al. 2020): shapes kept, differentiable, seeded, and each policy doing what the paper says."""

import numpy as np
import pytest
import tensorflow as tf

from tfgen.layers import augment

SEED = tf.constant([3, 4], tf.int64)


def images(shape=(6, 28, 28, 1), seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32"))


def test_no_policy_is_the_identity():
    x = images()
    assert augment.diff_augment(x, "", SEED) is x
    assert augment.parse_policy(" , ") == ()


@pytest.mark.parametrize("policy", [*augment.POLICIES, augment.ALL])
@pytest.mark.parametrize("shape", [(6, 28, 28, 1), (3, 32, 48, 3)])
def test_shapes_kept_seeded_and_differentiable(policy, shape):
    x = images(shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = augment.diff_augment(x, policy, SEED)
        total = tf.reduce_sum(y * y)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.allclose(y, x)
    np.testing.assert_array_equal(y, augment.diff_augment(x, policy, SEED))  # same seed, same draw
    assert not np.allclose(y, augment.diff_augment(x, policy, tf.constant([5, 6], tf.int64)))
    gradient = tape.gradient(total, x)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0  # reaches the generator


def test_translation_shifts_each_image_by_at_most_an_eighth_filling_zeros():
    x = images((16, 16, 16, 1)) + 2.0  # no zeros of its own
    y = augment.translation(x, SEED).numpy()
    limit = 2  # 16 / 8
    shifts = set()
    for original, moved in zip(x.numpy(), y):
        matches = [(dy, dx) for dy in range(-limit, limit + 1) for dx in range(-limit, limit + 1)
                   if np.array_equal(moved, shifted(original, dy, dx))]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 1  # per-image draws


def shifted(image, dy, dx):
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def test_cutout_zeroes_one_rectangle_of_half_the_size_per_image():
    y = augment.cutout(tf.ones([32, 16, 16, 3]), SEED).numpy()
    for image in y:
        zero = np.all(image == 0, axis=-1)
        assert np.all((image == 0) | (image == 1))
        rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
        # A rectangle (clipped at the image's edges) of at most 8 × 8 pixels.
        assert zero.sum() == len(rows) * len(cols) and 0 < len(rows) <= 8 and 0 < len(cols) <= 8
    assert (y == 0).all(-1).sum(axis=(1, 2)).max() == 64  # unclipped squares are exactly half the side


def test_color_moves_brightness_within_half_and_keeps_a_flat_image_flat():
    x = tf.fill([64, 8, 8, 3], 0.25)
    y = augment.color(x, SEED).numpy()
    offsets = y[:, 0, 0, 0] - 0.25
    # Saturation and contrast scale deviations from means, which a flat image has none of.
    np.testing.assert_allclose(y, np.broadcast_to(y[:, :1, :1, :1], y.shape), atol=1e-6)
    assert offsets.min() >= -0.5 and offsets.max() < 0.5 and offsets.std() > 0.2


def test_saturation_leaves_grey_pixels_and_contrast_the_image_mean():
    grey = tf.repeat(images((8, 8, 8, 1)), 3, axis=-1)
    y = augment.color(grey, SEED).numpy()
    np.testing.assert_allclose(y[..., 0], y[..., 1], atol=1e-6)  # no colour from a grey image


def test_bad_policies_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'colour'.*did you mean 'color'"):
        augment.parse_policy("colour,cutout")
    with pytest.raises(ValueError, match="names an augmentation twice"):
        augment.parse_policy("cutout,cutout")
    with pytest.raises(ValueError, match="comma-separated string"):
        augment.parse_policy(True)
