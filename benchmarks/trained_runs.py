"""Trained runs: score run directories written by `tfgen train`, the way the leaderboard scores.

    python -m benchmarks.trained_runs runs/pixelcnn-long runs/pixel_transformer-long
    python -m benchmarks.trained_runs RUN_DIR --n 1000 --n-likelihood 0     # NLL on the whole test split

The leaderboard gives every model the same few minutes; some families need hours on
a CPU before their samples are digits (the autoregressive models: issue 6). This
scores such long runs with the same evaluator and measures: for each run, what it
is (model, preset, dataset, epochs done, training time summed from history.csv),
then `tfgen.eval.scoring` — the exact NLL for autoregressive models, on the data
variant they train on — and a grid of 100 samples. Writes, under --out (default
benchmarks/results/):

    trained_runs.json        every run's facts and scores (runs scored earlier are kept, keyed by name)
    trained_runs.md          the Markdown table (README.md embeds it: benchmarks/render_readme.py)
    samples/trained_<run>.png
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_path
from benchmarks.leaderboard import number_cell  # the leaderboard's cell format, so both tables read alike

NAME = "trained_runs"


def run_facts(run_dir: Path) -> dict:
    """What a run is and how long it trained, from its config.json and history.csv."""
    from tfgen.runs import read_run_config

    config = read_run_config(run_dir)
    with open(run_dir / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    if not history:
        raise ValueError(f"{run_dir / 'history.csv'} has no finished epoch: nothing to score")
    last = history[-1]
    model_config = config["config"]
    return {
        "run": str(run_dir),
        "model": config["model"],
        "preset": config["preset"],
        "dataset": config["dataset"],
        "batch_size": config["batch_size"],
        "epochs": len(history),
        "train_hours": round(sum(float(row["epoch_seconds"]) for row in history) / 3600, 2),
        # A run paused or sharing its cores has a few long epochs; the median is the steady pace.
        "median_epoch_minutes": round(statistics.median(float(row["epoch_seconds"]) for row in history) / 60, 1),
        "final_val_loss": float(last["val_loss"]) if last.get("val_loss") else None,
        "dynamic_binarization": bool(model_config.get("dynamic_binarization", False)),
        # What trains the same run in one go (a run resumed several times gets the same steps).
        "train_command": " ".join([
            f"tfgen train {config['model']} --preset {config['preset']} --dataset {config['dataset']}",
            f"--batch-size {config['batch_size']} --seed {config['seed']} --epochs {len(history)}",
            *(f"--set {key}={value}" for key, value in set_options(config["model"], config["preset"], model_config))]),
    }


def set_options(model: str, preset: str, model_config: dict) -> list[tuple[str, str]]:
    """(key, value) of each hyperparameter where the run differs from its preset: its `--set` options."""
    from tfgen.registry import get_model_class

    cls = get_model_class(model)
    preset_values = cls.preset_hyperparameters(preset)
    resolved = {}
    options = []
    for key, parameter in cls.hyperparameters().items():
        if key not in model_config or key == "seed":  # the seed is --seed
            continue
        value = json.loads(json.dumps(model_config[key]))  # tuples as lists, as config.json holds them
        expected = preset_values.get(key, parameter.default)
        if expected is None and "image_shape" in model_config:
            # Chosen from the image shape (the AR models' levels and block_size): the preset's value at this shape.
            resolved = resolved or cls.from_preset(preset, image_shape=tuple(model_config["image_shape"])).get_config()
            expected = resolved.get(key)
        if value != json.loads(json.dumps(expected)):
            text = str(value).lower() if isinstance(value, bool) else json.dumps(value).replace(" ", "")
            options.append((key, text.strip('"')))
    return options


def score(run_dir: Path, facts: dict, args, evaluator, out: Path, command: str) -> dict:
    """`facts` (from `run_facts`) plus the run's scores, likelihood and sample grid; `command` scored it."""
    from tfgen.eval.scoring import evaluate, format_table
    from tfgen.plotting import sample_for_grid, save_grid
    from tfgen.runs import load_run

    entry = dict(facts)
    model = load_run(run_dir)
    entry["params"] = int(model.count_params())
    result = evaluate(model, dataset=entry["dataset"], n=args.n, seed=args.seed, evaluator=evaluator,
                      n_likelihood=args.n_likelihood or None)
    print(format_table(result), flush=True)
    entry["reference"] = result.pop("reference")
    entry["scores"] = result
    entry["likelihood_images"] = next((row["n_images"] for row in result.get("likelihood", []) if "n_images" in row),
                                      None)
    entry["command"] = command
    images, ncols = sample_for_grid(model, 100, seed=args.seed + 1)
    grid = out / "samples" / f"trained_{run_dir.name}.png"
    save_grid(images, grid, ncols=ncols)
    entry["samples"] = str(grid.relative_to(out))
    return entry


