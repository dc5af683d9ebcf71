"""The evaluator: a small network trained on the dataset, whose features (and predictions) score samples.

FID, KID, precision/recall and the classifier score all need a feature
extractor. The customary one, Inception-v3 trained on ImageNet, is the wrong
tool for 28×28 grey digits or a few thousand 32×32 emoji (and cannot be
downloaded here; `features="inception"` uses it when its weights are present,
see `tfgen.eval.inception`), so tfgen trains its own on the dataset's train
split, once, and caches it. Two kinds (`tfgen.eval.networks`):

* labelled data (≥ 2 classes): a CNN classifier. Its penultimate layer gives
  the features, its predictions the classifier score and conditional accuracy;
  its test accuracy is reported beside every score.
* unlabelled data: a denoising convolutional autoencoder, whose bottleneck
  gives the features; class-based scores do not apply. Why an autoencoder and
  not a self-supervised contrastive encoder such as SimCLR (Chen et al. 2020),
  whose features are semantically better: SimCLR draws its negatives from
  the batch, so it trains with hundreds to thousands of images per batch, two
  augmented views of each, for hundreds of epochs, i.e. hours on two CPU
  cores; an autoencoder is the classifier's own body with a light decoder
  (about twice the classifier's cost), trains in minutes with the same
  recipe, and its bottleneck must keep what is needed to redraw the
  image (shape, layout, colour), so a shift in any of these moves the
  features. Fréchet distances on autoencoder features are in use where no
  suitable classifier exists ("Fréchet AutoEncoder Distance", Buzuti & Thomaz
  2023). Distances on them are less sensitive to semantic mistakes than a
  classifier's: compare them only with each other.

Where evaluators are found, first hit wins:

1. shipped with tfgen (package data, any working directory, pip installs too):
   `tfgen/eval/evaluators/<dataset>/` — the bundled digits' evaluator, whose
   scores the README reports;
2. the cache: `$TFGEN_EVALUATOR_DIR`, else `$TFGEN_HOME/evaluators`, else
   `$XDG_CACHE_HOME/tfgen/evaluators` (default `~/.cache/tfgen/evaluators`),
   one folder per dataset key `<spec>-<H>x<W>x<C>-<fingerprint>`
   (`tfgen.eval.datasets`: the same name with other pixels is another key).

Each folder holds `evaluator.keras` (the network) and `evaluator.json`
(dataset, key, split sizes, test accuracy or reconstruction error, settings).
It is built under a temporary name and renamed into place, so a crash leaves
a complete evaluator or none; a lock keeps two processes from training the
same one at once. Training prints one line first (what, how long, where),
then Keras' progress bar, then the test accuracy.

    from tfgen.eval import get_evaluator
    ev = get_evaluator("mnist_bundled")
    ev.predict_labels(images)      # int32 (N,); labelled datasets only
    ev.features(images)            # float32 (N, 128)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from tfgen.eval.datasets import dataset_arrays, safe_name  # noqa: F401  (safe_name: public since v0.1)
from tfgen.eval.networks import FEATURES_LAYER, build_autoencoder, build_classifier  # noqa: F401

ENV_DIR = "TFGEN_EVALUATOR_DIR"
ENV_HOME = "TFGEN_HOME"
MODEL_FILE = "evaluator.keras"
META_FILE = "evaluator.json"
CLASSIFIER, AUTOENCODER = "classifier", "autoencoder"
#: `features=` choices: the dataset's own evaluator, or Inception-v3 (tfgen.eval.inception).
FEATURES = ("evaluator", "inception")
SHIPPED_ROOT = Path(__file__).with_name("evaluators")
#: Bump when the architecture or training recipe changes: older caches are then retrained.
RECIPE_VERSION = 1


class Evaluator:
    """A trained evaluator network and its features (plus class predictions if it is a classifier).

    Attributes: `dataset`, `kind` ("classifier" or "autoencoder"), `labelled`,
    `accuracy` (test-split accuracy in [0, 1]; None for an autoencoder),
    `image_shape`, `num_classes` (0 for an autoencoder), `meta` (everything
    recorded in evaluator.json), `directory`.
    """

    def __init__(self, network, meta: dict, directory=None):
        import keras
        import tensorflow as tf

        self.network = network
        self.meta = dict(meta)
        self.directory = Path(directory) if directory is not None else None
        self.dataset = meta["dataset"]
        self.kind = meta.get("kind", CLASSIFIER)
        self.labelled = self.kind == CLASSIFIER
        self.accuracy = float(meta["test_accuracy"]) if self.labelled else None
        self.image_shape = tuple(meta["image_shape"])
        self.num_classes = int(meta["num_classes"]) if self.labelled else 0
        # Features are multiplied by a fixed scale chosen at training time so that real images have
        # mean ||f||²/d = 1: KID's kernel (x·y/d + 1)³ then works on O(1) inputs, as with Inception features.
        self.feature_scale = float(meta.get("feature_scale", 1.0))
        outputs = [network.get_layer(FEATURES_LAYER).output] + ([network.outputs[0]] if self.labelled else [])
        feature_model = keras.Model(network.inputs, outputs)
        spec = tf.TensorSpec((None, *self.image_shape), tf.float32)
        # One traced function for every batch size: features (and logits) in one pass.
        self._forward = tf.function(lambda x: feature_model(x, training=False), input_signature=[spec])

    @property
    def classifier(self):
        """The network (named for the labelled kind; kept for code written before autoencoders)."""
        return self.network

    def __repr__(self):
        return f"Evaluator({self.describe()!r}, feature_dim={self.meta.get('feature_dim')})"

    def describe(self) -> str:
        """One line: what the network is, what it was trained on, how good it is on the test split."""
        if self.labelled:
            return f"CNN classifier trained on {self.dataset}, test accuracy {100 * self.accuracy:.2f}%"
        rmse = self.meta.get("test_rmse")
        quality = f", test reconstruction RMSE {rmse:.3f}" if rmse is not None else ""
        return f"convolutional autoencoder trained on {self.dataset} without labels{quality}"

    def _run(self, images, batch_size=1000):
        images = self._check_images(images)
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            out = self._forward(images[start:start + batch_size])
            out = out if isinstance(out, (list, tuple)) else (out,)  # a one-output model returns a tensor
            feats.append(np.asarray(out[0]) * np.float32(self.feature_scale))
            if self.labelled:
                logits.append(np.asarray(out[1]))
        if not feats:
            return np.zeros((0, self.meta["feature_dim"]), np.float32), np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(feats), (np.concatenate(logits) if self.labelled else None)

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

    def _need_labels(self, what: str):
        if not self.labelled:
            raise ValueError(f"{what} needs a classifier, but the {self.dataset} evaluator is an autoencoder "
                             "(the dataset has no labels)")

    def features(self, images) -> np.ndarray:
        """Feature-layer activations (scaled), float32 (N, feature_dim)."""
        return self._run(images)[0]

    def logits(self, images) -> np.ndarray:
        self._need_labels("logits")
        return self._run(images)[1]

    def probabilities(self, images) -> np.ndarray:
        """Class probabilities, float64 (N, num_classes), rows summing to 1."""
        return softmax(self.logits(images))

    def predict_labels(self, images) -> np.ndarray:
        """Most probable class of each image, int32 (N,)."""
        return np.argmax(self.logits(images), axis=1).astype(np.int32)

    def features_and_probabilities(self, images):
        """Features and class probabilities; probabilities are None for an autoencoder."""
        feats, logits = self._run(images)
        return feats, (softmax(logits) if logits is not None else None)


def softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train_evaluator(*args, **kwargs) -> Evaluator:
    """`tfgen.eval.evaluator_training.train_evaluator` (kept here, where it always was)."""
    from tfgen.eval.evaluator_training import train_evaluator as train

    return train(*args, **kwargs)


# ---------------------------------------------------------------------- the cache
def cache_root() -> Path:
    """The directory holding cached evaluators (see the module docstring for the order of the variables)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser() / "evaluators"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "tfgen" / "evaluators"


