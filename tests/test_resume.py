"""Continuing training: `.keras` round trips keep all training state, and `tfgen train --resume`
continues an interrupted run (an exception, or `kill -9` in the middle of an epoch)."""

import csv
import json
import os
import shutil
import signal

import keras
import numpy as np
import pytest

import tfgen
from child_processes import start_train_held_at_step, wait_until_reached
from tfgen.callbacks import AtomicCheckpoint
from tfgen.cli import main
from tfgen.training import resume, train

MODELS = list(tfgen.list_models())
TINY_RUN = dict(preset="tiny", dataset="mnist_bundled", batch_size=32, limit=128, verbose=0)
STEPS = 128 // 32


def optimizers(model):
    """Every optimiser the model holds (a GAN has three names for two), by attribute name."""
    return {k: v for k, v in vars(model).items() if isinstance(v, keras.optimizers.Optimizer)}


def seed_states(model):
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", MODELS)
def test_keras_round_trip_keeps_what_training_needs_and_continues_identically(name, random_batches, tmp_path):
    # Eager steps: the same train_step code without tracing it twice per model (a third of the time).
    model = tfgen.get_model(name, "tiny", seed=0)
    model.default_compile(run_eagerly=True)
    model.fit(random_batches.take(1), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    loaded.run_eagerly = True

    assert loaded.get_config() == model.get_config()
    # Every weight, trainable or not (batch-norm statistics, EMA networks, ...).
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}: {a.path}")
    # Every optimiser: step counts and moments (both of a GAN's optimisers).
    assert optimizers(loaded).keys() == optimizers(model).keys() and optimizers(model)
    # One step: every optimiser stepped once, but a two-stage model (latent_diffusion) steps only its stage's.
    assert max(int(opt.iterations) for opt in optimizers(model).values()) == 1
    for key, opt in optimizers(model).items():
        restored = optimizers(loaded)[key]
        assert len(restored.variables) == len(opt.variables) > 1, key
        for a, b in zip(opt.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name} {key}: {a.path}")

    # Training continues from there exactly as the original model does. Keras does not save
    # random-generator states, so give both the same; lost Adam moments would show here.
    for a, b in zip(seed_states(model), seed_states(loaded)):
        b.assign(a)
    batch = random_batches.skip(1).take(1)
    model.fit(batch, verbose=0)
    loaded.fit(batch, verbose=0)
    steps = {key: int(opt.iterations) for key, opt in optimizers(loaded).items()}
    assert steps == {key: int(opt.iterations) for key, opt in optimizers(model).items()} and max(steps.values()) == 2
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=f"{name}: {a.path} after one more step")


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """A 3-epoch GAN run, and the same run interrupted in epoch 2 and resumed.

    A GAN: two optimisers, batch norm and fresh noise every step must all continue.
    The interruption comes after epoch 2's history row, before its checkpoint, so
    epoch 2 must be trained again and its first row dropped.
    """
    root = tmp_path_factory.mktemp("gan_runs")
    whole = train("gan", epochs=3, out=root / "whole", **TINY_RUN)
    save = AtomicCheckpoint.on_epoch_end

    def interrupt(self, epoch, logs=None):
        if epoch == 1:
            raise Interrupted
        save(self, epoch, logs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AtomicCheckpoint, "on_epoch_end", interrupt)
        with pytest.raises(Interrupted):
            train("gan", epochs=3, out=root / "cut", **TINY_RUN)
    cut = root / "cut"
    before = [r["epoch"] for r in history(cut)], (cut / "model.keras").exists()
    assert resume(cut, verbose=0) == cut
    return whole, cut, before


def test_resumed_run_trains_exactly_like_an_uninterrupted_one(gan_runs):
    whole, cut, (epochs_before, finished_before) = gan_runs
    assert epochs_before == ["1", "2"] and not finished_before
    rows, expected = history(cut), history(whole)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for got, want in zip(rows, expected):
        for key in want:
            if key not in ("epoch_seconds", "images_per_second"):
                assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-4, abs=1e-5), (got["epoch"], key)
    assert sorted(p.name for p in (cut / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png",
                                                                   "real.png"]
    assert json.loads((cut / "checkpoints" / "state.json").read_text())["epoch"] == 3
    assert not (whole / ".lock").exists() and not (cut / ".lock").exists()  # finished runs hold no lock file
    a, b = keras.saving.load_model(whole / "model.keras"), keras.saving.load_model(cut / "model.keras")
    assert int(b.d_optimizer.iterations) == int(b.g_optimizer.iterations) == 3 * STEPS
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5, err_msg=x.path)


