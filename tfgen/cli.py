"""`tfgen` command line: a thin front end over library functions.

    tfgen list
    tfgen train MODEL [--preset P] [--dataset D] [--epochs N] [--batch-size B] [--seed S]
                      [--out DIR] [--set key=value ...]
    tfgen sample RUN_DIR --n N [--seed S] [--labels 3,3,7|all] --out FILE.png

Errors a user can cause print one line and exit with status 2 (set TFGEN_DEBUG=1
for the traceback).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

EXIT_USAGE = 2


def main(argv=None) -> int:
    # Before TensorFlow loads: keep its C++ start-up chatter out of the user's terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as err:
        if os.environ.get("TFGEN_DEBUG"):
            raise
        print(f"tfgen: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfgen", description="Generative models in Keras 3 / TensorFlow.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="registered models and their presets")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("train", help="train a model and write a run directory")
    p.add_argument("model")
    p.add_argument("--preset", default="default")
    p.add_argument("--dataset", default="mnist_bundled",
                   help="mnist_bundled (offline), a TFDS name (mnist, fashion_mnist, ...) or idx:DIR")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyperparameter, e.g. --set latent_dim=8 (repeatable)")
    p.add_argument("--data-dir", help="TFDS data_dir")
    p.add_argument("--manual-dir", help="directory with the original dataset files for TFDS")
    p.add_argument("--limit", type=int, help="use only the first N training/test examples")
    p.add_argument("--strategy", default="auto", help="auto | one | mirrored | multiworker")
    p.add_argument("--jit-compile", choices=("on", "off"), default="off", help="XLA compilation of the step")
    p.add_argument("--verbose", default="auto", help="Keras fit verbosity: auto, 0, 1 or 2")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("sample", help="draw a sample grid from a trained run")
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int)
    p.add_argument("--labels", help="conditional models: comma-separated labels, or 'all' for one row per class")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_sample)
    return parser


def cmd_list(args) -> None:
    from tfgen.registry import list_models

    for name, presets in list_models().items():
        print(f"{name:<20} {' '.join(presets)}")


def cmd_train(args) -> None:
    from tfgen.registry import get_model_class
    from tfgen.training import train

    overrides = parse_overrides(get_model_class(args.model), args.set)
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    out = train(
        args.model, preset=args.preset, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, out=args.out, overrides=overrides, strategy=args.strategy,
        jit_compile=args.jit_compile == "on", data_dir=args.data_dir, manual_dir=args.manual_dir,
        limit=args.limit, verbose=verbose,
    )
    print(f"run written to {out}/ (samples in {out}/samples, model in {out}/model.keras)")


def cmd_sample(args) -> None:
    import numpy as np

    from tfgen.plotting import sample_for_grid, save_grid
    from tfgen.training import load_run

    if args.n <= 0:
        raise ValueError(f"--n must be a positive integer, got {args.n}")
    model = load_run(args.run_dir)
    labels = None
    if args.labels is not None:
        if not model.conditional:
            raise ValueError(f"--labels needs a conditional model; {type(model).__name__} is unconditional")
        if args.labels != "all":
            labels = np.array(parse_labels(args.labels, model.num_classes))
    n = args.n if labels is None else len(labels)
    images, ncols = sample_for_grid(model, n, seed=args.seed, labels=labels)
    save_grid(images, args.out, ncols=ncols)
    print(f"wrote {len(images)} samples to {args.out}")


def parse_labels(text: str, num_classes: int) -> list[int]:
    try:
        labels = [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"--labels must be comma-separated integers or 'all', got {text!r}") from None
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise ValueError(f"--labels {bad} outside [0, {num_classes})")
    return labels


def parse_overrides(model_cls, items) -> dict:
    """Parse `--set key=value` items, checking keys and value types against the model's constructor."""
    known = model_cls.hyperparameters()
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in known:
            raise ValueError(f"--set {key}: {model_cls.registry_name} has no hyperparameter {key!r}; "
                             f"known: {', '.join(sorted(known))}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word: a string
        default = known[key].default
        if not _same_kind(value, default):
            raise ValueError(f"--set {key}={text}: expected {type(default).__name__} like {default!r}, "
                             f"got {type(value).__name__}")
        overrides[key] = value
    return overrides


def _same_kind(value, default) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))


if __name__ == "__main__":
    sys.exit(main())
