"""The model families' data files, read without TensorFlow: what the command line and the classes know.

Each family's module (`tfgen/models/vae.py`) has a data file beside it (`tfgen/models/vae.json`)
holding what is data rather than code:

* `name`, `class`: the registered name and the class that `@register_model(name)` decorates;
* `presets`: hyperparameters by preset name (`tiny` and `default` at least), `notes` on them
  (why a preset is what it is: JSON has no comments), `preset_aliases` (former names that
  still build but are not listed);
* `fit_defaults`: the `steps` and `batch_size` that `tfgen train` uses when none is given;
  optionally `max_batch_subpixels`, a cap on batch × height × width × channels for families
  whose memory grows with the image (`default_batch_size`);
* `auto_bfloat16`: the presets `--precision auto` trains in mixed_bfloat16 (`tfgen.precision`);
* `requires_labels`: every model of the class needs class labels (cGAN, cVAE; a family whose
  need depends on a hyperparameter says so per instance);
* `halving_networks`: image sizes are those of `tfgen.layers.resolution`;
* `quality_monotone`: false makes `tfgen train` keep the best epoch by default (`--keep best`);
* `hyperparameters`: the constructor's defaults, which `--set KEY=VALUE` is checked against.

One owner: `@register_model` (`tfgen.registry`) gives the class these values from the file,
and this module reads the same file with `json`, so `tfgen list`, `tfgen train --help` and
argument errors answer without importing TensorFlow and never disagree with the library. The
constructor's signature stays the owner of its defaults: tests/test_catalog.py checks that
`hyperparameters` here equals it, family by family. JSON arrays are read as tuples, as the
presets' sequences always were in Python.

Adding a family: its module (a `GenerativeModel` subclass under `@register_model("name")`),
its data file beside it, and a short test file; nothing else lists the families.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from tfgen.checks import UnknownNameError, did_you_mean, unknown_name

_MODELS_DIR = Path(__file__).parent / "models"
_PACKAGE = "tfgen.models"


@dataclass(frozen=True)
class Family:
    """A registered model family as its data file describes it."""

    name: str
    module: str  # e.g. "tfgen.models.vae"
    class_name: str
    presets: dict
    fit_defaults: dict
    hyperparameters: dict  # constructor argument -> default value
    notes: dict = field(default_factory=dict)
    preset_aliases: dict = field(default_factory=dict)
    auto_bfloat16: tuple = ()
    requires_labels: bool = False
    halving_networks: bool = False
    quality_monotone: bool = True


_REQUIRED = ("name", "class", "presets", "fit_defaults", "hyperparameters")
_KEYS = {*_REQUIRED, "notes", "preset_aliases", "auto_bfloat16", "requires_labels", "halving_networks",
         "quality_monotone"}


def _tuples(value):
    """JSON's arrays as the tuples the presets were written with, at any depth."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def read_family(path) -> Family:
    """The family described by the data file `path`; a one-line error naming the file if it is malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable family data file ({e})") from None
    missing = [k for k in _REQUIRED if k not in data]
    unknown = sorted(set(data) - _KEYS)
    if missing or unknown:
        raise ValueError(f"{path}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
    if not {"tiny", "default"} <= set(data["presets"]):
        raise ValueError(f"{path}: presets must include 'tiny' and 'default'")
    return Family(data["name"], f"{_PACKAGE}.{path.stem}", data["class"], presets=_tuples(data["presets"]),
                  fit_defaults=dict(data["fit_defaults"]), hyperparameters=_tuples(data["hyperparameters"]),
                  notes=data.get("notes", {}), preset_aliases=data.get("preset_aliases", {}),
                  auto_bfloat16=tuple(data.get("auto_bfloat16", ())),
                  **{k: bool(data[k]) for k in ("requires_labels", "halving_networks", "quality_monotone") if k in data})


def data_file(module_file) -> Path:
    """The data file beside a family's module (`.../vae.py` -> `.../vae.json`)."""
    return Path(module_file).with_suffix(".json")


@functools.cache
def families() -> dict[str, Family]:
    """Every family by name (sorted), read from the data files in tfgen/models."""
    found = {}
    for path in sorted(_MODELS_DIR.glob("*.json")):
        fam = read_family(path)
        if fam.name in found:
            raise ValueError(f"{path}: family {fam.name!r} is already described by {found[fam.name].module}")
        found[fam.name] = fam
    return dict(sorted(found.items()))


def family(name: str) -> Family:
    """The family called `name`; an `UnknownNameError` suggesting the nearest name otherwise."""
    found = families()
    if name not in found:
        raise unknown_name(name, found, "model")
    return found[name]


def check_preset(name: str, preset: str) -> str:
    """`preset` if family `name` has it; an `UnknownNameError` suggesting the nearest preset otherwise."""
    presets = list(family(name).presets)
    if preset not in presets:
        raise UnknownNameError(f"unknown preset {preset!r} for {name!r}{did_you_mean(preset, presets)}; "
                               f"choose from {', '.join(presets)}")
    return preset


def default_batch_size(fit_defaults: dict, image_shape) -> int:
    """The batch size a run uses when none is given: `fit_defaults["batch_size"]`, made smaller where the
    family caps batch × height × width × channels (`max_batch_subpixels`) for images this large.

    A Transformer over sub-pixels holds activations for every position of every image in the batch, so
    its memory grows with the batch times the sequence length: 64 digits (64 × 784 positions) fit in
    about 1 GB, 64 colour images at 32×32 (64 × 3,072) took 10 GB (benchmarks/results/memory.md).
    """
    batch = fit_defaults["batch_size"]
    cap = fit_defaults.get("max_batch_subpixels")
    if cap is None:
        return batch
    subpixels = 1
    for d in image_shape:
        subpixels *= int(d)
    return max(1, min(batch, cap // subpixels))
