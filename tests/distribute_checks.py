"""Distribution checks that need a process of their own (run by tests/test_distribute.py).

    python tests/distribute_checks.py mirrored
        Splits the CPU into two logical devices (possible only before TensorFlow
        initialises its devices, hence a fresh process), runs the checks below and
        prints one line `RESULT {json}`.
    python tests/distribute_checks.py worker WEIGHTS.npz tfgen-train-arguments...
        `tfgen train ...` as one worker of a multi-worker run (TF_CONFIG from the
        environment), then saves this worker's final weights to WEIGHTS.npz.

What `mirrored` compares, and why it is a real check
----------------------------------------------------
For every registered model (tiny preset): one `fit` step on one global batch of 8
images under MirroredStrategy over two devices (4 images per replica) against one
step on one device, from the same weights; all weights are compared afterwards
(trainable ones, batch-norm statistics, EMA networks).

* Noise made equal. Each replica draws its own noise by design (the model's seed is
  folded with the replica id; `noise` below checks that it does). For the comparison
  only, every random draw of the step is made a function of the example's position
  in the global batch: each replica draws the whole global batch's noise from the
  unfolded seed and keeps its own rows, which are the rows the single device uses
  for the same examples. Every draw in a tfgen step has the batch as its first axis.
* SGD, not the models' Adam: Adam's first step is lr·sign(g) whatever the scale of
  g, so it would hide gradients that are 2× (or ½×) too large.
* So what is left to differ is what distribution changes: each replica's
  hand-reduced loss divided by the replica count (`per_replica`) before gradients
  are summed across replicas — a missing division gives 2× gradients, and `broken`
  shows that the comparison then fails —, both of a GAN's optimisers built in the
  scope and applied in replica context, batch-norm statistics (synchronised across
  replicas: per-replica statistics would normalise each half differently), the
  diffusion EMA update through `merge_call`, and loss scaling (`gan_mixed_float16`:
  LossScaleOptimizers, under float16 compute; `one_replica_overflows`: a step whose
  gradients overflow on one replica only is skipped on all of them).
* Eager and compiled. Most mirrored steps run eagerly (`run_eagerly=True`): the same
  `train_step` under the real strategy — replica contexts, all-reduces, `merge_call` —
  at a quarter of the cost of tracing it for two replicas. The diffusion step (its
  EMA update is a `merge_call` of its own), `one_replica_overflows` and the
  multi-worker run of tests/test_distribute.py run compiled, so the graph path is
  covered too. The single-device reference step always runs eagerly.
"""

import contextlib
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GLOBAL_BATCH = 8
LEARNING_RATE = 0.01
#: Models whose mirrored step is compared as a compiled graph; the others' run eagerly (see the module doc).
COMPILED = ("diffusion",)
#: The GAN's small-data options that change what a step does under a strategy (DiffAugment only draws noise).
REGULARISED_GAN = {"spectral_norm": True, "ema_decay": 0.9, "r1_gamma": 1.0, "r1_every": 1}


def main(argv):
    if argv[0] == "worker":
        return worker(argv[1], argv[2:])
    if argv[0] == "mirrored":
        print("RESULT " + json.dumps(mirrored_checks(argv[1:])), flush=True)
        return 0
    raise SystemExit(f"unknown mode {argv[0]!r}")


