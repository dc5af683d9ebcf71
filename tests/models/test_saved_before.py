"""Files saved by earlier versions of tfgen still load, into the same classes and the same numbers.

`tests/fixtures/saved_before_tidy/` holds tiny autoregressive models saved as `.keras` files
(untrained, compiled) by tfgen before `AutoregressiveModel` moved from `tfgen.layers` to
`tfgen.models`, with two images each drew then (`sample(2, labels=3 if conditional, seed=7)`).
"""

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
