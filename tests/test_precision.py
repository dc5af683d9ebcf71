"""Precision and compilation settings: `--precision float32|mixed_float16|mixed_bfloat16` and
`--jit-compile on|off|auto` (tfgen.precision). Every model trains under both mixed policies with
float32 losses and samples; every optimiser is loss-scaled under float16; a run keeps its
precision in config.json and through `--resume`."""

import csv
import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgen
from tfgen import cli
from tfgen.precision import dtype_policy, jit_compile_setting

MODELS = list(tfgen.list_models())
COMPUTE_DTYPE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
# float16: a step whose gradients overflow at the loss scale is skipped and the scale halved. tfgen's
# losses are nats per image (sums over 784 pixels), so from Keras' initial scale 2**15 the
# autoregressive models skip ~7 steps before the scale fits (then every step applies).
MAX_STEPS = 12


@pytest.fixture(autouse=True)
def float32_policy():
    """The global dtype policy is process-wide: every test starts and ends with float32."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.random((8, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 8).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def optimizers(model):
    """Every distinct optimiser the model holds (a GAN's `optimizer` is its `g_optimizer`)."""
    found = [v for v in vars(model).values() if isinstance(v, keras.optimizers.Optimizer)]
    return list({id(o): o for o in found}.values())


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_under_mixed_precision(name, precision, batch):
    with dtype_policy(precision):
        model = tfgen.get_model(name, "tiny", seed=0)
        # Eager steps: the same train_step without tracing it (the compiled step under mixed precision
        # runs in test_a_run_keeps_its_precision_through_resume and tests/test_distribute.py).
        model.default_compile(run_eagerly=True)
    assert keras.config.dtype_policy().name == "float32"  # restored; the model keeps its own policy
    assert model.dtype_policy.name == precision
    assert {layer.compute_dtype for layer in model._flatten_layers()} >= {COMPUTE_DTYPE[precision]}
    opts = optimizers(model)
    assert opts and all(isinstance(o, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
                        for o in opts)

    start = [v.numpy() for v in model.trainable_variables]
    for _ in range(MAX_STEPS):  # until a step is applied (float16 may skip the first ones)
        history = model.fit(batch, verbose=0).history
        for key, values in history.items():
            assert np.all(np.isfinite(values)), f"{key} = {values}"
        if any(not np.array_equal(a, v.numpy()) for a, v in zip(start, model.trainable_variables)):
            break
    else:
        pytest.fail(f"no step of {MAX_STEPS} changed the weights")
    for opt in opts:  # a skipped step halved the scale; an applied one kept it (growth comes after 2000)
        if isinstance(opt, keras.optimizers.LossScaleOptimizer):
            assert 0 < float(opt.dynamic_scale) <= opt.initial_scale
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)
    assert all(v.dtype == "float32" for v in model.trainable_variables)  # float32 master weights

    kwargs = {"steps": 2} if "steps" in inspect.signature(model.sample).parameters else {}
    images = model.sample(3, seed=1, **kwargs)
    assert images.dtype == tf.float32 and images.shape == (3, 28, 28, 1)
    assert np.all(np.isfinite(images)) and 0.0 <= float(tf.reduce_min(images)) <= float(tf.reduce_max(images)) <= 1.0


def test_both_gan_optimisers_scale_the_loss_under_float16_and_keep_their_settings():
    for name in ("gan", "cgan"):
        with dtype_policy("mixed_float16"):
            model = tfgen.get_model(name, "tiny", seed=0)
            model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.SGD(0.1))
        assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.d_optimizer is not model.g_optimizer and model.optimizer is model.g_optimizer
        assert isinstance(model.d_optimizer.inner_optimizer, keras.optimizers.Adam)
        assert isinstance(model.g_optimizer.inner_optimizer, keras.optimizers.SGD)
        assert model.d_optimizer.built and model.g_optimizer.built  # built in compile (strategy scopes)
        # The scaled loss is the loss times the current scale, the same for both.
        loss = tf.constant(2.0)
        assert float(model.d_optimizer.scale_loss(loss)) == 2.0 * float(model.d_optimizer.dynamic_scale)
        assert float(model.g_optimizer.scale_loss(loss)) == 2.0 * float(model.g_optimizer.dynamic_scale)


def test_a_reloaded_model_keeps_its_precision_in_a_float32_process(tmp_path, batch):
    with dtype_policy("mixed_float16"):
        model = tfgen.get_model("cgan", "tiny", seed=0)
        model.default_compile(run_eagerly=True)
    model.fit(batch, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")  # the global policy is float32 here
    assert loaded.dtype_policy.name == "mixed_float16"
    assert "float16" in {layer.compute_dtype for layer in loaded.generator.layers}
    for key in ("d_optimizer", "g_optimizer"):
        before, after = getattr(model, key), getattr(loaded, key)
        assert isinstance(after, keras.optimizers.LossScaleOptimizer)
        assert len(after.variables) == len(before.variables)
        for a, b in zip(before.variables, after.variables):  # loss scale and moments restored
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_jit_compile_setting():
    assert [jit_compile_setting(v) for v in ("on", "off", "auto", True, False)] == [True, False, "auto", True, False]
    with pytest.raises(ValueError, match="jit_compile"):
        jit_compile_setting("yes")


def test_a_run_keeps_its_precision_through_resume(tmp_path, capsys):
    """`tfgen train --precision mixed_float16 --jit-compile auto`, then `--resume` to a second epoch."""
    run = tmp_path / "run"
    common = ["--verbose", "0"]
    assert cli.main(["train", "gan", "--preset", "tiny", "--epochs", "1", "--batch-size", "16", "--limit", "32",
                     "--precision", "mixed_float16", "--jit-compile", "auto", "--out", str(run), *common]) == 0
    assert keras.config.dtype_policy().name == "float32"
    config = json.loads((run / "config.json").read_text())
    assert config["precision"] == "mixed_float16" and config["jit_compile"] == "auto"
    assert config["config"]["dtype"]["config"]["name"] == "mixed_float16"

    # --precision is the run's: it cannot be changed on resume.
    assert cli.main(["train", "--resume", str(run), "--precision", "mixed_bfloat16", *common]) == 2
    assert "--precision" in capsys.readouterr().err

    assert cli.main(["train", "--resume", str(run), "--epochs", "2", *common]) == 0
    model = keras.saving.load_model(run / "model.keras")
    assert model.dtype_policy.name == "mixed_float16"
    assert "float16" in {layer.compute_dtype for layer in model.discriminator.layers}
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in (model.d_optimizer, model.g_optimizer))
    assert model.jit_compile is False  # "auto" on a CPU-only machine: Keras' choice is no XLA
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # counted from 1, like the sample grids
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d_loss", "g_loss", "val_d_loss", "val_g_loss"))
