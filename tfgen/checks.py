"""Argument checks shared by every module: one wording for every "expected X, got Y".

Each check returns the value it accepted (converted where that is safe, e.g. a
NumPy integer to `int`), so a call reads as an assignment:

    steps = positive_int(steps, "steps")
    name = one_of(name, SAMPLERS, "sampler")

Every failure is a `ValueError` on one line naming the argument, what was
expected and what was given; an unknown name is an `UnknownNameError` (also a
`ValueError`) that lists the choices and suggests the nearest one, so a typo
such as `vea` answers "did you mean 'vae'?".

This module imports nothing heavy (no TensorFlow), so that the command line can
validate its arguments before paying for TensorFlow's import.
"""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Iterable


class UnknownNameError(ValueError):
    """A name (model, preset, dataset, sampler, ...) that tfgen does not know."""


def _is_int(value) -> bool:
    # bool is an Integral subclass; True as a size is almost surely a bug.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """An integer > 0 (sizes, counts, steps, epochs); NumPy integers are accepted."""
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(values, name: str, what: str = "") -> tuple[int, ...]:
    """A non-empty tuple or list of integers > 0 (widths per level, ...); `what` says what each one is."""
    items = tuple(values) if isinstance(values, (tuple, list)) else ()
    if not items or not all(_is_int(v) and v > 0 for v in items):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers{what}, got {values!r}")
    return tuple(int(v) for v in items)


def int_at_least(value, name: str, minimum: int) -> int:
    """An integer >= `minimum` (a seed: 0; a number of splits: 2)."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_number(value, name: str) -> float:
    """A real number > 0 (learning rates, temperatures, scales)."""
    if not _is_number(value) or not value > 0:  # `not >` also refuses NaN
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def number_at_least(value, name: str, minimum: float) -> float:
    """A real number >= `minimum` (a guidance scale: 0)."""
    if not _is_number(value) or not value >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum}, got {value!r}")
    return float(value)


def fraction(value, name: str, *, closed: bool = True) -> float:
    """A number in [0, 1] (`closed`), or in (0, 1) when not `closed` (rates, decays, probabilities)."""
    ok = _is_number(value) and (0 <= value <= 1 if closed else 0 < value < 1)
    if not ok:
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def did_you_mean(name, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice to a mistyped `name`, else ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(name, choices: Iterable[str], what: str, plural: str | None = None, *,
                 owner: str | None = None) -> UnknownNameError:
    """The error for an unknown `what` (e.g. "model"): lists the choices and suggests the nearest.

    `owner` names what the choices belong to ("unknown preset 'x' for 'vae'"). Returned,
    not raised, so that callers write `raise unknown_name(...) from None`.
    """
    choices = list(choices)
    of = f" for {owner!r}" if owner else ""
    return UnknownNameError(f"unknown {what} {name!r}{of}{did_you_mean(name, choices)}; "
                            f"choose from {', '.join(map(str, choices))}")


def one_of(value, choices: Iterable[str], what: str):
    """`value` if it is one of `choices`, else an `UnknownNameError` suggesting the nearest."""
    choices = list(choices)
    if value not in choices:
        raise unknown_name(value, choices, what)
    return value


def int_between(value, name: str, low: int, high: int, high_means: str = "") -> int:
    """An integer in [low, high]; `high_means` says what the upper bound is, for the message."""
    if not _is_int(value) or not low <= value <= high:
        what = f" ({high_means})" if high_means else ""
        raise ValueError(f"{name} must be an integer in [{low}, {high}]{what}, got {value!r}")
    return int(value)


def fraction_below_one(value, name: str) -> float:
    """A number in [0, 1) (a dropout rate, an EMA decay: 1 would freeze or drop everything)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def parse_image_size(image_size):
    """The one reading of an image size option: None -> None; an int (square), a (height, width) pair of
    positive ints, or a command-line string '32' or '48x64' (height x width) -> (height, width).

    Which sizes a model can use is the model's question (`GenerativeModel.check_image_size`)."""
    if image_size is None:
        return None
    if isinstance(image_size, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?", image_size)
        if not match:
            raise ValueError(f"image size must be N or HxW with positive integers (e.g. 32 or 48x64), "
                             f"got {image_size!r}")
        image_size = (int(match[1]), int(match[2] or match[1]))
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        return tuple(positive_int(side, "image_size") for side in image_size)
    try:
        side = positive_int(image_size, "image_size")
    except ValueError:
        raise ValueError(f"image_size must be a positive integer or a (height, width) pair of positive integers, "
                         f"got {image_size!r}") from None
    return side, side


def check_channels(channels):
    """None (as stored), 1 (grey) or 3 (RGB)."""
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    return channels
