"""The model registry: one decorator makes a model family visible everywhere.

`@register_model("vae")` on a `GenerativeModel` subclass

* makes it buildable by name (`tfgen.get_model("vae", preset="tiny")`) and so
  visible to the CLI (`tfgen list`, `tfgen train vae`);
* gives the class its presets, fit defaults and flags from the family's data file
  beside the module (`tfgen/models/vae.json`, read by `tfgen.catalog`: one owner);
* registers it with Keras serialisation, so a saved `.keras` file reloads into
  the right class without `custom_objects` (once the module is imported: `import tfgen`
  imports every family).

Adding a model family therefore means one module with one decorator line, its data file
beside it, and a short test file.
"""

from __future__ import annotations

import sys

import keras

from tfgen import catalog
from tfgen.checks import UnknownNameError, unknown_name

__all__ = ["UnknownNameError", "get_model", "get_model_class", "list_models", "register_model"]

_MODELS: dict[str, type] = {}


def register_model(name: str):
    """Class decorator registering a model family under `name`, described by the data file beside its module."""

    def decorator(cls):
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_MODELS[name].__name__}")
        path = catalog.data_file(sys.modules[cls.__module__].__file__)
        family = catalog.read_family(path)
        if (family.name, family.class_name) != (name, cls.__name__):
            raise ValueError(f"{path} describes {family.class_name} as {family.name!r}, not {cls.__name__} as {name!r}")
        cls.PRESETS, cls.PRESET_ALIASES = family.presets, family.preset_aliases
        cls.FIT_DEFAULTS, cls.AUTO_BFLOAT16 = family.fit_defaults, family.auto_bfloat16
        cls.requires_labels, cls.halving_networks = family.requires_labels, family.halving_networks
        cls.quality_monotone = family.quality_monotone
        cls.registry_name = name
        _MODELS[name] = keras.saving.register_keras_serializable(package="tfgen")(cls)
        return cls

    return decorator


def _import_model_modules() -> None:
    # Importing the package's model modules is what runs their decorators.
    import tfgen.models  # noqa: F401


def list_models() -> dict[str, list[str]]:
    """Registered model names mapped to their preset names."""
    _import_model_modules()
    return {name: list(cls.PRESETS) for name, cls in sorted(_MODELS.items())}


def get_model_class(name: str) -> type:
    _import_model_modules()
    try:
        return _MODELS[name]
    except KeyError:
        raise unknown_name(name, sorted(_MODELS), "model") from None


def get_model(name: str, preset: str = "default", **overrides):
    """Build a registered model from a preset, with hyperparameters overridden by keyword."""
    return get_model_class(name).from_preset(preset, **overrides)
