"""How long does a diffusion model take to draw 64 images, and what does the fast way cost in quality?

On one trained network (the EMA weights of a `diffusion` run), in one process:

(a) the keras.io DDPM practice: 1000 ancestral steps, a Python loop that calls
    `network.predict` once per step with NumPy in between. Timed on the first
    `--ddpm-steps` steps (default 100) and extrapolated linearly to 1000 — every
    step is the same `predict` on the same batch shape, so the cost is linear;
    `--ddpm-steps 1000` times all of them;
(b) tfgen's default: `model.sample(64)` — DDIM, 50 steps, one compiled `tf.function`
    with a `tf.while_loop` (timed after a first, tracing call, which is reported too);
(c) the same 50 DDIM steps driven by the `predict` loop of (a).

All three are unconditional (labels=None), as in keras.io. With `--fid-samples N`
(default 256, 0 to skip) and the evaluator of `tfgen.eval`, it also scores (a) and (b)
by FID on evaluator features against the test split. The (a) samples for FID come
from tfgen's compiled DDPM sampler (`sampler="ddpm", steps=1000`): the same algorithm
as the predict loop, which would take hours for N images.

    python -m benchmarks.diffusion_sampling --run runs/diffusion-default [--fid-samples 256]

Merges its results under the "diffusion" key of benchmarks/results/sampling.json
(other keys, written by other benchmarks, are kept).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfgen  # noqa: E402
from tfgen import schedules  # noqa: E402
from tfgen.bench.hardware import load_average  # noqa: E402
from benchmarks.common import public_command  # noqa: E402
from benchmarks.sampling_results import RESULTS, merge_results  # noqa: E402

KEY = "diffusion"


def predict_loop_sample(model, n, timesteps, eta, seed=0, limit=None):
    """Reverse process as a Python loop with one `predict` per step (the keras.io pattern).

    Same update as `Diffusion.reverse_process` (DDIM; η = 1 on all timesteps is DDPM's
    ancestral sampler), in NumPy. `limit` stops after that many steps (for timing).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *model.image_shape)).astype(np.float32)
    labels = np.full(n, model.null_label, np.int32)
    alpha_bar = model.noise_schedule.alpha_bar
    done = 0
    for i in reversed(range(len(timesteps))):
        if limit is not None and done == limit:
            break
        t = int(timesteps[i])
        a, a_prev = alpha_bar[t], (alpha_bar[timesteps[i - 1]] if i > 0 else 1.0)
        out = model.ema_network.predict([x, np.full(n, t, np.int32), labels], batch_size=n, verbose=0)
        if model.prediction == "epsilon":
            x0 = (x - np.sqrt(1 - a) * out) / np.sqrt(a)
        else:
            x0 = np.sqrt(a) * x - np.sqrt(1 - a) * out
        x0 = np.clip(x0, -1, 1)
        eps = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
        sigma = eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        x = (np.sqrt(a_prev) * x0 + np.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
             + sigma * rng.standard_normal(x.shape)).astype(np.float32)
        done += 1
    return np.clip((x + 1) / 2, 0, 1), done


def timed(fn, repeats=1):
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best.append(time.perf_counter() - start)
    return result, float(np.median(best))


