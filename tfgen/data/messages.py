"""Warnings about data that loads but is probably not what the user meant."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_DATA_PACKAGE = str(Path(__file__).parent)


class DataWarning(UserWarning):
    """Data that loads, with something the user should know (skipped files, empty classes)."""


def warn(message: str) -> None:
    """One `DataWarning`, attributed to the caller of `tfgen.data.load` rather than to tfgen's internals."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_DATA_PACKAGE):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, DataWarning, stacklevel=level)


def ranges(values) -> str:
    """Sorted integers as compact ranges: [0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    values = sorted(int(v) for v in values)
    parts, start = [], None
    for i, value in enumerate(values):
        start = value if start is None else start
        if i + 1 == len(values) or values[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)
