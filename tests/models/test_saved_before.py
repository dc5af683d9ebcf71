"""Files saved by earlier versions of tfgen still load, into the same classes and the same numbers.

`tests/fixtures/saved_before_tidy/` holds what tfgen wrote before its models were tidied
(`AutoregressiveModel` moved from `tfgen.layers` to `tfgen.models`, `get_config` derived from
the constructors): the tiny autoregressive models as `.keras` files (untrained, compiled) with
two images each drew then (`sample(2, labels=3 if conditional, seed=7)`), and every family's
tiny config.
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "saved_before_tidy"


@pytest.mark.parametrize("name", ["pixelcnn", "pixel_transformer"])
def test_autoregressive_keras_files_from_before_load_and_sample_the_same(name):
    import tfgen

    model = keras.saving.load_model(FIXTURES / f"{name}.keras")
    assert type(model) is tfgen.get_model_class(name)
    labels = 3 if model.accepts_labels else None
    expected = np.load(FIXTURES / "samples.npz")[name]
    np.testing.assert_array_equal(np.asarray(model.sample(2, labels=labels, seed=7)), expected)


def old_configs():
    """The `get_config()` of every family's `tiny` preset, written by tfgen before `get_config`
    was derived from the constructors (`configs.json`, as JSON stores them)."""
    return json.loads((FIXTURES / "configs.json").read_text())


@pytest.mark.parametrize("name", sorted(old_configs()))
def test_configs_from_before_rebuild_the_model_and_are_what_get_config_says_now(name):
    import tfgen

    old = old_configs()[name]
    model = tfgen.get_model_class(name).from_config(old)
    assert model.count_params() == tfgen.get_model(name, "tiny").count_params()
    now = model.get_config()
    assert {key: now[key] for key in old} == old  # families may have gained hyperparameters since


def test_get_config_names_a_constructor_argument_that_is_not_stored():
    from tfgen.models.base import GenerativeModel

    class Forgetful(GenerativeModel):
        def __init__(self, width=3, **kwargs):
            super().__init__(**kwargs)

    with pytest.raises(TypeError, match="takes 'width' but stores no attribute of that name"):
        Forgetful().get_config()
