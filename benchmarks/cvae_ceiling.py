"""How often can a cVAE draw the asked class? Its samples against what its decoder can do at best.

A cVAE's conditional accuracy (the evaluator's argmax equals the asked class) is limited twice:
by where its samples' codes come from, and by how much of a class its decoder can draw at all.
This measures one trained cVAE four ways, each on `--n` images with balanced classes, each
scored as `tfgen eval` scores samples (`tfgen.eval.scoring`: FID, precision/recall on the
evaluator's features against the test split, conditional accuracy):

* **prior**: `sample()`, z ~ N(0, I), the model as it ships;
* **per-class Gaussian**: z drawn from a full-covariance Gaussian fitted to the posterior means
  of the class's training images (ex-post density estimation, Ghosh et al. 2020, "From
  Variational to Deterministic Autoencoders", §4, with one component per class): the codes
  real images of that class have, not the prior's holes between them;
* **reconstructions**: the decoded posterior means of training images of the asked class: the
  best code there is for an image of that class, so the decoder's ceiling;
* **real test images**: the evaluator's own accuracy, the yardstick (the issue's bar is a
  fraction of it).

If the reconstructions stay below a bar, no way of choosing z reaches it: the decoder (its
likelihood, its width) is what limits the model, not its sampling.

    python -m benchmarks.cvae_ceiling --model RUN_DIR                    # a `tfgen train cvae` run
    python -m benchmarks.cvae_ceiling --model DIR/model.keras --dataset folder:DIR --image-size 32

Writes benchmarks/results/cvae_ceiling.json and cvae_ceiling.md (--name changes both).
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_dataset_name

SCORES = ("fid", "precision", "recall", "conditional_accuracy")


def class_gaussians(z_means, labels, num_classes):
    """[(mean (D,), Cholesky factor (D, D))] per class, of the rows of `z_means` with that label.

    A small ridge (1e-6 × the mean variance) keeps the factorisation defined for a class with
    fewer images than latent dimensions."""
    import numpy as np

    fitted = []
    for c in range(num_classes):
        rows = z_means[labels == c]
        if len(rows) < 2:
            raise ValueError(f"class {c} has {len(rows)} training image(s): a Gaussian needs at least 2")
        cov = np.cov(rows, rowvar=False)
        cov += np.eye(len(cov)) * (1e-6 * float(np.mean(np.diag(cov))) + 1e-12)
        fitted.append((rows.mean(axis=0), np.linalg.cholesky(cov)))
    return fitted


def measure(model, dataset, data_options, n, seed=0):
    import numpy as np
    import tensorflow as tf

    from tfgen.data import load_examples
    from tfgen.eval import scoring
    from tfgen.eval.datasets import dataset_arrays
    from tfgen.eval.evaluator import get_evaluator

    if not getattr(model, "requires_labels", False) or not hasattr(model, "latent_dim"):
        raise SystemExit(f"error: a cVAE is needed (got {type(model).__name__})")
    evaluator = get_evaluator(dataset, data_kwargs=data_options)
    real = scoring.RealData.get(evaluator, dataset, n, seed, data_options)
    data = dataset_arrays(dataset, data_options)
    labels = scoring.balanced_labels(n, model.num_classes)
    rng = np.random.default_rng(seed)

    batch = 500  # the training set's codes, a batch at a time
    z_means = np.concatenate([np.asarray(model.encode(tf.constant(data.x_train[i:i + batch]),
                                                      tf.constant(data.y_train[i:i + batch]))[0])
                              for i in range(0, len(data.x_train), batch)])
    gaussians = class_gaussians(z_means, data.y_train, model.num_classes)
    fitted = np.stack([gaussians[y][0] + gaussians[y][1] @ rng.standard_normal(model.latent_dim) for y in labels])
    # A training image of each asked class (with replacement): its posterior mean is the code to decode.
    picks = np.array([rng.choice(np.flatnonzero(data.y_train == y)) for y in labels])

    def decoded(z):
        return np.asarray(model.decode(tf.constant(z, tf.float32), tf.constant(labels)))

    ways = {
        "prior": np.asarray(scoring.generate(model, n, seed=seed, labels=labels)),
        "per-class Gaussian": decoded(fitted),
        "reconstructions": decoded(z_means[picks]),
    }
    rows = {}
    for name, images in ways.items():
        scores = scoring.sample_scores(images, evaluator, real.test_features, labels, model.num_classes, seed=seed)
        rows[name] = {k: float(scores[k]) for k in SCORES}
        rows[name]["per_class"] = [float(a) for a in scores["conditional_accuracy_per_class"]]
        print(f"  {name:20s} FID {scores['fid']:6.2f}  cond. acc. {scores['conditional_accuracy']:.3f}", flush=True)
    test_predictions = evaluator.predict_labels(data.x_test)
    per_class = [float(np.mean(test_predictions[data.y_test == c] == c)) for c in range(model.num_classes)]
    rows["real test images"] = {"conditional_accuracy": float(evaluator.accuracy), "per_class": per_class}
    names = load_examples(dataset, "test", **data_options).info.class_names or range(model.num_classes)
    return {"n": n, "classes": [str(c) for c in names],
            "evaluator_accuracy": float(evaluator.accuracy), "rows": rows}


def markdown(result: dict) -> str:
    real = result["evaluator_accuracy"]
    lines = ["| codes | FID (eval.) ↓ | precision ↑ | recall ↑ | cond. acc. ↑ | ÷ real |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in result["rows"].items():
        if name == "real test images":
            lines.append(f"| *{name}* | | | | {row['conditional_accuracy']:.3f} | 1 |")
            continue
        lines.append(f"| {name} | {row['fid']:.2f} | {row['precision']:.2f} | {row['recall']:.2f} | "
                     f"{row['conditional_accuracy']:.3f} | {row['conditional_accuracy'] / real:.2f} |")
    classes = result["classes"]
    per_class = "; ".join(f"{c}: " + " / ".join(f"{result['rows'][k]['per_class'][i]:.2f}" for k in result["rows"])
                          for i, c in enumerate(classes))
    lines += ["", f"{result['model']} on {result['dataset']} {result['data_options']}, {result['n']} images per row "
              f"with balanced classes, seed {result['seed']}. Conditional accuracy per class ("
              + " / ".join(result["rows"]) + f"): {per_class}.",
              "", f"Command: `{result['command']}`; {result['date']}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    from benchmarks.samplers import load_model
    from tfgen.io import write_json, write_text

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a cvae run directory, .keras file or trained preset")
    p.add_argument("--dataset", help="default: the run's")
    p.add_argument("--image-size", type=int)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="cvae_ceiling")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    options = {"image_size": args.image_size} if args.image_size else {}
    model, dataset, options, facts = load_model(args.model, args.dataset, options)
    result = {"model": facts["family"], "dataset": public_dataset_name(dataset), "data_options": options,
              "seed": args.seed, **measure(model, dataset, options, args.n, args.seed),
              "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
              "command": public_command("cvae_ceiling", argv, paths=("--model", "--out"), datasets=("--dataset",))}
    out = Path(args.out)
    write_json(out / f"{args.name}.json", result)
    write_text(out / f"{args.name}.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
