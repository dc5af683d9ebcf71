"""Time to quality: training seconds until the evaluator FID falls below a fixed threshold.

For `gan`, `vae` and `diffusion`: tfgen's `default` preset (its own batch size,
`tfgen train`'s compile settings) against the keras.io example of the same family
as a user would run it (`keras_io_recipes.py`: the example's architecture,
optimiser, batch size and training step). Both train with `fit` on the same data;
every `--every` seconds of training the clock stops, `--n` samples are drawn
(fixed seed) and their Fréchet distance to the test split is computed on the
evaluator's features (`tfgen.eval`, not Inception). A contender has reached the
threshold at the first check below it; the time reported is the training time up
to that check, tracing included, sampling and scoring excluded.

tfgen runs first. The keras.io recipe then runs until it reaches the threshold or
until `--cap` × tfgen's time (the goal is decided by then: tfgen must reach the
threshold in at most half the recipe's time), or `--max-minutes` when tfgen did
not reach it.

    python -m benchmarks.time_to_quality                     # gan, vae, diffusion (~75 min on a quiet 2-core machine)
    python -m benchmarks.time_to_quality --models gan --fid 25

Writes benchmarks/results/time_to_quality.json and time_to_quality.md (a README
block), and a sample grid of each contender at its last check under
benchmarks/results/samples/ttq_<model>_<contender>.png.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import keras_io_recipes  # noqa: E402
from benchmarks.common import RESULTS, public_command  # noqa: E402

FAMILIES = ("gan", "vae", "diffusion")
#: Seconds of training between two checks, per family (scoring a diffusion model costs a sampler run).
CHECK_EVERY = {"gan": 15.0, "vae": 10.0, "diffusion": 45.0}
#: The issue's goal: tfgen reaches the threshold in at most 1/GOAL of the keras.io recipe's time.
GOAL = 2.0
DATASET = "mnist_bundled"


class QualityClock(keras.callbacks.Callback):
    """Score samples every `every` seconds of training; stop below `threshold` or after `max_seconds`.

    The clock runs during training only: the time spent drawing and scoring
    samples is subtracted, so a slow sampler does not count against training.
    """

    def __init__(self, score, threshold: float, every: float, max_seconds: float, log=print):
        super().__init__()
        self.score, self.threshold, self.every, self.max_seconds = score, threshold, every, max_seconds
        self.log = log
        self.checks, self.reached_seconds, self.steps = [], None, 0

    def on_train_begin(self, logs=None):
        self._start, self._paused, self._next = time.perf_counter(), 0.0, self.every

    def training_seconds(self) -> float:
        return time.perf_counter() - self._start - self._paused

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        seconds = self.training_seconds()
        if seconds < self._next and seconds < self.max_seconds:
            return
        pause = time.perf_counter()
        fid = self.score()
        self._paused += time.perf_counter() - pause
        self.checks.append({"seconds": round(seconds, 1), "steps": self.steps, "fid": round(fid, 2),
                            "score_seconds": round(time.perf_counter() - pause, 1)})
        self.log(f"    {seconds:6.0f} s  {self.steps:5d} steps  FID {fid:7.2f}")
        self._next = seconds + self.every
        if fid <= self.threshold:
            self.reached_seconds = seconds
            self.model.stop_training = True
        elif seconds >= self.max_seconds:
            self.model.stop_training = True


def tfgen_contender(family: str, seed: int):
    """tfgen's default preset as `tfgen train` builds it: (model, batch size, sampler, description)."""
    import tfgen
    from tfgen.eval.scoring import balanced_labels, generate

    keras.utils.set_random_seed(seed)
    model = tfgen.get_model(family, "default", seed=seed)
    model.default_compile()
    labels = balanced_labels if model.accepts_labels else None

    def sample(n, sample_seed):
        return generate(model, n, seed=sample_seed, labels=None if labels is None else labels(n, model.num_classes))

    batch = model.FIT_DEFAULTS["batch_size"]
    conditioning = ", class-conditional, sampled with balanced labels" if labels else ""
    return model, batch, sample, f"tfgen `{family}` default preset (batch {batch}{conditioning})"


