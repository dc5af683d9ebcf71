"""Conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation
using Deep Conditional Generative Models"; Kingma et al. 2014, "Semi-supervised
Learning with Deep Generative Models", M2 with observed labels).

    q(z | x, y) = N(μ(x, y), diag σ²(x, y)),  p(z) = N(0, I),  p(x | z, y) = Bernoulli(decoder(z, y))
    ELBO(x | y) = E_q[log p(x | z, y)] − KL(q(z | x, y) ‖ p(z))

Same loss, metrics and methods as `vae` (tfgen/models/vae.py), each taking labels:
the encoder and the decoder both receive a learned embedding of y, concatenated
to the conv features and to z. Because the decoder is told the class, the KL
term pushes the class out of z, which keeps what the label does not say: the
handwriting (slant, stroke width, size). `transfer_style` uses that: encode an
image with its own label, decode the code with another label — the same
handwriting, another digit.

The documents' cVAE skeleton built an encoder, a decoder, a "conditional encoder"
and a "conditional decoder" (README defect 15); a cVAE is one encoder and one
decoder that both see the label.

Presets, fit defaults and flags: `cvae.json` beside this module (see `tfgen.catalog`).
"""

from __future__ import annotations

import tensorflow as tf

from tfgen import checks
from tfgen.layers import conditioning
from tfgen.models.base import check_image_shape
from tfgen.models.vae import VAE
from tfgen.registry import register_model


@register_model("cvae")
class CVAE(VAE):
    """Class-conditional VAE: `sample(n, labels)`, `reconstruct(images, labels)`, `transfer_style(...)`."""

    def __init__(self, embed_dim=16, **kwargs):
        # Set before VAE.__init__, which builds the networks from it.
        self.embed_dim = checks.positive_int(embed_dim, "embed_dim")
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ networks
    def build_encoder(self, extra_inputs=()):
        labels = conditioning.label_input()
        embedded = conditioning.embed_labels(labels, self.num_classes, self.embed_dim, name="enc_label_embedding")
        return super().build_encoder([(labels, embedded), *extra_inputs])

    def build_decoder(self, extra_inputs=()):
        labels = conditioning.label_input()
        embedded = conditioning.embed_labels(labels, self.num_classes, self.embed_dim, name="dec_label_embedding")
        return super().build_decoder([(labels, embedded), *extra_inputs])

    def _encoder_inputs(self, images, labels):
        return [images, conditioning.as_labels(labels, self.num_classes, images.shape[0])]

    def _decoder_inputs(self, z, labels):
        return [z, conditioning.as_labels(labels, self.num_classes, z.shape[0])]

    # ------------------------------------------------------------------ generation
    def sample(self, n, labels=None, seed=None):
        """Decode `n` prior draws with the given classes: an int, a sequence/tensor of `n`
        ints, or None for classes drawn uniformly. Pixel probabilities in [0, 1]."""
        n = checks.positive_int(n, "n")
        labels = conditioning.draw_or_check_labels(self, n, labels, seed)
        z = self.normal([n, self.latent_dim], seed=seed)
        return self.decode(z, labels)

    def transfer_style(self, images, labels, target_labels=None):
        """Redraw each image as other classes, keeping its style.

        Each image is encoded with its own label (posterior mean) and the code is
        decoded with every label in `target_labels` (an int or a sequence; default:
        every class). Returns (N, T, H, W, C) in [0, 1] for N images and T targets:
        row i is image i's handwriting drawn as each target class.
        """
        images = tf.convert_to_tensor(images, tf.float32)
        check_image_shape(images.shape, self.image_shape, type(self).__name__)
        if target_labels is None:
            target_labels = range(self.num_classes)
        targets = conditioning.as_labels(target_labels, self.num_classes, name="target_labels")
        z_mean, _ = self.encode(images, labels)
        count, t = tf.shape(z_mean)[0], tf.shape(targets)[0]
        z = tf.repeat(z_mean, t, axis=0)  # row-major: image i, target j
        out = self.decode(z, tf.tile(targets, [count]))
        return tf.reshape(out, [count, t, *self.image_shape])
