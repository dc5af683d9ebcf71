"""Fewer sampling steps at equal quality? DDIM against DPM-Solver++ (diffusion), Euler against Heun (flow).

    python -m benchmarks.samplers --model RUN_DIR                                   # a `tfgen train` run
    python -m benchmarks.samplers --model DIR/model.keras --dataset folder:DIR --image-size 32
    python -m benchmarks.samplers --train-steps 1320 --train-out runs/samplers-diffusion   # train first

One trained model (a run directory, or a `.keras` file with --dataset and the options
it was read with) is sampled with each (sampler, steps) setting — by default DDIM 50
and 15 and DPM-Solver++(2M) 10, 15, 20 for a diffusion model, Euler 50, 20, 10 and Heun
25, 10, 5 for a flow — each with --seeds sample seeds. Every seed's images are scored
as `tfgen eval` scores them (`tfgen.eval.scoring`: FID, KID, precision/recall on the
dataset's evaluator features against the test split, balanced labels for models that
take labels), so a row gives the mean and the spread (min–max, std) over seeds. A
seed's noise is the same for every setting, so rows differ only in the sampler.

The cost of a setting is its number of network evaluations per image (NFE):
steps × `network_calls_per_step` of the sampler (`tfgen.samplers`: DDIM, DPM-Solver++
and Euler 1, Heun 2). A row is "within" the reference's spread — the model's default,
`sample()`'s sampler at 50 steps — when its mean FID lies between the reference's
best and worst seed ("better" below it): then reference NFE ÷ row NFE is the speed-up
at equal quality. Seconds per image are recorded too, but only as an indication:
they depend on the machine and its load.

--train-steps N first trains --family (default diffusion, --preset default) with
`tfgen.training.train` — what `tfgen train --steps N` does — for exactly N optimiser
steps into --train-out, then measures that run: the result depends on N and the
seed, not on how fast the machine was.

Results go to benchmarks/results/samplers.json, one entry per model (--label, default
"FAMILY on DATASET"; entries of other labels are kept), and samplers.md (README.md
embeds it: benchmarks/render_readme.py). Datasets are named without this machine's
directories (`folder:emoji`).
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import statistics
import time
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_dataset_name, public_path

NAME = "samplers"
#: (sampler, steps) settings by the samplers a family has; the first of each is the reference.
SETTINGS = {
    "dpm++": [("ddim", 50), ("ddim", 15), ("dpm++", 10), ("dpm++", 15), ("dpm++", 20)],
    "heun": [("euler", 50), ("euler", 20), ("euler", 10), ("heun", 25), ("heun", 10), ("heun", 5)],
}
#: Scores summarised per setting (mean and spread over seeds).
SCORES = ("fid", "kid", "precision", "recall")
#: Scores are of the same real images for every seed: the reference split and KID's subsets use this seed.
EVAL_SEED = 0
#: Sample seeds are this far apart: `scoring.generate` uses seed, seed + 1, ... for its batches.
SEED_STRIDE = 1000


# ---------------------------------------------------------------------- the model
def load_model(path, dataset=None, data_options=None):
    """(model, facts) of a run directory, a `.keras` file or a trained preset (a directory, or a shipped one's
    name such as digits/cvae); the run's dataset unless `dataset` is given."""
    from tfgen.pretrained import is_preset, read_metadata, resolve
    from tfgen.runs import CONFIG_FILE, data_options as run_data_options, load_checkpoint, load_run, read_run_config

    path = resolve(path)
    if is_preset(path):  # a trained preset: its metadata says what a run's config.json would
        meta = read_metadata(path)
        config = {"dataset": meta.get("dataset"), "preset": meta.get("preset"), "data_options": meta.get("data_options")}
    else:
        meta, config = {}, read_run_config(path) if (path / CONFIG_FILE).exists() else {}
    model = load_run(path) if path.is_dir() else load_checkpoint(path)
    dataset = dataset or config.get("dataset")
    if dataset is None:
        raise ValueError(f"{path} does not say which data it was trained on: give --dataset (and --image-size)")
    if not data_options and dataset == config.get("dataset"):
        data_options = run_data_options(config)
    optimizer = getattr(model, "optimizer", None)
    facts = {
        "family": getattr(model, "registry_name", None) or type(model).__name__,
        "preset": config.get("preset"),
        "file": public_path(path),
        "parameters": int(model.count_params()),
        # The optimiser's step counter is saved with the model: how long it trained, whatever wrote it.
        "train_steps": meta.get("steps") or (int(optimizer.iterations.numpy()) if optimizer is not None else None),
        "batch_size": config.get("batch_size"),
    }
    return model, dataset, dict(data_options or {}), facts


