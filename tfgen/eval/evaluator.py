"""The evaluator: a small CNN classifier whose features and predictions score samples.

FID, KID, precision/recall and the classifier score all need a feature
extractor. The customary one, Inception-v3 trained on ImageNet, is the wrong
tool for 28×28 grayscale digits (and cannot be downloaded here), so tfgen
trains its own classifier on the dataset's train split, once, and caches it:

    saved_models/evaluator-<dataset>/   (relative to the current directory;
                                         `directory=` or $TFGEN_EVALUATOR_DIR overrides)
        evaluator.keras                 the classifier (logits)
        evaluator.json                  dataset, split sizes, test accuracy, settings

The directory is built under a temporary name and renamed into place, so a
crash leaves either a complete evaluator or none; a lock file keeps two
processes from training the same evaluator at once. Scores computed with this
network are "FID on evaluator features", not Inception FID: compare them only
with scores computed by the same evaluator (its accuracy is reported beside
every score for that reason).

    from tfgen.eval import get_evaluator
    ev = get_evaluator("mnist_bundled")
    ev.predict_labels(images)      # int32 (N,)
    ev.features(images)            # float32 (N, 128): the penultimate layer
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ENV_DIR = "TFGEN_EVALUATOR_DIR"
MODEL_FILE = "evaluator.keras"
META_FILE = "evaluator.json"
FEATURES_LAYER = "features"
#: Bump when the architecture or training recipe changes: older caches are then retrained.
RECIPE_VERSION = 1


class Evaluator:
    """A trained classifier with its penultimate-layer features.

    Attributes: `dataset`, `accuracy` (test-split accuracy in [0, 1]), `image_shape`,
    `num_classes`, `meta` (everything recorded in evaluator.json), `directory`.
    """

    def __init__(self, classifier, meta: dict, directory=None):
        import keras
        import tensorflow as tf

        self.classifier = classifier
        self.meta = dict(meta)
        self.directory = Path(directory) if directory is not None else None
        self.dataset = meta["dataset"]
        self.accuracy = float(meta["test_accuracy"])
        self.image_shape = tuple(meta["image_shape"])
        self.num_classes = int(meta["num_classes"])
        # Features are multiplied by a fixed scale chosen at training time so that real images have
        # mean ||f||²/d = 1: KID's kernel (x·y/d + 1)³ then works on O(1) inputs, as with Inception features.
        self.feature_scale = float(meta.get("feature_scale", 1.0))
        feature_model = keras.Model(classifier.inputs, [classifier.get_layer(FEATURES_LAYER).output, classifier.outputs[0]])
        spec = tf.TensorSpec((None, *self.image_shape), tf.float32)
        # One traced function for every batch size: features and logits in one pass.
        self._forward = tf.function(lambda x: feature_model(x, training=False), input_signature=[spec])

    def __repr__(self):
        return (f"Evaluator(dataset={self.dataset!r}, test_accuracy={self.accuracy:.4f}, "
                f"feature_dim={self.meta.get('feature_dim')})")

    def _run(self, images, batch_size=1000):
        images = self._check_images(images)
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            f, l = self._forward(images[start:start + batch_size])
            feats.append(f.numpy() * np.float32(self.feature_scale))
            logits.append(l.numpy())
        if not feats:
            return np.zeros((0, self.meta["feature_dim"]), np.float32), np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def _check_images(self, images):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3 and self.image_shape[-1] == 1:
            images = images[..., None]
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"the {self.dataset} evaluator expects images of shape (N, "
                             f"{', '.join(map(str, self.image_shape))}) in [0, 1], got shape {images.shape}")
        if images.size and not np.all(np.isfinite(images)):
            raise ValueError("images contain NaN or infinite values")
        return images

    def features(self, images) -> np.ndarray:
        """Penultimate-layer activations, float32 (N, feature_dim)."""
        return self._run(images)[0]

    def logits(self, images) -> np.ndarray:
        return self._run(images)[1]

    def probabilities(self, images) -> np.ndarray:
        """Class probabilities, float64 (N, num_classes), rows summing to 1."""
        return softmax(self.logits(images))

    def predict_labels(self, images) -> np.ndarray:
        """Most probable class of each image, int32 (N,)."""
        return np.argmax(self.logits(images), axis=1).astype(np.int32)

    def features_and_probabilities(self, images):
        feats, logits = self._run(images)
        return feats, softmax(logits)


def softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------- the network
def build_classifier(image_shape=(28, 28, 1), num_classes=10, width=32, feature_dim=128, dropout=0.3, seed=0):
    """conv(w)-pool → conv(2w)-pool → conv(2w) → Dense(feature_dim) → logits, with batch norm.

    The classic small MNIST convnet (~0.3M parameters, ~6M multiply-adds per
    28×28 image): >99% on full MNIST, and cheap enough to train in about a
    minute on two CPU cores for the bundled digits. Initialisers and dropout
    are seeded so that a retrained evaluator is the same network up to
    floating-point nondeterminism.
    """
    import keras
    from keras import layers

    inputs = keras.Input(image_shape, name="images")
    x = inputs
    for i, filters in enumerate((width, 2 * width, 2 * width)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU()(x)
        if i < 2:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    # The features used by FID/KID/precision-recall: the last hidden layer, after ReLU.
    x = layers.Dense(feature_dim, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed=seed + 10),
                     name=FEATURES_LAYER)(x)
    x = layers.Dropout(dropout, seed=seed + 1)(x)
    logits = layers.Dense(num_classes, dtype="float32", kernel_initializer=keras.initializers.GlorotUniform(seed),
                          name="logits")(x)
    return keras.Model(inputs, logits, name="evaluator")


def train_evaluator(dataset="mnist_bundled", epochs=None, batch_size=128, augment=True, learning_rate=3e-3,
                    seed=0, limit=None, verbose=0, **net_kwargs):
    """Train an evaluator classifier on `dataset`'s train split; return `Evaluator` (not saved).

    augment: random shifts of up to 2 pixels (≈7%) — the digits are centred by
        mass, so small translations are label-preserving; they matter most on
        the small bundled set.
    epochs: default 8 for small sets (< 20k images), 4 for larger ones (MNIST-sized).
    """
    import keras
    import tensorflow as tf

    from tfgen import data as tfdata

    start, cpu_start = time.perf_counter(), time.process_time()
    train_ds, info = tfdata.load(dataset, "train", batch_size, seed, with_info=True, limit=limit)
    test_ds, test_info = tfdata.load(dataset, "test", 1000, seed, with_info=True, limit=limit)
    if epochs is None:
        epochs = 8 if info.num_examples < 20_000 else 4
    num_classes = max(info.num_classes, test_info.num_classes)
    net = build_classifier(info.image_shape, num_classes, seed=seed, **net_kwargs)
    if augment:
        shift = layers_random_translation(2 / info.image_shape[0], seed)
        train_ds = train_ds.map(lambda x, y: (shift(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    steps = epochs * -(-info.num_examples // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.01)
    net.compile(optimizer=keras.optimizers.Adam(schedule),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    net.fit(train_ds, epochs=epochs, verbose=verbose)
    _, accuracy = net.evaluate(test_ds, verbose=0)
    evaluator = Evaluator(net, {"dataset": dataset, "test_accuracy": accuracy, "image_shape": info.image_shape,
                                "num_classes": num_classes, "feature_dim": net.get_layer(FEATURES_LAYER).units})
    meta = {
        "dataset": dataset,
        "test_accuracy": float(accuracy),
        "train_examples": int(info.num_examples),
        "test_examples": int(test_info.num_examples),
        "image_shape": list(info.image_shape),
        "num_classes": int(num_classes),
        "feature_dim": int(net.get_layer(FEATURES_LAYER).units),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "augment": bool(augment),
        "seed": int(seed),
        "limit": limit,
        "learning_rate": float(learning_rate),
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
        "recipe_version": RECIPE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "feature_scale": feature_scale(evaluator, dataset, limit),
    }
    return Evaluator(net, meta)


def feature_scale(evaluator: Evaluator, dataset: str, limit=None) -> float:
    """1 / RMS of the unscaled features over (up to 10,000) training images: real features get ||f||²/d ≈ 1."""
    from tfgen.data import load_arrays

    images, _ = load_arrays(dataset, "train", limit=min(limit or 10_000, 10_000))
    unscaled = Evaluator(evaluator.classifier, {**evaluator.meta, "feature_scale": 1.0}).features(images)
    return float(1.0 / np.sqrt(np.mean(np.square(unscaled.astype(np.float64))) + 1e-12))


def layers_random_translation(factor, seed):
    from keras import layers

    return layers.RandomTranslation(factor, factor, fill_mode="constant", fill_value=0.0, seed=seed)


# ---------------------------------------------------------------------- the cache
def default_directory(dataset: str) -> Path:
    """saved_models/evaluator-<dataset> under $TFGEN_EVALUATOR_DIR or the current directory.

    $TFGEN_EVALUATOR_DIR names the parent directory holding `evaluator-<dataset>/` folders.
    """
    root = Path(os.environ.get(ENV_DIR) or "saved_models")
    return root / f"evaluator-{safe_name(dataset)}"


def safe_name(dataset: str) -> str:
    """A dataset name as a directory name: `idx:/usr/share/x` → `idx_usr_share_x`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("_") or "dataset"


