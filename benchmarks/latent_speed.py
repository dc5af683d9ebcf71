"""Latent vs pixel diffusion at one image size: training and sampling images/s, side by side.

Both families' `default` presets (untrained: speed does not depend on the weights), one
process, the same batch of random images and the same batch size, a few warm-up steps,
then alternating rounds (diffusion, latent_diffusion, diffusion, …) so that a change in
the machine's load falls on both; each figure is the median over rounds.

* training: `fit` steps of the latent stage (`autoencoder_steps=0`), what most of a run's steps
  are, as `tfgen train` runs them: the U-Net's step on latents drawn from posteriors encoded
  once (the latent cache, `tfgen.layers.latent_cache`; batches carry example ids), and, for
  reference, the same step encoding every batch (`..._encoder_each_step`) and a step of the
  autoencoder stage;
* sampling: `model.sample(n, steps)` (DDIM, compiled loop; latent: the loop on latents, then
  one decoder pass).

    python -m benchmarks.latent_speed --size 64 --batch-size 64 --steps 3 --rounds 3 --sample-n 16 --sample-steps 20

Prints a table and writes benchmarks/results/latent_speed.json and latent_speed.md (README.md
embeds it: benchmarks/render_readme.py); `--render-only` rewrites the .md from the .json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfgen  # noqa: E402
from tfgen.bench.hardware import load_average, machine  # noqa: E402
from tfgen.bench.timing import time_fit  # noqa: E402

from benchmarks.common import RESULTS, public_command  # noqa: E402
from tfgen.io import write_json, write_text  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (both families' FIT_DEFAULTS)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample-n", type=int, default=16, help="images per sample call")
    parser.add_argument("--sample-steps", type=int, default=20, help="DDIM steps per sample call")
    parser.add_argument("--latent", action="append", default=[], metavar="JSON",
                        help="latent_diffusion hyperparameters over the default preset, e.g. '{\"base_channels\": 32}'; "
                             "repeat to compare variants in the same rounds (default: the preset as it is)")
    parser.add_argument("--no-train", action="store_true", help="time sampling only")
    parser.add_argument("--out", default=str(RESULTS / "latent_speed.json"))
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md beside --out from its .json")
    args = parser.parse_args(argv)
    if args.render_only:
        write_text(Path(args.out).with_suffix(".md"), markdown(json.loads(Path(args.out).read_text())))
        return

    shape = (args.size, args.size, args.channels)
    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, *shape), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch_size).astype(np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(args.batch_size).repeat()
    # The same batch with each image's row in the latent cache (what `tfgen train` feeds a latent model).
    with_ids = tf.data.Dataset.from_tensor_slices(
        {"images": images, "labels": labels, "example_ids": np.arange(args.batch_size)}).batch(args.batch_size).repeat()
    variants = [json.loads(v) for v in args.latent] or [{}]
    models = {"diffusion": tfgen.get_model("diffusion", "default", seed=0, image_shape=shape)}
    for i, overrides in enumerate(variants):
        suffix = f" {json.dumps(overrides)}" if overrides else ""
        models[f"latent_diffusion{suffix}"] = tfgen.get_model("latent_diffusion", "default", seed=0,
                                                              image_shape=shape, **{**overrides, "autoencoder_steps": 0})
        if i == 0:
            models["latent_diffusion_encoder_each_step"] = tfgen.get_model(
                "latent_diffusion", "default", seed=0, image_shape=shape, **{**overrides, "autoencoder_steps": 0})
            models["latent_diffusion_autoencoder_stage"] = tfgen.get_model(
                "latent_diffusion", "default", seed=0, image_shape=shape, **{**overrides, "autoencoder_steps": 10**9})
    references = ("latent_diffusion_encoder_each_step", "latent_diffusion_autoencoder_stage")
    if args.no_train:
        for name in references:
            models.pop(name)
    data = {}
    for name, model in models.items():
        model.default_compile()
        # Latent models as `tfgen train` trains them: posteriors encoded once, read by example id.
        cached = name.startswith("latent_diffusion") and name not in references
        data[name] = with_ids if cached and model.use_latent_cache(images) else batches
        if not args.no_train:
            time_fit(model, data[name], steps=0, warmup=args.warmup)  # traces the step (and fills the cache)
    sampled = [k for k in models if k not in references]
    for name in sampled:
        models[name].sample(args.sample_n, steps=args.sample_steps, seed=0)  # traces the sampler

    train, sample = {k: [] for k in models}, {k: [] for k in sampled}
    for r in range(args.rounds):
        for name, model in models.items():
            if not args.no_train:
                seconds = time_fit(model, data[name], steps=args.steps, warmup=0)["step_seconds"]
                train[name].append(args.batch_size / seconds)
            if name in sample:
                start = time.perf_counter()
                np.asarray(model.sample(args.sample_n, steps=args.sample_steps, seed=r))
                sample[name].append(args.sample_n / (time.perf_counter() - start))
        print(f"round {r + 1}/{args.rounds} done (load {load_average()})", flush=True)

    result = {
        "image_shape": list(shape), "batch_size": args.batch_size, "timed_steps_per_round": args.steps,
        "rounds": args.rounds, "sample_n": args.sample_n, "sample_steps": args.sample_steps, "machine": machine(),
        "parameters": {k: int(m.count_params()) for k, m in models.items() if k in sampled},
        "train_images_per_second": {k: statistics.median(v) for k, v in train.items() if v},
        "sample_images_per_second": {k: statistics.median(v) for k, v in sample.items()},
        "rounds_train": train, "rounds_sample": sample,
    }
    latent = [k for k in sampled if k != "diffusion"]
    trained = result["train_images_per_second"]
    result["train_speedup"] = {k: trained[k] / trained["diffusion"] for k in trained if k != "diffusion"}
    result["sample_speedup"] = {k: result["sample_images_per_second"][k] /
                                result["sample_images_per_second"]["diffusion"] for k in latent}
    for k in models:
        t, s = trained.get(k), result["sample_images_per_second"].get(k)
        print(f"{k:60s}" + (f" train {t:8.1f} img/s" if t else "")
              + (f"   sample ({args.sample_steps} steps) {s:8.1f} img/s" if s else ""))
    for k in latent:
        print(f"{k} / diffusion: sampling {result['sample_speedup'][k]:.1f}×"
              + (f", training {result['train_speedup'][k]:.1f}×" if trained else ""))
    for k in references:
        if k in result["train_speedup"]:
            print(f"{k} / diffusion: training {result['train_speedup'][k]:.1f}×")
    result["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    result["command"] = public_command("latent_speed", argv, paths=("--out",))
    write_json(Path(args.out), result)
    write_text(Path(args.out).with_suffix(".md"), markdown(result))


#: What the rows that are not a family's own step measure.
REFERENCE_ROWS = {
    "latent_diffusion_encoder_each_step": "latent_diffusion, encoding every batch (no latent cache)",
    "latent_diffusion_autoencoder_stage": "latent_diffusion, a step of its autoencoder stage",
}


def command_of(result: dict) -> str:
    """The run's command: as recorded, or (results written before it was) rebuilt from its recorded options."""
    if "command" in result:
        return result["command"]
    return (f"python -m benchmarks.latent_speed --size {result['image_shape'][0]} --channels {result['image_shape'][2]} "
            f"--batch-size {result['batch_size']} --steps {result['timed_steps_per_round']} --rounds {result['rounds']} "
            f"--sample-n {result['sample_n']} --sample-steps {result['sample_steps']}")


