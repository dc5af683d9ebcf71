"""One model and preset measured: training and sampling speed, FLOPs, memory, input wait (`measure`).

The figures are put together from the other modules of `tfgen.bench`; see its docstring
for what each means and how it is taken.
"""

from __future__ import annotations

import keras

from tfgen import data as tfdata
from tfgen.bench.flops import count_step_flops, step_function
from tfgen.bench.inputs import input_wait, training_pipeline
from tfgen.bench.memory import MemoryWatcher, max_rss_bytes
from tfgen.bench.precisions import build_compiled
from tfgen.bench.profile import profile_step
from tfgen.bench.timing import time_fit, time_sampling
from tfgen.registry import get_model_class


def _batch_from(dataset):
    return next(iter(dataset))


def measure(name: str, preset: str = "default", *, batch_size: int | None = None, steps: int = 20, warmup: int = 3,
            sample_n: int | None = None, sample_repeats: int = 3, dataset: str = tfdata.BUNDLED_NAME, seed: int = 0,
            profile: bool = False, peak_gflops: float | None = None, keep_model: bool = False,
            precision: str = "float32", data_options: dict | None = None) -> dict:
    """Measure one model and preset (see the module docstring); returns a JSON-ready dict.

    batch_size: default the family's `FIT_DEFAULTS` (what `tfgen train` uses).
    sample_n: images per `sample` call (default: batch_size).
    precision: the dtype policy the model is built under (`tfgen.precision`).
    data_options: how `dataset` is read (see `training_pipeline`); the model is built at its image shape.
    keep_model: also return the model, a batch, the traced step and its FLOP count under "_model",
        "_batch", "_step_fn", "_flops" (not JSON).
    """
    cls = get_model_class(name)
    batch_size = batch_size or cls.FIT_DEFAULTS["batch_size"]
    sample_n = sample_n or batch_size
    keras.utils.set_random_seed(seed)
    entry = {"model": name, "preset": preset, "batch_size": batch_size, "dataset": dataset}
    with MemoryWatcher() as memory:
        pipeline, info = training_pipeline(batch_size, warmup + steps, dataset, seed, data_options)
        model = build_compiled(name, preset, precision, info, seed)
        entry["image_shape"], entry["num_classes"] = list(info.image_shape), info.num_classes
        entry["parameters"] = int(model.count_params())
        fit = time_fit(model, pipeline, steps, warmup)
        entry["train"] = {**fit, "images_per_second": batch_size / fit["step_seconds"]}

        batch = _batch_from(pipeline)
        entry["input"] = input_wait(model, batch, batch_size, steps, dataset, seed, data_options=data_options)

        entry["sample"] = time_sampling(model, sample_n, seed, sample_repeats)

        fn, concrete = step_function(model.train_step, batch_size, info.image_shape)
        flops = count_step_flops(concrete)
        if profile:
            entry["profile"] = profile_step(fn, batch, flops=flops, peak_gflops=peak_gflops)
    entry["memory"] = {"peak_rss_increase_mb": memory.peak_increase_mb, "process_peak_rss_mb": max_rss_bytes() / 2**20,
                       "method": memory.method}
    entry["flops"] = {k: v for k, v in flops.items() if not k.startswith("_")}
    entry["train"]["gflop_per_step"] = flops["total"] / 1e9
    entry["train"]["gflops"] = flops["total"] / fit["step_seconds"] / 1e9
    if peak_gflops:
        entry["train"]["fraction_of_matmul_peak"] = entry["train"]["gflops"] / peak_gflops
    if keep_model:  # for a caller that measures more on the same model (not JSON: removed by `run`)
        entry.update(_model=model, _batch=batch, _step_fn=fn, _flops=flops)
    return entry
