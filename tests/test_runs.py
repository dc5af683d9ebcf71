"""A run directory in the format tfgen has always written (`tfgen.runs`) still loads and resumes.

The directory is written here file by file, as `tfgen train` wrote it before `tfgen.runs`
existed (an interrupted 2-epoch run, checkpointed after epoch 1, with the `.lock` file those
versions left behind), so a change to the format that breaks old runs fails here.
"""

import csv
import json

import keras
import numpy as np

import tfgen
import tfgen.data
from tfgen.runs import load_run, read_run_config, read_state
from tfgen.training import resume

HISTORY_HEADER = ("epoch,epoch_seconds,images_per_second,kl_loss,loss,reconstruction_loss,val_kl_loss,val_loss,"
                  "val_reconstruction_loss")


def write_old_run(run):
    net = tfgen.get_model("vae", "tiny", image_shape=(28, 28, 1), num_classes=10, seed=0)
    net.default_compile()
    net.fit(tfgen.data.load("mnist_bundled", "train", 32, limit=64, drop_remainder=True), epochs=1, verbose=0)
    (run / "checkpoints").mkdir(parents=True)
    (run / "samples").mkdir()
    net.save(run / "checkpoints" / "last.keras")
    logs = {"epoch_seconds": 2.9, "images_per_second": 22.0, "kl_loss": 0.017, "loss": 545.27,
            "reconstruction_loss": 545.25, "val_kl_loss": 0.010, "val_loss": 544.02, "val_reconstruction_loss": 544.01}
    (run / "checkpoints" / "state.json").write_text(json.dumps({"epoch": 1, "logs": logs}, indent=2))
    (run / "history.csv").write_text(f"{HISTORY_HEADER}\n0,{','.join(str(v) for v in logs.values())}\n")
    config = {"batch_size": 32, "data_dir": None, "dataset": "mnist_bundled", "deterministic": False, "epochs": 2,
              "jit_compile": False, "limit": 64, "manual_dir": None, "model": "vae", "precision": "float32",
              "preset": "tiny", "sample_every": 1, "seed": 0, "strategy": "auto", "config": net.get_config(),
              "versions": {"keras": "3.15.1", "python": "3.11.7", "tensorflow": "2.21.0", "tfgen": "0.1.0"}}
    (run / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (run / ".lock").write_text("12345\n")  # the pid of a writer long gone
    return config


def test_a_run_directory_in_the_old_format_loads_and_resumes(tmp_path):
    run = tmp_path / "old"
    config = write_old_run(run)
    assert read_run_config(run) == json.loads(json.dumps(config)) and read_state(run)["epoch"] == 1
    assert type(load_run(run)).__name__ == "VAE"  # no model.keras yet: the checkpoint

    assert resume(run, verbose=0) == run
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["loss"]) > 0  # the old 0-based row renumbered
    assert read_state(run)["epoch"] == 2 and (run / "samples" / "epoch_002.png").exists()
    assert read_run_config(run) == json.loads(json.dumps(config))  # resume does not rewrite the config
    assert int(keras.saving.load_model(run / "model.keras").optimizer.iterations) == 2 * (64 // 32)
    assert not (run / ".lock").exists()


def test_old_relative_data_paths_are_found_next_to_the_run_else_in_the_working_directory(tmp_path, monkeypatch):
    root = tmp_path.resolve()
    (root / "project" / "pics").mkdir(parents=True)
    run = root / "project" / "runs" / "vae-1"  # the default layout, runs/NAME, of `train` run in project/
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "vae", "dataset": "folder:pics", "data_dir": "tfds",
                                                 "manual_dir": None}))
    monkeypatch.chdir(root)
    config = read_run_config(run)
    assert config["dataset"] == f"folder:{root / 'project' / 'pics'}"
    assert config["data_dir"] == str(root / "tfds") and config["manual_dir"] is None  # not near the run: cwd
    assert read_run_config(run.relative_to(root))["dataset"] == config["dataset"]


class Killed(BaseException):
    """kill -9 during the first epoch: nothing after it runs."""


def test_a_run_killed_before_its_first_checkpoint_starts_over_with_resume_from_any_directory(tmp_path, monkeypatch,
                                                                                             capsys):
    import pytest
    from PIL import Image

    from tfgen import training
    from tfgen.runs import RunDirectoryError, has_checkpoint, refuse_existing_run

    work = tmp_path.resolve() / "work"
    for c in range(2):
        folder = work / "pics" / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(10):
            Image.fromarray(np.full((16, 16, 3), 15 * i + 100 * c, np.uint8)).save(folder / f"{i}.png")
    monkeypatch.chdir(work)
    fit = training._fit
    monkeypatch.setattr(training, "_fit", lambda *args, **kwargs: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):  # what train writes before its first epoch ends: config.json, real.png
        training.train("vae", "tiny", dataset="folder:pics", epochs=1, batch_size=8, out="run", verbose=0)
    monkeypatch.setattr(training, "_fit", fit)
    run = work / "run"
    (run / ".lock").write_text("12345\n")  # kill -9 leaves it
    assert json.loads((run / "config.json").read_text())["dataset"] == f"folder:{work / 'pics'}"  # stored absolute
    assert not has_checkpoint(run) and (run / "samples" / "real.png").exists()

    # sample, eval and export load the run; train --out refuses it: each says what to do
    with pytest.raises(RunDirectoryError, match=r"stopped before its first epoch ended.*tfgen train --resume"):
        load_run(run)
    with pytest.raises(RunDirectoryError, match=r"or start it over .* with: tfgen train --resume"):
        refuse_existing_run(run)

    monkeypatch.chdir(tmp_path)  # elsewhere: the folder is still found
    assert resume(run, verbose=2) == run
    assert "has no checkpoint (it stopped before its first epoch ended): starting it over" in capsys.readouterr().err
    assert read_state(run)["epoch"] == 1 and (run / "model.keras").exists()