def median_epoch(entry: dict) -> str:
    minutes = entry.get("median_epoch_minutes")
    return "" if minutes is None else f" (median epoch {minutes:.0f} min)"


def markdown(results: dict) -> str:
    rows = [
        "| run | model (preset) | params | trained on | trained | NLL ↓ threshold 0.5 | NLL ↓ stochastic "
        "| FID (eval.) ↓ | class. score ↑ | precision ↑ | recall ↑ | samples |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, e in sorted(results["runs"].items()):
        s = e["scores"]
        nll, stochastic = s.get("nll_nats"), s.get("nll_nats_stochastic")
        nll_text = "–" if nll is None else f"{nll:.1f} ({s['bits_per_dim']:.3f})"
        data = "Bernoulli draws, new each step" if e.get("dynamic_binarization") else "threshold 0.5"
        rows.append(
            f"| {name} | {e['model']} ({e['preset']}) | {e['params'] / 1e6:.2f}M | {data} "
            f"| {e['epochs']} ep, {e['train_hours']:.1f} h{median_epoch(e)} | {nll_text} | {number_cell(stochastic, '{:.1f}')} "
            f"| {number_cell(s['fid'])} | {number_cell(s['classifier_score'], '{:.2f}')} "
            f"| {number_cell(s['precision'], '{:.2f}')} | {number_cell(s['recall'], '{:.2f}')} "
            f"| `benchmarks/results/{e['samples']}` |"
        )
    m = results["machine"]
    commands = sorted({e["command"] for e in results["runs"].values()})
    trained = "; ".join(f"{name}: `{e['train_command']}`" for name, e in sorted(results["runs"].items()))
    notes = [
        "",
        f"Each run: `tfgen train` on `{'`, `'.join(sorted({e['dataset'] for e in results['runs'].values()}))}` "
        f"for the epochs shown (training time: the sum of the run's epoch times; the median epoch shows the pace "
        f"where some epochs were slowed by pauses or shared cores), then scored like the "
        f"leaderboard: {results['n_samples']} samples against the test split on the evaluator's features (not "
        f"Inception FID), and, for autoregressive models, the exact NLL in nats per image (bits/dim) on "
        f"{' / '.join(str(n) for n in sorted({e['likelihood_images'] for e in results['runs'].values()} - {None}))} "
        f"test images: thresholded at 0.5 (the data the runs validate on), and drawn once as x ~ Bernoulli(pixel) "
        f"with seed {results.get('seed', 0)} (the kind of data published binarised-MNIST NLLs are on). "
        f"Machine: {m['cpus']} × {m['cpu']}; "
        f"{results['date']}; TensorFlow {m.get('tensorflow')}. Trained with {trained}. "
        f"Scored with {' ; '.join(f'`{c}`' for c in commands)}.",
    ]
    return "\n".join(rows + notes) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories written by `tfgen train`")
    p.add_argument("--n", type=int, default=1000, help="samples per run (default 1000, as the leaderboard)")
    p.add_argument("--n-likelihood", type=int, default=0, help="test images for likelihoods (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluator-dir")
    p.add_argument("--out", default=str(RESULTS))
    return p.parse_args(argv)


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    # The run directories named without this machine's directories, as the options' paths.
    command = public_command(NAME, [public_path(a) if a in args.runs else a for a in argv],
                             paths=("--evaluator-dir", "--out"))
    from tfgen.bench.hardware import machine
    from tfgen.eval.evaluator import get_evaluator
    from tfgen.io import write_json, write_text

    out = Path(args.out)
    path = out / f"{NAME}.json"
    results = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    if results.get("n_samples", args.n) != args.n:
        raise SystemExit(f"{path} holds runs scored on {results['n_samples']} samples; score with --n "
                         f"{results['n_samples']} or write elsewhere with --out")
    if results.get("seed", args.seed) != args.seed:
        raise SystemExit(f"{path} holds runs scored with --seed {results['seed']} (samples and the stochastic "
                         f"binarisation depend on it); score with that seed or write elsewhere with --out")
    facts = {Path(r): run_facts(Path(r)) for r in args.runs}
    datasets = {f["dataset"] for f in facts.values()}
    if len(datasets) != 1:
        raise SystemExit(f"runs on several datasets ({', '.join(sorted(datasets))}): score them separately")
    evaluator = get_evaluator(datasets.pop(), directory=args.evaluator_dir)
    results.update({"n_samples": args.n, "seed": args.seed, "machine": machine(),
                    "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")})
    for run_dir, run in facts.items():
        print(f"=== {run_dir}", flush=True)
        results["runs"][run_dir.name] = score(run_dir, run, args, evaluator, out, command)
        write_json(path, results)  # after each run: an interrupted scoring keeps what it finished
        write_text(out / f"{NAME}.md", markdown(results))
    print(f"wrote {path} and {out / (NAME + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
