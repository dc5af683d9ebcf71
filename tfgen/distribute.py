"""Choosing a `tf.distribute` strategy by name.

* `auto`: MirroredStrategy over all GPUs when there are several, the one GPU
  when there is one, else the default (CPU) strategy;
* `one`: one device (the first GPU if any);
* `mirrored`: MirroredStrategy over all local GPUs (or all local logical CPUs);
* `multiworker`: MultiWorkerMirroredStrategy configured from the `TF_CONFIG`
  environment variable (one process per host). It must be made before any
  other TensorFlow op runs in the process (`tfgen.train` makes it first); every
  worker runs the same command, and only the chief writes files (`is_chief`).
"""

from __future__ import annotations

import tensorflow as tf

from tfgen.checks import one_of

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
_MADE: dict[str, tf.distribute.Strategy] = {}


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    if one_of(name, STRATEGIES, "strategy") == "multiworker":
        # Made before anything else touches the TensorFlow runtime (listing devices does):
        # collective ops must be configured at program start-up, so there is one per process.
        if "multiworker" not in _MADE:
            _MADE["multiworker"] = tf.distribute.MultiWorkerMirroredStrategy()
        return _MADE["multiworker"]
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if gpus:
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes files: always, except on the non-chief workers of a multi-worker run.

    Without `strategy`: the process's multi-worker strategy if it made one, else the current one.
    The chief is the `chief` task of `TF_CONFIG`, or worker 0 when the cluster has no
    `chief`. Every worker runs the same steps (their collective ops must match);
    only the chief writes the run directory.
    """
    strategy = strategy or _MADE.get("multiworker") or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)
