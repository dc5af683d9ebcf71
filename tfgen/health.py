"""Training health: cheap figures, every epoch, that say when a run is going bad.

Each family says which figures it has: `GenerativeModel.health_checks()` returns a list of
`HealthCheck` objects (none by default), so a new family adds its own without edits here or
in `tfgen.training`. A check is prepared once, on fixed images (`HealthData`: training and
held-out images picked with a fixed seed when training begins), and measured at every epoch's
end with the model in inference mode: one forward pass over a few dozen to a few hundred
images, no training step. Each measurement (`Reading`) gives

* `scalars`: columns of history.csv and TensorBoard scalars (the `Health` callback adds them
  to the epoch logs, before the loggers);
* `vectors`: per-dimension figures, too many for columns: TensorBoard histograms (run
  `logs/health`) and lists in eval.json;
* `problem`: one console line when the figures look bad (None when they look healthy).

The figures per family:

* VAE, cVAE (`LatentUsage`): the KL of q(z|x) from the prior per latent dimension (`kl_min`,
  `kl_max`; the vector `kl_per_dim`), and the active units of Burda et al. 2016 ("Importance
  Weighted Autoencoders", §5.2): dimensions d with Cov_x(E_q[z_d | x]) > 0.01 over the data
  (`active_units`, `active_fraction`). A decoder that ignores z lets every posterior fall back
  to the prior (posterior collapse): no active units. Warns when fewer than a quarter are active.
* diffusion, flow, latent diffusion (`NoiseBands`): the held-out denoising loss in four bands
  of the process's time (`loss_t0`, least noise, … `loss_t3`, most noise), with the same
  images, times and noise every epoch, so a change is the model's. Warns when a band's loss
  rises to `NoiseBands.RISE` times its lowest so far: held-out loss going up is the model
  memorising its training images (a small folder) or training going unstable.
* pixelcnn, pixel_transformer (`BitsGap`): bits/dim of a fixed batch of training images and
  of a fixed batch of held-out images (`train_bits_per_dim`, `heldout_bits_per_dim`,
  `bits_per_dim_gap`); warns when the held-out batch is worse by more than a tenth and by
  more than three standard errors: overfitting.
* GAN, cGAN (`Diversity`): the samples' diversity over the real images' (`tfgen.eval.diversity`),
  per class (`diversity_<c>`, `diversity_min`) or overall (`diversity`); warns below 0.5.

`tfgen eval` reports the same figures for a finished run (`evaluation_figures`).
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfgen.checks import positive_int, positive_number

#: Training images (a seeded random choice) and held-out images the checks are measured on. The
#: family checks use up to this many; a forward pass over them costs about a training step's
#: forward pass of 4 batches of 64 (see benchmarks/health_cost.py for what it costs of an epoch).
HEALTH_IMAGES = 256
#: Real images per class, and samples per class, of the diversity figure.
DIVERSITY_EXAMPLES = 32


@dataclass
class Reading:
    """One measurement of a check: history columns, per-dimension vectors, and a warning line or None."""

    scalars: dict = field(default_factory=dict)
    vectors: dict = field(default_factory=dict)
    problem: str | None = None


@dataclass
class HealthData:
    """The fixed images the checks are measured on, as float32 NumPy in [0, 1] with int32 labels.

    train, held_out: (images, labels) of up to `HEALTH_IMAGES` training / held-out images;
    per_class: (images, labels) of the first `DIVERSITY_EXAMPLES` training images of each class.
    """

    train: tuple
    held_out: tuple
    per_class: tuple
    class_names: list | None = None

    @classmethod
    def pick(cls, train_labels, train_lookup, held_out_labels, held_out_lookup, num_classes: int, seed: int = 0,
             class_names=None) -> HealthData:
        """Pick the images: `*_labels` are a split's labels (NumPy), `*_lookup(indices)` its (images, labels)."""
        rng = np.random.default_rng(seed)

        def choose(labels):
            n = min(HEALTH_IMAGES, len(labels))
            return np.sort(rng.choice(len(labels), n, replace=False)) if n else np.zeros(0, np.int64)

        per_class = [i for c in range(max(num_classes, 1))
                     for i in np.flatnonzero(train_labels == c)[:DIVERSITY_EXAMPLES]]
        return cls(_arrays(train_lookup(choose(train_labels))), _arrays(held_out_lookup(choose(held_out_labels))),
                   _arrays(train_lookup(np.asarray(per_class, np.int64))), class_names)

    @classmethod
    def from_examples(cls, train, held_out, seed: int = 0, class_names=None) -> HealthData:
        """From two `tfgen.data.Examples` (a run's training split and its test split or holdout)."""
        lookup = (lambda examples: lambda idx: examples.lookup(tf.constant(idx, tf.int64)))
        return cls.pick(train.labels.numpy(), lookup(train), held_out.labels.numpy(), lookup(held_out),
                        train.info.num_classes, seed, class_names)

    @classmethod
    def from_arrays(cls, x_train, y_train, x_test, y_test, num_classes: int, seed: int = 0,
                    class_names=None) -> HealthData:
        """From NumPy splits (`tfgen.eval.datasets.dataset_arrays`)."""
        y_train, y_test = _labels(y_train, len(x_train)), _labels(y_test, len(x_test))
        return cls.pick(y_train, lambda i: (x_train[i], y_train[i]), y_test, lambda i: (x_test[i], y_test[i]),
                        num_classes, seed, class_names)


