"""`train` and `resume`: the library functions behind `tfgen train`.

They write a run directory (`tfgen.runs` owns its layout: config.json,
history.csv, samples/, checkpoints/, logs/, model.keras, best/ with `keep="best"`
(`tfgen.keep_best`), and a `.lock` while a process writes it, so that a second
writer refuses).

How long: `steps` optimiser steps, `epochs` passes over the data, or `minutes`
of wall-clock time (`tfgen.length`; the family's `FIT_DEFAULTS["steps"]` when
none is given). A Keras epoch is `epoch_steps` steps (`tfgen.length.epoch_length`),
the unit of history.csv rows, sample grids and checkpoints; the run's last epoch
may be shorter, ending at the step where the length asked for is reached.

`resume(run_dir)` continues an interrupted run from its last checkpoint: the
epoch count, optimiser state, history.csv and sample numbering continue; given a
length, it extends a finished run.

Faults: a NaN or infinite loss stops training at that step (`NonFiniteLossError`)
before the epoch's checkpoint could save the NaN weights; Ctrl-C stops after the
current epoch's checkpoint (`TrainingInterrupted`; a second Ctrl-C at once);
kill -9 loses at most the current epoch.

Determinism across an interruption: step t trains on a batch that depends only
on (seed, t) — each pass over the data is its own `shuffle` seeded with (seed,
pass), a flip its own stateless coins (`tfgen.data.pipeline`) — and at the start
of epoch e every random stream of the model (its `SeedGenerator`, and those of
layers such as dropout) is reset to a state that depends only on (seed, e)
(`tfgen.callbacks.EpochSeed`). A run resumed after epoch k therefore trains
epochs k+1, … exactly as the uninterrupted run would have (up to float
non-associativity of the hardware). A run that a time budget (or a length that
is not a whole number of epochs) stopped inside an epoch resumes at that step on
the same batches, its random streams started afresh at the next epoch.
"""

from __future__ import annotations

import atexit
import datetime
import math
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from tfgen import data as tfdata
from tfgen import keep_best
from tfgen import length as run_length
from tfgen import runs
from tfgen.catalog import default_batch_size
from tfgen.callbacks import (AtomicCheckpoint, EpochCSVLogger, EpochSeed, NonFiniteLossError,
                             OpenEndedProgbar, SampleGrid, StepBudget, StopOnInterrupt, TerminateOnNonFinite,
                             Throughput, TimeBudget, TimeEstimate)
from tfgen.checks import int_at_least, positive_int
from tfgen.data.pipeline import training_batches
from tfgen.distribute import get_strategy, is_chief
from tfgen.health import training_monitor
from tfgen.io import save_model, write_json
from tfgen.precision import dtype_policy, jit_compile_setting, resolve_precision
from tfgen.registry import get_model_class
from tfgen.runs import RunDirectoryError, run_lock

#: The clock of `--minutes` budgets and time estimates (tests replace it with a fake one).
clock = time.perf_counter

#: The per-epoch sample grid: fewer images than `tfgen sample` draws, and models that sample
#: in steps (diffusion) take fewer steps, so that drawing it costs a small part of an epoch. For
#: the default diffusion model on 2 CPU cores, a grid of 100 images of 50-step DDIM took as long
#: as 71 training steps at 28×28 (two thirds of an epoch at 64×64); 36 images of 20 steps took
#: 4.5 (11.6 at 64×64, on a loaded machine): a few percent of an epoch of 200 steps or more.
GRID_IMAGES = 36
GRID_SAMPLE_OPTIONS = {"steps": 20}


