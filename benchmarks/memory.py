"""Peak memory of every family and preset at 32×32×3 and 64×64×3, each in a fresh process.

    python -m benchmarks.memory --dataset folder:DIR                 # every family and preset, 32 and 64
    python -m benchmarks.memory --dataset folder:DIR --sizes 32 --models pixel_transformer --presets tiny

For each (family, preset, image size) a new Python process reads the dataset as
`tfgen train --image-size N --channels 3` does (`tfgen.bench.training_pipeline`), builds
and compiles the model as `tfgen bench` does (`tfgen.bench.precisions.build_compiled`,
float32 unless --precision), trains --steps optimiser steps through `fit` at the family's
default batch size (`FIT_DEFAULTS`, what `tfgen train` and `tfgen list` use) and draws
--sample-n images with `model.sample`. It reports its own peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`): what the whole process needed at its worst,
TensorFlow included, with nothing freed by an earlier model to hide it (the in-process
`tfgen.bench.MemoryWatcher` can only give a lower bound). A child that imports what the
others import and does nothing else gives the baseline, so each model's share is
peak − baseline. Presets over --limit-gb (default 4) at 32×32×3 are flagged.

Memory does not depend on the machine's load (only the time it takes does), so the
figures hold on a shared machine. Writes, under --out (default benchmarks/results/):

    memory.json     every child's figures (and its error, if it failed), the baseline, machine, command
    memory.md       the table (README.md embeds it: benchmarks/render_readme.py)

Results are written after each child, so an interrupted run keeps what it finished;
with --merge, entries of an earlier memory.json that this run does not measure are kept.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from benchmarks.common import RESULTS, ROOT, public_command, public_dataset_name

NAME = "memory"
#: The image sizes of the issue's question: the colour size the families are tuned for, and twice it.
SIZES = (32, 64)
LIMIT_GB = 4.0


# ---------------------------------------------------------------------- the child processes
def max_rss_mb() -> float:
    from tfgen.bench.memory import max_rss_bytes

    return max_rss_bytes() / 2**20


def import_everything() -> None:
    """What every child imports before it builds anything (the baseline child stops here)."""
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    import tfgen.bench  # noqa: F401
    import tfgen.registry

    tfgen.registry.list_models()  # imports every model module


def child(name, preset, dataset, data_options, batch_size, steps, sample_n, precision, seed=0) -> dict:
    """Build, compile, train `steps` steps and sample `sample_n` images; this process's peak RSS."""
    import_everything()
    after_import = max_rss_mb()
    from tfgen.bench import training_pipeline
    from tfgen.bench.precisions import build_compiled
    from tfgen.registry import get_model_class

    from tfgen.catalog import default_batch_size

    size = data_options["image_size"]  # as `tfgen train --image-size N` picks its default batch
    batch_size = batch_size or default_batch_size(get_model_class(name).FIT_DEFAULTS, (size, size, data_options["channels"]))
    start = time.perf_counter()
    pipeline, info = training_pipeline(batch_size, steps, dataset, seed, data_options)
    model = build_compiled(name, preset, precision, info, seed)
    model.fit(pipeline, steps_per_epoch=steps, epochs=1, verbose=0)
    after_training = max_rss_mb()
    images = model.sample(sample_n, seed=seed)
    return {"model": name, "preset": preset, "image_shape": list(info.image_shape), "batch_size": batch_size,
            "parameters": int(model.count_params()), "train_steps": steps, "sample_n": int(images.shape[0]),
            "after_import_mb": round(after_import, 1), "after_training_mb": round(after_training, 1),
            "peak_rss_mb": round(max_rss_mb(), 1), "seconds": round(time.perf_counter() - start, 1)}


