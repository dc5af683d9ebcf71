"""cVAE: encoder and decoder both take the label, the loss is the conditional −ELBO,
and on real digits it draws the requested class and transfers handwriting across classes."""


import numpy as np
import pytest
import tensorflow as tf

import tfgen
from model_checks import train_tiny


def test_encoder_and_decoder_both_use_the_label(random_batches):
    # README defect 15: the documents built separate "conditional" networks instead.
    model, _ = train_tiny("cvae", random_batches)
    assert [i.name for i in model.encoder.inputs] == ["images", "labels"]
    assert [i.name for i in model.decoder.inputs] == ["z", "labels"]
    images = tf.random.stateless_uniform([2, 28, 28, 1], seed=[0, 1])
    z = tf.random.stateless_normal([2, model.latent_dim], seed=[0, 2])
    assert not np.allclose(model.encode(images, [1, 1])[0], model.encode(images, [7, 7])[0])
    assert not np.allclose(model.decode(z, [1, 1]), model.decode(z, [7, 7]))


def test_loss_is_the_conditional_negative_elbo_in_nats_per_image():
    model = tfgen.get_model("cvae", "tiny", seed=0)
    images = tf.cast(tf.random.stateless_uniform([8, 28, 28, 1], seed=[0, 3]) > 0.5, tf.float32)
    labels = tf.range(8) % 10
    values = model.compute_losses(images, labels)
    np.testing.assert_allclose(values["loss"], values["reconstruction_loss"] + values["kl_loss"], rtol=1e-6)
    assert 400 < float(values["reconstruction_loss"]) < 700  # ≈ 784 ln 2 for an untrained decoder
    z_mean, z_log_var = model.encode(images, labels)
    kl = -0.5 * np.sum(1 + z_log_var - np.square(z_mean) - np.exp(z_log_var), axis=1).mean()
    np.testing.assert_allclose(values["kl_loss"], kl, rtol=1e-5)


def test_sample_label_forms_and_bad_labels():
    model = tfgen.get_model("cvae", "tiny", seed=0)
    reference = np.asarray(model.sample(3, labels=[4, 4, 4], seed=2))
    assert reference.shape == (3, 28, 28, 1) and 0 <= reference.min() and reference.max() <= 1
    for form in (4, np.array([4, 4, 4]), tf.constant([4, 4, 4], tf.int64)):
        np.testing.assert_allclose(model.sample(3, labels=form, seed=2), reference, atol=1e-6)
    np.testing.assert_array_equal(model.sample(3, seed=2), model.sample(3, seed=2))
    for bad, message in ((10, r"\[0, 10\)"), ([1, 2], "2 entries but 3"), ([0.5] * 3, "integer")):
        with pytest.raises(ValueError, match=message):
            model.sample(3, labels=bad)


def test_encode_checks_eager_labels():
    model = tfgen.get_model("cvae", "tiny", seed=0)
    images = np.zeros((2, 28, 28, 1), "float32")
    with pytest.raises(ValueError, match=r"must be in \[0, 10\).*\[12\]"):
        model.encode(images, [0, 12])
    with pytest.raises(ValueError, match="3 entries but 2"):
        model.reconstruct(images, [0, 1, 2])
    with pytest.raises(ValueError, match="labels are required"):
        model.encode(images)


def test_transfer_style_decodes_each_code_with_each_target():
    model = tfgen.get_model("cvae", "tiny", seed=0)
    images = tf.random.stateless_uniform([3, 28, 28, 1], seed=[1, 1])
    out = np.asarray(model.transfer_style(images, [0, 1, 2]))
    assert out.shape == (3, 10, 28, 28, 1)
    # Decoding with an image's own label is its reconstruction.
    for i in range(3):
        np.testing.assert_allclose(out[i, i], model.reconstruct(images[i:i + 1], [i])[0], atol=1e-5)
    some = np.asarray(model.transfer_style(images, [0, 1, 2], target_labels=[7, 2]))
    np.testing.assert_allclose(some, out[:, [7, 2]], atol=1e-5)
    with pytest.raises(ValueError, match="target_labels must be in"):
        model.transfer_style(images, [0, 1, 2], target_labels=[10])


@pytest.mark.learning
def test_conditional_samples_and_style_transfer_show_the_requested_digit(digits, evaluator):
    """A classifier trained on real digits reads the requested class in the cVAE's output.

    Chance is 10%. Threshold 60% for prior samples and for style transfer (test
    digits redrawn as every class). 200 steps of 64 (1.5 epochs) of the `default`
    preset measured 99.4% and 100% for samples, 93% and 95% for style transfer
    (seeds 0, 1; 100 steps: 42–51%), so 60% leaves room for seed-to-seed variation,
    while a decoder that ignored the label — and put the class into z instead,
    which is what a cVAE with a weak label signal learns — scores ~10-30% (27%
    measured with Keras' default ±0.05 embedding init).
    """
    x_train, y_train, x_test, y_test = digits
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=0).batch(64)
    model = tfgen.get_model("cvae", "default", seed=0)
    model.default_compile()
    model.fit(ds.repeat().take(200), epochs=1, verbose=0)
    requested = np.repeat(np.arange(10), 50)
    predicted = evaluator.predict_labels(model.sample(len(requested), labels=requested, seed=1))
    assert np.mean(predicted == requested) > 0.6, np.bincount(predicted[predicted != requested], minlength=10)

    transferred = np.asarray(model.transfer_style(x_test[:50], y_test[:50]))  # (50, 10, 28, 28, 1)
    predicted = evaluator.predict_labels(transferred.reshape(-1, 28, 28, 1)).reshape(50, 10)
    assert np.mean(predicted == np.arange(10)) > 0.6
