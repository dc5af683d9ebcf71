"""How fast do the autoregressive models draw images, compared with the usual Python loop?

For `pixel_transformer` and `pixelcnn` (default presets, or trained runs), in one
process, for a batch of 16 images of 784 pixels:

(a) the keras.io PixelCNN pattern: a Python loop that calls `model.predict` on the
    whole batch of images once per pixel and samples that pixel with NumPy. Every
    call is the same full forward pass, so its cost is the same for every pixel:
    the first `--baseline-pixels` pixels are timed and the time is extrapolated
    linearly to all 784 (the JSON says so with "extrapolated": true);
(b) tfgen's `model.sample(16)`: the whole loop in one compiled `tf.function`
    (a `tf.while_loop`), where each step costs one position — the key/value cache
    for the Transformer, the row cache for the PixelCNN (see its docstring).
    Timed after a first, tracing call (reported too);
(c) for reference, the same full forward pass per pixel as (a) but through a
    compiled `tf.function` instead of `predict` (timed on `--reference-pixels`
    and extrapolated the same way): what is left of the speed-up without
    `predict`'s per-call overhead, i.e. what the caches buy.

Wall-clock seconds are the headline; CPU seconds of this process are recorded
too, because on a shared machine the wall clock depends on everyone else's load.

    python -m benchmarks.ar_sampling [--transformer-run DIR] [--pixelcnn-run DIR] [--baseline-pixels 200]
                                     [--reference-pixels 50]

Merges its results under the "autoregressive" key of benchmarks/results/sampling.json
(other keys, written by other benchmarks, are kept).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfgen  # noqa: E402
from tfgen.bench.hardware import load_average  # noqa: E402
from benchmarks.common import public_command  # noqa: E402
from benchmarks.sampling_results import RESULTS, merge_results  # noqa: E402

KEY = "autoregressive"
MODELS = ("pixel_transformer", "pixelcnn")
GOALS = {"pixel_transformer": 50.0, "pixelcnn": 20.0}


def clock(fn):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def pixel_loop(forward, model, n, pixels, seed=0):
    """Sample the first `pixels` pixels of `n` images, one full forward pass per pixel (keras.io style)."""
    rng = np.random.default_rng(seed)
    height, width, _ = model.image_shape
    images = np.zeros((n, *model.image_shape), np.float32)
    for i in range(pixels):
        row, col = divmod(i, width)
        logits = np.asarray(forward(images))[:, row, col, 0]  # (n, levels)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        levels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
        images[:, row, col, 0] = levels / (model.levels - 1)
    return images


def bench(name, run, n, baseline_pixels, reference_pixels, repeats):
    if run:
        from tfgen.runs import load_run

        model = load_run(run)
    else:
        model = tfgen.get_model(name, "default", seed=0)
    dims = model.num_dims
    pixels, ref_pixels = min(baseline_pixels, dims), min(reference_pixels, dims)
    print(f"{name}: {run or 'untrained default preset'}, {model.count_params():,} parameters", flush=True)

    # (b) compiled sampler: first call traces; then the median of `repeats` timed calls.
    _, first_wall, _ = clock(lambda: np.asarray(model.sample(n, seed=0)))
    timings = [clock(lambda: np.asarray(model.sample(n, seed=1 + r)))[1:] for r in range(repeats)]
    b_wall, b_cpu = (float(np.median([t[k] for t in timings])) for k in (0, 1))
    print(f"  (b) compiled sampler: {b_wall:.2f} s wall, {b_cpu:.2f} s CPU (first call {first_wall:.1f} s)",
          flush=True)

    # (a) predict once per pixel, on the first `pixels` pixels.
    predict = lambda images: model.predict(images, batch_size=n, verbose=0)
    pixel_loop(predict, model, n, 2)  # warm-up: build predict's function
    _, a_wall, a_cpu = clock(lambda: pixel_loop(predict, model, n, pixels))
    scale = dims / pixels
    print(f"  (a) predict loop: {pixels} pixels in {a_wall:.1f} s -> {a_wall * scale:.0f} s for {dims}", flush=True)

    # (c) compiled full forward pass once per pixel.
    forward = tf.function(lambda images: model(images, training=False))
    pixel_loop(forward, model, n, 2)
    _, c_wall, c_cpu = clock(lambda: pixel_loop(forward, model, n, ref_pixels))
    c_wall, c_cpu = c_wall * dims / ref_pixels, c_cpu * dims / ref_pixels
    print(f"  (c) tf.function loop: {ref_pixels} pixels -> {c_wall:.0f} s for {dims}", flush=True)

    a_wall, a_cpu = a_wall * scale, a_cpu * scale
    speedup = a_wall / b_wall
    print(f"  speed-up (a)/(b) = {speedup:.0f}x wall, {a_cpu / b_cpu:.0f}x CPU; (c)/(b) = {c_wall / b_wall:.1f}x "
          f"(goal {GOALS[name]:.0f}x)", flush=True)
    return {
        "model": {"run": run, "config": model.get_config(), "parameters": model.count_params()},
        "images": n,
        "pixels_per_image": dims,
        "a_predict_loop": {"seconds": a_wall, "cpu_seconds": a_cpu, "images_per_second": n / a_wall,
                           "timed_pixels": pixels, "extrapolated": pixels < dims},
        "b_compiled_sampler": {"seconds": b_wall, "cpu_seconds": b_cpu, "images_per_second": n / b_wall,
                               "first_call_seconds_with_tracing": first_wall, "repeats": repeats},
        "c_compiled_forward_loop": {"seconds": c_wall, "cpu_seconds": c_cpu, "images_per_second": n / c_wall,
                                    "timed_pixels": ref_pixels, "extrapolated": ref_pixels < dims},
        "speedup_a_over_b": speedup,
        "speedup_a_over_b_cpu": a_cpu / b_cpu,
        "speedup_c_over_b": c_wall / b_wall,
        "goal_speedup_a_over_b": GOALS[name],
        "goal_met": speedup >= GOALS[name],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transformer-run", help="a `tfgen train pixel_transformer` run directory")
    parser.add_argument("--pixelcnn-run", help="a `tfgen train pixelcnn` run directory")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--baseline-pixels", type=int, default=200, help="pixels of (a) to time")
    parser.add_argument("--reference-pixels", type=int, default=50, help="pixels of (c) to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of (b) (median)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    runs = {"pixel_transformer": args.transformer_run, "pixelcnn": args.pixelcnn_run}
    load_before = load_average()
    result = {
        "command": public_command("ar_sampling", argv, paths=("--transformer-run", "--pixelcnn-run", "--out")),
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__},
    }
    for name in args.models.split(","):
        result[name] = bench(name, runs[name], args.n, args.baseline_pixels, args.reference_pixels, args.repeats)
    # Other processes share this machine: the load average says how much the wall clock is to be trusted.
    result["machine"]["load_average_1min"] = [load_before, load_average()]
    merge_results(Path(args.out), KEY, result)
    print(f"wrote {args.out} [{KEY!r}]")


if __name__ == "__main__":
    main()