def run_child(argv, timeout) -> dict:
    """`python -m benchmarks.memory --child ...` in a fresh process; its JSON line, or the error."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return {"error": tail[0][:300]}
    return json.loads(lines[-1])


# ---------------------------------------------------------------------- the parent
def plan(models, presets, sizes) -> list[tuple[int, str, str]]:
    """(size, family, preset) for every registered family and preset (`tfgen.catalog`, no TensorFlow),
    narrowed by the given names; all of the first size before the second."""
    from tfgen import catalog

    families = catalog.families()
    names = models or sorted(families)
    for name in names:
        catalog.family(name)  # a clear error for an unknown name
    return [(size, name, preset) for size in sizes for name in names for preset in families[name].presets
            if not presets or preset in presets]


def key(name, preset, size) -> str:
    return f"{name}/{preset}/{size}"


def run(args) -> dict:
    from tfgen.bench.hardware import machine
    from tfgen.io import write_json, write_text

    out = args.out
    path = out / f"{NAME}.json"
    results = {
        "title": "Peak resident memory per family and preset",
        "dataset": public_dataset_name(args.dataset),
        "channels": 3,
        "train_steps": args.steps,
        "sample_n": args.sample_n,
        "precision": args.precision,
        "limit_gb": args.limit_gb,
        "method": "peak resident set size (ru_maxrss) of a fresh process that reads the data, builds and compiles "
                  "the model, trains through fit and samples; baseline: a process that only imports",
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": public_command(NAME, paths=("--out",), datasets=("--dataset",)),
        "machine": machine(),
        "entries": {},
    }
    if args.merge and path.exists():
        results["entries"] = json.loads(path.read_text()).get("entries", {})

    def save():
        write_json(path, results)
        write_text(out / f"{NAME}.md", markdown(results))

    print("baseline (imports only) ...", flush=True)
    results["baseline"] = run_child(["--baseline"], args.timeout)
    print(f"  {results['baseline']}", flush=True)
    save()
    for size, name, preset in plan(args.models, args.presets, args.sizes):
        argv = [name, preset, "--dataset", args.dataset, "--image-size", str(size), "--steps", str(args.steps),
                "--sample-n", str(args.sample_n), "--precision", args.precision]
        if args.batch_size:
            argv += ["--batch-size", str(args.batch_size)]
        entry = run_child(argv, args.timeout)
        entry.setdefault("model", name)
        entry.setdefault("preset", preset)
        entry["size"] = size
        results["entries"][key(name, preset, size)] = entry
        print(f"  {name:18s} {preset:12s} {size}x{size}x3: "
              f"{entry.get('peak_rss_mb', entry.get('error'))}", flush=True)
        save()
    return results


def over_limit(results) -> list[str]:
    """`family/preset` of the entries above the limit at 32×32×3."""
    limit_mb = results["limit_gb"] * 1024
    return sorted(f"{e['model']}/{e['preset']}" for e in results["entries"].values()
                  if e["size"] == 32 and e.get("peak_rss_mb", 0) > limit_mb)


def markdown(results: dict) -> str:
    """One row per family and preset: peak RSS at each size, and the share above the import baseline."""
    base = results.get("baseline", {}).get("peak_rss_mb")
    sizes = sorted({e["size"] for e in results["entries"].values()})
    head = ["family", "preset", "batch"] + [f"peak at {s}×{s}×3 (model's share)" for s in sizes]
    rows = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * len(sizes)]
    pairs = sorted({(e["model"], e["preset"]) for e in results["entries"].values()})
    limit_mb = results["limit_gb"] * 1024
    failures = []
    for name, preset in pairs:
        cells, batches = [], []  # a family whose batch follows the image size has one per size
        for size in sizes:
            e = results["entries"].get(key(name, preset, size))
            if e is None:
                cells.append("–")
            elif "error" in e:
                failures.append(f"({len(failures) + 1}) {name}/{preset} at {size}×{size}×3: {e['error']}")
                cells.append(f"not run ({len(failures)})")
            else:
                batches.append(str(e["batch_size"]))
                share = f" ({_gb(e['peak_rss_mb'] - base)})" if base else ""
                flag = " **over limit**" if size == 32 and e["peak_rss_mb"] > limit_mb else ""
                cells.append(f"{_gb(e['peak_rss_mb'])}{share}{flag}")
        batch = " / ".join(dict.fromkeys(batches)) or "–"
        rows.append(f"| {name} | {preset} | {batch} | " + " | ".join(cells) + " |")
    over = over_limit(results)
    verdict = (f"**Over {results['limit_gb']:g} GB at 32×32×3: {', '.join(over)}.**" if over else
               f"No preset needs more than {results['limit_gb']:g} GB at 32×32×3.")
    m = results["machine"]
    notes = [
        "",
        f"{verdict} Peak resident memory (`ru_maxrss`) of a fresh process per cell that reads `{results['dataset']}` "
        f"at that size with 3 channels, builds and compiles the preset ({results['precision']}), trains "
        f"{results['train_steps']} steps through `fit` at the family's default batch size (`tfgen list`) and "
        f"draws {results['sample_n']} samples. In brackets: the share above a process that only imports TensorFlow "
        f"and tfgen ({_gb(base) if base else '–'}). Memory does not depend on the machine's load.",
        *(["", "Not run: " + "; ".join(failures)] if failures else []),
        "",
        f"Machine: {m['cpus']} × {m['cpu']}; {results['date']}; tfgen {m.get('tfgen')}, TensorFlow "
        f"{m.get('tensorflow')}. Command: `{results['command']}`.",
    ]
    return "\n".join(rows + notes) + "\n"


def _gb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="a colour dataset (e.g. folder:DIR), read at each size with 3 channels")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="image sizes (default 32,64)")
    p.add_argument("--models", help="comma-separated families (default: every registered one)")
    p.add_argument("--presets", help="comma-separated presets (default: every preset of each family)")
    p.add_argument("--steps", type=int, default=3, help="training steps per child (default 3)")
    p.add_argument("--sample-n", type=int, default=4, help="images each child samples (default 4)")
    p.add_argument("--batch-size", type=int, help="default: each family's own (tfgen list)")
    p.add_argument("--precision", default="float32", help="dtype policy the models are built under")
    p.add_argument("--limit-gb", type=float, default=LIMIT_GB)
    p.add_argument("--timeout", type=float, default=1800, help="seconds a child may take (default 1800)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--merge", action="store_true", help="keep entries of an existing memory.json not measured now")
    p.add_argument("--render-only", action="store_true", help="rewrite memory.md from memory.json")
    args = p.parse_args(argv)
    if not args.dataset and not args.render_only:
        p.error("--dataset is required: a colour dataset, e.g. folder:DIR")
    from pathlib import Path

    args.out = Path(args.out)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.models = args.models.split(",") if args.models else None
    args.presets = args.presets.split(",") if args.presets else None
    return args


def child_main(argv) -> None:
    if argv == ["--baseline"]:
        import_everything()
        print(json.dumps({"peak_rss_mb": round(max_rss_mb(), 1)}))
        return
    p = argparse.ArgumentParser()
    for name in ("model", "preset"):
        p.add_argument(name)
    p.add_argument("--dataset")
    p.add_argument("--image-size", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--sample-n", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--precision")
    a = p.parse_args(argv)
    entry = child(a.model, a.preset, a.dataset, {"image_size": a.image_size, "channels": 3}, a.batch_size, a.steps,
                  a.sample_n, a.precision)
    print(json.dumps(entry))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if sys.argv[1:2] == ["--child"]:
        child_main(sys.argv[2:])
        sys.exit(0)
    args = parse_args()
    if args.render_only:
        from tfgen.io import write_text

        write_text(args.out / f"{NAME}.md", markdown(json.loads((args.out / f"{NAME}.json").read_text())))
    else:
        run(args)