def train(family, preset, dataset, steps, out, seed, data_options):
    """`tfgen train FAMILY --steps STEPS --out OUT` (the library call); the run directory."""
    from tfgen.training import train as tfgen_train

    print(f"training {family} ({preset}) on {public_dataset_name(dataset)} for {steps} steps into {out}", flush=True)
    return tfgen_train(family, preset=preset, dataset=dataset, steps=steps, out=out, seed=seed, verbose=2,
                       **data_options)


def default_settings(model) -> list[tuple[str, int]]:
    for sampler, settings in SETTINGS.items():
        if sampler in getattr(model, "SAMPLERS", ()):
            return settings
    raise ValueError(f"{type(model).__name__} has no samplers to compare (a diffusion or flow model is needed)")


def reference_setting(model) -> tuple[str, int]:
    """What `model.sample(n)` does when not told: its default sampler at its default step count."""
    params = inspect.signature(model.sample).parameters
    return params["sampler"].default, params["steps"].default


def parse_settings(text: str) -> list[tuple[str, int]]:
    """"ddim:50,dpm++:15" → [("ddim", 50), ("dpm++", 15)]."""
    settings = []
    for item in text.split(","):
        sampler, _, steps = item.partition(":")
        if not steps.isdigit() or int(steps) < 1:
            raise ValueError(f"--settings wants SAMPLER:STEPS items, e.g. ddim:50,dpm++:15; got {item!r}")
        settings.append((sampler, int(steps)))
    return settings


class Sampling:
    """`model` whose `sample` uses one sampler and step count: what `scoring.generate` draws from."""

    def __init__(self, model, sampler, steps):
        self.model, self.options = model, {"sampler": sampler, "steps": steps}
        self.image_shape = model.image_shape

    def sample(self, n, **kwargs):
        return self.model.sample(n, **self.options, **kwargs)


def nfe(model, sampler, steps) -> int:
    """Network evaluations per image (classifier-free guidance's second pass not counted: it doubles every row)."""
    import tensorflow as tf

    return steps * model.make_sampler(sampler, tf.constant(0.0)).network_calls_per_step


