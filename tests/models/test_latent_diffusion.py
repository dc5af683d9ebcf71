"""Latent diffusion: the autoencoder's shapes and loss by hand, the latent scale, the two training stages."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgen
from tfgen.layers import autoencoder


@pytest.mark.parametrize("shape, latent", [((28, 28, 1), (7, 7)), ((32, 32, 3), (8, 8)), ((48, 48, 3), (12, 12)),
                                           ((64, 64, 3), (16, 16)), ((32, 32, 1), (8, 8)), ((48, 64, 3), (12, 16))])
def test_autoencoder_maps_images_to_latents_4_times_smaller_and_back(shape, latent):
    encoder = autoencoder.build_encoder(shape, latent_channels=4, channels=(8, 8, 16))
    decoder = autoencoder.build_decoder(shape, latent_channels=4, channels=(8, 8, 16))
    z_mean, z_log_var = encoder(np.zeros((2, *shape), "float32"))
    assert z_mean.shape == z_log_var.shape == (2, *latent, 4)
    assert decoder(z_mean).shape == (2, *shape)


def test_autoencoder_loss_by_hand():
    images = np.zeros((2, 4, 4, 1), "float32")
    reconstruction = np.full((2, 4, 4, 1), 0.25, "float32")
    # Per image 4 latent elements: μ = 1, log σ² = 0 (KL ½ each) and μ = 0, σ² = 2 (KL ½ (2 − 1 − ln 2)).
    z_mean = np.array([[1.0, 1.0, 0.0, 0.0]] * 2, "float32").reshape(2, 1, 2, 2)
    z_log_var = np.array([[0.0, 0.0, math.log(2), math.log(2)]] * 2, "float32").reshape(2, 1, 2, 2)
    values = autoencoder.autoencoder_losses(images, reconstruction, z_mean, z_log_var, kl_weight=0.5)
    kl = 2 * 0.5 + 2 * 0.5 * (2 - 1 - math.log(2))
    assert float(values["recon_loss"]) == pytest.approx(0.25)
    assert float(values["kl_loss"]) == pytest.approx(kl, rel=1e-6)
    assert float(values["ae_loss"]) == pytest.approx(0.25 + 0.5 * kl / 16, rel=1e-6)  # 16 pixel values per image


@pytest.mark.parametrize("size", [30, 36, 12, 26])
def test_sizes_without_a_usable_latent_are_refused_in_one_line(size):
    cls = tfgen.get_model_class("latent_diffusion")
    # 30 and 26 do not divide by 4; 36 gives 9×9 latents (no halving to 4–8); 12 gives 3×3.
    message = rf"^LatentDiffusion cannot use {size}×{size} images: .*\(e\.g\. 28, 32, 48, 64, 48×64\)$"
    with pytest.raises(ValueError, match=message):
        cls.check_image_size((size, size, 3), **cls.PRESETS["default"])
    for usable in (16, 28, 32, 40, 48, 56, 64):
        assert cls.check_image_size((usable, usable, 3)) == (usable, usable, 3)


def test_the_process_runs_in_latent_space():
    model = tfgen.get_model("latent_diffusion", "tiny", seed=0, image_shape=(32, 32, 3))
    assert model.sample_shape == (8, 8, 4) and not model.clip_denoised
    assert model.network.input[0].shape[1:] == (8, 8, 4)
    # The hooks: images → scaled latents → images.
    model.latent_scale.assign(2.0)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    z_mean, _ = model.encoder(images)
    np.testing.assert_allclose(model.to_model_space(images), 2.0 * z_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.to_images(2.0 * z_mean), np.clip(model.decoder(z_mean), 0, 1), rtol=1e-5)


def test_latent_scale_is_one_over_the_std_of_the_autoencoder_stages_latents():
    model = tfgen.get_model("latent_diffusion", "tiny", seed=0)
    model.default_compile()
    rng = np.random.default_rng(0)
    batches = [rng.normal(0.5, s, (4, 7, 7, 4)).astype("float32") for s in (2.0, 3.0)]
    for step, z in enumerate(batches, 1):
        model.autoencoder_optimizer.iterations.assign(step)  # as after the step's update
        model.update_latent_scale(z)
    # The first steps average plainly (the initial values never count): the std of both batches together.
    both = np.concatenate(batches).astype("float64")
    assert float(model.latent_scale) == pytest.approx(1 / both.std(), rel=1e-5)
    # Later steps average over ~100 steps: one new batch moves the moments by 1/100 of the way.
    moments = model.latent_moments.numpy()
    model.autoencoder_optimizer.iterations.assign(500)
    model.update_latent_scale(np.zeros((4, 7, 7, 4), "float32"))
    np.testing.assert_allclose(model.latent_moments.numpy(), 0.99 * moments, rtol=1e-6)


class WeightLog(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.log.append(({"ae": [w.numpy() for w in self.model.autoencoder_variables],
                          "unet": [w.numpy() for w in self.model.network.trainable_variables]}, dict(logs)))


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_fit_trains_the_autoencoder_then_only_the_denoiser_and_resumes_in_its_stage(random_batches, tmp_path):
    model = tfgen.get_model("latent_diffusion", "tiny", seed=0, autoencoder_steps=2)
    model.default_compile()  # compiled: one traced step per stage (`make_train_function`)
    log = WeightLog()
    log.log = [({"ae": [w.numpy() for w in model.autoencoder_variables],
                 "unet": [w.numpy() for w in model.network.trainable_variables]}, {})]
    history = model.fit(random_batches.take(4), verbose=0, callbacks=[log]).history
    stages = []
    for (before, _), (after, logs) in zip(log.log, log.log[1:]):
        stages.append((changed(before["ae"], after["ae"]), changed(before["unet"], after["unet"])))
    # Steps 1–2 train the autoencoder only; 3–4 the denoiser only (the decoder stays frozen).
    assert stages == [(True, False), (True, False), (False, True), (False, True)]
    assert history["stage"] == [1.5] and log.log[2][1]["stage"] == 1.0
    assert (int(model.autoencoder_optimizer.iterations), int(model.optimizer.iterations)) == (2, 2)
    assert float(model.latent_scale) != 1.0

    # A reloaded model continues in the latent stage, with the same scale.
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert float(loaded.latent_scale) == float(model.latent_scale)
    ae = [w.numpy() for w in loaded.autoencoder_variables]
    loaded.fit(random_batches.take(1), verbose=0)
    assert not changed(ae, [w.numpy() for w in loaded.autoencoder_variables])
    assert int(loaded.optimizer.iterations) == 3


def test_train_step_alone_switches_stage_with_a_cond(random_batches):
    """For custom loops on one device: `train_step` (a tf.cond on the step count) in one compiled function."""
    model = tfgen.get_model("latent_diffusion", "tiny", seed=0, autoencoder_steps=1)
    model.default_compile()
    step = tf.function(model.train_step)
    batch = next(iter(random_batches))
    assert float(step(batch)["stage"]) == 1.0
    assert float(step(batch)["stage"]) == 1.5  # the mean over both steps
    assert (int(model.autoencoder_optimizer.iterations), int(model.optimizer.iterations)) == (1, 1)


def test_without_an_autoencoder_optimizer_compile_gives_the_first_stage_a_copy():
    model = tfgen.get_model("latent_diffusion", "tiny", seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    assert isinstance(model.autoencoder_optimizer, keras.optimizers.SGD)
    assert model.autoencoder_optimizer is not model.optimizer
    assert float(model.autoencoder_optimizer.learning_rate) == pytest.approx(0.01)


def test_labels_guidance_and_the_export_work_in_latent_space(tmp_path):
    from model_checks import assert_export_samples

    model = tfgen.get_model("latent_diffusion", "tiny", seed=0, image_shape=(32, 32, 3))
    images = model.sample(3, labels=[0, 1, -1], steps=3, guidance=2.0, seed=1)
    assert images.shape == (3, 32, 32, 3)
    np.testing.assert_allclose(model.sample(2, labels=-1, steps=3, seed=5), model.sample(2, steps=3, seed=5), atol=1e-5)
    assert_export_samples(model, tmp_path / "export")


# ---------------------------------------------------------------------- the latent cache
class EncoderGuard:
    """Stands in for a model's encoder and refuses to run once the model's latent cache is filled."""

    def __init__(self, model):
        self.model, self.encoder = model, model.encoder

    def __call__(self, *args, **kwargs):
        cache = self.model.latent_cache
        assert cache is None or not cache.filled, "the encoder ran in the latent stage"
        return self.encoder(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.encoder, name)


def examples_of(images, labels):
    from tfgen.data import DatasetInfo, Examples

    info = DatasetInfo(name="test", image_shape=images.shape[1:], num_classes=10, num_examples=len(images))
    return Examples((images * 255).round().astype("uint8"), labels, info)


@pytest.fixture
def tiny_examples():
    rng = np.random.default_rng(0)
    return examples_of(rng.random((24, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 24).astype(np.int32))


def test_the_latent_stage_reads_the_posteriors_encoded_once_not_the_encoder(tiny_examples):
    from tfgen.data.pipeline import training_batches

    model = tfgen.get_model("latent_diffusion", "tiny", seed=0, autoencoder_steps=2)
    model.default_compile()
    assert model.prepare_training_data(tiny_examples, "flip")
    object.__setattr__(model, "encoder", EncoderGuard(model))
    batches = training_batches(tiny_examples, 8, seed=0, steps=5, augment="flip", with_ids=True)
    model.fit(batches, steps_per_epoch=5, verbose=0)
    assert model.latent_cache.filled
    assert (int(model.autoencoder_optimizer.iterations), int(model.optimizer.iterations)) == (2, 3)
    # Rows: each image's posterior, then its mirror image's, encoded from the mirrored pixels.
    images = tf.cast(tiny_examples.images, tf.float32) / 255
    mean, log_var = model.latent_cache.lookup(tf.range(48))
    for rows, pixels in ((slice(0, 24), images), (slice(24, 48), tf.reverse(images, axis=[2]))):
        z_mean, z_log_var = model.encoder.encoder(pixels, training=False)
        np.testing.assert_allclose(mean[rows], z_mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(log_var[rows], autoencoder.clamp_log_var(z_log_var), rtol=1e-4, atol=1e-5)


def test_cached_latents_give_what_encoding_the_batch_gives_for_the_same_noise(tiny_examples):
    from tfgen.data.pipeline import training_batches

    model = tfgen.get_model("latent_diffusion", "tiny", seed=0)
    model.latent_scale.assign(1.7)
    model.use_latent_cache(tiny_examples.images, flip=True)
    model.latent_cache.fill(model.encoder)
    batch = next(iter(training_batches(tiny_examples, 8, seed=0, steps=1, augment="flip", with_ids=True)))
    assert int(tf.reduce_max(batch["example_ids"])) >= 24 or int(tf.reduce_min(batch["example_ids"])) < 24
    state = model.seed_generator.state.numpy()
    cached, labels = model.training_batch(batch)
    model.seed_generator.state.assign(state)
    encoded, _ = model.training_batch((batch["images"], batch["labels"]))  # no ids: the encoder
    np.testing.assert_allclose(cached, encoded, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, batch["labels"])
    # The draw is z ~ q(z | x), not the mean: the scaled means differ.
    assert not np.allclose(cached, model.encode(batch["images"]), atol=1e-6)


def test_too_many_images_for_the_cache_falls_back_to_encoding_each_batch(tiny_examples, monkeypatch):
    from tfgen.layers import latent_cache

    model = tfgen.get_model("latent_diffusion", "tiny", seed=0)
    monkeypatch.setattr(latent_cache, "MAX_BYTES", latent_cache.table_bytes(24, (28, 28, 1), 4) - 1)
    with pytest.warns(UserWarning, match="encodes every batch instead"):
        assert not model.prepare_training_data(tiny_examples)
    assert model.latent_cache is None


# ---------------------------------------------------------------------- the first stage from an earlier run
def test_load_autoencoder_copies_the_first_stage_and_skips_it(random_batches, tmp_path):
    source = tfgen.get_model("latent_diffusion", "tiny", seed=0, autoencoder_steps=2)
    source.default_compile()
    source.fit(random_batches.take(2), verbose=0)
    source.save(tmp_path / "source.keras")

    model = tfgen.get_model("latent_diffusion", "tiny", seed=1)
    model.default_compile()
    model.load_autoencoder(tmp_path / "source.keras")
    assert model.autoencoder_steps == 0 and model.get_config()["autoencoder_steps"] == 0
    assert float(model.latent_scale) == float(source.latent_scale)
    for mine, theirs in zip(model.encoder.weights + model.decoder.weights, source.encoder.weights + source.decoder.weights):
        np.testing.assert_array_equal(mine, theirs)
    ae = [w.numpy() for w in model.autoencoder_variables]
    model.fit(random_batches.take(1), verbose=0)  # the latent stage at once
    assert (int(model.autoencoder_optimizer.iterations), int(model.optimizer.iterations)) == (0, 1)
    assert not changed(ae, [w.numpy() for w in model.autoencoder_variables])


@pytest.mark.parametrize("source, message", [
    (lambda: tfgen.get_model("diffusion", "tiny"), r"holds a Diffusion model, which has no autoencoder"),
    (lambda: tfgen.get_model("latent_diffusion", "tiny", image_shape=(32, 32, 1)),
     r"does not fit this model: its image shape \(32, 32, 1\) \(this model: \(28, 28, 1\)\)$"),
    (lambda: tfgen.get_model("latent_diffusion", "tiny", latent_channels=3),
     r"does not fit this model: its latent_channels 3 \(this model: 4\)$"),
])
def test_load_autoencoder_refuses_a_source_that_does_not_fit_in_one_line(source, message, tmp_path):
    model = tfgen.get_model("latent_diffusion", "tiny", seed=0)
    source = source()
    source.save(tmp_path / "source.keras")
    with pytest.raises(ValueError, match=message) as err:
        model.load_autoencoder(tmp_path / "source.keras")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- through `tfgen train`
TRAIN = ["--preset", "tiny", "--dataset", "mnist_bundled", "--limit", "64", "--batch-size", "16", "--verbose", "0",
         "--sample-every", "100"]


@pytest.fixture(scope="module")
def fills():
    """The number of times a latent cache was filled (encoded), counted across the module's runs."""
    from tfgen.layers.latent_cache import LatentCache

    count, fill = [0], LatentCache.fill

    def counting(self, encoder):
        count[0] += 1
        return fill(self, encoder)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LatentCache, "fill", counting)
        yield count