def train(model: str, preset: str = "default", dataset: str = tfdata.BUNDLED_NAME, epochs: int | None = None,
          batch_size: int | None = None, seed: int = 0, out=None, overrides: dict | None = None,
          strategy: str = "auto", jit_compile: bool | str = False, precision: str = "auto", data_dir=None,
          manual_dir=None, limit: int | None = None, sample_every: int = 1, verbose="auto",
          deterministic: bool = False, steps: int | None = None, minutes: float | None = None,
          augment: str | None = None, epoch_steps: int | None = None, autoencoder_from=None, keep: str | None = None, init=None, **data_options):
    """Train a registered model on a dataset and write a run directory; return its path.

    Length: `steps` optimiser steps, or `epochs` passes over the data (not both), and/or
    a wall-clock budget of `minutes` (training stops at the first step boundary past it,
    then writes what a finished run writes); with none of them, the family's
    `FIT_DEFAULTS["steps"]`. config.json keeps what was asked for (`steps`, `epochs`,
    `minutes`) and the steps it comes to (`total_steps`). `epoch_steps`: steps per
    epoch (checkpoint, sample grid, validation); default `tfgen.length.epoch_length`:
    one pass with `epochs`, else whole passes of at least 200 steps.
    `batch_size` defaults to `FIT_DEFAULTS`. `augment`: None or "flip" (random
    horizontal flips of the training images). `deterministic`: see `seed_everything`.
    `keep`: "best" also keeps the best-scoring epoch in `RUN/best/` (`tfgen.keep_best`), "last" only the
    last; default: the family's (`keep_best.check_keep`: best for GANs).
    Raises `NonFiniteLossError` when a loss becomes NaN or
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

    autoencoder_from: latent models only: a run directory or `.keras` file of an earlier run of
    the family, whose trained autoencoder the model takes (`load_autoencoder`) instead of
    training its own first stage; kept in config.json (absolute).
    init: fine-tuning: a trained preset (`tfgen.pretrained`: a shipped name or a directory), run
    directory or `.keras` file of the same family, whose weights the model starts from wherever their
    shapes match (`tfgen.finetune.take_matching_weights`; the others start fresh, and are named on
    stderr); kept in config.json.
    """
    model_cls = get_model_class(model)
    fit_defaults = model_cls.FIT_DEFAULTS
    policy, reason = resolve_precision(precision, model_cls, preset)
    config = {
        "model": model,
        "preset": preset,
        "dataset": tfdata.absolute_name(dataset),  # absolute: --resume and eval work from any directory
        **run_length.check_length(steps, epochs, minutes),
        "epoch_steps": None if epoch_steps is None else positive_int(epoch_steps, "epoch_steps"),
        "augment": run_length.check_augment(augment),
        "keep": keep_best.check_keep(keep, model_cls),
        "batch_size": None if batch_size is None else positive_int(batch_size, "batch_size"),  # None: set by the data
        "sample_every": positive_int(sample_every, "sample_every"),
        "seed": int_at_least(seed, "seed", 0),
        "precision": policy,
        "precision_requested": precision,
        "precision_reason": reason,
        "jit_compile": jit_compile_setting(jit_compile),
        "strategy": strategy,
        "data_dir": None if data_dir is None else tfdata.absolute_path(data_dir),
        "manual_dir": None if manual_dir is None else tfdata.absolute_path(manual_dir),
        "limit": limit,
        "deterministic": deterministic,
        "data_options": _checked_data_options(data_options, model_cls, preset, overrides),
    }
    if autoencoder_from is not None:
        config["autoencoder_from"] = _checked_autoencoder_source(autoencoder_from, model_cls)
    if init is not None:
        config["init"] = _checked_init_source(init)
    _check_time_budget(config["minutes"], strategy)
    out, requested_out = _output_directories(out, model, strategy)
    runs.refuse_existing_run(out)

    seed_everything(config["seed"], deterministic)
    data = _load_data(config, fit_defaults)
    config["total_steps"] = run_length.total_steps(config, data["steps_per_pass"], fit_defaults["steps"])
    config["epoch_steps"] = config["epoch_steps"] or run_length.epoch_length(
        data["steps_per_pass"], config["total_steps"], passes=config["epochs"] is not None)
    if data["info"].class_names:
        config["class_names"] = list(data["info"].class_names)
    net = build_model(model_cls, config, data["info"], overrides)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        runs.refuse_existing_run(out)  # again, under the lock: another `train --out` may have started meanwhile
        config = {**config, "config": net.get_config(), "versions": runs.versions()}
        write_json(out / runs.CONFIG_FILE, config)
        _announce_data(config, data, out, verbose)
        _announce_precision(config, verbose)
        _announce_plan(config, data["info"], verbose)
        _fit(net, out, config, data, initial_epoch=0, first_step=0, verbose=verbose)
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


