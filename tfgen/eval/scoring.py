"""`evaluate(model, dataset, n)`: every score tfgen knows for one model, with its real-data floor.

Sample quality, in the feature space of the dataset's evaluator
(`tfgen.eval.evaluator`: a classifier for labelled data, an autoencoder for
unlabelled data) or, with `features="inception"`, of Inception-v3
(`tfgen.eval.inception`), comparing `n` samples with the test split:

* `fid` — Fréchet distance on those features (Heusel et al. 2017's formula;
  on evaluator features *not* Inception FID, so not comparable with published FIDs);
* `kid`, `kid_std` — kernel distance, unbiased MMD² (Bińkowski et al. 2018);
* `classifier_score` — Inception-score analogue (Salimans et al. 2016); classifier only;
* `precision`, `recall` — Kynkäänniemi et al. 2019 (k = 3);
* `conditional_accuracy` — models that take labels (`accepts_labels`: the
  conditional families, and diffusion trained with class conditioning): samples
  drawn with balanced labels (every quality score above is then of those
  class-conditional samples), classified by the evaluator (overall and per class);
  classifier only. Without a classifier, `class_scores` says why these two are missing.

Every one of these also gets a `reference` value: `n` real *train* images
scored against the same test split in the same way. That is the floor (for
distances) or the ceiling (for scores) a perfect generator would reach with
this sample count — FID in particular is biased upwards at finite n.

Beside them, `noise_fid`: uniform noise images scored the same way, the other end
of the scale. `reliable` is False (with `unreliable_because`) when the evaluator
is too weak to rank models (`reliability`). Without `n`, the sample count is
sized to the test split (`default_sample_count`).

Likelihoods where the model defines one (`tfgen.eval.likelihood`): ELBO and
IWAE for VAEs (two data variants), exact NLL for models with `log_prob` (on
their own data variant and, for binary pixels, also on stochastically binarised
test images: the variant published binarised-MNIST NLLs use).
"""

from __future__ import annotations

import math
import time

import numpy as np

from tfgen.eval import likelihood as lik
from tfgen.eval import metrics

#: What the distances are computed on, by evaluator kind ("inception": Inception-v3 pool features).
FID_NOTES = {
    "classifier": "Fréchet distance on evaluator-classifier features (not Inception FID)",
    "autoencoder": "Fréchet distance on the bottleneck features of an autoencoder trained on the dataset "
                   "without labels (not Inception FID)",
    "inception": "Fréchet distance on Inception-v3 pool features, clean-fid resize (the published-FID convention)",
}
FID_NOTE = FID_NOTES["classifier"]
CLASS_SCORES_NOTE = ("classifier score and conditional accuracy do not apply: {why}")

# Column headings used by `format_table`.
_QUALITY_KEYS = ("fid", "kid", "classifier_score", "precision", "recall", "conditional_accuracy")


#: The default sample count is the test split's size, within these bounds. FID's error has a part
#: from the samples (~1/n) and one from the test images (~1/m): past n = m the test split's part
#: dominates and more samples only cost time (sampling is most of `tfgen eval`'s minutes); below 200,
#: KID's subsets and the k-NN manifolds of precision/recall get too coarse; 2000 was the fixed default.
MIN_DEFAULT_SAMPLES, MAX_DEFAULT_SAMPLES = 200, 2000

