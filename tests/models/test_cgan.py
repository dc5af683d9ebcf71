"""cGAN: one generator and one discriminator that both take the label; one sampling API
for every label form; and conditional samples of the requested class on real digits."""

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from model_checks import train_tiny
from tfgen.layers import conditioning


BAD_LABELS = [
    (10, r"must be in \[0, 10\).*\[10\]"),
    ([0, -1], r"must be in \[0, 10\).*\[-1\]"),
    ([2.5, 1.0], "integer class indices"),
    (np.eye(10, dtype="int32")[:2], "one-hot"),
    ([1, 2, 3], "3 entries but 2 samples"),
]


@pytest.mark.parametrize("d_conditioning", ["projection", "concat"])
def test_one_generator_and_one_discriminator_both_use_the_label(d_conditioning, random_batches):
    # README defect 15: the documents trained a separate "conditional generator".
    model, _ = train_tiny("cgan", random_batches, d_conditioning=d_conditioning)
    assert [i.name for i in model.generator.inputs] == ["noise", "labels"]
    assert [i.name for i in model.discriminator.inputs] == ["images", "labels"]
    assert model.d_optimizer is not model.g_optimizer
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 8
    noise = tf.random.stateless_normal([2, model.latent_dim], seed=[0, 1])
    images = tf.random.stateless_uniform([2, 28, 28, 1], seed=[0, 2])
    assert not np.allclose(model.generate(noise, [1, 1]), model.generate(noise, [7, 7]))
    assert not np.allclose(model.discriminate(images, [1, 1]), model.discriminate(images, [7, 7]))


def test_projection_head_is_psi_plus_inner_product_with_the_class_embedding():
    # Miyato & Koyama 2018, eq. 3: D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, checked by hand.
    import keras

    features, labels = keras.Input((3,)), conditioning.label_input()
    head = keras.Model([features, labels], conditioning.projection_logit(features, labels, num_classes=2))
    head.get_layer("logit_psi").set_weights([np.array([[1.0], [0.0], [-1.0]]), np.array([0.5])])
    head.get_layer("logit_class_embedding").set_weights([np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])])
    phi = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0]], "float32")
    # class 0: ψ only (1 − 1 + .5, 2 − 1 + .5); class 1: ψ + (1 + 2 + 3, 2 + 0 + 3)
    np.testing.assert_allclose(head([phi, np.array([0, 0])]), [[0.5], [1.5]])
    np.testing.assert_allclose(head([phi, np.array([1, 1])]), [[6.5], [6.5]])


def test_sample_accepts_every_label_form_with_the_same_result():
    model = tfgen.get_model("cgan", "tiny", seed=0)
    reference = np.asarray(model.sample(4, labels=[3, 3, 3, 3], seed=1))
    assert reference.shape == (4, 28, 28, 1) and 0 <= reference.min() and reference.max() <= 1
    for form in (3, np.int64(3), np.full(4, 3), tf.constant([3, 3, 3, 3]), tf.constant(3), [3.0, 3.0, 3.0, 3.0]):
        np.testing.assert_allclose(model.sample(4, labels=form, seed=1), reference, atol=1e-6)
    mixed = np.asarray(model.sample(4, labels=[3, 3, 8, 8], seed=1))
    np.testing.assert_allclose(mixed[:2], reference[:2], atol=1e-6)  # each sample follows its own label
    assert not np.allclose(mixed[2:], reference[2:])


def test_none_draws_uniform_seeded_labels():
    model = tfgen.get_model("cgan", "tiny", seed=0)
    drawn = conditioning.draw_or_check_labels(model, 5000, seed=3).numpy()
    np.testing.assert_array_equal(drawn, conditioning.draw_or_check_labels(model, 5000, seed=3))
    counts = np.bincount(drawn, minlength=10)
    assert counts.min() > 400 and counts.max() < 600  # uniform: 500 ± ~5 standard deviations
    # The default-labels sample is the sample of the drawn labels with the same noise.
    labels = conditioning.draw_or_check_labels(model, 6, seed=4)
    np.testing.assert_allclose(model.sample(6, seed=4), model.sample(6, labels=labels, seed=4), atol=1e-6)


@pytest.mark.parametrize("labels, message", BAD_LABELS)
def test_bad_labels_are_clear_errors(labels, message):
    model = tfgen.get_model("cgan", "tiny", seed=0)
    with pytest.raises(ValueError, match=message):
        model.sample(2, labels=labels)


def test_images_without_labels_fail_before_training():
    model = tfgen.get_model("cgan", "tiny", seed=0)
    model.default_compile()
    images_only = tf.data.Dataset.from_tensor_slices(np.zeros((4, 28, 28, 1), "float32")).batch(2)
    with pytest.raises(ValueError, match="requires labels: batches must be \\(images, labels\\)"):
        model.fit(images_only, verbose=0)


