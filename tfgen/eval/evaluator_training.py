"""Training an evaluator: a classifier on labelled data, a denoising autoencoder on unlabelled data.

One recipe for both (Adam, cosine-decayed learning rate, batch 128, random
shifts of ±2 pixels at 28 px, scaled with the image size), trained on the
dataset's train split and measured on its test split: accuracy for the
classifier, reconstruction RMSE for the autoencoder.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from tfgen.eval.datasets import DatasetArrays, dataset_arrays
from tfgen.eval.networks import (AUTOENCODER, CLASSIFIER, FEATURES_LAYER, RECIPE_VERSION, Evaluator,
                                 build_autoencoder, build_classifier, training_minutes)

#: Small datasets get more epochs, so that the network sees at least this many batches...
MIN_STEPS = 500
#: ...within this many epochs.
MAX_EPOCHS = 60


def default_epochs(num_examples: int, batch_size: int) -> int:
    """8 epochs below 20k images (4 above, MNIST-sized), but at least `MIN_STEPS` steps, at most 60 epochs."""
    epochs = 8 if num_examples < 20_000 else 4
    steps_per_epoch = -(-num_examples // batch_size)
    return int(min(MAX_EPOCHS, max(epochs, math.ceil(MIN_STEPS / steps_per_epoch))))


def train_evaluator(dataset="mnist_bundled", epochs=None, batch_size=128, augment=True, learning_rate=3e-3,
                    seed=0, limit=None, verbose=0, *, kind=None, data_kwargs=None, cache_dir=None,
                    **net_kwargs) -> Evaluator:
    """Train an evaluator on `dataset`'s train split; return it (not saved).

    kind: "classifier" or "autoencoder"; default: a classifier if the dataset has labels.
    augment: random shifts of up to 2 pixels per 28 (≈7%) — digits are centred by
        mass, so small translations are label-preserving; they matter most on small sets.
    epochs: default from `default_epochs`.
    verbose: 1 prints a one-line notice (with `cache_dir`, where it will be kept) and
        Keras' progress bar.
    """
    import keras

    data = dataset_arrays(dataset, data_kwargs)
    kind = kind or (CLASSIFIER if data.labelled else AUTOENCODER)
    if kind == CLASSIFIER and not data.labelled:
        raise ValueError(f"dataset {dataset!r} has no labels (or one class): a classifier evaluator cannot be "
                         "trained on it; use kind='autoencoder'")
    x_train, y_train = data.x_train[:limit], data.y_train[:limit]
    x_test, y_test = data.x_test[:limit], data.y_test[:limit]
    if epochs is None:
        epochs = default_epochs(len(x_train), batch_size)
    if kind == CLASSIFIER:
        net = build_classifier(data.image_shape, data.num_classes, seed=seed, **net_kwargs)
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    else:
        net = build_autoencoder(data.image_shape, seed=seed, **net_kwargs)
        loss, metrics = "mse", []
    if verbose:
        _notice(data, kind, net, len(x_train), epochs, cache_dir)
    steps = epochs * -(-len(x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.01)
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=metrics)
    start, cpu_start = time.perf_counter(), time.process_time()
    train_ds = _training_pipeline(x_train, y_train if kind == CLASSIFIER else None, batch_size, augment, seed)
    # shuffle=False: the pipeline shuffles (Keras ignores `shuffle` for a tf.data.Dataset, with a warning).
    net.fit(train_ds, epochs=epochs, verbose=verbose, shuffle=False)
    meta = {
        "dataset": dataset, "data_kwargs": data.data_kwargs, "key": data.key, "fingerprint": data.fingerprint,
        "kind": kind, "train_examples": len(x_train), "test_examples": len(x_test),
        "image_shape": list(data.image_shape), "num_classes": data.num_classes,
        "feature_dim": int(net.get_layer(FEATURES_LAYER).units), "epochs": int(epochs),
        "batch_size": int(batch_size), "augment": bool(augment), "seed": int(seed), "limit": limit,
        "learning_rate": float(learning_rate), "recipe_version": RECIPE_VERSION,
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if kind == CLASSIFIER:
        _, meta["test_accuracy"] = net.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    else:
        meta["test_rmse"] = math.sqrt(net.evaluate(x_test, x_test, batch_size=1000, verbose=0))
    meta["feature_scale"] = feature_scale(Evaluator(net, {**meta, "feature_scale": 1.0}), x_train)
    return Evaluator(net, meta)


def _notice(data: DatasetArrays, kind: str, net, images: int, epochs: int, cache_dir) -> None:
    what = "a CNN classifier" if kind == CLASSIFIER else "a denoising autoencoder (the data has no labels)"
    minutes = training_minutes(net, images, epochs)
    where = f"; cached in {cache_dir}" if cache_dir is not None else ""
    print(f"no cached evaluator for {data.spec} ({'x'.join(map(str, data.image_shape))}, {images} train images): "
          f"training {what} for {epochs} epochs (about {max(1, round(minutes))} min){where}", file=sys.stderr)


def _training_pipeline(images, labels, batch_size: int, augment: bool, seed: int):
    """Shuffled batches of (image, label) — or (image, image) for an autoencoder — with random shifts."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if augment:
        shift = layers_random_translation(2 / 28, seed)
        if labels is None:
            ds = ds.map(lambda x: shift(x, training=True), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda x, y: (shift(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    if labels is None:
        ds = ds.map(lambda x: (x, x))  # the autoencoder redraws the (shifted) image it is given
    return ds.prefetch(tf.data.AUTOTUNE)


def feature_scale(evaluator: Evaluator, images) -> float:
    """1 / RMS of the unscaled features over (up to 10,000) training images: real features get ||f||²/d ≈ 1."""
    unscaled = evaluator.features(images[:10_000])
    return float(1.0 / np.sqrt(np.mean(np.square(unscaled.astype(np.float64))) + 1e-12))


def layers_random_translation(factor, seed):
    """Shifts of up to `factor` of the height and width; the uncovered border is filled with 0 (black)."""
    from keras import layers

    return layers.RandomTranslation(factor, factor, fill_mode="constant", fill_value=0.0, seed=seed)
