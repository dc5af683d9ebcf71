"""`train` and `resume`: the library functions behind `tfgen train`.

They write a run directory (`tfgen.runs` owns its layout: config.json,
history.csv, samples/, checkpoints/, logs/, model.keras, and a `.lock` while a
process writes it, so that a second writer refuses).

`resume(run_dir)` continues an interrupted run from its last checkpoint: the
epoch count, optimiser state, history.csv and sample numbering continue.

Faults: a NaN or infinite loss stops training at that step (`NonFiniteLossError`)
before the epoch's checkpoint could save the NaN weights; Ctrl-C stops after the
current epoch's checkpoint (`TrainingInterrupted`; a second Ctrl-C at once);
kill -9 loses at most the current epoch.

Determinism across an interruption: epoch e sees the training examples in an
order that depends only on (seed, e) — each epoch is its own `shuffle` seeded
with both (`tfgen.data.pipeline`) — and at the start of epoch e every random
stream of the model (its `SeedGenerator`, and those of layers such as dropout)
is reset to a state that depends only on (seed, e) (`tfgen.callbacks.EpochSeed`).
A run resumed after epoch k therefore trains epochs k+1, … exactly as the
uninterrupted run would have (up to float non-associativity of the hardware).
"""

from __future__ import annotations

import atexit
import datetime
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfgen import data as tfdata
from tfgen import runs
from tfgen.callbacks import (AtomicCheckpoint, ClassDiversity, EpochCSVLogger, EpochSeed, NonFiniteLossError,
                             SampleGrid, StopOnInterrupt, TerminateOnNonFinite, Throughput)
from tfgen.checks import int_at_least, positive_int
from tfgen.data.pipeline import training_batches
from tfgen.distribute import get_strategy, is_chief
from tfgen.io import save_model, write_json
from tfgen.precision import dtype_policy, jit_compile_setting, resolve_precision
from tfgen.registry import get_model_class
from tfgen.runs import RunDirectoryError, run_lock


def train(model: str, preset: str = "default", dataset: str = tfdata.BUNDLED_NAME, epochs: int | None = None,
          batch_size: int | None = None, seed: int = 0, out=None, overrides: dict | None = None,
          strategy: str = "auto", jit_compile: bool | str = False, precision: str = "auto", data_dir=None,
          manual_dir=None, limit: int | None = None, sample_every: int = 1, verbose="auto",
          deterministic: bool = False, **data_options):
    """Train a registered model on a dataset and write a run directory; return its path.

    `epochs` and `batch_size` default to the family's `FIT_DEFAULTS`. `deterministic`:
    see `seed_everything`. Raises `NonFiniteLossError` when a loss becomes NaN or
    infinite and `TrainingInterrupted` on Ctrl-C (after a checkpoint to resume from).
    `precision` (auto, float32, mixed_float16, mixed_bfloat16) and `jit_compile` (True, False,
    "auto"; or on/off/auto): see `tfgen.precision`; config.json keeps the policy chosen, what was
    asked for and why (`precision`, `precision_requested`, `precision_reason`). `strategy`: see `tfgen.distribute`;
    under `multiworker` every worker calls `train` with the same arguments and only the
    chief writes `out`.

    data_options: how to read the images (`tfgen.data.DATA_OPTIONS`: `image_size` (int or
    (height, width)), `channels` (1 or 3), `background`, `skip_corrupt`, `holdout`; see
    `tfgen.data.load_examples`). They are kept in config.json, so `resume`, `tfgen eval`
    and `tfgen sample` read the data the same way. A labelled folder's class names are
    kept too (grid row titles).
    """
    model_cls = get_model_class(model)
    fit_defaults = model_cls.FIT_DEFAULTS
    policy, reason = resolve_precision(precision, model_cls, preset)
    config = {
        "model": model,
        "preset": preset,
        "dataset": dataset,
        "epochs": positive_int(fit_defaults["epochs"] if epochs is None else epochs, "epochs"),
        "batch_size": positive_int(fit_defaults["batch_size"] if batch_size is None else batch_size, "batch_size"),
        "sample_every": positive_int(sample_every, "sample_every"),
        "seed": int_at_least(seed, "seed", 0),
        "precision": policy,
        "precision_requested": precision,
        "precision_reason": reason,
        "jit_compile": jit_compile_setting(jit_compile),
        "strategy": strategy,
        "data_dir": None if data_dir is None else str(data_dir),
        "manual_dir": None if manual_dir is None else str(manual_dir),
        "limit": limit,
        "deterministic": deterministic,
        "data_options": _checked_data_options(data_options, model_cls, preset, overrides),
    }
    out, requested_out = _output_directories(out, model, strategy)
    runs.refuse_existing_run(out)

    seed_everything(config["seed"], deterministic)
    data = _load_data(config)
    if data["info"].class_names:
        config["class_names"] = list(data["info"].class_names)
    net = _build_model(model_cls, config, data["info"], overrides)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        runs.refuse_existing_run(out)  # again, under the lock: another `train --out` may have started meanwhile
        config = {**config, "config": net.get_config(), "versions": runs.versions()}
        write_json(out / runs.CONFIG_FILE, config)
        _announce_precision(config, verbose)
        _fit(net, out, config, data, initial_epoch=0, verbose=verbose)
    return requested_out


