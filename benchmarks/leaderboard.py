"""Leaderboard: every registered model, trained for the same wall-clock budget, scored the same way.

    nice -n 10 python -m benchmarks.leaderboard --minutes 2                      # bundled digits
    python -m benchmarks.leaderboard --minutes 10 --dataset idx:/usr/share/datasets/fashion-mnist
    python -m benchmarks.leaderboard --name own_images --dataset folder:DIR --image-size 32   # your images
    python -m benchmarks.leaderboard --models pixelcnn --steps 300 --precision mixed_bfloat16

For each model (its `default` preset unless --preset): train on the dataset's
train split until the budget is spent (a `TimeBudget` callback stops `fit`
mid-epoch; the first step, tracing, is not counted), then `tfgen.eval.scoring` with
one evaluator and one sample count for all. `--steps N` replaces the time budget
by exactly N optimiser steps (a `StepBudget` callback), the first N batches of an
order fixed by --seed alone. `--precision` builds the models under that Keras
dtype policy (default float32). Writes, under --out
(default benchmarks/results/):

    NAME.json               machine, budget, date, command, and every model's scores
    NAME.md                 the Markdown table (README.md embeds it: benchmarks/render_readme.py)
    samples/<model>.png     a sample grid per model (one row per class for models that take labels;
                            samples/NAME_<model>.png when --name is not "leaderboard")

NAME is --name (default `leaderboard`). --image-size and --channels read the dataset as
`tfgen train` does (e.g. a folder of colour images at 32×32).

Each model trains with its own default batch size (`FIT_DEFAULTS`, what `tfgen
train` uses) unless --batch-size is given. With `--save-models DIR`, each trained
model is also saved as DIR/<model>/model.keras, a directory that `tfgen sample`,
`tfgen eval` and the sampling benchmarks accept as a run.

Results are written after each model, so an interrupted run keeps what it finished.
A model that fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import RESULTS, public_command
from tfgen.precision import POLICIES  # loads neither Keras nor TensorFlow

#: Training budget per model when neither --minutes nor --steps is given.
DEFAULT_MINUTES = 3.0


def machine() -> dict:
    from tfgen.bench.hardware import cpu_model

    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
            "python": platform.python_version()}


def train_for(model_name, preset, dataset, seconds, batch_size, seed, data_options=None, *, steps=None,
              precision="float32"):
    """Build and train one model for `seconds` of wall-clock time or for exactly `steps` optimiser steps
    (give one of the two); return (model, training facts).

    The model is built and compiled under the dtype policy `precision` (`tfgen.precision`). The
    batches and their order are a function of `seed` alone, made before the model: runs that differ
    only in precision train on the same batches in the same order.
    """
    import keras

    import tfgen
    from tfgen import data as tfdata
    from tfgen.callbacks import StepBudget, TimeBudget
    from tfgen.bench.hardware import load_average
    from tfgen.precision import dtype_policy

    if (seconds is None) == (steps is None):
        raise ValueError(f"train for a number of seconds or of steps, not both nor neither; got seconds={seconds!r}, "
                         f"steps={steps!r}")
    keras.utils.set_random_seed(seed)
    batch_size = batch_size or tfgen.get_model_class(model_name).FIT_DEFAULTS["batch_size"]
    train_ds, info = tfdata.load(dataset, "train", batch_size, seed, with_info=True, drop_remainder=True,
                                 **(data_options or {}))
    unlabelled = tfgen.get_model_class(model_name).unlabelled_overrides() if info.num_classes == 0 else {}
    with dtype_policy(precision):
        model = tfgen.get_model(model_name, preset, image_shape=info.image_shape,
                                num_classes=max(info.num_classes, 1), seed=seed, **unlabelled)
        model.default_compile()
    # The first step (tracing) is not counted: on a busy machine it can take a good part of a short budget.
    budget = (StepBudget(steps, exclude_first_batch=True) if steps is not None
              else TimeBudget(seconds, exclude_first_batch=True))
    load_before = load_average()
    history = model.fit(train_ds, epochs=1_000_000, callbacks=[budget], verbose=0)
    steps = budget.batches
    facts = {
        "train_seconds": round(budget.elapsed(), 1),
        "first_step_seconds": round(budget.first_batch_seconds or 0.0, 1),
        "epochs": round(steps * batch_size / info.num_examples, 2),
        "steps": steps,
        "batch_size": batch_size,
        "precision": precision,
        "images_per_second": round(steps * batch_size / max(budget.elapsed(), 1e-9), 1),
        "params": int(model.count_params()),
        "class_names": list(info.class_names),
        # A shared machine's load says how much of the budget the model really had.
        "load_average_1min": {"start": load_before, "end": load_average()},
        "final_logs": {k: float(v[-1]) for k, v in history.history.items() if k != "elapsed_seconds"},
    }
    return model, facts


def train_and_score(name, *, preset, dataset, seed, evaluator, n, ks, n_likelihood, data_options=None,
                    seconds=None, steps=None, batch_size=None, precision="float32", grid=None):
    """`train_for` one model, then score it with `tfgen.eval.scoring.evaluate`; return (model, entry, reference).

    entry: the training facts and `scores`; reference: the real-data scores of the same
    evaluation. grid: a path to save a sample grid to (drawn with seed + 1), or None.
    """
    from tfgen.eval.scoring import evaluate, format_table

    model, facts = train_for(name, preset, dataset, seconds, batch_size, seed, data_options, steps=steps,
                             precision=precision)
    print(f"    {facts['steps']} steps ({facts['epochs']} epochs) in {facts['train_seconds']} s", flush=True)
    result = evaluate(model, dataset=dataset, n=n, seed=seed, evaluator=evaluator, ks=ks, data_kwargs=data_options,
                      n_likelihood=n_likelihood)
    print(format_table(result), flush=True)
    reference = result.pop("reference")
    if grid is not None:
        save_sample_grid(model, grid, seed + 1, facts["class_names"])
    return model, {"preset": preset, **facts, "scores": result}, reference


def save_sample_grid(model, path, seed, class_names=()) -> None:
    """100 samples of `model` as a grid (a block of rows per class for models that take labels)."""
    from tfgen.plotting import class_row_labels, sample_for_grid, save_grid

    images, ncols = sample_for_grid(model, 100, seed=seed)
    save_grid(images, path, ncols=ncols, row_labels=class_row_labels(model, None, list(class_names) or None, n=100))


def run(args) -> dict:
    import keras

    import tfgen
    from tfgen.eval.evaluator import get_evaluator
    from tfgen.io import write_json, write_text

    out = Path(args.out)
    names = args.models.split(",") if args.models else list(tfgen.list_models())
    data_options = {k: v for k, v in (("image_size", args.image_size), ("channels", args.channels)) if v}
    evaluator = get_evaluator(args.dataset, directory=args.evaluator_dir, data_kwargs=data_options)
    ks = tuple(int(k) for k in args.k.split(","))
    board = {
        "title": f"tfgen leaderboard on {args.dataset}",
        "dataset": args.dataset,
        "data_options": data_options,
        "budget_minutes_per_model": args.minutes,
        "steps_per_model": args.steps,
        "precision": args.precision,
        "preset": args.preset,
        "n_samples": args.n,
        "iwae_k": max(ks),
        "evaluator": {k: evaluator.meta.get(k) for k in ("dataset", "test_accuracy", "train_examples",
                                                          "test_examples", "feature_dim", "epochs", "augment")},
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": public_command("leaderboard", paths=("--save-models", "--evaluator-dir", "--out"),
                                  datasets=("--dataset",)),
        "machine": machine(),
        "versions": _versions(),
        "fid_note": "FID/KID/precision/recall are computed on the evaluator classifier's features, not Inception",
        "models": {},
    }
    if args.merge and (out / f"{args.name}.json").exists():
        # Keep the models of an earlier run with the same settings (e.g. models run in separate batches).
        import json

        earlier = json.loads((out / f"{args.name}.json").read_text())
        if all(earlier.get(k, default) == board[k] for k, default in MERGE_SETTINGS.items()):
            board["models"] = {k: v for k, v in earlier["models"].items() if k not in names}
            board["reference"] = earlier.get("reference")
            board["command"] = f"{earlier['command']} ; {board['command']}"
    for name in names:
        print(f"=== {name}: training {_budget_text(board)} ({args.preset} preset) on {args.dataset}", flush=True)
        grid = out / "samples" / (f"{name}.png" if args.name == "leaderboard" else f"{args.name}_{name}.png")
        try:
            model, entry, board["reference"] = train_and_score(
                name, preset=args.preset, dataset=args.dataset, seed=args.seed, evaluator=evaluator, n=args.n, ks=ks,
                n_likelihood=args.n_likelihood, data_options=data_options,
                seconds=None if args.steps else args.minutes * 60, steps=args.steps, batch_size=args.batch_size,
                precision=args.precision, grid=grid)
            entry["samples"] = str(grid.relative_to(out))
            if args.save_models:
                from tfgen.io import save_model

                save_model(model, Path(args.save_models) / name / "model.keras")
        except Exception as err:  # record and go on: one broken model must not sink the board
            traceback.print_exc()
            entry = {"preset": args.preset, "error": f"{type(err).__name__}: {err}"}
        board["models"][name] = entry
        write_json(out / f"{args.name}.json", board)
        write_text(out / f"{args.name}.md", markdown(board))
        keras.backend.clear_session()
    return board


#: The settings two boards must share for --merge, with their value in boards written before they existed.
MERGE_SETTINGS = {"dataset": None, "data_options": {}, "budget_minutes_per_model": None, "steps_per_model": None,
                  "precision": "float32", "preset": None, "n_samples": None}


def _budget_text(board: dict) -> str:
    """"2 min of wall-clock time" or "500 optimiser steps", and the precision when it is not float32."""
    steps = board.get("steps_per_model")
    text = (f"{steps} optimiser steps" if steps else
            f"{board['budget_minutes_per_model']:g} min of wall-clock time")
    precision = board.get("precision", "float32")
    return text if precision == "float32" else f"{text} in `{precision}` precision"


def _versions():
    from tfgen.runs import versions

    return versions()


def number_cell(value, fmt="{:.3g}"):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def markdown(board: dict) -> str:
    """The leaderboard as a Markdown section: table, reference row, and how it was made."""
    rows = [
        "| model | params | trained (time, epochs, images/s) | FID (eval.) ↓ | KID ×10³ ↓ | class. score ↑ | precision ↑ | recall ↑ "
        "| cond. acc. ↑ | NLL nats ↓ (bits/dim) | likelihood data |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def order(item):
        s = item[1].get("scores")
        return s["fid"] if s else math.inf

    for name, e in sorted(board["models"].items(), key=order):
        if "error" in e:
            rows.append(f"| {name} | – | – | failed: {e['error'][:80]} | | | | | | | |")
            continue
        s = e["scores"]
        nll = headline_nll(s)
        rows.append(
            f"| {name} | {e['params'] / 1e6:.2f}M | {e['train_seconds']:.0f} s, {e['epochs']:.1f} ep"
            f"{_speed_text(e.get('images_per_second'))} "
            f"| {number_cell(s['fid'])} "
            f"| {number_cell(s['kid'] * 1e3, '{:.2f}')} ± {number_cell(s['kid_std'] * 1e3, '{:.2f}')} "
            f"| {number_cell(s['classifier_score'], '{:.2f}')} | {number_cell(s['precision'], '{:.2f}')} "
            f"| {number_cell(s['recall'], '{:.2f}')} | {number_cell(s.get('conditional_accuracy'), '{:.3f}')} "
            f"| {nll_text(s)} | {s.get('data_variant', '–') if nll is not None else '–'} |"
        )
    ref = board.get("reference")
    if ref:
        rows.append(
            f"| *real data (train vs test)* | | | {number_cell(ref['fid'])} "
            f"| {number_cell(ref['kid'] * 1e3, '{:.2f}')} ± {number_cell(ref['kid_std'] * 1e3, '{:.2f}')} "
            f"| {number_cell(ref['classifier_score'], '{:.2f}')} | {number_cell(ref['precision'], '{:.2f}')} "
            f"| {number_cell(ref['recall'], '{:.2f}')} | {number_cell(ref.get('conditional_accuracy'), '{:.3f}')} | | |"
        )
    m, ev = board["machine"], board["evaluator"]
    loads = [v for e in board["models"].values() for v in (e.get("load_average_1min") or {}).values()
             if v is not None]
    load_text = (f" 1-minute load average during training {min(loads):.1f}–{max(loads):.1f} (the machine is shared: "
                 f"a load above {m['nproc']} means each model got less than the whole budget of CPU)."
                 if loads else "")
    notes = [
        "",
        f"Each model: `{board['preset']}` preset, trained for {_budget_text(board)} "
        f"on `{board['dataset']}`{_options_text(board.get('data_options'))}, then scored on {board['n_samples']} samples against the test split. "
        f"FID, KID, precision/recall (Kynkäänniemi et al. 2019, k=3) and the classifier score are computed on the "
        f"features of a small CNN evaluator trained on the same dataset (test accuracy "
        f"{100 * ev['test_accuracy']:.2f}%) — **not Inception FID**, so not comparable with published FIDs. "
        f"The *real data* row scores {board['n_samples']} real training images the same way: the floor for "
        f"distances at this sample count. Models that take labels sample with balanced labels. "
        f"NLL: exact for autoregressive models, an IWAE upper bound on −log p(x) for VAEs, each on the data "
        f"variant shown.",
        "",
        f"Machine: {m['nproc']} × {m['cpu']}; {board['date']}; tfgen {board['versions'].get('tfgen')}, "
        f"TensorFlow {board['versions'].get('tensorflow')}.{load_text} Command: `{board['command']}`. "
        f"Sample grids: `benchmarks/results/samples/`.",
    ]
    return "\n".join(rows + notes) + "\n"


def headline_nll(scores: dict):
    """The NLL in nats the board shows: exact where the model has one, else the VAE's IWAE bound; None if neither."""
    return scores.get("nll_nats", scores.get("iwae_nats"))


