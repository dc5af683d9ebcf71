"""Choosing a `tf.distribute` strategy by name.

* `auto`: MirroredStrategy over all GPUs when there are several, the one GPU
  when there is one, else the default (CPU) strategy;
* `one`: one device (the first GPU if any);
* `mirrored`: MirroredStrategy over all local GPUs (or all local logical CPUs);
* `multiworker`: MultiWorkerMirroredStrategy configured from the `TF_CONFIG`
  environment variable (one process per host).
"""

from __future__ import annotations

import tensorflow as tf

from tfgen.registry import UnknownNameError

STRATEGIES = ("auto", "one", "mirrored", "multiworker")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    if name not in STRATEGIES:
        raise UnknownNameError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if gpus:
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    return tf.distribute.get_strategy()
