"""Trained presets: a trained model in a directory that rebuilds it without its run (after keras-hub's presets).

    model = tfgen.from_preset("digits/cvae")        # shipped with tfgen: tfgen/pretrained/digits/cvae/
    model = tfgen.from_preset("path/to/my_preset")  # any directory of the same layout

A preset directory holds

    config.json        the model's Keras config (`keras.saving.serialize_keras_object`): enough to rebuild it
    metadata.json      family, data set and image shape, class names, the command that trained it, versions,
                       parameter count, the weights file's sha256 and size, the date, measured metrics
    model.weights.h5   the float32 weights, no optimiser

The weights file holds one dataset per model weight, in the order of `model.weights` (which the
family's constructor fixes), each with its path and shape as attributes. A family that samples with
an exponential moving average of a network (diffusion, flow, latent diffusion: `ema_network`; a GAN
with `ema_decay`: `ema_generator`) ships only the average: sampling never reads the trained copy, and
leaving it out halves the file. On loading, the trained copy starts as the average (`metadata.json`
"shared"), so the model samples exactly as the run's did and fine-tunes from its best weights.

The sha256 in metadata.json covers the weights file only, and is checked before every load: a file
changed or truncated since the preset was made is refused in one line naming it. Metrics are added to
metadata.json later (`python -m benchmarks.pretrained`) without touching the weights.

This package reads and writes the format; making a preset from a run is `tfgen.pretrained.making`
(`save_preset`), starting a run from one is `tfgen.finetune`: both read runs (`tfgen.runs`), which in
turn reads presets through this package, so they live apart from it.

Listing and reading metadata import neither Keras nor TensorFlow (`tfgen list`, argument checks).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tfgen.checks import did_you_mean

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
#: Where the shipped presets live: `<dataset>/<family>/` below this package.
SHIPPED_ROOT = Path(__file__).resolve().parent
#: (trained network, its average that sampling uses): the pairs a preset ships once, as the average.
AVERAGED_TWINS = (("network", "ema_network"), ("generator", "ema_generator"))
FORMAT = 1
#: metadata.json "metrics" that `tfgen list` shows (`python -m benchmarks.pretrained` measures them).
LISTED_METRICS = {"fid": "FID", "precision": "precision", "recall": "recall", "conditional_accuracy": "cond.acc",
                  "sample_16_seconds": "s/16"}


class PresetError(ValueError):
    """A preset that is unknown, incomplete, or whose weights do not match its metadata."""


# ---------------------------------------------------------------------- finding presets (no TensorFlow)
def is_preset(path) -> bool:
    """Whether `path` is a preset directory (its metadata and weights files are there)."""
    path = Path(path)
    return (path / METADATA_FILE).is_file() and (path / WEIGHTS_FILE).exists()


def shipped() -> dict[str, Path]:
    """The presets that ship with tfgen, by name (`digits/cvae`), sorted."""
    return {f"{d.parent.name}/{d.name}": d for d in sorted(SHIPPED_ROOT.glob("*/*/")) if is_preset(d)}


def find(name_or_path) -> Path | None:
    """The preset directory `name_or_path` names (a shipped name or a preset directory), else None."""
    path = Path(name_or_path)
    if is_preset(path):
        return path
    return shipped().get(str(name_or_path).strip("/"))


def resolve(name_or_path) -> Path:
    """A command's RUN argument as a path: an existing run directory, `.keras` file or preset directory as
    given, a shipped preset's name as its directory; anything else is one line listing the shipped presets."""
    path = Path(name_or_path)
    if path.exists():
        return path
    found = find(name_or_path)
    if found is not None:
        return found
    names = list(shipped())
    listing = f"; shipped presets: {', '.join(names)}" if names else " (no presets are shipped with this tfgen)"
    raise PresetError(f"run directory {name_or_path} does not exist, nor a .keras file or trained preset of that "
                      f"name{did_you_mean(name_or_path, names)}{listing}")


def _directory(preset) -> Path:
    """A preset given by name or directory, as its directory (`resolve`)."""
    return Path(preset) if is_preset(preset) else resolve(preset)


def read_metadata(preset) -> dict:
    """metadata.json of a preset (a name or a directory); a `PresetError` if it is missing or corrupt."""
    path = _directory(preset)
    return _read_json(path / METADATA_FILE)


def run_config(preset) -> dict:
    """What a run directory's config.json says that commands read (`tfgen.runs.read_run_config` of a preset):
    the family, its hyperparameter preset, data set and how it was read, class names, versions."""
    meta = read_metadata(preset)
    return {"model": meta["family"], "preset": meta.get("preset"), "dataset": meta.get("dataset"),
            "data_options": meta.get("data_options") or {}, "class_names": meta.get("class_names"),
            "versions": meta.get("versions")}


