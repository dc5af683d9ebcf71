"""Score the trained presets that ship with tfgen, from the shipped files: the numbers `tfgen list` and the README show.

    python -m benchmarks.pretrained                               # every shipped preset
    python -m benchmarks.pretrained --only digits/cgan,digits/vae --n 500
    python -m benchmarks.pretrained --data folder:emoji=folder:/path/to/emoji   # where the emoji folder is here

Each preset is loaded as a user loads it (`tfgen.from_preset(NAME)`, its sha256 checked), timed drawing 16
images (the first call, which traces the sampling function, and a second one), and scored as `tfgen eval`
scores a run (`tfgen.eval.scoring.evaluate`, the data set's evaluator: FID, KID, precision/recall, and the
conditional accuracy of models that take labels; no likelihoods), on the data set and image options its
metadata.json names. A preset whose data is not on this machine (the emoji folder cannot ship) is timed but
not scored unless --data maps its data set to a path. Writes

    benchmarks/results/pretrained.json   machine, date, command, and every preset's figures
    benchmarks/results/pretrained.md     the table the README's "Trained models" section shows
    benchmarks/results/samples/pretrained_<dataset>_<family>.png   a grid of each (a row per class)

and the figures into each preset's metadata.json ("metrics"; the sha256 covers the weights file only).
Timings are of the machine it runs on: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_dataset_name


def machine() -> dict:
    from tfgen.bench.hardware import cpu_model

    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
            "python": platform.python_version()}


def measure(name: str, n: int, datasets: dict[str, str], grid_dir) -> dict:
    """One preset's figures: timings, and the evaluation's scores when its data set is here."""
    import numpy as np

    import tfgen
    from tfgen.eval.scoring import balanced_labels, evaluate
    from tfgen.plotting import class_row_labels, sample_for_grid, save_grid

    meta = tfgen.pretrained.read_metadata(name)
    start = time.perf_counter()
    model = tfgen.from_preset(name)
    figures = {"load_seconds": time.perf_counter() - start}
    labels = balanced_labels(16, model.num_classes) if model.accepts_labels else None
    for key, seed in (("first_sample_16_seconds", 0), ("sample_16_seconds", 1)):
        start = time.perf_counter()
        np.asarray(model.sample(16, labels=labels, seed=seed))
        figures[key] = time.perf_counter() - start
    images, ncols = sample_for_grid(model, 100, seed=0)
    save_grid(images, grid_dir / f"pretrained_{name.replace('/', '_')}.png", ncols=ncols,
              row_labels=class_row_labels(model, None, meta.get("class_names"), n=100))
    dataset = datasets.get(meta["dataset"], meta["dataset"])
    try:
        result = evaluate(model, dataset=dataset, n=n, seed=0, likelihood=False,
                          data_kwargs=_data_kwargs(meta.get("data_options")), verbose=0)
    except (FileNotFoundError, ValueError) as err:  # the data set is not on this machine
        figures["not_scored"] = " ".join(str(err).split())[:200]
        return figures
    for key in ("fid", "kid", "precision", "recall", "conditional_accuracy"):
        if isinstance(result.get(key), (int, float)):
            figures[key] = float(result[key])
    figures["n"] = n
    return figures


def _data_kwargs(options) -> dict:
    options = dict(options or {})
    if isinstance(options.get("image_size"), list):
        options["image_size"] = tuple(options["image_size"])
    return options


def _public_data(argv) -> list[str]:
    """argv with each --data DATASET=HERE's HERE named without this machine's directories."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--data" and "=" in out[i + 1]:
            name, here = out[i + 1].split("=", 1)
            out[i + 1] = f"{name}={public_dataset_name(here)}"
    return out


def render_markdown(board: dict) -> str:
    lines = ["| preset | images | params | weights MB | FID ↓ | precision ↑ | recall ↑ | cond. acc. ↑ | "
             "sample 16 (s), first call | trained by |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]

    def cell(value, fmt):
        return "–" if value is None else format(value, fmt)

    for name, row in board["presets"].items():
        lines.append(f"| `{name}` | {row['images']} | {row['parameters'] / 1e6:.2f}M | {row['weights_mb']:.1f} | "
                     f"{cell(row.get('fid'), '.3g')} | {cell(row.get('precision'), '.2f')} | "
                     f"{cell(row.get('recall'), '.2f')} | {cell(row.get('conditional_accuracy'), '.3f')} | "
                     f"{row['sample_16_seconds']:.2f}, {row['first_sample_16_seconds']:.1f} | `{row['command']}` |")
    return "\n".join(lines) + (f"\n\n{board['machine']['nproc']} CPU cores ({board['machine']['cpu']}), "
                               f"{board['date']}. Command: `{board['command']}`.\n")


def main(argv=None) -> None:
    import tfgen
    from tfgen.io import write_json, write_text

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated preset names (default: every shipped one)")
    p.add_argument("--n", type=int, default=1000, help="samples scored per preset (default 1000)")
    p.add_argument("--data", action="append", default=[], metavar="DATASET=HERE",
                   help="where a preset's data set is on this machine, e.g. folder:emoji=folder:/data/emoji")
    p.add_argument("--out", default=str(RESULTS), help="results directory (default benchmarks/results)")
    args = p.parse_args(argv)
    shipped = tfgen.pretrained.shipped()
    names = args.only.split(",") if args.only else list(shipped)
    for name in names:
        tfgen.pretrained.resolve(name)  # an unknown name: one line listing the shipped ones
    datasets = dict(item.split("=", 1) for item in args.data)
    out = Path(args.out)
    board = {"title": "Trained presets shipped with tfgen, scored from the shipped files", "machine": machine(),
             "date": datetime.date.today().isoformat(), "n": args.n,
             "command": public_command("pretrained", _public_data(sys.argv[1:] if argv is None else argv),
                                       paths=("--out",)),
             "presets": {}}
    for name in names:
        meta = tfgen.pretrained.read_metadata(name)
        print(f"{name}: loading, timing, scoring", flush=True)
        figures = measure(name, args.n, datasets, out / "samples")
        tfgen.pretrained.write_metrics(name, figures)
        board["presets"][name] = {**figures, "images": "x".join(map(str, meta["image_shape"])),
                                  "dataset": meta["dataset"], "parameters": meta["parameters"],
                                  "weights_mb": meta["weights_bytes"] / 1e6, "command": meta["command"],
                                  "sha256": meta["sha256"]}
        write_json(out / "pretrained.json", board)  # after each preset: an interrupted run keeps what it did
    write_text(out / "pretrained.md", render_markdown(board))
    print(render_markdown(board))


if __name__ == "__main__":
    main()