def _checked_autoencoder_source(source, model_cls):
    """`autoencoder_from` as config.json keeps it (absolute); refused for a family without an autoencoder."""
    if not hasattr(model_cls, "load_autoencoder"):
        raise ValueError(f"autoencoder_from: {model_cls.registry_name} has no autoencoder to take from an earlier run")
    return tfdata.absolute_path(source)


def _load_autoencoder(net, config: dict) -> None:
    """The autoencoder of an earlier run, for a run started with `autoencoder_from`."""
    if config.get("autoencoder_from"):
        net.load_autoencoder(config["autoencoder_from"])


def _checked_init_source(source) -> str:
    """`init` as config.json keeps it: a shipped preset's name as given, a path absolute."""
    from tfgen import pretrained

    path = pretrained.resolve(source)  # one line listing the shipped presets if it is neither
    return str(source) if not Path(source).exists() else str(path.absolute())


def _take_initial_weights(net, config: dict) -> None:
    """The weights of `init` (a preset or an earlier run) wherever their shapes match; the others named."""
    if not config.get("init"):
        return
    from tfgen.finetune import take_matching_weights

    left = take_matching_weights(net, config["init"])
    taken = len(net.weights) - len(left)
    print(f"--init {config['init']}: took {taken} of {len(net.weights)} weights"
          + (f"; {len(left)} start fresh (their shapes differ):" if left else ""), file=sys.stderr, flush=True)
    for line in left:
        print(f"  {line}", file=sys.stderr, flush=True)


