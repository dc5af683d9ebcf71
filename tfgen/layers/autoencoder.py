"""The small KL-regularised autoencoder of latent diffusion (Rombach et al. 2022, "High-Resolution
Image Synthesis with Latent Diffusion Models", §3.1 and App. G).

The encoder maps an image (H, W, C) to the mean and log-variance of a Gaussian posterior
q(z | x) over latents (H/4, W/4, `latent_channels`): their f = 4 ("LDM-4"), the smallest of
the factors (4 to 16) they found to balance the diffusion model's cost against what the
autoencoder loses (§4.1). The decoder maps a latent back to the image. 32×32×3 → 8×8×4, 64×64×3 → 16×16×4,
28×28×1 → 7×7×4, 48×48 → 12×12.

Both are built from the U-Net's residual blocks (GroupNorm → SiLU → conv, twice, plus the
skip; `tfgen.layers.unet.residual_block` without a time embedding), as Rombach et al. build
their autoencoder from the blocks of their diffusion U-Net: a stride-2 convolution down,
nearest-neighbour upsampling and a convolution up, one block per resolution in the decoder
and at the half and quarter resolutions in the encoder (see `build_encoder`). Their mid-level
attention is left out: at 8×8 or 16×16 latents the convolutions already see most of the image.
The encoder was kept small when it ran in every step of the latent stage; `tfgen train` now
encodes the training set once when that stage begins (`tfgen.layers.latent_cache`), but a
latent step on batches without example ids still runs it (see `tfgen.models.latent_diffusion`).

`autoencoder_losses` is the objective of the first training stage.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfgen import checks, losses
from tfgen.layers.unet import _norm_silu, residual_block

#: How many times smaller the latents are than the image, per side (two stride-2 levels).
DOWNSAMPLE = 4
#: Rombach et al.'s clamp on the log-variance (their DiagonalGaussianDistribution): exp stays finite.
LOG_VAR_RANGE = (-30.0, 20.0)


def check_channels(channels) -> tuple[int, int, int]:
    """`channels`: three positive ints, the widths at the full, half and quarter (latent) resolution."""
    channels = checks.positive_ints(channels, "autoencoder_channels", " (widths at full, 1/2 and 1/4 resolution)")
    if len(channels) != 3:
        raise ValueError(f"autoencoder_channels must list 3 widths (full, 1/2 and 1/4 resolution), got {channels}")
    return channels


def latent_shape(image_shape, latent_channels: int) -> tuple[int, int, int]:
    """(H/4, W/4, latent_channels) for images (H, W, C) whose sides divide by 4."""
    height, width = image_shape[:2]
    return height // DOWNSAMPLE, width // DOWNSAMPLE, int(latent_channels)


def build_encoder(image_shape, latent_channels=4, channels=(32, 64, 64), groups=8, name="encoder"):
    """Images in [0, 1] (B, H, W, C) → [z_mean, z_log_var], each (B, H/4, W/4, latent_channels), float32."""
    channels = check_channels(channels)
    images = keras.Input(image_shape, name="images")
    h = layers.Rescaling(2.0, offset=-1.0, name=f"{name}_centre")(images)  # [0, 1] → [−1, 1]
    h = layers.Conv2D(channels[0], 3, padding="same", name=f"{name}_stem")(h)
    # No residual block at the full resolution: when the encoder ran in every step of the latent
    # stage, a block of two convolutions over H×W cost as much as the U-Net's whole step on the
    # latents (measured at 64×64); the stride-2 convolution learns the first halving.
    h = layers.Conv2D(channels[0], 3, strides=2, padding="same", name=f"{name}_down0")(h)
    for level, width in enumerate(channels[1:], 1):
        h = residual_block(h, None, width, groups, name=f"{name}_block{level}")
        if level < len(channels) - 1:
            h = layers.Conv2D(width, 3, strides=2, padding="same", name=f"{name}_down{level}")(h)
    h = _norm_silu(h, groups, f"{name}_out_norm")
    # float32 heads: exp(log_var) and the KL are computed in float32 under mixed precision.
    z_mean = layers.Conv2D(latent_channels, 3, padding="same", dtype="float32", name="z_mean")(h)
    z_log_var = layers.Conv2D(latent_channels, 3, padding="same", dtype="float32", name="z_log_var")(h)
    return keras.Model(images, [z_mean, z_log_var], name=name)


def build_decoder(image_shape, latent_channels=4, channels=(32, 64, 64), groups=8, name="decoder"):
    """Latents (B, H/4, W/4, latent_channels) → images (B, H, W, C), float32, unbounded (≈ [0, 1] once trained)."""
    channels = check_channels(channels)
    z = keras.Input(latent_shape(image_shape, latent_channels), name="z")
    h = layers.Conv2D(channels[-1], 3, padding="same", name=f"{name}_stem")(z)
    for level in reversed(range(len(channels))):
        h = residual_block(h, None, channels[level], groups, name=f"{name}_block{level}")
        if level > 0:
            h = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up{level}")(h)
            h = layers.Conv2D(channels[level - 1], 3, padding="same", name=f"{name}_up{level}_conv")(h)
    h = _norm_silu(h, groups, f"{name}_out_norm")
    images = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32", name=f"{name}_out")(h)
    return keras.Model(z, images, name=name)


def clamp_log_var(z_log_var):
    return tf.clip_by_value(tf.cast(z_log_var, tf.float32), *LOG_VAR_RANGE)


def autoencoder_losses(images, reconstruction, z_mean, z_log_var, kl_weight):
    """The first stage's objective and its terms (batch means):

    * `recon_loss`: mean absolute error per pixel value, on the [0, 1] scale. L1, as Rombach et
      al. (whose full loss adds a perceptual and an adversarial term, left out here): squared
      error is minimised by the mean of what an edge could be, so it blurs edges more (Isola et
      al. 2017, "Image-to-Image Translation", §3.1), and a latent model's samples are only as
      sharp as its decoder.
    * `kl_loss`: KL(q(z | x) ‖ N(0, I)) in nats per image, summed over the latent's elements.
    * `ae_loss` = recon_loss + kl_weight · kl_loss / (pixel values per image): Rombach et al.'s
      per-image sum of L1 + kl_weight · KL, divided by the number of pixel values so that it
      reads as a per-pixel error. With their kl_weight 1e-6 the KL only keeps the latents from
      drifting to arbitrary scales; the posterior stays near-deterministic.
    """
    images = tf.cast(images, tf.float32)
    recon = tf.reduce_mean(tf.abs(images - tf.cast(reconstruction, tf.float32)))
    batch = tf.shape(z_mean)[0]
    kl = tf.reduce_mean(losses.gaussian_kl(tf.reshape(z_mean, [batch, -1]),
                                           tf.reshape(clamp_log_var(z_log_var), [batch, -1])))
    pixels = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), tf.float32)
    return {"ae_loss": recon + kl_weight * kl / pixels, "recon_loss": recon, "kl_loss": kl}
