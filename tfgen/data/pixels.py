"""Turn decoded images of any kind into the one format a dataset holds: uint8 (H, W, C), C = 1 or 3.

Every decoder in tfgen (TensorFlow's for PNG/JPEG/GIF, Pillow's for BMP and
for what TensorFlow cannot read) hands over uint8 pixels with 1 (grey),
2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels; `to_rgba` makes them RGBA,
and `from_rgba` then, on one image or a batch of images of one size,

1. composites the alpha channel, if any, onto a solid background
   (``rgb·α + background·(1 − α)``, straight alpha as PNG stores it): a
   transparent emoji on white looks as it does in a browser, whereas dropping
   the alpha channel leaves whatever colour the transparent pixels happen to
   hold, often black or noise;
2. converts to the wanted channel count: grey to RGB by repetition, RGB to
   grey by the ITU-R BT.601 luma weights (`tf.image.rgb_to_grayscale`);
3. centre-crops to the target aspect ratio, then resizes (bilinear with
   antialiasing) to the target size, as Keras' `smart_resize` and
   `image_dataset_from_directory(crop_to_aspect_ratio=True)` do. Cropping keeps
   the objects' proportions and fills every pixel with content; padding would
   also keep the proportions but teach a generative model to draw bars.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}

# Row c-1: which source channels make (R, G, B, A) for an image with c channels.
# Grey repeats its one channel; images without alpha get a placeholder that `to_rgba` replaces by 255.
# (A list, not a tensor: no TensorFlow op may run at import, before a multi-worker strategy is made.)
_RGBA_FROM = [[0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 2, 2], [0, 1, 2, 3]]


def background_rgb(background) -> tuple:
    """`background` ("white", "black" or an (r, g, b) triple of 0–255 integers) as an RGB triple."""
    if isinstance(background, str) and background in BACKGROUNDS:
        return BACKGROUNDS[background]
    ok = (isinstance(background, (tuple, list)) and len(background) == 3
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= 255 for v in background))
    if not ok:
        raise ValueError(f"background must be 'white', 'black' or an (r, g, b) triple of integers 0-255, "
                         f"got {background!r}")
    return tuple(int(v) for v in background)


def center_crop_box(height, width, target_height, target_width):
    """(top, left, crop height, crop width) of the largest centred window with the target's aspect ratio."""
    # Compare h/w with th/tw without division; the crop side is rounded to the nearest pixel.
    wider = width * target_height > height * target_width
    crop_h = tf.where(wider, height, (width * target_height + target_width // 2) // target_width)
    crop_w = tf.where(wider, (height * target_width + target_height // 2) // target_height, width)
    crop_h, crop_w = tf.maximum(tf.minimum(crop_h, height), 1), tf.maximum(tf.minimum(crop_w, width), 1)
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def to_rgba(image):
    """uint8 (h, w, 1–4 channels) -> uint8 (h, w, 4): grey repeated, alpha 255 where the image has none."""
    image = tf.convert_to_tensor(image)
    channels = tf.shape(image)[-1]
    rgba = tf.gather(image, tf.gather(tf.constant(_RGBA_FROM, tf.int32), channels - 1), axis=-1)
    opaque = tf.concat([rgba[..., :3], tf.fill(tf.shape(rgba[..., 3:]), tf.constant(255, image.dtype))], axis=-1)
    return tf.where(tf.equal(channels % 2, 0), rgba, opaque)  # 2 (grey + alpha) or 4 (RGBA) channels have alpha


def from_rgba(rgba, size, channels: int, background=(255, 255, 255)):
    """uint8 RGBA (h, w, 4) or a batch (n, h, w, 4) -> uint8 at `size` with `channels`: see the module docstring."""
    rgba = tf.cast(rgba, tf.float32)
    alpha = rgba[..., 3:] / 255.0
    pixels = rgba[..., :3] * alpha + tf.constant(background, tf.float32) * (1.0 - alpha)
    if channels == 1:
        pixels = tf.image.rgb_to_grayscale(pixels)
    pixels = crop_and_resize(pixels, size)
    pixels.set_shape(pixels.shape[:-3].concatenate([size[0], size[1], channels]))
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)


def crop_and_resize(pixels, size):
    """Float (h, w, c) or (n, h, w, c) -> the same at `size` (h, w): centre crop to its aspect ratio, then resize."""
    shape = tf.shape(pixels)
    height, width = shape[-3], shape[-2]
    top, left, crop_h, crop_w = center_crop_box(height, width, size[0], size[1])
    cropped = pixels[..., top:top + crop_h, left:left + crop_w, :]
    same = tf.logical_and(tf.equal(crop_h, size[0]), tf.equal(crop_w, size[1]))
    # Skip an identity resize: exact pixels for images already at the target size.
    return tf.cond(same, lambda: cropped,
                   lambda: tf.image.resize(cropped, size, method="bilinear", antialias=True))

