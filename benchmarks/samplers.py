"""Fewer sampling steps: DDIM against DPM-Solver++ (diffusion), Euler against Heun (flow), by FID.

    nice -n 10 python benchmarks/samplers.py --minutes 5                     # both families, bundled digits
    python benchmarks/samplers.py --models flow --minutes 2 --samples 500

For each family (`default` preset): train on the bundled digits' train split for
--minutes of wall-clock time (`leaderboard.train_for`: the same batches and budget
rule as the leaderboard), then draw --samples unconditional images with each
(sampler, steps) pair and score them by Fréchet distance on the shipped evaluator's
features against the test split (`tfgen.eval`, as the leaderboard; not Inception FID),
and time each draw (after a first, tracing call). One trained network per family, so
the rows differ only in the sampler. Network calls per image: DDIM, DPM-Solver++ and
Euler one per step, Heun two.

Prints a table and, with --json FILE, writes the numbers there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # leaderboard.py, beside this script

import numpy as np  # noqa: E402

SETTINGS = {  # family: [(sampler, steps), ...]
    "diffusion": [("ddim", 50), ("ddim", 15), ("dpm++", 10), ("dpm++", 15), ("dpm++", 20)],
    "flow": [("euler", 50), ("euler", 20), ("euler", 10), ("heun", 10), ("heun", 5)],
}
CALLS_PER_STEP = {"heun": 2}


def score_samplers(model, settings, n, seed, evaluator, real_features):
    from tfgen.eval.metrics import frechet_distance

    rows = []
    for sampler, steps in settings:
        draw = lambda: np.concatenate([  # noqa: E731
            np.asarray(model.sample(min(250, n - i), steps=steps, sampler=sampler, seed=seed + i))
            for i in range(0, n, 250)])
        model.sample(2, steps=steps, sampler=sampler, seed=0)  # trace
        start = time.perf_counter()
        images = draw()
        seconds = time.perf_counter() - start
        fid = frechet_distance(evaluator.features(images), real_features)
        rows.append({"sampler": sampler, "steps": steps, "network_calls": steps * CALLS_PER_STEP.get(sampler, 1),
                     "fid": round(float(fid), 2), "seconds": round(seconds, 1)})
        print(f"  {sampler:6s} {steps:3d} steps: FID {fid:7.2f}  ({seconds:.0f} s for {n})", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="diffusion,flow")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from leaderboard import train_for

    from tfgen.data import load_arrays
    from tfgen.eval.evaluator import get_evaluator

    evaluator = get_evaluator("mnist_bundled")
    real, _ = load_arrays("mnist_bundled", "test")
    real_features = evaluator.features(real)
    results = {"minutes": args.minutes, "samples": args.samples, "dataset": "mnist_bundled", "models": {}}
    for name in args.models.split(","):
        model, facts = train_for(name, "default", "mnist_bundled", args.minutes * 60, None, args.seed)
        print(f"{name}: {facts['steps']} steps ({facts['epochs']} epochs) in {facts['train_seconds']} s", flush=True)
        rows = score_samplers(model, SETTINGS[name], args.samples, args.seed + 100, evaluator, real_features)
        results["models"][name] = {"training": {k: facts[k] for k in ("steps", "epochs", "train_seconds")},
                                   "samplers": rows}
    half = min(args.samples, len(real) // 2)
    from tfgen.eval.metrics import frechet_distance

    results["real_vs_real_fid"] = round(float(frechet_distance(real_features[:half], real_features[half:2 * half])), 2)
    print(f"real vs real ({half} each): FID {results['real_vs_real_fid']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
