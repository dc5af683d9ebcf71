"""The run directory: its file names, its lock, and everything that reads it.

A run directory holds everything one `tfgen train` produced:

    config.json        model name, preset and full model config, data and fit settings, versions
    history.csv        one row per epoch (`epoch_steps` optimiser steps): training and `val_` metrics
    samples/           epoch_001.png, … (fixed noise)
    checkpoints/       last.keras + state.json, rewritten atomically each epoch
    best/              with --keep best: best.json and the epoch it names (epoch_037.keras), rewritten when
                       an epoch scores better (`tfgen.keep_best`)
    logs/              TensorBoard
    model.keras        the final model
    eval.json          `tfgen eval`'s scores, if it was run
    .lock              while a process writes the run: locked (flock) by it, so a second writer refuses

Training (`tfgen.training`), its callbacks, export, evaluation and the command
line take these names from here, and read runs with the functions below, so
the format is defined in one place (as keras-hub's `preset_utils` does for a
preset directory). Run directories written by earlier versions load and
resume: keep it so (tests/test_runs.py builds one in the old format).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import platform
from pathlib import Path

from tfgen.checks import int_at_least
from tfgen.io import LockHeldError, file_lock, load_keras_file, stale_temporaries, write_text

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "last.keras"  # in CHECKPOINT_DIR
STATE_NAME = "state.json"  # in CHECKPOINT_DIR
CHECKPOINT_FILE = f"{CHECKPOINT_DIR}/{CHECKPOINT_NAME}"
STATE_FILE = f"{CHECKPOINT_DIR}/{STATE_NAME}"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"
EVAL_FILE = "eval.json"
EXPORT_DIR = "saved_model"  # `tfgen export RUN_DIR` and `train --export` without a directory
LOCK_FILE = ".lock"
BEST_DIR = "best"
BEST_NAME = "best.json"  # in BEST_DIR: {"epoch", "step", "score", "file": the model file beside it, ...}
BEST_FILE = f"{BEST_DIR}/{BEST_NAME}"
#: `tfgen train --keep`: which epochs a run keeps; `--checkpoint` of sample/export/eval: which one they use.
KEEP = ("best", "last")


class RunDirectoryError(ValueError):
    """A run directory that is missing, incomplete, or already holds another run."""


# ---------------------------------------------------------------------- reading a run
def read_run_config(run_dir) -> dict:
    """`config.json`: the run's model name, preset, settings and model config.

    Its data paths come back absolute (`absolute_data_paths`), whatever the working directory.
    A trained preset's directory (`tfgen.pretrained`) answers from its metadata.json.
    """
    if is_trained_preset(run_dir):
        from tfgen import pretrained

        return pretrained.run_config(run_dir)
    path = Path(run_dir) / CONFIG_FILE
    config = _read_json(path, f"{run_dir} is not a tfgen run directory")
    if not isinstance(config, dict) or "model" not in config:
        raise RunDirectoryError(f"{path} is corrupt: no model name in it")
    return absolute_data_paths(config, run_dir)


def absolute_data_paths(config: dict, run_dir) -> dict:
    """`config` with its dataset path (`folder:`, `idx:`, `npz:`), `data_dir` and `manual_dir` absolute.

    Runs store them absolute since they are written (`tfgen.training.train`); older runs kept them
    as typed, relative to the directory `train` ran in. That directory is not recorded, so a relative
    path is looked up next to the run directory (`--out NAME`), then one level up (the default
    `runs/NAME`), and taken relative to the working directory when neither holds it.
    """
    from tfgen.data import absolute_name, absolute_path, path_of

    run_dir = Path(run_dir).absolute()

    def base(path) -> Path | None:
        return next((d for d in (run_dir.parent, run_dir.parent.parent) if (d / Path(path).expanduser()).exists()),
                    None)

    out = dict(config)
    if isinstance(out.get("dataset"), str) and path_of(out["dataset"]) is not None:
        out["dataset"] = absolute_name(out["dataset"], base(path_of(out["dataset"])))
    for key in ("data_dir", "manual_dir"):
        if out.get(key):
            out[key] = absolute_path(out[key], base(out[key]))
    return out


def read_state(run_dir) -> dict:
    """`checkpoints/state.json`: {"epoch": completed epochs, "step": optimiser steps done, "logs": ...}
    (no "step" in a run of an older tfgen); {"epoch": 0} when a kill came between the first checkpoint and
    its state.json (`progress` then counts from the optimiser)."""
    path = Path(run_dir) / STATE_FILE
    if not path.exists() and (Path(run_dir) / CHECKPOINT_FILE).exists():
        return {"epoch": 0, "logs": {}}
    state = _read_json(path, f"{run_dir} has no checkpoint to resume from")
    try:
        int_at_least(state["epoch"], "epoch", 0)
    except (TypeError, KeyError, ValueError):  # not an object, no "epoch", or not a count
        raise RunDirectoryError(f"{path} is corrupt: no epoch count in it") from None
    return state


def has_checkpoint(run_dir) -> bool:
    """Whether a run got as far as its first checkpoint (a run killed during its first epoch did not)."""
    return any((Path(run_dir) / name).exists() for name in (STATE_FILE, CHECKPOINT_FILE))


def load_run(run_dir, checkpoint: str | None = None):
    """The model of a run directory: its best epoch (`checkpoint="best"`: `best/`, kept by `--keep best`), or
    its last (`"last"`: `model.keras`, else the last checkpoint). None: the best if the run kept one, else
    the last. `run_checkpoint` says which file that is. A trained preset's directory: its model
    (`tfgen.pretrained.from_preset`)."""
    if is_trained_preset(run_dir):
        from tfgen import pretrained

        return pretrained.from_preset(run_dir)
    return load_checkpoint(run_checkpoint(run_dir, checkpoint)["path"])


def run_checkpoint(run_dir, checkpoint: str | None = None) -> dict:
    """Which model file `load_run(run_dir, checkpoint)` loads: {"path", "checkpoint": "best" or "last", "epoch",
    "epochs" (the run's epochs done), "best_epoch" (None: the run kept no best), "score" (of the best)}; epochs
    are None where not recorded."""
    from tfgen.checks import one_of

    run_dir = Path(run_dir)
    if checkpoint is not None:
        one_of(checkpoint, KEEP, "checkpoint")
    if not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} does not exist")
    if is_trained_preset(run_dir):  # one set of weights, the last of the run that made it
        return {"path": run_dir, "checkpoint": "last", "epoch": None, "epochs": None, "best_epoch": None,
                "score": None}
    best = read_best(run_dir / BEST_DIR)
    epochs = _epochs_done(run_dir)
    if checkpoint == "best" and best is None:
        raise RunDirectoryError(f"{run_dir} kept no best epoch (no {BEST_FILE}: trained with --keep last, by a "
                                f"tfgen before --keep, or stopped before its first epoch); use --checkpoint last")
    if best is not None and checkpoint != "last":
        return {"path": run_dir / BEST_DIR / best["file"], "checkpoint": "best", "epoch": best["epoch"],
                "epochs": epochs, "best_epoch": best["epoch"], "score": best.get("score")}
    for candidate in (run_dir / MODEL_FILE, run_dir / CHECKPOINT_FILE):
        if candidate.exists():
            return {"path": candidate, "checkpoint": "last", "epoch": epochs, "epochs": epochs,
                    "best_epoch": best and best["epoch"], "score": best and best.get("score")}
    if (run_dir / CONFIG_FILE).exists():
        raise RunDirectoryError(f"{run_dir} stopped before its first epoch ended: it has no model yet (no "
                                f"{CHECKPOINT_FILE}); train it with: tfgen train --resume {run_dir} (it starts over "
                                f"with the run's settings)")
    raise RunDirectoryError(f"{run_dir} holds no {MODEL_FILE} and no {CHECKPOINT_FILE}: not a tfgen run")


def load_run_or_file(path, action: str = "load"):
    """The model of a run directory (`load_run`), a `.keras` file or a trained preset (its name or directory);
    anything else is one line listing the shipped presets."""
    from tfgen import pretrained

    path = pretrained.resolve(path)
    if path.is_dir():
        return load_run(path)
    return load_checkpoint(path, action)


def is_trained_preset(path) -> bool:
    """Whether `path` is a trained preset's directory (`tfgen.pretrained`), which commands read as a run."""
    from tfgen import pretrained

    return pretrained.is_preset(path)


def read_best(best_dir) -> dict | None:
    """`best.json` of a run's `best/` directory (None when the run kept no best epoch); a `RunDirectoryError`
    when it is corrupt or names a model file that is not there."""
    path = Path(best_dir) / BEST_NAME
    if not path.exists():
        return None
    best = _read_json(path, "")
    if not isinstance(best, dict) or not isinstance(best.get("file"), str) or not isinstance(best.get("epoch"), int):
        raise RunDirectoryError(f"{path} is corrupt: no model file and epoch in it")
    if not (path.parent / best["file"]).exists():
        raise RunDirectoryError(f"{path} names {best['file']}, which is not in {path.parent}")
    return best


def _epochs_done(run_dir: Path) -> int | None:
    try:
        return read_state(run_dir)["epoch"] or None
    except RunDirectoryError:
        return None


def checkpoint_note(choice: dict) -> str | None:
    """One line on which epoch `run_checkpoint` chose, for a run that kept a best one (else None):
    `using the best epoch 37 of 52 (score 0.21); --checkpoint last for the last`."""
    if choice.get("best_epoch") is None:
        return None
    score = f" (score {choice['score']:.3g})" if isinstance(choice.get("score"), (int, float)) else ""
    if choice["checkpoint"] == "best":
        of = f" of {choice['epochs']}" if choice.get("epochs") else ""
        return f"using the best epoch {choice['epoch']}{of}{score}; --checkpoint last for the last"
    epoch = f" epoch {choice['epoch']}" if choice.get("epoch") else ""
    return (f"using the last{epoch} ({choice['path'].name}), not the best epoch {choice['best_epoch']}{score}; "
            f"--checkpoint best for it")


def load_checkpoint(path, action: str = "load"):
    """A run's model file; a truncated or foreign file is a one-line `RunDirectoryError`."""
    return load_keras_file(path, action, RunDirectoryError)


def _read_json(path: Path, missing: str):
    """The JSON in a run directory's file, or a RunDirectoryError saying it is `missing` or corrupt."""
    if not path.exists():
        raise RunDirectoryError(f"{path} not found: {missing}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirectoryError(f"{path} is corrupt ({err})") from None


# ---------------------------------------------------------------------- writing a run
@contextlib.contextmanager
def run_lock(run_dir):
    """Hold `RUN_DIR/.lock` while writing into a run: a second `train`/`resume` of it refuses.

    See `tfgen.io.file_lock`: the kernel drops the lock when the writer dies, however
    it dies, and the file is removed when the writer is done, so a finished (or
    cleanly interrupted) run holds no `.lock`; only kill -9 leaves one, which blocks nothing.
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(Path(run_dir) / LOCK_FILE, wait=False))
        except LockHeldError as err:
            raise RunDirectoryError(f"{run_dir} is being written by another running tfgen process (pid {err.holder}); "
                                    "wait for it to finish, or stop it and then --resume") from None
        yield


def refuse_existing_run(out: Path) -> None:
    """A `RunDirectoryError` if `out` already holds a run: a new run never overwrites one."""
    if (Path(out) / CONFIG_FILE).exists():
        model = read_run_config(out).get("model", "?")
        how = "continue it" if has_checkpoint(out) else "start it over (it stopped before its first checkpoint)"
        raise RunDirectoryError(f"{out} already holds a run (of {model!r}); choose another --out, "
                                f"or {how} with: tfgen train --resume {out}")


def with_length(config: dict, steps_per_pass: int) -> dict:
    """`config` with `total_steps` and `epoch_steps`; a run of an older tfgen, which trained
    `epochs` passes of one epoch each, gets them from its epochs and the data's steps per pass."""
    if "total_steps" in config:
        return config
    return {**config, "total_steps": config["epochs"] * steps_per_pass, "epoch_steps": steps_per_pass}


def progress(net, state: dict, epoch_steps: int) -> tuple[int, int]:
    """(completed epochs, optimiser steps done): state.json's, checked against the optimiser's step count.

    The checkpoint and state.json are two files, each replaced atomically; a kill
    between the two leaves a model one epoch (at most `epoch_steps` steps) ahead of
    state.json. The optimiser, saved inside the model file, knows. A state.json of an
    older tfgen has no step count: its epochs were `epoch_steps` steps each.
    """
    import tensorflow as tf

    epoch = state["epoch"]
    step = state.get("step", epoch * epoch_steps)
    if getattr(net, "optimizer", None) is not None:
        iterations = int(tf.convert_to_tensor(net.training_steps))  # from variables, mirrored ones too
        if 0 < iterations - step <= epoch_steps:
            return epoch + 1, iterations
    return epoch, step


def trim_history(run_dir, epochs_done: int) -> None:
    """Drop history.csv rows of epochs that are not in the checkpoint (and a half-written last line).

    Epochs are counted from 1 (as `EpochCSVLogger` writes them); a history from an older tfgen,
    counted from 0 (its first row says 0), is renumbered so that the resumed run's rows follow on.
    """
    path = Path(run_dir) / HISTORY_FILE
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


def remove_stale_temporaries(run_dir) -> None:
    """Temporary files of atomic writes that a killed process left behind."""
    for name in (CHECKPOINT_FILE, STATE_FILE, MODEL_FILE, CONFIG_FILE, HISTORY_FILE):
        for stale in stale_temporaries(Path(run_dir) / name):
            stale.unlink(missing_ok=True)


def versions() -> dict:
    """The versions a run was trained with (stored in its config.json and in exports' metadata)."""
    import keras
    import tensorflow as tf

    import tfgen

    return {"tfgen": tfgen.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}


def data_options(config: dict) -> dict:
    """A run's data options (`tfgen.data.DATA_OPTIONS`) as `tfgen.data.load` takes them; {} for older runs."""
    options = dict(config.get("data_options") or {})
    if isinstance(options.get("image_size"), list):
        options["image_size"] = tuple(options["image_size"])
    if isinstance(options.get("background"), list):
        options["background"] = tuple(options["background"])
    return options
