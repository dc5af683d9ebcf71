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
from tfgen.layers.conditioning import takes_labels

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


def generate(model, n: int, seed: int = 0, batch_size: int = 500, labels=None) -> np.ndarray:
    """`n` samples from `model` as float32 NumPy in [0, 1], drawn in batches with seeds seed, seed+1, ..."""
    out = []
    for i, start in enumerate(range(0, n, batch_size)):
        b = min(batch_size, n - start)
        kwargs = {} if labels is None else {"labels": np.asarray(labels[start:start + b], np.int32)}
        out.append(np.asarray(model.sample(b, seed=seed + i, **kwargs), np.float32))
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


def sample_scores(images, evaluator, real_features, requested_labels=None, num_classes=None, **kw) -> dict:
    """Scores of generated `images` against `real_features` (evaluator features of real data)."""
    feats, probs = evaluator.features_and_probabilities(images)
    scores = score_features(feats, probs, real_features, **kw)
    if requested_labels is not None and probs is not None:
        acc = metrics.conditional_accuracy(np.argmax(probs, axis=1), requested_labels,
                                           num_classes or evaluator.num_classes)
        scores["conditional_accuracy"] = acc["overall"]
        scores["conditional_accuracy_per_class"] = acc["per_class"]
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


def evaluate(model, dataset: str = "mnist_bundled", n: int = 2000, seed: int = 0, evaluator=None, evaluator_dir=None,
             ks=(1, 50), n_likelihood: int | None = 1000, likelihood: bool = True, batch_size: int = 500,
             kid_subsets: int = 100, kid_subset_size: int = 1000, features: str = "evaluator",
             data_kwargs: dict | None = None, inception_weights=None, verbose: int = 1) -> dict:
    """Score a generative model: sample quality vs the test split, its real-data reference, likelihoods.

    model: any tfgen model (`sample`; `accepts_labels`, or `conditional` for a duck-typed
        model; optionally `encode`/`decode_logits`
        for VAE bounds or `log_prob` + `data_variant` for exact likelihoods).
    dataset: the data the model was trained on (a `tfgen.data` spec such as `mnist_bundled`,
        `idx:DIR`, `folder:DIR`); picks the evaluator and the real images.
    data_kwargs: the options the data was read with (e.g. image_size, channels), passed to
        `tfgen.data.load_arrays`; the evaluator is of exactly those images.
    features: "evaluator" (the dataset's own classifier, or autoencoder if it has no labels)
        or "inception" (Inception-v3 pool features; `inception_weights` or Keras' cache must
        hold the weights file). Class-based scores need the classifier: they are left out,
        and `class_scores` says why, for the other two.
    n: number of samples (and of real train images in the reference row).
    ks: importance-sample counts for the IWAE bound; the largest is the headline `iwae_nats`.
    n_likelihood: test images used for likelihoods (None: the whole test split).
    verbose: 1 shows the notice and progress bar if an evaluator must be trained first.

    Returns a JSON-ready dict; see the module docstring for the keys.
    """
    from tfgen.checks import int_at_least
    from tfgen.eval.evaluator import get_evaluator

    n = int_at_least(n, "n (precision/recall and KID need several samples)", 10)
    start = time.perf_counter()
    evaluator = evaluator or get_evaluator(dataset, directory=evaluator_dir, features=features,
                                           data_kwargs=data_kwargs, inception_weights=inception_weights,
                                           verbose=verbose)
    if evaluator.image_shape is not None and tuple(model.image_shape) != tuple(evaluator.image_shape):
        raise ValueError(f"model makes images of shape {tuple(model.image_shape)} but the {dataset} evaluator "
                         f"expects {tuple(evaluator.image_shape)}: evaluate on the dataset the model was trained on")
    real = RealData.get(evaluator, dataset, n, seed, data_kwargs)
    kw = dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    # Models that take labels sample with balanced labels; "conditional" in the result means the
    # evaluator can also check those labels (conditional accuracy).
    conditional = takes_labels(model) and evaluator.labelled

    t = time.perf_counter()
    requested = balanced_labels(n, model.num_classes) if takes_labels(model) else None
    images = generate(model, n, seed=seed, batch_size=batch_size, labels=requested)
    result = {
        **_description(model, dataset, data_kwargs, evaluator, real, conditional, n, seed),
        **sample_scores(images, evaluator, real.test_features, requested if conditional else None,
                        model.num_classes if conditional else None, **kw),
        "reference": reference_scores(real, conditional, **kw),
        "sample_seconds": time.perf_counter() - t,
    }
    if not evaluator.labelled:
        result["class_scores"] = CLASS_SCORES_NOTE.format(why=_why_no_class_scores(evaluator))
    if likelihood:
        result.update(likelihood_scores(model, real, n_likelihood, ks, seed))
    result["seconds"] = time.perf_counter() - start
    return result


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
    names): kept as `class_names`, naming the per-class accuracies (`conditional_accuracy_by_class`) and
    the per-class line of `format_table`. Without names, `result` as it is."""
    if not class_names:
        return result
    per_class = result.get("conditional_accuracy_per_class")
    if per_class is not None and len(per_class) != len(class_names):
        raise ValueError(f"class_names must name the model's {len(per_class)} classes, got {len(class_names)}")
    result["class_names"] = [str(name) for name in class_names]
    if per_class is not None:
        result["conditional_accuracy_by_class"] = dict(zip(result["class_names"], per_class))
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
    if result.get("conditional"):
        per = result.get("conditional_accuracy_per_class", [])
        names = result.get("class_names") or [str(c) for c in range(len(per))]
        lines.append("conditional accuracy per class: " + " ".join(f"{c}:{_fmt(a, 2)}" for c, a in zip(names, per)))
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