def _labels(labels, n):
    return np.zeros(n, np.int32) if labels is None else np.asarray(labels, np.int32)


def _arrays(pair):
    images, labels = pair
    return np.asarray(images, np.float32), np.asarray(labels, np.int32)


class HealthCheck:
    """A family's health figures. Subclasses implement `measure(model, epoch)`; `prepare` fixes their inputs."""

    #: Print the warning at every epoch the problem lasts (True), or once when it starts (False).
    repeat_warning = False
    #: A figure of the model's samples, which `tfgen eval` measures on its own samples instead.
    from_samples = False

    def prepare(self, model, data: HealthData) -> None:
        self.data = data

    def measure(self, model, epoch: int) -> Reading:
        raise NotImplementedError


def _batches(fn, *arrays, size: int = 64):
    """`fn` over slices of `size` rows of `arrays`, results concatenated (NumPy)."""
    out = [np.asarray(fn(*(a[i:i + size] for a in arrays))) for i in range(0, len(arrays[0]), size)]
    return np.concatenate(out)


class LatentUsage(HealthCheck):
    """KL per latent dimension and active units of a VAE's posterior on the fixed training images.

    For dimension d over the N images: KL_d = mean_x KL(q(z_d | x) ‖ N(0, 1)) =
    mean_x −½ (1 + log σ_d² − μ_d² − σ_d²), and unit d is active when the variance over x of
    μ_d(x) = E_q[z_d | x] exceeds `ACTIVE` (Burda et al. 2016, §5.2, their threshold).
    """

    ACTIVE = 0.01
    #: Warn when fewer than this fraction of the latent dimensions are active.
    MIN_ACTIVE_FRACTION = 0.25

    def measure(self, model, epoch):
        images, labels = self.data.train
        labels = labels if model.requires_labels else None
        means, log_vars = [], []
        for i in range(0, len(images), 128):
            mean, log_var = model.encode(tf.constant(images[i:i + 128]),
                                         None if labels is None else tf.constant(labels[i:i + 128]))
            means.append(np.asarray(mean, np.float64))
            log_vars.append(np.asarray(log_var, np.float64))
        mean, log_var = np.concatenate(means), np.concatenate(log_vars)
        kl = np.mean(-0.5 * (1.0 + log_var - mean**2 - np.exp(log_var)), axis=0)
        variance = mean.var(axis=0)
        active = int(np.sum(variance > self.ACTIVE))
        dims = mean.shape[1]
        problem = None
        if active < self.MIN_ACTIVE_FRACTION * dims:
            problem = (f"only {active} of {dims} latent dimensions are active (posterior means that vary "
                       f"across images, variance > {self.ACTIVE}): posterior collapse, the decoder is "
                       f"ignoring z? (a smaller beta, or KL annealing, helps)")
        return Reading({"active_units": active, "active_fraction": active / dims, "kl_min": float(kl.min()),
                        "kl_max": float(kl.max())},
                       {"kl_per_dim": kl, "posterior_mean_variance": variance}, problem)


