"""Faults during training lose nothing: a NaN loss, Ctrl-C, a second writer, and runs that must repeat.

(kill -9 mid-epoch is tests/test_resume.py::test_kill_9_mid_epoch_then_resume_finishes.)
"""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from child_processes import HANG_SECONDS, let_go, start_train_held_at_step, wait_until_reached
from tfgen.callbacks import EpochSeed, NonFiniteLossError, Throughput
from tfgen.cli import main
from tfgen.training import TrainingInterrupted, resume, train

TINY_RUN = dict(preset="tiny", dataset="mnist_bundled", batch_size=32, limit=128, verbose=0)
STEPS = 128 // 32
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def poison(model, weights=None):
    """NaN into weights (all trainable ones by default): what a diverging update does."""
    for weight in model.trainable_weights if weights is None else weights:
        weight.assign(np.full(weight.shape, np.nan, "float32"))


def epochs_logged(run):
    return (run / "history.csv").read_text().count("\n") - 1


def checkpointed_epoch(run):
    return json.loads((run / "checkpoints" / "state.json").read_text())["epoch"]


def assert_checkpoint_is_good(run, epoch):
    model = keras.saving.load_model(run / "checkpoints" / "last.keras")
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)
    assert int(model.optimizer.iterations) == epoch * STEPS
    assert checkpointed_epoch(run) == epoch == epochs_logged(run)
    assert sorted(p.name for p in (run / "samples").iterdir()) == [*(f"epoch_{e:03d}.png" for e in range(1, epoch + 1)),
                                                                   "real.png"]
    assert not (run / "model.keras").exists()


def poison_at_start_of_epoch_2(monkeypatch, weights=lambda model: None):
    seed_epoch = EpochSeed.on_epoch_begin

    def diverge_in_epoch_2(self, epoch, logs=None):
        seed_epoch(self, epoch, logs)
        if epoch == 1:
            poison(self.model, weights(self.model))

    monkeypatch.setattr(EpochSeed, "on_epoch_begin", diverge_in_epoch_2)


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    poison_at_start_of_epoch_2(monkeypatch)
    with pytest.raises(NonFiniteLossError) as info:
        train("vae", epochs=3, out=tmp_path / "run", **TINY_RUN)
    message = str(info.value)
    assert "\n" not in message and "loss = nan" in message and "at epoch 2, step 1" in message
    assert f"the checkpoint of epoch 1 is kept in {tmp_path / 'run' / 'checkpoints' / 'last.keras'}" in message
    assert_checkpoint_is_good(tmp_path / "run", 1)


def test_a_nan_kernel_that_a_fused_relu_hides_from_the_loss_still_stops_at_its_step(tmp_path, monkeypatch):
    """The first conv kernel is followed by a ReLU. On oneDNN CPUs Grappler fuses Conv2D+BiasAdd+ReLU, and the
    fused ReLU maps NaN to 0: the loss stays finite. Where the ops are not fused the loss is NaN. Either way
    training stops at the step (it once ran on to the epoch's end, or not, depending on the fusion)."""
    poison_at_start_of_epoch_2(monkeypatch, weights=lambda model: model.trainable_weights[:1])
    with pytest.raises(NonFiniteLossError) as info:
        train("vae", epochs=3, out=tmp_path / "run", **TINY_RUN)
    message = str(info.value)
    assert "at epoch 2, step 1" in message, message
    assert "non-finite weights (enc_conv0/kernel)" in message or "loss = nan" in message, message
    assert_checkpoint_is_good(tmp_path / "run", 1)


def test_nan_weights_from_an_epochs_last_step_are_not_checkpointed(tmp_path, monkeypatch):
    """The loss of the step that produced NaN weights is still finite: the weight check after the step catches them."""
    count = Throughput.on_train_batch_end

    def diverge_at_end_of_epoch_2(self, batch, logs=None):
        count(self, batch, logs)
        if int(self.model.optimizer.iterations) == 2 * STEPS:
            poison(self.model)

    monkeypatch.setattr(Throughput, "on_train_batch_end", diverge_at_end_of_epoch_2)
    with pytest.raises(NonFiniteLossError,
                       match=f"non-finite weights .* at epoch 2, step {STEPS};.*checkpoint of epoch 1 is kept"):
        train("vae", epochs=3, out=tmp_path / "run", **TINY_RUN)
    assert_checkpoint_is_good(tmp_path / "run", 1)


