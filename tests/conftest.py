import gc
import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Evaluators that tests train are cached in a throwaway directory, never in the user's ~/.cache/tfgen.
os.environ.setdefault("TFGEN_HOME", __import__("tempfile").mkdtemp(prefix="tfgen-tests-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


# Garbage is collected after every test, not whenever Python's collector next runs.
# Why: a tf.data iterator caught in a reference cycle (a traceback's frames, a Keras
# trainer) is freed by the collector, and freeing one that has lived for minutes can
# block its thread, GIL held, for up to a minute while tf.data's autotuner thread
# finishes its sleep (TF 2.21; seen as 35-110 s of an idle machine in whole-suite
# runs, caught with gdb in RootDataset::Iterator::~Iterator). Freed at the end of the
# test that made it, an iterator is young and goes at once. Everything that survives a
# test is frozen (gc.freeze) so the next collection only walks what the next test made;
# a module's survivors (its fixtures) are unfrozen and collected when the module ends.
def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if nextitem is None or nextitem.module is not item.module:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


# Every test starts from its own fixed random state. Why: weight initialisers follow Keras'
# global seed, which is random per process and advanced by every earlier test in the same
# xdist worker, so without this a test's weights depended on which tests ran before it and a
# failure could not be reproduced (a tiny PixelCNN sampled differently for two seeds at
# top_k=1 in one CI run: its weights happened to give tied logits). The seed comes from the
# test's id, so tests still see different weights from each other.
@pytest.fixture(autouse=True)
def fixed_random_state(request):
    import keras

    keras.utils.set_random_seed(zlib.crc32(request.node.nodeid.encode()) % 2**31)


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
    """The bundled-digits evaluator shipped with tfgen (tfgen/eval/evaluators/mnist_bundled)."""
    from tfgen.eval import get_evaluator

    return get_evaluator("mnist_bundled")
