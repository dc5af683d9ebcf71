"""`train`: the library function behind `tfgen train`.

A run directory holds everything a run produced:

    config.json        model name, preset and full model config, data and fit settings
    history.csv        one row per epoch: training and `val_` metrics
    samples/           epoch_001.png, … (fixed noise)
    checkpoints/       last.keras + state.json, rewritten atomically each epoch
    logs/              TensorBoard
    model.keras        the final model
    .lock              locked (flock) by the process writing the run: a second writer refuses

`resume(run_dir)` continues an interrupted run from its last checkpoint: the
epoch count, optimiser state, history.csv and sample numbering continue.

Faults: a NaN or infinite loss stops training at that step (`NonFiniteLossError`)
before the epoch's checkpoint could save the NaN weights; Ctrl-C stops after the
current epoch's checkpoint (`TrainingInterrupted`; a second Ctrl-C at once);
kill -9 loses at most the current epoch.

Determinism across an interruption: epoch e sees the training examples in an
order that depends only on (seed, e) — each epoch is its own `shuffle` seeded
with both — and at the start of epoch e every random stream of the model (its
`SeedGenerator`, and those of layers such as dropout) is reset to a state that
depends only on (seed, e). A run resumed after epoch k therefore trains epochs
k+1, … exactly as the uninterrupted run would have (up to float
non-associativity of the hardware).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import dataclasses
import datetime
import io
import json
import os
import platform
import shutil
import signal
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

import keras
import tensorflow as tf

import tfgen
from tfgen import data as tfdata
from tfgen.callbacks import (AtomicCheckpoint, EpochCSVLogger, NonFiniteLossError, SampleGrid, StopOnInterrupt,
                             TerminateOnNonFinite, Throughput)
from tfgen.distribute import get_strategy, is_chief
from tfgen.io import save_model, write_json, write_text
from tfgen.precision import check_precision, dtype_policy, jit_compile_setting
from tfgen.registry import get_model_class

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoints/last.keras"
STATE_FILE = "checkpoints/state.json"
LOCK_FILE = ".lock"


class RunDirectoryError(ValueError):
    """A run directory that is missing, incomplete, or already holds another run."""


def train(
    model: str,
    preset: str = "default",
    dataset: str = tfdata.BUNDLED_NAME,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    out=None,
    overrides: dict | None = None,
    strategy: str = "auto",
    jit_compile: bool | str = False,
    precision: str = "float32",
    data_dir=None,
    manual_dir=None,
    limit: int | None = None,
    sample_every: int = 1,
    verbose="auto",
    deterministic: bool = False,
):
    """Train a registered model on a dataset and write a run directory; return its path.

    `epochs` and `batch_size` default to the family's `FIT_DEFAULTS`. `deterministic`:
    see `seed_everything`. Raises `NonFiniteLossError` when a loss becomes NaN or
    infinite and `TrainingInterrupted` on Ctrl-C (after a checkpoint to resume from).
    `precision` (float32, mixed_float16, mixed_bfloat16) and `jit_compile` (True, False,
    "auto"; or on/off/auto): see `tfgen.precision`. `strategy`: see `tfgen.distribute`;
    under `multiworker` every worker calls `train` with the same arguments and only the
    chief writes `out`.
    """
    model_cls = get_model_class(model)
    epochs = model_cls.FIT_DEFAULTS["epochs"] if epochs is None else epochs
    batch_size = model_cls.FIT_DEFAULTS["batch_size"] if batch_size is None else batch_size
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("sample_every", sample_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    check_precision(precision)
    jit_compile = jit_compile_setting(jit_compile)
    out = requested_out = Path(out or Path("runs") / f"{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    # A multi-worker strategy is made first, before any TensorFlow op (see tfgen.distribute).
    if strategy == "multiworker" and not is_chief(get_strategy(strategy)):
        out = _worker_scratch(out)
    _refuse_existing_run(out)

    seed_everything(seed, deterministic)
    config = {
        "model": model,
        "preset": preset,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "jit_compile": jit_compile,
        "precision": precision,
        "strategy": strategy,
        "data_dir": None if data_dir is None else str(data_dir),
        "manual_dir": None if manual_dir is None else str(manual_dir),
        "limit": limit,
        "sample_every": sample_every,
        "deterministic": deterministic,
    }
    data = _load_data(config)
    info = data["info"]
    overrides = {"image_shape": info.image_shape, "num_classes": max(info.num_classes, 1), "seed": seed,
                 **(overrides or {})}
    tfdata._check_fits(info, overrides["image_shape"], overrides["num_classes"])

    with get_strategy(strategy).scope(), dtype_policy(precision):
        net = model_cls.from_preset(preset, **overrides)
        net.default_compile(jit_compile=jit_compile)

    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        _refuse_existing_run(out)  # again, under the lock: another `train --out` may have started meanwhile
        config = {**config, "config": net.get_config(), "versions": versions()}
        write_json(out / CONFIG_FILE, config)
        _fit(net, out, config, data, initial_epoch=0, verbose=verbose)
    return requested_out


def _worker_scratch(run_dir: Path, copy: bool = False) -> Path:
    """A temporary stand-in for `run_dir` on a non-chief worker of a multi-worker run, removed at exit.

    Every worker runs the same steps, callbacks and saves, so that their collective ops
    and random streams stay in step; only the chief's files are kept, the others write
    here (as Keras' multi-worker checkpointing does). `copy`: start from a copy of
    `run_dir` (to resume it; the run directory must be readable by every worker).
    """
    scratch = Path(tempfile.mkdtemp(prefix="tfgen-worker-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    if copy:
        shutil.copytree(run_dir, scratch / "run", ignore=shutil.ignore_patterns(LOCK_FILE))
    return scratch / "run"


def _refuse_existing_run(out: Path) -> None:
    if (out / CONFIG_FILE).exists():
        model = read_run_config(out).get("model", "?")
        raise RunDirectoryError(f"{out} already holds a run (of {model!r}); choose another --out, "
                                f"or continue it with --resume {out}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; with `deterministic`, make TensorFlow's ops deterministic too.

    `tf.config.experimental.enable_op_determinism()` is process-wide and cannot be
    undone; ops without a deterministic kernel then raise, and some get slower (on
    CPU, few). With it, two runs of the same command on the same machine and
    versions give the same weights bit for bit.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def resume(run_dir, epochs: int | None = None, verbose="auto"):
    """Continue an interrupted run from `checkpoints/last.keras`; return its path.

    The run's own settings (config.json) are used; `epochs` may raise the total
    number of epochs to train a finished run further. Rows of history.csv for
    epochs after the checkpoint (an epoch that was interrupted before its
    checkpoint was written) are dropped: that epoch is trained again.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)  # a clear error for a directory that is not a run, before taking its lock
    # A multi-worker strategy is made first (see `train`); a non-chief worker resumes a scratch copy.
    if config.get("strategy") == "multiworker" and not is_chief(get_strategy("multiworker")):
        _resume(_worker_scratch(run_dir, copy=True), epochs, verbose)
        return run_dir
    with run_lock(run_dir):
        return _resume(run_dir, epochs, verbose)


