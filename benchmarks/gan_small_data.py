"""GAN on a small data set: what DiffAugment, the generator EMA, spectral normalisation and R1 each do.

    nice -n 10 python -m benchmarks.gan_small_data [--examples 2000] [--steps 1000] [--seeds 0] [--out DIR]
    nice -n 10 python -m benchmarks.gan_small_data --dataset folder:/path/to/emoji --image-size 32 ...

Trains the `gan` `default` preset for exactly --steps optimiser steps of batch 16 on the first
--examples training images of --dataset (default: the bundled digits), once per configuration
(hyperparameter overrides, below), and scores it: Fréchet distance on the dataset's evaluator's
features (`tfgen.eval.get_evaluator`: shipped for the digits, trained and cached for a folder)
between 1,000 samples and the test split, for the generator `sample` draws with (the averaged
one when `ema_decay` > 0) and for the raw generator. Writes gan_small_data.json and .md under
--out (default benchmarks/results/), after each run; --name changes the file names.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from benchmarks.common import RESULTS

CONFIGURATIONS = {
    "plain": {},
    "diffaugment": {"diff_augment": "color,translation,cutout"},
    "ema": {"ema_decay": 0.999},
    "ema0.99": {"ema_decay": 0.99},
    "diffaugment+ema": {"diff_augment": "color,translation,cutout", "ema_decay": 0.999},
    "diffaugment+ema+sn": {"diff_augment": "color,translation,cutout", "ema_decay": 0.999, "spectral_norm": True},
    "diffaugment+ema+r1": {"diff_augment": "color,translation,cutout", "ema_decay": 0.999, "r1_gamma": 0.01},
}


def run_one(overrides, examples, steps, seed, evaluator, real_features, data):
    import keras
    import numpy as np
    import tensorflow as tf

    import tfgen
    from tfgen.eval.metrics import frechet_distance

    keras.utils.set_random_seed(seed)
    x, y = data[0][:examples], data[1][:examples]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().shuffle(len(x), seed=seed).batch(16, True)
    model = tfgen.get_model("gan", "default", seed=seed, image_shape=x.shape[1:], **overrides)
    model.default_compile()
    start = time.perf_counter()
    history = model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0).history
    seconds = time.perf_counter() - start

    def fid(images):
        return round(float(frechet_distance(evaluator.features(np.asarray(images)), real_features)), 2)

    noise = tf.random.stateless_normal([1000, model.latent_dim], seed=[seed + 1, 0])
    raw = (tf.cast(model.generate(noise), tf.float32) + 1.0) / 2.0
    result = {"fid": fid(model.images_from_noise(noise)), "fid_raw_generator": fid(raw), "seconds": round(seconds, 1),
              "last_epoch": {k: round(float(v[-1]), 3) for k, v in history.items()}}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist_bundled")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--name", default="gan_small_data")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    from tfgen.data import load_arrays
    from tfgen.eval import get_evaluator

    options = {"image_size": args.image_size} if args.image_size else {}
    data = load_arrays(args.dataset, "train", **options)
    args.examples = min(args.examples, len(data[0]))
    x_test = load_arrays(args.dataset, "test", **options)[0]
    evaluator = get_evaluator(args.dataset, data_kwargs=options, verbose=0)
    real_features = evaluator.features(x_test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.configurations.split(","):
            result = run_one(CONFIGURATIONS[name], args.examples, args.steps, seed, evaluator, real_features, data)
            runs.append({"configuration": name, "overrides": CONFIGURATIONS[name], "seed": seed, **result})
            print(json.dumps(runs[-1]), flush=True)
            write(out, args, runs)


def write(out, args, runs):
    facts = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "dataset": args.dataset, "image_size": args.image_size, "examples": args.examples, "steps": args.steps,
             "batch_size": 16, "preset": "default", "runs": runs}
    (out / f"{args.name}.json").write_text(json.dumps(facts, indent=1) + "\n")
    lines = [f"GAN `default`, {args.steps} steps of 16 on the first {args.examples} training images of "
             f"{args.dataset}; FID on the evaluator's features, 1,000 samples vs the test split (lower is better).", "",
             "| configuration | seed | FID (sampled) | FID (raw generator) | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['configuration']} | {r['seed']} | {r['fid']} | {r['fid_raw_generator']} | {r['seconds']} |"
              for r in runs]
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
