"""Precision quality: after the same number of steps, is a mixed-precision model as good as a float32 one?

    nice -n 10 python -m benchmarks.precision_quality --models diffusion,pixelcnn,pixel_transformer \\
        --steps diffusion=1500,pixelcnn=1000,pixel_transformer=1000 --seeds 0,1 --precisions float32,mixed_bfloat16
    python -m benchmarks.precision_quality --models vae --preset tiny --steps 20 --n 100 --out /tmp/pq   # a look

For each model, seed and precision: train the model's preset for exactly N optimiser
steps and score it, with the leaderboard's own functions (`leaderboard.train_and_score`):
the same batches in the same order for every precision at one seed, the model built
under the precision's dtype policy; FID and KID on the evaluator's features from --n
samples, the NLL (exact, or a VAE's IWAE bound) on --n-likelihood test images. The
precisions alternate within each seed, so a shared machine's load falls on all of them.

The verdict, per model, for each precision other than float32 and each metric (FID,
and the NLL where the family has one):

    spread    = max − min of the float32 runs over the seeds (|FID(seed 0) − FID(seed 1)| for two seeds)
    deviation = |mean of the precision's runs − mean of the float32 runs|
    tolerance = max(spread, 1% of |float32 mean|)
    "within noise" when deviation ≤ tolerance for every metric.

The 1% floor: two float32 seeds can agree far more closely than training noise would
suggest (NLLs typically do), and a spread of nearly zero would call any difference a loss.

Writes under --out (default benchmarks/results/):

    precision_quality.json   every run: scores, steps, seconds, images/s, seed, precision, machine, command, date
    precision_quality.md     one table per model, and its verdict
    samples/precision_<model>_<precision>.png   a sample grid of each precision's run with the first seed

Results are written after each run, so an interrupted run keeps what it finished;
`--merge` keeps the runs of an earlier file that this one does not repeat. A run that
fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import time
import traceback
from pathlib import Path

from benchmarks import leaderboard
from benchmarks.common import RESULTS, public_command
from tfgen.checks import int_at_least, positive_int, unknown_name
from tfgen.precision import POLICIES, check_policy

REFERENCE = "float32"
#: The tolerance never falls below this fraction of the float32 mean (see the module docstring).
NOISE_FLOOR = 0.01
#: What the verdict compares: (name, how to read it from a run's scores).
METRICS = (("FID", lambda scores: scores.get("fid")), ("NLL", leaderboard.headline_nll))
#: Settings every run of one model must share for its verdict to mean anything.
SAME_SETTINGS = ("preset", "steps", "batch_size", "dataset", "n_samples", "n_likelihood")
DEFAULT_MODELS = "diffusion,pixelcnn,pixel_transformer"
RULE = ("Verdict, per metric: the float32 spread is max − min over the float32 seeds (|value(seed 0) − "
        "value(seed 1)| for two); the deviation is |mean of the other precision's seeds − mean of the float32 "
        f"seeds|; the tolerance is max(spread, {NOISE_FLOOR:.0%} of the float32 mean), the floor because two "
        "seeds may agree far more closely than training noise (NLLs do). *Within noise* when deviation ≤ "
        "tolerance for every metric (FID, and NLL where the family has one).")


# ---------------------------------------------------------------------- the verdict
def verdict(reference_values, other_values, floor: float = NOISE_FLOOR) -> dict:
    """Is the mean of `other_values` within the seed-to-seed spread of `reference_values` (float32's)?

    Returns spread, floor, tolerance, deviation and `within_noise` (see the module docstring).
    Non-finite values (a diverged run) are never within noise.
    """
    reference, other = [float(v) for v in reference_values], [float(v) for v in other_values]
    if len(reference) < 2 or not other:
        raise ValueError(f"a verdict needs at least two float32 runs and one other, got {len(reference)} and "
                         f"{len(other)}")
    mean = sum(reference) / len(reference)
    spread = max(reference) - min(reference)
    deviation = abs(sum(other) / len(other) - mean)
    finite = all(math.isfinite(v) for v in reference + other)
    tolerance = max(spread, floor * abs(mean)) if finite else math.nan
    return {"reference_mean": mean, "spread": spread, "floor": floor * abs(mean), "tolerance": tolerance,
            "deviation": deviation, "within_noise": finite and deviation <= tolerance}


def model_verdict(runs: list[dict], precision: str) -> dict:
    """The verdict on `precision` for one model's runs: per metric, or why there is none (`reason`)."""
    done = [r for r in runs if "scores" in r]
    differing = [k for k in SAME_SETTINGS if len({repr(r.get(k)) for r in done}) > 1]
    if differing:
        return {"reason": f"the runs differ in {', '.join(differing)}: run them again with one setting"}
    reference = [r["scores"] for r in done if r["precision"] == REFERENCE]
    other = [r["scores"] for r in done if r["precision"] == precision]
    if len(reference) < 2 or not other:
        return {"reason": f"needs two finished {REFERENCE} runs and one {precision} run, has {len(reference)} "
                          f"and {len(other)}"}
    metrics = {}
    for name, read in METRICS:
        values = [read(s) for s in reference], [read(s) for s in other]
        if all(v is not None for v in values[0] + values[1]):
            metrics[name] = verdict(*values)
    return {"metrics": metrics, "within_noise": all(m["within_noise"] for m in metrics.values()),
            "speed_ratio": _mean_speed(done, precision) / _mean_speed(done, REFERENCE)}


def _mean_speed(runs, precision) -> float:
    speeds = [r["images_per_second"] for r in runs if r["precision"] == precision]
    return sum(speeds) / len(speeds)


# ---------------------------------------------------------------------- Markdown
def markdown(results: dict) -> str:
    """One section per model: a row per (precision, seed), then a verdict line per precision."""
    lines = []
    for model in sorted({r["model"] for r in results["runs"].values()}):
        runs = sorted((r for r in results["runs"].values() if r["model"] == model), key=_row_order)
        lines += [*_model_table(model, runs), ""]
        for precision in _precisions(runs):
            lines += [_verdict_line(precision, model_verdict(runs, precision)), ""]
    commands = sorted({r["command"] for r in results["runs"].values()})
    machines = sorted({f"{r['machine']['nproc']} × {r['machine']['cpu']}" for r in results["runs"].values()})
    dates = sorted({r["date"] for r in results["runs"].values()})
    lines += [
        RULE,
        "",
        "FID and KID on the features of the dataset's small CNN evaluator (not Inception FID), from each run's "
        "samples against the test split; NLL in nats per image (bits/dim), exact for autoregressive models, an "
        "IWAE upper bound for VAEs. Every precision of one seed trains on the same batches in the same order. "
        "Images/s: training, first step (tracing) excluded. Sample grids: "
        "`benchmarks/results/samples/precision_<model>_<precision>.png` (first seed)." + _floor_text(results),
        "",
        f"Machine: {'; '.join(machines)}; {' – '.join(dict.fromkeys([dates[0], dates[-1]]))}. Command: "
        + " ; ".join(f"`{c}`" for c in commands) + ".",
    ]
    return "\n".join(lines) + "\n"


def _floor_text(results: dict) -> str:
    ref = results.get("reference")
    if not ref:
        return ""
    return (f" Real training images score FID {_g(ref['fid'])} against the test split at the same sample count: "
            "the floor of these distances.")


def _model_table(model: str, runs: list[dict]) -> list[str]:
    first = next((r for r in runs if "scores" in r), runs[0])
    lines = [
        f"**`{model}`** (`{first['preset']}` preset, {first['steps']} steps of batch {first.get('batch_size', '–')} "
        f"on `{first['dataset']}`)",
        "",
        "| precision | seed | FID ↓ | KID ×10³ ↓ | NLL nats ↓ (bits/dim) | training images/s | training s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if "scores" not in r:
            lines.append(f"| {r['precision']} | {r['seed']} | failed: {r.get('error', '?')[:80]} | | | | |")
            continue
        s, cell = r["scores"], leaderboard.number_cell
        lines.append(f"| {r['precision']} | {r['seed']} | {cell(s['fid'])} "
                     f"| {cell(s['kid'] * 1e3, '{:.2f}')} ± {cell(s['kid_std'] * 1e3, '{:.2f}')} "
                     f"| {leaderboard.nll_text(s)} | {r['images_per_second']:.0f} | {r['train_seconds']:.1f} |")
    return lines


def _verdict_line(precision: str, result: dict) -> str:
    if "reason" in result:
        return f"{precision} vs {REFERENCE}: no verdict — {result['reason']}."
    parts = [f"{name}: deviation {_g(m['deviation'])} {'≤' if m['within_noise'] else '>'} tolerance "
             f"{_g(m['tolerance'])} ({REFERENCE} spread {_g(m['spread'])}, {NOISE_FLOOR:.0%} floor {_g(m['floor'])})"
             for name, m in result["metrics"].items()]
    word = "within noise" if result["within_noise"] else "**outside noise**"
    return (f"{precision} vs {REFERENCE}: {word}. " + "; ".join(parts)
            + f". Training speed {result['speed_ratio']:.2f}× {REFERENCE}.")


def _g(value) -> str:
    return leaderboard.number_cell(value, "{:.3g}")


def _precisions(runs) -> list[str]:
    return sorted({r["precision"] for r in runs} - {REFERENCE}, key=_precision_rank)


def _precision_rank(precision: str) -> int:
    order = (REFERENCE, "mixed_bfloat16", "mixed_float16")
    return order.index(precision) if precision in order else len(order)


def _row_order(run: dict):
    return _precision_rank(run["precision"]), run["precision"], run["seed"]


# ---------------------------------------------------------------------- arguments
def per_model(text: str, models, convert, option: str) -> dict:
    """`--steps 300`, `--steps diffusion=600,pixelcnn=300` or both (`300,diffusion=600`) → {model: value}."""
    default, values = None, {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, value = item.rpartition("=")
        if name and name not in models:
            raise unknown_name(name, models, f"model in {option}") from None
        try:
            value = convert(value)
        except ValueError as err:
            raise ValueError(f"{option}: {item!r}: {err}") from None
        if name:
            values[name] = value
        else:
            default = value
    missing = [m for m in models if m not in values and default is None]
    if missing:
        raise ValueError(f"{option} gives no value for {', '.join(missing)}: add {missing[0]}=VALUE, or one value "
                         "for every model")
    return {m: values.get(m, default) for m in models}


def _steps(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError("expected a positive integer number of steps")
    return positive_int(int(text), "steps")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    p.add_argument("--steps", required=True,
                   help="optimiser steps per run: N for every model, or MODEL=N,... (a bare N is the default)")
    p.add_argument("--preset", default="default", help="preset, or MODEL=PRESET,... like --steps (default: default)")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (at least two: the float32 spread)")
    p.add_argument("--precisions", default="float32,mixed_bfloat16",
                   help=f"comma-separated, from {', '.join(POLICIES)}; must include {REFERENCE}")
    p.add_argument("--n", type=int, default=1000, help="samples per run for FID/KID")
    p.add_argument("--n-likelihood", type=int, default=1000, help="test images for the NLL")
    p.add_argument("--k", default="1,50", help="importance samples for VAE bounds")
    p.add_argument("--dataset", default="mnist_bundled")
    p.add_argument("--batch-size", type=int, help="default: each model's own")
    p.add_argument("--evaluator-dir")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--merge", action="store_true", help="keep the runs of an earlier precision_quality.json")
    args = p.parse_args(argv)
    try:
        _check_args(args)
    except ValueError as err:
        p.error(str(err))
    return args


def _check_args(args) -> None:
    """Turn the comma-separated options into lists and dicts; a ValueError for anything wrong."""
    from tfgen import catalog

    args.models = _items(args.models, "--models", lambda name: catalog.family(name).name)
    args.steps = per_model(args.steps, args.models, _steps, "--steps")
    args.preset = per_model(args.preset, args.models, str, "--preset")
    for model, preset in args.preset.items():
        catalog.check_preset(model, preset)
    args.seeds = _items(args.seeds, "--seeds", lambda seed: int_at_least(int(seed), "seed", 0))
    if len(args.seeds) < 2:
        raise ValueError(f"--seeds needs at least two different seeds (the float32 spread), got {args.seeds}")
    args.precisions = _items(args.precisions, "--precisions", check_policy)
    if REFERENCE not in args.precisions:
        raise ValueError(f"--precisions must include {REFERENCE}, the reference the others are judged against")
    args.ks = tuple(_items(args.k, "--k", lambda k: positive_int(int(k), "k")))


def _items(text: str, option: str, convert) -> list:
    """The distinct comma-separated items of `text`, each converted (and checked) by `convert`, in order."""
    items = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        try:
            value = convert(item)
        except ValueError as err:
            raise ValueError(f"{option}: {item!r}: {err}") from None
        if value not in items:
            items.append(value)
    if not items:
        raise ValueError(f"{option} is empty")
    return items


# ---------------------------------------------------------------------- running
def run(args) -> dict:
    import json

    import keras

    from tfgen.eval.evaluator import get_evaluator
    from tfgen.io import write_json, write_text
    from tfgen.runs import versions

    out = Path(args.out)
    path = out / "precision_quality.json"
    evaluator = get_evaluator(args.dataset, directory=args.evaluator_dir)
    results = {"title": "mixed precision vs float32 after equal steps", "rule": RULE, "noise_floor": NOISE_FLOOR,
               "runs": {}}
    if args.merge and path.exists():
        results["runs"] = json.loads(path.read_text())["runs"]
    context = {"command": public_command("precision_quality", paths=("--evaluator-dir", "--out"),
                                         datasets=("--dataset",)),
               "machine": leaderboard.machine(), "versions": versions()}
    for model in args.models:
        for seed in args.seeds:
            for precision in args.precisions:
                grid = out / "samples" / f"precision_{model}_{precision}.png" if seed == args.seeds[0] else None
                row = one_run(args, model, seed, precision, evaluator, grid)
                if "reference" in row:  # the real data's scores: the same for every run of these settings
                    results["reference"] = row.pop("reference")
                if grid is not None and "scores" in row:
                    row["samples"] = str(grid.relative_to(out))
                results["runs"][f"{model} {precision} seed {seed}"] = {**row, **context}
                write_json(path, results)
                write_text(out / "precision_quality.md", markdown(results))
                keras.backend.clear_session()
    return results


def one_run(args, model: str, seed: int, precision: str, evaluator, grid) -> dict:
    """Train and score one (model, precision, seed); the run's row, or its error."""
    steps, preset = args.steps[model], args.preset[model]
    print(f"=== {model} ({preset} preset), {precision}, seed {seed}: {steps} steps", flush=True)
    row = {"model": model, "precision": precision, "seed": seed, "preset": preset, "steps": steps,
           "dataset": args.dataset, "n_samples": args.n, "n_likelihood": args.n_likelihood,
           "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}
    try:
        _, entry, reference = leaderboard.train_and_score(
            model, preset=preset, dataset=args.dataset, seed=seed, evaluator=evaluator, n=args.n, ks=args.ks,
            n_likelihood=args.n_likelihood, steps=steps, batch_size=args.batch_size, precision=precision, grid=grid)
    except Exception as err:  # record and go on: one broken run must not sink the others
        traceback.print_exc()
        return {**row, "error": f"{type(err).__name__}: {err}"}
    return {**row, **entry, "reference": reference}


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.time()
    run(parse_args())
    print(f"done in {time.time() - start:.0f} s")
