"""A run directory in the format tfgen has always written (`tfgen.runs`) still loads and resumes.

The directory is written here file by file, as `tfgen train` wrote it before `tfgen.runs`
existed (an interrupted 2-epoch run, checkpointed after epoch 1, with the `.lock` file those
versions left behind), so a change to the format that breaks old runs fails here.
"""

import csv
import json

import keras

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
