"""The keras.io examples' own recipes (architecture, hyperparameters, training step), sized for 28×28×1.

`baselines.py` puts tfgen's networks under a keras.io-style step, to compare steps.
This module is what a user gets by following the examples instead of tfgen: their
networks, optimisers, batch sizes and losses, compiled with Keras' defaults (`jit_compile="auto"`,
which is XLA for these models on TensorFlow). `time_to_quality.py` trains them
against tfgen's `default` presets. Each builder returns a `Recipe`: the compiled
model, its batch size and a function drawing samples in [0, 1].

* `gan` — the MNIST GAN of the keras.io guide "Customizing what happens in fit()":
  D = two stride-2 3×3 convs (64, 128) with LeakyReLU(0.2), global max pooling,
  a dense logit; G = dense 7·7·128, two stride-2 4×4 transposed convs (128) with
  LeakyReLU(0.2), a 7×7 conv with a sigmoid; latent 128; Adam(3e-4) for both;
  `BinaryCrossentropy(from_logits=True)`; batch 64; the generator runs twice
  per step (`baselines.KerasIOGAN`).
* `vae` — keras.io "Variational AutoEncoder": encoder convs 32 and 64 (3×3,
  stride 2, ReLU), dense 16, latent 2; decoder dense 7·7·64 and transposed
  convs 64, 32 and 1 (sigmoid); Adam() (1e-3); batch 128; BCE on
  probabilities summed over pixels (`baselines.KerasIOVAE`).
* `diffusion` — keras.io "Denoising Diffusion Implicit Models": continuous
  time, offset-cosine schedule (signal rate 0.95 → 0.02), the noise variance
  fed through a sinusoidal embedding (32 dims, frequencies 1–1000), a U-Net of
  residual blocks (widths 32, 64, 96, 128, two blocks per level, average
  pooling, bilinear upsampling, no attention), a `Normalization` layer adapted
  on the data, ε-prediction with mean *absolute* error, AdamW(1e-3, weight
  decay 1e-4), EMA 0.999 as a Python loop of `assign`, batch 64, unconditional;
  samples by 20 deterministic DDIM steps from the EMA network. Adapted to
  MNIST: the U-Net's three poolings need a side divisible by 8, so the network
  pads 28 → 32 with zeros and crops its output back (the example instead
  crops and resizes its flowers to 64×64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from benchmarks import baselines

IMAGE_SHAPE = (28, 28, 1)


@dataclass
class Recipe:
    model: keras.Model
    batch_size: int
    #: sample(n, seed) -> float32 NumPy images in [0, 1], shape (n, 28, 28, 1).
    sample: Callable[[int, int], np.ndarray]
    description: str


# ---------------------------------------------------------------------- GAN (guide)
class GuideGAN(baselines.KerasIOGAN):
    """The guide's GAN: logits into `BinaryCrossentropy(from_logits=True)`, a sigmoid generator."""

    d_probabilities = False
    tanh_generator = False


def gan(seed: int = 0) -> Recipe:
    keras.utils.set_random_seed(seed)
    latent_dim = 128
    discriminator = keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        layers.Conv2D(64, (3, 3), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.GlobalMaxPooling2D(),
        layers.Dense(1),
    ], name="discriminator")
    generator = keras.Sequential([
        keras.Input((latent_dim,)),
        layers.Dense(7 * 7 * 128),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
    ], name="generator")
    model = GuideGAN(discriminator, generator, latent_dim, seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                  g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                  loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))

    def sample(n, seed):
        z = keras.random.normal((n, latent_dim), seed=seed)
        return np.asarray(generator(z, training=False), np.float32)

    return Recipe(model, 64, sample, "keras.io guide 'Customizing what happens in fit()' GAN")


