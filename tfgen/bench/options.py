"""The settings of a throughput run from the options `tfgen bench` and benchmarks/throughput.py share.

Plain values in, plain values out: the callers own their argument parsers.
"""

from __future__ import annotations

from tfgen.precision import check_policies


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