# When an evaluator cannot rank models (`reliability`). Measured with `benchmarks`-style scripts on this
# machine (tfgen's evaluator recipe, n = max(200, test images), FID of the train floor and of uniform noise):
#   bundled digits, shipped classifier:  98.4% accuracy, 1501 test images, floor 0.33, noise 588 (1793x floor)
#   bundled digits, autoencoder:         RMSE 0.335 (mean image 0.259), floor 0.0033, noise 0.86 (260x)
#   4-class emoji folder, 400 images, 32x32x3 (100 per class), classifier: 50% accuracy (chance 25%),
#                                        40 test images, floor 4.15, noise 104 (25x floor)
#   the same 400 images unlabelled, autoencoder: RMSE 0.372 (mean image 0.26), floor 0.35, noise 14.8 (42x)
#   the 9-class folder: 40.5% accuracy on 42 test images, floor 1.29, a noise grid 7.1 (5.5x)
#: Fewer test images than feature dimensions: the test split's feature covariance is singular, and FID's
#: floor is mostly estimation noise (4.15 with 40 test images above, against 0.33 with 1501).
#: (The limit is the feature dimension itself, 128 for tfgen's evaluators, 2048 for Inception.)
#: A classifier below halfway from chance to perfect accuracy, (1 + 1/K) / 2 (62.5% for 4 classes,
#: 55.6% for 9): the weak folder (50%) and the issue's (40.5%) are below it, the digits (98.4%) far above.
#: Uniform noise within this factor of the floor: the evaluator barely tells noise from real images,
#: so model differences of a few floors mean nothing (the issue's 5.5x; 25x and more everywhere else).
MIN_NOISE_OVER_FLOOR = 10.0
#: An autoencoder whose test reconstruction is this much worse than drawing the mean image. Both
#: trained ones measured are somewhat worse than it (1.29x, 1.43x: the denoising recipe blurs) yet put
#: noise at 42x and 260x the floor; one that did not train (a constant grey) is at 1.7x on digits.
MAX_RMSE_OVER_MEAN_IMAGE = 1.5


def default_sample_count(test_images: int) -> int:
    """Samples `evaluate` draws when not told: the test split's size, within the bounds above."""
    return int(min(MAX_DEFAULT_SAMPLES, max(MIN_DEFAULT_SAMPLES, test_images)))


class Progress:
    """One line per step of a long pass on stderr ("sampling: 500/2000 images, 41 s, about 2 min left").

    clock: seconds, e.g. `time.perf_counter` (tests pass a fake one); verbose 0 prints nothing.
    """

    def __init__(self, verbose: int = 1, clock=time.perf_counter, stream=None):
        import sys

        self.verbose, self.clock, self.stream = verbose, clock, stream or sys.stderr

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, file=self.stream, flush=True)

    def counter(self, what: str, total: int):
        """A function `done -> None` that reports `done` of `total` `what` with the time taken and left."""
        start = self.clock()

        def report(done: int) -> None:
            seconds = self.clock() - start
            left = seconds * (total - done) / done if done else 0
            tail = f", about {_duration(left)} left" if done < total else ""
            self.say(f"{what}: {done}/{total}, {_duration(seconds)}{tail}")
        return report


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def generate(model, n: int, seed: int = 0, batch_size: int = 500, labels=None, progress=None) -> np.ndarray:
    """`n` samples from `model` as float32 NumPy in [0, 1], drawn in batches with seeds seed, seed+1, ...

    progress: called with the number of samples drawn so far after each batch.
    """
    out = []
    for i, start in enumerate(range(0, n, batch_size)):
        b = min(batch_size, n - start)
        kwargs = {} if labels is None else {"labels": np.asarray(labels[start:start + b], np.int32)}
        out.append(np.asarray(model.sample(b, seed=seed + i, **kwargs), np.float32))
        if progress is not None:
            progress(start + b)
    images = np.concatenate(out) if out else np.zeros((0, *model.image_shape), np.float32)
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{type(model).__name__}.sample produced non-finite values (NaN/inf): the model diverged")
    return np.clip(images, 0.0, 1.0)


def balanced_labels(n: int, num_classes: int) -> np.ndarray:
    """0, 1, …, C−1, 0, 1, … : every class requested n/C times (±1)."""
    return (np.arange(n) % num_classes).astype(np.int32)