def keras_io_contender(family: str, seed: int):
    from tfgen.data import load_arrays

    kwargs = {}
    if family == "diffusion":
        kwargs["train_images"] = load_arrays(DATASET, "train")[0].astype(np.float32) / 255.0
    recipe = keras_io_recipes.RECIPES[family](seed=seed, **kwargs)

    def sample(n, sample_seed):
        out = [recipe.sample(min(250, n - i), sample_seed + i) for i in range(0, n, 250)]
        return np.clip(np.concatenate(out), 0.0, 1.0)

    return recipe.model, recipe.batch_size, sample, f"{recipe.description} (batch {recipe.batch_size})"


def race(family, contender, build, threshold, every, max_seconds, n, evaluator, real, seed, samples_dir, log=print):
    """Train one contender until it reaches `threshold` or `max_seconds`; return its record."""
    from tfgen import data as tfdata
    from tfgen.eval.metrics import frechet_distance
    from tfgen.plotting import save_grid
    from tfgen.bench.hardware import load_average

    model, batch_size, sample, description = build(family, seed)
    log(f"=== {family} / {contender}: {description}; FID ≤ {threshold:g} on {n} samples, "
        f"check every {every:g} s, at most {max_seconds:.0f} s", flush=True)
    train = tfdata.load(DATASET, "train", batch_size, seed, drop_remainder=True)

    def score():
        return frechet_distance(evaluator.features(sample(n, seed + 1)), real)

    clock = QualityClock(score, threshold, every, max_seconds, log=lambda *a: log(*a, flush=True))
    load_before = load_average()
    model.fit(train, epochs=1_000_000, callbacks=[clock], verbose=0)
    grid = samples_dir / f"ttq_{family}_{contender}.png"
    save_grid(sample(100, seed + 2), grid, ncols=10)
    record = {
        "description": description,
        "batch_size": batch_size,
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "reached_seconds": None if clock.reached_seconds is None else round(clock.reached_seconds, 1),
        "trained_seconds": clock.checks[-1]["seconds"] if clock.checks else 0.0,
        "steps": clock.steps,
        "best_fid": min((c["fid"] for c in clock.checks), default=None),
        "checks": clock.checks,
        "samples": str(grid.relative_to(samples_dir.parent)),
        "load_average_1min": {"start": load_before, "end": load_average()},
    }
    keras.backend.clear_session()
    return record


def compare(tfgen_record: dict, baseline_record: dict) -> dict:
    """keras.io ÷ tfgen seconds to the threshold; a lower bound when the recipe did not get there."""
    mine, theirs = tfgen_record["reached_seconds"], baseline_record["reached_seconds"]
    if mine is None:
        return {"ratio": None, "goal_met": False}
    if theirs is None:
        bound = baseline_record["trained_seconds"] / mine
        return {"ratio": None, "lower_bound": round(bound, 2), "goal_met": bound >= GOAL}
    ratio = theirs / mine
    return {"ratio": round(ratio, 2), "goal_met": ratio >= GOAL}


def run(args) -> dict:
    from tfgen.data import load_arrays
    from tfgen.eval.evaluator import get_evaluator
    from tfgen.io import write_json, write_text

    out = Path(args.out)
    samples_dir = out / "samples"
    evaluator = get_evaluator(DATASET)
    real = evaluator.features(load_arrays(DATASET, "test")[0])
    result = {
        "title": "Time to quality",
        "dataset": DATASET,
        "fid_threshold": args.fid,
        "n_samples": args.n,
        "cap": args.cap,
        "goal": f"tfgen reaches the threshold in at most 1/{GOAL:g} of the keras.io recipe's time",
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": public_command("time_to_quality", paths=("--out",)),
        "machine": _machine(),
        "models": {},
    }
    json_path = out / "time_to_quality.json"
    if args.merge and json_path.exists():
        import json

        earlier = json.loads(json_path.read_text())
        if earlier.get("fid_threshold") == args.fid and earlier.get("n_samples") == args.n:
            result["models"] = {k: v for k, v in earlier["models"].items() if k not in args.models}
            result["command"] = f"{earlier['command']} ; {result['command']}"
    for family in args.models:
        every = args.every or CHECK_EVERY[family]
        common = dict(threshold=args.fid, every=every, n=args.n, evaluator=evaluator, real=real, seed=args.seed,
                      samples_dir=samples_dir)
        mine = race(family, "tfgen", tfgen_contender, max_seconds=args.max_minutes * 60, **common)
        cap = args.max_minutes * 60
        if mine["reached_seconds"] is not None:
            cap = min(cap, max(args.cap * mine["reached_seconds"], 2 * every))
        theirs = race(family, "keras_io", keras_io_contender, max_seconds=cap, **common)
        result["models"][family] = {"every_seconds": every, "tfgen": mine, "keras_io": theirs,
                                    **compare(mine, theirs)}
        write_json(json_path, result)
        write_text(out / "time_to_quality.md", markdown(result))
    return result


