"""Model families, one module each. Importing this package imports every module in
it, which runs their `@register_model` decorators: adding a family means adding a
module, with no list to edit here."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
