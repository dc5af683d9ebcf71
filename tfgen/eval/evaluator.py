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

from tfgen.eval.datasets import dataset_arrays, safe_name
from tfgen.eval.evaluator_training import train_evaluator
from tfgen.eval.networks import RECIPE_VERSION, Evaluator

ENV_DIR = "TFGEN_EVALUATOR_DIR"
ENV_HOME = "TFGEN_HOME"
MODEL_FILE = "evaluator.keras"
META_FILE = "evaluator.json"
#: `features=` choices: the dataset's own evaluator, or Inception-v3 (tfgen.eval.inception).
FEATURES = ("evaluator", "inception")
SHIPPED_ROOT = Path(__file__).with_name("evaluators")


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
