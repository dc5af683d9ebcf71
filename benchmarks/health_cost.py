"""What the per-epoch health figures (`tfgen.health`) cost, as a fraction of a training epoch.

For each family: the model `tfgen train` would build for the data (its preset, untrained:
the cost does not depend on the weights), its `Health` callback as training makes it
(`tfgen.health.training_monitor`: the same fixed images and checks), and `rounds` rounds
that each time, one after the other,

* `--steps` training steps (`fit`, after one untimed step): the median step time, and
* one epoch-end measurement of every health check (`Health.on_epoch_end`),

so that a change in the machine's load falls on both. The epoch is the one a default run
on this data has (`tfgen.length.epoch_length` for the family's `FIT_DEFAULTS`), or `--epoch-steps`;
its training time is steps × the median step (validation, the sample grid and the
checkpoint come on top, so the fraction reported is an upper bound). The health figures are
timed by themselves rather than as the difference of two whole epochs with and without them:
a few percent of an epoch is within the spread of epoch times on a shared machine.
Latent diffusion is timed in its second stage (`autoencoder_steps=0`): in the first its
noise bands are not measured.

    python -m benchmarks.health_cost --dataset mnist_bundled
    python -m benchmarks.health_cost --dataset folder:DIR --image-size 32 --out-name health_cost_emoji

Writes benchmarks/results/health_cost.{json,md} (or `--out-name`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfgen import data as tfdata  # noqa: E402
from tfgen import length as run_length  # noqa: E402
from tfgen.bench.hardware import load_average, machine  # noqa: E402
from tfgen.bench.timing import time_fit  # noqa: E402
from tfgen.data.pipeline import training_batches  # noqa: E402
from tfgen.health import training_monitor  # noqa: E402
from tfgen.registry import get_model_class  # noqa: E402
from tfgen.training import build_model, seed_everything  # noqa: E402

from benchmarks.common import RESULTS, public_command  # noqa: E402

FAMILIES = ("vae", "cvae", "gan", "cgan", "diffusion", "flow", "latent_diffusion", "pixelcnn", "pixel_transformer")
#: The issue's budget: health figures at most this fraction of an epoch.
BUDGET = 0.05


def measure(name: str, preset: str, train, test, args) -> dict:
    """One family's step time, health time and their ratio over an epoch (see the module docstring)."""
    model_cls = get_model_class(name)
    batch = args.batch_size or model_cls.FIT_DEFAULTS["batch_size"]
    config = {"model": name, "preset": preset, "seed": 0, "strategy": "auto", "precision": "float32",
              "jit_compile": False}
    overrides = {"autoencoder_steps": 0} if name == "latent_diffusion" else {}
    seed_everything(0)
    model = build_model(model_cls, config, train.info, overrides)
    per_pass = run_length.steps_per_pass(train.info.num_examples, batch)
    epoch_steps = args.epoch_steps or run_length.epoch_length(per_pass, model_cls.FIT_DEFAULTS["steps"], passes=False)
    monitor = training_monitor(model, train, test, seed=2)
    monitor.stream = io.StringIO()  # an untrained model's warnings are not this benchmark's business
    batches = training_batches(train, batch, seed=0)
    time_fit(model, batches, steps=1, warmup=1)  # traces the step
    monitor.set_model(model)
    monitor.on_train_begin()
    monitor.on_epoch_end(0, {})  # traces the checks' functions
    steps, health = [], []
    for _ in range(args.rounds):
        steps.append(time_fit(model, batches, steps=args.steps, warmup=1)["step_seconds"])
        start = time.perf_counter()
        monitor.on_epoch_end(1, {})
        health.append(time.perf_counter() - start)
    step, seconds = statistics.median(steps), statistics.median(health)
    return {"model": name, "preset": preset, "batch_size": batch, "epoch_steps": epoch_steps,
            "step_seconds": step, "epoch_seconds": step * epoch_steps, "health_seconds": seconds,
            "health_fraction": seconds / (step * epoch_steps), "figures": sorted(monitor.last),
            "rounds_step_seconds": steps, "rounds_health_seconds": health}


def markdown(result: dict) -> str:
    lines = [f"# Health figures' cost per epoch: {result['dataset']}", "",
             f"Command: `{result['command']}`; {result['machine']['cpus']} CPUs, {result['machine']['cpu']}, "
             f"load {result['machine']['load_average_1min']} at the start. Epoch = the steps of a default run's "
             f"epoch on this data × the median training step; health = one epoch-end measurement of every "
             f"check (median of {result['rounds']} rounds). Budget: {BUDGET:.0%} of an epoch.", "",
             "| model | preset | epoch steps | step (s) | epoch (s) | health (s) | health / epoch |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['model']} | {row['preset']} | {row['epoch_steps']} | {row['step_seconds']:.3f} | "
                     f"{row['epoch_seconds']:.1f} | {row['health_seconds']:.3f} | {row['health_fraction']:.2%} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(FAMILIES), help="comma-separated families")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--dataset", default=tfdata.BUNDLED_NAME)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--batch-size", type=int, help="default: each family's FIT_DEFAULTS")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epoch-steps", type=int, help="default: a default run's epoch on this data")
    parser.add_argument("--out-name", default="health_cost", help="results file name, without extension")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)

    options = {k: v for k, v in (("image_size", args.image_size), ("channels", args.channels)) if v is not None}
    facts = machine()  # the load before the rounds
    train = tfdata.load_examples(args.dataset, "train", **options)
    test = tfdata.load_examples(args.dataset, "test", **options)
    rows = []
    for name in args.models.split(","):
        rows.append(measure(name, args.preset, train, test, args))
        row = rows[-1]
        print(f"{name:18s} epoch {row['epoch_seconds']:8.1f} s ({row['epoch_steps']} steps)  health "
              f"{row['health_seconds']:6.3f} s = {row['health_fraction']:.2%}  (load {load_average()})", flush=True)
    result = {"dataset": args.dataset, "data_options": options, "rounds": args.rounds, "timed_steps": args.steps,
              "command": public_command("health_cost", argv, paths=("--out-dir",), datasets=("--dataset",)),
              "machine": facts, "budget": BUDGET, "rows": rows}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.out_name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"{args.out_name}.md").write_text(markdown(result))
    print(f"wrote {out / args.out_name}.json and .md")


if __name__ == "__main__":
    main()