def score_features(features, probs, real_features, kid_subsets=100, kid_subset_size=1000, seed=0) -> dict:
    """FID, KID, precision/recall and (if `probs` is not None) the classifier score of one image set."""
    m = min(kid_subset_size, len(features), len(real_features))
    kid, kid_std = metrics.kernel_inception_distance(features, real_features, num_subsets=kid_subsets,
                                                     subset_size=m, seed=seed)
    precision, recall = metrics.precision_recall(real_features, features, k=3)
    scores = {"fid": metrics.frechet_distance(features, real_features), "kid": kid, "kid_std": kid_std,
              "precision": precision, "recall": recall}
    if probs is not None:
        scores["classifier_score"], scores["classifier_score_std"] = metrics.classifier_score_mean_std(
            probs, num_splits=min(10, len(probs)))
    return scores


class RealData:
    """The evaluator's view of a dataset: test-split features (the target) and a train subset (the floor)."""

    _cache: dict = {}

    def __init__(self, evaluator, dataset, n_reference: int, seed: int = 0, data_kwargs=None):
        from tfgen.eval.datasets import dataset_arrays

        data = dataset_arrays(dataset, data_kwargs)
        self.evaluator = evaluator
        self.test_features, self.test_probs = evaluator.features_and_probabilities(data.x_test)
        self.test_labels = data.y_test
        idx = np.random.default_rng(seed).choice(len(data.x_train), size=min(n_reference, len(data.x_train)),
                                                 replace=False)
        self.train_features, self.train_probs = evaluator.features_and_probabilities(data.x_train[idx])
        self.train_labels = data.y_train[idx]
        self.x_test, self.y_test = data.x_test, data.y_test

    @classmethod
    def get(cls, evaluator, dataset, n_reference, seed=0, data_kwargs=None):
        from tfgen.eval.datasets import dataset_arrays

        key = (id(evaluator), dataset_arrays(dataset, data_kwargs).fingerprint, n_reference, seed)
        if key not in cls._cache:
            cls._cache[key] = cls(evaluator, dataset, n_reference, seed, data_kwargs)
        return cls._cache[key]


def sample_scores(images, evaluator, real_features, requested_labels=None, num_classes=None, real_labels=None,
                  **kw) -> dict:
    """Scores of generated `images` against `real_features` (evaluator features of real data); with
    `real_labels` (of `real_features`) too, the recall of each class (`recall_per_class`)."""
    feats, probs = evaluator.features_and_probabilities(images)
    scores = score_features(feats, probs, real_features, **kw)
    if requested_labels is not None and probs is not None:
        classes = num_classes or evaluator.num_classes
        acc = metrics.conditional_accuracy(np.argmax(probs, axis=1), requested_labels, classes)
        scores["conditional_accuracy"] = acc["overall"]
        scores["conditional_accuracy_per_class"] = acc["per_class"]
        if real_labels is not None:
            scores["recall_per_class"] = metrics.recall_per_class(real_features, real_labels, feats,
                                                                  requested_labels, classes)
    return scores


def reference_scores(real: RealData, conditional: bool, **kw) -> dict:
    """The same scores for real train images against the test split: the best any model can do."""
    scores = score_features(real.train_features, real.train_probs, real.test_features, **kw)
    scores["compared"] = f"{len(real.train_features)} train images vs {len(real.test_features)} test images"
    if conditional and real.test_probs is not None:
        acc = metrics.conditional_accuracy(np.argmax(real.test_probs, axis=1), real.test_labels,
                                           real.evaluator.num_classes)
        scores["conditional_accuracy"] = acc["overall"]  # = the evaluator's test accuracy
        scores["conditional_accuracy_per_class"] = acc["per_class"]
    return scores


