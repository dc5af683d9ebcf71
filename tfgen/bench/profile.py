"""Where a training step's time goes: TensorFlow's profiler, time per op type next to its FLOPs."""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import tempfile
import time

import tensorflow as tf

from tfgen.bench.flops import DENSE_KERNELS, kernel_type


def profile_step(fn, batch, steps: int = 3, flops: dict | None = None, peak_gflops: float | None = None) -> dict:
    """Where a training step's time goes: TensorFlow's profiler over `steps` calls of `fn(batch)`.

    Returns op types by self time (summed over the threads that ran them) with their
    share of all op time, their FLOPs per step and the FLOP rate they achieve while
    running, and the slowest single ops. `flops` is `count_step_flops`'s result for `fn`.
    """
    rows, wall = _profiled_ops(fn, batch, steps)
    by_name = (flops or {}).get("_by_name", {})
    total_us = sum(r["total_self_time"] for r in rows) or 1.0
    time_by_type, flops_by_type = collections.Counter(), collections.Counter()
    for r in rows:
        kind = kernel_type(r["type"])
        time_by_type[kind] += r["total_self_time"]
    for kind, value in (flops or {}).get("by_op_type", {}).items():
        flops_by_type[kind] += value

    def rate(flop_count, us):
        return flop_count / (us / steps * 1e-6) / 1e9 if us else None

    op_types = []
    for kind, us in time_by_type.most_common(12):
        entry = {"op_type": kind, "share_of_op_time": us / total_us, "ms_per_step": us / steps / 1e3,
                 "gflop_per_step": flops_by_type.get(kind, 0.0) / 1e9,
                 "gflops_while_running": rate(flops_by_type.get(kind, 0.0), us)}
        op_types.append(entry)
    slowest = []
    for r in sorted(rows, key=lambda r: -r["total_self_time"])[:5]:
        f = by_name.get(r["operation"], 0.0)
        slowest.append({"op": r["operation"], "type": r["type"], "ms_per_step": r["total_self_time"] / steps / 1e3,
                        "share_of_op_time": r["total_self_time"] / total_us,
                        "gflops_while_running": rate(f, r["total_self_time"]) if f else None})
    other = sum(us for kind, us in time_by_type.items() if kind not in DENSE_KERNELS)
    by_category = collections.Counter()
    for r in rows:
        by_category[op_category(r["type"], r["operation"])] += r["total_self_time"]
    result = {"categories": {c: by_category[c] / total_us for c in CATEGORIES},
              "steps": steps, "op_ms_per_step": total_us / steps / 1e3, "wall_ms_per_step": wall * 1e3,
              "overlap": total_us / steps / 1e6 / wall, "op_types": op_types, "slowest_ops": slowest,
              "share_of_op_time_outside_conv_and_matmul": other / total_us,
              "note": "self time of each op summed over the threads that ran it (TensorFlow's framework_op_stats); "
                      "ops overlap on several cores, so op time can exceed wall time (overlap = op time / wall "
                      "time, with the profiler on)"}
    if peak_gflops:
        result["summary"] = summarize_profile(result, peak_gflops)
    return result


#: Where a step's time goes, coarsely: what `op_category` files each profiled op under.
CATEGORIES = ("conv", "matmul", "cast", "norm", "optimiser", "other")
CONV_KERNELS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative")
#: The name scopes Keras' optimisers put their update ops under (`adam_3/AssignSubVariableOp_6`, `sgd/...`).
OPTIMIZER_SCOPE = re.compile(r"(adam|adamw|adamax|nadam|sgd|rmsprop|adagrad|adadelta|adafactor|ftrl|lion|lamb"
                             r"|loss_scale_optimizer|\w*optimizer\w*)(_\d+)?", re.IGNORECASE)


def op_category(kind: str, name: str) -> str:
    """The category of `CATEGORIES` a profiled kernel (type `kind`, op `name`) belongs to.

    By kernel type: convolutions (oneDNN's `_MklNativeConv2DBackpropFilter` too), matmuls
    (MatMul, BatchMatMul, Einsum), casts (`Cast`: what a mixed policy adds); then by name:
    optimiser (ops under an optimiser's name scope, or variable updates: `Assign*`,
    `ResourceApply*`), normalisation (`norm` in the op's name or type: `norm1/moments/mean`,
    `FusedBatchNormV3`, `LayerNorm`, including their gradients); everything else is "other"
    (elementwise arithmetic, activations, reductions, copies).
    """
    base = kernel_type(kind)
    if base in CONV_KERNELS:
        return "conv"
    if base in DENSE_KERNELS:
        return "matmul"
    if base == "Cast":
        return "cast"
    if OPTIMIZER_SCOPE.fullmatch(name.split("/", 1)[0]) or base.startswith(("Assign", "ResourceApply", "Apply")):
        return "optimiser"
    if "norm" in name.lower() or "norm" in base.lower():
        return "norm"
    return "other"


def format_categories(categories: dict) -> str:
    """"conv 40% · matmul 10% · cast 8% · norm 12% · optimiser 5% · other 25%" """
    return " · ".join(f"{c} {categories[c]:.0%}" for c in CATEGORIES if c in categories)


def _profiled_ops(fn, batch, steps: int):
    """(TensorFlow's framework_op_stats rows for `steps` calls of `fn(batch)`, idle time left out; wall s/step)."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    fn(batch)  # untimed: any first-call work stays out of the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            start = time.perf_counter()
            for _ in range(steps):
                fn(batch)
            wall = (time.perf_counter() - start) / steps
        finally:
            tf.profiler.experimental.stop()
        xplanes = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        tables = json.loads(plugin.xspace_to_tools_data(xplanes, "framework_op_stats", {})[0])
    rows = []
    for table in tables:
        names = [c["id"] for c in table["cols"]]
        rows = [dict(zip(names, [cell["v"] if cell else None for cell in r["c"]])) for r in table["rows"]]
        if all(r["type"] != "IDLE" for r in rows):
            break  # the table without idle time
    return [r for r in rows if r["type"] != "IDLE"], wall


def summarize_profile(profile: dict, peak_gflops: float) -> str:
    """One sentence: which op types hold the time, and how fast they run against the matmul peak."""
    parts = []
    for entry in profile["op_types"][:3]:
        text = f"{entry['op_type']} {entry['share_of_op_time']:.0%} of op time"
        if entry["gflops_while_running"]:
            rate = entry["gflops_while_running"]
            text += f" at {rate:.0f} GFLOP/s ({rate / peak_gflops:.0%})"
        parts.append(text)
    text = "; ".join(parts) + (f"; ops other than convolutions and matmuls (elementwise, normalisation, "
                                f"optimiser) {profile['share_of_op_time_outside_conv_and_matmul']:.0%}")
    worst = [op for op in profile["slowest_ops"] if op["gflops_while_running"] is not None]
    if worst:
        op = worst[0]
        text += (f"; slowest op {op['op']} ({op['type']}) {op['ms_per_step']:.1f} ms/step at "
                 f"{op['gflops_while_running']:.1f} GFLOP/s")
    return text