def test_kill_9_mid_epoch_then_resume_finishes(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    per_epoch = 4096 // 32
    # The child stops after step 2 of epoch 2 and says so: it is killed there, not after a guessed delay.
    proc, reached, _ = start_train_held_at_step(
        per_epoch + 2, ["vae", "--preset", "tiny", "--epochs", "3", "--batch-size", "32", "--limit", "4096",
                        "--out", run, "--verbose", "0"], tmp_path, env=env)
    state_file = run / "checkpoints" / "state.json"
    try:
        wait_until_reached(proc, reached)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads(state_file.read_text())["epoch"] == 1 and not (run / "model.keras").exists()
    assert len(history(run)) == 1

    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert [r["epoch"] for r in history(run)] == ["1", "2", "3"]
    assert json.loads(state_file.read_text())["epoch"] == 3
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png",
                                                                   "real.png"]
    model = keras.saving.load_model(run / "model.keras")
    assert int(model.optimizer.iterations) == 3 * per_epoch
    assert not list((run / "checkpoints").glob(".*"))  # no leftover temporary files
    assert not (run / ".lock").exists()  # the killed writer's lock file, removed by the resuming one


@pytest.fixture
def finished_run(gan_runs, tmp_path):
    """A copy of a finished 3-epoch run, to damage or extend."""
    return shutil.copytree(gan_runs[1], tmp_path / "run")


def test_resume_a_finished_run_is_a_no_op_and_epochs_extend_it(finished_run):
    run = finished_run
    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert len(history(run)) == 3
    assert main(["train", "--resume", str(run), "--epochs", "4", "--verbose", "0"]) == 0
    assert [r["epoch"] for r in history(run)] == ["1", "2", "3", "4"]
    assert json.loads((run / "config.json").read_text())["epochs"] == 4
    assert int(keras.saving.load_model(run / "model.keras").optimizer.iterations) == 4 * STEPS
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2  # fewer than trained


def test_a_run_of_an_older_tfgen_with_epochs_counted_from_0_resumes_renumbered(finished_run):
    """history.csv counted epochs from 0 before it counted them like the grids: such a run still
    resumes, its rows renumbered so that the new ones follow on."""
    run = finished_run
    rows = (run / "history.csv").read_text().splitlines()
    column = rows[0].split(",").index("epoch")
    old = [rows[0]] + [",".join(str(int(v) - 1) if i == column else v for i, v in enumerate(r.split(",")))
                       for r in rows[1:]]
    (run / "history.csv").write_text("\n".join(old) + "\n")
    assert [r["epoch"] for r in history(run)] == ["0", "1", "2"]
    assert main(["train", "--resume", str(run), "--epochs", "4", "--verbose", "0"]) == 0
    assert [r["epoch"] for r in history(run)] == ["1", "2", "3", "4"]


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_checkpoint_is_a_one_line_error_naming_the_file(damage, finished_run, tmp_path, capsys):
    run = finished_run
    (run / "model.keras").unlink()  # an unfinished run: only the checkpoint
    checkpoint = run / "checkpoints" / "last.keras"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a zip file" * 100)
    # --checkpoint last: without it, export and sample use the run's best epoch (best/, a GAN's by default).
    for argv in (["train", "--resume", str(run)], ["export", str(run), "--out", str(tmp_path / "x"), "--checkpoint",
                                                   "last"], ["sample", str(run), "--out", str(tmp_path / "x.png"),
                                                             "--checkpoint", "last"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("tfgen: error:") and str(checkpoint) in err and err.count("\n") == 1, err
        assert "truncated" in err


def test_resume_errors_are_one_line(finished_run, tmp_path, capsys):
    run = finished_run
    (run / "checkpoints" / "state.json").write_text("{\"epo")
    cases = [
        (["train", "--resume", str(run)], "state.json is corrupt"),
        (["train", "--resume", str(tmp_path / "nope")], "not found"),
        (["train", "gan", "--resume", str(run)], "MODEL cannot be given"),
        (["train", "--resume", str(run), "--preset", "tiny"], "--preset cannot be given"),
        (["train"], "train needs a MODEL"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("tfgen: error:") and message in err and err.count("\n") == 1, err
