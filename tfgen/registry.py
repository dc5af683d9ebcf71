"""The model registry: one decorator makes a model family visible everywhere.

`@register_model("vae")` on a `GenerativeModel` subclass

* makes it buildable by name (`tfgen.get_model("vae", preset="tiny")`) and so
  visible to the CLI (`tfgen list`, `tfgen train vae`);
* registers it with Keras serialisation, so a saved `.keras` file reloads into
  the right class without `custom_objects`.

Adding a model family therefore means one module and one decorator line.
"""

from __future__ import annotations

import keras

from tfgen.checks import UnknownNameError, unknown_name

__all__ = ["UnknownNameError", "get_model", "get_model_class", "list_models", "register_model"]

_MODELS: dict[str, type] = {}


def register_model(name: str):
    """Class decorator registering a model family under `name`."""

    def decorator(cls):
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_MODELS[name].__name__}")
        presets = getattr(cls, "PRESETS", None)
        if not presets or "tiny" not in presets or "default" not in presets:
            raise TypeError(f"{cls.__name__} must define PRESETS with at least 'tiny' and 'default'")
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
