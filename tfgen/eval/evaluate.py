"""`evaluate(model, dataset, n)`: every score tfgen knows for one model, with its real-data floor.

Sample quality, in the feature space of the dataset's evaluator classifier
(`tfgen.eval.evaluator`), comparing `n` samples with the test split:

* `fid` — Fréchet distance on evaluator features (Heusel et al. 2017's formula;
  *not* Inception FID, so not comparable with published FIDs);
* `kid`, `kid_std` — kernel distance, unbiased MMD² (Bińkowski et al. 2018);
* `classifier_score` — Inception-score analogue (Salimans et al. 2016);
* `precision`, `recall` — Kynkäänniemi et al. 2019 (k = 3);
* `conditional_accuracy` — models that take labels (`accepts_labels`: the
  conditional families, and diffusion trained with class conditioning): samples
  drawn with balanced labels (every quality score above is then of those
  class-conditional samples), classified by the evaluator (overall and per class).

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

FID_NOTE = "Fréchet distance on evaluator-classifier features (not Inception FID)"

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
    """FID, KID, classifier score and precision/recall of one image set against real features."""
    m = min(kid_subset_size, len(features), len(real_features))
    kid, kid_std = metrics.kernel_inception_distance(features, real_features, num_subsets=kid_subsets,
                                                     subset_size=m, seed=seed)
    cs, cs_std = metrics.classifier_score_mean_std(probs, num_splits=min(10, len(probs)))
    precision, recall = metrics.precision_recall(real_features, features, k=3)
    return {
        "fid": metrics.frechet_distance(features, real_features),
        "kid": kid,
        "kid_std": kid_std,
        "classifier_score": cs,
        "classifier_score_std": cs_std,
        "precision": precision,
        "recall": recall,
    }


class RealData:
    """The evaluator's view of a dataset: test-split features (the target) and a train subset (the floor)."""

    _cache: dict = {}

    def __init__(self, evaluator, dataset, n_reference: int, seed: int = 0):
        from tfgen.data import load_arrays

        self.evaluator = evaluator
        x_test, y_test = load_arrays(dataset, "test")
        x_train, y_train = load_arrays(dataset, "train")
        self.test_features, self.test_probs = evaluator.features_and_probabilities(x_test)
        self.test_labels = y_test
        idx = np.random.default_rng(seed).choice(len(x_train), size=min(n_reference, len(x_train)), replace=False)
        self.train_features, self.train_probs = evaluator.features_and_probabilities(x_train[idx])
        self.train_labels = y_train[idx]
        self.x_test, self.y_test = x_test, y_test

    @classmethod
    def get(cls, evaluator, dataset, n_reference, seed=0):
        key = (id(evaluator), dataset, n_reference, seed)
        if key not in cls._cache:
            cls._cache[key] = cls(evaluator, dataset, n_reference, seed)
        return cls._cache[key]


def sample_scores(images, evaluator, real_features, requested_labels=None, num_classes=None, **kw) -> dict:
    """Scores of generated `images` against `real_features` (evaluator features of real data)."""
    feats, probs = evaluator.features_and_probabilities(images)
    scores = score_features(feats, probs, real_features, **kw)
    if requested_labels is not None:
        acc = metrics.conditional_accuracy(np.argmax(probs, axis=1), requested_labels,
                                           num_classes or evaluator.num_classes)
        scores["conditional_accuracy"] = acc["overall"]
        scores["conditional_accuracy_per_class"] = acc["per_class"]
    return scores


def reference_scores(real: RealData, conditional: bool, **kw) -> dict:
    """The same scores for real train images against the test split: the best any model can do."""
    scores = score_features(real.train_features, real.train_probs, real.test_features, **kw)
    scores["compared"] = f"{len(real.train_features)} train images vs {len(real.test_features)} test images"
    if conditional:
        acc = metrics.conditional_accuracy(np.argmax(real.test_probs, axis=1), real.test_labels,
                                           real.evaluator.num_classes)
        scores["conditional_accuracy"] = acc["overall"]  # = the evaluator's test accuracy
        scores["conditional_accuracy_per_class"] = acc["per_class"]
    return scores


