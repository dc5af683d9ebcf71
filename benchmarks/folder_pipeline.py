#!/usr/bin/env python3
"""How fast `folder:DIR` datasets load and feed training, and how much memory they hold.

    python -m benchmarks.make_emoji_folder /tmp/emoji/emoji-datasource-google-*.tgz /tmp/emoji-folder
    python -m benchmarks.folder_pipeline /tmp/emoji-folder --image-size 32

Measures, on the training split:

* loading: listing, reading headers, decoding, compositing and resizing every
  image once (images per second of wall-clock and of CPU time);
* feeding: shuffled batches gathered from the decoded images held in memory, with
  no model (images per second);
* a training step of a small model (`vae`, preset `tiny`, at the dataset's image
  shape) fed from those batches, against the same step on one batch held in memory:
  the share of the step spent waiting for input;
* memory: the process's resident size after loading, less before, against the
  size of the decoded uint8 images (one copy is the goal).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def feed_rate(examples, batch_size: int, batches: int) -> float:
    iterator = iter(examples.batches(batch_size, seed=0).repeat())
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def step_seconds(model, dataset, steps: int) -> float:
    """Median wall time of `steps` training steps of `model.fit` on `dataset` (after two warm-up steps)."""
    import keras

    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(dataset, epochs=1, steps_per_epoch=steps + 2, callbacks=[Timer()], verbose=0, shuffle=False)
    return statistics.median(times[2:])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    import tensorflow as tf

    import tfgen
    from tfgen import data

    tf.constant(0)  # TensorFlow's own start-up memory is not the data's
    before = rss_mb()
    examples, wall, cpu = timed(lambda: data.load_examples(f"folder:{args.folder}", "train",
                                                           image_size=args.image_size))
    info = examples.info
    held = rss_mb() - before
    data_mb = np.prod(info.image_shape) * info.num_examples / 2**20
    model = tfgen.get_model("vae", "tiny", image_shape=info.image_shape, num_classes=max(info.num_classes, 1))
    model.default_compile()
    fed = step_seconds(model, examples.batches(args.batch_size, seed=0).repeat(), args.steps)
    one_batch = next(iter(examples.batches(args.batch_size, seed=0)))
    held_batch = step_seconds(model, tf.data.Dataset.from_tensors(one_batch).repeat(), args.steps)
    results = {
        "images": info.num_examples, "image_shape": list(info.image_shape), "classes": info.num_classes,
        "load_seconds": round(wall, 2), "load_images_per_s": round(info.num_examples / wall),
        "load_images_per_cpu_s": round(info.num_examples / cpu),
        "feed_images_per_s": round(feed_rate(examples, args.batch_size, 200)),
        "tiny_vae_step_images_per_s": round(args.batch_size / fed),
        "input_wait_share": round(max(0.0, 1 - held_batch / fed), 3),
        "decoded_mb": round(float(data_mb), 1), "rss_growth_mb": round(held, 1),
        "load_average_1min": os.getloadavg()[0],
    }
    for key, value in results.items():
        print(f"{key:28s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
