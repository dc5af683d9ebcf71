"""Fine-tuning from a trained preset against training from scratch, on a small folder, for the same steps.

    python -m benchmarks.finetune --dataset folder:/path/to/icons --image-size 32 --family flow \\
        --init emoji/flow --steps 400 --runs runs/finetune

Trains the family twice with one `tfgen train` command each, identical but for `--init PRESET`
(the preset's weights wherever the shapes match, the rest fresh): the same data, seed, batch and number
of optimiser steps, so the same compute. Then scores both as `tfgen eval` does (FID, KID, precision/recall
on the folder's evaluator, conditional accuracy for models that take labels; 500 samples against the
test split). Writes benchmarks/results/NAME.{json,md} and each run's last sample grid as
benchmarks/results/samples/NAME_<start>.png (NAME: --name, default finetune). Steps rather than minutes:
a busy machine then changes how long it takes, not what it measures; the training seconds are recorded too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_dataset_name, read_history, run_tfgen


def train_and_score(start: str, args, run: Path) -> dict:
    """One `tfgen train` run (from scratch, or from `args.init`), then its `tfgen eval` figures."""
    command = ["train", args.family, "--dataset", args.dataset, "--image-size", str(args.image_size),
               "--steps", str(args.steps), "--seed", str(args.seed)]
    if start != "scratch":
        command += ["--init", args.init]
    command += ["--out", str(run)]  # last: the recorded command leaves this machine's directory out
    if not (run / "model.keras").exists():
        run_tfgen(*command)
    scores = run / "eval-finetune.json"
    run_tfgen("eval", run, "--n", args.n, "--json", scores)
    result = json.loads(scores.read_text())
    seconds = sum(row["epoch_seconds"] for row in read_history(run))
    grids = sorted((run / "samples").glob("epoch_*.png"))
    figures = {key: result.get(key) for key in ("fid", "kid", "precision", "recall", "conditional_accuracy")}
    figures["train_seconds"] = seconds
    figures["real_data_fid"] = (result.get("reference") or {}).get("fid")  # the floor: real train vs test
    figures["command"] = "tfgen " + " ".join(command[:-2]).replace(args.dataset, public_dataset_name(args.dataset))
    if grids:
        figures["samples"] = f"samples/{args.name}_{start}.png"  # per --name: a trial run keeps the README's
        shutil.copyfile(grids[-1], RESULTS / figures["samples"])
    return figures


def render(results: dict) -> str:
    def cell(value, digits=3):
        return "–" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    lines = ["| start | FID ↓ | KID ×10³ ↓ | precision ↑ | recall ↑ | cond. acc. ↑ | samples |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for start, row in results["runs"].items():
        kid = row.get("kid")
        kid = kid[0] if isinstance(kid, list) else kid
        lines.append(f"| {start} | {cell(row['fid'])} | {cell(None if kid is None else kid * 1e3)} | "
                     f"{cell(row['precision'])} | {cell(row['recall'])} | {cell(row['conditional_accuracy'])} | "
                     f"`benchmarks/results/{row.get('samples', '–')}` |")
    lines += ["", f"`{results['family']}` on `{results['dataset']}` at {results['image_size']}×{results['image_size']}, "
                  f"{results['steps']} optimiser steps each (the same compute; their seconds, in the JSON, depend on the "
                  f"machine's load), seed {results['seed']}; the two runs differ only in "
                  f"`--init {results['init']}`. Scored on {results['n']} samples against the test split with the "
                  f"folder's evaluator (not Inception FID; real data, train vs test: "
                  f"{cell(next(iter(results['runs'].values())).get('real_data_fid'))}). Command: `{results['command']}`; {results['date']}. "
                  "Runs: " + "; ".join(f"{k}: `{v['command']}`" for k, v in results["runs"].items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="a small folder, e.g. folder:DIR")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--family", default="flow")
    p.add_argument("--init", default="emoji/flow", help="the trained preset (or run) to start from")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=500, help="samples scored per run")
    p.add_argument("--runs", default="runs/finetune", help="where the two runs go (reused when finished)")
    p.add_argument("--name", default="finetune", help="results file name")
    args = p.parse_args(argv)
    runs = {"scratch": Path(args.runs) / "scratch", f"from {args.init}": Path(args.runs) / "init"}
    results = {"family": args.family, "dataset": public_dataset_name(args.dataset), "image_size": args.image_size,
               "init": args.init, "steps": args.steps, "seed": args.seed, "n": args.n,
               "command": public_command("finetune", argv, paths=("--runs",), datasets=("--dataset",)),
               "date": datetime.datetime.now().isoformat(timespec="minutes"),
               "runs": {}}
    (RESULTS / "samples").mkdir(parents=True, exist_ok=True)  # before the runs copy their grids into it
    results["runs"] = {start: train_and_score("scratch" if start == "scratch" else "init", args, run)
                       for start, run in runs.items()}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