def test_training_rejects_labels_beyond_num_classes_before_building(tmp_path):
    from tfgen.training import train

    with pytest.raises(ValueError, match="labels up to 9.*num_classes=5"):
        train("cgan", "tiny", epochs=1, out=tmp_path / "run", overrides={"num_classes": 5})
    assert not (tmp_path / "run").exists()


def test_interpolation_ends_are_the_two_classes_at_the_same_noise():
    model = tfgen.get_model("cgan", "tiny", seed=0)
    path = np.asarray(model.interpolate(2, 5, steps=4, n=3, seed=9))
    assert path.shape == (3, 4, 28, 28, 1)
    np.testing.assert_allclose(path[:, 0], model.sample(3, labels=2, seed=9), atol=1e-5)
    np.testing.assert_allclose(path[:, -1], model.sample(3, labels=5, seed=9), atol=1e-5)
    with pytest.raises(ValueError, match=r"must be in \[0, 10\)"):
        model.interpolate(2, 11)


def test_mlp_preset_is_the_documents_gan_with_the_label_added():
    model = tfgen.get_model("cgan", "mlp")
    assert model.latent_dim == 100 and model.generator.output_shape == (None, 28, 28, 1)
    dense = [l.units for l in model.discriminator.layers if l.__class__.__name__ == "Dense"]
    assert dense == [1024, 512, 256, 128, 64, 1]  # the last is ψ of the projection head


@pytest.mark.learning
def test_conditional_samples_show_the_requested_digit(digits, evaluator):
    """A classifier trained on real digits reads the requested class in the cGAN's samples.

    Chance is 10%. After 150 steps of 64 (1.1 epochs of the 8.5k digits) the `default`
    preset measured 92.4%, 89.8% and 95.8% (seeds 0, 1, 2; worst class 28%); two epochs
    reach 97–99%. The bound 75% leaves room for seed noise yet fails for a generator that
    ignores the label (10%) or that gets three classes wrong.
    """
    x_train, y_train, _, _ = digits
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=0).batch(64, True)
    model = tfgen.get_model("cgan", "default", seed=0)
    model.default_compile()
    model.fit(ds.take(150), epochs=1, verbose=0)
    requested = np.repeat(np.arange(10), 50)
    predicted = evaluator.predict_labels(model.sample(len(requested), labels=requested, seed=1))
    per_class = [np.mean(predicted[requested == c] == c) for c in range(10)]
    assert np.mean(predicted == requested) > 0.75, np.round(per_class, 2)


@pytest.mark.parametrize("d_conditioning", ["projection", "concat"])
def test_small_data_options_train_round_trip_and_sample_the_averaged_generator(d_conditioning, random_batches,
                                                                              tmp_path):
    from model_checks import assert_roundtrip
    from tfgen.layers.spectral_norm import SpectralNorm

    model, history = train_tiny("cgan", random_batches, d_conditioning=d_conditioning, ema_decay=0.9,
                                diff_augment="color,translation,cutout", r1_gamma=1.0, r1_every=2, spectral_norm=True)
    assert all(np.isfinite(v).all() for v in history.values())
    wrapped = {l.layer.name for l in model.discriminator.layers if isinstance(l, SpectralNorm)}
    # The label enters D through the projection's class embedding (normalised, as Miyato & Koyama do)
    # or as a per-class input channel (left alone: it is an input of D, not a map of its input).
    assert ("logit_class_embedding" in wrapped) == (d_conditioning == "projection")
    assert "label_map" not in wrapped
    images, labels = next(iter(random_batches))
    assert_roundtrip(model, images, tmp_path, labels=labels)
    noise = tf.random.stateless_normal([3, model.latent_dim], seed=[5, 0])
    averaged = (model.ema_generator([noise, tf.constant([4, 4, 4])]) + 1) / 2
    np.testing.assert_allclose(model.sample(3, labels=4, seed=5), averaged, atol=1e-6)
    # interpolate draws with the same generator as sample: its ends are sample's images.
    np.testing.assert_allclose(model.interpolate(4, 6, steps=3, n=3, seed=5)[:, 0], averaged, atol=1e-5)


def test_training_logs_each_class_sample_diversity(tmp_path):
    import csv

    from tfgen.training import train

    run = train("cgan", "tiny", dataset="mnist_bundled", epochs=1, batch_size=32, limit=64, verbose=0,
                out=tmp_path / "run")
    row = next(csv.DictReader(open(run / "history.csv")))
    values = [float(row[f"diversity_{c}"]) for c in range(10)]
    assert float(row["diversity_min"]) == pytest.approx(np.nanmin(values))
    assert all(v >= 0 for v in values if np.isfinite(v))
