"""The machine a benchmark runs on: its description (`machine`) and its dense fp32 matmul FLOP/s (`matmul_peak`),
the reference that training FLOP/s are compared against."""

from __future__ import annotations

import os
import platform
import statistics
import time

import tensorflow as tf

from tfgen.runs import versions

MATMUL_SIZE = 2048


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows, else "unknown"."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average, rounded (None where the OS has none): how shared the machine was."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def machine() -> dict:
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), **versions(), "load_average_1min": load_average()}


def matmul_peak(size: int = MATMUL_SIZE, repeats: int = 10) -> dict:
    """Dense fp32 matmul FLOP/s of this machine: a compiled `size`×`size` matmul, median of `repeats`."""
    a = tf.random.stateless_normal([size, size], seed=[1, 2])
    b = tf.random.stateless_normal([size, size], seed=[3, 4])
    matmul = tf.function(tf.matmul)
    for _ in range(2):
        matmul(a, b)  # trace, then one untimed run
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b)  # eager execution is synchronous on CPU: the op has finished when the call returns
        seconds.append(time.perf_counter() - start)
    flops = 2.0 * size**3
    return {"size": size, "repeats": repeats, "gflops": flops / statistics.median(seconds) / 1e9,
            "best_gflops": flops / min(seconds) / 1e9, "dtype": "float32"}