def _checked_data_options(data_options: dict, model_cls, preset: str, overrides: dict | None) -> dict:
    """`train`'s data options as config.json keeps them; an image size the family cannot use fails
    here, before any data is read."""
    unknown = sorted(set(data_options) - set(tfdata.DATA_OPTIONS))
    if unknown:
        raise TypeError(f"train() got unexpected keyword argument(s) {', '.join(unknown)}; "
                        f"data options are {', '.join(tfdata.DATA_OPTIONS)}")
    options = {k: v for k, v in data_options.items() if v is not None}
    if "image_size" in options:
        size = tfdata.parse_image_size(options["image_size"])
        options["image_size"] = list(size)
        model_cls.check_image_size((*size, 1), **{**model_cls.preset_hyperparameters(preset), **(overrides or {})})
    return options


def _output_directories(out, model: str, strategy: str) -> tuple[Path, Path]:
    """(the directory this process writes, the run directory `train` returns): the same, but on the
    non-chief workers of a multi-worker run, which write to a scratch copy."""
    requested = Path(out or Path("runs") / f"{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    # A multi-worker strategy is made first, before any TensorFlow op (see tfgen.distribute).
    if strategy == "multiworker" and not is_chief(get_strategy(strategy)):
        return _worker_scratch(requested), requested
    return requested, requested


def _build_model(model_cls, config: dict, info, overrides: dict | None):
    """The run's model, shaped by the data, built and compiled under the run's strategy and precision.

    The data also set what the family asks for data without labels (`unlabelled_overrides`) and for
    a small training set (`small_data_overrides`); the user's `overrides` win over both.
    """
    unlabelled = model_cls.unlabelled_overrides() if info.num_classes == 0 else {}
    overrides = {"image_shape": info.image_shape, "num_classes": max(info.num_classes, 1), "seed": config["seed"],
                 **unlabelled, **model_cls.small_data_overrides(info.num_examples), **(overrides or {})}
    tfdata._check_fits(info, overrides["image_shape"], overrides["num_classes"])
    with get_strategy(config["strategy"]).scope(), dtype_policy(config["precision"]):
        net = model_cls.from_preset(config["preset"], **overrides)
        net.default_compile(jit_compile=config["jit_compile"])
    if net.conditional:  # the model needs labels (an unlabelled folder has none)
        tfdata.require_labels(info, f"{config['model']} ({config['preset']} preset)")
    return net


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
        shutil.copytree(run_dir, scratch / "run", ignore=shutil.ignore_patterns(runs.LOCK_FILE))
    return scratch / "run"


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
    config = runs.read_run_config(run_dir)  # a clear error for a directory that is not a run, before taking its lock
    # A multi-worker strategy is made first (see `train`); a non-chief worker resumes a scratch copy.
    if config.get("strategy") == "multiworker" and not is_chief(get_strategy("multiworker")):
        _resume(_worker_scratch(run_dir, copy=True), epochs, verbose)
        return run_dir
    with run_lock(run_dir):
        return _resume(run_dir, epochs, verbose)


def _resume(run_dir: Path, epochs, verbose):
    config = runs.read_run_config(run_dir)
    state = runs.read_state(run_dir)
    if epochs is not None and positive_int(epochs, "epochs") < state["epoch"]:
        raise ValueError(f"{run_dir} has already trained {state['epoch']} epochs; --epochs {epochs} is fewer")
    runs.remove_stale_temporaries(run_dir)

    seed_everything(config["seed"], config.get("deterministic", False))
    data = _load_data(config)
    with get_strategy(config.get("strategy", "auto")).scope(), dtype_policy(config.get("precision", "float32")):
        net = runs.load_checkpoint(run_dir / runs.CHECKPOINT_FILE, "resume from")
    family = getattr(type(net), "registry_name", None) or type(net).__name__
    if family != config["model"]:
        raise RunDirectoryError(f"{run_dir / runs.CHECKPOINT_FILE} holds a {family!r} model, but "
                                f"{run_dir / runs.CONFIG_FILE} describes a run of {config['model']!r}: "
                                "files of two runs are mixed up")
    if epochs is not None and epochs != config["epochs"]:
        config = {**config, "epochs": epochs}
        write_json(run_dir / runs.CONFIG_FILE, config)
    done = runs.epochs_done(net, state["epoch"], data["steps"])
    runs.trim_history(run_dir, done)
    if done >= config["epochs"]:
        if not (run_dir / runs.MODEL_FILE).exists():
            save_model(net, run_dir / runs.MODEL_FILE)
        return run_dir
    _announce_precision(config, verbose, resumed=True)
    return _fit(net, run_dir, config, data, initial_epoch=done, verbose=verbose)


def _announce_precision(config: dict, verbose, resumed: bool = False) -> None:
    """One line on stderr (unless `verbose` is 0): the dtype policy training uses, and why."""
    if verbose == 0:
        return
    # Runs written before --precision auto existed have no reason: their precision was asked for.
    why = config.get("precision_reason", "asked for")
    if resumed:  # never chosen again: a run keeps the policy it started with, on any machine
        why = f"the run's own; {why}"
    print(f"precision: {config.get('precision', 'float32')} ({why})", file=sys.stderr, flush=True)


def _fit(net, out: Path, config: dict, data: dict, initial_epoch: int, verbose):
    seed, epochs = config["seed"], config["epochs"]
    callbacks = [
        Throughput(config["batch_size"]),  # first: it adds to the logs that the loggers below write
        EpochSeed(seed),
        # Before everything that writes: a NaN step ends the run before its epoch is logged or saved.
        TerminateOnNonFinite(),
        # append: a resumed run adds its rows (a fresh run starts without the file).
        EpochCSVLogger(str(out / runs.HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(str(out / runs.LOGS_DIR), write_graph=False),
        SampleGrid(out / runs.SAMPLES_DIR, seed=seed + 1, every=config.get("sample_every", 1),
                   log_dir=out / runs.LOGS_DIR, class_names=config.get("class_names")),
        AtomicCheckpoint(out / runs.CHECKPOINT_DIR),
        interrupt := StopOnInterrupt(),
    ]
    if net.monitors_class_diversity:  # before the loggers, which write the values it adds
        images, labels = _examples_per_class(data["examples"], DIVERSITY_EXAMPLES)
        callbacks.insert(1, ClassDiversity(images, labels, n=DIVERSITY_EXAMPLES, seed=seed + 2,
                                           class_names=config.get("class_names")))
    train_ds = training_batches(data["examples"], config["batch_size"], seed, initial_epoch, epochs)
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
    save_model(net, out / runs.MODEL_FILE)
    return out


#: Real images per class, and samples per class, of the class-diversity monitor (`ClassDiversity`).
DIVERSITY_EXAMPLES = 32


def _examples_per_class(examples, n: int):
    """The first `n` training images of every class (fewer for a class that has fewer), and their labels."""
    labels = examples.labels.numpy()
    indices = [i for c in range(max(examples.info.num_classes, 1)) for i in np.flatnonzero(labels == c)[:n]]
    return examples.lookup(tf.constant(indices, tf.int64))


def _checkpoint_note(out: Path) -> str:
    try:
        return f"the checkpoint of epoch {runs.read_state(out)['epoch']} is kept in {out / runs.CHECKPOINT_FILE}"
    except RunDirectoryError:
        return "no checkpoint was written (the first epoch did not finish)"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training; the message says which checkpoint `--resume` continues from.

    `signum`: the signal that stopped it (the command line exits with 128 + signum, as a shell would report).
    """

    def __init__(self, message: str, signum: int | None = None):
        super().__init__(message)
        self.signum = signum if signum is not None else signal.SIGINT


def _load_data(config: dict) -> dict:
    """The training split held once in memory (`tfgen.data.Examples`), test batches, info and steps per epoch."""
    kwargs = dict(data_dir=config.get("data_dir"), manual_dir=config.get("manual_dir"), limit=config.get("limit"),
                  **runs.data_options(config))
    batch_size, seed = config["batch_size"], config["seed"]
    examples = tfdata.load_examples(config["dataset"], "train", **kwargs)
    # Full batches only: exact images/second, and no batch-norm step on a 1-image remainder.
    steps = examples.info.num_examples // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {examples.info.num_examples} training examples")
    test = tfdata.load(config["dataset"], "test", batch_size, seed, **kwargs)
    return {"examples": examples, "info": examples.info, "steps": steps, "test": test}
