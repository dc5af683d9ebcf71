"""Spectral normalisation (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for
Generative Adversarial Networks").

A wrapped linear layer computes with W / σ(W), σ the largest singular value of its kernel
reshaped to a matrix (fan-in × units; their §2.1 and App. C.1 for convolutions). σ is
estimated by one power iteration per training call, continuing from the vector `u` kept
from the previous call (their Algorithm 1): u and v are held constant, and σ = vᵀ W u is
differentiated in W, so the gradient is the normalised network's.

Why not `keras.layers.SpectralNormalization`: in Keras 3.15 it *assigns* W / σ to the
kernel on every training call, so the optimiser then updates the already-normalised
kernel with a gradient taken as if σ were not there, and the assignment of a mirrored
variable in a replica's step (every training call under `tf.distribute`) is not
allowed for a variable without an aggregation. Here the kernel is never assigned: conv,
dense and embedding layers are linear in their kernel, so layer(x) with W / σ is
(layer(x) − b) / σ + b, computed from the wrapped layer's own output.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

#: Layers whose kernel this wrapper normalises (linear in their kernel, with an optional bias).
LINEAR_LAYERS = (layers.Conv2D, layers.Dense, layers.Embedding)


@keras.saving.register_keras_serializable(package="tfgen")
class SpectralNorm(layers.Wrapper):
    """`layer` computing with its kernel divided by the kernel's largest singular value."""

    def __init__(self, layer, power_iterations=1, **kwargs):
        if not isinstance(layer, LINEAR_LAYERS):
            raise ValueError(f"SpectralNorm wraps Conv2D, Dense or Embedding layers, got {type(layer).__name__}")
        if getattr(layer, "activation", keras.activations.linear) is not keras.activations.linear:
            raise ValueError(f"SpectralNorm needs a linear layer (a separate activation layer): {layer.name} has "
                             f"activation {layer.activation.__name__}")
        kwargs.setdefault("dtype", layer.dtype_policy)  # compute as the wrapped layer does (a float32 logit stays so)
        super().__init__(layer, **kwargs)
        self.power_iterations = int(power_iterations)
        if self.power_iterations < 1:
            raise ValueError(f"power_iterations must be at least 1, got {power_iterations!r}")

    def build(self, input_shape=None):
        super().build(input_shape)
        units = self.kernel.shape[-1]
        # Every replica computes the same u from the same weights: the first replica's is kept.
        self.u = self.add_weight(shape=(units,), initializer=keras.initializers.RandomNormal(), trainable=False,
                                 name="u", aggregation="only_first_replica")

    @property
    def kernel(self):
        return self.layer.embeddings if isinstance(self.layer, layers.Embedding) else self.layer.kernel

    def sigma(self, training=False):
        """The power-iteration estimate of the kernel's largest singular value (float32).

        In training the iteration's new u is stored, so that the estimate improves call by call
        (one iteration per step suffices because W changes little between steps: their §2.2).
        """
        w = tf.cast(self.kernel, tf.float32)
        w = tf.reshape(w, [-1, w.shape[-1]])
        u = tf.cast(self.u, tf.float32)
        for _ in range(self.power_iterations):
            v = tf.math.l2_normalize(tf.linalg.matvec(w, u))
            u = tf.math.l2_normalize(tf.linalg.matvec(w, v, transpose_a=True))
        u, v = tf.stop_gradient(u), tf.stop_gradient(v)
        if training:
            self.u.assign(u)
        return tf.tensordot(v, tf.linalg.matvec(w, u), 1)

    def call(self, inputs, training=False):
        outputs = self.layer(inputs)
        sigma = tf.cast(self.sigma(training), outputs.dtype)
        bias = getattr(self.layer, "bias", None)
        if bias is None:
            return outputs / sigma
        bias = tf.cast(bias, outputs.dtype)
        return (outputs - bias) / sigma + bias

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


def spectrally_normalized(model: keras.Model, keep=()) -> keras.Model:
    """A copy of the functional `model` (new weights) with every conv, dense and embedding layer
    spectrally normalised, except those named in `keep`; the other layers are copied as they are."""

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, LINEAR_LAYERS) and layer.name not in keep:
            return SpectralNorm(copy, name=f"{layer.name}_sn")
        return copy

    return keras.models.clone_model(model, clone_function=clone)