def markdown(result: dict) -> str:
    """The README's table: images/s training and sampling, and the ratio to pixel diffusion."""
    trained, sampled = result["train_images_per_second"], result["sample_images_per_second"]
    base_train, base_sample = trained.get("diffusion"), sampled["diffusion"]
    lines = ["| model | parameters | training images/s | × pixel diffusion | sampling images/s "
             f"(DDIM {result['sample_steps']}) | × pixel diffusion |", "|---|---:|---:|---:|---:|---:|"]
    for name in [*result["parameters"], *REFERENCE_ROWS]:
        if name not in trained and name not in sampled:
            continue
        params = result["parameters"].get(name)
        train = trained.get(name)
        sample = sampled.get(name)
        lines.append(f"| {REFERENCE_ROWS.get(name, name)} | {f'{params / 1e6:.2f}M' if params else ''} | "
                     f"{f'{train:.0f}' if train else '–'} | {f'{train / base_train:.1f}×' if train else '–'} | "
                     f"{f'{sample:.1f}' if sample else ''} | {f'{sample / base_sample:.1f}×' if sample else ''} |")
    h, w, c = result["image_shape"]
    load = result["machine"].get("load_average_1min")
    lines += ["", f"Both families' `default` presets at {h}×{w}×{c}, untrained (speed does not depend on the weights), "
              f"batch {result['batch_size']}, in one process: {result['rounds']} alternating rounds of "
              f"{result['timed_steps_per_round']} timed `fit` steps and a `sample({result['sample_n']})` call each; "
              f"medians over rounds. Latent training steps read the posteriors encoded once (the latent cache), as "
              f"`tfgen train` runs them. 1-minute load average at the end: {load}. "
              f"Command: `{command_of(result)}`" + (f"; {result['date']}." if "date" in result else ".")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