def save_evaluator(evaluator: Evaluator, directory) -> Path:
    """Write `evaluator.keras` + `evaluator.json` into `directory`, atomically as a whole.

    The files are written into a temporary sibling directory which is then
    renamed to `directory`; an existing evaluator there is replaced.
    """
    import keras

    from tfgen.io import write_json

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the evaluator is a shared cache
    try:
        # An uncompiled copy: the file holds the network only (no optimiser state, 3× smaller).
        net = evaluator.classifier
        clean = keras.Model.from_config(net.get_config())
        clean.set_weights(net.get_weights())
        clean.save(tmp / MODEL_FILE)
        write_json(tmp / META_FILE, evaluator.meta)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old.{os.getpid()}")
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    evaluator.directory = directory
    return directory


def load_evaluator(directory) -> Evaluator:
    import keras

    directory = Path(directory)
    meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
    if not (meta_path.exists() and model_path.exists()):
        raise FileNotFoundError(f"no evaluator in {directory} (expected {MODEL_FILE} and {META_FILE})")
    meta = json.loads(meta_path.read_text())
    return Evaluator(keras.saving.load_model(model_path, compile=False), meta, directory)


def _cache_is_valid(directory: Path, dataset: str) -> bool:
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return ((directory / MODEL_FILE).exists() and meta.get("dataset") == dataset
            and meta.get("recipe_version") == RECIPE_VERSION)