def evaluate(model, dataset: str = "mnist_bundled", n: int | None = None, seed: int = 0, evaluator=None,
             evaluator_dir=None, ks=(1, 50), n_likelihood: int | None = 1000, likelihood: bool = True,
             batch_size: int = 500, kid_subsets: int = 100, kid_subset_size: int = 1000, features: str = "evaluator",
             data_kwargs: dict | None = None, inception_weights=None, verbose: int = 1) -> dict:
    """Score a generative model: sample quality vs the test split, its real-data reference, likelihoods.

    model: any tfgen model, or any object with `sample(n, labels=None, seed=None)`, `num_classes`,
        `image_shape` and `accepts_labels` (whether `sample` takes labels); optionally `encode`/`decode_logits`
        for VAE bounds or `log_prob` + `data_variant` for exact likelihoods).
    dataset: the data the model was trained on (a `tfgen.data` spec such as `mnist_bundled`,
        `idx:DIR`, `folder:DIR`); picks the evaluator and the real images.
    data_kwargs: the options the data was read with (e.g. image_size, channels), passed to
        `tfgen.data.load_arrays`; the evaluator is of exactly those images.
    features: "evaluator" (the dataset's own classifier, or autoencoder if it has no labels)
        or "inception" (Inception-v3 pool features; `inception_weights` or Keras' cache must
        hold the weights file). Class-based scores need the classifier: they are left out,
        and `class_scores` says why, for the other two.
    n: number of samples (and of real train images in the reference row); None: `default_sample_count`.
    ks: importance-sample counts for the IWAE bound; the largest is the headline `iwae_nats`.
    n_likelihood: test images used for likelihoods (None: the whole test split).
    verbose: 1 shows the notice and progress bar if an evaluator must be trained first, and a
        progress line per sampling batch and per feature pass (on stderr).

    Returns a JSON-ready dict; see the module docstring for the keys.
    """
    from tfgen.checks import int_at_least
    from tfgen.eval.evaluator import get_evaluator

    from tfgen.eval.datasets import dataset_arrays

    progress = Progress(verbose)
    start = time.perf_counter()
    if n is None:
        test_images = len(dataset_arrays(dataset, data_kwargs).x_test)
        n = default_sample_count(test_images)
        progress.say(f"samples: {n} (the default for {test_images} test images: as many as the test split, "
                     f"{MIN_DEFAULT_SAMPLES} to {MAX_DEFAULT_SAMPLES}; more would not make FID more exact; --n N)")
    n = int_at_least(n, "n (precision/recall and KID need several samples)", 10)
    evaluator = evaluator or get_evaluator(dataset, directory=evaluator_dir, features=features,
                                           data_kwargs=data_kwargs, inception_weights=inception_weights,
                                           verbose=verbose)
    if evaluator.image_shape is not None and tuple(model.image_shape) != tuple(evaluator.image_shape):
        raise ValueError(f"model makes images of shape {tuple(model.image_shape)} but the {dataset} evaluator "
                         f"expects {tuple(evaluator.image_shape)}: evaluate on the dataset the model was trained on")
    progress.say(f"features of the real images ({evaluator.kind}): the test split and {n} train images")
    real = RealData.get(evaluator, dataset, n, seed, data_kwargs)
    kw = dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    # Models that take labels sample with balanced labels; "conditional" in the result means the
    # evaluator can also check those labels (conditional accuracy).
    conditional = model.accepts_labels and evaluator.labelled

    t = time.perf_counter()
    requested = balanced_labels(n, model.num_classes) if model.accepts_labels else None
    images = generate(model, n, seed=seed, batch_size=batch_size, labels=requested,
                      progress=progress.counter("sampling", n))
    progress.say(f"features and scores of {n} samples and of {n} uniform-noise images")
    result = {
        **_description(model, dataset, data_kwargs, evaluator, real, conditional, n, seed),
        **sample_scores(images, evaluator, real.test_features, requested if conditional else None,
                        model.num_classes if conditional else None, real.test_labels if conditional else None, **kw),
        "reference": reference_scores(real, conditional, **kw),
        "sample_seconds": time.perf_counter() - t,
        "noise_fid": noise_fid(evaluator, real, n, seed),
    }
    result.update(reliability(evaluator, real, result["reference"]["fid"], result["noise_fid"]))
    if not evaluator.labelled:
        result["class_scores"] = CLASS_SCORES_NOTE.format(why=_why_no_class_scores(evaluator))
    if likelihood:
        result.update(likelihood_scores(model, real, n_likelihood, ks, seed))
    result.update(health_scores(model, dataset, data_kwargs, images, requested, seed))
    result["seconds"] = time.perf_counter() - start
    return result