def _seconds(record) -> str:
    if record["reached_seconds"] is not None:
        return f"{record['reached_seconds']:.0f} s ({record['steps']} steps)"
    best = record["best_fid"]
    return f"not within {record['trained_seconds']:.0f} s (best FID {best:.1f})" if best is not None else "–"


def markdown(result: dict) -> str:
    rows = [
        f"| model | tfgen `default` | keras.io recipe | keras.io ÷ tfgen | goal ≥ {GOAL:g} |",
        "|---|---|---|---:|---|",
    ]
    for family, e in result["models"].items():
        if e.get("ratio") is not None:
            ratio = f"{e['ratio']:.1f}×"
        elif e.get("lower_bound") is not None:
            ratio = f"> {e['lower_bound']:.1f}×"
        else:
            ratio = "–"
        rows.append(f"| `{family}` | {_seconds(e['tfgen'])} | {_seconds(e['keras_io'])} | {ratio} "
                    f"| {'met' if e['goal_met'] else 'not met'} |")
    m = result["machine"]
    loads = [v for e in result["models"].values() for c in ("tfgen", "keras_io")
             for v in (e[c].get("load_average_1min") or {}).values() if v is not None]
    lines = [
        "",
        f"Training seconds until the evaluator FID of {result['n_samples']} samples falls to "
        f"{result['fid_threshold']:g} or below (checked every "
        + ", ".join(f"{e['every_seconds']:g} s for `{f}`" for f, e in result["models"].items())
        + "; time spent sampling and scoring is not counted, tracing is). Contenders: "
        + "; ".join(f"`{f}`: {e['tfgen']['description']} vs {e['keras_io']['description']}"
                    for f, e in result["models"].items())
        + ". The keras.io recipes are the examples' architectures, optimisers, batch sizes and steps, "
          "sized for 28×28 (`benchmarks/keras_io_recipes.py`); a recipe stops at "
        + f"{result['cap']:g}× tfgen's time, where the goal is decided.",
        "",
        f"Machine: {m['nproc']} × {m['cpu']}; {result['date']}"
        + (f"; 1-minute load average {min(loads):.1f}–{max(loads):.1f}" if loads else "")
        + f". Command: `{result['command']}`. Per-check FIDs: `benchmarks/results/time_to_quality.json`; "
          "final samples: `benchmarks/results/samples/ttq_*.png`.",
    ]
    return "\n".join(rows + lines) + "\n"


def _machine() -> dict:
    from tfgen.bench.hardware import cpu_model

    return {"nproc": os.cpu_count(), "cpu": cpu_model()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(FAMILIES), type=lambda s: [m for m in s.split(",") if m],
                   help="comma-separated, from " + ", ".join(FAMILIES))
    p.add_argument("--fid", type=float, default=25.0, help="FID threshold (evaluator features)")
    p.add_argument("--n", type=int, default=500, help="samples per check")
    p.add_argument("--every", type=float, help="seconds of training between checks (default: per family)")
    p.add_argument("--max-minutes", type=float, default=15.0, help="longest training per contender")
    p.add_argument("--cap", type=float, default=2.5, help="the recipe stops at this multiple of tfgen's time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--merge", action="store_true", help="keep other models' rows of an earlier run")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    unknown = sorted(set(args.models) - set(FAMILIES))
    if unknown:
        p.error(f"--models: no time-to-quality race for {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    return args


if __name__ == "__main__":
    start = time.time()
    run(parse_args())
    print(f"done in {time.time() - start:.0f} s")
