"""Reference training steps and a reference sampler, written the way the well-known Keras examples write them.

Each baseline takes its networks from a tfgen model of the same family and preset
(built fresh, so it trains its own weights): the architecture is tfgen's, only the
training step (or sampling loop) is in the keras.io style. benchmarks/throughput.py
times them next to tfgen on the same data pipeline, batch size and `fit` path.

* `gan` — keras.io "DCGAN (overriding train_step)": the generator runs twice per
  step (once for the D update, again inside the G tape), D's output goes through a
  sigmoid and `BinaryCrossentropy` on probabilities, noisy labels (+0.05·U) in the
  D step. tfgen draws the fakes once and scores them with logits.
* `cgan` — keras.io "Conditional GAN": labels one-hot, concatenated to the noise for
  G and tiled into `num_classes` image planes (`ops.repeat` + reshape, as there)
  concatenated to the image channels for D; the generator runs twice per step.
  Deviation in architecture, inherent to that style: D's first layer sees
  1 + num_classes input channels instead of 1 (conv `dcgan`: its first conv has
  11× the input channels; `document`: its first dense layer 11× the inputs), and
  G's first dense layer reads latent_dim + num_classes inputs (a one-hot) instead
  of latent_dim + embed_dim (a learned embedding). D is tfgen's unconditional
  trunk + a dense logit (tfgen's cGAN uses a projection head and also scores real
  images with mismatched labels).
* `vae` — keras.io "Variational AutoEncoder": a `Sampling` layer inside the encoder,
  decoder output through a sigmoid, `keras.losses.binary_crossentropy` on
  probabilities (summed over pixels), KL written out in the step.
* `diffusion` (training) — keras.io "Denoising Diffusion Implicit Models" step, on
  tfgen's discrete-time U-Net: rates from the schedule, predicted noise *and*
  predicted images (an image-loss metric), and the EMA as a Python loop of
  `assign` over the weights. tfgen's optimiser (Adam with the same clipping) and
  MSE loss, so the optimisation is the same.
* `diffusion` (sampling) — keras.io "DDPM": a Python loop calling
  `ema_network.predict` once per step with NumPy in between
  (`diffusion_sampling.predict_loop_sample`), the same DDIM steps tfgen's compiled
  sampler runs.

Everything runs with `training=True` where tfgen's step does (batch norm in the
generator trains in both): keras.io's DCGAN has no batch norm, and a literal copy
would run tfgen's batch-norm generator in inference mode, a different computation.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

import tfgen

#: Families with a baseline training step.
TRAIN_BASELINES = ("gan", "cgan", "vae", "diffusion")
#: Goals of the issue (tfgen ÷ baseline, same architecture and batch, CPU).
GOALS = {"gan": 1.2, "cgan": 1.5, "vae": 0.95, "diffusion": 0.95, "diffusion_sampling": 0.95}


def images_of(data):
    """The images of a batch that may be (images, labels) or images alone."""
    return data[0] if isinstance(data, (tuple, list)) else data


# ---------------------------------------------------------------------- GAN
class KerasIOGAN(keras.Model):
    """keras.io DCGAN: `train_step` draws noise and runs the generator once per phase.

    The DCGAN example puts a sigmoid on D and uses `BinaryCrossentropy` on
    probabilities; the MNIST GAN of the "customizing fit()" guide keeps logits
    (`from_logits=True`). `d_probabilities` picks one. `tanh_generator`: the
    generator draws in [−1, 1], so real images in [0, 1] are rescaled to match.
    """

    d_probabilities = True
    tanh_generator = True

    def __init__(self, discriminator, generator, latent_dim, seed=1337):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        # Built here, as tfgen's GAN builds its two: not lazily inside the first traced step.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def call(self, inputs, training=False):
        return self.discriminator(images_of(inputs), training=training)

    def d_output(self, images):
        logits = self.discriminator(images, training=True)
        return ops.sigmoid(logits) if self.d_probabilities else logits

    def train_step(self, data):
        real_images = images_of(data) * 2.0 - 1.0 if self.tanh_generator else images_of(data)
        batch_size = ops.shape(real_images)[0]
        # Sample random points in the latent space and decode them to fake images
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(random_latent_vectors, training=True)
        # Combine them with real images; labels 1 for fake, 0 for real, plus noise
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        # Train the discriminator
        with tf.GradientTape() as tape:
            predictions = self.d_output(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        # Sample random points in the latent space; "all real" labels
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = ops.zeros((batch_size, 1))
        # Train the generator (do not update the discriminator's weights)
        with tf.GradientTape() as tape:
            predictions = self.d_output(self.generator(random_latent_vectors, training=True))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def build_gan(preset: str, seed: int = 0):
    source = tfgen.get_model("gan", preset, seed=seed)
    model = KerasIOGAN(source.discriminator, source.generator, source.latent_dim)
    model.compile(d_optimizer=source.make_optimizer(), g_optimizer=source.make_optimizer(),
                  loss_fn=keras.losses.BinaryCrossentropy(), jit_compile=False)
    return model


# ---------------------------------------------------------------------- conditional GAN
class KerasIOConditionalGAN(KerasIOGAN):
    """keras.io conditional GAN: one-hot labels, tiled into image planes for the discriminator."""

    def __init__(self, discriminator, generator, latent_dim, num_classes, image_size, seed=1337):
        super().__init__(discriminator, generator, latent_dim, seed)
        self.num_classes = num_classes
        self.image_size = image_size

    def call(self, inputs, training=False):
        images, labels = inputs
        planes = self._label_planes(ops.one_hot(labels, self.num_classes))
        return self.discriminator(ops.concatenate([images, planes], -1), training=training)

    def _label_planes(self, one_hot_labels):
        # As keras.io writes it: repeat each one-hot entry image_size² times, reshape to image planes.
        image_one_hot_labels = one_hot_labels[:, :, None, None]
        image_one_hot_labels = ops.repeat(image_one_hot_labels, repeats=[self.image_size * self.image_size])
        return ops.reshape(image_one_hot_labels, (-1, self.image_size, self.image_size, self.num_classes))

    def train_step(self, data):
        # Unpack the data; one-hot the labels (keras.io's dataset yields them one-hot)
        real_images, labels = data
        real_images = real_images * 2.0 - 1.0
        one_hot_labels = ops.one_hot(ops.reshape(labels, [-1]), self.num_classes)
        # Add dummy dimensions to the labels so that they can be concatenated with the images
        image_one_hot_labels = self._label_planes(one_hot_labels)
        # Sample random points in the latent space and concatenate the labels
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        random_vector_labels = ops.concatenate([random_latent_vectors, one_hot_labels], axis=1)
        # Decode the noise (guided by labels) to fake images
        generated_images = self.generator(random_vector_labels, training=True)
        # Combine them with real images; the one-hot planes ride along as channels
        fake_image_and_labels = ops.concatenate([generated_images, image_one_hot_labels], -1)
        real_image_and_labels = ops.concatenate([real_images, image_one_hot_labels], -1)
        combined_images = ops.concatenate([fake_image_and_labels, real_image_and_labels], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        # Train the discriminator
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images, training=True)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        # Sample random points in the latent space
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        random_vector_labels = ops.concatenate([random_latent_vectors, one_hot_labels], axis=1)
        # Assemble labels that say "all real images"
        misleading_labels = ops.zeros((batch_size, 1))
        # Train the generator (do not update the discriminator's weights)
        with tf.GradientTape() as tape:
            fake_images = self.generator(random_vector_labels, training=True)
            fake_image_and_labels = ops.concatenate([fake_images, image_one_hot_labels], -1)
            predictions = self.discriminator(fake_image_and_labels, training=True)
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def build_cgan(preset: str, seed: int = 0):
    """tfgen's cGAN trunks, wired as keras.io wires them (see the module docstring for what that changes)."""
    source = tfgen.get_model("cgan", preset, seed=seed)
    height, width, channels = source.image_shape
    k = source.num_classes
    noise_and_label = keras.Input((source.latent_dim + k,), name="noise_and_one_hot")
    generator = keras.Model(noise_and_label, source.generator_trunk(noise_and_label), name="generator")
    image_and_planes = keras.Input((height, width, channels + k), name="image_and_label_planes")
    logit = layers.Dense(1, dtype="float32", name="logit")(source.discriminator_trunk(image_and_planes))
    discriminator = keras.Model(image_and_planes, logit, name="discriminator")
    model = KerasIOConditionalGAN(discriminator, generator, source.latent_dim, k, height)
    model.compile(d_optimizer=source.make_optimizer(), g_optimizer=source.make_optimizer(),
                  loss_fn=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=False)
    return model


