"""Class conditioning: label inputs, label embeddings, the projection discriminator head,
and the checks that turn user-given labels into a validated int32 tensor.

The conditional families (`cgan`, `cvae`) feed labels to their networks as int32
class indices of shape (batch,) and learn an embedding of them (a Dense layer on
one-hot vectors, stored as an `Embedding` table). A learned embedding, unlike a
fixed one-hot vector, gives a continuous label space in which two classes can be
interpolated.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers


def label_input(name="labels"):
    """A functional-model input for a batch of int32 class indices, shape (batch,)."""
    return keras.Input((), dtype="int32", name=name)


def embed_labels(labels, num_classes, dim, stddev=1.0, name="label_embedding"):
    """(batch,) class indices → (batch, dim) learned vectors, initialised N(0, stddev²).

    The initial scale decides how loud the label is next to what it is
    concatenated to, and so what the network learns to use. Keras' default
    (uniform ±0.05, meant for word embeddings) is ~20× quieter than N(0, 1)
    noise: a cVAE then ignores the label and puts the class into z (27% of its
    samples showed the requested digit after 3 epochs, against 85% with
    stddev 1). The cGAN picks its own scale (see tfgen/models/cgan.py).
    """
    init = keras.initializers.RandomNormal(stddev=stddev)
    return layers.Embedding(num_classes, dim, embeddings_initializer=init, name=name)(labels)


def label_channel(labels, num_classes, image_shape, name="label_map"):
    """A learned (H, W, 1) map per class, to concatenate to an image as an extra channel.

    The "concatenation" way of conditioning a discriminator (Mirza & Osindero 2014
    concatenate the label to the input; a learned map does so for a conv network).
    """
    height, width, _ = image_shape
    # Unit scale, like the [−1, 1] pixels it sits beside.
    init = keras.initializers.RandomNormal(stddev=1.0)
    h = layers.Embedding(num_classes, height * width, embeddings_initializer=init, name=name)(labels)
    return layers.Reshape((height, width, 1), name=f"{name}_reshape")(h)


def projection_logit(features, labels, num_classes, name="logit"):
    """Projection discriminator head (Miyato & Koyama 2018, "cGANs with Projection Discriminator").

        D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩

    ψ is a linear unconditional logit and embed(y) a learned vector per class. The
    inner product is the log density ratio of a class-conditional model whose
    class posterior is log-linear in φ(x): the label acts on the logit directly,
    rather than as one more input that the discriminator may learn to ignore.
    Returns a float32 (batch, 1) logit (float32 under mixed precision too).
    """
    dim = features.shape[-1]
    unconditional = layers.Dense(1, name=f"{name}_psi")(features)
    class_vectors = layers.Embedding(num_classes, dim, name=f"{name}_class_embedding")(labels)
    projection = layers.Dot(axes=1, name=f"{name}_projection")([class_vectors, features])
    return layers.Add(dtype="float32", name=name)([unconditional, projection])


# ---------------------------------------------------------------------- label arguments
def as_labels(labels, num_classes, n=None, name="labels", allow_unconditional=False):
    """Validate user-given labels and return them as an int32 tensor of shape (n,).

    labels: an int (every one of the `n` samples gets it), or a list, NumPy array or
        tensor of class indices (of length `n` when `n` is given). Whole floats (3.0)
        count as indices; 3.5 does not, nor do one-hot rows.
    allow_unconditional: also accept −1, "no label", for models whose labels are
        optional (diffusion with classifier-free guidance: its unconditional model).
    Concrete values are checked here, with a message naming the bad labels: an
    out-of-range label would otherwise fail deep inside an embedding lookup on CPU
    and silently read zeros on GPU (or, added to a token offset, silently become
    another token). Symbolic tensors (inside a `tf.function`: a training step, an
    exported endpoint) cannot be read, so they are checked by graph assertions.
    """
    low = -1 if allow_unconditional else 0
    allowed = f"[{low}, {num_classes})" + (" (-1: unconditional)" if allow_unconditional else "")
    if labels is None:
        raise ValueError(f"{name} are required: this model is conditional on the class label")
    if tf.is_tensor(labels) and tf.is_symbolic_tensor(labels):
        return _checked_in_graph(labels, num_classes, low, name)

    values = np.asarray(labels)
    if values.dtype == bool or values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and values.size and np.all(values == np.round(values)):
            values = values.astype(np.int64)  # 3.0 is a class index; 3.5 is not
        else:
            raise ValueError(f"{name} must be integer class indices, got {_preview(values)} ({values.dtype})")
    if values.ndim == 0:
        values = np.full([1 if n is None else int(n)], values)
    elif values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    elif values.ndim != 1:
        raise ValueError(_rank_error(name, values.shape))
    if n is not None and len(values) != int(n):
        raise ValueError(f"{name} has {len(values)} entries but {int(n)} samples were requested")
    bad = values[(values < low) | (values >= num_classes)]
    if bad.size:
        raise ValueError(f"{name} must be in {allowed} (num_classes={num_classes}), got {_preview(np.unique(bad))}")
    return tf.constant(values, tf.int32)


def _checked_in_graph(labels, num_classes, low, name):
    """`as_labels` for a symbolic tensor: static checks now, value checks as graph assertions.

    A few ops on (batch,) values: nothing next to the network they feed. (XLA drops
    assertions: a `jit_compile` step is not checked.)
    """
    if labels.dtype == tf.bool or not (labels.dtype.is_integer or labels.dtype.is_floating):
        raise ValueError(f"{name} must be integer class indices, got a {labels.dtype.name} tensor")
    shape = labels.shape
    if shape.rank is not None and (shape.rank > 2 or (shape.rank == 2 and shape[1] not in (1, None))):
        raise ValueError(_rank_error(name, tuple(shape)))
    labels = tf.reshape(labels, [-1])
    values = tf.cast(labels, tf.float64)  # exact for every int32 (and whole float) label
    checks = [
        tf.debugging.assert_greater_equal(values, tf.constant(low, tf.float64), message=f"{name} must be >= {low}"),
        tf.debugging.assert_less(values, tf.constant(num_classes, tf.float64),
                                 message=f"{name} must be < num_classes={num_classes}"),
    ]
    if labels.dtype.is_floating:
        checks.append(tf.debugging.assert_equal(values, tf.round(values),
                                                message=f"{name} must be integer class indices"))
    with tf.control_dependencies(checks):
        # identity: a cast of int32 labels to int32 creates no op, so would not wait for the checks.
        return tf.identity(tf.cast(labels, tf.int32))


def _rank_error(name, shape):
    return (f"{name} must be an int or a 1-D sequence of class indices, got shape {shape}"
            + (" (one-hot labels? pass class indices)" if len(shape) == 2 else ""))


def draw_or_check_labels(model, n, labels=None, seed=None):
    """Labels for `model.sample(n, labels, seed)`: validated, or drawn uniformly when None.

    The uniform draw uses its own stream of the seed: the same stateless seed for
    labels and noise would derive label i and the first noise coordinates from the
    same random bits, correlating the class with the latent code.
    """
    if labels is not None:
        return as_labels(labels, model.num_classes, n)
    seed = tf.random.experimental.stateless_fold_in(model.draw_seed(seed), 1)
    return tf.random.stateless_uniform([n], seed=seed, maxval=model.num_classes, dtype=tf.int32)


def _preview(values, limit=8):
    flat = np.asarray(values).reshape(-1)
    text = ", ".join(str(v) for v in flat[:limit])
    return f"[{text}{', ...' if flat.size > limit else ''}]"
