"""Spectral normalisation (Miyato et al. 2018): the wrapped layer computes with W / σ(W), σ from
power iterations that converge to the largest singular value."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgen.layers.spectral_norm import SpectralNorm, spectrally_normalized


def effective_kernel(wrapper):
    return wrapper.kernel.numpy() / float(wrapper.sigma())


def largest_singular_value(kernel):
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


@pytest.fixture(params=["dense", "conv"])
def wrapped(request):
    """(the wrapper, its layer, an input batch), built."""
    layer, shape = {"dense": (keras.layers.Dense(5), (4, 7)),
                    "conv": (keras.layers.Conv2D(6, 3, padding="same"), (2, 8, 8, 3))}[request.param]
    wrapper = SpectralNorm(layer)
    x = tf.random.stateless_normal(shape, seed=[0, 1])
    wrapper(x)
    return wrapper, layer, x


def test_the_largest_singular_value_is_one_after_the_power_iterations(wrapped):
    wrapper, layer, x = wrapped
    layer.kernel.assign(layer.kernel * 10.0)  # far from norm 1
    assert largest_singular_value(layer.kernel.numpy()) > 3
    for _ in range(30):  # one iteration per training call, as in training
        wrapper(x, training=True)
    assert largest_singular_value(effective_kernel(wrapper)) == pytest.approx(1.0, abs=1e-3)


def test_output_is_the_layer_with_the_normalised_kernel(wrapped):
    wrapper, layer, x = wrapped
    layer.bias.assign(tf.random.stateless_normal(layer.bias.shape, seed=[0, 2]))
    got = wrapper(x).numpy()
    reference = layer.__class__.from_config(layer.get_config())
    reference.build(x.shape)
    reference.set_weights([effective_kernel(wrapper), layer.bias.numpy()])
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    kernel_before = layer.kernel.numpy()
    wrapper(x, training=True)
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel_before)  # only u changes; W is the parameter


def test_gradient_flows_through_sigma():
    wrapper = SpectralNorm(keras.layers.Dense(3, use_bias=False))
    x = tf.random.stateless_normal([4, 5], seed=[0, 1])
    wrapper(x)
    for _ in range(30):
        wrapper(x, training=True)
    # Scaling W does not change W / σ(W): the gradient along W itself is ~0 (it is not without σ's term).
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(wrapper(x))
    gradient = tape.gradient(total, wrapper.layer.kernel).numpy()
    kernel = wrapper.layer.kernel.numpy()
    assert abs(np.sum(gradient * kernel)) < 1e-4 * np.abs(gradient).sum() * np.abs(kernel).max()


def test_refuses_layers_it_cannot_normalise():
    with pytest.raises(ValueError, match="needs a linear layer.*relu"):
        SpectralNorm(keras.layers.Dense(3, activation="relu"))
    with pytest.raises(ValueError, match="wraps Conv2D, Dense or Embedding"):
        SpectralNorm(keras.layers.BatchNormalization())


def test_a_model_copy_wraps_its_linear_layers_except_those_kept():
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    h = keras.layers.Flatten()(keras.layers.LeakyReLU()(h))
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Dense(4, name="kept")(h)))
    copy = spectrally_normalized(model, keep=("kept",))
    wrapped = [l.layer.name for l in copy.layers if isinstance(l, SpectralNorm)]
    assert wrapped == ["conv", "out"] and isinstance(copy.get_layer("kept"), keras.layers.Dense)
    assert copy.output_shape == model.output_shape
