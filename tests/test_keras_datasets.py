"""Data made the keras.io way meets a tfgen model: a one-line error before the first step, and no Keras warnings."""

import warnings

import keras
import numpy as np
import pytest

import tfgen
from tfgen import data


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of two classes of 28×28 grey PNGs (what a user's own folder looks like to Keras)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("keras_folder")
    rng = np.random.default_rng(0)
    for name in ("dark", "light"):
        (root / name).mkdir()
        for i in range(8):
            pixels = rng.integers(0, 128, (28, 28)) + (128 if name == "light" else 0)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_a_keras_image_dataset_of_0_255_pixels_is_one_line_naming_the_rescale_before_any_step(folder):
    ds = keras.utils.image_dataset_from_directory(folder, image_size=(28, 28), color_mode="grayscale",
                                                  batch_size=4, seed=0, verbose=False)
    model = tfgen.get_model("cgan", "tiny", num_classes=2, seed=0)
    model.default_compile()
    before = [w.numpy().copy() for w in model.trainable_weights]
    with pytest.raises(ValueError) as err:
        model.fit(ds, epochs=1, verbose=0)
    message = str(err.value)
    assert "\n" not in message and message.startswith("CGAN expects pixels in [0, 1], got values in [")
    assert "divide by 255, e.g. ds.map(lambda x, y: (x / 255, y))" in message
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))  # no step ran
    history = model.fit(ds.map(lambda x, y: (x / 255, y)), epochs=1, verbose=0).history  # as the message says
    assert np.isfinite(history["d_loss"][-1])


def test_the_readme_python_snippet_trains_without_a_keras_warning():
    model = tfgen.get_model("gan", preset="tiny")
    model.default_compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data.load("mnist_bundled", "train", batch_size=64, seed=0, limit=128), epochs=1, verbose=0)
    assert [str(w.message) for w in caught] == []
    # A caller's own shuffle=True still hears from Keras that a dataset is not shuffled by fit.
    with pytest.warns(UserWarning, match="`shuffle=True` was passed, but will be ignored"):
        model.fit(data.load("mnist_bundled", "train", batch_size=64, seed=0, limit=128), shuffle=True, verbose=0)


def test_numpy_arrays_of_0_255_pixels_are_refused_the_same_way():
    model = tfgen.get_model("cvae", "tiny", seed=0)
    model.default_compile()
    x, y = np.full((8, 28, 28, 1), 200.0, np.float32), np.arange(8) % 10
    with pytest.raises(ValueError, match=r"CVAE expects pixels in \[0, 1\], got values in \[200, 200\].*divide by 255"):
        model.fit(x, y, batch_size=4, verbose=0)
    assert np.isfinite(model.fit(x / 255, y, batch_size=4, verbose=0).history["loss"][-1])
