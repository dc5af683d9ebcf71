"""Training and sampling throughput: the measurement core of `tfgen bench` and benchmarks/throughput.py.

For one registered model and preset, `measure` reports

* steady-state training images/second through `model.fit` (the path `tfgen train`
  uses, fed by the same `tf.data` pipeline): per-batch times from a callback, the
  median over the batches after `warmup`; the first batch's tracing and
  compilation is reported separately (`compile_seconds`);
* sampling images/second: `model.sample(n)` after a first (tracing) call;
* FLOPs per training step, counted on the traced graph of `train_step` (see
  `count_step_flops`), and the achieved FLOP/s as a fraction of the machine's
  dense fp32 matmul FLOP/s (`matmul_peak`, measured in the same process);
* with several precisions (`run(precisions=...)`), the same training and sampling
  figures under each dtype policy, timed side by side, against each compute dtype's
  own matmul peak and float32's;
* peak memory (resident set size, sampled while the model is built, trained and
  sampled: see `MemoryWatcher`);
* how much of the step time is spent waiting for input (see `input_wait`);
* optionally (`profile=True`), where the step time goes: TensorFlow's profiler,
  time per op type next to the FLOPs of that op type (`profile_step`).

`run` measures several models and presets and `render_markdown` writes the table.

This module times training and sampling and puts one measurement together; the rest
is in submodules, whose public names are re-exported here:

* `tfgen.bench.hardware` — `machine`, `matmul_peak`, `conv_peak` (the reference FLOP/s, per dtype);
* `tfgen.bench.timing` — `time_fit`, `time_calls`, several models timed in alternating rounds;
* `tfgen.bench.precisions` — one model under several dtype policies (`--precision float32,mixed_bfloat16`);
* `tfgen.bench.memory` — `MemoryWatcher` and RSS readings;
* `tfgen.bench.flops` — `count_step_flops` on a traced step (`step_function`);
* `tfgen.bench.profile` — `profile_step`, `summarize_profile`;
* `tfgen.bench.report` — `render_markdown`, `write_results`, and the project's FLOP goal
  (`flop_goal`: benchmarks/throughput.py's, not part of `run`'s measurements).
"""

from __future__ import annotations

import datetime
import gc
import math
import statistics
import time

import keras
import tensorflow as tf

from tfgen import data as tfdata
from tfgen.bench.flops import FLOPS_METHOD, count_step_flops, step_function
from tfgen.bench.hardware import MATMUL_SIZE, compute_dtype, conv_peak, machine, matmul_peak, peaks
from tfgen.bench.memory import MEMORY_METHOD, MemoryWatcher, max_rss_bytes
from tfgen.bench.precisions import build_compiled, fill_fractions, measure_precisions, peak_dtypes
from tfgen.bench.profile import profile_step, summarize_profile
from tfgen.bench.report import _fmt, flop_goal, render_markdown, write_results
from tfgen.bench.timing import alternating_step_seconds, held_batches, time_calls, time_fit, time_sampling
from tfgen.checks import positive_int
from tfgen.precision import check_policies
from tfgen.registry import get_model_class, list_models

INPUT_WAIT_METHOD = ("1 − (median step time on one batch held in memory) / (median step time fed by the training "
                     "pipeline), clipped at 0; both through the same compiled fit step, in alternating rounds. Also "
                     "the pipeline alone: seconds per batch when it is iterated with no model")