def health_scores(model, dataset, data_kwargs, samples, requested_labels, seed: int = 0) -> dict:
    """The run's health figures (`tfgen.health.evaluation_figures`): the family's, on fixed train and test
    images, and the diversity of `samples` against the test images (per class for labelled samples)."""
    from tfgen.eval.datasets import dataset_arrays
    from tfgen.health import HealthData, evaluation_figures

    data = dataset_arrays(dataset, data_kwargs)
    labelled = data.labelled and requested_labels is not None
    fixed = HealthData.from_arrays(data.x_train, data.y_train if data.labelled else None, data.x_test,
                                   data.y_test if data.labelled else None, model.num_classes if labelled else 1, seed)
    return evaluation_figures(model, fixed, samples, requested_labels if labelled else None,
                              (data.x_test, data.y_test if labelled else np.zeros(len(data.x_test), np.int32)))


def noise_fid(evaluator, real: RealData, n: int, seed: int = 0) -> float:
    """FID of `n` images of uniform noise against the test split: the far end of the scale the floor starts."""
    shape = tuple(real.x_test.shape[1:])
    noise = np.random.default_rng(seed).random((n, *shape), dtype=np.float32)
    return float(metrics.frechet_distance(evaluator.features(noise), real.test_features))


def reliability(evaluator, real: RealData, floor: float, noise: float) -> dict:
    """{"reliable": bool, "unreliable_because": [reasons]}: whether the evaluator can rank models.

    Four signs it cannot (thresholds and the measurements behind them: the constants above): too few
    test images for its feature dimension, a classifier near chance, an autoencoder that reconstructs
    worse than the mean image would, and uniform noise within `MIN_NOISE_OVER_FLOOR` of the floor.
    """
    reasons = []
    test_images, dims = real.test_features.shape
    if test_images < dims:
        reasons.append(f"only {test_images} test images for {dims} feature dimensions (the floor is mostly noise)")
    if evaluator.labelled and evaluator.num_classes > 1:
        halfway = (1 + 1 / evaluator.num_classes) / 2
        if evaluator.accuracy < halfway:
            reasons.append(f"its test accuracy {100 * evaluator.accuracy:.1f}% is near chance "
                           f"({100 / evaluator.num_classes:.1f}% for {evaluator.num_classes} classes; "
                           f"wanted {100 * halfway:.1f}% or more)")
    rmse = getattr(evaluator, "meta", {}).get("test_rmse") if evaluator.kind == "autoencoder" else None
    if rmse is not None:
        x = real.x_test
        mean_image = float(np.sqrt(np.mean(np.square(x - x.mean(axis=0)))))
        if rmse > MAX_RMSE_OVER_MEAN_IMAGE * mean_image:
            reasons.append(f"its reconstruction RMSE {rmse:.3f} is over {MAX_RMSE_OVER_MEAN_IMAGE:g}x that of the "
                           f"mean image ({mean_image:.3f})")
    if noise < MIN_NOISE_OVER_FLOOR * floor:
        reasons.append(f"uniform noise scores FID {_fmt(noise)}, within {MIN_NOISE_OVER_FLOOR:g}x of the real-data "
                       f"floor {_fmt(floor)}")
    return {"reliable": not reasons, "unreliable_because": reasons}


def reliability_warning(result: dict) -> str | None:
    """One line saying why the scores of `result` cannot rank models, or None when they can (or older results)."""
    if result.get("reliable", True):
        return None
    return (f"warning: this evaluator is too weak to rank models: {'; '.join(result['unreliable_because'])}; "
            f"use more images per class (at least a few hundred test images), or compare samples by eye")