def default_directory(dataset: str, data_kwargs: dict | None = None) -> Path:
    """Where the evaluator for `dataset` (read with `data_kwargs`) is cached: `cache_root() / <key>`."""
    return cache_root() / dataset_arrays(dataset, data_kwargs).key


def shipped_directory(dataset: str) -> Path:
    """Where tfgen ships an evaluator for `dataset`, if it ships one (valid only for the same pixels)."""
    return SHIPPED_ROOT / safe_name(dataset)


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
        net = evaluator.network
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


def _cache_is_valid(directory: Path, fingerprint: str) -> bool:
    """An evaluator of the current recipe, trained on exactly the data whose fingerprint is given."""
    try:
        meta = json.loads((Path(directory) / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return ((Path(directory) / MODEL_FILE).exists() and meta.get("fingerprint") == fingerprint
            and meta.get("recipe_version") == RECIPE_VERSION and "feature_scale" in meta)


_MEMORY: dict = {}


def get_evaluator(dataset: str = "mnist_bundled", directory=None, train_if_missing: bool = True,
                  verbose: int = 1, features: str = "evaluator", data_kwargs: dict | None = None,
                  inception_weights=None, **train_kwargs):
    """The evaluator for `dataset`: the shipped one, else the cached one, else trained now and cached.

    dataset: a `tfgen.data` spec (`mnist_bundled`, `idx:DIR`, `folder:DIR`, …).
    data_kwargs: options for `tfgen.data.load_arrays` (e.g. image_size, channels): the
        evaluator is of the images these produce.
    directory: the evaluator's own folder, instead of the shipped-then-cache lookup.
    train_if_missing: if False, a missing evaluator is a FileNotFoundError.
    verbose: 1 prints a notice and Keras' progress bar when training (2: one line per epoch); 0 is silent.
    features: "evaluator" (the above) or "inception" (`tfgen.eval.inception.InceptionFeatures`
        with `inception_weights`, a file that must exist; no dataset is read).
    train_kwargs: passed to `train_evaluator` when training (epochs, augment, limit, ...).

    Loaded evaluators are memoised per process (by directory and data fingerprint),
    so callbacks and repeated `evaluate` calls do not reload the file.
    """
    from tfgen.checks import one_of

    if one_of(features, FEATURES, "features") == "inception":
        return _inception(inception_weights)
    data = dataset_arrays(dataset, data_kwargs)
    target = Path(directory) if directory is not None else cache_root() / data.key
    candidates = [target] if directory is not None else [shipped_directory(dataset), target]
    for candidate in candidates:
        key = (str(candidate.resolve()), data.fingerprint)
        if key in _MEMORY:
            return _MEMORY[key]
        if _cache_is_valid(candidate, data.fingerprint):
            _MEMORY[key] = load_evaluator(candidate)
            return _MEMORY[key]
    if not train_if_missing:
        raise FileNotFoundError(
            f"no evaluator for {dataset!r} in {target}; call get_evaluator(..., train_if_missing=True) "
            f"or set ${ENV_DIR} to a directory holding one")
    with _lock(target):
        # Another process may have trained it while we waited for the lock.
        if not _cache_is_valid(target, data.fingerprint):
            evaluator = train_evaluator(dataset, verbose=verbose, data_kwargs=data_kwargs, cache_dir=target,
                                        **train_kwargs)
            save_evaluator(evaluator, target)
            if verbose:
                print(f"evaluator for {dataset}: {evaluator.describe()}; cached in {target}", file=sys.stderr)
    evaluator = load_evaluator(target)
    _MEMORY[(str(target.resolve()), data.fingerprint)] = evaluator
    return evaluator


_INCEPTION: dict = {}


def _inception(weights):
    from tfgen.eval.inception import InceptionFeatures, weights_path

    path = weights_path(weights)  # raises, naming the file to download, before anything loads
    if path not in _INCEPTION:
        _INCEPTION[path] = InceptionFeatures(path)
    return _INCEPTION[path]


def _lock(directory: Path):
    """An exclusive lock beside `directory`, waited for (`tfgen.io.file_lock`; without flock, Windows, the
    atomic rename still protects readers)."""
    from tfgen.io import file_lock

    directory.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(directory.with_name(f".{directory.name}.lock"))
