"""tfgen: a Keras 3 / TensorFlow zoo of generative models.

    import tfgen
    model = tfgen.get_model("vae", preset="default")

Attributes are imported lazily so that `import tfgen` (and the CLI) can set up
logging before TensorFlow loads.
"""

__version__ = "0.1.0"

_LAZY = {
    "get_model": "tfgen.registry",
    "get_model_class": "tfgen.registry",
    "list_models": "tfgen.registry",
    "register_model": "tfgen.registry",
    "train": "tfgen.training",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfgen' has no attribute {name!r}")