def _description(model, dataset, data_kwargs, evaluator, real, conditional, n, seed) -> dict:
    """What was scored, against what, with which evaluator: the head of an `evaluate` result."""
    return {
        "model": getattr(model, "registry_name", None) or type(model).__name__,
        "dataset": dataset,
        "data_kwargs": dict(data_kwargs or {}),
        "n_samples": n,
        "n_real_test": len(real.test_features),
        "conditional": conditional,
        "features": evaluator.kind,
        "fid_note": FID_NOTES[evaluator.kind],
        "evaluator": evaluator.describe(),
        "evaluator_accuracy": evaluator.accuracy,
        "evaluator_dataset": evaluator.dataset,
        "evaluator_train_examples": evaluator.meta.get("train_examples"),
        "seed": seed,
    }


def name_classes(result: dict, class_names) -> dict:
    """`result` (of `evaluate`) with the names of the model's classes (a run's `class_names`, its folder
    names): kept as `class_names`, naming the per-class accuracies (`conditional_accuracy_by_class`; recall
    and diversity likewise) and the per-class lines of `format_table`. Without names, `result` as it is."""
    if not class_names:
        return result
    per_class = result.get("conditional_accuracy_per_class")
    if per_class is not None and len(per_class) != len(class_names):
        raise ValueError(f"class_names must name the model's {len(per_class)} classes, got {len(class_names)}")
    result["class_names"] = [str(name) for name in class_names]
    for what in ("conditional_accuracy", "recall", "diversity"):
        if result.get(f"{what}_per_class") is not None:
            result[f"{what}_by_class"] = dict(zip(result["class_names"], result[f"{what}_per_class"]))
    return result


def _why_no_class_scores(evaluator) -> str:
    if evaluator.kind == "inception":
        return "Inception features come without the dataset's classes (use the default evaluator for them)"
    return "the dataset has no labels"


def likelihood_scores(model, real: RealData, n_likelihood, ks, seed) -> dict:
    """ELBO/IWAE (VAEs) and exact NLL (models with `log_prob`) on the first test images; {} for other models."""
    x = real.x_test if n_likelihood is None else real.x_test[:n_likelihood]
    y = real.y_test[:len(x)]
    rows, result = [], {}
    if lik.is_vae(model):
        rows.extend(lik.vae_bounds(model, x, y, ks=ks, seed=seed))
        # Headline: the binarised variant, where the Bernoulli decoder is a real distribution.
        head = next(r for r in rows if r["variant"] == lik.BINARISED)
        k = str(max(int(k) for k in head["iwae_nats"]))
        result.update({
            "data_variant": head["variant"],
            "elbo_nats": head["elbo_nats"],
            "iwae_nats": head["iwae_nats"][k],
            "iwae_k": int(k),
            "bits_per_dim": head["iwae_bits_per_dim"][k],
        })
    if lik.has_log_prob(model):
        row = lik.exact_nll(model, x, y)
        rows.append(row)
        result.update({"data_variant": row["variant"], "nll_nats": row["nll_nats"],
                       "bits_per_dim": row["bits_per_dim"]})
        if getattr(model, "levels", None) == 2:  # also on the data published binarised-MNIST NLLs use
            row = lik.exact_nll(model, x, y, stochastic_seed=seed)
            rows.append(row)
            result["nll_nats_stochastic"] = row["nll_nats"]
    if rows:
        result["likelihood"] = rows
    return result


# ---------------------------------------------------------------------- printing
def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _evaluator_line(result: dict) -> str:
    # Results written before evaluators had kinds carry only the classifier's accuracy.
    what = result.get("evaluator") or (f"CNN classifier trained on {result['evaluator_dataset']}, "
                                       f"test accuracy {100 * result['evaluator_accuracy']:.2f}%")
    if result.get("features") == "inception":
        return f"{what}; FID, KID, precision/recall use them"
    return f"{what}; FID, KID, precision/recall use its features (not Inception FID)"