def listing() -> list[str]:
    """`tfgen list`'s lines on the shipped presets: name, image shape, size, metrics (from metadata.json)."""
    lines = []
    for name, path in shipped().items():
        meta = read_metadata(path)
        shape = "x".join(map(str, meta.get("image_shape", ())))
        metrics = meta.get("metrics") or {}
        scores = " ".join(f"{label} {metrics[key]:.3g}" for key, label in LISTED_METRICS.items()
                          if isinstance(metrics.get(key), (int, float)))
        lines.append(f"{name:<28} {shape:<9} {meta.get('parameters', 0) / 1e6:5.2f}M params  "
                     f"{meta.get('weights_bytes', 0) / 1e6:5.1f} MB  {scores or 'not measured'}")
    return lines


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PresetError(f"{path} not found: not a trained preset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PresetError(f"{path} is corrupt ({err})") from None


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(preset) -> Path:
    """The preset's weights file, after checking it against the size and sha256 in metadata.json."""
    path = _directory(preset)
    meta, weights = read_metadata(path), path / WEIGHTS_FILE
    size, expected = weights.stat().st_size, meta.get("sha256")
    if size != meta.get("weights_bytes", size) or sha256(weights) != expected:
        raise PresetError(f"{weights} does not match the sha256 in its {METADATA_FILE} ({size:,} bytes, expected "
                          f"{meta.get('weights_bytes', 0):,}): changed or truncated since the preset was made; "
                          f"refusing to load it")
    return weights


# ---------------------------------------------------------------------- loading
def from_preset(preset):
    """The trained model of a preset: a shipped name (`"digits/cvae"`, see `shipped()`) or a preset
    directory. Its weights are checked against their sha256 first (`verify`)."""
    import keras

    import tfgen.models  # noqa: F401  (registers the families with Keras)

    path = _directory(preset)
    if not is_preset(path):
        raise PresetError(f"{path} is not a trained preset: it has no {METADATA_FILE} and {WEIGHTS_FILE}")
    weights = verify(path)
    model = keras.saving.deserialize_keras_object(_read_json(path / CONFIG_FILE))
    _read_weights(model, weights, read_metadata(path).get("shared") or {})
    return model


def twins(model) -> list[tuple[str, str]]:
    """The (trained, averaged) sub-network pairs of `model` (`AVERAGED_TWINS` that it has)."""
    return [(trained, average) for trained, average in AVERAGED_TWINS
            if getattr(model, trained, None) is not None and getattr(model, average, None) is not None]


def _read_weights(model, path: Path, shared: dict) -> None:
    import h5py

    skipped = skipped_indices(model, shared)
    weights = model.weights
    with h5py.File(path, "r") as f:
        stored = f["weights"]
        if len(stored) != len(weights) - len(skipped):
            raise PresetError(f"{path} holds {len(stored)} weights, the model of its config "
                              f"{len(weights) - len(skipped)}: not this model's weights file")
        for i, variable in enumerate(weights):
            if i in skipped:
                continue
            value = stored[f"{i:05d}"][()]
            if tuple(value.shape) != tuple(variable.shape):
                raise PresetError(f"{path}: weight {i} ({variable.path}) has shape {value.shape}, the model "
                                  f"{tuple(variable.shape)}: not this model's weights file")
            variable.assign(value)
    for trained, average in shared.items():  # the trained copy starts as the average it shipped as
        for t, a in zip(getattr(model, trained).weights, getattr(model, average).weights):
            t.assign(a)


def skipped_indices(model, shared: dict) -> set[int]:
    """Indices in `model.weights` of the trained twins that a preset does not store."""
    ids = {id(v) for trained in shared for v in getattr(model, trained).weights}
    return {i for i, v in enumerate(model.weights) if id(v) in ids}


# ---------------------------------------------------------------------- writing
def write_weights(model, path: Path, shared: dict) -> None:
    import h5py
    import numpy as np

    skipped = skipped_indices(model, shared)
    with h5py.File(path, "w") as f:
        group = f.create_group("weights")
        for i, variable in enumerate(model.weights):
            if i in skipped:
                continue
            value = np.asarray(variable.numpy())
            if value.dtype.kind == "f":
                value = value.astype(np.float32)  # fp32 weights, whatever the compute policy
            data = group.create_dataset(f"{i:05d}", data=value)
            data.attrs["path"] = variable.path


def write_metrics(preset, metrics: dict) -> None:
    """Put measured `metrics` into a preset's metadata.json (the sha256 covers the weights only)."""
    from tfgen.io import write_json

    path = _directory(preset)
    write_json(path / METADATA_FILE, {**read_metadata(path), "metrics": metrics})