def evaluate(
    model,
    dataset: str = "mnist_bundled",
    n: int = 2000,
    seed: int = 0,
    evaluator=None,
    evaluator_dir=None,
    ks=(1, 50),
    n_likelihood: int | None = 1000,
    likelihood: bool = True,
    batch_size: int = 500,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
) -> dict:
    """Score a generative model: sample quality vs the test split, its real-data reference, likelihoods.

    model: any tfgen model (`sample`; `accepts_labels`, or `conditional` for a duck-typed
        model; optionally `encode`/`decode_logits`
        for VAE bounds or `log_prob` + `data_variant` for exact likelihoods).
    dataset: the data the model was trained on (any `tfgen.data.load` name); picks the evaluator.
    n: number of samples (and of real train images in the reference row).
    ks: importance-sample counts for the IWAE bound; the largest is the headline `iwae_nats`.
    n_likelihood: test images used for likelihoods (None: the whole test split).

    Returns a JSON-ready dict; see the module docstring for the keys.
    """
    from tfgen.eval.evaluator import get_evaluator

    if isinstance(n, bool) or not isinstance(n, int) or n < 10:
        raise ValueError(f"n must be an integer >= 10 (precision/recall and KID need several samples), got {n!r}")
    start = time.perf_counter()
    evaluator = evaluator or get_evaluator(dataset, directory=evaluator_dir)
    if tuple(model.image_shape) != tuple(evaluator.image_shape):
        raise ValueError(f"model makes images of shape {tuple(model.image_shape)} but the {dataset} evaluator "
                         f"expects {tuple(evaluator.image_shape)}: evaluate on the dataset the model was trained on")
    real = RealData.get(evaluator, dataset, n, seed)
    kw = dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    # "conditional" in the result: samples drawn with labels, so conditional accuracy is measured.
    conditional = takes_labels(model)

    t = time.perf_counter()
    requested = balanced_labels(n, model.num_classes) if conditional else None
    images = generate(model, n, seed=seed, batch_size=batch_size, labels=requested)
    sample_seconds = time.perf_counter() - t
    result = {
        "model": getattr(model, "registry_name", None) or type(model).__name__,
        "dataset": dataset,
        "n_samples": n,
        "n_real_test": len(real.test_features),
        "conditional": conditional,
        "fid_note": FID_NOTE,
        "evaluator_accuracy": evaluator.accuracy,
        "evaluator_dataset": evaluator.dataset,
        "evaluator_train_examples": evaluator.meta.get("train_examples"),
        "seed": seed,
        **sample_scores(images, evaluator, real.test_features, requested, model.num_classes if conditional else None,
                        **kw),
        "reference": reference_scores(real, conditional, **kw),
        "sample_seconds": sample_seconds,
    }

    if likelihood:
        x = real.x_test if n_likelihood is None else real.x_test[:n_likelihood]
        y = real.y_test[:len(x)]
        rows = []
        if lik.is_vae(model):
            for row in lik.vae_bounds(model, x, y, ks=ks, seed=seed):
                rows.append(row)
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
    result["seconds"] = time.perf_counter() - start
    return result


# ---------------------------------------------------------------------- printing
def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _cell(row: dict, key: str) -> str:
    if key == "kid":
        return f"{_fmt(row['kid'])} ± {_fmt(row['kid_std'], 2)}"
    return _fmt(row.get(key))


def format_table(result: dict) -> str:
    """A plain-text report of an `evaluate` result."""
    lines = [
        f"{result['model']} on {result['dataset']}: {result['n_samples']} samples vs {result['n_real_test']} test images",
        f"evaluator: {result['evaluator_dataset']} CNN, test accuracy {100 * result['evaluator_accuracy']:.2f}%; "
        "FID, KID, precision/recall use its features (not Inception FID)",
        "",
    ]
    cols = [("FID (evaluator)", "fid"), ("KID", "kid"), ("classifier score", "classifier_score"),
            ("precision", "precision"), ("recall", "recall")]
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
        lines.append("conditional accuracy per class: " + " ".join(f"{c}:{_fmt(a, 2)}" for c, a in enumerate(per)))
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