class NoiseBands(HealthCheck):
    """A denoising model's held-out loss in `BANDS` equal bands of its process's time.

    Band k holds the times [k/BANDS, (k+1)/BANDS) of the process (diffusion: timesteps
    kT/BANDS …; flow: t, 0 being the data): each of the fixed held-out images is noised once
    per band, at times spread evenly over the band, with noise drawn once (`prepare`). The
    loss is the family's own (`denoising_loss`), of the EMA network, the one that samples,
    as the validation loss is.

    when: a function of the model saying whether its denoiser is trained yet (latent diffusion
    first trains its autoencoder: its bands are NaN until then, and nothing warns).
    """

    BANDS = 4
    #: Images per band (the first of the fixed held-out images).
    IMAGES = 64
    #: Warn when a band's loss reaches this multiple of its lowest so far. The inputs are the same
    #: every epoch and the EMA network changes slowly, so a healthy run's band losses fall or wobble
    #: by a few percent; a fifth above the best is a trend, not noise.
    RISE = 1.2

    def __init__(self, when=None):
        self.when = when

    def prepare(self, model, data):
        super().prepare(model, data)
        images, labels = (a[:self.IMAGES] for a in data.held_out)
        n = len(images)
        u = ((np.arange(self.BANDS)[:, None] + (np.arange(n)[None, :] + 0.5) / max(n, 1)) / self.BANDS).reshape(-1)
        process = model.process
        if process.time_dtype.is_integer:
            self.times = tf.constant(np.minimum((u * process.timesteps).astype(np.int64), process.timesteps - 1),
                                     process.time_dtype)
        else:
            self.times = tf.constant(u, process.time_dtype)
        self.images = tf.constant(np.tile(images, (self.BANDS, 1, 1, 1)))
        self.labels = tf.constant(np.tile(labels, self.BANDS))
        self.noise = tf.random.stateless_normal([self.BANDS * n, *model.sample_shape], seed=(20320, 4))
        self.best = np.full(self.BANDS, np.inf)

    def band_losses(self, model) -> np.ndarray:
        """The loss per band (NumPy, BANDS values)."""
        def losses(images, labels, t, noise):
            labels = model._labels_or_null(labels, tf.shape(images)[0])
            return tf.stack([model.denoising_loss(model.ema_network, x, y, s, e) for x, y, s, e in zip(
                *(tf.split(v, self.BANDS) for v in (images, labels, t, noise)))])

        fn = model.cached_function("health_noise_bands", lambda: tf.function(losses))
        return np.asarray(fn(self.images, self.labels, self.times, self.noise), np.float64)

    def measure(self, model, epoch):
        if not len(self.images) or (self.when is not None and not self.when(model)):
            return Reading({f"loss_t{k}": float("nan") for k in range(self.BANDS)})
        values = self.band_losses(model)
        rising = [k for k in range(self.BANDS) if values[k] >= self.RISE * self.best[k]]
        self.best = np.minimum(self.best, values)
        problem = None
        if rising:
            bands = ", ".join(f"t{k} {values[k]:.4g} ({values[k] / self.best[k]:.2f}× its best)" for k in rising)
            problem = (f"held-out denoising loss rising in noise band {bands} (t0 least noise, t{self.BANDS - 1} "
                       f"most): memorising the training images, or unstable training?")
        return Reading({f"loss_t{k}": float(v) for k, v in enumerate(values)}, {}, problem)


class BitsGap(HealthCheck):
    """An exact-likelihood model's bits/dim on the fixed training images and on the held-out ones.

    Both in inference mode and on the same quantisation (no dynamic binarisation), so their gap
    is the model's: a model that generalises scores its held-out images about as well as its
    training images; one that memorises a small folder scores them worse and worse. Warns when
    the held-out bits/dim exceed the training ones by more than `GAP` of the latter *and* by
    more than three standard errors of the difference of the two batch means (the batches hold
    different images, so a small gap can be the images').
    """

    #: A tenth: the relative gap of a memorising model grows without bound, a generalising one's
    #: stays within the few percent that two small batches of different images differ by.
    GAP = 0.1
    IMAGES = 64

    def bits(self, model, images, labels) -> np.ndarray:
        fn = model.cached_function("health_log_prob", lambda: tf.function(model.log_prob))
        args = (images, labels) if model.requires_labels else (images,)
        nats = _batches(lambda *a: fn(*(tf.constant(x) for x in a)), *args)
        return -nats / (model.num_dims * math.log(2.0))

    def measure(self, model, epoch):
        train, held = (self.bits(model, *(a[:self.IMAGES] for a in split))
                       for split in (self.data.train, self.data.held_out))
        gap = float(held.mean() - train.mean())
        se = math.sqrt(train.var(ddof=1) / len(train) + held.var(ddof=1) / len(held)) if min(
            len(train), len(held)) > 1 else math.inf
        problem = None
        if gap > self.GAP * train.mean() and gap > 3 * se:
            problem = (f"held-out images score {held.mean():.4g} bits/dim, training images {train.mean():.4g}: "
                       f"{gap / train.mean():.0%} worse, overfitting (more data, dropout, or a shorter run)")
        return Reading({"train_bits_per_dim": float(train.mean()), "heldout_bits_per_dim": float(held.mean()),
                        "bits_per_dim_gap": gap}, {}, problem)


