"""Training health figures (tfgen.health): each family's figures, their warnings, history.csv and `tfgen eval`."""

import csv
import io

import numpy as np
import pytest

from tfgen.health import BitsGap, Diversity, Health, HealthData, NoiseBands, Reading, evaluation_figures
from tfgen.registry import get_model_class


def fixed_data(shape=(28, 28, 1), n=120, classes=10, seed=0):
    """Random images and labels, split into train and held-out halves."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, *shape), dtype=np.float32), (np.arange(n) % classes).astype(np.int32)
    return HealthData.from_arrays(x[:n // 2], y[:n // 2], x[n // 2:], y[n // 2:], classes)


def measured(model, data, epochs=1):
    """(logs of the last epoch, warning lines) of a `Health` callback over `epochs` epochs."""
    stream, logs = io.StringIO(), {}
    monitor = Health(model.health_checks(), data, stream=stream)
    monitor.set_model(model)
    monitor.on_train_begin()
    for epoch in range(epochs):
        monitor.on_epoch_end(epoch, logs)
    return logs, stream.getvalue().splitlines()


def tiny(name, **overrides):
    model = get_model_class(name).from_preset("tiny", **overrides)
    model.default_compile()
    return model


def test_pick_takes_a_fixed_random_subset_and_each_class_first_images():
    rng = np.random.default_rng(1)
    x, y = rng.random((600, 4, 4, 1), dtype=np.float32), np.repeat(np.arange(3), 200).astype(np.int32)
    a, b = (HealthData.from_arrays(x, y, x[:10], y[:10], 3, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.train[0], b.train[0])  # the same images every time
    assert len(a.train[0]) == 256 and set(a.train[1]) == {0, 1, 2}  # not the first 256 of a sorted folder
    assert len(a.held_out[0]) == 10
    np.testing.assert_array_equal(np.bincount(a.per_class[1]), [32, 32, 32])


def test_a_vae_whose_decoder_ignores_z_has_no_active_units_and_warns_once():
    # Posterior collapse: every image gets the same posterior (the encoder's mean head outputs its
    # bias), which is what the KL term leaves when the decoder makes no use of z.
    model = tiny("vae", latent_dim=8)
    head = model.encoder.get_layer("z_mean")
    head.kernel.assign(np.zeros(head.kernel.shape, np.float32))
    logs, lines = measured(model, fixed_data(), epochs=2)
    assert logs["active_units"] == 0 and logs["active_fraction"] == 0.0
    assert 0 <= logs["kl_min"] <= logs["kl_max"]
    assert len(lines) == 1 and "epoch 1" in lines[0] and "0 of 8 latent dimensions are active" in lines[0]


def test_a_vae_whose_posterior_means_follow_the_images_has_active_units():
    model = tiny("cvae", latent_dim=4)
    rng = np.random.default_rng(0)
    # Very different images (blank and full, half each) move every posterior mean.
    x = np.repeat(np.array([0.0, 1.0], np.float32), 60)[:, None, None, None] * np.ones((1, 28, 28, 1), np.float32)
    x = x[rng.permutation(120)]
    data = HealthData.from_arrays(x, np.arange(120) % 10, x, np.arange(120) % 10, 10)
    check = model.health_checks()[0]
    check.prepare(model, data)
    reading = check.measure(model, 0)
    assert reading.scalars["active_units"] > 0 and reading.scalars["active_units"] == np.sum(
        reading.vectors["posterior_mean_variance"] > check.ACTIVE)
    assert reading.vectors["kl_per_dim"].shape == (4,)


@pytest.mark.parametrize("name", ["diffusion", "flow"])
def test_noise_bands_are_four_fixed_losses_and_a_rise_warns(name):
    model = tiny(name)
    data = fixed_data()
    logs, lines = measured(model, data, epochs=2)
    assert sorted(logs) == ["loss_t0", "loss_t1", "loss_t2", "loss_t3"]
    assert all(np.isfinite(v) and v > 0 for v in logs.values())
    assert lines == []  # the same weights, images, times and noise: the same losses, no rise
    check = NoiseBands()
    check.prepare(model, data)
    first = check.measure(model, 0).scalars
    check.best = np.array([first["loss_t0"] / 2, *[np.inf] * 3])  # as if band t0 had been half as high
    reading = check.measure(model, 1)
    assert reading.scalars == first and "noise band t0" in reading.problem


def test_noise_bands_wait_for_the_denoiser_of_latent_diffusion():
    model = tiny("latent_diffusion")
    logs, lines = measured(model, fixed_data(), epochs=1)
    assert sorted(logs) == ["loss_t0", "loss_t1", "loss_t2", "loss_t3"]
    assert all(np.isnan(v) for v in logs.values()) and lines == []  # still in the autoencoder stage


def test_autoregressive_train_and_held_out_bits_and_their_gap():
    model = tiny("pixelcnn")
    logs, _ = measured(model, fixed_data())
    assert sorted(logs) == ["bits_per_dim_gap", "heldout_bits_per_dim", "train_bits_per_dim"]
    assert logs["bits_per_dim_gap"] == pytest.approx(logs["heldout_bits_per_dim"] - logs["train_bits_per_dim"])
    assert 0 < logs["train_bits_per_dim"] < 2  # binary pixels: about 1 bit each at initialisation


@pytest.mark.parametrize("held_out, warns", [(1.5, True), (1.05, False)])
def test_bits_gap_warns_on_a_large_and_significant_gap(held_out, warns):
    check = BitsGap()
    check.data = fixed_data()
    rng = np.random.default_rng(0)
    values = iter([1.0 + 0.01 * rng.standard_normal(64), held_out + 0.01 * rng.standard_normal(64)])
    check.bits = lambda model, images, labels: next(values)
    assert bool(check.measure(None, 0).problem) == warns


class OneImageGenerator:
    """An unconditional generator that draws the same image every time: zero diversity."""

    image_shape, num_classes, accepts_labels = (12, 12, 1), 1, False

    def sample(self, n, seed=None):
        return np.full((n, *self.image_shape), 0.5, np.float32)

    def health_checks(self):
        return [Diversity(n=8)]


def test_an_unconditional_generator_that_draws_one_image_has_zero_diversity_and_warns_each_epoch():
    logs, lines = measured(OneImageGenerator(), fixed_data((12, 12, 1), classes=1), epochs=2)
    assert list(logs) == ["diversity"] and logs["diversity"] == pytest.approx(0.0, abs=1e-6)
    assert len(lines) == 2 and "mode collapse" in lines[1]  # repeated while it lasts, as the per-class one


def test_vectors_go_to_tensorboard_and_resumed_runs_keep_their_columns(tmp_path):
    class Check:
        repeat_warning = from_samples = False

        def prepare(self, model, data):
            pass

        def measure(self, model, epoch):
            return Reading({"old": 1.0, "new": 2.0}, {"vector": np.arange(3.0)})

    monitor = Health([Check()], None, log_dir=tmp_path, columns=["epoch", "old"])
    monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    monitor.on_train_end()
    assert logs == {"old": 1.0}
    assert list((tmp_path / "health").iterdir())  # the histogram's event file


@pytest.mark.parametrize("name, columns", [("vae", {"active_units", "active_fraction", "kl_min", "kl_max"}),
                                           ("diffusion", {"loss_t0", "loss_t3"})])
def test_training_writes_the_figures_to_history(tmp_path, name, columns):
    from tfgen.training import train

    run = train(name, "tiny", dataset="mnist_bundled", epochs=1, batch_size=32, limit=64, verbose=0,
                out=tmp_path / "run")
    row = next(csv.DictReader(open(run / "history.csv")))
    assert columns <= set(row) and all(np.isfinite(float(row[c])) for c in columns)
    assert list((run / "logs").glob("health/*")) if name == "vae" else True  # kl_per_dim histograms


def test_evaluation_reports_family_figures_and_per_class_diversity():
    model = tiny("cvae", latent_dim=4)
    data = fixed_data()
    rng = np.random.default_rng(2)
    test = (rng.random((40, 28, 28, 1), dtype=np.float32), np.arange(40) % 10)
    labels = np.arange(40) % 10
    samples = np.asarray(model.sample(40, labels=labels, seed=0))
    result = evaluation_figures(model, data, samples, labels, test)
    assert {"active_units", "kl_per_dim", "posterior_mean_variance"} <= set(result["health"])
    assert len(result["health"]["kl_per_dim"]) == 4
    assert len(result["diversity_per_class"]) == 10 and result["diversity_min"] == min(result["diversity_per_class"])
    one_image = evaluation_figures(model, data, np.repeat(samples[:1], 40, axis=0), labels, test)
    assert one_image["diversity"] == pytest.approx(0.0, abs=1e-6)


def test_recall_per_class_by_hand():
    from tfgen.eval.metrics import recall_per_class

    grid = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0)), -1).reshape(-1, 2)  # 16 points per class
    real, real_labels = np.concatenate([grid, grid + 100]), np.repeat([0, 1, 2], [16, 16, 0])
    fake = np.concatenate([grid, np.tile(grid[:1] + 100, (16, 1))])  # class 1 collapsed to one corner
    recall = recall_per_class(real, real_labels, fake, np.repeat([0, 1], 16), num_classes=3)
    assert recall[0] == 1.0 and recall[1] == pytest.approx(1 / 16) and np.isnan(recall[2])
