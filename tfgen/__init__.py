"""tfgen: a Keras 3 / TensorFlow zoo of generative models.

    import tfgen
    model = tfgen.get_model("vae", preset="default")
    model = keras.saving.load_model("runs/vae/model.keras")   # works once tfgen is imported
    model = tfgen.load_run("runs/vae")                         # the same, or the last checkpoint
    model = tfgen.from_preset("digits/cvae")                   # a trained model shipped with tfgen

`import tfgen` is cheap: TensorFlow loads when a model, `train` or Keras is first
used (PEP 562 lazy attributes), so the command line answers `--help` at once.
The model families register with Keras serialisation (so that a saved `.keras`
file reloads into its tfgen class) as soon as Keras is imported, before or
after tfgen — see `tfgen._keras_hook`.
"""

__version__ = "0.1.0"

from tfgen import _keras_hook  # noqa: E402

_LAZY = {
    "get_model": "tfgen.registry",
    "get_model_class": "tfgen.registry",
    "list_models": "tfgen.registry",
    "register_model": "tfgen.registry",
    "train": "tfgen.training",
    "resume": "tfgen.training",
    "load_run": "tfgen.runs",
    "from_preset": "tfgen.pretrained",
}

__all__ = ["__version__", *_LAZY]


# Subpackages reachable as attributes (`tfgen.data.load(...)`) without importing them by hand.
_SUBMODULES = {"bench", "callbacks", "checks", "data", "distribute", "eval", "export", "io", "layers", "losses",
               "models", "plotting", "precision", "pretrained", "registry", "runs", "schedules", "training"}


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"tfgen.{name}")  # importing sets the attribute for later look-ups
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'tfgen' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


_keras_hook.register_models_with_keras()
