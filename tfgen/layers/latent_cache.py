"""The training set's latent posteriors, encoded once: latent diffusion's second stage without the encoder.

Rombach et al. 2022 ("High-Resolution Image Synthesis with Latent Diffusion Models") train
the diffusion model on a frozen autoencoder's latents; their code, and most that follow it,
encode the data set once and train on stored latents rather than run the encoder on every
batch. `LatentCache` does that for `tfgen.models.latent_diffusion`: when the latent stage
begins (the autoencoder is frozen from then on) it encodes every training image once and
keeps the posterior q(z | x) = N(μ, σ²) of each, as μ and log σ² (see `fill`), so that each
step still draws a fresh z ~ q(z | x) as the per-step encoder would.

Rows: image i of the N training images is row i; with `flip` (random left-right
mirroring of the training images, `tfgen train --augment flip`) its mirror image, whose
latent is not the mirror of its latent, is row N + i, encoded from the mirrored pixels.
Training batches carry each image's row (`tfgen.data.pipeline.training_batches`, key
`example_ids`) and the step gathers the rows it needs.

The table is a `tf.Variable` on the CPU, outside Keras' tracking: it is derived from the
data and the frozen encoder, so checkpoints and `.keras` files do not hold it; a run
resumed in the latent stage encodes its data again (a few dozen encoder batches).
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfgen.layers import autoencoder

#: Above this many bytes of posteriors the model encodes every batch instead (`fits`): a larger table would
#: double the memory a big data set already takes (tfgen holds the training images in memory as uint8).
MAX_BYTES = 2**30
#: Images per encoder call while filling the table.
FILL_BATCH = 256


def table_bytes(num_images: int, image_shape, latent_channels: int, flip: bool = False) -> int:
    """Bytes of the float32 μ and log σ² of `num_images` images (twice as many rows with `flip`)."""
    rows = num_images * (2 if flip else 1)
    return rows * 2 * math.prod(autoencoder.latent_shape(image_shape, latent_channels)) * 4


class LatentCache:
    """μ and log σ² of q(z | x) for each training image (and its mirror image, with `flip`), encoded once.

    images: the N training images, (N, H, W, C), uint8 (0–255) or float in [0, 1]; kept by
        reference (a `tf.Variable` such as `tfgen.data.Examples.images` is not copied).
    """

    def __init__(self, images, latent_channels: int, flip: bool = False):
        self.images = images
        self.flip = bool(flip)
        self.num_images = int(images.shape[0])
        shape = autoencoder.latent_shape(images.shape[1:], latent_channels)
        rows = self.num_images * (2 if self.flip else 1)
        # On the CPU, as the images: under a strategy the replicas gather their rows from one copy.
        with tf.device("/CPU:0"):
            self.table = tf.Variable(tf.zeros([rows, *shape[:2], 2 * shape[2]]), trainable=False,
                                     name="latent_posteriors")
        self.filled = False

    @property
    def nbytes(self) -> int:
        return int(self.table.shape.num_elements()) * 4

    def fill(self, encoder) -> None:
        """Encode every image (and, with `flip`, its mirror) with `encoder` (images in [0, 1] →
        [μ, log σ²]) into the table; log σ² clamped as the first stage clamps it."""

        @tf.function(input_signature=[tf.TensorSpec([None, *self.images.shape[1:]], self.images.dtype)])
        def posterior(images):
            images = tf.cast(images, tf.float32)
            if self.images.dtype == tf.uint8:
                images = images / 255.0
            z_mean, z_log_var = encoder(images, training=False)
            return tf.concat([tf.cast(z_mean, tf.float32), autoencoder.clamp_log_var(z_log_var)], -1)

        for start in range(0, self.num_images, FILL_BATCH):
            stop = min(start + FILL_BATCH, self.num_images)
            images = tf.convert_to_tensor(self.images[start:stop])
            self.table[start:stop].assign(posterior(images))
            if self.flip:
                mirrored = self.num_images + start, self.num_images + stop
                self.table[mirrored[0]:mirrored[1]].assign(posterior(tf.reverse(images, axis=[2])))
        self.filled = True

    def lookup(self, ids):
        """(μ, log σ²), float32, of the rows `ids` (B,)."""
        mean, log_var = tf.split(tf.gather(self.table, tf.cast(ids, tf.int64)), 2, axis=-1)
        return mean, log_var
