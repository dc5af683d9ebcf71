"""Several models and presets measured in one run (`run`): the results dict `render_markdown` takes.

The machine's reference FLOP/s are measured before and after the models (the faster is
kept: see `_set_references`); each model is measured by `tfgen.bench.measurement.measure`,
and, with several precisions, side by side under each (`tfgen.bench.precisions`).
"""

from __future__ import annotations

import datetime
import gc
import time

import keras

from tfgen import data as tfdata
from tfgen.bench.flops import FLOPS_METHOD
from tfgen.bench.hardware import MATMUL_SIZE, compute_dtype, machine, peaks
from tfgen.bench.inputs import INPUT_WAIT_METHOD, training_pipeline
from tfgen.bench.measurement import measure
from tfgen.bench.memory import MEMORY_METHOD
from tfgen.bench.precisions import fill_fractions, measure_precisions, peak_dtypes
from tfgen.bench.profile import summarize_profile
from tfgen.bench.timing import held_batches
from tfgen.checks import positive_int
from tfgen.precision import check_policies
from tfgen.registry import get_model_class, list_models


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
        "dataset": dataset, "data_options": data_options,
        "settings": {"steps": steps, "warmup": warmup, "sample_n": sample_n, "sample_repeats": sample_repeats,
                     "jit_compile": False, "precisions": precisions},
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