# ---------------------------------------------------------------------- VAE
class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class KerasIOVAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs, training=False):
        return self.decoder(self.encoder(images_of(inputs), training=training)[2], training=training)

    def train_step(self, data):
        data = images_of(data)
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data, training=True)
            reconstruction = self.decoder(z, training=True)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {"loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "kl_loss": self.kl_loss_tracker.result()}


def build_vae(preset: str, seed: int = 0):
    source = tfgen.get_model("vae", preset, seed=seed)
    images = keras.Input(source.image_shape)
    z_mean, z_log_var = source.encoder(images)
    encoder = keras.Model(images, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])], name="encoder")
    z = keras.Input((source.latent_dim,))
    decoder = keras.Model(z, layers.Activation("sigmoid", dtype="float32")(source.decoder(z)), name="decoder")
    model = KerasIOVAE(encoder, decoder)
    model.compile(optimizer=keras.optimizers.Adam(source.learning_rate), jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    return model


# ---------------------------------------------------------------------- diffusion training
class KerasIODiffusion(keras.Model):
    """keras.io DDIM's training step on tfgen's U-Net (discrete timesteps, the same schedule)."""

    def __init__(self, source, ema=0.999, seed=1337):
        super().__init__()
        self.network = source.network
        self.ema_network = source.ema_network
        self.ema = ema
        self.null_label = source.null_label
        self.timesteps = source.timesteps
        self.sqrt_alpha_bar = tf.constant(source.noise_schedule.alpha_bar ** 0.5, tf.float32)
        self.sqrt_one_minus_alpha_bar = tf.constant((1.0 - source.noise_schedule.alpha_bar) ** 0.5, tf.float32)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
        self.image_loss_tracker = keras.metrics.Mean(name="i_loss")

    @property
    def metrics(self):
        return [self.noise_loss_tracker, self.image_loss_tracker]

    def call(self, inputs, training=False):
        images = images_of(inputs)
        batch = ops.shape(images)[0]
        return self.network([images, ops.zeros((batch,), "int32"), ops.full((batch,), self.null_label, "int32")])

    def denoise(self, noisy_images, t, noise_rates, signal_rates, training):
        labels = ops.full(ops.shape(t), self.null_label, "int32")
        network = self.network if training else self.ema_network
        pred_noises = network([noisy_images, t, labels], training=training)
        pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
        return pred_noises, pred_images

    def train_step(self, images):
        images = images_of(images) * 2.0 - 1.0
        batch_size = ops.shape(images)[0]
        noises = keras.random.normal(shape=ops.shape(images), seed=self.seed_generator)
        # Sample uniform random diffusion times
        t = keras.random.randint((batch_size,), 0, self.timesteps, dtype="int32", seed=self.seed_generator)
        noise_rates = ops.reshape(ops.take(self.sqrt_one_minus_alpha_bar, t), (-1, 1, 1, 1))
        signal_rates = ops.reshape(ops.take(self.sqrt_alpha_bar, t), (-1, 1, 1, 1))
        # Mix the images with noises accordingly
        noisy_images = signal_rates * images + noise_rates * noises
        with tf.GradientTape() as tape:
            # Train the network to separate noisy images to their components
            pred_noises, pred_images = self.denoise(noisy_images, t, noise_rates, signal_rates, training=True)
            noise_loss = self.loss(noises, pred_noises)  # used for training
            image_loss = self.loss(images, pred_images)  # only used as metric
        gradients = tape.gradient(noise_loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        self.noise_loss_tracker.update_state(noise_loss)
        self.image_loss_tracker.update_state(image_loss)
        # Track the exponential moving averages of weights
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {m.name: m.result() for m in self.metrics}


def build_diffusion(preset: str, seed: int = 0):
    source = tfgen.get_model("diffusion", preset, seed=seed)
    model = KerasIODiffusion(source)
    clip = source.grad_clip_norm or None
    model.compile(optimizer=keras.optimizers.Adam(source.learning_rate, global_clipnorm=clip),
                  loss=keras.losses.mean_squared_error, jit_compile=False)
    model.optimizer.build(model.network.trainable_variables)
    return model


BUILDERS = {"gan": build_gan, "cgan": build_cgan, "vae": build_vae, "diffusion": build_diffusion}


def build(name: str, preset: str, seed: int = 0):
    """The keras.io-style baseline of family `name` with the networks of `preset`."""
    return BUILDERS[name](preset, seed)


# ---------------------------------------------------------------------- diffusion sampling
def predict_loop_sample(model, n: int, steps: int, seed: int = 0):
    """keras.io DDPM's sampling loop (`predict` per step, NumPy between) over tfgen's DDIM `steps` timesteps."""
    from benchmarks.diffusion_sampling import predict_loop_sample as loop

    from tfgen import schedules

    images, _ = loop(model, n, schedules.sampling_timesteps(model.timesteps, steps), eta=0.0, seed=seed)
    return images
