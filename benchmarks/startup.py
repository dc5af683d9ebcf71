"""How long `tfgen` takes to answer what needs no TensorFlow, against importing TensorFlow.

    python -m benchmarks.startup [--repeats 5]

Runs each command in a fresh interpreter `--repeats` times (interleaved, so a busy
machine slows them alike) and writes the medians to benchmarks/results/startup.json
and startup.md (README.md embeds the table: benchmarks/render_readme.py). The unit
test tests/test_cli.py checks the same ratio on three of them, without figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

from benchmarks import common

RESULTS = common.RESULTS / "startup.json"
COMMANDS = {
    "tfgen --help": ["-m", "tfgen", "--help"],
    "tfgen --version": ["-m", "tfgen", "--version"],
    "tfgen list": ["-m", "tfgen", "list"],
    "tfgen train vea (an argument error)": ["-m", "tfgen", "train", "vea"],
    'python -c "import tensorflow"': ["-c", "import tensorflow"],
}


def seconds(args) -> float:
    env = {**os.environ, "PYTHONPATH": str(common.ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, timeout=600)
    return time.perf_counter() - start


def measure(repeats: int) -> dict:
    times = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, args in COMMANDS.items():
            times[name].append(seconds(args))
    return {name: statistics.median(values) for name, values in times.items()}


def markdown(data: dict) -> str:
    tf_seconds = data["median_seconds"]['python -c "import tensorflow"']
    lines = [f"Measured with `python -m benchmarks.startup` on {data['date']}, {data['cpus']} CPU cores, "
             f"median of {data['repeats']} fresh processes each.", "",
             "| command | seconds | of `import tensorflow` |", "|---|---:|---:|"]
    for name, value in data["median_seconds"].items():
        lines.append(f"| `{name}` | {value:.2f} | {value / tf_seconds:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from tfgen.io import write_json, write_text

    data = {"date": datetime.datetime.now().isoformat(timespec="minutes"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "repeats": args.repeats, "median_seconds": measure(args.repeats)}
    write_json(RESULTS, data)
    write_text(RESULTS.with_suffix(".md"), markdown(data))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