def fid_scores(model, n, seed):
    """FID (evaluator features) of DDPM-1000 and DDIM-50 samples against the test split; None if no evaluator."""
    try:
        from tfgen.eval.evaluator import get_evaluator
        from tfgen.eval.metrics import frechet_distance
    except ImportError as err:
        print(f"no FID: {err}", file=sys.stderr)
        return None
    from tfgen.data import load_arrays

    evaluator = get_evaluator("mnist_bundled")
    real, _ = load_arrays("mnist_bundled", "test")
    real_features = evaluator.features(real)
    scores = {"samples": n, "reference": f"mnist_bundled test split ({len(real)} images)",
              "evaluator_accuracy": evaluator.accuracy}
    batches = lambda sampler, steps: np.concatenate([
        np.asarray(model.sample(min(256, n - i), steps=steps, sampler=sampler, seed=seed + i))
        for i in range(0, n, 256)])
    for name, sampler, steps in (("a_ddpm_1000", "ddpm", 1000), ("b_ddim_50", "ddim", 50)):
        start = time.perf_counter()
        images = batches(sampler, steps)
        scores[name] = frechet_distance(evaluator.features(images), real_features)
        print(f"FID {name}: {scores[name]:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    # Reference point: FID between two halves of the real test split (the floor at this N).
    half = min(n, len(real) // 2)
    scores["real_vs_real"] = frechet_distance(real_features[:half], real_features[half:2 * half])
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a `tfgen train diffusion` run directory (default: an untrained default model)")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--ddpm-steps", type=int, default=100, help="steps of (a) to time before extrapolating")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of (b) (median)")
    parser.add_argument("--fid-samples", type=int, default=256)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    if args.run:
        from tfgen.runs import load_run

        model = load_run(args.run)
    else:
        model = tfgen.get_model("diffusion", "default", seed=0)
    n, total = args.n, model.timesteps
    print(f"model: {args.run or 'untrained default preset'}, {model.network.count_params():,} parameters", flush=True)

    # Warm-up: trace `predict` and the compiled sampler once, outside every timing.
    start = time.perf_counter()
    model.sample(n, steps=50, seed=0)
    first_call = time.perf_counter() - start
    predict_loop_sample(model, n, schedules.sampling_timesteps(total, 2), eta=0.0, limit=1)

    # (a) DDPM, 1000 ancestral steps, predict loop (timed on the first `ddpm_steps`).
    _, seconds = timed(lambda: predict_loop_sample(model, n, np.arange(total), eta=1.0, limit=args.ddpm_steps))
    a_seconds = seconds * total / args.ddpm_steps
    print(f"(a) {args.ddpm_steps} predict steps: {seconds:.1f} s -> {a_seconds:.0f} s for {total}", flush=True)
    # (b) DDIM 50 steps, compiled.
    _, b_seconds = timed(lambda: np.asarray(model.sample(n, steps=50, seed=1)), repeats=args.repeats)
    print(f"(b) compiled DDIM-50: {b_seconds:.2f} s (first call with tracing {first_call:.1f} s)", flush=True)
    # (c) DDIM 50 steps, predict loop.
    _, c_seconds = timed(lambda: predict_loop_sample(model, n, schedules.sampling_timesteps(total, 50), eta=0.0))
    print(f"(c) predict-loop DDIM-50: {c_seconds:.2f} s", flush=True)

    result = {
        "command": public_command("diffusion_sampling", argv, paths=("--run", "--out")),
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": load_average()},
        "model": {"run": args.run, "config": model.get_config(), "parameters": model.network.count_params()},
        "images": n,
        "a_ddpm_1000_predict_loop": {
            "seconds": a_seconds, "images_per_second": n / a_seconds,
            "timed_steps": args.ddpm_steps, "extrapolated": args.ddpm_steps < total},
        "b_ddim_50_compiled": {"seconds": b_seconds, "images_per_second": n / b_seconds,
                               "first_call_seconds_with_tracing": first_call},
        "c_ddim_50_predict_loop": {"seconds": c_seconds, "images_per_second": n / c_seconds},
        "speedup_a_over_b": a_seconds / b_seconds,
        "speedup_c_over_b": c_seconds / b_seconds,
        "speedup_a_over_c": a_seconds / c_seconds,
    }
    print(f"a/b = {result['speedup_a_over_b']:.0f}x, c/b = {result['speedup_c_over_b']:.1f}x", flush=True)
    if args.fid_samples:
        result["fid"] = fid_scores(model, args.fid_samples, seed=100)
    merge_results(Path(args.out), KEY, result)
    print(f"wrote {args.out} [{KEY!r}]")


if __name__ == "__main__":
    main()
