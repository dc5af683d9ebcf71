"""`train`: the library function behind `tfgen train`.

A run directory holds everything a run produced:

    config.json        model name, preset and full model config, data and fit settings
    history.csv        one row per epoch: training and `val_` metrics
    samples/           epoch_001.png, … (fixed noise)
    checkpoints/       last.keras + state.json, rewritten atomically each epoch
    logs/              TensorBoard
    model.keras        the final model

`resume(run_dir)` continues an interrupted run from its last checkpoint: the
epoch count, optimiser state, history.csv and sample numbering continue.

Determinism across an interruption: epoch e sees the training examples in an
order that depends only on (seed, e) — each epoch is its own `shuffle` seeded
with both — and at the start of epoch e every random stream of the model (its
`SeedGenerator`, and those of layers such as dropout) is reset to a state that
depends only on (seed, e). A run resumed after epoch k therefore trains epochs
k+1, … exactly as the uninterrupted run would have (up to float
non-associativity of the hardware).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import platform
from pathlib import Path

import keras
import tensorflow as tf

import tfgen
from tfgen import data as tfdata
from tfgen.callbacks import AtomicCheckpoint, SampleGrid, Throughput
from tfgen.distribute import get_strategy
from tfgen.io import save_model, write_json, write_text
from tfgen.registry import get_model_class

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoints/last.keras"
STATE_FILE = "checkpoints/state.json"


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
    config = {
        "model": model,
        "preset": preset,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "jit_compile": jit_compile,
        "strategy": strategy,
        "data_dir": None if data_dir is None else str(data_dir),
        "manual_dir": None if manual_dir is None else str(manual_dir),
        "limit": limit,
        "sample_every": sample_every,
    }
    data = _load_data(config)
    info = data["info"]
    overrides = {"image_shape": info.image_shape, "num_classes": max(info.num_classes, 1), "seed": seed,
                 **(overrides or {})}
    tfdata._check_fits(info, overrides["image_shape"], overrides["num_classes"])

    with get_strategy(strategy).scope():
        net = model_cls.from_preset(preset, **overrides)
        net.default_compile(jit_compile=jit_compile)

    out.mkdir(parents=True, exist_ok=True)
    config = {**config, "config": net.get_config(), "versions": versions()}
    write_json(out / CONFIG_FILE, config)
    return _fit(net, out, config, data, initial_epoch=0, verbose=verbose)


def resume(run_dir, epochs: int | None = None, verbose="auto"):
    """Continue an interrupted run from `checkpoints/last.keras`; return its path.

    The run's own settings (config.json) are used; `epochs` may raise the total
    number of epochs to train a finished run further. Rows of history.csv for
    epochs after the checkpoint (an epoch that was interrupted before its
    checkpoint was written) are dropped: that epoch is trained again.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    state = read_state(run_dir)
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if epochs < state["epoch"]:
            raise ValueError(f"{run_dir} has already trained {state['epoch']} epochs; --epochs {epochs} is fewer")
        if epochs != config["epochs"]:
            config = {**config, "epochs": epochs}
            write_json(run_dir / CONFIG_FILE, config)
    _remove_stale_temporaries(run_dir)

    keras.utils.set_random_seed(config["seed"])
    data = _load_data(config)
    with get_strategy(config.get("strategy", "auto")).scope():
        net = _load_model_file(run_dir / CHECKPOINT_FILE, "resume from")
    done = _epochs_done(net, state["epoch"], data["steps"])
    _trim_history(run_dir / HISTORY_FILE, done)
    if done >= config["epochs"]:
        if not (run_dir / MODEL_FILE).exists():
            save_model(net, run_dir / MODEL_FILE)
        return run_dir
    return _fit(net, run_dir, config, data, initial_epoch=done, verbose=verbose)


def _fit(net, out: Path, config: dict, data: dict, initial_epoch: int, verbose):
    seed, epochs = config["seed"], config["epochs"]
    callbacks = [
        Throughput(config["batch_size"]),  # first: it adds to the logs that the loggers below write
        EpochSeed(seed),
        # append: a resumed run adds its rows (a fresh run starts without the file).
        keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
        SampleGrid(out / "samples", seed=seed + 1, every=config.get("sample_every", 1)),
        AtomicCheckpoint(out / "checkpoints"),
    ]
    train_ds = training_batches(data["examples"], data["info"].num_examples, config["batch_size"], seed,
                                initial_epoch, epochs)
    net.fit(train_ds, validation_data=data["test"], epochs=epochs, initial_epoch=initial_epoch,
            steps_per_epoch=data["steps"], callbacks=callbacks, verbose=verbose, shuffle=False)
    save_model(net, out / MODEL_FILE)
    return out