@pytest.fixture(scope="module")
def latent_run(tmp_path_factory, fills):
    """A tiny run of 2 autoencoder steps and 1 latent step, checkpointed at step 3, resumed to step 5."""
    from tfgen.cli import main

    out = tmp_path_factory.mktemp("runs") / "latent"
    assert main(["train", "latent_diffusion", *TRAIN, "--steps", "3", "--augment", "flip", "--out", str(out)]) == 0
    filled_in_run = fills[0]
    checkpoint = keras.saving.load_model(out / "checkpoints" / "last.keras")
    assert main(["train", "--resume", str(out), "--steps", "5", "--verbose", "0"]) == 0
    return out, checkpoint, filled_in_run, fills[0]


def test_tfgen_train_encodes_once_per_process_and_resumes_in_the_latent_stage(latent_run):
    from tfgen.runs import load_run

    out, checkpoint, filled_in_run, filled_after_resume = latent_run
    # Filled when the latent stage began, then again by the resumed process (the table is not saved).
    assert (filled_in_run, filled_after_resume) == (1, 2)
    assert (int(checkpoint.autoencoder_optimizer.iterations), int(checkpoint.optimizer.iterations)) == (2, 1)
    final = load_run(out)
    assert (int(final.autoencoder_optimizer.iterations), int(final.optimizer.iterations)) == (2, 3)
    assert not changed([w.numpy() for w in checkpoint.autoencoder_variables],
                       [w.numpy() for w in final.autoencoder_variables])


