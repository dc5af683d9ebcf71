"""What the benchmarks run as `python -m benchmarks.NAME` share: how results name data and commands.

Results files are read on other machines: they name a `folder:`, `idx:` or `npz:`
dataset by its last path component (`folder:/home/me/data/emoji` → `folder:emoji`,
the name the README gives that folder), and a command line without this
machine's directories.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def public_dataset_name(name: str) -> str:
    """`name` with the path of a `folder:`, `idx:` or `npz:` dataset cut to its last component."""
    from tfgen.data import path_of

    path = path_of(name)
    if path is None:
        return name
    return name[:len(name) - len(path)] + Path(path.rstrip("/")).name


def public_path(path) -> str:
    """A file or run directory named without this machine's directories: its last two components."""
    parts = Path(path).parts
    return str(Path(*parts[-2:])) if len(parts) > 1 else str(path)


def public_command(module: str, argv=None, paths=(), datasets=()) -> str:
    """`python -m benchmarks.MODULE ARGS` with the values of the options in `paths` cut by `public_path`
    and those in `datasets` by `public_dataset_name` (both as `--opt VALUE` and `--opt=VALUE`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out, cut = [], None
    for arg in argv:
        if cut is not None:
            out.append(cut(arg))
            cut = None
            continue
        option, equals, value = arg.partition("=")
        how = public_path if option in paths else public_dataset_name if option in datasets else None
        if how is not None and equals:
            out.append(f"{option}={how(value)}")
        else:
            out.append(arg)
            cut = how
    return " ".join(["python -m", f"benchmarks.{module}", *out])


def read_history(run_dir) -> list[dict]:
    """A run's history.csv (what `tfgen train` writes each epoch) as one dict of floats per epoch."""
    with open(Path(run_dir) / "history.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def run_tfgen(*args, log=None) -> None:
    """Run `python -m tfgen ARGS` (the user's command line, this interpreter's tfgen); raise if it fails.
    Its output goes to the file `log` (appended) if given, else to this process's terminal."""
    argv = [sys.executable, "-m", "tfgen", *map(str, args)]
    if log is None:
        subprocess.run(argv, check=True)
        return
    with open(log, "a") as out:
        subprocess.run(argv, check=True, stdout=out, stderr=subprocess.STDOUT)
