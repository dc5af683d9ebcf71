"""Completing held-out images: does each family's completion still show the original class?

    python -m benchmarks.completion runs/vae runs/diffusion runs/pixelcnn runs/gan      # digits, bottom half hidden
    python -m benchmarks.completion --n-for pixelcnn=50,pixel_transformer=50 runs/*    # fewer for the slow ones
    python -m benchmarks.completion --dataset folder:DIR --image-size 32 --name emoji emoji/*/model.keras

Each trained model (a `tfgen train` run directory or a `.keras` file; one per family) is given
the first --n images of the dataset's test split with part of each hidden — by default the
bottom half (`--mask bottom`) for grey images and a centre box of half the side for colour
ones (`--mask` takes every `tfgen complete --mask` spec) — and draws --completions
completions of each with `model.complete` (`tfgen.complete`), with the family's default
options. Per family it reports

* the accuracy with which the dataset's evaluator (the classifier `tfgen eval` scores with)
  recognises the image's *original* class in its completions;
* the same for the masked input alone, the hidden pixels set to the images' background colour
  (per channel, the median pixel): what the known part says with nothing filled in, the
  baseline a completion must beat; and for the originals, the ceiling;
* the mean squared error over the *known* sub-pixels between completion and image (0 for the
  families that paste the known pixels back; quantisation for the autoregressive ones);
* seconds per completion: wall clock of the calls after the first (which traces the compiled
  loop and is reported on its own), images completed --batch at a time;

and writes a grid per family, one row per image: the image, the masked input (hidden pixels
grey) and --grid-completions completions. A family that cannot complete (the GANs) is a row
saying why, in the family's own words. No model is told the image's class: a conditional one
(cvae) infers it from the known pixels (`VAE.class_posterior`). With --tell-class, models that take
classes are given the true one instead, a separate row marked "told the class" (not comparable
with the others: the class is what is being measured).

Results: benchmarks/results/completion{_NAME}.json (entries keyed by family; re-running a
family replaces its entry, others are kept) and .md, grids in
benchmarks/results/samples/completion{_NAME}_FAMILY.png. Seconds are only meaningful on a
quiet machine: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS, public_command, public_dataset_name, public_path
from benchmarks.samplers import load_model

NAME = "completion"
#: The README's names for how each family completes, by the class whose `complete_batch` it runs.
METHODS = {
    "AutoregressiveModel": "pixel loop with the known sub-pixels written in",
    "DenoisingModel": "RePaint (Lugmayr et al. 2022)",
    "VAE": "latent chain (Rezende et al. 2014)",
}


# ---------------------------------------------------------------------- scoring (pure NumPy)
def default_mask_spec(image_shape) -> str:
    """The bottom half for grey images (digits: the top half names the digit), a centre box of half the side for
    colour ones (emoji: the outline and colours stay, the face goes)."""
    height, width, channels = (int(d) for d in image_shape)
    if channels == 1:
        return "bottom"
    return f"box:{width // 4},{height // 4},{width // 2},{height // 2}"


def background(images) -> "np.ndarray":
    """The images' background colour: the median of every pixel, per channel, (C,)."""
    import numpy as np

    images = np.asarray(images)
    return np.median(images.reshape(-1, images.shape[-1]), axis=0).astype(np.float32)


def masked_input(images, mask, fill):
    """`images` with the hidden pixels (mask 0) set to `fill` (a scalar or one value per channel)."""
    import numpy as np

    return np.where(np.asarray(mask) == 1, images, np.asarray(fill, np.float32)).astype(np.float32)


def class_accuracy(predicted, labels) -> float:
    """The fraction of `predicted` (B, ...) class ids equal to their image's label (B,): each image's completions
    all count against its own label."""
    import numpy as np

    predicted, labels = np.asarray(predicted), np.asarray(labels)
    return float(np.mean(predicted.reshape(len(labels), -1) == labels[:, None]))


def known_mse(completions, images, mask) -> float:
    """Mean squared error over the known sub-pixels between completions (B, n, H, W, C) and images (B, H, W, C)."""
    import numpy as np

    mask = np.broadcast_to(np.asarray(mask, np.float32), np.shape(images))[:, None]
    squared = (np.asarray(completions, np.float64) - np.asarray(images, np.float64)[:, None]) ** 2 * mask
    return float(squared.sum() / (mask.sum() * np.shape(completions)[1]))