def test_cli_exits_non_zero_when_a_diverging_learning_rate_makes_the_loss_nan(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "vae", "--preset", "tiny", "--epochs", "2", "--batch-size", "32", "--limit", "128",
                 "--set", "learning_rate=1e30", "--out", str(run), "--verbose", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("tfgen: error: training stopped: ") and "nan at epoch 1, step " in err, err
    assert "no checkpoint was written" in err
    assert not (run / "checkpoints" / "last.keras").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_in_process_once_finishes_the_epoch_twice_stops_at_once(presses, signum, tmp_path, monkeypatch):
    """Ctrl-C, and SIGTERM (kill, timeout, job schedulers) the same way."""
    count = Throughput.on_train_batch_end

    def press_ctrl_c_in_epoch_2(self, batch, logs=None):
        count(self, batch, logs)
        if int(self.model.optimizer.iterations) == STEPS + 2:
            for _ in range(presses):
                os.kill(os.getpid(), signum)

    run = tmp_path / "run"
    # Usually Python's default_int_handler; SIG_IGN when pytest was started in the background.
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with monkeypatch.context() as patch:
        patch.setattr(Throughput, "on_train_batch_end", press_ctrl_c_in_epoch_2)
        with pytest.raises(TrainingInterrupted) as info:
            train("vae", epochs=3, out=run, **TINY_RUN)
    assert {s: signal.getsignal(s) for s in before} == before  # put back
    assert info.value.signum == signum
    kept = 2 if presses == 1 else 1
    stopped = "interrupted after epoch 2 of 3" if presses == 1 else "interrupted; "
    assert str(info.value).startswith(stopped) and f"checkpoint of epoch {kept} is kept" in str(info.value)
    assert str(info.value).endswith(f"continue with: tfgen train --resume {run}")
    assert_checkpoint_is_good(run, kept)
    assert resume(run, verbose=0) == run
    assert epochs_logged(run) == 3 and checkpointed_epoch(run) == 3 and (run / "model.keras").exists()


def test_ctrl_c_stops_tfgen_train_after_a_checkpoint_that_resume_continues(tmp_path, capsys):
    """A real `tfgen train` process: while it runs, a second writer is refused (the lock); Ctrl-C
    ends it after the epoch in progress and its checkpoint, leaving no lock file; `--resume` finishes
    the run."""
    run = tmp_path / "run"
    # The child waits after step 2 of epoch 2 until the test has acted: Ctrl-C lands in epoch 2, whatever the load.
    proc, reached, go = start_train_held_at_step(
        4096 // 32 + 2, ["vae", "--preset", "tiny", "--epochs", "4", "--batch-size", "32", "--limit", "4096",
                         "--out", run, "--verbose", "0"], tmp_path, env=ENV)
    try:
        wait_until_reached(proc, reached)
        # A second writer is refused:
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{run} is being written by another running tfgen process (pid {proc.pid})" in err, err
        proc.send_signal(signal.SIGINT)
        let_go(go)
        _, stderr = proc.communicate(timeout=HANG_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert checkpointed_epoch(run) == epochs_logged(run) == 2, stderr
    assert last == (f"tfgen: interrupted after epoch 2 of 4; the checkpoint of epoch 2 is kept "
                    f"in {run / 'checkpoints' / 'last.keras'}; continue with: tfgen train --resume {run}")
    assert "Traceback" not in stderr and not (run / "model.keras").exists()
    assert not (run / ".lock").exists()  # removed by the writer as it stopped

    assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
    assert epochs_logged(run) == checkpointed_epoch(run) == 4
    assert int(keras.saving.load_model(run / "model.keras").optimizer.iterations) == 4 * (4096 // 32)


def test_sigterm_stops_tfgen_train_after_the_epoch_with_status_143_and_the_resume_command(tmp_path, monkeypatch,
                                                                                        capsys):
    count = Throughput.on_train_batch_end

    def kill_in_epoch_2(self, batch, logs=None):
        count(self, batch, logs)
        if int(self.model.optimizer.iterations) == STEPS + 1:
            os.kill(os.getpid(), signal.SIGTERM)

    run = tmp_path / "run"
    monkeypatch.setattr(Throughput, "on_train_batch_end", kill_in_epoch_2)
    assert main(["train", "vae", "--preset", "tiny", "--epochs", "3", "--batch-size", "32", "--limit", "128",
                 "--out", str(run), "--verbose", "0"]) == 143  # 128 + SIGTERM, as a shell reports a killed job
    # Health warnings (a tiny VAE's collapsed latents) may come first: the signal's own lines are what is tested.
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line and not line.startswith("warning:")]
    assert err[0] == "SIGTERM: stopping after this epoch and its checkpoint (SIGTERM again to stop now and lose this epoch)"
    assert err[-1] == (f"tfgen: interrupted after epoch 2 of 3; the checkpoint of epoch 2 is kept in "
                       f"{run / 'checkpoints' / 'last.keras'}; continue with: tfgen train --resume {run}")
    assert_checkpoint_is_good(run, 2)


DETERMINISTIC_RUN = """
import sys
import keras
import numpy as np
from tfgen.cli import main

run = sys.argv[1]
assert main(["train", "gan", "--preset", "tiny", "--epochs", "1", "--batch-size", "32", "--limit", "128",
             "--seed", "7", "--deterministic", "--out", run, "--verbose", "0"]) == 0
model = keras.saving.load_model(run + "/model.keras")
np.savez(run + "/result.npz", samples=np.asarray(model.sample(8, seed=3)), *[w.numpy() for w in model.weights])
"""


def test_deterministic_runs_in_two_processes_give_identical_weights_and_samples(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen([sys.executable, "-c", DETERMINISTIC_RUN, str(run)], env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for run in runs]
    for proc in procs:
        _, err = proc.communicate(timeout=HANG_SECONDS)
        assert proc.returncode == 0, err[-3000:]
    a, b = (np.load(run / "result.npz") for run in runs)
    assert a.files == b.files and len(a.files) > 10
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert json.loads((runs[0] / "config.json").read_text())["deterministic"] is True
    assert int(keras.saving.load_model(runs[0] / "model.keras").g_optimizer.iterations) == STEPS
    assert a["samples"].shape == (8, 28, 28, 1) and 0 <= a["samples"].min() < a["samples"].max() <= 1
