"""Timing training and sampling: per-batch `fit` times, repeated calls, and several models in alternating rounds."""

from __future__ import annotations

import inspect
import math
import statistics
import time

import keras
import numpy as np
import tensorflow as tf


class BatchTimer(keras.callbacks.Callback):
    """Per-batch wall times of `fit` (begin → end of each training batch)."""

    def __init__(self):
        super().__init__()
        self.begins, self.ends = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begins.append(time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def time_fit(model, dataset, steps: int, warmup: int) -> dict:
    """Train `warmup + steps` batches with `model.fit`; the median of the last `steps` batch times.

    `compile_seconds`: from the `fit` call to the end of the first batch (tracing,
    graph optimisation, the first step), less one steady step.
    """
    timer = BatchTimer()
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0, shuffle=False)
    times = [end - begin for begin, end in zip(timer.begins, timer.ends)]
    steady = times[warmup:] or times[-1:]
    median = statistics.median(steady)
    quartiles = np.percentile(steady, [25, 75])
    return {"step_seconds": median, "step_seconds_iqr": float(quartiles[1] - quartiles[0]),
            "first_step_seconds": times[0], "compile_seconds": max(timer.ends[0] - start - median, 0.0),
            "timed_steps": len(steady), "warmup_steps": warmup, "steady_step_seconds": steady}


def time_calls(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, median of `repeats` later calls)."""
    start = time.perf_counter()
    np.asarray(fn())
    first = time.perf_counter() - start
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn())
        seconds.append(time.perf_counter() - start)
    return first, statistics.median(seconds)


def held_batches(pipeline):
    """`batches(count)`: a dataset of the pipeline's next `count` batches, held in memory.

    Two models fit on the same `batches(...)` dataset read the same batches, so a
    comparison of their step times is not a comparison of their input.
    """
    data = iter(pipeline.repeat())

    def batches(count: int):
        return tf.data.Dataset.from_tensor_slices(tuple(tf.stack(t) for t in zip(*(next(data) for _ in range(count)))))

    return batches


def alternating_step_seconds(models: dict, batches, steps: int, rounds: int = 3) -> tuple[dict, int]:
    """({key: pooled steady step seconds}, steps per round) of compiled, warmed-up `models` ({key: model}).

    `rounds` rounds each time every model in turn for ~steps/rounds steps (one untimed step
    each) on the same fresh batches (`held_batches`), so that drifting machine load hits
    every model alike; compare the medians of the pooled times.
    """
    per_round = max(2, math.ceil(steps / rounds))
    seconds = {key: [] for key in models}
    for _ in range(rounds):
        chunk = batches(per_round + 1)
        for key, model in models.items():
            seconds[key] += time_fit(model, chunk, per_round, 1)["steady_step_seconds"]
    return seconds, per_round


def sample_settings(model) -> dict:
    """The defaults `model.sample(n)` runs with that decide its cost (e.g. diffusion steps)."""
    params = inspect.signature(model.sample).parameters
    settings = {name: params[name].default for name in ("steps", "sampler") if name in params}
    if hasattr(model, "num_dims") and "temperature" in params:
        settings["steps"] = int(model.num_dims)  # one network step per pixel
    return settings


def time_sampling(model, n: int, seed: int, repeats: int) -> dict:
    """Images/second of `model.sample(n)`: the median of `repeats` calls after a first (tracing) one."""
    first, seconds = time_calls(lambda: model.sample(n, seed=seed), repeats)
    return {"n": n, **sample_settings(model), "first_call_seconds": first, "seconds": seconds,
            "images_per_second": n / seconds, "repeats": repeats}