# ---------------------------------------------------------------------- measuring
def measure(model, dataset, data_options, settings, n, seeds, evaluator_dir=None, batch_size=500):
    """Scores of every (sampler, steps) for every seed, with the real-data reference; a JSON-ready dict."""
    import numpy as np

    from tfgen.eval import scoring
    from tfgen.eval.evaluator import get_evaluator

    evaluator = get_evaluator(dataset, directory=evaluator_dir, data_kwargs=data_options)
    real = scoring.RealData.get(evaluator, dataset, n, EVAL_SEED, data_options)
    labels = scoring.balanced_labels(n, model.num_classes) if model.accepts_labels else None
    conditional = labels is not None and evaluator.labelled
    kw = {"seed": EVAL_SEED}
    reference = scoring.reference_scores(real, conditional, **kw)
    noise = scoring.noise_fid(evaluator, real, n, EVAL_SEED)
    result = {
        "n_samples": n, "n_real_test": len(real.test_features), "sample_seeds": seeds,
        "labels": "balanced" if labels is not None else None,
        "guidance": getattr(model, "guidance", None) if labels is not None else None,
        "evaluator": {"kind": evaluator.kind, "accuracy": evaluator.accuracy,
                      "train_examples": evaluator.meta.get("train_examples")},
        "real_data": _scores(reference), "noise_fid": noise,
        **scoring.reliability(evaluator, real, reference["fid"], noise),
        "settings": [],
    }
    for sampler, steps in settings:
        drawing = Sampling(model, sampler, steps)
        drawing.sample(2, seed=0, **({} if labels is None else {"labels": labels[:2]}))  # trace outside the clock
        per_seed = []
        for seed in seeds:
            start = time.perf_counter()
            images = scoring.generate(drawing, n, seed=seed, batch_size=batch_size, labels=labels)
            seconds = time.perf_counter() - start
            scores = scoring.sample_scores(images, evaluator, real.test_features,
                                           labels if conditional else None, model.num_classes, **kw)
            per_seed.append({"seed": seed, **_scores(scores), "seconds_per_image": seconds / n})
            print(f"  {sampler:6s} {steps:3d} steps, seed {seed}: FID {scores['fid']:.3f}, "
                  f"{seconds / n * 1e3:.1f} ms/image", flush=True)
        row = {"sampler": sampler, "steps": steps, "nfe": nfe(model, sampler, steps), "per_seed": per_seed}
        for name in SCORES + ("seconds_per_image",):
            values = [s[name] for s in per_seed]
            row[name] = {"mean": float(np.mean(values)), "min": min(values), "max": max(values),
                         "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        result["settings"].append(row)
    return result


def _scores(scores: dict) -> dict:
    return {k: float(scores[k]) for k in SCORES + ("conditional_accuracy",) if k in scores}


def compare(entry: dict) -> None:
    """Mark every row against the reference row: within its FID seed spread, better, or worse; NFE ratio."""
    ref = next(r for r in entry["settings"]
               if (r["sampler"], r["steps"]) == tuple(entry["reference_setting"]))
    low, high = ref["fid"]["min"], ref["fid"]["max"]
    for row in entry["settings"]:
        mean = row["fid"]["mean"]
        row["vs_reference"] = "better" if mean < low else "worse" if mean > high else "within"
        row["nfe_speedup"] = ref["nfe"] / row["nfe"]


# ---------------------------------------------------------------------- the table
def markdown(results: dict) -> str:
    parts = []
    for label, e in results["entries"].items():
        ref = "{} {}".format(*e["reference_setting"])
        rows = [f"**{label}** — `{e['model']['family']}`, {e['model']['parameters'] / 1e6:.2f}M parameters, "
                f"{_trained(e['model'])}; `{e['dataset']}`{_options(e['data_options'])}; "
                f"{e['n_samples']} samples per seed, seeds {', '.join(map(str, e['sample_seeds']))}.",
                "",
                f"| sampler | steps | NFE / image | FID ↓ mean (min–max) | KID ×10³ ↓ mean ± std | precision ↑ "
                f"| recall ↑ | vs {ref} (FID seed spread) | s / image (indicative) |",
                "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        for r in e["settings"]:
            f, k = r["fid"], r["kid"]
            verdict = ("reference" if [r["sampler"], r["steps"]] == list(e["reference_setting"]) else
                       f"{r['vs_reference']}, {r['nfe_speedup']:.2g}× fewer NFE" if r["nfe_speedup"] > 1 else
                       f"{r['vs_reference']}, {1 / r['nfe_speedup']:.2g}× more NFE" if r["nfe_speedup"] < 1 else
                       f"{r['vs_reference']}, same NFE")
            rows.append(f"| {r['sampler']} | {r['steps']} | {r['nfe']} | {f['mean']:.3g} ({f['min']:.3g}–{f['max']:.3g}) "
                        f"| {1e3 * k['mean']:.2f} ± {1e3 * k['std']:.2f} | {r['precision']['mean']:.2f} "
                        f"| {r['recall']['mean']:.2f} | {verdict} | {r['seconds_per_image']['mean']:.3f} |")
        real = e["real_data"]
        rows.append(f"| *real data (train vs test)* | | | {real['fid']:.3g} | {1e3 * real['kid']:.2f} "
                    f"| {real['precision']:.2f} | {real['recall']:.2f} | | |")
        rows += ["", _headline(e), ""]
        if not e.get("reliable", True):
            rows += [f"Evaluator too weak to rank models: {'; '.join(e['unreliable_because'])}.", ""]
        m = e["machine"]
        rows += [f"Machine: {m['cpus']} × {m['cpu']}, 1-minute load {m.get('load_average_1min')}; tfgen "
                 f"{m.get('tfgen')}, TensorFlow {m.get('tensorflow')}; {e['date']}. Command: `{e['command']}`.", ""]
        parts.append("\n".join(rows))
    notes = (
        "NFE: network evaluations per image, steps × calls per step (DDIM, DPM-Solver++(2M), Euler 1; Heun 2, "
        "its last step included); with classifier-free guidance (class-conditional models, sampled with balanced "
        "labels) each evaluation runs the network on a conditional and an unconditional copy, the same factor 2 "
        "for every row. Each seed draws its own starting noise, the same for every setting. FID, KID and "
        "precision/recall (k = 3) as `tfgen eval` computes them: on the dataset's evaluator features (**not "
        "Inception FID**) against the test split. A row is *within* the reference's spread when its mean FID lies "
        "between the reference's best and worst seed (*better*: below it). Seconds per image: wall clock of the "
        "compiled sampler on the machine named under each table, after a tracing call; indicative only (machine and load).")
    return "\n".join(parts + [notes]) + "\n"


def _headline(e: dict) -> str:
    """The issue's question in one sentence: which faster settings match the reference, at what NFE ratio."""
    ref = "{} {}".format(*e["reference_setting"])
    fast = [r for r in e["settings"] if r["nfe_speedup"] > 1]
    matched = [r for r in fast if r["vs_reference"] in ("within", "better")]
    if not matched:
        return f"No setting with fewer NFE than {ref} reaches its FID seed spread."
    best = max(matched, key=lambda r: r["nfe_speedup"])
    missed = [r for r in fast if r not in matched]
    return (f"Fewest NFE within (or below) {ref}'s FID seed spread: {best['sampler']} {best['steps']} steps, "
            f"{best['nfe_speedup']:.2g}× fewer network evaluations (within or below: "
            f"{', '.join(_named(r) for r in matched)}; above: {', '.join(_named(r) for r in missed) or 'none'}).")


def _named(row) -> str:
    return f"{row['sampler']} {row['steps']}"


def _trained(model: dict) -> str:
    steps = model.get("train_steps")
    return f"trained {steps} steps" if steps is not None else "training length unknown"


def _options(options: dict) -> str:
    return " read with " + ", ".join(f"{k}={v}" for k, v in options.items()) if options else ""


# ---------------------------------------------------------------------- command line
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a run directory or .keras file of a diffusion or flow model")
    p.add_argument("--dataset", help="the data it was trained on (default: the run's); needed for a bare .keras file")
    p.add_argument("--image-size", type=int, help="the size the data was read at (default: the run's)")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--train-steps", type=int, help="first train --family for exactly N steps into --train-out")
    p.add_argument("--train-out", help="run directory for --train-steps")
    p.add_argument("--family", default="diffusion", help="with --train-steps (default diffusion)")
    p.add_argument("--preset", default="default", help="with --train-steps (default default)")
    p.add_argument("--settings", help="SAMPLER:STEPS,... (default: the family's, see the docstring)")
    p.add_argument("--n", type=int, help="samples per seed (default: as `tfgen eval`, the test split's size, "
                                         "200 to 2000)")
    p.add_argument("--seeds", type=int, default=3, help="sample seeds per setting (default 3, at least 2)")
    p.add_argument("--seed", type=int, default=100, help="the first sample seed (default 100)")
    p.add_argument("--train-seed", type=int, default=0, help="with --train-steps: the training seed (default 0)")
    p.add_argument("--label", help="the entry's name in samplers.json (default: FAMILY on DATASET)")
    p.add_argument("--evaluator-dir")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--render-only", action="store_true", help="rewrite samplers.md from samplers.json")
    args = p.parse_args(argv)
    if not args.render_only and (args.model is None) == (args.train_steps is None):
        p.error("give --model RUN_DIR|FILE.keras, or --train-steps N --train-out DIR (not both)")
    if args.train_steps is not None and not args.train_out:
        p.error("--train-steps needs --train-out DIR: where the trained run is written")
    if args.seeds < 2:
        p.error(f"--seeds must be at least 2 to give a spread, got {args.seeds}")
    return args


def main(argv=None) -> None:
    from tfgen.bench.hardware import machine
    from tfgen.eval.scoring import default_sample_count
    from tfgen.eval.datasets import dataset_arrays
    from tfgen.io import write_json, write_text

    args = parse_args(argv)
    out = Path(args.out)
    path = out / f"{NAME}.json"
    results = json.loads(path.read_text()) if path.exists() else {"entries": {}}
    if args.render_only:
        write_text(out / f"{NAME}.md", markdown(results))
        return
    options = {k: v for k, v in (("image_size", args.image_size), ("channels", args.channels)) if v}
    model_path = args.model
    if args.train_steps is not None:
        model_path = train(args.family, args.preset, args.dataset or "mnist_bundled", args.train_steps,
                           args.train_out, args.train_seed, options)
    model, dataset, options, facts = load_model(model_path, args.dataset, options)
    settings = parse_settings(args.settings) if args.settings else default_settings(model)
    reference = reference_setting(model)
    if reference not in settings:
        settings.insert(0, reference)
    n = args.n or default_sample_count(len(dataset_arrays(dataset, options).x_test))
    seeds = [args.seed + SEED_STRIDE * k for k in range(args.seeds)]
    label = args.label or f"{facts['family']} on {public_dataset_name(dataset)}"
    print(f"{label}: {len(settings)} settings x {len(seeds)} seeds x {n} samples", flush=True)
    entry = {"model": facts, "dataset": public_dataset_name(dataset), "data_options": options,
             "reference_setting": list(reference),
             **measure(model, dataset, options, settings, n, seeds, args.evaluator_dir),
             "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
             "command": public_command(NAME, argv, paths=("--model", "--train-out", "--out", "--evaluator-dir"),
                                       datasets=("--dataset",)),
             "machine": machine()}
    compare(entry)
    results["entries"][label] = entry
    write_json(path, results)
    write_text(out / f"{NAME}.md", markdown(results))
    print(_headline(entry))
    print(f"wrote {path} and {NAME}.md")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
