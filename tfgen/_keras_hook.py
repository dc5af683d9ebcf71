"""Register tfgen's model families with Keras serialisation once Keras is loaded.

A `.keras` file names its classes (`tfgen>VAE`); Keras finds one only if it was
registered (`keras.saving.register_keras_serializable`) before `load_model`.
Registering means importing the model modules, hence TensorFlow: too slow for
every `import tfgen` (the command line's `--help` would wait seconds). So:

* if Keras is already imported when tfgen is, the models register at once;
* otherwise a `sys.meta_path` finder watches the imports of `keras`,
  `tensorflow` and `tfgen.*` and registers right after the first of them
  that completes while Keras is loaded and none of them is half-initialised
  (TensorFlow imports Keras from inside its own `__init__`, and tfgen's model
  modules import Keras themselves: registering in the middle of either would
  see half-built modules).

So `import tfgen` then `import keras` (or `import tensorflow`, or any tfgen
module) in either order leaves `keras.saving.load_model` able to load tfgen files.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

_WATCHED = ("keras", "tensorflow", "tfgen")


def _watched(name: str) -> bool:
    return name.split(".", 1)[0] in _WATCHED


def _initialising(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _ready(just_run: str) -> bool:
    """Keras loaded and no watched module but `just_run` (whose import is ending) half-imported."""
    return "keras" in sys.modules and not any(
        _watched(n) and n != just_run and _initialising(n) for n in list(sys.modules))


class _RegisterWhenKerasIsLoaded(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loaders of watched modules to register tfgen's models after them."""

    def find_spec(self, fullname, path=None, target=None):
        if not _watched(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # the ordinary search, minus this finder
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if self in sys.meta_path and _ready(fullname):
                sys.meta_path.remove(self)
                _register()

        spec.loader.exec_module = exec_module
        return spec


def _register() -> None:
    import tfgen.models  # noqa: F401  (importing the modules runs their @register_model lines)


def register_models_with_keras() -> None:
    """Register the model families now if Keras is loaded, else as soon as it is (see the module docstring)."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(f, _RegisterWhenKerasIsLoaded) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenKerasIsLoaded())
