"""Making a trained preset from a finished run or a `.keras` file (`save_preset`), and the command it records.

The format (files, weights layout, sha256) is `tfgen.pretrained`'s; this module reads the run
(`tfgen.runs`) and writes that format. `python -m benchmarks.make_presets` makes the shipped presets with it.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from tfgen import runs
from tfgen.pretrained import (CONFIG_FILE, FORMAT, METADATA_FILE, WEIGHTS_FILE, sha256, skipped_indices, twins,
                              write_weights)


def save_preset(source, out, *, command: str | None = None, dataset: str | None = None, data_options=None,
                class_names=None, checkpoint=None) -> Path:
    """Write the preset directory `out` from a run directory (its model as `tfgen sample` uses it: the best
    epoch if it kept one) or a `.keras` file. `command`: how it was trained (default: rebuilt from the
    run's config.json); `dataset`, `data_options` (how the images were read: size, channels) and
    `class_names`: as metadata.json gives them (default: the run's; a directory the leaderboard saved
    holds a model.keras only).
    """
    import keras

    from tfgen.io import atomic_path, write_json

    source = Path(source)
    config = runs.read_run_config(source) if (source / runs.CONFIG_FILE).is_file() else {}
    model = runs.load_run(source, checkpoint) if source.is_dir() else runs.load_checkpoint(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    serialized = keras.saving.serialize_keras_object(model)
    write_json(out / CONFIG_FILE, serialized)
    shared = dict(twins(model))
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        write_weights(model, tmp, shared)
    weights = out / WEIGHTS_FILE
    versions = config.get("versions") or runs.versions()
    metadata = {
        "format": FORMAT,
        "family": model.registry_name,
        "preset": config.get("preset"),
        "dataset": dataset or config.get("dataset"),
        "data_options": data_options or config.get("data_options") or {},
        "image_shape": list(model.image_shape),
        "num_classes": model.num_classes,
        "class_names": class_names or config.get("class_names"),
        "accepts_labels": bool(model.accepts_labels),
        "command": command or training_command(config),
        "steps": config.get("total_steps"),
        "checkpoint": _which_checkpoint(source, checkpoint),
        "versions": versions,
        "parameters": int(sum(int(v.numpy().size) for i, v in enumerate(model.weights)
                              if i not in skipped_indices(model, shared))),
        "shared": shared,
        "sha256": sha256(weights),
        "weights_bytes": weights.stat().st_size,
        "date": datetime.date.today().isoformat(),
        "metrics": {},  # measured on these weights later (`write_metrics`); a remade preset starts without
    }
    write_json(out / METADATA_FILE, metadata)
    return out


def _which_checkpoint(source: Path, checkpoint) -> dict | None:
    """Which epoch of a run the preset holds (`tfgen.runs.run_checkpoint`): the best one, or the last."""
    if not source.is_dir():
        return None
    choice = runs.run_checkpoint(source, checkpoint)
    return {key: choice[key] for key in ("checkpoint", "epoch", "epochs")}


def training_command(config: dict) -> str | None:
    """The `tfgen train` command of a run's config.json (model, preset, data set and image options, steps, seed)."""
    if not config:
        return None
    parts = ["tfgen train", config["model"]]
    if config.get("preset") not in (None, "default"):
        parts += ["--preset", config["preset"]]
    parts += ["--dataset", str(config.get("dataset"))]
    options = config.get("data_options") or {}
    size = options.get("image_size")
    if size:
        height, width = (size, size) if isinstance(size, int) else size
        parts += ["--image-size", str(height) if height == width else f"{height}x{width}"]
    if options.get("channels"):
        parts += ["--channels", str(options["channels"])]
    if config.get("steps") is not None:
        parts += ["--steps", str(config["steps"])]
    parts += ["--seed", str(config.get("seed", 0))]
    return " ".join(parts)