def worker(weights_path, cli_args):
    """`tfgen train` (one worker of a multi-worker run); then this worker's weights to `weights_path`."""
    import keras
    import numpy as np

    fit = keras.Model.fit

    def fit_and_save_weights(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        np.savez(weights_path, *self.get_weights())
        return history

    keras.Model.fit = fit_and_save_weights
    from tfgen.cli import main as cli

    return cli(cli_args)


def mirrored_checks(names):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tfgen

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    result = {"noise": replica_noise(strategy), "models": {}}
    for name in names or tfgen.list_models():
        result["models"][name] = compare_one_step(name, strategy, compiled=name in COMPILED)
    result["models"]["gan_mixed_float16"] = compare_one_step("gan", strategy, precision="mixed_float16")
    # Spectral normalisation's `u` written in replica context, the generator EMA's merge_call and the
    # lazy R1 penalty's second-order pass inside a tf.cond, compiled.
    result["models"]["gan_regularised"] = compare_one_step("gan", strategy, compiled=True, **REGULARISED_GAN)
    if "latent_diffusion" in result["models"]:
        # The latent stage on posteriors encoded once (filled before the step, read by id in replica context).
        result["models"]["latent_diffusion_cached"] = compare_one_step("latent_diffusion", strategy, compiled=True,
                                                                       cache=True, autoencoder_steps=0)
    with without_replica_division():
        result["broken"] = {"vae_without_per_replica_division": compare_one_step("vae", strategy)}
    result["one_replica_overflows"] = one_replica_overflows(strategy)
    return result


def one_replica_overflows(strategy):
    """A GAN under mixed_float16 whose float16 gradients overflow on replica 1 only (its losses × 1e30).

    Loss scaling must then skip the step on every replica (weights unchanged, both loss
    scales halved); deciding on replica 0's finite gradients alone puts inf in the weights.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import tfgen
    from tfgen.models.base import GenerativeModel
    from tfgen.precision import dtype_policy

    with strategy.scope(), dtype_policy("mixed_float16"):
        model = tfgen.get_model("gan", "tiny", seed=0)
        model.compile(d_optimizer=keras.optimizers.SGD(LEARNING_RATE), g_optimizer=keras.optimizers.SGD(LEARNING_RATE))
    start = [v.numpy() for v in model.trainable_variables]
    per_replica = GenerativeModel.per_replica

    def huge_on_replica_1(loss):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return per_replica(loss) * tf.where(tf.equal(replica, 1), 1e30, 1.0)

    images = np.random.default_rng(0).random((GLOBAL_BATCH, 28, 28, 1), dtype=np.float32)
    GenerativeModel.per_replica = staticmethod(huge_on_replica_1)
    try:
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(GLOBAL_BATCH), verbose=0)
    finally:
        GenerativeModel.per_replica = per_replica
    after = [v.numpy() for v in model.trainable_variables]  # (batch-norm statistics move in the forward pass)
    return {
        "all_finite": bool(all(np.all(np.isfinite(w)) for w in model.get_weights())),
        "largest_change": max(float(np.max(np.abs(a - b))) for a, b in zip(after, start)),
        "loss_scales": [float(np.asarray(o.dynamic_scale)) for o in (model.d_optimizer, model.g_optimizer)],
        "initial_scale": float(model.d_optimizer.initial_scale),
    }


def replica_noise(strategy):
    """Noise each replica draws in a step (the model's own draws, nothing patched): two draws per replica."""
    import numpy as np
    import tensorflow as tf

    import tfgen

    with strategy.scope():
        model = tfgen.get_model("gan", "tiny", seed=0)

    @tf.function
    def draws():
        return strategy.run(lambda: (model.normal([3, 4]), model.normal([3, 4]), model.normal([3, 4], seed=5)))

    first, second, seeded = (
        [np.asarray(v).tolist() for v in strategy.experimental_local_results(d)] for d in draws())
    return {"first": first, "second": second, "seeded": seeded}


def compare_one_step(name, strategy, precision="float32", compiled=False, cache=False, **overrides):
    """Weights after one SGD step on one device and under `strategy`, same weights and global batch before.

    compiled: the mirrored step as a traced graph (what `fit` runs), else eagerly. cache: a latent model
    with its latent cache (`use_latent_cache`), batches carrying example ids. overrides: hyperparameters
    of the tiny preset.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import tfgen
    from tfgen.precision import dtype_policy

    rng = np.random.default_rng(0)
    images = rng.random((GLOBAL_BATCH, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, GLOBAL_BATCH).astype(np.int32)
    batch = tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH)
    if cache:
        batch = tf.data.Dataset.from_tensor_slices(
            {"images": images, "labels": labels, "example_ids": np.arange(GLOBAL_BATCH)}).batch(GLOBAL_BATCH)

    def build(scope, **compile_args):
        with scope, dtype_policy(precision):
            model = tfgen.get_model(name, "tiny", seed=0, **overrides)
            if hasattr(model, "d_optimizer"):
                model.compile(d_optimizer=keras.optimizers.SGD(LEARNING_RATE),
                              g_optimizer=keras.optimizers.SGD(LEARNING_RATE), **compile_args)
            else:
                model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), **compile_args)
        if cache:
            assert model.use_latent_cache(images)
        return model

    clock = time.perf_counter()
    keras.utils.set_random_seed(0)
    # The reference step runs eagerly: the same train_step, without a second trace (seconds per model).
    single = build(contextlib.nullcontext(), run_eagerly=True)
    start = single.get_weights()
    mirrored = build(strategy.scope(), run_eagerly=not compiled)
    mirrored.set_weights(start)
    with global_batch_noise():
        single_logs = single.fit(batch, verbose=0).history
        mirrored_logs = mirrored.fit(batch, verbose=0).history
    after_single, after_mirrored = single.get_weights(), mirrored.get_weights()
    update = max(float(np.max(np.abs(a - b))) for a, b in zip(after_single, start))
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(after_single, after_mirrored))
    return {
        "weights": len(start),
        "largest_update": update,
        "largest_difference": difference,
        "losses": {k: [v[-1] for v in (single_logs[k], mirrored_logs[k])] for k in single_logs},
        "sync_batch_norm": [layer.synchronized for layer in mirrored._flatten_layers()
                            if isinstance(layer, keras.layers.BatchNormalization)],
        "compiled": compiled,
        "seconds": time.perf_counter() - clock,
    }


@contextlib.contextmanager
def global_batch_noise():
    """Make every random draw a function of the example's position in the global batch (see the module doc)."""
    import tensorflow as tf

    from tfgen.models.base import GenerativeModel

    def unfolded_seed(self, seed=None):
        if seed is not None:
            return tf.constant([int(seed), 0], dtype=tf.int64)
        return tf.cast(self.seed_generator.next(), tf.int64)

    def rows_of_the_global_draw(draw):
        def replica_rows(shape, *args, **kwargs):
            ctx = tf.distribute.get_replica_context()
            shape = tf.convert_to_tensor(shape, tf.int32)
            if ctx is None or ctx.num_replicas_in_sync == 1 or shape.shape[0] == 0:
                return draw(shape, *args, **kwargs)
            rows, replicas = shape[0], ctx.num_replicas_in_sync
            whole = draw(tf.concat([[rows * replicas], shape[1:]], 0), *args, **kwargs)
            start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * rows
            return whole[start:start + rows]
        return replica_rows

    saved = GenerativeModel.draw_seed, tf.random.stateless_normal, tf.random.stateless_uniform
    GenerativeModel.draw_seed = unfolded_seed
    tf.random.stateless_normal = rows_of_the_global_draw(saved[1])
    tf.random.stateless_uniform = rows_of_the_global_draw(saved[2])
    try:
        yield
    finally:
        GenerativeModel.draw_seed, tf.random.stateless_normal, tf.random.stateless_uniform = saved


@contextlib.contextmanager
def without_replica_division():
    """The bug `per_replica` prevents: a hand-reduced loss not divided by the replica count."""
    from tfgen.models.base import GenerativeModel

    saved = GenerativeModel.per_replica
    GenerativeModel.per_replica = staticmethod(lambda loss: loss)
    try:
        yield
    finally:
        GenerativeModel.per_replica = saved


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
