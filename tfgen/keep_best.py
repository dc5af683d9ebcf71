"""Keep the best epoch, not only the last (`tfgen train --keep best`).

A GAN's samples do not get better monotonically with training: an adversarial step
can undo the ones before it, and a class can collapse late (a default cGAN on 1,906
colour emoji drew three of its nine classes as one image each after 117 epochs; a
shorter run was far less collapsed). A run that keeps only its last epoch keeps
whatever that epoch was. With `--keep best`, `KeepBest` scores every epoch's samples
and, when the score improves, saves that epoch next to the last checkpoint:

    RUN/best/best.json         {"epoch", "step", "score", "scores": the epoch's values, "file", "definition"}
    RUN/best/epoch_037.keras   the model of that epoch (full: weights, optimiser state, config)

`tfgen sample`, `export` and `eval` (`tfgen.runs.load_run`) use it by default and say so.

The score (`EpochScore`, lower is better), on a fixed set of real held-out images:

    score = KID(samples, real) / KID(collapsed, real) + max(0, 1 − diversity_min / 0.5)

* KID: the kernel inception distance of Bińkowski et al. 2018 ("Demystifying MMD GANs",
  ICLR; `tfgen.eval.metrics.kernel_inception_distance`): unbiased MMD² with the kernel
  (x·y/d + 1)³, so its expectation does not depend on the few hundred samples it is
  computed on (FID's does). Features: the fixed random convolutional network of
  `tfgen.eval.diversity`, not a trained evaluator. A user's folder has no evaluator at
  train time (training one costs minutes), and the feature network, fixed by a seed, is the
  same in every run and after every resume, so an epoch's score always compares with the
  best so far. (Switching to an evaluator once one happens to be cached would change the
  scale in the middle of a run.) Random features see low-level statistics, colours,
  strokes, layouts: enough to tell a collapsed or broken epoch from a good one, not to
  rank two good epochs finely.
* Divided by KID(collapsed, real): the KID of a generator that draws one image per class,
  over and over (the first real image of every class, repeated), computed once from the real
  set. A unit set by the data's own spread: 0 is as close to the real images as other real
  images are, 1 is as far as total collapse, on digits as on emoji.
* Health: `diversity_min`, the lowest per-class diversity of the same samples (mean
  pairwise feature distance of a class's samples over that of its real images,
  `tfgen.eval.diversity`; all samples as one group for a model without labels). Below
  0.5 (`ClassDiversity`'s warning threshold) it adds its shortfall, up to 1 for a class
  drawn as a single image. KID over all classes barely sees one class of nine collapse
  (its share of the samples is small), hence the separate term.

Which epoch is kept (`is_better`): one that scores below every epoch before it; or a *healthy*
one (no class below 0.5) that scores within `TIE` of the lowest score so far — a later epoch
as good as the best by a measure too coarse to separate them has trained longer. Random
features do not rank two good epochs: on the default cGAN on 1,906 emoji the scores of
healthy epochs 9–22 wandered between 0.02 and 0.07 without a trend while the evaluator's FID
of the run kept improving (6.9 at 3 minutes, 5.1 at 6), and keeping strictly the lowest held
on to an epoch of the third minute; on the digits cGAN, to epoch 3 of 8 (evaluator FID 10.1
against the last epoch's 4.1). `TIE` = 0.05 is about that epoch-to-epoch wander. An epoch
whose classes collapse (its score rises by the shortfall, up to 1) is never kept over a
healthy one.

Work per epoch: sampling as many images as the real set holds (at most `KEEP_EXAMPLES`,
256) with fixed noise (one generator pass for a GAN; a model that samples in steps takes
`sample_options`, e.g. the sample grid's 20 steps), two layers of random convolutions on
them, and 256×256 kernel matrices; its time against an epoch's is not measured here.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from tfgen import runs
from tfgen.io import save_model, stale_temporaries, write_json

#: Real held-out images of the score (balanced over the classes), and so samples, per epoch.
KEEP_EXAMPLES = 256
#: A class whose samples vary less than this fraction of its real images' variation is unhealthy
#: (the threshold of `tfgen.callbacks.ClassDiversity`'s warning).
HEALTHY_DIVERSITY = 0.5
#: A healthy epoch scoring within this of the lowest score so far replaces the kept one (`is_better`): about
#: the epoch-to-epoch wander of the score between healthy epochs of one run (module docstring).
TIE = 0.05
#: What history.csv and TensorBoard call the values `EpochScore` adds to an epoch's logs.
SCORE, KID, DIVERSITY = "keep_score", "keep_kid", "keep_diversity_min"
DEFINITION = (f"{SCORE} = KID(samples, real) / KID(one image per class, real) + max(0, 1 - diversity_min / "
              f"{HEALTHY_DIVERSITY}), in the random features of tfgen.eval.diversity; lower is better; the kept "
              f"epoch is the last that scored below all before it or, healthy (diversity_min >= {HEALTHY_DIVERSITY}), "
              f"within {TIE} of the lowest score")


def check_keep(keep: str | None, model_cls) -> str:
    """`--keep` as a run records it: "best" or "last"; None: the family's default, "best" when its samples
    do not improve monotonically (`quality_monotone = False`, the GANs), else "last"."""
    from tfgen.checks import one_of

    if keep is None:
        return "last" if getattr(model_cls, "quality_monotone", True) else "best"
    return one_of(keep, runs.KEEP, "keep")


def run_callback(directory, train, held_out, seed: int, first_step: int = 0, sample_options=None) -> "KeepBest":
    """The `KeepBest` of a `tfgen train` run (`tfgen.data.Examples` of its splits): scored on the first
    `KEEP_EXAMPLES` held-out images, balanced over the classes (the training split's if the held-out
    split has fewer than two), with samples of fixed noise `seed`."""
    import tensorflow as tf

    real = held_out if held_out.info.num_examples >= 2 else train
    labels = real.labels.numpy()
    classes = max(real.info.num_classes, 1)
    indices = [i for c in range(classes) for i in np.flatnonzero(labels == c)[:max(2, KEEP_EXAMPLES // classes)]]
    images, labels = real.lookup(tf.constant(indices, tf.int64))
    return KeepBest(directory, EpochScore(images, labels, seed=seed, sample_options=sample_options),
                    first_step=first_step)


class EpochScore:
    """The health-adjusted score of a model's samples (see the module docstring); lower is better.

    `images`, `labels`: the real held-out set (`KEEP_EXAMPLES` images, balanced over the classes).
    `prepare(model)` computes their features once; `EpochScore(...)(model)` is then a dict of `SCORE`,
    `KID`, `DIVERSITY`. The samples: as many as real images, of the same classes when the model takes
    labels, drawn with the fixed `seed` so that successive epochs differ by the model only.
    `sample_options` go to `model.sample` where it takes them. Samples that are not finite score NaN
    (never the best).
    """

    def __init__(self, images, labels, seed: int = 4322, threshold: float = HEALTHY_DIVERSITY, sample_options=None):
        self.images, self.labels = np.asarray(images, np.float32), np.asarray(labels, np.int64)
        if len(self.images) < 2:
            raise ValueError(f"the score needs at least 2 real images, got {len(self.images)}")
        self.seed, self.threshold = seed, threshold
        self.sample_options = dict(sample_options or {})
        self._features = None

    def prepare(self, model) -> None:
        from tfgen.eval.diversity import random_features

        if self._features is not None:
            return
        self._features = random_features(model.image_shape)
        self._real = self._embed(self.images)
        self._real_spread = self._spreads(model, self._real)
        # One image per class, repeated as often as the class has real images: total collapse.
        first = {c: np.flatnonzero(self.labels == c)[0] for c in np.unique(self.labels)}
        collapsed = self._real[[first[c] for c in self.labels]]
        scale = self._kid(collapsed)
        self.kid_scale = scale if scale > 0 else 1.0  # a real set with no spread at all: KID as it is

    def __call__(self, model) -> dict:
        import inspect


        self.prepare(model)
        taken = inspect.signature(model.sample).parameters
        options = {k: v for k, v in self.sample_options.items() if k in taken}
        if model.accepts_labels:
            options["labels"] = self.labels.astype(np.int32)
        samples = np.asarray(model.sample(len(self.images), seed=self.seed, **options), np.float32)
        if not np.all(np.isfinite(samples)):
            return {SCORE: math.nan, KID: math.nan, DIVERSITY: math.nan}
        features = self._embed(np.clip(samples, 0.0, 1.0))
        ratios = self._spreads(model, features) / self._real_spread
        diversity = float(np.nanmin(ratios)) if np.isfinite(ratios).any() else math.nan
        kid = self._kid(features)
        shortfall = max(0.0, 1.0 - diversity / self.threshold) if math.isfinite(diversity) else 0.0
        return {SCORE: kid / self.kid_scale + shortfall, KID: kid, DIVERSITY: diversity}

    def _embed(self, images) -> np.ndarray:
        from tfgen.eval.diversity import features_of

        return np.asarray(features_of(self._features, images), np.float64)

    def _kid(self, features) -> float:
        from tfgen.eval.metrics import kernel_inception_distance

        # Equal-sized sets: one subset of all of them is the whole estimate (no subsampling noise).
        return kernel_inception_distance(features, self._real, num_subsets=1, subset_size=len(self._real), seed=0)[0]

    def _spreads(self, model, features) -> np.ndarray:
        """Diversity's spreads of `features` (ordered as `labels`): each class's, or one of all of them for a
        model without labels."""
        from tfgen.eval.diversity import group_spreads

        return group_spreads(features, self.labels if model.accepts_labels else None, np.unique(self.labels))


def is_better(values: dict, best: dict | None) -> bool:
    """Whether an epoch's score `values` (`SCORE`, and `DIVERSITY` if measured) replace the kept epoch
    (`best.json`: its "lowest" score so far; None: none yet): a score below the lowest, or a healthy one
    (`DIVERSITY` ≥ `HEALTHY_DIVERSITY`, or not measured) within `TIE` of it. NaN never does."""
    score = values[SCORE]
    if not math.isfinite(score):
        return False
    lowest = lowest_score(best)
    if not math.isfinite(lowest) or score < lowest:
        return True
    healthy = not values.get(DIVERSITY, math.inf) < HEALTHY_DIVERSITY
    return healthy and score <= lowest + TIE


def lowest_score(best: dict | None) -> float:
    """The lowest score of any epoch so far (`best.json`'s "lowest", or its "score" if written before ties
    were kept; NaN without one)."""
    if best is None:
        return math.nan
    return float(best.get("lowest", best.get("score", math.nan)))


class KeepBest(keras.callbacks.Callback):
    """After every epoch, add `score(model)`'s values to the logs and, when `SCORE` beats the best so far,
    save the model to `directory/epoch_NNN.keras` and describe it in `directory/best.json`.

    `score`: a callable model → dict with `SCORE` (lower is better; `EpochScore`, or a fake in tests),
    with an optional `prepare(model)` called when training begins. Place it before the CSV and
    TensorBoard loggers, which then record the values (columns `keep_score`, …).

    The best so far is read from `best.json` when training begins: a resumed run replaces its best only
    with a better epoch. Writes are atomic and in an order that a kill at any point cannot break: the
    new model file, then `best.json` naming it (the switch), then the file of the previous best. Files
    in `directory` that `best.json` does not name (a write a kill interrupted) are removed when
    training begins. An epoch that a kill interrupts before its last checkpoint may still have been
    saved as the best: it was trained, and a resumed run retrains it from the last checkpoint.
    """

    def __init__(self, directory, score, first_step: int = 0):
        super().__init__()
        self.directory, self.score, self.step = Path(directory), score, first_step
        self.best = None

    def on_train_begin(self, logs=None):
        if hasattr(self.score, "prepare"):
            self.score.prepare(self.model)
        self.best = runs.read_best(self.directory)  # a resumed run: the best so far
        self._remove_unnamed()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        values = {k: float(v) for k, v in self.score(self.model).items()}
        if logs is not None:
            logs.update(values)
        if not is_better(values, self.best):
            return
        name = f"epoch_{epoch + 1:03d}.keras"
        save_model(self.model, self.directory / name)
        lowest = min(values[SCORE], lowest_score(self.best)) if self.best else values[SCORE]
        self.best = {"epoch": epoch + 1, "step": self.step, "score": values[SCORE], "lowest": lowest,
                     "scores": values, "file": name, "definition": DEFINITION}
        write_json(self.directory / runs.BEST_NAME, self.best)
        self._remove_unnamed()

    def _remove_unnamed(self):
        """Model files (and temporaries of atomic writes) that `best.json` does not name; nothing else."""
        named = self.best["file"] if self.best else None
        for path in [*self.directory.glob("epoch_*.keras"), *self.directory.glob(".epoch_*.keras"),
                     *stale_temporaries(self.directory / runs.BEST_NAME)]:
            if path.name != named:
                path.unlink(missing_ok=True)