# ---------------------------------------------------------------------- data
def training_pipeline(batch_size: int, steps: int, dataset: str = tfdata.BUNDLED_NAME, seed: int = 0,
                      data_options: dict | None = None):
    """The batches `tfgen train` feeds (`tfgen.data.pipeline.training_batches`), enough for `steps` steps.

    data_options: how `dataset` is read (`tfgen.data.load_examples`' image_size, channels, ...), as
    `tfgen train --image-size/--channels` read it: the models are then built at that image shape.
    """
    from tfgen.data.pipeline import training_batches

    examples = tfdata.load_examples(dataset, "train", **(data_options or {}))
    if examples.info.num_examples < batch_size:  # full batches only, as `tfgen train` trains
        raise ValueError(f"{dataset} has {examples.info.num_examples} training examples, fewer than one batch of "
                         f"{batch_size}: use a smaller batch size")
    epochs = math.ceil(steps * batch_size / examples.info.num_examples) + 1
    return training_batches(examples, batch_size, seed, 0, epochs * (examples.info.num_examples // batch_size)), \
        examples.info


def pipeline_seconds_per_batch(dataset, batches: int) -> float:
    """Median seconds per batch of iterating `dataset` alone (after its first batch, which fills the shuffle buffer)."""
    iterator = iter(dataset)
    next(iterator)
    seconds = []
    for _ in range(batches):
        start = time.perf_counter()
        next(iterator)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


# ---------------------------------------------------------------------- timing
def input_wait(model, batch, batch_size: int, steps: int, dataset: str, seed: int, rounds: int = 2,
               data_options: dict | None = None) -> dict:
    """The share of a training step spent waiting for the input pipeline (see `INPUT_WAIT_METHOD`).

    The compiled step is timed fed by the training pipeline and fed one batch held in
    memory, in alternating rounds, so that a change in machine load hits both alike.
    """
    held = tf.data.Dataset.from_tensors(batch).repeat()
    per_round = max(2, steps // (2 * rounds))
    fed, in_memory = [], []
    for r in range(rounds):
        pipeline, _ = training_pipeline(batch_size, per_round + 1, dataset, seed + 1 + r, data_options)
        fed += time_fit(model, pipeline, per_round, 1)["steady_step_seconds"]
        in_memory += time_fit(model, held, per_round, 1)["steady_step_seconds"]
    fed_seconds, memory_seconds = statistics.median(fed), statistics.median(in_memory)
    alone = pipeline_seconds_per_batch(training_pipeline(batch_size, steps + 1, dataset, seed, data_options)[0], steps)
    return {
        "wait_fraction": max(0.0, 1.0 - memory_seconds / fed_seconds),
        "wait_fraction_signed": 1.0 - memory_seconds / fed_seconds,
        "step_seconds_pipeline_fed": fed_seconds, "step_seconds_in_memory_batch": memory_seconds,
        "rounds": rounds, "steps_per_round": per_round,
        "pipeline_alone_seconds_per_batch": alone, "pipeline_alone_fraction_of_step": alone / fed_seconds,
    }


def _batch_from(dataset):
    return next(iter(dataset))


# ---------------------------------------------------------------------- one model
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


# ---------------------------------------------------------------------- many models
def plan(models=None, presets=None) -> list[tuple[str, str]]:
    """(model, preset) pairs: every registered model and preset, narrowed by the given names.

    A preset name that a model lacks is skipped for that model; a name no model has is an error.
    """
    registered = list_models()
    models = list(models or registered)
    for name in models:
        get_model_class(name)  # a clear error for an unknown model
    pairs = [(m, p) for m in models for p in registered[m] if not presets or p in presets]
    missing = [p for p in presets or () if not any(p == q for _, q in pairs)]
    if missing:
        raise ValueError(f"no selected model has preset(s) {', '.join(missing)}")
    return pairs


def run(models=None, presets=None, *, steps: int = 20, warmup: int = 3, sample_n: int | None = None,
        sample_repeats: int = 3, matmul_repeats: int = 10, matmul_size: int = MATMUL_SIZE,
        precisions=("float32",), profile_presets=("default",), command: str = "",
        dataset: str = tfdata.BUNDLED_NAME, data_options: dict | None = None, batch_size: int | None = None,
        log=print, each=None) -> dict:
    """Measure every (model, preset) of `plan(models, presets)`; the results dict `render_markdown` takes.

    precisions: dtype policies to measure each model under (`float32`, `mixed_bfloat16`,
        `mixed_float16`). The entry's own figures are the first's; with more than one, or with
        one other than float32, `entry["by_precision"]` holds every precision's, timed in
        alternating rounds (`tfgen.bench.precisions`), and `results["peaks"]` each compute
        dtype's matmul and convolution peaks.
    batch_size: every model's (default: each family's `FIT_DEFAULTS`, what `tfgen train` uses).
    dataset, data_options: the data the models train on and how it is read (`training_pipeline`):
        each model is built at its image shape and class count. On data without labels the
        models that need labels (cGAN, cVAE) are left out, with a line to `log`.
    each(name, preset, entry): called after each measurement (before the model is released),
    e.g. to measure a baseline of the same architecture while it is at hand.

    The results hold measurements only; benchmarks/throughput.py adds the project's FLOP goal
    (`flop_goal`) to its own results.
    """
    for arg, value in (("steps", steps), ("warmup", warmup), ("sample_repeats", sample_repeats),
                       ("sample_n", sample_n or 1), ("matmul_repeats", matmul_repeats), ("matmul_size", matmul_size),
                       ("batch_size", batch_size or 1)):
        positive_int(value, arg)
    precisions = check_policies(precisions)
    pairs = plan(models, presets)
    data_options = dict(data_options or {})
    pairs = _labelled_or_skipped(pairs, dataset, data_options, log)
    dtypes = peak_dtypes(precisions)
    before = {dtype: peaks(dtype, matmul_repeats, matmul_size) for dtype in dtypes}
    for dtype, peak in before.items():
        log(f"{dtype}: matmul {matmul_size}×{matmul_size} {peak['matmul']['gflops']:.1f} GFLOP/s, "
            f"3×3 conv {peak['conv']['gflops']:.1f} GFLOP/s")
    results = {
        "command": command, "date": datetime.datetime.now().isoformat(timespec="minutes"), "machine": machine(),
        "dataset": dataset, "data_options": data_options, "settings": {"steps": steps, "warmup": warmup, "sample_n": sample_n,
                                         "sample_repeats": sample_repeats, "jit_compile": False,
                                         "precisions": precisions},
        "matmul": {"before": before["float32"]["matmul"]}, "methods": {
            "flops": FLOPS_METHOD, "memory": MEMORY_METHOD, "input_wait": INPUT_WAIT_METHOD},
        "models": {},
    }
    options = {"steps": steps, "warmup": warmup, "sample_n": sample_n, "sample_repeats": sample_repeats,
               "batch_size": batch_size,
               "dataset": dataset, "data_options": data_options, "peak_gflops": before["float32"]["matmul"]["gflops"]}
    for name, preset in pairs:
        entry = _measure_pair(name, preset, precisions, options, profile=preset in (profile_presets or ()),
                              each=each, log=log)
        results["models"].setdefault(name, {})[preset] = entry
        keras.backend.clear_session()
        gc.collect()
    after = {dtype: peaks(dtype, matmul_repeats, matmul_size) for dtype in dtypes}
    _set_references(results, before, after)
    return results


def _labelled_or_skipped(pairs, dataset: str, data_options: dict, log) -> list:
    """`pairs` without the models that need labels when `dataset` has none (said in one `log` line)."""
    if tfdata.load_examples(dataset, "train", **data_options).info.num_classes:
        return pairs
    needs_labels = sorted({name for name, _ in pairs if get_model_class(name).requires_labels})
    if needs_labels:
        log(f"{dataset} has no labels: {', '.join(needs_labels)} left out (they need labels)")
    return [(name, preset) for name, preset in pairs if name not in needs_labels]


def _measure_pair(name: str, preset: str, precisions: list[str], options: dict, *, profile: bool, each, log) -> dict:
    """`measure` under the first precision, then every precision side by side (if more than float32 alone)."""
    start = time.perf_counter()
    compare = precisions != ["float32"]
    entry = measure(name, preset, profile=profile, keep_model=each is not None or compare, precision=precisions[0],
                    **options)
    if compare:
        pipeline, info = training_pipeline(entry["batch_size"], 10 * (options["warmup"] + options["steps"]),
                                           options["dataset"], data_options=options["data_options"])
        entry["by_precision"] = measure_precisions(
            entry, precisions, held_batches(pipeline), info, steps=options["steps"], warmup=options["warmup"],
            sample_repeats=options["sample_repeats"], profile=profile)
    if each is not None:
        each(name, preset, entry)
    for key in [k for k in entry if k.startswith("_")]:
        del entry[key]
    entry["wall_seconds"] = time.perf_counter() - start
    t = entry["train"]
    # No "% of matmul" here: the table's is of the faster of the matmul measured before and after
    # the models, not known yet; a figure against `before` alone would disagree with it.
    log(f"{name}/{preset}: {t['images_per_second']:.0f} train images/s, {t['gflops']:.1f} GFLOP/s, "
        f"sample {entry['sample']['images_per_second']:.1f} images/s, "
        f"input wait {entry['input']['wait_fraction']:.1%} ({entry['wall_seconds']:.0f} s)")
    for precision, row in entry.get("by_precision", {}).items():
        speedup = row["train"].get("speedup_vs_float32")
        log(f"  {precision}: {row['train']['images_per_second']:.0f} train images/s"
            + (f" (× {speedup:.2f} float32)" if speedup else "")
            + f", sample {row['sample']['images_per_second']:.1f} images/s")
    return entry


def _set_references(results: dict, before: dict, after: dict) -> None:
    """Each dtype's reference peaks (the faster of before and after the models: a busy machine slows the
    peak measurement too, and the larger figure gives the smaller, cautious fraction), then every
    fraction of peak and profile summary, which depend on them."""
    results["peaks"] = {dtype: {
        "matmul": {"before": before[dtype]["matmul"], "after": after[dtype]["matmul"]},
        "conv": {"before": before[dtype]["conv"], "after": after[dtype]["conv"]},
        "reference_gflops": max(before[dtype]["matmul"]["gflops"], after[dtype]["matmul"]["gflops"]),
        "conv_reference_gflops": max(before[dtype]["conv"]["gflops"], after[dtype]["conv"]["gflops"]),
    } for dtype in before}
    reference = results["peaks"]["float32"]["reference_gflops"]
    results["matmul"].update(after=after["float32"]["matmul"], reference_gflops=reference)
    for presets_ in results["models"].values():
        for entry in presets_.values():
            entry["train"]["fraction_of_matmul_peak"] = entry["train"]["gflops"] / reference
            if "profile" in entry:
                entry["profile"]["summary"] = summarize_profile(entry["profile"], reference)
            fill_fractions(entry.get("by_precision", {}), results["peaks"])
            for precision, row in entry.get("by_precision", {}).items():
                if "profile" in row:
                    dtype_reference = results["peaks"][compute_dtype(precision)]["reference_gflops"]
                    row["profile"]["summary"] = summarize_profile(row["profile"], dtype_reference)


def quick_settings() -> dict:
    """What `--quick` means: few steps, one sampling call, `default` presets only (unless presets are given)."""
    return {"steps": 5, "warmup": 2, "sample_n": 16, "sample_repeats": 1, "matmul_repeats": 5}


def split_names(text: str | None) -> list[str] | None:
    """"a,b" → ["a", "b"]; empty or None → None (everything)."""
    return [t for t in text.split(",") if t] if text else None


def options_from_args(args) -> tuple[list[str] | None, list[str] | None, dict]:
    """(models, presets, settings) for `run` from parsed `--models`, `--presets`, `--quick`, `--steps`,
    `--warmup`, `--sample-n`, `--precision`: the options `tfgen bench` and benchmarks/throughput.py share."""
    settings = {"steps": 20, "warmup": 3, "sample_n": None, "sample_repeats": 3, "matmul_repeats": 10,
                "precisions": check_policies(split_names(getattr(args, "precision", None)) or ["float32"])}
    if args.quick:
        settings.update(quick_settings())
    for key in ("steps", "warmup", "sample_n"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    presets = split_names(args.presets) or (["default"] if args.quick else None)
    return split_names(args.models), presets, settings


__all__ = ["measure", "run", "plan", "matmul_peak", "conv_peak", "peaks", "measure_precisions",
           "held_batches", "alternating_step_seconds", "time_calls", "count_step_flops", "profile_step", "render_markdown",
           "write_results", "MemoryWatcher", "time_fit", "training_pipeline", "step_function", "quick_settings",
           "split_names", "options_from_args", "flop_goal",
           "_fmt"]  # benchmarks/throughput.py formats its baseline table with bench._fmt
