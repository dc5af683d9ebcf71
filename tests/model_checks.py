"""Checks every registered model must pass; family test files call these with their own names."""

import keras
import numpy as np
import tensorflow as tf

import tfgen

#: Exported endpoints are called on N examples drawn with SEED (`make_inputs`).
N, SEED = 3, 7


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


def make_inputs(model, metadata, endpoint):
    """Inputs for an endpoint from its signature: N examples, SEED, labels 0, 1, 2, …"""
    rng = np.random.default_rng(1)
    args = []
    for spec in metadata["endpoints"][endpoint]["inputs"]:
        name = spec["name"]
        shape = [N if d is None else d for d in spec["shape"]]
        if name == "noise":  # exactly the noise `model.sample(N, seed=SEED)` draws
            args.append(tf.random.stateless_normal(shape, seed=[SEED, 0]).numpy())
        elif name == "seed":
            args.append(np.int64(SEED))
        elif name == "n":
            args.append(np.int32(N))
        elif name == "labels":
            args.append(np.arange(N, dtype=np.int32) % model.num_classes)
        elif name in ("images", "first", "second"):  # images in [0, 1] (interpolate: its two ends)
            args.append(rng.random(shape, dtype=np.float32))
        elif name == "mask":  # the bottom half filled in
            mask = np.ones(shape, np.float32)
            mask[:, shape[1] // 2:] = 0
            args.append(mask)
        elif name == "steps":  # points on an interpolation's path
            args.append(np.int32(4))
        elif name == "strength":
            args.append(np.float32(0.5))
        else:
            args.append(rng.standard_normal(shape).astype(spec["dtype"]))
    return args


def assert_export_samples(model, path):
    """Export `model`; its `sample` endpoint, loaded here, gives the model's seeded samples, (N, H, W, C) in [0, 1].

    tests/test_export.py checks every endpoint in a process without tfgen; this is the quick
    in-process check for models built at other sizes.
    """
    from tfgen.export import export_model, read_metadata

    path = export_model(model, path)
    metadata = read_metadata(path)
    args = make_inputs(model, metadata, "sample")
    names = [spec["name"] for spec in metadata["endpoints"]["sample"]["inputs"]]
    labels = args[names.index("labels")] if "labels" in names else None
    loaded = tf.saved_model.load(str(path))  # kept referenced while called: its variables die with it
    images = loaded.sample(*args).numpy()
    assert images.shape == (N, *model.image_shape) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_allclose(images, model.sample(N, labels=labels, seed=SEED), rtol=1e-5, atol=1e-5)
