"""GAN: the documents' defects stay fixed, and the GAN learns on real digits."""

import numpy as np
import pytest
import tensorflow as tf

import tfgen
from model_checks import train_tiny


def test_two_separate_optimisers_each_owning_one_network(random_batches):
    model, _ = train_tiny("gan", random_batches)
    # README defect 5: one optimiser was shared by both networks.
    assert model.d_optimizer is not model.g_optimizer
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 8


def test_both_networks_receive_gradients_and_weights_persist(random_batches):
    # Defects 1 and 3: networks re-created on every call, generator outside the tape.
    model = tfgen.get_model("gan", "tiny", seed=0)
    model.default_compile()
    g_vars, d_vars = list(model.generator.trainable_variables), list(model.discriminator.trainable_variables)
    g_before = [v.numpy().copy() for v in g_vars]
    d_before = [v.numpy().copy() for v in d_vars]
    noise = tf.random.stateless_normal([2, model.latent_dim], seed=[0, 1])
    np.testing.assert_array_equal(model.generator(noise), model.generator(noise))
    model.fit(random_batches.take(2), verbose=0)
    assert [id(v) for v in model.generator.trainable_variables] == [id(v) for v in g_vars]
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(g_before, g_vars) if v.shape.rank > 1)
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(d_before, d_vars) if v.shape.rank > 1)


def test_discriminator_loss_depends_on_the_generator():
    # Defect 4: with D fixed, changing G must change D's loss (D sees the fakes).
    model = tfgen.get_model("gan", "tiny", seed=0)
    real = tf.zeros([4, 28, 28, 1]) - 1.0
    d1 = model.compute_losses(real)["d_loss"]
    for v in model.generator.trainable_variables:
        v.assign(v + 0.5)
    d2 = model.compute_losses(real)["d_loss"]
    assert abs(float(d1) - float(d2)) > 1e-3


def test_mlp_preset_is_the_documents_architecture_at_28x28():
    model = tfgen.get_model("gan", "mlp")
    assert model.latent_dim == 100
    assert model.generator.output_shape == (None, 28, 28, 1)  # defect 2: the documents' made 32×32
    dense_units = [l.units for l in model.discriminator.layers if l.__class__.__name__ == "Dense"]
    assert dense_units == [1024, 512, 256, 128, 64, 1]
    opt = model.make_optimizer()
    assert float(opt.learning_rate) == pytest.approx(2e-4) and opt.beta_1 == pytest.approx(0.5)


@pytest.mark.learning
def test_gan_learns_to_draw_digits(digits, evaluator):
    """256 updates on real digits take samples most of the way towards the data.

    Statistic: Fréchet distance on the evaluator's features (500 samples vs the test
    split). Measured for seeds 0–2: 152 at initialisation, 35–44 after training
    (ratio 0.23–0.29); the bound 0.45 leaves room for seed noise yet fails for a
    generator that only learned the mean image (the mean digit plus noise scores 127).
    Also: samples are mostly background, as MNIST is (measured 75–85% of pixels < 0.1).
    """
    from tfgen.eval.metrics import frechet_distance

    x_train, y_train, x_test, _ = digits
    ds = tf.data.Dataset.from_tensor_slices((x_train[:4096], y_train[:4096])).shuffle(4096, seed=0).batch(32)
    model = tfgen.get_model("gan", "default", seed=0)
    model.default_compile()
    real = evaluator.features(x_test)

    def fid():
        return frechet_distance(evaluator.features(np.asarray(model.sample(500, seed=1))), real)

    before = fid()
    model.fit(ds, epochs=2, verbose=0)
    after = fid()
    assert after < 0.45 * before, (before, after)
    samples = np.asarray(model.sample(500, seed=1))
    assert (samples < 0.1).mean() > 0.6, "samples should be mostly dark background, like MNIST"


# ---------------------------------------------------------------- small-data options (issue 32)
ALL_OPTIONS = dict(diff_augment="color,translation,cutout", ema_decay=0.9, r1_gamma=1.0, r1_every=2,
                   spectral_norm=True)