def timed_chunks(complete, images, labels, batch, clock=time.perf_counter):
    """Run `complete(images, labels, chunk_index)` on `images` `batch` at a time; (completions (B, n, ...),
    first call's seconds, seconds per image of the later calls or None when there was one call).

    The last chunk is padded to `batch` images with copies of the first (and the padding dropped) so that every
    call has the shape the first one traced: the later calls time the compiled loop, not tracing."""
    import numpy as np

    outputs, seconds = [], []
    for k, start in enumerate(range(0, len(images), batch)):
        chunk = images[start:start + batch]
        chunk_labels = None if labels is None else labels[start:start + batch]
        short = batch - len(chunk)
        if short and k:
            chunk = np.concatenate([chunk, np.repeat(images[:1], short, axis=0)])
            chunk_labels = None if labels is None else np.concatenate([chunk_labels, np.repeat(labels[:1], short)])
        began = clock()
        out = np.asarray(complete(chunk, chunk_labels, k))
        seconds.append(clock() - began)
        outputs.append(out[:len(out) - short] if short and k else out)
    later = seconds[1:]
    per_image = sum(later) / (batch * len(later)) if later else None
    return np.concatenate(outputs), seconds[0], per_image


# ---------------------------------------------------------------------- measuring
def method(model, mask, given_class=False) -> str:
    """How `model` completes under `mask`, in a few words (with "exact" where the family's completion is)."""
    from tfgen.complete import raster_prefix

    owner = type(model).complete_batch.__qualname__.split(".")[0]
    name = METHODS.get(owner, owner)
    if owner == "AutoregressiveModel":
        name += ": exact" if raster_prefix(mask) else ": approximate (known pixels after unknown ones)"
    if model.requires_labels and not given_class:
        name += ", the class drawn from its posterior given the known pixels"
    return name


def measure(model, images, labels, mask, evaluator, completions=1, batch=50, seed=0, options=None, tell_class=False):
    """One family's entry: accuracies, known-region MSE, timing; or {"cannot_complete": why}."""
    from tfgen.models.base import CompletionNotSupported

    if not model.can_complete:
        try:
            model.complete_batch(None, None, None, None)  # raises, naming the family and why
        except CompletionNotSupported as err:
            return {"cannot_complete": str(err)}
    given_class = bool(tell_class and model.requires_labels)
    options = dict(options or {})

    def complete(chunk, chunk_labels, k):
        count = len(chunk)
        return model.complete(chunk, mask[:1].repeat(count, axis=0), n=completions, seed=seed + k,
                              labels=chunk_labels if given_class else None, **options)

    out, first, per_image = timed_chunks(complete, images, labels, batch)
    predicted = evaluator.predict_labels(out.reshape(-1, *out.shape[2:]))
    return {
        "method": method(model, mask, given_class),
        "given_class": given_class,
        "options": options,
        "images": len(images), "completions_per_image": completions,
        "accuracy": class_accuracy(predicted, labels),
        "known_mse": known_mse(out, images, mask),
        "first_call_seconds": first,
        "seconds_per_completion": None if per_image is None else per_image / completions,
        "batch": batch,
    }


def baselines(images, labels, mask, evaluator) -> dict:
    """The evaluator's accuracy on the masked input alone (hidden pixels on the background) and on the originals."""
    fill = background(images)
    return {"background": [float(v) for v in fill],
            "masked_accuracy": class_accuracy(evaluator.predict_labels(masked_input(images, mask, fill)), labels),
            "original_accuracy": class_accuracy(evaluator.predict_labels(images), labels)}


def grid(model, images, labels, mask, completions, path, seed=0, tell_class=False) -> None:
    """Rows of: the image, the masked input (hidden pixels grey), `completions` completions."""
    import numpy as np

    from tfgen.plotting import save_grid

    out = np.asarray(model.complete(images, mask[:len(images)], n=completions, seed=seed,
                                    labels=labels if tell_class and model.requires_labels else None))
    rows = np.concatenate([images[:, None], masked_input(images, mask[:len(images)], 0.5)[:, None], out], axis=1)
    save_grid(rows.reshape(-1, *images.shape[1:]), path, ncols=completions + 2)


