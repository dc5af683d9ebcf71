"""Inception-v3 features: the weights file is looked for (never downloaded), images are resized as clean-fid
does, and the loading path works — with a tiny stand-in for Inception-v3, so nothing is downloaded."""

import keras
import numpy as np
import pytest

from tfgen.eval import evaluator as ev
from tfgen.eval import inception


@pytest.fixture
def keras_home(monkeypatch, tmp_path):
    """Keras' cache in an empty temporary directory; no weights file named by the environment."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    ev._INCEPTION.clear()
    yield tmp_path / "keras" / "models"
    ev._INCEPTION.clear()


@pytest.fixture
def stand_in(monkeypatch):
    """Replaces keras.applications.InceptionV3 by a tiny network built the same way; records each call."""
    calls = []

    def tiny_inception(include_top, weights, input_shape, pooling):
        calls.append({"include_top": include_top, "weights": weights, "input_shape": input_shape,
                      "pooling": pooling})
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(4, 3, strides=4, kernel_initializer=keras.initializers.GlorotUniform(0))(inputs)
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))

    monkeypatch.setattr(keras.applications, "InceptionV3", tiny_inception)
    return calls


def test_without_the_weights_file_it_fails_in_one_line_naming_the_file_and_never_calls_keras(keras_home,
                                                                                              monkeypatch):
    def no_keras(**kwargs):
        raise AssertionError("keras.applications.InceptionV3 was called (it would try to download)")

    monkeypatch.setattr(keras.applications, "InceptionV3", no_keras)
    with pytest.raises(FileNotFoundError) as err:
        ev.get_evaluator("mnist_bundled", features="inception")
    message = str(err.value)
    assert "\n" not in message
    assert inception.WEIGHTS_URL in message and str(keras_home / inception.WEIGHTS_FILE) in message
    assert inception.ENV_WEIGHTS in message


def test_the_weights_are_loaded_from_keras_cache_or_a_named_file(keras_home, stand_in, monkeypatch, tmp_path):
    keras_home.mkdir(parents=True)
    (keras_home / inception.WEIGHTS_FILE).write_bytes(b"stand-in")
    features = ev.get_evaluator("any dataset: none is read", features="inception")
    assert stand_in == [{"include_top": False, "weights": str(keras_home / inception.WEIGHTS_FILE),
                         "input_shape": (299, 299, 3), "pooling": "avg"}]
    assert ev.get_evaluator("mnist_bundled", features="inception") is features  # loaded once per file
    # any size, grey or colour; no classes
    assert features.features(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)).shape == (3, 4)
    assert features.features(np.zeros((2, 48, 64, 3), np.float32)).shape == (2, 4)
    assert not features.labelled and features.features_and_probabilities(np.zeros((1, 8, 8, 3)))[1] is None
    with pytest.raises(ValueError, match=r"\(N, H, W, 1 or 3\)"):
        features.features(np.zeros((2, 8, 8, 2), np.float32))
    # a file named by the environment wins
    named = tmp_path / "my-inception.h5"
    named.write_bytes(b"stand-in")
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(named))
    ev.get_evaluator("mnist_bundled", features="inception")
    assert stand_in[-1]["weights"] == str(named)


def test_images_are_resized_to_299_like_clean_fid():
    # a horizontal ramp on a non-square grey image: stays a horizontal ramp (no transposed axes), in RGB
    ramp = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (12, 1))[None, ..., None]
    out = inception.resize_like_clean_fid(ramp)
    assert out.shape == (1, 299, 299, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert np.all(np.diff(out[0, 150, :, 0]) >= -1e-3) and np.ptp(out[0, :, 150, 0]) < 1e-3
    assert out.min() >= 0 and out.max() <= 255 and out[0, 0, 0, 0] < 5 and out[0, 0, -1, 0] > 250
    # quantised to 8 bits first, as clean-fid reads images: a constant 0.5 becomes 128 everywhere
    np.testing.assert_allclose(inception.resize_like_clean_fid(np.full((1, 5, 7, 3), 0.5, np.float32)), 128.0,
                               atol=1e-3)
    # bicubic, not bilinear: upsampling a step overshoots next to the edge, clipped to [0, 255]
    step = np.zeros((1, 8, 8, 1), np.float32)
    step[:, :, 4:] = 0.8
    row = inception.resize_like_clean_fid(step)[0, 150, :, 0]
    assert row.max() > 0.8 * 255 + 1


def test_evaluate_with_inception_features(keras_home, stand_in):
    from eval_checks import NoiseModel

    from tfgen.eval.scoring import evaluate, format_table

    keras_home.mkdir(parents=True)
    (keras_home / inception.WEIGHTS_FILE).write_bytes(b"stand-in")
    result = evaluate(NoiseModel(), n=20, features="inception", kid_subsets=2, likelihood=False)
    assert result["features"] == "inception" and "published-FID" in result["fid_note"]
    assert np.isfinite(result["fid"]) and "classifier_score" not in result and "classifier_score" not in result[
        "reference"]
    assert "Inception features" in result["class_scores"]
    table = format_table(result)
    header = next(line for line in table.splitlines() if "FID (Inception)" in line)
    assert "classifier score" not in header and "classifier score and conditional accuracy do not apply" in table
