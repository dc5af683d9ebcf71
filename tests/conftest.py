import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def random_batches():
    """Eight small (images, labels) batches of random data: for mechanics, not learning."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((64, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 64).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


@pytest.fixture(scope="session")
def digits():
    """The bundled real MNIST digits as arrays: (x_train, y_train, x_test, y_test) in [0, 1]."""
    from tfgen.data import load_arrays

    return (*load_arrays("mnist_bundled", "train"), *load_arrays("mnist_bundled", "test"))


@pytest.fixture(scope="session")
def evaluator():
    """The cached bundled-digits evaluator (saved_models/evaluator-mnist_bundled; trained on first use)."""
    from tfgen.eval import get_evaluator

    return get_evaluator("mnist_bundled")
