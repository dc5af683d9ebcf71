"""Checks every registered model must pass; family test files call these with their own names."""

import keras
import numpy as np

import tfgen


def train_tiny(name, batches, epochs=1, **overrides):
    model = tfgen.get_model(name, "tiny", seed=0, **overrides)
    model.default_compile()
    history = model.fit(batches, validation_data=batches.take(2), epochs=epochs, verbose=0)
    return model, history.history


def assert_finite_history(history, expected_metrics):
    assert set(expected_metrics) <= set(history), f"missing metrics: {set(expected_metrics) - set(history)}"
    for name in expected_metrics:
        assert f"val_{name}" in history, f"no validation metric val_{name}"
    for name, values in history.items():
        assert np.all(np.isfinite(values)), f"{name} not finite: {values}"


def assert_roundtrip(model, images, tmp_path, labels=None):
    """`.keras` save → load gives the same class, config, outputs and seeded samples."""
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    inputs = images if labels is None else (images, labels)
    # Eager calls: `predict` would trace a function per model (twice) to compare one batch.
    np.testing.assert_allclose(loaded(inputs, training=False), model(inputs, training=False), atol=1e-6)
    kwargs = {} if labels is None else {"labels": labels[:4]}
    np.testing.assert_allclose(loaded.sample(4, seed=7, **kwargs), model.sample(4, seed=7, **kwargs), atol=1e-6)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations)
    return loaded