class Diversity(HealthCheck):
    """The samples' diversity over the real images' (`tfgen.eval.diversity`): per class for a model that
    takes labels (`diversity_<c>` and `diversity_min`), else overall (`diversity`). Warns below `threshold`,
    at every epoch it lasts (naming the classes). Samples use a fixed seed: successive values differ by
    the model. `labelled`: whether to sample per class (None: whether the model takes labels)."""

    repeat_warning = True
    from_samples = True

    def __init__(self, n: int = DIVERSITY_EXAMPLES, seed: int = 4321, threshold: float = 0.5, labelled=None):
        self.n, self.seed, self.threshold = positive_int(n, "n"), seed, positive_number(threshold, "threshold")
        self.labelled = labelled

    def prepare(self, model, data):
        from tfgen.eval.diversity import random_features, real_diversities

        super().prepare(model, data)
        self.by_class = model.accepts_labels if self.labelled is None else self.labelled
        # Per class: the first images of each class; overall: the random training images.
        images, labels = data.per_class if self.by_class else data.train
        classes = model.num_classes if self.by_class else 1
        labels = labels if self.by_class else np.zeros(len(images), np.int32)
        self.features = random_features(model.image_shape)
        self.real = real_diversities(self.features, images, labels, classes)

    def measure(self, model, epoch):
        from tfgen.eval.diversity import class_diversity

        ratios = class_diversity(model, self.features, self.real, self.n, self.seed, labelled=self.by_class)
        if not self.by_class:
            problem = None if not ratios[0] < self.threshold else (
                f"samples vary {ratios[0]:.2f}× as much as the real images (below {self.threshold}): mode collapse?")
            return Reading({"diversity": float(ratios[0])}, {}, problem)
        scalars = {f"diversity_{c}": float(r) for c, r in enumerate(ratios)}
        scalars["diversity_min"] = float(np.nanmin(ratios)) if np.isfinite(ratios).any() else float("nan")
        low = [c for c, r in enumerate(ratios) if r < self.threshold]
        problem = None
        if low:
            names = self.data.class_names
            which = ", ".join(f"{c} ({names[c]})" if names else str(c) for c in low)
            values = ", ".join(f"{ratios[c]:.2f}" for c in low)
            problem = (f"samples of class {which} vary {values}× as much as the real images "
                       f"(below {self.threshold}): mode collapse?")
        return Reading(scalars, {}, problem)


class Health(keras.callbacks.Callback):
    """Measure `checks` (`HealthCheck`s) at every epoch's end; add their figures to the epoch logs.

    Place it before CSVLogger and TensorBoard, which write what it adds. Vectors go to TensorBoard
    as histograms (run `log_dir/health`) when `log_dir` is given. A check's warning is one line on
    `stream` (stderr), `warning: epoch N: …`. `columns`: when given (the header of a history.csv
    that a resumed run appends to), only those figures go into the logs, so its rows keep their columns.
    """

    def __init__(self, checks, data: HealthData, log_dir=None, stream=None, columns=None):
        super().__init__()
        self.checks, self.data, self.log_dir, self.stream = list(checks), data, log_dir, stream
        self.columns = None if columns is None else set(columns)
        self._prepared, self._writer = False, None
        self._bad = [False] * len(self.checks)
        self.last = {}

    def on_train_begin(self, logs=None):
        if not self._prepared:
            for check in self.checks:
                check.prepare(self.model, self.data)
            self._prepared = True

    def on_epoch_end(self, epoch, logs=None):
        scalars, vectors = {}, {}
        for i, check in enumerate(self.checks):
            reading = check.measure(self.model, epoch)
            scalars.update(reading.scalars)
            vectors.update(reading.vectors)
            if reading.problem and (check.repeat_warning or not self._bad[i]):
                print(f"warning: epoch {epoch + 1}: {reading.problem}", file=self.stream or sys.stderr, flush=True)
            self._bad[i] = bool(reading.problem)
        self.last = {**scalars, **vectors}
        if logs is not None:
            logs.update({k: v for k, v in scalars.items() if self.columns is None or k in self.columns})
        if vectors and self.log_dir is not None:
            self._histograms(vectors, epoch + 1)

    def _histograms(self, vectors: dict, step: int):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(Path(self.log_dir) / "health"))
        with self._writer.as_default():
            for name, values in vectors.items():
                tf.summary.histogram(name, np.asarray(values, np.float32), step=step)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ClassDiversity(Health):
    """Add each class's sample diversity (`tfgen.eval.diversity`) to the epoch logs; warn about collapsed classes.

    Logs `diversity_<class index>` for every class and `diversity_min`, the samples' mean
    pairwise distance over the real images' (≈ 1 healthy, near 0 one image per class), in a
    fixed random feature space. When a class falls below `threshold`, prints one line to
    stderr naming every such class. `images`, `labels`: real images of the classes (a few
    dozen per class suffice). Place it before CSVLogger and TensorBoard. (`Health` with one
    `Diversity` check, per class, on these images.)
    """

    def __init__(self, images, labels, n: int = 32, seed: int = 4321, threshold: float = 0.5, class_names=None,
                 stream=None):
        pair = (np.asarray(images, np.float32), np.asarray(labels, np.int32))
        super().__init__([Diversity(n, seed, threshold, labelled=True)], HealthData(pair, pair, pair, class_names),
                         stream=stream)