class WeightLog:
    """The generator's weights before training and after every step."""

    def __init__(self, model):
        import keras

        log = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                log.weights.append([w.numpy() for w in model.generator.weights])

        self.weights = [[w.numpy() for w in model.generator.weights]]
        self.callback = Callback()


def test_ema_generator_is_the_warm_up_average_of_the_trained_generator(random_batches):
    model = tfgen.get_model("gan", "tiny", seed=0, ema_decay=0.9)
    model.default_compile()
    trained = {id(v) for v in model.generator.trainable_variables}
    # The optimiser updates the raw generator; the average is no variable of any optimiser.
    assert {id(v) for v in model.g_optimizer._trainable_variables} == trained
    assert not trained & {id(v) for v in model.ema_generator.weights}
    log = WeightLog(model)
    model.fit(random_batches.take(3), verbose=0, callbacks=[log.callback])
    expected = log.weights[0]
    for n, weights in enumerate(log.weights[1:], start=1):  # after step n: d = min(0.9, (1 + n)/(10 + n))
        d = min(0.9, (1 + n) / (10 + n))
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
    for average, weight, want in zip(model.ema_generator.weights, model.generator.weights, expected):
        if weight.trainable:
            np.testing.assert_allclose(average.numpy(), want, rtol=1e-5, atol=1e-6, err_msg=average.path)
        else:  # batch-norm statistics: the averaged generator's own, not an average of the trained one's
            assert not np.allclose(average.numpy(), want, atol=1e-5), average.path
    noise = tf.random.stateless_normal([4, model.latent_dim], seed=[2, 0])
    # `sample` draws with the average, not with the trained generator.
    np.testing.assert_allclose(model.sample(4, seed=2), (model.ema_generator(noise) + 1) / 2, atol=1e-6)
    assert not np.allclose(model.sample(4, seed=2), (model.generator(noise) + 1) / 2, rtol=0, atol=1e-6)


def test_diffaugment_shows_d_the_same_policy_on_real_and_fake_in_both_steps(random_batches, monkeypatch):
    from tfgen.layers import augment

    calls = []
    original = augment.diff_augment

    def spy(images, policy, seed):
        calls.append((int(images.shape[0]), policy))
        return original(images, policy, seed)

    monkeypatch.setattr(augment, "diff_augment", spy)
    model = tfgen.get_model("gan", "tiny", seed=0, diff_augment="translation,cutout")
    model.default_compile(run_eagerly=True)
    g_before = [v.numpy().copy() for v in model.generator.trainable_variables]
    model.fit(random_batches.take(1), verbose=0)
    # D's step: the 8 reals and 8 fakes in one call; G's step: the 8 fakes. One policy throughout.
    assert calls == [(16, "translation,cutout"), (8, "translation,cutout")]
    # G's gradient passes through the augmentation.
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(g_before, model.generator.trainable_variables))
    calls.clear()
    model.evaluate(random_batches.take(1), verbose=0)
    assert calls == []  # validation scores D on the images themselves


def test_diffaugment_off_leaves_the_discriminator_input_alone():
    model = tfgen.get_model("gan", "tiny", seed=0)
    images = tf.zeros([2, 28, 28, 1])
    assert model.diff_augment == "" and model.augment(images) is images


class LinearDiscriminator:
    """D(x) = ⟨w, x⟩ + b: ∇ₓD = w for every image, so R1 = γ/2 ‖w‖² exactly."""

    def __init__(self, model):
        import keras

        images = keras.Input(model.image_shape)
        self.network = keras.Model(images, keras.layers.Dense(1)(keras.layers.Flatten()(images)))
        self.w = self.network.layers[-1].kernel.numpy()


@pytest.mark.parametrize("diff_augment", ["", "color,translation,cutout"])
def test_r1_penalty_of_a_linear_discriminator_is_half_gamma_times_the_squared_weight_norm(diff_augment):
    model = tfgen.get_model("gan", "tiny", seed=0, r1_gamma=0.3, r1_every=4, diff_augment=diff_augment)
    model.default_compile()
    linear = LinearDiscriminator(model)
    model.discriminator = linear.network
    real = tf.random.stateless_uniform([5, 28, 28, 1], seed=[0, 1], minval=-1, maxval=1)
    expected = 0.5 * 0.3 * np.sum(linear.w**2)
    assert float(model.r1_penalty(real)) == pytest.approx(expected, rel=1e-5)
    # Lazy: every 4th D step (from the first), scaled by 4; 0 in between.
    for step, factor in ((0, 4), (1, 0), (3, 0), (4, 4)):
        model.d_optimizer.iterations.assign(step)
        assert float(model.lazy_r1(real)) == pytest.approx(factor * expected, rel=1e-5), step


