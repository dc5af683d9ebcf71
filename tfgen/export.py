"""Export a trained model as a TensorFlow SavedModel that anything in the TF ecosystem can load.

    tfgen export runs/vae          # -> runs/vae/saved_model/  (or: tfgen train vae ... --export)

and then, with TensorFlow only:

    import tensorflow as tf
    m = tf.saved_model.load("runs/vae/saved_model")
    images = m.sample(tf.random.normal([16, int(m.settings()["latent_dim"])]))  # (16, 28, 28, 1) in [0, 1]

A run trained on a folder of class subfolders also exports its class names:
`m.settings()["class_names"]` (strings; label i is name i) and `class_names` in `metadata.json`.

`model.export()` would export `call()` only, which for a generative model is the
wrong function (a VAE's reconstruction, a GAN's discriminator). Each model
family instead declares its generation functions in `export_endpoints()`
(tfgen/models/base.py): `{name: (fn, [tf.TensorSpec, ...])}`. This module is
generic: it turns those into `keras.export.ExportArchive` endpoints with fixed
input signatures, adds a `settings()` endpoint (the model's hyperparameters and
whatever the family fixed at export time, e.g. a sampler's step count), aliases
`serving_default` to `sample`, and writes `metadata.json` beside `saved_model.pb`.

The result needs no tfgen: `tf.saved_model.load(path).sample(...)`,
`saved_model_cli show --dir path --all`, `saved_model_cli run`, TF Serving, and
`keras.layers.TFSMLayer(path, call_endpoint=...)` for one-input endpoints.

The export is written to a temporary directory beside the target and then
swapped in (one atomic `renameat2(RENAME_EXCHANGE)` on Linux), so a crash
mid-export leaves the previous good export intact.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from tfgen import runs
from tfgen.io import current_umask, load_keras_file, write_json

DEFAULT_ROOT = Path("saved_models")
DEFAULT_ENDPOINT = "sample"
SETTINGS_ENDPOINT = "settings"
METADATA_FILE = "metadata.json"
# Keys of every Keras model config that are not hyperparameters of the family.
_KERAS_KEYS = ("name", "trainable", "dtype")


class ExportError(ValueError):
    """A model that cannot be exported, or a target that must not be overwritten."""


def export_model(model, out, metadata: dict | None = None, class_names=None) -> Path:
    """Write `model`'s endpoints as a SavedModel at `out` (replacing an earlier export atomically).

    `metadata` is merged into `metadata.json` (the run's name, preset, dataset, ...).
    `class_names` (one per class: label i is `class_names[i]`) go into `settings()` and the metadata.
    Returns the export directory.
    """
    out = Path(out)
    endpoints = _checked_endpoints(model)
    settings_fn = endpoints.pop(SETTINGS_ENDPOINT, None)
    settings = model_settings(model)
    if settings_fn is not None:
        settings.update({k: _plain(v) for k, v in settings_fn[0]().items()})
    if class_names:
        if len(class_names) != model.num_classes:
            raise ExportError(f"class_names must name the model's {model.num_classes} classes, "
                              f"got {len(class_names)}")
        settings["class_names"] = [str(name) for name in class_names]  # a string tensor in settings()
    constants = {k: tf.constant(v) for k, v in settings.items()}

    archive = keras.export.ExportArchive()
    described = {}
    # `sample` first: ExportArchive aliases the first endpoint as `serving_default`.
    for name in sorted(endpoints, key=lambda n: n != DEFAULT_ENDPOINT):
        fn, signature = endpoints[name]
        traced = archive.add_endpoint(name, fn, list(signature))
        described[name] = _describe(signature, traced)
    archive.add_endpoint(SETTINGS_ENDPOINT, lambda: dict(constants), [])

    metadata = {
        "model": model.registry_name,
        "class": type(model).__name__,
        "requires_labels": bool(model.requires_labels),
        "accepts_labels": bool(model.accepts_labels),
        **({"class_names": settings["class_names"]} if "class_names" in settings else {}),
        **(metadata or {}),
        "config": model.get_config(),
        "endpoints": described,
        "default_endpoint": DEFAULT_ENDPOINT,
        "settings": settings,
        "exported": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": runs.versions(),
    }
    with atomic_directory(out) as tmp:
        archive.write_out(str(tmp), verbose=False)
        write_json(tmp / METADATA_FILE, metadata)
    return out


def export_run(run, out=None, checkpoint: str | None = None) -> Path:
    """Export a run directory or a `.keras` file. Of a run, the model `tfgen.runs.load_run(run, checkpoint)`
    loads: its best epoch when it kept one (`--keep best`), else its `model.keras`, else its last checkpoint.

    The default `out` is `RUN_DIR/saved_model` for a run directory (inside the run, so
    that an export never replaces another run's, or one kept in the repository), and
    `saved_models/<file name>` for a `.keras` file. `metadata.json`
    records the run's model name, preset, config, dataset, the versions it was
    trained with and `eval.json` from the run directory if there is one.
    """
    run = Path(run)
    class_names = None
    if run.is_file() or run.suffix == ".keras":
        model, metadata = load_keras_file(run, error=ExportError), {"source": {"file": str(run)}}
        default_out = DEFAULT_ROOT / run.stem
    else:
        config = runs.read_run_config(run)
        choice = runs.run_checkpoint(run, checkpoint)
        model = runs.load_run(run, checkpoint)
        class_names = config.get("class_names")  # a folder's subfolder names
        source = run / runs.MODEL_FILE
        if runs.is_trained_preset(run):  # `tfgen.pretrained`: its weights, as shipped
            from tfgen.pretrained import WEIGHTS_FILE

            source = run / WEIGHTS_FILE
        metadata = {
            "preset": config.get("preset"),
            "dataset": config.get("dataset"),
            "trained_with": config.get("versions"),
            "source": {"run_dir": str(run), "file": str(source)},
        }
        if choice["checkpoint"] == "best":
            metadata["source"] = {"run_dir": str(run), "file": str(choice["path"]), "checkpoint": "best",
                                  "epoch": choice["epoch"], "epochs": choice["epochs"], "score": choice["score"]}
        elif not source.exists():  # a checkpointed (unfinished) run: say how far it got
            state = runs.read_state(run)
            metadata["source"] = {"run_dir": str(run), "file": str(run / runs.CHECKPOINT_FILE),
                                  "epoch": state["epoch"], "epochs": config.get("epochs"),
                                  "step": state.get("step"), "total_steps": config.get("total_steps")}
        scores = run / runs.EVAL_FILE
        if scores.exists():
            try:
                metadata["eval"] = json.loads(scores.read_text())
            except json.JSONDecodeError as err:
                raise ExportError(f"cannot read {scores}: {err}") from None
        default_out = run / runs.EXPORT_DIR
    return export_model(model, out if out is not None else default_out, metadata, class_names=class_names)


def model_settings(model) -> dict:
    """The model's hyperparameters that are plain values (what `settings()` returns before family extras).

    Two facts about labels come first, under names that cannot be read two ways:
    `accepts_labels` (`sample` takes labels) and `requires_labels` (it needs them: cGAN, cVAE).
    A diffusion model trained with `class_conditional=True` accepts labels but does not require them
    (label -1 draws from the unconditional model). A family's own hyperparameter called
    `conditional` (PixelCNN's) follows, from its config.
    """
    settings = {"image_shape": list(model.image_shape), "num_classes": model.num_classes,
                "requires_labels": bool(model.requires_labels), "accepts_labels": bool(model.accepts_labels)}
    for key, value in model.get_config().items():
        if key not in _KERAS_KEYS and key not in settings:
            value = _plain(value, strict=False)
            if value is not None:
                settings[key] = value
    return settings


def read_metadata(path) -> dict:
    """The `metadata.json` of an export directory."""
    return json.loads((Path(path) / METADATA_FILE).read_text())


# ---------------------------------------------------------------------- helpers
def _checked_endpoints(model) -> dict:
    endpoints = dict(model.export_endpoints())
    if DEFAULT_ENDPOINT not in endpoints:
        raise ExportError(f"{type(model).__name__}.export_endpoints() declares no {DEFAULT_ENDPOINT!r} endpoint")
    for name, entry in endpoints.items():
        if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[0])
                and all(isinstance(s, tf.TensorSpec) for s in entry[1])):
            raise ExportError(f"{type(model).__name__}.export_endpoints()[{name!r}] must be "
                              "(callable, [tf.TensorSpec, ...])")
    if SETTINGS_ENDPOINT in endpoints and list(endpoints[SETTINGS_ENDPOINT][1]):
        raise ExportError(f"the {SETTINGS_ENDPOINT!r} endpoint takes no inputs")
    return endpoints


def _describe(signature, traced) -> dict:
    """Inputs and outputs of an endpoint, by the names `saved_model_cli` and TF Serving use."""
    outputs = traced.get_concrete_function().structured_outputs
    if isinstance(outputs, dict):
        named = sorted(outputs.items())
    else:
        flat = tf.nest.flatten(outputs)
        named = [(f"output_{i}", t) for i, t in enumerate(flat)]
    spec = lambda t: {"shape": [None if d is None else int(d) for d in t.shape], "dtype": t.dtype.name}
    return {
        # A list: the order of the positional arguments (JSON objects are written with sorted keys).
        "inputs": [{"name": s.name, **spec(s)} for s in signature],
        "outputs": {name: spec(t) for name, t in named},
    }


def _plain(value, strict=True):
    """A JSON- and `tf.constant`-friendly value: str, bool, int, float, or a flat list of numbers."""
    if tf.is_tensor(value) or hasattr(value, "tolist"):
        value = value.numpy().tolist() if tf.is_tensor(value) else value.tolist()
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        kinds = {type(v) for v in value}
        return [float(v) for v in value] if float in kinds else list(value)
    if strict:
        raise ExportError(f"export setting {value!r} is not a str, bool, number or flat list of numbers")
    return None


# ---------------------------------------------------------------------- atomic directories
@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory beside `path`; on success it replaces `path` atomically.

    An existing `path` is replaced only if it looks like an earlier export
    (a `saved_model.pb` or `metadata.json` in it): never a directory of other files.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and ((path / "saved_model.pb").exists()
                                                 or (path / METADATA_FILE).exists())):
        raise ExportError(f"refusing to replace {path}: it exists and is not a SavedModel export")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of an export that was killed before its rename.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; an export is for sharing
    try:
        yield tmp
        _swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, target: Path) -> None:
    """Move directory `new` to `target`; afterwards `new` holds the previous target, if any."""
    if not target.exists():
        os.rename(new, target)  # atomic
        return
    if _exchange(new, target):
        return
    # No atomic exchange (not Linux, or a filesystem without it): two renames. A crash
    # between them leaves the previous export at `.NAME.old`, not lost.
    backup = target.with_name(f".{target.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    os.rename(target, backup)
    os.rename(new, target)
    os.rename(backup, new)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2(RENAME_EXCHANGE); False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
