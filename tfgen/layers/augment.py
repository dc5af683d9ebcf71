"""Differentiable augmentation for data-efficient GAN training (DiffAugment).

Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training": the *same* random augmentations are applied to real and generated images
alike, before every discriminator pass, in the discriminator's step and in the
generator's. Augmenting the reals only would teach the generator to draw augmented
images; augmenting both in D's step only would leave G optimising against a D that never
saw an unaugmented fake. Every operation is differentiable in the image, so G's gradient
passes through it. With few training images D otherwise memorises them within a few
thousand steps and G's gradient degrades (their Fig. 2: CIFAR-10 at 10% of the data).

Policies (the paper's §3, as in their reference code), on images in [−1, 1], with
parameters drawn independently per image:

* `color`: brightness + U(−0.5, 0.5); saturation: the deviation from the pixel's channel
  mean × U(0, 2); contrast: the deviation from the image mean × U(0.5, 1.5);
* `translation`: a shift of up to 1/8 of the image size in each direction, integer pixels,
  the uncovered border filled with zeros;
* `cutout`: a square of half the image size, centred anywhere in the image (clipped at
  its edges), set to zero.
"""

from __future__ import annotations

import tensorflow as tf

from tfgen import checks

POLICIES = ("color", "translation", "cutout")
#: The paper's recommended policy for small data sets (their Table 3: all three together).
ALL = ",".join(POLICIES)
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def parse_policy(policy: str) -> tuple[str, ...]:
    """The augmentations named in a comma-separated `policy` ('' for none), in the order given."""
    if not isinstance(policy, str):
        raise ValueError(f"diff_augment must be a comma-separated string such as {ALL!r} ('' for none), "
                         f"got {policy!r}")
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    for name in names:
        checks.one_of(name, POLICIES, "DiffAugment policy")
    if len(set(names)) != len(names):
        raise ValueError(f"diff_augment names an augmentation twice: {policy!r}")
    return names


def diff_augment(images, policy: str, seed):
    """`images` (N, H, W, C) in [−1, 1], augmented by `policy` with per-image parameters from `seed`.

    `seed`: a stateless-RNG seed (shape [2]); the same seed draws the same augmentations.
    Augment real and fake images in one call (concatenated) or with the same policy: the
    point is that the discriminator sees both through the same distribution of transforms.
    """
    names = parse_policy(policy)
    if not names:
        return images
    images = tf.convert_to_tensor(images)
    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), len(names)))
    for name, op_seed in zip(names, seeds):
        images = AUGMENTATIONS[name](images, op_seed)
    return images


def _per_image(images, seed, low, high, dtype=tf.float32):
    """One uniform draw in [low, high) per image, shaped to broadcast over (H, W, C)."""
    shape = [tf.shape(images)[0], 1, 1, 1]
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high, dtype=dtype)


def color(images, seed):
    brightness_seed, saturation_seed, contrast_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    dtype = images.dtype
    images = images + tf.cast(_per_image(images, brightness_seed, -0.5, 0.5), dtype)
    channel_mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - channel_mean) * tf.cast(_per_image(images, saturation_seed, 0.0, 2.0), dtype) + channel_mean
    image_mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - image_mean) * tf.cast(_per_image(images, contrast_seed, 0.5, 1.5), dtype) + image_mean


def _shift_axis(images, shift, axis):
    """Each image moved by its own integer `shift` (N,) along `axis` (1 rows, 2 columns), zeros filling in.

    A gather from the image padded with one zero on each side: positions that leave the
    image read the padding. Gathering is differentiable in the pixel values.
    """
    size = tf.shape(images)[axis]
    padding = [[0, 0], [0, 0], [0, 0], [0, 0]]
    padding[axis] = [1, 1]
    padded = tf.pad(images, padding)
    source = tf.range(size)[None, :] - shift[:, None] + 1  # output i reads input i − shift
    source = tf.clip_by_value(source, 0, size + 1)
    return tf.gather(padded, source, axis=axis, batch_dims=1)


def translation(images, seed, ratio=TRANSLATION_RATIO):
    row_seed, column_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    for axis, axis_seed in ((1, row_seed), (2, column_seed)):
        limit = int(images.shape[axis] * ratio + 0.5)
        shift = tf.random.stateless_uniform([tf.shape(images)[0]], seed=axis_seed, minval=-limit, maxval=limit + 1,
                                            dtype=tf.int32)
        images = _shift_axis(images, shift, axis)
    return images


def cutout(images, seed, ratio=CUTOUT_RATIO):
    """Zero a (ratio·H) × (ratio·W) rectangle per image, its centre uniform over the image."""
    height, width = images.shape[1], images.shape[2]
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    position = tf.random.stateless_uniform([tf.shape(images)[0], 2], seed=seed)
    centre = tf.cast(position * tf.constant([height, width], tf.float32), tf.int32)
    rows = tf.range(height)[None, :] - centre[:, :1]  # (N, H): offset from the centre row
    columns = tf.range(width)[None, :] - centre[:, 1:]
    inside_rows = (rows >= -(cut_h // 2)) & (rows < cut_h - cut_h // 2)
    inside_columns = (columns >= -(cut_w // 2)) & (columns < cut_w - cut_w // 2)
    inside = inside_rows[:, :, None] & inside_columns[:, None, :]
    return images * tf.cast(~inside, images.dtype)[..., None]


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}
