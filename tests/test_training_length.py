"""How long `tfgen train` trains: exact step counts, a time budget (on a fake clock), resumes that
extend a run, the plan printed at the start, flip augmentation, and the errors for bad lengths."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from child_processes import HANG_SECONDS
from tfgen import length
from tfgen import training
from tfgen.callbacks import Throughput
from tfgen.cli import main
from tfgen.data import DatasetInfo, Examples
from tfgen.data.pipeline import training_batches
from tfgen.runs import read_run_config, read_state
from tfgen.training import resume, train

# 128 images at batch 32: 4 steps per pass; epochs of 4 steps.
TINY_RUN = dict(preset="tiny", dataset="mnist_bundled", batch_size=32, limit=128, epoch_steps=4)


class FakeClock:
    """Seconds that pass only when a training step ends (one `step_seconds` per step)."""

    def __init__(self, step_seconds: float):
        self.now, self.step_seconds = 0.0, step_seconds

    def __call__(self):
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    """`tfgen.training.clock` replaced by a FakeClock that each training step advances by 1 s."""
    clock = FakeClock(1.0)
    step_end = Throughput.on_train_batch_end

    def tick(self, batch, logs=None):  # Throughput is the first callback: later ones see the new time
        clock.now += clock.step_seconds
        step_end(self, batch, logs)

    monkeypatch.setattr(Throughput, "on_train_batch_end", tick)
    monkeypatch.setattr(training, "clock", clock)
    return clock


def iterations(path):
    return int(keras.saving.load_model(path).optimizer.iterations)


def history_epochs(run):
    return [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]


def test_steps_trains_exactly_n_steps_and_resume_extends_it_to_a_new_total(tmp_path, capsys):
    run = train("vae", steps=10, out=tmp_path / "run", verbose=2, **TINY_RUN)
    assert iterations(run / "model.keras") == 10
    assert read_state(run)["epoch"] == 3 and read_state(run)["step"] == 10  # epochs of 4, 4 and 2 steps
    config = read_run_config(run)
    assert (config["steps"], config["epochs"], config["minutes"], config["total_steps"]) == (10, None, None, 10)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png", "real.png"]
    err = capsys.readouterr().err  # the plan
    assert "plan: 128 training images (10 classes), batch 32\n      10 optimiser steps = 2.5 passes over the data\n" \
           "      every 4 steps (an epoch): validation, a sample grid, a checkpoint\n" in err
    assert "estimate:" not in err  # too short to measure

    assert resume(run, verbose=0) == run  # finished: nothing to do
    assert iterations(run / "model.keras") == 10 and len(history_epochs(run)) == 3
    assert resume(run, steps=15, verbose=0) == run
    assert iterations(run / "model.keras") == 15 and read_state(run)["step"] == 15
    assert history_epochs(run) == ["1", "2", "3", "4", "5"]  # 4 more steps, then 1
    assert read_run_config(run)["steps"] == read_run_config(run)["total_steps"] == 15
    with pytest.raises(ValueError, match="has already trained 15 steps .*; --steps 12 is fewer"):
        resume(run, steps=12, verbose=0)


def test_an_interrupted_steps_run_resumes_to_exactly_its_steps(tmp_path, monkeypatch):
    from tfgen.callbacks import AtomicCheckpoint

    save = AtomicCheckpoint.on_epoch_end

    def crash_after_epoch_2(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise RuntimeError("crash")

    with monkeypatch.context() as patch:
        patch.setattr(AtomicCheckpoint, "on_epoch_end", crash_after_epoch_2)
        with pytest.raises(RuntimeError, match="crash"):
            train("vae", steps=11, out=tmp_path / "run", verbose=0, **TINY_RUN)
    assert read_state(tmp_path / "run")["step"] == 8
    resume(tmp_path / "run", verbose=0)
    assert iterations(tmp_path / "run" / "model.keras") == 11 and read_state(tmp_path / "run")["step"] == 11


def test_minutes_stops_at_the_first_step_boundary_past_the_budget_and_writes_a_finished_run(tmp_path, fake_clock):
    # 0.125 min = 7.5 s at 1 s per step (fake): step 8 ends at 8 s, the first boundary past it.
    run = train("vae", minutes=0.125, out=tmp_path / "run", verbose=0, **TINY_RUN)
    assert iterations(run / "model.keras") == 8
    assert (read_state(run)["epoch"], read_state(run)["step"]) == (2, 8)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png", "real.png"]
    assert (run / "checkpoints" / "last.keras").exists()
    config = read_run_config(run)
    assert (config["minutes"], config["steps"], config["total_steps"]) == (0.125, None, None)

    assert resume(run, verbose=0) == run  # finished (its budget spent): nothing to do
    assert iterations(run / "model.keras") == 8
    assert resume(run, minutes=0.025, verbose=0) == run  # 1.5 s more: 2 more steps, in a short third epoch
    assert iterations(run / "model.keras") == 10 and history_epochs(run) == ["1", "2", "3"]
    assert (run / "samples" / "epoch_003.png").exists()  # the last grid
    assert resume(run, minutes=1, steps=11, verbose=0) == run  # the steps end first
    assert iterations(run / "model.keras") == 11


def test_a_run_on_a_time_budget_alone_numbers_its_epochs_without_a_total(tmp_path, fake_clock, capsys):
    train("vae", minutes=0.1, out=tmp_path / "run", verbose=2, **TINY_RUN)
    out = capsys.readouterr().out
    assert "Epoch 1\n" in out and "Epoch 2\n" in out and "Epoch 1/" not in out


def test_a_time_budget_with_fewer_steps_than_it_holds_stops_at_the_steps(tmp_path, fake_clock):
    run = train("vae", steps=5, minutes=10, out=tmp_path / "run", verbose=0, **TINY_RUN)
    assert iterations(run / "model.keras") == 5


def test_epochs_still_count_passes_one_epoch_each(tmp_path):
    run = train("vae", epochs=2, out=tmp_path / "run", verbose=0, **{**TINY_RUN, "epoch_steps": None})
    assert iterations(run / "model.keras") == 8 and history_epochs(run) == ["1", "2"]
    assert read_run_config(run)["epoch_steps"] == 4


def test_the_default_length_is_the_familys_steps_and_an_epoch_is_whole_passes_of_200_steps():
    from tfgen.catalog import family

    assert family("vae").fit_defaults["steps"] == 5 * (8499 // 64)
    nothing = {"steps": None, "epochs": None, "minutes": None}
    assert length.total_steps(nothing, 6, 660) == 660  # a folder of 400 images: 110 passes
    assert length.total_steps({**nothing, "epochs": 3}, 6, 660) == 18
    assert length.total_steps({**nothing, "minutes": 2.0}, 6, 660) is None
    assert length.epoch_length(6, 660) == 204  # 34 passes of 6 steps
    assert length.epoch_length(132, 660) == 264 and length.epoch_length(531, 5310) == 531
    assert length.epoch_length(6, 20) == 24 and length.epoch_length(6, None) == 204
    assert length.epoch_length(6, 660, passes=True) == 6


def test_the_list_shows_default_steps(capsys):
    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "660 steps, batch 64" in rows["vae"] and "5,310 steps, batch 16" in rows["gan"]


def examples(n=8):
    """n 2×3 images whose columns differ (a flip shows), labels 0..n−1 to find each one."""
    images = np.stack([np.array([[i, 2 * i, 3 * i], [4, 5, 6]], np.uint8)[..., None] for i in range(1, n + 1)])
    return Examples(images, np.arange(n), DatasetInfo("t", (2, 3, 1), n, n))


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_flip_mirrors_some_images_left_right_the_same_way_on_every_run_and_only_when_asked():
    data = examples()
    originals = data.images.numpy().astype("float32") / 255.0
    plain = batches(training_batches(data, 4, seed=0, steps=6))
    flipped = batches(training_batches(data, 4, seed=0, steps=6, augment="flip"))
    assert [y.tolist() for _, y in plain] == [y.tolist() for _, y in flipped]  # the same order
    mirrored = 0
    for (x, y), (fx, _) in zip(plain, flipped):
        np.testing.assert_array_equal(x, originals[y])  # not augmented unless asked
        for image, flipped_image, label in zip(x, fx, y):
            same = np.array_equal(flipped_image, image)
            assert same or np.array_equal(flipped_image, originals[label][:, ::-1])
            mirrored += not same
    assert 0 < mirrored < 24  # 24 coins: some of each
    again = batches(training_batches(data, 4, seed=0, steps=6, augment="flip"))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(flipped, again))


def test_with_ids_each_image_carries_its_index_plus_n_where_it_was_mirrored():
    data = examples()
    originals = data.images.numpy().astype("float32") / 255.0
    flipped = batches(training_batches(data, 4, seed=0, steps=6, augment="flip"))
    with_ids = list(training_batches(data, 4, seed=0, steps=6, augment="flip", with_ids=True))
    assert sorted(with_ids[0]) == ["example_ids", "images", "labels"]
    for (x, y), batch in zip(flipped, with_ids):
        np.testing.assert_array_equal(batch["images"], x)  # the same batches as without ids
        ids = batch["example_ids"].numpy()
        np.testing.assert_array_equal(ids % 8, y)  # labels 0..7 are the indices
        for image, i in zip(x, ids):
            np.testing.assert_array_equal(image, originals[i % 8][:, ::-1] if i >= 8 else originals[i])


def test_batches_from_a_later_step_are_the_tail_of_the_whole_sequence():
    data = examples()
    whole = batches(training_batches(data, 4, seed=3, steps=7, augment="flip"))
    tail = batches(training_batches(data, 4, seed=3, first_step=3, steps=7, augment="flip"))
    assert len(whole) == 7 and len(tail) == 4
    for (x, y), (tx, ty) in zip(whole[3:], tail):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)


def test_augment_is_kept_in_the_config_and_resume_uses_it(tmp_path, monkeypatch):
    run = train("vae", steps=4, augment="flip", out=tmp_path / "run", verbose=0, **TINY_RUN)
    assert read_run_config(run)["augment"] == "flip"
    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs.get("augment"))
        return training_batches(*args, **kwargs)

    monkeypatch.setattr(training, "training_batches", record)
    resume(run, steps=6, verbose=0)
    assert seen == ["flip"] and iterations(run / "model.keras") == 6


def test_the_time_estimate_is_printed_once_from_steps_after_the_warmup():
    import io

    from tfgen.callbacks import TimeEstimate

    clock, out = FakeClock(0.0), io.StringIO()
    estimate = TimeEstimate(2000, warmup=5, after=20, clock=clock, file=out)
    estimate.on_train_begin()
    for step in range(40):
        clock.now += 10.0 if step < 5 else 0.21  # slow first steps (tracing) are not timed
        estimate.on_train_batch_end(step)
    assert out.getvalue() == "estimate: ~7 min for 2,000 steps at 0.21 s/step\n"


def test_time_estimate_words():
    from tfgen.callbacks import TimeEstimate, duration

    assert [duration(s) for s in (45, 420, 3 * 3600)] == ["45 s", "7 min", "3.0 h"]
    assert TimeEstimate(2000).describe(0.21) == "estimate: ~7 min for 2,000 steps at 0.21 s/step"
    assert TimeEstimate(None, 300).describe(0.5) == "estimate: ~600 steps in 5 min at 0.5 s/step"
    assert TimeEstimate(2000, 60).describe(0.5).startswith("estimate: the time budget ends first, after ~120 of")


BAD_LENGTHS = [
    (["train", "vae", "--steps", "0"], "--steps must be a positive integer, got 0"),
    (["train", "vae", "--steps", "-5"], "--steps must be a positive integer, got -5"),
    (["train", "vae", "--epochs", "-1"], "--epochs must be a positive integer, got -1"),
    (["train", "vae", "--steps", "10", "--epochs", "2"], "give --steps (optimiser steps) or --epochs"),
    (["train", "vae", "--minutes", "0"], "--minutes must be a positive number, got 0.0"),
    (["train", "vae", "--minutes", "-3"], "--minutes must be a positive number"),
    (["train", "vae", "--epoch-steps", "0"], "--epoch-steps must be a positive integer"),
    (["train", "vae", "--sample-every", "0"], "--sample-every must be a positive integer"),
    (["train", "vae", "--augment", "flop"], "invalid choice: 'flop'"),
    (["train", "--resume", "somewhere", "--augment", "flip"], "--augment cannot be given with it"),
    (["train", "--resume", "somewhere", "--epoch-steps", "8"], "--epoch-steps cannot be given with it"),
    (["train", "--resume", "somewhere", "--autoencoder-from", "run"], "--autoencoder-from cannot be given with it"),
]


def test_bad_lengths_are_one_line_errors_before_tensorflow_loads():
    """Every case in one fresh interpreter, which must not have imported TensorFlow after them."""
    script = (f"import contextlib, io, sys\nfrom tfgen_cli import main\nfor argv, _ in {BAD_LENGTHS!r}:\n"
              "    err = io.StringIO()\n    with contextlib.redirect_stderr(err):\n        code = main(argv)\n"
              "    print(code, err.getvalue().strip().replace(chr(10), ' | '))\n"
              "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=HANG_SECONDS).stdout
    lines = out.splitlines()
    assert lines[-1] == "False", out
    for (argv, message), line in zip(BAD_LENGTHS, lines):
        assert line.startswith("2 tfgen") and message in line and " | " not in line, (argv, line)


def test_resume_with_fewer_epochs_than_trained_is_an_error(tmp_path, capsys):
    run = train("vae", epochs=2, out=tmp_path / "run", verbose=0, **{**TINY_RUN, "epoch_steps": None})
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    assert "has already trained 8 steps (2 epochs of 4); --epochs 1 (4 steps) is fewer" in capsys.readouterr().err


def test_a_time_budget_is_refused_across_workers(tmp_path):
    with pytest.raises(ValueError, match="--minutes cannot be used with --strategy multiworker"):
        train("vae", minutes=1, strategy="multiworker", out=tmp_path / "run", verbose=0, **TINY_RUN)
    assert not (tmp_path / "run").exists()


def test_sample_every_is_respected_and_the_last_epoch_always_gets_its_grid(tmp_path):
    run = train("vae", steps=10, sample_every=2, out=tmp_path / "run", verbose=0, **TINY_RUN)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_002.png", "epoch_003.png", "real.png"]


def test_a_new_runs_default_batch_follows_the_shape_of_its_images(tmp_path):
    """pixel_transformer's default batch: 16 for 32×32 colour images (at 64 it needed 10 GB), 64 for
    the digits; a batch asked for is kept."""
    from PIL import Image

    from tfgen.registry import get_model_class

    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    fit_defaults = get_model_class("pixel_transformer").FIT_DEFAULTS
    for dataset, asked, expected in ((f"folder:{tmp_path}", None, 16), (f"folder:{tmp_path}", 8, 8),
                                     ("mnist_bundled", None, 64)):
        config = {"dataset": dataset, "batch_size": asked, "seed": 0, "limit": 200, "data_options": {}}
        data = training._load_data(config, fit_defaults)
        assert config["batch_size"] == expected and data["steps_per_pass"] == data["info"].num_examples // expected