def _health_lines(result: dict) -> list[str]:
    """The health figures of `result` (`health_scores`): the family's scalars, diversity, per-class recall."""
    lines = []
    names = result.get("class_names")
    per_class = {"recall per class": result.get("recall_per_class"),
                 "diversity per class": result.get("diversity_per_class")}
    scalars = {k: v for k, v in result.get("health", {}).items() if not isinstance(v, list)}
    if scalars:
        lines.append("health: " + ", ".join(f"{k} {_fmt(v, 4)}" for k, v in scalars.items()))
    if "diversity" in result:
        lines.append(f"diversity (samples' spread over the test images'): {_fmt(result['diversity'], 2)}")
    for what, values in per_class.items():
        if values is not None:
            labels = names or [str(c) for c in range(len(values))]
            lines.append(f"{what}: " + " ".join(f"{c}:{_fmt(v, 2)}" for c, v in zip(labels, values)))
    lines.extend(f"health warning: {w}" for w in result.get("health_warnings", []))
    return lines


def _cell(row: dict, key: str) -> str:
    if key == "kid":
        return f"{_fmt(row['kid'])} ± {_fmt(row['kid_std'], 2)}"
    return _fmt(row.get(key))


def format_table(result: dict) -> str:
    """A plain-text report of an `evaluate` result."""
    lines = [
        f"{result['model']} on {result['dataset']}: {result['n_samples']} samples vs {result['n_real_test']} test images",
        f"features: {_evaluator_line(result)}",
        *([result["class_scores"]] if "class_scores" in result else []),
        "",
    ]
    fid_name = "FID (Inception)" if result.get("features") == "inception" else "FID (evaluator)"
    cols = [(fid_name, "fid"), ("KID", "kid"), ("precision", "precision"), ("recall", "recall")]
    if "classifier_score" in result:
        cols.insert(2, ("classifier score", "classifier_score"))
    if result.get("conditional"):
        cols.append(("cond. accuracy", "conditional_accuracy"))
    ref = result["reference"]
    rows = [(label, [_cell(row, key) for _, key in cols]) for label, row in (("model", result),
                                                                              ("real (train vs test)", ref))]
    # Each column as wide as its widest cell, and two spaces between columns: cells never run together.
    widths = [max(len(name), *(len(cells[i]) for _, cells in rows)) for i, (name, _) in enumerate(cols)]
    lines.append(f"{'':<22}" + "".join(f"  {name:>{w}}" for (name, _), w in zip(cols, widths)))
    for label, cells in rows:
        lines.append(f"{label:<22}" + "".join(f"  {text:>{w}}" for text, w in zip(cells, widths)))
    if "noise_fid" in result:
        lines.append(f"FID {_fmt(result['fid'])}: real-data floor {_fmt(ref['fid'])}, uniform noise "
                     f"{_fmt(result['noise_fid'])}")
    if result.get("conditional"):
        per = result.get("conditional_accuracy_per_class", [])
        names = result.get("class_names") or [str(c) for c in range(len(per))]
        lines.append("conditional accuracy per class: " + " ".join(f"{c}:{_fmt(a, 2)}" for c, a in zip(names, per)))
    lines.extend(_health_lines(result))
    for row in result.get("likelihood", []):
        lines.append("")
        lines.append(f"likelihood on {row['n_images']} test images, data: {row['variant']}")
        if "elbo_nats" in row:
            lines.append(f"  -ELBO        {row['elbo_nats']:9.2f} ± {row['elbo_nats_se']:.2f} nats/image"
                         f"   {row['elbo_bits_per_dim']:.4f} bits/dim")
            for k, v in row["iwae_nats"].items():
                lines.append(f"  -IWAE k={k:<5}{v:9.2f} ± {row['iwae_nats_se'][k]:.2f} nats/image"
                             f"   {row['iwae_bits_per_dim'][k]:.4f} bits/dim")
        if "nll_nats" in row:
            lines.append(f"  NLL (exact)  {row['nll_nats']:9.2f} ± {row['nll_nats_se']:.2f} nats/image"
                         f"   {row['bits_per_dim']:.4f} bits/dim")
    return "\n".join(lines)