def _output_directories(out, model: str, strategy: str) -> tuple[Path, Path]:
    """(the directory this process writes, the run directory `train` returns): the same, but on the
    non-chief workers of a multi-worker run, which write to a scratch copy."""
    requested = Path(out or Path("runs") / f"{model}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    # A multi-worker strategy is made first, before any TensorFlow op (see tfgen.distribute).
    if strategy == "multiworker" and not is_chief(get_strategy(strategy)):
        return _worker_scratch(requested), requested
    return requested, requested


def build_model(model_cls, config: dict, info, overrides: dict | None):
    """The run's model, shaped by the data, built and compiled under the run's strategy and precision.

    config: the run's config.json (`model`, `preset`, `seed`, `strategy`, `precision`, `jit_compile`,
    optionally `autoencoder_from`). The data also set what the family asks for data without labels
    (`unlabelled_overrides`) and for a small training set (`small_data_overrides`); the user's
    `overrides` win over both. Public for benchmarks that time the model `tfgen train` trains.
    """
    unlabelled = model_cls.unlabelled_overrides() if info.num_classes == 0 else {}
    overrides = {"image_shape": info.image_shape, "num_classes": max(info.num_classes, 1), "seed": config["seed"],
                 **unlabelled, **model_cls.small_data_overrides(info.num_examples), **(overrides or {})}
    info.check_fits(overrides["image_shape"], overrides["num_classes"])
    with get_strategy(config["strategy"]).scope(), dtype_policy(config["precision"]):
        net = model_cls.from_preset(config["preset"], **overrides)
        net.default_compile(jit_compile=config["jit_compile"])
    _load_autoencoder(net, config)
    _take_initial_weights(net, config)
    if net.requires_labels:  # the model needs labels (an unlabelled folder has none)
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


def resume(run_dir, epochs: int | None = None, verbose="auto", steps: int | None = None,
           minutes: float | None = None):
    """Continue an interrupted run from `checkpoints/last.keras`; return its path.

    The run's own settings (config.json) are used. A new length trains a run
    (finished or not) further: `steps` or `epochs`, a new total (of optimiser steps,
    of passes over the data), and/or `minutes`, a time budget for this call (alone:
    train that long, whatever the total). config.json then keeps the new length.
    Without one, the run goes on to its own length. Rows of history.csv for
    epochs after the checkpoint (an epoch that was interrupted before its
    checkpoint was written) are dropped: that epoch is trained again.
    """
    run_dir = Path(run_dir)
    length = run_length.check_length(steps, epochs, minutes)
    config = runs.read_run_config(run_dir)  # a clear error for a directory that is not a run, before taking its lock
    _check_time_budget(minutes if any(v is not None for v in length.values()) else config.get("minutes"),
                       config.get("strategy", "auto"))
    # A multi-worker strategy is made first (see `train`); a non-chief worker resumes a scratch copy.
    if config.get("strategy") == "multiworker" and not is_chief(get_strategy("multiworker")):
        _resume(_worker_scratch(run_dir, copy=True), length, verbose)
        return run_dir
    with run_lock(run_dir):
        return _resume(run_dir, length, verbose)


def _resume(run_dir: Path, length: dict, verbose):
    config = runs.read_run_config(run_dir)
    if not runs.has_checkpoint(run_dir):
        return _start_over(run_dir, config, length, verbose)
    state = runs.read_state(run_dir)
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
    config = runs.with_length(config, data["steps_per_pass"])  # a run of an older tfgen: its epochs in steps
    done, done_steps = runs.progress(net, state, config["epoch_steps"])
    asked = any(v is not None for v in length.values())
    if asked:
        total = run_length.total_steps(length, data["steps_per_pass"], None)
        if total is not None and total < done_steps:
            given = (f"--steps {total}" if length["steps"] is not None
                     else f"--epochs {length['epochs']} ({total} steps)")
            raise ValueError(f"{run_dir} has already trained {done_steps} steps ({done} epochs of "
                             f"{config['epoch_steps']}); {given} is fewer")
        config = {**config, **length, "total_steps": total}
        write_json(run_dir / runs.CONFIG_FILE, config)
    runs.trim_history(run_dir, done)
    total = config["total_steps"]
    finished = done_steps >= total if total is not None else not asked and (run_dir / runs.MODEL_FILE).exists()
    if finished:
        if not (run_dir / runs.MODEL_FILE).exists():
            save_model(net, run_dir / runs.MODEL_FILE)
        return run_dir
    _announce_precision(config, verbose, resumed=True)
    _announce_plan(config, data["info"], verbose, first_step=done_steps)
    return _fit(net, run_dir, config, data, initial_epoch=done, first_step=done_steps, verbose=verbose)


def _check_time_budget(minutes, strategy: str) -> None:
    """Refuse a time budget across workers: each has its own clock, but all must stop at the same step
    (a worker that stops first leaves the others waiting in their collective ops)."""
    if minutes is not None and strategy == "multiworker":
        raise ValueError("--minutes cannot be used with --strategy multiworker (each worker would stop by its own "
                         "clock, at different steps); give --steps")


def _start_over(run_dir: Path, config: dict, length: dict, verbose):
    """Train a run that stopped before its first checkpoint from the start, with its config.json settings.

    Such a run (killed during its first epoch) holds config.json and perhaps logs, but no model to
    continue: its model is built again from the config it recorded, and trained from step 0. A
    length given now (`--steps`, `--epochs`, `--minutes`) replaces the recorded one.
    """
    runs.remove_stale_temporaries(run_dir)
    runs.trim_history(run_dir, 0)
    seed_everything(config["seed"], config.get("deterministic", False))
    data = _load_data(config)
    config = runs.with_length(config, data["steps_per_pass"])  # a run of an older tfgen: its epochs in steps
    if any(v is not None for v in length.values()):
        config = {**config, **length, "total_steps": run_length.total_steps(length, data["steps_per_pass"], None)}
    if verbose != 0:
        total = "no step limit" if config["total_steps"] is None else f"{config['total_steps']:,} steps"
        print(f"{run_dir} has no checkpoint (it stopped before its first epoch ended): starting it over with its "
              f"settings: {config['model']} ({config['preset']} preset) on {config['dataset']}, "
              f"{total}, batch {config['batch_size']}, seed {config['seed']}", file=sys.stderr, flush=True)
    write_json(run_dir / runs.CONFIG_FILE, config)  # with its data paths absolute (older runs: as typed)
    with get_strategy(config.get("strategy", "auto")).scope(), dtype_policy(config.get("precision", "float32")):
        net = get_model_class(config["model"]).from_config(config["config"])
        net.default_compile(jit_compile=config.get("jit_compile", False))
    _load_autoencoder(net, config)
    _take_initial_weights(net, config)
    _announce_data(config, data, run_dir, verbose)
    _announce_precision(config, verbose, resumed=True)
    _announce_plan(config, data["info"], verbose)
    return _fit(net, run_dir, config, data, initial_epoch=0, first_step=0, verbose=verbose)


def _announce_data(config: dict, data: dict, out: Path, verbose) -> None:
    """What was read (`tfgen.data.summary`, on stderr unless `verbose` is 0), and its picture:
    `samples/real.png` and the TensorBoard image `real`."""
    from tfgen.data.preview import FILE_NAME, save_real_grid
    from tfgen.data.summary import summarise

    path = save_real_grid(data["examples"], out / runs.SAMPLES_DIR / FILE_NAME, log_dir=out / runs.LOGS_DIR)
    if verbose != 0:
        options = {**runs.data_options(config), "limit": config.get("limit")}
        summary = summarise(config["dataset"], data["examples"], data["test_examples"], **options)
        print(f"{summary.text()}\n  picture: {path}", file=sys.stderr, flush=True)


def _announce_precision(config: dict, verbose, resumed: bool = False) -> None:
    """One line on stderr (unless `verbose` is 0): the dtype policy training uses, and why."""
    if verbose == 0:
        return
    # Runs written before --precision auto existed have no reason: their precision was asked for.
    why = config.get("precision_reason", "asked for")
    if resumed:  # never chosen again: a run keeps the policy it started with, on any machine
        why = f"the run's own; {why}"
    print(f"precision: {config.get('precision', 'float32')} ({why})", file=sys.stderr, flush=True)


def _announce_plan(config: dict, info, verbose, first_step: int = 0) -> None:
    """A few lines on stderr (unless `verbose` is 0): what will be trained, and how long."""
    if verbose != 0:
        print("\n".join(plan_lines(config, info, first_step)), file=sys.stderr, flush=True)


def plan_lines(config: dict, info, first_step: int = 0) -> list[str]:
    """The plan of a run (config.json's settings, `tfgen.data` info of its training split) in words."""
    n, batch, total = info.num_examples, config["batch_size"], config["total_steps"]
    per_pass = run_length.steps_per_pass(n, batch)
    classes = f"{info.num_classes} classes" if info.num_classes else "no labels"
    flips = ", randomly flipped left-right" if config.get("augment") == "flip" else ""
    lines = [f"plan: {n:,} training images ({classes}{flips}), batch {batch}"]
    if total is not None:
        todo = f"steps {first_step:,} to {total:,}" if first_step else f"{total:,} optimiser steps"
        lines.append(f"      {todo} = {(total - first_step) / per_pass:.3g} passes over the data")
    minutes = config.get("minutes")
    if minutes is not None:
        lines.append(f"      or {minutes:g} min, whichever ends first" if total is not None
                     else f"      for {minutes:g} min (stopping at a step boundary)")
    kept = ", a score (the best epoch kept in best/)" if config.get("keep") == "best" else ""
    lines.append(f"      every {config['epoch_steps']:,} steps (an epoch): validation, a sample grid, a checkpoint"
                 + kept)
    return lines


def _fit(net, out: Path, config: dict, data: dict, initial_epoch: int, first_step: int, verbose):
    seed, epoch_steps, total = config["seed"], config["epoch_steps"], config["total_steps"]
    remaining = None if total is None else total - first_step
    seconds = None if config.get("minutes") is None else 60 * config["minutes"]
    epochs = run_length.keras_epochs(initial_epoch, remaining, epoch_steps)
    # The length: `remaining` steps exactly, or until the time budget, whichever ends first. No
    # column in history.csv (a resumed run of an older tfgen keeps the columns it has).
    budget = (StepBudget(remaining, seconds=seconds or math.inf, clock=clock, log_elapsed=False)
              if remaining is not None else TimeBudget(seconds, clock=clock, log_elapsed=False))
    callbacks = [
        Throughput(config["batch_size"]),  # first: it adds to the logs that the loggers below write
        EpochSeed(seed),
        # Before everything that writes: a NaN step ends the run before its epoch is logged or saved.
        TerminateOnNonFinite(),
        budget,
        # append: a resumed run adds its rows (a fresh run starts without the file).
        EpochCSVLogger(str(out / runs.HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(str(out / runs.LOGS_DIR), write_graph=False),
        SampleGrid(out / runs.SAMPLES_DIR, n=GRID_IMAGES, seed=seed + 1, every=config.get("sample_every", 1),
                   log_dir=out / runs.LOGS_DIR, class_names=config.get("class_names"),
                   sample_options=GRID_SAMPLE_OPTIONS),
        AtomicCheckpoint(out / runs.CHECKPOINT_DIR, first_step=first_step),
        interrupt := StopOnInterrupt(),
    ]
    health = training_monitor(net, data["examples"], data["test_examples"], seed=seed + 2,
                              class_names=config.get("class_names"), log_dir=out / runs.LOGS_DIR,
                              history=out / runs.HISTORY_FILE)
    if health is not None:  # before the loggers, which write the figures it adds
        callbacks.insert(1, health)
    if verbose != 0:
        callbacks.insert(1, TimeEstimate(remaining, seconds, clock=clock))
        callbacks.append(OpenEndedProgbar(open_ended=remaining is None))
    if config.get("keep") == "best":  # before the loggers; a config without "keep" keeps the last epoch
        callbacks.insert(1, keep_best.run_callback(out / runs.BEST_DIR, data["examples"], data["test_examples"],
                                                   seed=seed + 3, first_step=first_step,
                                                   sample_options=GRID_SAMPLE_OPTIONS))
    # A family may compute something once per training image (latent diffusion's latents): its batches carry ids.
    with_ids = net.prepare_training_data(data["examples"], config.get("augment"))
    train_ds = training_batches(data["examples"], config["batch_size"], seed, first_step, total,
                                augment=config.get("augment"), with_ids=with_ids)
    resume_hint = f"continue with: tfgen train --resume {out}"
    try:
        net.fit(train_ds, validation_data=data["test"], epochs=epochs, initial_epoch=initial_epoch,
                steps_per_epoch=epoch_steps, callbacks=callbacks, verbose=verbose, shuffle=False)
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{err}; {_checkpoint_note(out)}") from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped mid-epoch
        raise TrainingInterrupted(f"interrupted; {_checkpoint_note(out)}; {resume_hint}", interrupt.signum) from None
    finally:
        interrupt.restore()
    if interrupt.stopped_epoch is not None and not budget.stopped_early:  # stopped before the length asked for
        of = f" of {epochs}" if remaining is not None else ""
        raise TrainingInterrupted(f"interrupted after epoch {interrupt.stopped_epoch}{of}; "
                                  f"{_checkpoint_note(out)}; {resume_hint}", interrupt.signum)
    save_model(net, out / runs.MODEL_FILE)
    return out


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


def _load_data(config: dict, fit_defaults: dict | None = None) -> dict:
    """The training split held once in memory (`tfgen.data.Examples`), test batches, info and steps per pass.

    A new run's `config["batch_size"]` may be None: it is then the family's default for the images'
    shape (`tfgen.catalog.default_batch_size`), set here, once the data says the shape."""
    kwargs = dict(data_dir=config.get("data_dir"), manual_dir=config.get("manual_dir"), limit=config.get("limit"),
                  **runs.data_options(config))
    examples = tfdata.load_examples(config["dataset"], "train", **kwargs)
    if config["batch_size"] is None:
        config["batch_size"] = default_batch_size(fit_defaults, examples.info.image_shape)
    batch_size = config["batch_size"]
    # Full batches only: exact images/second, and no batch-norm step on a 1-image remainder.
    per_pass = run_length.steps_per_pass(examples.info.num_examples, batch_size)  # an error if no batch fits
    test = tfdata.load_examples(config["dataset"], "test", **kwargs)
    return {"examples": examples, "info": examples.info, "steps_per_pass": per_pass, "test": test.batches(batch_size),
            "test_examples": test}
