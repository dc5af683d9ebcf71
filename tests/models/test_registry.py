"""Mechanics every registered model must have, run for each of them (tiny presets)."""

import numpy as np
import pytest

import tfgen
from child_processes import HANG_SECONDS
from model_checks import assert_finite_history, assert_roundtrip, train_tiny
from tfgen.registry import UnknownNameError

MODELS = list(tfgen.list_models())


def test_registry_lists_the_documents_models_with_presets():
    models = tfgen.list_models()
    for name, articles in (("vae", "conv_pool"), ("cvae", "conv_pool"), ("gan", "mlp"), ("cgan", "mlp")):
        assert {"tiny", "default", articles} <= set(models[name])
        assert "document" not in models[name]  # the former name still builds (below) but is not listed


@pytest.mark.parametrize("name, current", [("vae", "conv_pool"), ("cvae", "conv_pool"), ("gan", "mlp"),
                                           ("cgan", "mlp")])
def test_the_former_document_preset_name_builds_the_renamed_preset(name, current):
    cls = tfgen.get_model_class(name)
    assert cls.preset_hyperparameters("document") == cls.PRESETS[current]
    # GAN configs saved before name the architecture "document": it builds the "mlp" networks.
    if "architecture" in cls.PRESETS[current]:
        assert cls(**{**cls.PRESETS[current], "architecture": "document"}).architecture == "mlp"


@pytest.fixture(scope="module")
def trained_tiny(random_batches):
    """`trained_tiny(name)`: (model, history) after one short fit, made once per model for this module
    (the sampling test reuses the round trip's model and so its traced sampler: seconds per model)."""
    made = {}

    def get(name):
        if name not in made:
            made[name] = train_tiny(name, random_batches)
        return made[name]

    return get


@pytest.mark.parametrize("name", MODELS)
def test_tiny_preset_trains_with_finite_losses_and_round_trips(name, trained_tiny, random_batches, tmp_path):
    model, history = trained_tiny(name)
    assert_finite_history(history, [m.name for m in model.metrics])
    images, labels = next(iter(random_batches))
    # That training continues after reload (optimiser state, step count) is checked step by step in
    # tests/test_resume.py; tracing a second training step per model here would add nothing but time.
    assert_roundtrip(model, images.numpy(), tmp_path, labels.numpy() if model.accepts_labels else None)


@pytest.mark.parametrize("name", MODELS)
def test_samples_are_images_in_unit_range_and_seeded(name, trained_tiny):
    model, _ = trained_tiny(name)
    a, b = np.asarray(model.sample(3, seed=5)), np.asarray(model.sample(3, seed=5))
    assert a.shape == (3, 28, 28, 1) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.asarray(model.sample(3, seed=6)))


@pytest.mark.parametrize("name", MODELS)
def test_config_rebuilds_the_same_architecture(name):
    model = tfgen.get_model(name, "tiny")
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


def test_unknown_names_are_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown model 'nope'.*vae"):
        tfgen.get_model("nope")
    with pytest.raises(UnknownNameError, match="unknown preset 'huge'.*tiny"):
        tfgen.get_model("vae", "huge")
    with pytest.raises(UnknownNameError, match=r"unknown hyperparameter 'latnt_dim' for 'vae' \(did you mean"):
        tfgen.get_model("vae", "tiny", latnt_dim=3)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_image_shape_fails_before_training(name):
    import tensorflow as tf

    model = tfgen.get_model(name, "tiny")
    model.default_compile()
    bad = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), "float32"), np.zeros(4, "int32"))).batch(2)
    with pytest.raises(ValueError, match=r"expects images of shape \(28, 28, 1\), got \(32, 32, 3\)"):
        model.fit(bad, verbose=0)


def test_a_saved_model_reloads_in_a_fresh_process_after_import_tfgen(tmp_path):
    """`import tfgen` alone must register every family for `keras.saving.load_model`."""
    import subprocess
    import sys

    path = tmp_path / "gan.keras"
    tfgen.get_model("gan", "tiny").save(path)
    code = f"import keras, tfgen; print(type(keras.saving.load_model({str(path)!r})).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("GAN")


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("cgan", dict(d_conditioning="projetion"), r"unknown d_conditioning 'projetion' \(did you mean 'projection'"),
        ("gan", dict(architecture="mpl"), r"unknown GAN architecture 'mpl' \(did you mean 'mlp'\?\); choose from dcgan, mlp"),
        ("gan", dict(beta_1=1.0), r"beta_1 must be a number in \[0, 1\), got 1.0"),
        ("vae", dict(downsample="max"), r"unknown downsample 'max'; choose from stride, pool"),
        ("vae", dict(beta=-1), "beta must be a number >= 0, got -1"),
        ("pixel_transformer", dict(mlp_ratio=2.5), "mlp_ratio must be a positive integer, got 2.5"),
        ("pixel_transformer", dict(block_size=-1), r"block_size \(0 = full attention, None = two image rows\) must be an integer >= 0, got -1"),
        ("pixelcnn", dict(kernel_size=4), "kernel_size must be an odd integer >= 3, got 4"),
        ("pixelcnn", dict(levels=300), r"levels must be an integer in \[2, 256\], got 300"),
        ("diffusion", dict(ema_decay=1.0), r"ema_decay must be a number in \[0, 1\), got 1.0"),
        ("vae", dict(image_shape=(28, 0, 1)), "image_shape entries must be a positive integer, got 0"),
    ],
)
def test_hyperparameters_are_checked_before_building_with_one_line_errors(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        tfgen.get_model(name, "tiny", **overrides)