def test_autoencoder_from_an_earlier_run_trains_only_the_latent_model(latent_run, tmp_path):
    import json

    from tfgen.cli import main
    from tfgen.runs import load_run

    source, out = latent_run[0], tmp_path / "second"
    assert main(["train", "latent_diffusion", *TRAIN, "--steps", "2", "--autoencoder-from", str(source),
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["autoencoder_from"] == str(source.resolve()) and config["config"]["autoencoder_steps"] == 0
    model, earlier = load_run(out), load_run(source)
    assert (int(model.autoencoder_optimizer.iterations), int(model.optimizer.iterations)) == (0, 2)
    assert not changed([w.numpy() for w in earlier.autoencoder_variables],
                       [w.numpy() for w in model.autoencoder_variables])
    assert float(model.latent_scale) == float(earlier.latent_scale)


@pytest.mark.parametrize("args, message", [
    (["latent_diffusion", "--image-size", "32"], r"does not fit this model: its image shape \(28, 28, 1\) \(this "
                                                 r"model: \(32, 32, 1\)\)"),
    (["vae"], r"--autoencoder-from needs a latent model \(e\.g\. latent_diffusion\); vae has no autoencoder"),
])
def test_autoencoder_from_a_source_that_does_not_fit_is_one_line(latent_run, args, message, tmp_path, capsys):
    from tfgen.cli import main

    assert main(["train", *args, *TRAIN, "--steps", "1", "--autoencoder-from", str(latent_run[0]),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfgen: error: ") and "\n" not in err
    assert re.search(message, err)