def test_r1_off_adds_nothing():
    model = tfgen.get_model("gan", "tiny", seed=0)
    model.default_compile()
    assert model.lazy_r1(tf.zeros([2, 28, 28, 1])) == 0.0


def test_spectral_norm_wraps_every_conv_and_dense_layer_of_d_only():
    from tfgen.layers.spectral_norm import SpectralNorm

    model = tfgen.get_model("gan", "tiny", seed=0, spectral_norm=True)
    linear = [l for l in model.discriminator.layers if hasattr(l, "kernel") or isinstance(l, SpectralNorm)]
    assert linear and all(isinstance(l, SpectralNorm) for l in linear)
    assert not any(isinstance(l, SpectralNorm) for l in model.generator.layers)
    # The model holds the normalised D only (the plain one it was copied from is not saved with it).
    assert len(model.weights) == len(model.generator.weights) + len(model.discriminator.weights)


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_all_small_data_options_train_save_and_export_with_the_averaged_generator(precision, random_batches,
                                                                                    tmp_path):
    from model_checks import assert_export_samples, assert_finite_history, assert_roundtrip
    from tfgen.precision import dtype_policy

    with dtype_policy(precision):
        model = tfgen.get_model("gan", "tiny", seed=0, **ALL_OPTIONS)
        model.default_compile()
    history = model.fit(random_batches.take(4), validation_data=random_batches.take(1), epochs=1, verbose=0).history
    assert_finite_history(history, ["d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"])
    assert all(0 <= history[k][-1] <= 1 for k in ("d_real_accuracy", "d_fake_accuracy"))
    images = next(iter(random_batches))[0]
    loaded = assert_roundtrip(model, images, tmp_path)  # seeded samples equal: the EMA generator came back
    for a, b in zip(model.ema_generator.weights, loaded.ema_generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert_export_samples(model, tmp_path / "export")  # the endpoint draws what `sample` draws: the average


def test_small_training_sets_get_diffaugment_unless_the_user_says_otherwise(tmp_path):
    import json

    from tfgen.models.gan import GAN, SMALL_DATA_EXAMPLES
    from tfgen.training import train

    assert GAN.small_data_overrides(SMALL_DATA_EXAMPLES - 1) == {"diff_augment": "color,translation,cutout"}
    assert GAN.small_data_overrides(SMALL_DATA_EXAMPLES) == {}
    assert tfgen.get_model_class("vae").small_data_overrides(10) == {}
    run = dict(preset="tiny", dataset="mnist_bundled", epochs=1, batch_size=32, limit=64, verbose=0)

    def config(out, **overrides):
        train("gan", out=tmp_path / out, overrides=overrides, **run)
        return json.loads((tmp_path / out / "config.json").read_text())["config"]

    assert config("small")["diff_augment"] == "color,translation,cutout"
    assert config("off", diff_augment="")["diff_augment"] == ""


def test_resume_continues_the_averaged_generator_from_the_checkpoint(tmp_path):
    import keras

    from tfgen.training import resume, train

    run = dict(preset="tiny", dataset="mnist_bundled", batch_size=32, limit=64, verbose=0,
               overrides={"ema_decay": 0.9})
    whole = train("gan", epochs=2, out=tmp_path / "whole", **run)
    cut = train("gan", epochs=1, out=tmp_path / "cut", **run)
    resume(cut, epochs=2)
    a, b = (keras.saving.load_model(r / "model.keras") for r in (whole, cut))
    assert int(b.g_optimizer.iterations) == 4
    for x, y in zip(a.ema_generator.weights, b.ema_generator.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5, err_msg=x.path)
