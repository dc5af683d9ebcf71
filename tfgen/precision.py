"""Numeric precision and XLA compilation settings of a training run.

* `precision`: the Keras dtype policy the model is built under.
  `float32`; `mixed_float16` (float16 compute, float32 weights: GPUs with
  tensor cores; every optimiser — a GAN's two included — is wrapped in a
  `LossScaleOptimizer` so that small float16 gradients do not underflow);
  `mixed_bfloat16` (bfloat16 compute: TPUs, recent CPUs and GPUs; float32's
  exponent range, so no loss scaling). Either way the models' final layers,
  sampled images and all loss maths stay float32.
* `jit_compile`: XLA compilation of the training step. `on`, `off`, or `auto`
  (Keras' own choice: XLA on a GPU with one device, never on CPU-only machines
  nor under a `tf.distribute` strategy).

A layer takes the global policy when it is built, so the policy only needs to
be in force while the model is constructed (or reloaded): `dtype_policy(...)`
sets it for a `with` block and puts the previous one back.
"""

from __future__ import annotations

import contextlib

import keras

from tfgen.checks import one_of, unknown_name

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = {"on": True, "off": False, "auto": "auto"}


def check_precision(name: str) -> str:
    return one_of(name, PRECISIONS, "precision")


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build models under the dtype policy `name` inside the block; restore the previous global policy after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(check_precision(name))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def jit_compile_setting(value):
    """`True`, `False` or `"auto"` (what `Model.compile(jit_compile=...)` takes) from a bool or on/off/auto."""
    if isinstance(value, bool):
        return value
    if value in JIT_COMPILE:
        return JIT_COMPILE[value]
    raise unknown_name(value, [*JIT_COMPILE, True, False], "jit_compile setting")