_MEMORY: dict = {}


def get_evaluator(dataset: str = "mnist_bundled", directory=None, train_if_missing: bool = True,
                  verbose: int = 0, **train_kwargs) -> Evaluator:
    """The evaluator for `dataset`: loaded from its cache directory, trained there if missing.

    directory: the evaluator's own folder (default `default_directory(dataset)`).
    train_if_missing: if False, a missing evaluator is a FileNotFoundError.
    train_kwargs: passed to `train_evaluator` when training (epochs, augment, limit, ...).

    Loaded evaluators are memoised per process (by resolved directory), so
    callbacks and repeated `evaluate` calls do not reload the file.
    """
    directory = Path(directory) if directory is not None else default_directory(dataset)
    key = (str(directory.resolve()), dataset)
    if key in _MEMORY:
        return _MEMORY[key]
    if not _cache_is_valid(directory, dataset):
        if not train_if_missing:
            raise FileNotFoundError(
                f"no evaluator for {dataset!r} in {directory}; call get_evaluator(..., train_if_missing=True) "
                f"or set ${ENV_DIR} to a directory holding one"
            )
        with _lock(directory):
            # Another process may have trained it while we waited for the lock.
            if not _cache_is_valid(directory, dataset):
                evaluator = train_evaluator(dataset, verbose=verbose, **train_kwargs)
                save_evaluator(evaluator, directory)
    if "feature_scale" not in json.loads((directory / META_FILE).read_text()):
        _add_feature_scale(directory, dataset)
    evaluator = load_evaluator(directory)
    if evaluator.dataset != dataset:
        raise ValueError(f"{directory} holds an evaluator for {evaluator.dataset!r}, not {dataset!r}")
    _MEMORY[key] = evaluator
    return evaluator


def _add_feature_scale(directory: Path, dataset: str) -> None:
    """Upgrade an evaluator cached before `feature_scale` existed (same network; only the JSON changes)."""
    from tfgen.io import write_json

    with _lock(directory):
        meta = json.loads((directory / META_FILE).read_text())
        if "feature_scale" not in meta:
            meta["feature_scale"] = feature_scale(load_evaluator(directory), dataset, meta.get("limit"))
            write_json(directory / META_FILE, meta)


def _lock(directory: Path):
    """An exclusive lock beside `directory`, waited for (`tfgen.io.file_lock`; without flock, Windows, the
    atomic rename still protects readers)."""
    from tfgen.io import file_lock

    directory.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(directory.with_name(f".{directory.name}.lock"))
