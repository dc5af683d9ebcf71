"""tfgen: a Keras 3 / TensorFlow zoo of generative models.

    import tfgen
    model = tfgen.get_model("vae", preset="default")
    model = keras.saving.load_model("runs/vae/model.keras")   # works once tfgen is imported
    model = tfgen.load_run("runs/vae")                         # the same, or the last checkpoint
    model = tfgen.from_preset("digits/cvae")                   # a trained model shipped with tfgen

`import tfgen` imports Keras and every model family, as `import keras_hub` does: each
family's `@register_model` registers it with Keras serialisation, so a saved `.keras`
file reloads into its tfgen class without `custom_objects`, whenever Keras was imported.

The command line is the one importer that must not pay for TensorFlow (`--help`,
`list` and argument errors answer at once): the `tfgen` script's entry module
(`tfgen_cli`, outside this package) and `python -m tfgen` import this package
without the models (`_imported_by_command_line`), and the commands that need them
import them (`tfgen.registry`, `tfgen.io.load_keras_file`). Why not lazy registration:
Keras finds a saved file's class only in its registry, and nothing in Keras calls
back into tfgen when it is imported after it; watching imports for Keras (a
`sys.meta_path` hook) was the alternative, and the plain import is simpler.
"""

import sys

__version__ = "0.1.0"

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


def _imported_by_command_line() -> bool:
    """Whether the command line is importing tfgen: the `tfgen` script imports `tfgen_cli` first, and
    `python -m tfgen` sets `sys.argv[0]` to "-m" while Python imports this package to find its
    `__main__` (documented for `-m`: "while the module file is being located")."""
    return "tfgen_cli" in sys.modules or getattr(sys, "argv", [None])[:1] == ["-m"]


if not _imported_by_command_line():
    import tfgen.models  # noqa: E402,F401  (imports Keras; each family's @register_model registers it)
