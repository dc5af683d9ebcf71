"""Foundation numbers for the README: train `vae` and `gan` with their default presets
through `tfgen.train` (the same path as `tfgen train`) and record, per model:

* training images/second — median over epochs 2..N (epoch 1 includes tracing),
  from the `images_per_second` column `tfgen train` writes to history.csv;
* for the VAE, the test −ELBO in nats per image after the last epoch (one-sample
  estimate over the whole test split; continuous grayscale targets, Bernoulli decoder).

    python -m benchmarks.foundation [--epochs N] [--out benchmarks/results]

Each model trains for its own default steps and batch size (`FIT_DEFAULTS`, what
`tfgen train MODEL` uses) unless `--epochs` is given.

Writes benchmarks/results/foundation.json and foundation.md (the README table), plus
the last sample grid of each run as benchmarks/results/samples/foundation_<model>.png.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfgen  # noqa: E402
from tfgen.bench.hardware import cpu_model  # noqa: E402
from tfgen.io import write_json, write_text  # noqa: E402

from benchmarks.common import RESULTS, read_history  # noqa: E402

COMMAND = "python -m benchmarks.foundation"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, help="default: each model's own (tfgen list)")
    parser.add_argument("--models", default="vae,gan")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = {
        "command": COMMAND + (f" --epochs {args.epochs}" if args.epochs else ""),
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()},
        "dataset": "mnist_bundled",
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            fit = dict(tfgen.get_model_class(name).FIT_DEFAULTS)
            if args.epochs:
                fit = {"epochs": args.epochs, "batch_size": fit["batch_size"]}
            run = tfgen.train(name, "default", dataset="mnist_bundled", seed=0, out=Path(tmp) / name, verbose=2,
                              **fit)
            history = read_history(run)
            steady = [row["images_per_second"] for row in history[1:]] or [history[0]["images_per_second"]]
            entry = {
                "preset": "default",
                "batch_size": fit["batch_size"],
                "epochs": fit.get("epochs"),
                "steps": fit.get("steps"),
                "train_seconds": sum(row["epoch_seconds"] for row in history),
                "train_images_per_second_median": statistics.median(steady),
                "train_images_per_second_by_epoch": [row["images_per_second"] for row in history],
                "final": {k: v for k, v in history[-1].items() if k != "epoch"},
            }
            if "val_loss" in history[-1] and name == "vae":
                entry["test_elbo_nats"] = -history[-1]["val_loss"]
                entry["test_elbo_variant"] = "continuous grayscale targets, Bernoulli decoder (one-sample estimate)"
            (out / "samples").mkdir(parents=True, exist_ok=True)
            grids = sorted((run / "samples").glob("epoch_*.png"))
            shutil.copy(grids[-1], out / "samples" / f"foundation_{name}.png")
            results["models"][name] = entry
    write_json(out / "foundation.json", results)
    write_text(out / "foundation.md", render(results))
    print(render(results))


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Trained with `{results['command']}` on {results['date']}, {m['cpus']} CPU cores ({m['cpu']}), "
        f"dataset `{results['dataset']}`, `default` presets, each model's default length and batch size.",
        "",
        "| model | length × batch | training time | training images/s (median, epochs 2+) "
        "| test −ELBO (nats/image) | final losses | last sample grid |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in results["models"].items():
        elbo = f"{-e['test_elbo_nats']:.1f}" if "test_elbo_nats" in e else "—"
        losses = ", ".join(f"{k} {v:.3g}" for k, v in e["final"].items()
                           if not k.startswith(("epoch_", "images_")) and not k.startswith("val_"))
        length = f"{e['steps']} steps" if e.get("steps") else f"{e['epochs']} epochs"
        lines.append(f"| `{name}` | {length} × {e['batch_size']} | {e['train_seconds'] / 60:.1f} min "
                     f"| {e['train_images_per_second_median']:.0f} | {elbo} | {losses} "
                     f"| `benchmarks/results/samples/foundation_{name}.png` |")
    lines += ["", "The VAE's −ELBO is on continuous grayscale pixels (Bernoulli cross-entropy), which is not "
              "comparable to published binarised-MNIST numbers; the evaluation suite reports those."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