def training_monitor(model, train, held_out, seed: int = 0, class_names=None, log_dir=None, history=None):
    """The `Health` callback of a `tfgen train` run (None when the family has no checks).

    train, held_out: `tfgen.data.Examples`; history: the run's history.csv (a resumed run keeps its columns).
    """
    checks = model.health_checks()
    if not checks:
        return None
    data = HealthData.from_examples(train, held_out, seed, class_names)
    return Health(checks, data, log_dir=log_dir, columns=_csv_header(history))


def _csv_header(path):
    """The columns of an existing, non-empty CSV file, or None."""
    if path is None or not Path(path).exists():
        return None
    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    return header or None


def evaluation_figures(model, data: HealthData, samples=None, sample_labels=None, test=None) -> dict:
    """The health figures of a finished model, as `tfgen eval` reports them (JSON-ready).

    `health`: every family check's figures but those of samples (measured once on `data`), and
    `health_warnings`. With `samples` (the evaluation's own, with their `sample_labels` for a
    model that takes labels) and `test` (real (images, labels)): `diversity` overall, and per
    class `diversity_per_class` for a model that takes labels, against the real test images.
    """
    figures, warnings = {}, []
    for check in getattr(model, "health_checks", list)():  # a duck-typed model may have none
        if check.from_samples:
            continue
        check.prepare(model, data)
        reading = check.measure(model, 0)
        figures.update({k: _json(v) for k, v in {**reading.scalars, **reading.vectors}.items()})
        if reading.problem:
            warnings.append(reading.problem)
    result = {"health": figures, "health_warnings": warnings}
    if samples is not None and test is not None:
        result.update(sample_diversity(model.image_shape, samples, sample_labels, *test,
                                       model.num_classes if sample_labels is not None else 1))
    return result


def sample_diversity(image_shape, samples, sample_labels, real_images, real_labels, num_classes: int) -> dict:
    """{"diversity": overall, and with labels "diversity_per_class", "diversity_min"}: samples' mean pairwise
    distance over the real images' in `tfgen.eval.diversity`'s fixed random features."""
    from tfgen.eval.diversity import features_of, group_spreads, random_features

    features = random_features(image_shape)
    fake, real = features_of(features, samples), features_of(features, real_images)
    out = {"diversity": _ratio(group_spreads(fake)[0], group_spreads(real)[0])}
    if sample_labels is not None:
        classes = range(num_classes)
        per_class = [_ratio(a, b) for a, b in zip(group_spreads(fake, sample_labels, classes),
                                                   group_spreads(real, real_labels, classes))]
        out["diversity_per_class"] = per_class
        finite = [v for v in per_class if v is not None]
        out["diversity_min"] = min(finite) if finite else None
    return out


def _ratio(a: float, b: float):
    value = a / b if b > 0 else float("nan")
    return None if not math.isfinite(value) else float(value)


def _json(value):
    """A figure for eval.json: vectors as lists, NaN (a figure not measured) as null."""
    if isinstance(value, np.ndarray):
        return [_json(float(v)) for v in value]
    if isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None
