"""The machine a benchmark runs on: its description (`machine`) and, per dtype, its dense matmul and 3×3
convolution FLOP/s (`matmul_peak`, `conv_peak`), the references that training FLOP/s are compared against."""

from __future__ import annotations

import os
import platform
import statistics
import time

import tensorflow as tf

from tfgen.runs import versions

MATMUL_SIZE = 2048
#: (images, height, width, channels) of the reference convolution: a typical 28×28 layer of the models here.
CONV_SHAPE = (64, 28, 28, 64)


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


def compute_dtype(precision: str) -> str:
    """The dtype a Keras policy computes in: `mixed_bfloat16` → `bfloat16`, `float32` → `float32`.

    Under a mixed policy the weights stay float32 but the matmuls and convolutions run in the
    compute dtype, so that dtype's peak is the one a step can reach.
    """
    return precision.removeprefix("mixed_")


def _median_seconds(fn, repeats: int) -> tuple[float, float]:
    """(median, fastest) seconds of `repeats` calls of `fn`, after a tracing call and one untimed run."""
    for _ in range(2):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # eager execution is synchronous on CPU: the op has finished when the call returns
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), min(seconds)


def matmul_peak(size: int = MATMUL_SIZE, repeats: int = 10, dtype: str = "float32") -> dict:
    """Dense matmul FLOP/s of this machine in `dtype`: a compiled `size`×`size` matmul, median of `repeats`."""
    a = tf.cast(tf.random.stateless_normal([size, size], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([size, size], seed=[3, 4]), dtype)
    matmul = tf.function(tf.matmul)
    median, best = _median_seconds(lambda: matmul(a, b), repeats)
    flops = 2.0 * size**3
    return {"size": size, "repeats": repeats, "gflops": flops / median / 1e9, "best_gflops": flops / best / 1e9,
            "dtype": dtype}


def conv_peak(dtype: str = "float32", repeats: int = 10, images: int = CONV_SHAPE[0]) -> dict:
    """3×3 convolution FLOP/s of this machine in `dtype` (SAME padding, compiled, median of `repeats`).

    The shape of a typical layer here: `images` 28×28 images of 64 channels → 64 channels.
    FLOPs: 2·N·H·W·C_in·C_out·9 (one multiply-add per kernel tap).
    """
    _, height, width, channels = CONV_SHAPE
    x = tf.cast(tf.random.stateless_normal([images, height, width, channels], seed=[5, 6]), dtype)
    kernel = tf.cast(tf.random.stateless_normal([3, 3, channels, channels], seed=[7, 8]), dtype)
    conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, strides=1, padding="SAME"))
    median, best = _median_seconds(lambda: conv(x, kernel), repeats)
    flops = 2.0 * images * height * width * channels * channels * 9
    return {"shape": [images, height, width, channels], "kernel": [3, 3, channels, channels], "repeats": repeats,
            "gflops": flops / median / 1e9, "best_gflops": flops / best / 1e9, "dtype": dtype}


def peaks(dtype: str, repeats: int = 10, matmul_size: int = MATMUL_SIZE) -> dict:
    """{"matmul": matmul_peak, "conv": conv_peak} in `dtype`."""
    return {"matmul": matmul_peak(matmul_size, repeats, dtype), "conv": conv_peak(dtype, repeats)}
