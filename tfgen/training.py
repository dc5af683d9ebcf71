"""`train`: the library function behind `tfgen train`.

A run directory holds everything a run produced:

    config.json        model name, preset and full model config, data and fit settings
    history.csv        one row per epoch: training and `val_` metrics
    samples/           epoch_001.png, … (fixed noise)
    checkpoints/       last.keras + state.json, rewritten atomically each epoch
    logs/              TensorBoard
    model.keras        the final model
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

import keras
import tensorflow as tf

import tfgen
from tfgen import data as tfdata
from tfgen.callbacks import AtomicCheckpoint, SampleGrid, Throughput
from tfgen.distribute import get_strategy
from tfgen.io import save_model, write_json
from tfgen.registry import get_model_class

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"


class RunDirectoryError(ValueError):
    """A run directory that is missing, incomplete, or already holds another run."""


def train(
    model: str,
    preset: str = "default",
    dataset: str = tfdata.BUNDLED_NAME,
    epochs: int = 5,
    batch_size: int = 64,
    seed: int = 0,
    out=None,
    overrides: dict | None = None,
    strategy: str = "auto",
    jit_compile: bool = False,
    data_dir=None,
    manual_dir=None,
    limit: int | None = None,
    sample_every: int = 1,
    verbose="auto",
):
    """Train a registered model on a dataset and write a run directory; return its path."""
    model_cls = get_model_class(model)
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("sample_every", sample_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    out = Path(out or Path("runs") / f"{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    if (out / CONFIG_FILE).exists():
        raise RunDirectoryError(f"{out} already holds a run; choose another --out")

    keras.utils.set_random_seed(seed)
    data_kwargs = dict(data_dir=data_dir, manual_dir=manual_dir, limit=limit)
    # Full batches only: exact images/second, and no batch-norm step on a 1-image remainder.
    train_ds, info = tfdata.load(dataset, "train", batch_size, seed, with_info=True, drop_remainder=True,
                                 **data_kwargs)
    overrides = {"image_shape": info.image_shape, "num_classes": max(info.num_classes, 1), "seed": seed,
                 **(overrides or {})}
    test_ds = tfdata.load(dataset, "test", batch_size, seed, image_shape=overrides["image_shape"],
                          num_classes=overrides["num_classes"], **data_kwargs)

    with get_strategy(strategy).scope():
        net = model_cls.from_preset(preset, **overrides)
        net.default_compile(jit_compile=jit_compile)

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG_FILE, {
        "model": model,
        "preset": preset,
        "config": net.get_config(),
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "jit_compile": jit_compile,
        "strategy": strategy,
        "versions": versions(),
    })
    callbacks = [
        Throughput(batch_size),  # first: it adds to the logs that the loggers below write
        keras.callbacks.CSVLogger(str(out / "history.csv")),
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
        SampleGrid(out / "samples", seed=seed + 1, every=sample_every),
        AtomicCheckpoint(out / "checkpoints"),
    ]
    net.fit(train_ds, validation_data=test_ds, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    save_model(net, out / MODEL_FILE)
    return out


def load_run(run_dir):
    """The model of a run directory: `model.keras`, else the last checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} does not exist")
    for candidate in (run_dir / MODEL_FILE, run_dir / "checkpoints" / "last.keras"):
        if candidate.exists():
            try:
                return keras.saving.load_model(candidate)
            except Exception as err:  # a truncated or foreign file: say which
                raise RunDirectoryError(f"cannot load {candidate}: {type(err).__name__}: {err}") from None
    raise RunDirectoryError(f"{run_dir} holds no {MODEL_FILE} and no checkpoints/last.keras: not a tfgen run")


def read_run_config(run_dir) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise RunDirectoryError(f"{path} not found: {run_dir} is not a tfgen run directory")
    return json.loads(path.read_text())


def versions() -> dict:
    return {"tfgen": tfgen.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}