def _resume(run_dir: Path, epochs, verbose):
    config = read_run_config(run_dir)
    state = read_state(run_dir)
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if epochs < state["epoch"]:
            raise ValueError(f"{run_dir} has already trained {state['epoch']} epochs; --epochs {epochs} is fewer")
    _remove_stale_temporaries(run_dir)

    seed_everything(config["seed"], config.get("deterministic", False))
    data = _load_data(config)
    with get_strategy(config.get("strategy", "auto")).scope(), dtype_policy(config.get("precision", "float32")):
        net = _load_model_file(run_dir / CHECKPOINT_FILE, "resume from")
    family = getattr(type(net), "registry_name", None) or type(net).__name__
    if family != config["model"]:
        raise RunDirectoryError(f"{run_dir / CHECKPOINT_FILE} holds a {family!r} model, but {run_dir / CONFIG_FILE} "
                                f"describes a run of {config['model']!r}: files of two runs are mixed up")
    if epochs is not None and epochs != config["epochs"]:
        config = {**config, "epochs": epochs}
        write_json(run_dir / CONFIG_FILE, config)
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
        # Before everything that writes: a NaN step ends the run before its epoch is logged or saved.
        TerminateOnNonFinite(),
        # append: a resumed run adds its rows (a fresh run starts without the file).
        EpochCSVLogger(str(out / HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
        SampleGrid(out / "samples", seed=seed + 1, every=config.get("sample_every", 1), log_dir=out / "logs",
                   class_names=config.get("class_names")),
        AtomicCheckpoint(out / "checkpoints"),
        interrupt := StopOnInterrupt(),
    ]
    train_ds = training_batches(data["examples"], data["info"].num_examples, config["batch_size"], seed,
                                initial_epoch, epochs)
    resume_hint = f"continue with: tfgen train --resume {out}"
    try:
        net.fit(train_ds, validation_data=data["test"], epochs=epochs, initial_epoch=initial_epoch,
                steps_per_epoch=data["steps"], callbacks=callbacks, verbose=verbose, shuffle=False)
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{err}; {_checkpoint_note(out)}") from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped mid-epoch
        raise TrainingInterrupted(f"interrupted; {_checkpoint_note(out)}; {resume_hint}", interrupt.signum) from None
    finally:
        interrupt.restore()
    if interrupt.stopped_epoch is not None and interrupt.stopped_epoch < epochs:
        raise TrainingInterrupted(f"interrupted after epoch {interrupt.stopped_epoch} of {epochs}; "
                                  f"{_checkpoint_note(out)}; {resume_hint}", interrupt.signum)
    save_model(net, out / MODEL_FILE)
    return out


def _checkpoint_note(out: Path) -> str:
    try:
        return f"the checkpoint of epoch {read_state(out)['epoch']} is kept in {out / CHECKPOINT_FILE}"
    except RunDirectoryError:
        return "no checkpoint was written (the first epoch did not finish)"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training; the message says which checkpoint `--resume` continues from.

    `signum`: the signal that stopped it (the command line exits with 128 + signum, as a shell would report).
    """

    def __init__(self, message: str, signum: int | None = None):
        super().__init__(message)
        self.signum = signum if signum is not None else signal.SIGINT


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold `RUN_DIR/.lock` while writing into a run: a second `train`/`resume` of it refuses.

    An advisory `flock`, which the kernel releases when the process ends, however
    it ends (Ctrl-C, a crash, kill -9): a lock file left by a dead process does
    not block. The file holds the writer's pid, for the message. (No locking
    where `fcntl` is missing: Windows.)
    """
    fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise RunDirectoryError(f"{run_dir} is being written by another running tfgen process (pid {holder}); "
                                        "wait for it to finish, or stop it and then --resume") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


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
    state = _read_json(path, f"{run_dir} has no checkpoint to resume from")
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
        iterations = int(tf.convert_to_tensor(optimizer.iterations.value))  # also a MirroredVariable
        if iterations % steps == 0 and iterations // steps in (state_epoch, state_epoch + 1):
            return iterations // steps
    return state_epoch


def _trim_history(path: Path, epochs_done: int) -> None:
    """Drop history.csv rows of epochs that are not in the checkpoint (and a half-written last line).

    Epochs are counted from 1 (as `EpochCSVLogger` writes them); a history from an older tfgen,
    counted from 0 (its first row says 0), is renumbered so that the resumed run's rows follow on.
    """
    if not path.exists():
        return
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows or "epoch" not in rows[0]:
        return
    header, column = rows[0], rows[0].index("epoch")
    body = [r for r in rows[1:] if len(r) == len(header) and r[column].isdigit()]
    if body and body[0][column] == "0":
        body = [[*r[:column], str(int(r[column]) + 1), *r[column + 1:]] for r in body]
    keep = [r for r in body if int(r[column]) <= epochs_done]
    if keep != rows[1:]:
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
    config = _read_json(path, f"{run_dir} is not a tfgen run directory")
    if not isinstance(config, dict) or "model" not in config:
        raise RunDirectoryError(f"{path} is corrupt: no model name in it")
    return config


def _read_json(path: Path, missing: str):
    """The JSON in a run directory's file, or a RunDirectoryError saying it is `missing` or corrupt."""
    if not path.exists():
        raise RunDirectoryError(f"{path} not found: {missing}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirectoryError(f"{path} is corrupt ({err})") from None


def versions() -> dict:
    return {"tfgen": tfgen.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}