# ---------------------------------------------------------------------- the table
def markdown(results: dict) -> str:
    e = results
    rows = [f"`{e['dataset']}`{_read_with(e['data_options'])}, test split, mask `{e['mask']}` "
            f"(hidden: {e['hidden_fraction']:.0%} of the pixels); evaluator: {e['evaluator']['kind']}, test accuracy "
            f"{e['evaluator']['accuracy']:.3f}.",
            "",
            "| family | completion | test images × completions | original class recognised ↑ | masked input alone "
            "| originals | MSE on known pixels | s / completion | grid |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    # Families that complete first, then those that cannot.
    for family, r in sorted(e["entries"].items(), key=lambda item: ("cannot_complete" in item[1], item[0])):
        if "cannot_complete" in r:
            rows.append(f"| {family} | cannot complete: {r['cannot_complete'].split(': ', 1)[-1]} | | | | | | | |")
            continue
        told = ", told the class" if r["given_class"] else ""
        seconds = "" if r["seconds_per_completion"] is None else f"{r['seconds_per_completion']:.3g}"
        rows.append(f"| {family} | {r['method']}{told} | {r['images']} × {r['completions_per_image']} "
                    f"| {r['accuracy']:.3f} | {r['masked_accuracy']:.3f} | {r['original_accuracy']:.3f} "
                    f"| {r['known_mse']:.2g} | {seconds} | [grid]({r['grid']}) |")
    rows.append("")
    runs = {}  # one line per command: its families were measured one after the other, the load changing
    for r in e["entries"].values():
        runs.setdefault(r["command"], []).append(r)
    for command, measured in runs.items():
        m, loads = measured[0]["machine"], [r["machine"].get("load_average_1min") or 0 for r in measured]
        rows.append(f"Machine: {m['cpus']} × {m['cpu']}, 1-minute load {min(loads):.1f}–{max(loads):.1f}; "
                    f"{min(r['date'] for r in measured)}. Command: `{command}`.")
    rows += ["", "Original class recognised: the fraction of completions the dataset's evaluator classifies as the "
                 "class of the image they complete (the classifier `tfgen eval` uses). Masked input alone: the "
                 "same for the given image with its hidden pixels on the background colour, nothing filled in "
                 "(a completion must beat it); originals: for the whole images (the ceiling). MSE on known "
                 "pixels: over the sub-pixels the model was given (0 when pasted back). Seconds per completion: "
                 "wall clock after the first (tracing) call, on the machine named; indicative only. Told the "
                 "class: a conditional model given the true class, not comparable with the others."]
    return "\n".join(rows) + "\n"


def _read_with(options: dict) -> str:
    return " read with " + ", ".join(f"{k}={v}" for k, v in options.items()) if options else ""


# ---------------------------------------------------------------------- command line
def parse_counts(text: str | None) -> dict:
    """"pixelcnn=50,pixel_transformer=20" → {"pixelcnn": 50, "pixel_transformer": 20}."""
    counts = {}
    for item in (text or "").split(","):
        if not item:
            continue
        family, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--n-for wants FAMILY=N items with N >= 1, e.g. pixelcnn=50; got {item!r}")
        counts[family] = int(count)
    return counts


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="run directories or .keras files, one per family")
    p.add_argument("--dataset", help="the data the models were trained on (default: the first run's)")
    p.add_argument("--image-size", type=int, help="the size the data was read at (default: the run's)")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--mask", help="the part to hide, as `tfgen complete --mask` (default: bottom for grey images, "
                                  "a centre box of half the side for colour ones)")
    p.add_argument("--n", type=int, default=200, help="test images per family (default 200)")
    p.add_argument("--n-for", help="FAMILY=N,...: other counts for some families (the autoregressive ones are slow)")
    p.add_argument("--completions", type=int, default=1, help="completions per image (default 1)")
    p.add_argument("--batch", type=int, default=50, help="images per complete call (default 50)")
    p.add_argument("--grid-images", type=int, default=8, help="rows of each grid (default 8)")
    p.add_argument("--grid-completions", type=int, default=6, help="completions per grid row (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tell-class", action="store_true",
                   help="give models that need a class (cvae) the image's true one (a row of its own) instead of "
                        "letting them infer it from the known pixels")
    p.add_argument("--name", help="results go to completion_NAME.{json,md} (default: completion.{json,md})")
    p.add_argument("--evaluator-dir")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json")
    args = p.parse_args(argv)
    if not args.models and not args.render_only:
        p.error("give the models to measure: run directories or .keras files, one per family")
    for name in ("n", "completions", "batch", "grid_images", "grid_completions"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    try:
        args.n_for = parse_counts(args.n_for)
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv=None) -> None:
    from tfgen.bench.hardware import machine
    from tfgen.complete import check_mask, mask_from_spec
    from tfgen.data import load_arrays
    from tfgen.eval.evaluator import get_evaluator
    from tfgen.io import write_json, write_text

    args = parse_args(argv)
    out = Path(args.out)
    stem = NAME + (f"_{args.name}" if args.name else "")
    path = out / f"{stem}.json"
    results = json.loads(path.read_text()) if path.exists() else {"entries": {}}
    if args.render_only:
        write_text(out / f"{stem}.md", markdown(results))
        return
    options = {k: v for k, v in (("image_size", args.image_size), ("channels", args.channels)) if v}
    given = [public_path(a) if a in args.models else a for a in (sys.argv[1:] if argv is None else argv)]
    dataset, command = None, public_command(NAME, given, paths=("--out", "--evaluator-dir"), datasets=("--dataset",))
    for model_path in args.models:
        model, dataset_of, model_options, facts = load_model(model_path, args.dataset or dataset, options)
        if dataset is None:
            dataset, options = dataset_of, model_options
            spec = args.mask or default_mask_spec(model.image_shape)
            evaluator = get_evaluator(dataset, directory=args.evaluator_dir, data_kwargs=options)
            if not evaluator.labelled:
                raise SystemExit(f"{public_dataset_name(dataset)} has no class labels: its evaluator cannot say "
                                 f"whether a completion shows the original class")
            most = max([args.n, *args.n_for.values()])
            images, labels = load_arrays(dataset, "test", limit=most, **options)
            mask = check_mask(mask_from_spec(spec, model.image_shape), (len(images), *model.image_shape))
            if results.get("dataset") != public_dataset_name(dataset) or results.get("mask") != spec:
                results = {"entries": {}}  # another dataset or mask: the old entries do not compare
            results.update(dataset=public_dataset_name(dataset), data_options=options, mask=spec,
                           hidden_fraction=float(1 - mask[0].mean()),
                           evaluator={"kind": evaluator.kind, "accuracy": evaluator.accuracy})
        family = facts["family"]
        n = min(args.n_for.get(family, args.n), len(images))
        print(f"{family}: completing {n} test images x {args.completions} ({spec} hidden)", flush=True)
        entry = measure(model, images[:n], labels[:n], mask[:n], evaluator, args.completions,
                        min(args.batch, n), args.seed, tell_class=args.tell_class)
        if entry.get("given_class"):
            family += ", told"
        entry["model"] = facts
        if "cannot_complete" not in entry:
            entry.update(baselines(images[:n], labels[:n], mask[:n], evaluator))
            grid_path = out / "samples" / f"{stem}_{family.replace(', told', '_told_class')}.png"
            k = min(args.grid_images, n)
            grid(model, images[:k], labels[:k], mask[:k], args.grid_completions, grid_path, args.seed,
                 args.tell_class)
            entry["grid"] = f"samples/{grid_path.name}"
            print(f"  original class recognised {entry['accuracy']:.3f} (masked input alone "
                  f"{entry['masked_accuracy']:.3f}, originals {entry['original_accuracy']:.3f}); known-pixel MSE "
                  f"{entry['known_mse']:.2g}", flush=True)
        else:
            print(f"  {entry['cannot_complete']}", flush=True)
        entry.update(date=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), command=command, machine=machine())
        results["entries"][family] = entry
    write_json(path, results)
    write_text(out / f"{stem}.md", markdown(results))
    print(f"wrote {path} and {stem}.md")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