# ---------------------------------------------------------------------- VAE
def vae(seed: int = 0) -> Recipe:
    keras.utils.set_random_seed(seed)
    latent_dim = 2
    encoder_inputs = keras.Input(IMAGE_SHAPE)
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = baselines.Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input((latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    model = baselines.KerasIOVAE(encoder, decoder)
    model.compile(optimizer=keras.optimizers.Adam())

    def sample(n, seed):
        z = keras.random.normal((n, latent_dim), seed=seed)
        return np.asarray(decoder(z, training=False), np.float32)

    return Recipe(model, 128, sample, "keras.io 'Variational AutoEncoder' (latent 2)")


# ---------------------------------------------------------------------- diffusion (DDIM)
EMBEDDING_DIMS = 32
EMBEDDING_MAX_FREQUENCY = 1000.0
MIN_SIGNAL_RATE = 0.02
MAX_SIGNAL_RATE = 0.95


@keras.saving.register_keras_serializable(package="keras_io_recipes")
def sinusoidal_embedding(x):
    frequencies = ops.exp(ops.linspace(ops.log(1.0), ops.log(EMBEDDING_MAX_FREQUENCY), EMBEDDING_DIMS // 2))
    angular_speeds = ops.cast(2.0 * math.pi * frequencies, "float32")
    return ops.concatenate([ops.sin(angular_speeds * x), ops.cos(angular_speeds * x)], axis=3)


def residual_block(x, width):
    residual = x if x.shape[3] == width else layers.Conv2D(width, kernel_size=1)(x)
    x = layers.BatchNormalization(center=False, scale=False)(x)
    x = layers.Conv2D(width, kernel_size=3, padding="same", activation="swish")(x)
    x = layers.Conv2D(width, kernel_size=3, padding="same")(x)
    return layers.Add()([x, residual])


def ddim_network(widths=(32, 64, 96, 128), block_depth=2, pad=2):
    noisy_images = keras.Input(IMAGE_SHAPE)
    noise_variances = keras.Input((1, 1, 1))
    side = IMAGE_SHAPE[0] + 2 * pad
    e = layers.Lambda(sinusoidal_embedding, output_shape=(1, 1, EMBEDDING_DIMS))(noise_variances)
    e = layers.UpSampling2D(size=side, interpolation="nearest")(e)
    x = layers.ZeroPadding2D(pad)(noisy_images)
    x = layers.Conv2D(widths[0], kernel_size=1)(x)
    x = layers.Concatenate()([x, e])
    skips = []
    for width in widths[:-1]:
        for _ in range(block_depth):
            x = residual_block(x, width)
            skips.append(x)
        x = layers.AveragePooling2D(pool_size=2)(x)
    for _ in range(block_depth):
        x = residual_block(x, widths[-1])
    for width in reversed(widths[:-1]):
        x = layers.UpSampling2D(size=2, interpolation="bilinear")(x)
        for _ in range(block_depth):
            x = layers.Concatenate()([x, skips.pop()])
            x = residual_block(x, width)
    x = layers.Conv2D(IMAGE_SHAPE[-1], kernel_size=1, kernel_initializer="zeros")(x)
    x = layers.Cropping2D(pad)(x)
    return keras.Model([noisy_images, noise_variances], x, name="residual_unet")


class KerasIODDIM(keras.Model):
    """keras.io DDIM: continuous-time offset-cosine schedule, ε-prediction with MAE, EMA by `assign`."""

    def __init__(self, ema=0.999, seed=1337):
        super().__init__()
        self.normalizer = layers.Normalization()
        self.network = ddim_network()
        self.ema_network = keras.models.clone_model(self.network)
        self.ema = ema
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
        self.image_loss_tracker = keras.metrics.Mean(name="i_loss")

    @property
    def metrics(self):
        return [self.noise_loss_tracker, self.image_loss_tracker]

    def call(self, inputs, training=False):
        images = baselines.images_of(inputs)
        return self.network([images, ops.ones((ops.shape(images)[0], 1, 1, 1))], training=training)

    def denormalize(self, images):
        images = self.normalizer.mean + images * self.normalizer.variance ** 0.5
        return ops.clip(images, 0.0, 1.0)

    def diffusion_schedule(self, diffusion_times):
        start_angle = ops.cast(ops.arccos(MAX_SIGNAL_RATE), "float32")
        end_angle = ops.cast(ops.arccos(MIN_SIGNAL_RATE), "float32")
        angles = start_angle + diffusion_times * (end_angle - start_angle)
        return ops.sin(angles), ops.cos(angles)  # noise rates, signal rates

    def denoise(self, noisy_images, noise_rates, signal_rates, training):
        network = self.network if training else self.ema_network
        pred_noises = network([noisy_images, noise_rates ** 2], training=training)
        pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
        return pred_noises, pred_images

    def train_step(self, data):
        images = self.normalizer(baselines.images_of(data), training=True)
        batch_size = ops.shape(images)[0]
        noises = keras.random.normal(shape=ops.shape(images), seed=self.seed_generator)
        diffusion_times = keras.random.uniform((batch_size, 1, 1, 1), minval=0.0, maxval=1.0,
                                               seed=self.seed_generator)
        noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
        noisy_images = signal_rates * images + noise_rates * noises
        with tf.GradientTape() as tape:
            pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=True)
            noise_loss = self.loss(noises, pred_noises)  # used for training
            image_loss = self.loss(images, pred_images)  # only used as metric
        gradients = tape.gradient(noise_loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        self.noise_loss_tracker.update_state(noise_loss)
        self.image_loss_tracker.update_state(image_loss)
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {m.name: m.result() for m in self.metrics}

    def generate(self, num_images, diffusion_steps, seed):
        """The example's reverse diffusion: a Python loop of EMA-network calls, deterministic DDIM steps."""
        next_noisy_images = keras.random.normal((num_images, *IMAGE_SHAPE), seed=seed)
        step_size = 1.0 / diffusion_steps
        for step in range(diffusion_steps):
            noisy_images = next_noisy_images
            diffusion_times = ops.ones((num_images, 1, 1, 1)) - step * step_size
            noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
            pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=False)
            next_noise_rates, next_signal_rates = self.diffusion_schedule(diffusion_times - step_size)
            next_noisy_images = next_signal_rates * pred_images + next_noise_rates * pred_noises
        return self.denormalize(pred_images)


def diffusion(seed: int = 0, train_images=None) -> Recipe:
    """`train_images` (NumPy, [0, 1]) adapt the normalizer, as the example adapts it on its dataset."""
    keras.utils.set_random_seed(seed)
    model = KerasIODDIM(seed=seed)
    if train_images is None:
        raise ValueError("the DDIM recipe adapts its Normalization layer: pass train_images")
    model.normalizer.adapt(np.asarray(train_images, np.float32))
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4),
                  loss=keras.losses.mean_absolute_error)

    def sample(n, seed):
        return np.asarray(model.generate(n, diffusion_steps=20, seed=seed), np.float32)

    return Recipe(model, 64, sample, "keras.io 'Denoising Diffusion Implicit Models' (20 sampling steps)")


RECIPES = {"gan": gan, "vae": vae, "diffusion": diffusion}