def _load_data(config: dict) -> dict:
    """Training examples (unbatched, cached, in file order), test batches, info and steps per epoch."""
    kwargs = dict(data_dir=config.get("data_dir"), manual_dir=config.get("manual_dir"), limit=config.get("limit"))
    batch_size, seed = config["batch_size"], config["seed"]
    batches, info = tfdata.load(config["dataset"], "train", batch_size, seed, shuffle=False, with_info=True,
                                **kwargs)
    examples = batches.unbatch()
    if info.num_examples < 0:  # a TFDS split of unknown size: count it once
        info = dataclasses.replace(info, num_examples=int(examples.reduce(0, lambda n, _: n + 1)))
    # Full batches only: exact images/second, and no batch-norm step on a 1-image remainder.
    steps = info.num_examples // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {info.num_examples} training examples")
    test = tfdata.load(config["dataset"], "test", batch_size, seed, **kwargs)
    return {"examples": examples, "info": info, "steps": steps, "test": test}


def training_batches(examples, num_examples: int, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """Full batches for epochs `first_epoch` … `epochs − 1`, one epoch after another.

    Epoch e is `examples` shuffled with a seed made of (seed, e) alone, so its
    order is the same whether the run was interrupted or not. Pass
    `steps_per_epoch = num_examples // batch_size` to `fit`.
    """
    buffer = min(num_examples, 70_000)  # the whole set for MNIST-sized data: a full shuffle

    def one_epoch(epoch):
        return examples.shuffle(buffer, seed=epoch, reshuffle_each_iteration=False).batch(
            batch_size, drop_remainder=True)

    # A shuffle's seeds are (TF's global seed, its own seed): here (a function of `seed`, the
    # epoch). TF cannot take a tensor seed while the global seed is 0, hence the offset; the
    # global seed is put back to `seed` (what `train` set) afterwards.
    tf.random.set_seed(seed % (2**31 - 1) + 1)
    try:
        batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    finally:
        tf.random.set_seed(seed)
    return batches.prefetch(tf.data.AUTOTUNE)


class EpochSeed(keras.callbacks.Callback):
    """At the start of epoch e, reset every random stream of the model to a state fixed by (seed, e).

    Keras does not save `SeedGenerator` states in `.keras` files; resetting them
    per epoch makes a resumed run draw the same noise as an uninterrupted one.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        for i, state in enumerate(states):
            stream = (self.seed * 1_000_003 + epoch * 7_919 + i + 1) % 2**31
            state.assign(tf.constant([stream, 0], dtype=state.dtype))


def load_run(run_dir):
    """The model of a run directory: `model.keras`, else the last checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} does not exist")
    for candidate in (run_dir / MODEL_FILE, run_dir / CHECKPOINT_FILE):
        if candidate.exists():
            return _load_model_file(candidate)
    raise RunDirectoryError(f"{run_dir} holds no {MODEL_FILE} and no {CHECKPOINT_FILE}: not a tfgen run")


def _load_model_file(path: Path, action="load"):
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # a truncated or foreign file: say which, on one line
        detail = " ".join(str(err).split())[:300]
        raise RunDirectoryError(f"cannot {action} {path}: the file is truncated or not a Keras model "
                                f"({type(err).__name__}: {detail})") from None


def read_state(run_dir) -> dict:
    """`checkpoints/state.json`: {"epoch": completed epochs, "logs": ...}."""
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        raise RunDirectoryError(f"{path} not found: {run_dir} has no checkpoint to resume from")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirectoryError(f"{path} is corrupt ({err})") from None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise RunDirectoryError(f"{path} is corrupt: no epoch count in it")
    return state


def _epochs_done(net, state_epoch: int, steps: int) -> int:
    """Completed epochs: state.json's count, checked against the optimiser's step count.

    The checkpoint and state.json are two files, each replaced atomically; a kill
    between the two leaves a model one epoch ahead of state.json. The optimiser,
    saved inside the model file, knows.
    """
    optimizer = getattr(net, "optimizer", None)
    if optimizer is not None:
        iterations = int(optimizer.iterations)
        if iterations % steps == 0 and iterations // steps in (state_epoch, state_epoch + 1):
            return iterations // steps
    return state_epoch


def _trim_history(path: Path, epochs_done: int) -> None:
    """Drop history.csv rows of epochs that are not in the checkpoint (and a half-written last line)."""
    if not path.exists():
        return
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows or "epoch" not in rows[0]:
        return
    header, column = rows[0], rows[0].index("epoch")
    keep = [r for r in rows[1:] if len(r) == len(header) and r[column].isdigit() and int(r[column]) < epochs_done]
    if len(keep) != len(rows) - 1:
        text = io.StringIO()
        csv.writer(text).writerows([header, *keep])
        write_text(path, text.getvalue())


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files of atomic writes that a killed process left behind."""
    for pattern in ("checkpoints/.last.*.keras", "checkpoints/.state.*.json", ".model.*.keras"):
        for stale in run_dir.glob(pattern):
            stale.unlink(missing_ok=True)


def read_run_config(run_dir) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise RunDirectoryError(f"{path} not found: {run_dir} is not a tfgen run directory")
    return json.loads(path.read_text())


def versions() -> dict:
    return {"tfgen": tfgen.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}
