"""Model families, one module each, with a data file beside it (`vae.py`, `vae.json`: presets, fit
defaults and flags, see `tfgen.catalog`). Importing this package imports every module in it, which
runs their `@register_model` decorators (registering them with Keras too). Adding a family: its
module (a `GenerativeModel` subclass with one `@register_model("name")` line), its data file, and a
short test file; there is no list to edit here."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
