"""The cGAN on a small colour folder at 3, 6 and 12 minutes, with and without each small-data option.

    nice -n 5 python -m benchmarks.gan_minutes --dataset folder:/path/to/emoji --image-size 32 [--runs DIR]

Trains `tfgen train cgan` (the `default` preset, the command line a user runs) once per configuration:
the default, and the default with one option changed (`--set`): no generator average, DiffAugment,
an R1 penalty. Each run is trained to the first budget, scored, resumed to the next (`--resume
--steps`: a resumed run trains exactly as an uninterrupted one), scored again, and so on, so the
3-, 6- and 12-minute rows of a configuration are one training run. Budgets are given in minutes of
the machine with nothing else running and turned into optimiser steps by --steps-per-minute (the
cGAN's measured rate, below), so the table does not depend on how busy the machine was.

At each budget, `tfgen eval` scores the checkpoint `sample` uses by default (`best`: the kept
epoch, `--keep best` being the cGAN's default) and the last one: FID, precision/recall on the
evaluator's features, the conditional accuracy, and the lowest per-class diversity (the samples'
mean pairwise distance within a class over the real images', `tfgen.health`); and `tfgen sample`
draws the grid (one row per class) of the default checkpoint into benchmarks/results/samples/.
Writes NAME.json and NAME.md under --out after every budget.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_dataset_name, run_tfgen

#: What each configuration changes in the `default` preset (`tfgen train --set KEY=VALUE`).
CONFIGURATIONS = {
    "default": [],
    "no EMA": ["ema_decay=0"],
    "+DiffAugment": ["diff_augment=color,translation,cutout"],
    "+R1": ["r1_gamma=0.1"],
}

#: The cGAN default preset's optimiser steps per minute on the emoji at 32×32 (batch 32), on this
#: project's 2-core machine with nothing else running: 7,130 and 8,090 steps in the two 10-minute
#: runs of the README's colour table (epochs × 53 steps), i.e. about 760 a minute.
STEPS_PER_MINUTE = 760

METRICS = ("fid", "precision", "recall", "conditional_accuracy", "diversity_min")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def tfgen(*args, log) -> float:
    """`run_tfgen(*args)`, its output appended to `log`; its wall-clock seconds."""
    start = time.perf_counter()
    run_tfgen(*args, log=log)
    return time.perf_counter() - start


def score(run: Path, checkpoint: str, n: int, seed: int, log) -> dict:
    out = run / f"eval-{checkpoint}.json"
    tfgen("eval", run, "--n", n, "--seed", seed, "--checkpoint", checkpoint, "--json", out, log=log)
    result = json.loads(out.read_text())
    row = {k: result.get(k) for k in METRICS}
    row["diversity_per_class"] = result.get("diversity_per_class")
    row["floor_fid"] = result.get("reference", {}).get("fid")
    row["real_conditional_accuracy"] = result.get("reference", {}).get("conditional_accuracy")
    return row


def kept_epoch(run: Path):
    best = run / "best" / "best.json"
    return json.loads(best.read_text())["epoch"] if best.is_file() else None


def write(results: dict, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / f"{name}.md").write_text(markdown(results) + "\n")


def _fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(results: dict) -> str:
    lines = ["| configuration | minutes (steps) | kept epoch | FID ↓ best / last | recall ↑ best / last | "
             "lowest class diversity ↑ best / last | cond. acc. ↑ best / last | train s (this machine) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    floor = None
    for config, rows in results["runs"].items():
        for row in rows:
            b, last = row["best"], row["last"]
            floor = floor or b.get("floor_fid")
            lines.append(f"| {config} | {row['minutes']:g} ({row['steps']:,}) | {row['kept_epoch'] or '–'} | "
                         f"{_fmt(b['fid'])} / {_fmt(last['fid'])} | {_fmt(b['recall'])} / {_fmt(last['recall'])} | "
                         f"{_fmt(b['diversity_min'])} / {_fmt(last['diversity_min'])} | "
                         f"{_fmt(b['conditional_accuracy'], 3)} / {_fmt(last['conditional_accuracy'], 3)} | "
                         f"{row['train_seconds']:.0f} |")
    meta = results["meta"]
    m = meta["machine"]
    lines += ["", f"`cgan` `default` preset (batch 32) on `{meta['dataset']}` read at {meta['image_size']}×"
              f"{meta['image_size']}, seed {meta['seed']}; a budget of M minutes is M × {meta['steps_per_minute']} "
              "optimiser steps (the preset's rate on this project's 2-core machine with nothing else running); "
              "each configuration is one run resumed from budget to budget. *best*: the epoch `--keep best` kept "
              "(what `sample`, `eval` and `export` use by default), *last*: the final weights. "
              f"Scores of {meta['n']} samples (balanced labels) on the dataset's evaluator features "
              f"(**not Inception FID**); the floor (real train vs test images) is FID {_fmt(floor)}. "
              "Lowest class diversity: the smallest over the classes of the samples' mean pairwise distance "
              "over the real images' (random convolutional features; below 0.5 the class has collapsed). "
              "Train seconds: wall clock of the training command on a possibly shared machine.",
              "", f"Machine: {m['cpus']} × {m['cpu']}; {meta['date']}; tfgen {m.get('tfgen')}, TensorFlow "
              f"{m.get('tensorflow')}. Command: `{meta['command']}`. Grids: "
              f"`benchmarks/results/samples/{meta['name']}_<configuration>_<minutes>min.png`."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a labelled folder:DIR (classes = subfolders)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--budgets", default="3,6,12", help="minutes, ascending (default 3,6,12)")
    parser.add_argument("--steps-per-minute", type=int, default=STEPS_PER_MINUTE)
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS),
                        help=f"comma-separated, of: {', '.join(CONFIGURATIONS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=500, help="samples scored per checkpoint")
    parser.add_argument("--runs", default="runs/gan_minutes", help="where the training runs go")
    parser.add_argument("--name", default="gan_minutes")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--merge", action="store_true", help="add to NAME.json instead of starting it anew")
    args = parser.parse_args(argv)

    budgets = sorted(float(b) for b in args.budgets.split(","))
    configs = [c.strip() for c in args.configurations.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGURATIONS)}")

    from tfgen.bench.hardware import machine

    out = Path(args.out)
    previous = out / f"{args.name}.json"
    results = json.loads(previous.read_text()) if args.merge and previous.is_file() else {"runs": {}}
    results["meta"] = {
        "name": args.name, "dataset": public_dataset_name(args.dataset), "image_size": args.image_size,
        "seed": args.seed, "n": args.n, "steps_per_minute": args.steps_per_minute,
        "machine": machine(), "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "command": public_command("gan_minutes", argv, paths=("--runs",),
                                                                 datasets=("--dataset",))}
    samples = out / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    for config in configs:
        run = Path(args.runs) / slug(config)
        log = Path(args.runs) / f"{slug(config)}.log"
        run.parent.mkdir(parents=True, exist_ok=True)
        overrides = [a for kv in CONFIGURATIONS[config] for a in ("--set", kv)]
        rows = []
        for i, minutes in enumerate(budgets):
            steps = round(minutes * args.steps_per_minute)
            if i == 0:
                seconds = tfgen("train", "cgan", "--dataset", args.dataset, "--image-size", args.image_size,
                                "--steps", steps, "--seed", args.seed, "--out", run, "--verbose", 2, *overrides,
                                log=log)
            else:
                seconds = tfgen("train", "--resume", run, "--steps", steps, "--verbose", 2, log=log)
            row = {"minutes": minutes, "steps": steps, "kept_epoch": kept_epoch(run),
                   "train_seconds": seconds + (rows[-1]["train_seconds"] if rows else 0.0),
                   "best": score(run, "best", args.n, args.seed, log),
                   "last": score(run, "last", args.n, args.seed, log)}
            grid = samples / f"{args.name}_{slug(config)}_{minutes:g}min.png"
            tfgen("sample", run, "--labels", "all", "--n", 99, "--seed", args.seed, "--out", grid, log=log)
            rows.append(row)
            results["runs"][config] = rows
            write(results, out, args.name)
            print(f"{config} {minutes:g} min: FID {row['best']['fid']:.2f} (last {row['last']['fid']:.2f}), "
                  f"lowest class diversity {_fmt(row['best']['diversity_min'])}", flush=True)
    print(f"wrote {out / (args.name + '.json')} and .md")


if __name__ == "__main__":
    main()
