"""tfgen: a Keras 3 / TensorFlow zoo of generative models.

    import tfgen
    model = tfgen.get_model("vae", preset="default")
    model = keras.saving.load_model("runs/vae/model.keras")   # works once tfgen is imported

Importing tfgen registers every model family with Keras serialisation, so that a
saved `.keras` file reloads into its tfgen class.
"""

__version__ = "0.1.0"

from tfgen import models  # noqa: E402,F401  (registers every family)
from tfgen.registry import get_model, get_model_class, list_models, register_model  # noqa: E402
from tfgen.training import train  # noqa: E402

__all__ = ["__version__", "get_model", "get_model_class", "list_models", "register_model", "train"]
