"""One model and preset under several dtype policies (float32, mixed_bfloat16, mixed_float16), timed in one run.

A model is built under each policy (same seed), compiled and warmed up; their training
steps are then timed in alternating rounds on the same batches held in memory
(`alternating_step_seconds`), so that a change in machine load hits every precision
alike and the speed-up is a ratio of medians measured side by side. The FLOPs of a step
are the same graph maths under every policy: they are counted once (by the caller, on
the first precision's step) and used for all.
"""

from __future__ import annotations

import statistics

import keras

from tfgen.bench.flops import step_function
from tfgen.bench.hardware import compute_dtype
from tfgen.bench.profile import profile_step
from tfgen.bench.timing import alternating_step_seconds, time_fit, time_sampling
from tfgen.precision import dtype_policy
from tfgen.registry import get_model_class

ROUNDS = 3


def peak_dtypes(precisions) -> list[str]:
    """The compute dtypes whose peaks a run measures: float32's always (the reference of the old figures)."""
    return list(dict.fromkeys(["float32", *(compute_dtype(p) for p in precisions)]))


def build_compiled(name: str, preset: str, precision: str, info, seed: int):
    """The model of (name, preset) built and compiled under the dtype policy `precision`, from `seed`."""
    keras.utils.set_random_seed(seed)
    with dtype_policy(precision):
        cls = get_model_class(name)
        unlabelled = cls.unlabelled_overrides() if info.num_classes == 0 else {}  # as `tfgen train` builds it
        model = cls.from_preset(preset, image_shape=info.image_shape, num_classes=max(info.num_classes, 1),
                                seed=seed, **unlabelled)
        model.default_compile(jit_compile=False)
    return model


def measure_precisions(entry: dict, precisions: list[str], batches, info, *, steps: int, warmup: int,
                       sample_repeats: int, seed: int = 0, profile: bool = False) -> dict:
    """{precision: {"train", "sample"[, "profile"]}} for `entry`, `measure`'s result (with `keep_model`)
    under `precisions[0]`: that model is reused, one more is built per other precision.

    batches: `held_batches(...)` of the training pipeline. Fractions of peak FLOP/s are left
    to the caller, which knows the peaks measured after every model too.
    """
    name, preset = entry["model"], entry["preset"]
    models = {precisions[0]: entry["_model"]}
    for precision in precisions[1:]:
        models[precision] = build_compiled(name, preset, precision, info, seed)
        time_fit(models[precision], batches(warmup + 1), 1, warmup)  # tracing and warm-up, untimed
    seconds, per_round = alternating_step_seconds(models, batches, steps, ROUNDS)
    rows = {}
    for precision, model in models.items():
        step = statistics.median(seconds[precision])
        rows[precision] = {"compute_dtype": compute_dtype(precision), "train": {
            "images_per_second": entry["batch_size"] / step, "step_seconds": step,
            "steady_step_seconds": seconds[precision], "rounds": ROUNDS, "steps_per_round": per_round,
            "gflops": entry["_flops"]["total"] / step / 1e9}}
        rows[precision]["sample"] = (entry["sample"] if model is entry["_model"] else
                                     time_sampling(model, entry["sample"]["n"], seed, sample_repeats))
        if profile:
            rows[precision]["profile"] = (dict(entry["profile"]) if model is entry["_model"] else
                                          _profile(model, entry, info))  # a copy: its summary is against its dtype
    if "float32" in rows:
        for row in rows.values():
            row["train"]["speedup_vs_float32"] = rows["float32"]["train"]["step_seconds"] / row["train"]["step_seconds"]
    return rows


def _profile(model, entry: dict, info) -> dict:
    fn, _ = step_function(model.train_step, entry["batch_size"], info.image_shape)
    return profile_step(fn, entry["_batch"], flops=entry["_flops"])


def fill_fractions(by_precision: dict, peaks: dict) -> None:
    """Each precision's training FLOP/s as a fraction of its compute dtype's matmul peak and of float32's."""
    for precision, row in by_precision.items():
        train = row["train"]
        train["fraction_of_dtype_peak"] = train["gflops"] / peaks[compute_dtype(precision)]["reference_gflops"]
        train["fraction_of_float32_peak"] = train["gflops"] / peaks["float32"]["reference_gflops"]