def nll_text(scores: dict) -> str:
    """"nats (bits/dim)", marked as a bound for a VAE's IWAE; "–" for models without a likelihood."""
    nll = headline_nll(scores)
    if nll is None:
        return "–"
    bound = "" if "nll_nats" in scores else f" (IWAE k={scores['iwae_k']}, bound)"
    return f"{nll:.1f} ({scores['bits_per_dim']:.3f}){bound}"


def _speed_text(images_per_second) -> str:
    # Boards written before this column existed have no images/s.
    return "" if images_per_second is None else f", {images_per_second:.0f} img/s"


def _options_text(options) -> str:
    if not options:
        return ""
    return " read with " + ", ".join(f"{k}={v}" for k, v in options.items())


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, help=f"training budget per model (wall clock; default {DEFAULT_MINUTES:g})")
    p.add_argument("--steps", type=int, help="train each model for exactly this many optimiser steps instead")
    # The dtype policies, not `tfgen train`'s `auto`: a board states one policy, the same for every model.
    p.add_argument("--precision", choices=POLICIES, default="float32",
                   help="the dtype policy the models are built under (default float32)")
    p.add_argument("--dataset", default="mnist_bundled")
    p.add_argument("--image-size", type=int, help="read the dataset at this size (e.g. 32 for a folder of images)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="read the dataset with this many channels")
    p.add_argument("--name", default="leaderboard", help="results file names: NAME.json, NAME.md")
    p.add_argument("--models", help="comma-separated model names (default: every registered model)")
    p.add_argument("--preset", default="default")
    p.add_argument("--n", type=int, default=2000, help="samples per model")
    p.add_argument("--k", default="1,50", help="importance samples for VAE bounds")
    p.add_argument("--n-likelihood", type=int, default=1000, help="test images for likelihoods")
    p.add_argument("--batch-size", type=int, help="default: each model's own (tfgen list)")
    p.add_argument("--save-models", help="also save each trained model as DIR/<model>/model.keras")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluator-dir")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--merge", action="store_true",
                   help="keep other models' entries of an existing leaderboard.json made with the same settings")
    p.add_argument("--render-only", action="store_true", help="rewrite leaderboard.md from leaderboard.json")
    args = p.parse_args(argv)
    if args.steps is not None and args.minutes is not None:
        p.error(f"--steps {args.steps} and --minutes {args.minutes:g} are two training budgets: give one of them")
    if args.steps is not None and args.steps <= 0:
        p.error(f"--steps must be a positive integer, got {args.steps}")
    if args.steps is None and args.minutes is None:
        args.minutes = DEFAULT_MINUTES
    return args


def render_only(args) -> None:
    import json

    from tfgen.io import write_text

    out = Path(args.out)
    write_text(out / f"{args.name}.md", markdown(json.loads((out / f"{args.name}.json").read_text())))
    print(f"wrote {out / (args.name + '.md')}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.time()
    args = parse_args()
    if args.render_only:
        render_only(args)
        sys.exit(0)
    run(args)
    print(f"done in {time.time() - start:.0f} s")
