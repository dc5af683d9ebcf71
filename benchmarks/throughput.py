"""Training and sampling throughput of every registered model and preset, with keras.io-style baselines.

Per model and preset (measurement core: `tfgen.bench`, also behind `tfgen bench`):
steady-state training images/second through `fit` (compile time reported
separately), sampling images/second, peak memory, FLOPs per training step counted
on the traced step and the achieved FLOP/s as a fraction of this machine's dense
fp32 matmul FLOP/s measured in the same run, and the fraction of the step spent
waiting for input. `default` presets are profiled (time per op type), which says
why a step falls short of the matmul rate.

Baselines (`benchmarks/baselines.py`), same architecture, batch size, data pipeline
and `fit` path, training step written the keras.io way: GAN (generator run twice
per step), conditional GAN (one-hot label planes), VAE (sigmoid + BCE on
probabilities), diffusion training (DDIM example's step and EMA loop), and the
diffusion sampler (`predict` per step). Reported as tfgen ÷ baseline against the
issue's goals; tfgen and the baseline are timed in alternating rounds on the same
batches, so drift in machine load hits both alike. A missed goal comes with its
FLOP ratio and the op types whose time differs most between the two profiles.

    python -m benchmarks.throughput                      # every model and preset (~40 min, quiet 2-core machine)
    python -m benchmarks.throughput --quick              # default presets, 5 steps (a few minutes)
    python -m benchmarks.throughput --models gan,vae --presets default --steps 30
    python -m benchmarks.throughput --quick --precision float32,mixed_bfloat16   # each model under both

Writes benchmarks/results/throughput.json and throughput.md.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import baselines  # noqa: E402
from benchmarks.common import RESULTS, public_command  # noqa: E402
from tfgen import bench  # noqa: E402
from tfgen.bench.report import format_cell  # noqa: E402


def measure_train_baseline(name, preset, entry, steps, warmup, rounds=3, log=print):
    """Time the keras.io-style baseline of (name, preset) against tfgen's (already compiled) model.

    After the baseline's own warm-up, `rounds` rounds each time tfgen's model and then the
    baseline for ~steps/rounds steps (one untimed step each); the ratio compares the medians
    of the pooled step times, so drifting machine load hits both alike.
    """
    model, batch_size = entry["_model"], entry["batch_size"]
    baseline = baselines.build(name, preset)
    pipeline, info = bench.training_pipeline(batch_size, 10 * (warmup + steps), entry["dataset"])
    batches = bench.held_batches(pipeline)
    first = bench.time_fit(baseline, batches(warmup + 1), 1, warmup)
    seconds, per_round = bench.alternating_step_seconds({"tfgen": model, "baseline": baseline}, batches, steps, rounds)
    mine, theirs = seconds["tfgen"], seconds["baseline"]
    tfgen_seconds, base_seconds = statistics.median(mine), statistics.median(theirs)
    base_fn, concrete = bench.step_function(baseline.train_step, batch_size, info.image_shape)
    base_flops = bench.count_step_flops(concrete)
    tfgen_flops = entry["_flops"]["total"]
    row = {
        "comparison": name, "preset": preset, "batch_size": batch_size, "kind": "training step",
        "rounds": rounds, "steps_per_round": per_round,
        "tfgen_images_per_second": batch_size / tfgen_seconds, "tfgen_step_seconds": tfgen_seconds,
        "baseline_images_per_second": batch_size / base_seconds, "baseline_step_seconds": base_seconds,
        "tfgen_steady_step_seconds": mine, "baseline_steady_step_seconds": theirs,
        "baseline_compile_seconds": first["compile_seconds"],
        "ratio": base_seconds / tfgen_seconds,
        "goal": baselines.GOALS.get(name),
        "tfgen_gflop_per_step": tfgen_flops / 1e9, "baseline_gflop_per_step": base_flops["total"] / 1e9,
        "flop_ratio_baseline_over_tfgen": base_flops["total"] / tfgen_flops if tfgen_flops else None,
        "baseline_parameters": sum(int(math.prod(v.shape)) for v in baseline.trainable_variables),
    }
    if row["goal"] is not None:
        row["met"] = row["ratio"] >= row["goal"]
        if not row["met"]:
            mine_profile = bench.profile_step(entry["_step_fn"], entry["_batch"], flops=entry["_flops"])
            theirs_profile = bench.profile_step(base_fn, entry["_batch"], flops=base_flops)
            row["why"] = explain_ratio(row, mine_profile, theirs_profile)
            row["profiles"] = {"tfgen": mine_profile, "baseline": theirs_profile}
    log(f"  baseline {name}/{preset}: {row['baseline_images_per_second']:.0f} images/s vs tfgen "
        f"{row['tfgen_images_per_second']:.0f}: tfgen ÷ baseline {row['ratio']:.2f} (goal {row['goal']})")
    return row


def explain_ratio(row, mine, theirs) -> str:
    """Why the ratio is what it is: the FLOP ratio, the op types whose time differs most, and how
    much each step overlaps its ops (profiles of both steps, back to back, same batch)."""
    flop_ratio = row["flop_ratio_baseline_over_tfgen"]
    text = (f"the baseline's step has {flop_ratio:.2f}× tfgen's FLOPs ({row['baseline_gflop_per_step']:.2f} vs "
            f"{row['tfgen_gflop_per_step']:.2f} GFLOP), so a FLOP-bound step gains at most {flop_ratio:.2f}×")
    mine_ms = {e["op_type"]: e["ms_per_step"] for e in mine["op_types"]}
    theirs_ms = {e["op_type"]: e["ms_per_step"] for e in theirs["op_types"]}
    diffs = sorted(((theirs_ms.get(k, 0.0) - mine_ms.get(k, 0.0), k) for k in set(mine_ms) | set(theirs_ms)),
                   key=lambda d: -abs(d[0]))
    parts = [f"{k} {d:+.1f} ms" for d, k in diffs[:3] if abs(d) >= 0.05]
    if parts:
        text += "; op time per step, baseline − tfgen: " + ", ".join(parts)
    text += (f"; profiled, op time {theirs['op_ms_per_step']:.0f} vs {mine['op_ms_per_step']:.0f} ms/step and wall "
             f"time {theirs['wall_ms_per_step']:.0f} vs {mine['wall_ms_per_step']:.0f} ms/step "
             f"(ops overlapping {theirs['overlap']:.1f}× vs {mine['overlap']:.1f}×)")
    return text


def measure_sampling_baseline(preset, entry, log=print):
    """tfgen's compiled DDIM sampler vs keras.io DDPM's `predict`-per-step loop, same steps and images."""
    model, n, steps = entry["_model"], entry["sample"]["n"], entry["sample"]["steps"]
    baseline_sample = lambda: baselines.predict_loop_sample(model, n, steps)  # noqa: E731
    first, seconds = bench.time_calls(baseline_sample, 1)  # the first call also traces `predict`
    row = {
        "comparison": "diffusion_sampling", "preset": preset, "batch_size": n, "kind": f"sampling, DDIM {steps} steps",
        "tfgen_images_per_second": entry["sample"]["images_per_second"],
        "baseline_images_per_second": n / seconds, "baseline_seconds": seconds,
        "baseline_first_call_seconds": first, "ratio": seconds / entry["sample"]["seconds"],
        "goal": baselines.GOALS["diffusion_sampling"],
    }
    row["met"] = row["ratio"] >= row["goal"]
    log(f"  baseline sampler diffusion/{preset}: {row['baseline_images_per_second']:.1f} images/s, "
        f"tfgen ÷ baseline {row['ratio']:.1f}")
    return row


def baselines_markdown(results: dict) -> str:
    rows = results.get("baselines") or []
    if not rows:
        return ""
    lines = ["Reference baselines: the same networks and batch, the training step (or sampler) written as the keras.io "
             "examples write it (`benchmarks/baselines.py`).", "",
             "| comparison | preset | batch | what | tfgen images/s | baseline images/s | tfgen ÷ baseline | goal "
             "| baseline ÷ tfgen FLOPs |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        goal = f"≥ {r['goal']:.2f} {'✓' if r.get('met') else '✗'}" if r.get("goal") is not None else "—"
        flops = format_cell(r.get("flop_ratio_baseline_over_tfgen"), ".2f")
        lines.append(f"| `{r['comparison']}` | {r['preset']} | {r['batch_size']} | {r['kind']} "
                     f"| {r['tfgen_images_per_second']:.1f} | {r['baseline_images_per_second']:.1f} "
                     f"| {r['ratio']:.3f} | {goal} | {flops} |")
        if r.get("why"):
            notes.append(f"* `{r['comparison']}` ({r['preset']}) misses its goal: {r['why']}.")
    lines += ["", "Baseline styles: GAN runs the generator twice per step, BCE on sigmoid probabilities; conditional "
              "GAN tiles one-hot labels into 10 image planes (its discriminator's first layer reads 11 channels, "
              "not 1; tfgen's cGAN also scores real images with wrong labels); VAE decodes through a sigmoid and "
              "BCE on probabilities; diffusion training is keras.io DDIM's step with its EMA `assign` loop; the "
              "diffusion sampler calls `predict` once per step (same DDIM steps)."]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def markdown(results: dict) -> str:
    return bench.render_markdown(results, baselines_markdown(results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma-separated (default: every registered model)")
    parser.add_argument("--presets", help="comma-separated (default: every preset; with --quick: default)")
    parser.add_argument("--steps", type=int, help="timed training steps per model (default 20; --quick 5)")
    parser.add_argument("--warmup", type=int, help="untimed steps before them (default 3; --quick 2)")
    parser.add_argument("--sample-n", type=int, help="images per sample call (default: the batch size; --quick 16)")
    parser.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the keras.io-style baselines (default: on)")
    parser.add_argument("--baseline-presets", default="default",
                        help="presets whose baselines are measured (comma-separated, or 'all')")
    parser.add_argument("--quick", action="store_true", help="few steps, default presets: a look at the table")
    parser.add_argument("--precision", help="comma-separated dtype policies, each model measured under each side by "
                                            "side, e.g. float32,mixed_bfloat16 (default float32; baselines: float32)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    try:
        models, presets, settings = bench.options_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    baseline_presets = None if args.baseline_presets == "all" else set(bench.split_names(args.baseline_presets) or ())
    rows = []

    # The baselines are float32 models: they are compared with tfgen's model of the first precision, float32's.
    with_baselines = args.baselines and settings["precisions"][0] == "float32"
    if args.baselines and not with_baselines:
        print("no baselines: they are measured against float32, which --precision must then list first")

    def each(name, preset, entry):
        if not with_baselines or (baseline_presets is not None and preset not in baseline_presets):
            return
        if name in baselines.TRAIN_BASELINES:
            rows.append(measure_train_baseline(name, preset, entry, settings["steps"], settings["warmup"]))
        if name == "diffusion":
            rows.append(measure_sampling_baseline(preset, entry))

    command = public_command("throughput", argv, paths=("--out",))
    start = time.perf_counter()
    results = bench.run(models, presets, command=command, each=each, **settings)
    results["flop_goal"] = bench.flop_goal(results)  # the project's goal, for its README table
    results["baselines"] = rows
    results["baseline_goals"] = baselines.GOALS
    results["wall_seconds"] = time.perf_counter() - start
    json_path, md_path = bench.write_results(results, Path(args.out), baselines_markdown(results))
    print(markdown(results))
    print(f"wrote {json_path} and {md_path} ({results['wall_seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    sys.exit(main())
