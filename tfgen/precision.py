"""Numeric precision and XLA compilation settings of a training run.

* `precision`: the Keras dtype policy the model is built under.
  `float32`; `mixed_float16` (float16 compute, float32 weights: GPUs with
  tensor cores; every optimiser — a GAN's two included — is wrapped in a
  `LossScaleOptimizer` so that small float16 gradients do not underflow);
  `mixed_bfloat16` (bfloat16 compute: TPUs, recent CPUs and GPUs; float32's
  exponent range, so no loss scaling). Either way the models' final layers,
  sampled images and all loss maths stay float32.
  `auto` (what `tfgen train` uses unless told otherwise) is not a policy but a
  choice between two of them, made once when a run starts (`resolve_precision`):
  `mixed_bfloat16` for the presets that train faster in it at equal quality (listed
  in their class's `AUTO_BFLOAT16`) on devices that compute bfloat16 natively
  (`native_bfloat16`), `float32` otherwise.
* `jit_compile`: XLA compilation of the training step. `on`, `off`, or `auto`
  (Keras' own choice: XLA on a GPU with one device, never on CPU-only machines
  nor under a `tf.distribute` strategy).

A layer takes the global policy when it is built, so the policy only needs to
be in force while the model is constructed (or reloaded): `dtype_policy(...)`
sets it for a `with` block and puts the previous one back.

Importing this module loads neither Keras nor TensorFlow (the command line
checks `--precision` with it before they load); the functions that need them
import them.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from tfgen.checks import one_of, unknown_name

#: The Keras dtype policies a model can be built under.
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
#: What `--precision` and `tfgen.train(precision=...)` take: a policy, or "auto" to let tfgen choose one.
PRECISIONS = ("auto", *POLICIES)
JIT_COMPILE = {"on": True, "off": False, "auto": "auto"}
#: x86 CPU flags (as Linux's /proc/cpuinfo spells them) of instructions that compute in bfloat16:
#: AVX512-BF16 (dot products) and AMX-BF16 (tile matrix multiplies), both used by oneDNN.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: GPUs compute bfloat16 natively (tensor cores) from NVIDIA's Ampere generation, compute capability 8.0.
BFLOAT16_GPU_CAPABILITY = (8, 0)
CPUINFO = Path("/proc/cpuinfo")


def check_precision(name: str) -> str:
    """`name` if `--precision` takes it (a policy or "auto"), else an error listing what it takes."""
    return one_of(name, PRECISIONS, "precision")


def check_policy(name: str) -> str:
    """`name` if it is one of the dtype policies a model can be built under ("auto" is not one)."""
    return one_of(name, POLICIES, "precision")


def check_policies(names) -> list[str]:
    """`names` (policies to build or measure under), in order and each once; an unknown or missing one is an error."""
    checked = [check_policy(name) for name in names]
    if not checked:
        raise ValueError(f"precisions must name at least one of {', '.join(POLICIES)}")
    return list(dict.fromkeys(checked))


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build models under the dtype policy `name` inside the block; restore the previous global policy after."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(check_policy(name))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_precision(requested: str, model_cls, preset: str = "default") -> tuple[str, str]:
    """(the dtype policy to train `model_cls`'s `preset` under, one sentence saying why) for `--precision requested`.

    A policy asked for by name is used as it is. "auto" picks `mixed_bfloat16` when both
    the preset trains faster in it (listed in `model_cls.AUTO_BFLOAT16`) and the devices compute
    bfloat16 natively (`native_bfloat16()`); `float32` otherwise: emulated bfloat16 is
    slower than float32, and a family that gains nothing would only lose precision.
    """
    if check_precision(requested) != "auto":
        return requested, "asked for"
    family = f"{getattr(model_cls, 'registry_name', None) or model_cls.__name__} ({preset} preset)"
    if preset not in getattr(model_cls, "AUTO_BFLOAT16", ()):
        return "float32", (f"auto: float32 — {family} is not one measured faster at equal quality in "
                           "mixed_bfloat16 (README, training speed)")
    found = native_bfloat16()
    if found is None:
        return "float32", ("auto: float32 — this machine does not compute bfloat16 natively (no "
                           f"{' or '.join(BFLOAT16_CPU_FLAGS)} CPU, no GPU of compute capability "
                           f"{'.'.join(map(str, BFLOAT16_GPU_CAPABILITY))}+)")
    return "mixed_bfloat16", (f"auto: {family} trains faster in mixed_bfloat16 and this machine computes "
                              f"bfloat16 natively ({found})")


def native_bfloat16() -> str | None:
    """What makes the devices training runs on compute bfloat16 natively (e.g. "CPU avx512_bf16"), or None.

    With GPUs visible to TensorFlow, training runs on them: native if every one has
    compute capability 8.0 or more. Without, on the CPU: the flags of
    `BFLOAT16_CPU_FLAGS` in Linux's /proc/cpuinfo (other systems: None, not known).
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus]
        if all(c is not None and tuple(c) >= BFLOAT16_GPU_CAPABILITY for c in capabilities):
            return "GPU compute capability " + ", ".join(sorted({".".join(map(str, c)) for c in capabilities}))
        return None
    if not sys.platform.startswith("linux"):
        return None
    try:
        flags = cpu_bfloat16_flags(CPUINFO.read_text())
    except OSError:
        return None
    return f"CPU {', '.join(flags)}" if flags else None


def cpu_bfloat16_flags(cpuinfo: str) -> list[str]:
    """The `BFLOAT16_CPU_FLAGS` that every processor listed in the text of /proc/cpuinfo has."""
    processors = [set(line.partition(":")[2].split()) for line in cpuinfo.splitlines()
                  if line.partition(":")[0].strip() == "flags"]
    if not processors:
        return []
    return [flag for flag in BFLOAT16_CPU_FLAGS if all(flag in p for p in processors)]


def jit_compile_setting(value):
    """`True`, `False` or `"auto"` (what `Model.compile(jit_compile=...)` takes) from a bool or on/off/auto."""
    if isinstance(value, bool):
        return value
    if value in JIT_COMPILE:
        return JIT_COMPILE[value]
    raise unknown_name(value, [*JIT_COMPILE, True, False], "jit_compile setting")
