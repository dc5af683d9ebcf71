"""`tfgen` command line: a thin front end over library functions.

    tfgen --version
    tfgen list
    tfgen train MODEL [--preset P] [--dataset D] [--steps N | --epochs N] [--minutes M] [--batch-size B]
                      [--augment flip] [--seed S] [--out DIR] [--set key=value ...] [--export [DIR]] [--deterministic]
                      [--autoencoder-from RUN_DIR|FILE.keras]
                      [--strategy auto|one|mirrored|multiworker]
                      [--precision auto|float32|mixed_float16|mixed_bfloat16]
                      [--jit-compile on|off|auto] [--keep best|last]
    tfgen train --resume RUN_DIR [--steps N | --epochs N] [--minutes M] [--export [DIR]]
    tfgen data SOURCE [--image-size N|HxW] [--channels C] [--out DIR]
    tfgen export RUN_DIR [--out DIR] [--checkpoint best|last]
    tfgen sample RUN_DIR [--n N] [--seed S] [--labels NAME,NAME|3,3,7|all] [--steps K] [--sampler NAME]
                         [--temperature T] [--top-k K] [--out FILE.png|.jpg] [--checkpoint best|last]
    tfgen eval RUN_DIR [--n N] [--dataset D] [--json FILE] [--k 1,50,5000] [--checkpoint best|last]
    tfgen bench [--models M1,M2] [--presets P1,P2] [--steps N] [--quick] [--out DIR]
                [--precision float32,mixed_bfloat16,mixed_float16]
                [--dataset D] [--image-size N|HxW] [--channels 1|3] [--batch-size B]
    tfgen complete RUN_DIR (--image PATH ... | --from-test K[,K...]) --mask top|bottom|left|right|box:x,y,w,h|PNG
                           [--n N] [--seed S] [--label L] [--steps K] [--resample R] [--particles P]
                           [--iterations I] [--out FILE.png]
    tfgen edit RUN_DIR (--image PATH ... | --from-test K[,K...]) [--strength S] [--n N] [--steps K] [--out FILE.png]
    tfgen interpolate RUN_DIR (--image A --image B | --from-test K1,K2) [--steps N] [--label L] [--out FILE.png]
    tfgen transfer RUN_DIR (--image PATH ... --label L | --from-test K[,K...]) [--to NAME,NAME|3,7|all] [--out FILE.png]

TensorFlow's C++ log lines (oneDNN, cudart_stub, cuInit, ...) are kept off stderr
(`tfgen.tflogs`); `tfgen --tf-logs COMMAND ...` or TFGEN_TF_LOGS=1 shows them.

Also `python -m tfgen`. Errors a user can cause print one line and exit with
status 2 (set TFGEN_DEBUG=1 for the traceback); Ctrl-C or SIGTERM during training
stops after a checkpoint and exits with 130 or 143 (128 + the signal).

`--help`, `list`, `--version` and argument errors (an unknown model or preset, a
`--set` key or value the model does not take) are answered without importing
TensorFlow (`tfgen.catalog` reads the families' JSON data files; the `tfgen` script
enters through `tfgen_cli`, and `python -m tfgen` too imports tfgen without its models):
they return at once. Commands that need TensorFlow import it inside the command.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import signal
import sys
from pathlib import Path

from tfgen import __version__, catalog
from tfgen import checks, tflogs
from tfgen.checks import did_you_mean
from tfgen.length import AUGMENTATIONS, check_length  # loads neither Keras nor TensorFlow
from tfgen.precision import POLICIES, PRECISIONS, check_policies  # loads neither Keras nor TensorFlow
from tfgen.runs import KEEP  # loads neither Keras nor TensorFlow

EXIT_USAGE = 2
RUN_HELP = ("a run directory (finished or checkpointed), a .keras file, or a trained preset: a shipped one's name "
            "(digits/cvae; see `tfgen list`) or a preset directory")
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: what a shell reports for Ctrl-C (143 for SIGTERM)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # a usage error (status 2, message printed) or --help (0)
        return stop.code or 0
    # Before TensorFlow loads (no command imports it before this line). TensorFlow 2.21 prints
    # some C++ log lines before it reads TF_CPP_MIN_LOG_LEVEL: those are filtered out of stderr.
    show_tf_logs = tflogs.show_requested(args.tf_logs)
    if not show_tf_logs:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tflogs.filtered_stderr(enabled=not show_tf_logs):
        return run_command(args)


def run_command(args) -> int:
    """Run the parsed command; a user's error becomes one line on stderr and status 2."""
    try:
        trained_preset_argument(args)
        return args.func(args) or 0
    except KeyboardInterrupt as err:  # from training: which checkpoint --resume continues from
        print(f"tfgen: {err or 'interrupted'}", file=sys.stderr)
        return 128 + getattr(err, "signum", signal.SIGINT)
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as err:
        if os.environ.get("TFGEN_DEBUG"):
            raise
        # An error may word itself for the command line (flags rather than keyword arguments).
        message = err.cli_message() if hasattr(err, "cli_message") else err
        print(f"tfgen: error: {message}", file=sys.stderr)
        return EXIT_USAGE


class OneLineErrors(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other tfgen error (status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="tfgen", description="Generative models in Keras 3 / TensorFlow.")
    parser.add_argument("--version", action="version", version=f"tfgen {__version__}")
    parser.add_argument("--tf-logs", action="store_true",
                        help=f"show TensorFlow's C++ log lines (hidden by default; also {tflogs.ENV_SHOW}=1)")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="registered models and their presets")
    p.set_defaults(func=cmd_list)
    add_train_parser(commands)
    add_data_parser(commands)

    p = commands.add_parser("sample", help="draw a sample grid from a trained run")
    p.add_argument("run_dir", help=RUN_HELP)
    p.add_argument("--n", type=int, default=64,
                   help="number of images (default 64); with one row per class (--labels all), images per class = "
                        "N // classes, at least 1")
    p.add_argument("--seed", type=int)
    p.add_argument("--labels", help="models that take labels: comma-separated class names (the run's folder names) "
                                    "or indices, e.g. flags,smileys_and_emotion or 3,3,7; or 'all' for a block of "
                                    "rows per class (the default for them)")
    p.add_argument("--steps", type=int, help="models that sample iteratively (diffusion, flow): number of sampling "
                                             "steps")
    p.add_argument("--sampler", help="models that sample iteratively: diffusion ddim (default), ddpm or dpm++ "
                                     "(DPM-Solver++(2M), 10-20 steps); flow euler (default) or heun")
    p.add_argument("--temperature", type=float,
                   help="autoregressive models: divide the logits by T (< 1 sharper, > 1 more diverse; default 1)")
    p.add_argument("--top-k", type=int, help="autoregressive models: draw each pixel from its k most likely levels "
                                             "(equal ones: the lower level first; 1 = greedy)")
    p.add_argument("--out", help="image file to write, .png or .jpg (default RUN_DIR/samples/sample.png)")
    add_checkpoint_option(p)
    p.set_defaults(func=cmd_sample)

    p = commands.add_parser("export", help="export a run as a TensorFlow SavedModel with generation endpoints")
    p.add_argument("run_dir", help=RUN_HELP)
    p.add_argument("--out", help="export directory (default RUN_DIR/saved_model; for a .keras file, saved_models/<name>)")
    add_checkpoint_option(p)
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("eval", help="score a trained run: FID/KID on evaluator features, likelihoods, health")
    p.add_argument("run_dir", help=RUN_HELP)
    p.add_argument("--n", type=int, help="number of samples (default: as many as the test split has images, "
                                         "200 to 2000: more would not make FID more exact)")
    p.add_argument("--dataset", help="dataset of the evaluator and real data (default: the run's)")
    p.add_argument("--json", help="JSON file to write (default RUN_DIR/eval.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", default="1,50", help="importance samples for the VAE IWAE bound, e.g. 1,50,5000")
    p.add_argument("--n-likelihood", type=int, default=1000, help="test images for likelihoods (0: all)")
    p.add_argument("--evaluator-dir", help="evaluator directory (default: the one shipped with tfgen for the "
                                           "bundled digits, else ~/.cache/tfgen/evaluators/<dataset key>)")
    p.add_argument("--features", choices=("evaluator", "inception"), default="evaluator",
                   help="feature space of FID/KID/precision/recall: the dataset's own evaluator (default), or "
                        "Inception-v3 pool features (needs Keras' inception_v3 ..._notop.h5 weights file)")
    add_checkpoint_option(p)
    p.set_defaults(func=cmd_eval)

    p = commands.add_parser("bench", help="training/sampling throughput on your data and machine, FLOP/s against "
                                          "this machine's matmul peak")
    p.add_argument("--models", help="comma-separated (default: every registered model)")
    p.add_argument("--presets", help="comma-separated (default: every preset; with --quick: default)")
    p.add_argument("--steps", type=int, help="timed training steps per model (default 20; --quick 5)")
    p.add_argument("--warmup", type=int, help="untimed steps before them (default 3; --quick 2)")
    p.add_argument("--sample-n", type=int, help="images per sample call (default: the batch size; --quick 16)")
    p.add_argument("--quick", action="store_true", help="few steps, default presets")
    p.add_argument("--precision", help=f"comma-separated dtype policies, each model measured under each, side by "
                                       f"side ({', '.join(POLICIES)}; default float32)")
    p.add_argument("--dataset", default="mnist_bundled",
                   help="the data to train on, as for `tfgen train` (e.g. folder:DIR): every model is built at its "
                        "image shape and class count (default mnist_bundled)")
    p.add_argument("--batch-size", type=int, help="every model's batch size (default: each model's, see `tfgen list`)")
    p.add_argument("--image-size", type=_image_size, metavar="N|HxW", help="resize the images, as for `tfgen train`")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 (grey) or 3 (RGB), as for `tfgen train`")
    p.add_argument("--out", default="runs/bench", help="directory for throughput.json and throughput.md "
                                                       "(default runs/bench)")
    p.set_defaults(func=cmd_bench)
    add_completion_parsers(commands)
    return parser


def add_checkpoint_option(p) -> None:
    """`--checkpoint` of the commands that read a run's model (sample, export, eval)."""
    p.add_argument("--checkpoint", choices=KEEP,
                   help="which epoch of the run: best (the best-scoring, kept by `train --keep best`) or last "
                        "(default: the best if the run kept one, else the last)")


def add_train_parser(commands) -> None:
    """The `train` subcommand's options (`build_parser` adds the others)."""
    p = commands.add_parser("train", help="train a model and write a run directory")
    p.add_argument("model", nargs="?", help="a registered model (not with --resume)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint, with the run's own settings")
    p.add_argument("--export", nargs="?", const="", metavar="DIR",
                   help="then export a SavedModel (default DIR: RUN_DIR/saved_model)")
    p.add_argument("--preset", default="default", help="the model's hyperparameter preset (default: default); "
                   + "; ".join(f"{f.name}: {', '.join(f.presets)}" for f in catalog.families().values()))
    p.add_argument("--dataset", default="mnist_bundled",
                   help="mnist_bundled (offline), a TFDS name (mnist, fashion_mnist, ...), folder:DIR (your images: "
                        "one subfolder per class, or all in DIR without labels), idx:DIR or npz:FILE")
    add_data_options(p)
    p.add_argument("--steps", type=int, help="train for N optimiser steps (default: the model's, see `tfgen list`); "
                                             "with --resume: a new total")
    p.add_argument("--epochs", type=int, help="train for N passes over the data instead (not with --steps); "
                                              "with --resume: a new total")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="a wall-clock budget: stop at the first step past M minutes, then write the model, the last "
                        "sample grid and a checkpoint as a finished run does; with --steps or --epochs, whichever "
                        "ends first; alone, no step limit. With --resume: M more minutes")
    p.add_argument("--augment", choices=AUGMENTATIONS,
                   help="flip: mirror each training image left-right at random (default: no augmentation)")
    p.add_argument("--epoch-steps", type=int, metavar="N",
                   help="steps per epoch, i.e. between validation, sample grid and checkpoint (default: one pass with "
                        "--epochs, else whole passes over the data, at least 200 steps or the whole run)")
    best_by_default = ", ".join(name for name, f in catalog.families().items() if not f.quality_monotone)
    p.add_argument("--keep", choices=KEEP,
                   help="best: also keep the epoch whose samples score best (KID to held-out images in fixed random "
                        "features, penalised for a collapsed class) in RUN_DIR/best/, which sample, export and eval "
                        f"then use; last: only the last epoch. Default: best for {best_by_default} (their samples do "
                        "not improve monotonically), last for the others")
    p.add_argument("--sample-every", type=int, default=1, metavar="N",
                   help="draw the sample grid every N epochs (and after the last; default 1)")
    p.add_argument("--batch-size", type=int, help="default: the model's (see `tfgen list`)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyperparameter, e.g. --set latent_dim=8 (repeatable)")
    p.add_argument("--autoencoder-from", metavar="RUN_DIR|FILE.keras",
                   help="latent models: take the trained autoencoder (and latent scale) of an earlier run of the same "
                        "model, skip the first stage and train the latent model only")
    p.add_argument("--init", metavar="PRESET|RUN_DIR|FILE.keras",
                   help="fine-tune: start from the weights of a trained preset (e.g. digits/vae, see `tfgen list`) "
                        "or an earlier run of the same model wherever their shapes match (the others start fresh "
                        "and are named)")
    p.add_argument("--data-dir", help="TFDS data_dir")
    p.add_argument("--manual-dir", help="directory with the original dataset files for TFDS")
    p.add_argument("--limit", type=int, help="use only the first N training/test examples")
    p.add_argument("--strategy", default="auto",
                   help="auto | one | mirrored | multiworker (MultiWorkerMirroredStrategy from TF_CONFIG: run the "
                        "same command on every worker; only the chief writes)")
    p.add_argument("--jit-compile", choices=("on", "off", "auto"), default="off",
                   help="XLA compilation of the training step (auto: Keras' choice, i.e. XLA on one GPU only)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="dtype policy: mixed_float16 (GPUs, with loss scaling) or mixed_bfloat16 compute in "
                        "16 bits, weights and losses in float32; auto (default): mixed_bfloat16 for the models "
                        "that train faster in it on a CPU or GPU that computes bfloat16 natively, else float32 "
                        "(the choice and why are printed and kept in config.json)")
    p.add_argument("--verbose", default="auto", choices=("auto", "0", "1", "2"),
                   help="Keras fit verbosity (auto: a progress bar on a terminal, else one line per epoch)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops: the same seed gives the same weights, bit for bit")
    p.set_defaults(func=cmd_train)


def add_data_options(p) -> None:
    """How images are read (`tfgen.data.DATA_OPTIONS`): options of `train` and `data`."""
    p.add_argument("--image-size", type=_image_size, metavar="N|HxW",
                   help="resize the images to N×N or H×W (centre crop to the aspect ratio, then resize); "
                        "default: the images' own size")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 (grey) or 3 (RGB); default: as stored")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="folder:DIR: skip files that cannot be decoded (counted in one warning) instead of failing")
    p.add_argument("--background", default=None,
                   help="folder:DIR: colour that transparent pixels are composited onto: white (default), black "
                        "or R,G,B")


def add_data_parser(commands) -> None:
    """The `data` subcommand: what a dataset holds, and a picture of it, without training."""
    p = commands.add_parser("data", help="what a dataset holds (images, classes, split, skipped files) and a "
                                         "picture of it, without training")
    p.add_argument("source", help="folder:DIR, idx:DIR, npz:FILE, mnist_bundled or a TFDS name (as --dataset)")
    add_data_options(p)
    p.add_argument("--out", metavar="DIR", help=f"write a grid of the images as training sees them to DIR/real.png "
                                                "(one block of rows per class)")
    p.set_defaults(func=cmd_data)


def cmd_data(args) -> None:
    options = data_options_from_args(args)
    if args.source.startswith("folder:"):  # summarised from the files' headers: no TensorFlow
        from tfgen.data.summary import folder_summary

        print(folder_summary(args.source, **options).text())
        if args.out is None:
            print("  picture: add --out DIR for DIR/real.png")
            return
    from tfgen import data as tfdata
    from tfgen.data.preview import FILE_NAME, save_real_grid
    from tfgen.data.summary import summarise

    train = tfdata.load_examples(args.source, "train", **options)
    if not args.source.startswith("folder:"):
        test = tfdata.load_examples(args.source, "test", **options)
        print(summarise(args.source, train, test, **options).text())
    if args.out is not None:
        print(f"  picture: {save_real_grid(train, Path(args.out) / FILE_NAME)}")


def cmd_list(args) -> None:
    from tfgen import pretrained  # reads metadata.json only: no TensorFlow

    print(f"{'model':<20} {'default steps, batch':<24} presets")
    for name, family in catalog.families().items():
        fit = family.fit_defaults
        cap = (f" (≤{fit['max_batch_subpixels']:,} sub-pixels a batch: "
               f"{catalog.default_batch_size(fit, (32, 32, 3))} at 32×32×3)" if "max_batch_subpixels" in fit else "")
        print(f"{name:<20} {fit['steps']:>5,} steps, batch {fit['batch_size']:<5} {' '.join(family.presets)}{cap}")
    lines = pretrained.listing()
    if lines:
        print("trained models (tfgen sample NAME, tfgen.from_preset(NAME); metrics measured on the shipped weights)")
        print("\n".join(lines))


# ------------------------------------------------------------------------ trained presets as a RUN argument
def trained_preset_argument(args) -> None:
    """A command's RUN argument may name a trained preset (`digits/cvae`) or be a preset directory
    (`tfgen.pretrained`): it becomes the preset's directory, and what the command writes into RUN by
    default (samples/, eval.json, saved_model/) goes to the working directory instead, named after it."""
    if getattr(args, "run_dir", None) is None:
        return
    from tfgen import pretrained  # no TensorFlow

    path = pretrained.resolve(args.run_dir)
    args.run_dir = str(path)
    if not pretrained.is_preset(path):
        return
    name = f"{path.parent.name}-{path.name}"
    if args.command == "eval":
        args.json = args.json or f"eval-{name}.json"
    elif args.command == "export":
        args.out = args.out or str(Path("saved_models") / name)
    else:
        args.out = args.out or str(Path("samples") / f"{name}-{args.command}.png")


def cmd_train(args) -> None:
    verbose = fit_verbosity(args.verbose)
    length = check_length(args.steps, args.epochs, args.minutes, prefix="--")  # before TensorFlow loads
    for flag in ("epoch_steps", "sample_every"):
        if getattr(args, flag) is not None:
            checks.positive_int(getattr(args, flag), f"--{flag.replace('_', '-')}")
    if args.resume:
        check_resume_args(args)
    elif args.model is None:
        raise ValueError("train needs a MODEL (see `tfgen list`), or --resume RUN_DIR")
    else:  # checked before TensorFlow loads: a typo, or a folder the run cannot use, is answered at once
        catalog.check_preset(args.model, args.preset)
        overrides = parse_overrides(args.model, args.set)
        check_autoencoder_source(args)
        check_init_source(args)
        check_data_first(args)
    from tfgen.distribute import is_chief
    from tfgen.training import resume, train

    if args.resume:
        out = resume(args.resume, verbose=verbose, **length)
        print(f"run {out}/ complete (model in {out}/model.keras)")
    else:
        out = train(
            args.model, preset=args.preset, dataset=args.dataset,
            batch_size=args.batch_size, augment=args.augment, epoch_steps=args.epoch_steps,
            sample_every=args.sample_every, **length,
            seed=args.seed, out=args.out, overrides=overrides, strategy=args.strategy,
            jit_compile=args.jit_compile, precision=args.precision, data_dir=args.data_dir, manual_dir=args.manual_dir,
            limit=args.limit, verbose=verbose, deterministic=args.deterministic, autoencoder_from=args.autoencoder_from,
            keep=args.keep, init=args.init,
            **data_options_from_args(args),
        )
        if not is_chief():  # a non-chief worker of a multi-worker run: the chief writes (and exports)
            print(f"worker done: the chief worker wrote the run to its {out}/")
            return
        print(f"run written to {out}/ (samples in {out}/samples, model in {out}/model.keras)")
    if args.export is not None:
        from tfgen.export import export_run

        if not is_chief():  # after --resume on a non-chief worker
            return
        announce_checkpoint(out, None)
        path = export_run(out, args.export or None)
        print(f"SavedModel written to {path}/")


def fit_verbosity(choice: str, stream=None) -> int:
    """Keras `fit` verbosity for `--verbose`: "auto" is a progress bar (1) on a terminal, else one
    line per epoch (2). Keras' own "auto" draws the bar into files and pipes too, where its
    redrawn lines pile up as escape codes (some 30 KB an epoch for a tiny model)."""
    if choice != "auto":
        return int(choice)
    stream = stream if stream is not None else sys.stdout
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 2


def _image_size(text: str):
    # argparse shows a ValueError's message only for its own types: say it as an ArgumentTypeError.
    try:
        return checks.parse_image_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def data_options_from_args(args) -> dict:
    """The `tfgen.train` data options the command line sets (`tfgen.data.DATA_OPTIONS`)."""
    options = {"image_size": args.image_size, "channels": args.channels}
    if args.skip_corrupt:
        options["skip_corrupt"] = True
    if args.background is not None:
        text = args.background.strip()
        options["background"] = tuple(int(v) for v in text.split(",")) if "," in text else text
    return options


def check_data_first(args) -> None:
    """An image size the family cannot use, then everything about a `folder:` dataset (`tfgen.data.summary.
    check_folder`: missing, empty, corrupt files, no classes for a conditional model, fewer images than a
    batch), or a missing `idx:`/`npz:` path, without TensorFlow: in a second for a few hundred images,
    rather than after TensorFlow loads."""
    family = catalog.family(args.model)
    if args.image_size is not None and family.halving_networks:
        # The halving families' rule of `GenerativeModel.image_size_error`, asked without TensorFlow;
        # `tfgen.train` asks the model class itself (every family's rule) before reading any data.
        from tfgen.layers.resolution import size_error

        error = size_error((*args.image_size, 1))
        if error:
            raise ValueError(f"{family.class_name} {error}")
    from tfgen.data.summary import check_folder, check_source

    if not args.dataset.startswith("folder:"):
        check_source(args.dataset)
        return

    # The default batch for the asked size (3 channels unless asked; without a size, the family's full
    # batch: the check is a first look, the run counts the batches again once the data is read).
    shape = (*args.image_size, args.channels or 3) if args.image_size else (1, 1, 1)
    batch_size = args.batch_size or catalog.default_batch_size(family.fit_defaults, shape)
    needs_labels = f"{args.model} ({args.preset} preset)" if family.requires_labels else None
    check_folder(args.dataset, batch_size, needs_labels, limit=args.limit, **data_options_from_args(args))


def check_autoencoder_source(args) -> None:
    """--autoencoder-from: a latent model, and a path that exists (its content is checked once TensorFlow loads)."""
    if args.autoencoder_from is None:
        return
    if "autoencoder_channels" not in catalog.family(args.model).hyperparameters:
        raise ValueError(f"--autoencoder-from needs a latent model (e.g. latent_diffusion); {args.model} has no "
                         f"autoencoder")
    if not Path(args.autoencoder_from).exists():
        raise FileNotFoundError(f"--autoencoder-from {args.autoencoder_from} does not exist (give a run directory "
                                f"or a .keras file)")


def check_init_source(args) -> None:
    """--init: a trained preset or run that exists, of the model being trained (read without TensorFlow)."""
    if args.init is None:
        return
    import json

    from tfgen import pretrained

    path = pretrained.resolve(args.init)  # one line listing the shipped presets if it is none
    if pretrained.is_preset(path):
        family = pretrained.read_metadata(path)["family"]
    elif (path / "config.json").is_file():
        family = json.loads((path / "config.json").read_text()).get("model")
    else:
        return  # a .keras file: its family is known once it loads
    if family != args.model:
        raise ValueError(f"--init {args.init} is a trained {family}; this run trains {args.model}: weights are "
                         f"taken from the same family only (tfgen train {family} --init {args.init} ...)")


def check_resume_args(args) -> None:
    """--resume takes the run's settings from its config.json: refuse options that would be ignored."""
    defaults = build_parser().parse_args(["train", "vae"])
    changed = [f"--{name.replace('_', '-')}" for name in (
        "preset", "dataset", "batch_size", "seed", "out", "set", "data_dir", "manual_dir", "limit", "strategy",
        "jit_compile", "precision", "deterministic", "image_size", "channels", "skip_corrupt", "background",
        "augment", "epoch_steps", "sample_every", "autoencoder_from", "keep", "init") if getattr(args, name) != getattr(defaults, name)]
    if args.model is not None:
        changed.insert(0, "MODEL")
    if changed:
        raise ValueError(f"--resume continues a run with the settings in its config.json; "
                         f"{', '.join(changed)} cannot be given with it (only --steps or --epochs, --minutes, "
                         f"--export, --verbose)")


def cmd_export(args) -> None:
    from tfgen.export import export_run, read_metadata

    if Path(args.run_dir).is_dir():
        announce_checkpoint(args.run_dir, args.checkpoint)
    path = export_run(args.run_dir, args.out, checkpoint=args.checkpoint)
    endpoints = read_metadata(path)["endpoints"]
    print(f"SavedModel written to {path}/ (endpoints: {', '.join(endpoints)}; serving_default = sample)")


def cmd_sample(args) -> None:
    import numpy as np

    from tfgen.checks import positive_int
    from tfgen.plotting import class_row_labels, grid_format, per_class_count, sample_for_grid, save_grid

    positive_int(args.n, "--n")
    out = Path(args.out) if args.out else Path(args.run_dir) / "samples" / "sample.png"
    grid_format(out)  # an unsupported extension is refused before the model loads
    from tfgen.runs import load_run

    announce_checkpoint(args.run_dir, args.checkpoint)
    model = load_run(args.run_dir, args.checkpoint)
    class_names = _class_names(args.run_dir)
    if args.steps is not None:
        model = with_sampling_steps(model, args.steps)
    model = with_sample_options(model, sampler=args.sampler, temperature=args.temperature, top_k=args.top_k)
    labels = None
    if args.labels is not None:
        if not model.accepts_labels:
            raise ValueError(f"--labels needs a model that takes labels; {type(model).__name__} does not")
        if args.labels != "all":
            labels = np.array(parse_labels(args.labels, model.num_classes, class_names))
    n = args.n if labels is None else len(labels)
    images, ncols = sample_for_grid(model, n, seed=args.seed, labels=labels)
    save_grid(images, out, ncols=ncols, row_labels=class_row_labels(model, labels, class_names, n=n))
    per_class = per_class_count(model, n) if labels is None else None
    drawn = n if per_class is None else per_class * model.num_classes  # the grid's blank tiles not counted
    print(f"wrote {drawn} samples to {out}{_per_class_note(model, per_class, n)}")


def announce_checkpoint(run_dir, checkpoint) -> dict:
    """Say which epoch of a run that kept its best one is used (`tfgen.runs.checkpoint_note`); return
    `tfgen.runs.run_checkpoint`'s answer."""
    from tfgen.runs import checkpoint_note, run_checkpoint

    choice = run_checkpoint(run_dir, checkpoint)
    note = checkpoint_note(choice)
    if note:
        print(note, flush=True)
    return choice


def _class_names(run_dir):
    """The class names a run's config.json records (None without them, or for a bare .keras file)."""
    from tfgen.runs import read_run_config

    try:
        return read_run_config(run_dir).get("class_names")
    except (ValueError, OSError):
        return None


def _per_class_note(model, per_class, n: int) -> str:
    """Why a grid with a block per class has a different number of images than --n asked for."""
    if per_class is None or per_class * model.num_classes == n:
        return ""
    return (f" (a block per class: --n {n} gives {per_class} image{'s' if per_class > 1 else ''} for each of "
            f"{model.num_classes} classes)")


def with_sampling_steps(model, steps: int):
    """`model` with `steps=steps` passed to every `sample` call; an error if its `sample` has no steps."""
    return with_sample_options(model, steps=checks.positive_int(steps, "--steps"))


def with_sample_options(model, **options):
    """`model` whose `sample` gets `options` on every call (options that are None are left out); an
    error naming the option if this model's `sample` does not take it. Values are checked by `sample`."""
    import functools
    import inspect

    given = {key: value for key, value in options.items() if value is not None}
    for key in given:
        if key not in inspect.signature(model.sample).parameters:
            what = "does not sample in steps" if key == "steps" else "has no such sampling option"
            raise ValueError(f"--{key.replace('_', '-')}: {type(model).__name__} {what}")
    if given:
        model.sample = functools.partial(model.sample, **given)  # this instance only
    return model


def cmd_eval(args) -> None:
    from pathlib import Path

    from tfgen.eval.scoring import evaluate, format_table, name_classes, reliability_warning
    from tfgen.io import write_json
    from tfgen.runs import EVAL_FILE, data_options, load_run, read_run_config

    try:
        ks = sorted({int(k) for k in args.k.split(",")})
    except ValueError:
        raise ValueError(f"--k must be comma-separated positive integers, got {args.k!r}") from None
    from tfgen.data import absolute_name

    config = read_run_config(args.run_dir)  # its data paths absolute: the run is scored from any directory
    dataset = absolute_name(args.dataset) if args.dataset else config.get("dataset") or "mnist_bundled"
    choice = announce_checkpoint(args.run_dir, args.checkpoint)
    model = load_run(args.run_dir, args.checkpoint)
    # The run's own way of reading its data (size, channels, ...), unless another dataset is asked for.
    data_kwargs = data_options(config) if dataset == config.get("dataset") else {}
    result = evaluate(model, dataset=dataset, n=args.n, seed=args.seed, evaluator_dir=args.evaluator_dir, ks=ks,
                      n_likelihood=args.n_likelihood or None, features=args.features, data_kwargs=data_kwargs,
                      verbose=fit_verbosity("auto"))
    name_classes(result, config.get("class_names"))  # a folder run's class names, in the table and eval.json
    result.update({"run_dir": str(args.run_dir), "preset": config.get("preset"),
                   "checkpoint": {key: choice[key] for key in ("checkpoint", "epoch", "epochs")}})
    print(format_table(result))
    out = Path(args.json) if args.json else Path(args.run_dir) / EVAL_FILE
    write_json(out, result)
    print(f"\nwrote {out}")
    if reliability_warning(result):
        print(f"tfgen: {reliability_warning(result)}", file=sys.stderr)


def cmd_bench(args) -> None:
    """The measurement of benchmarks/throughput.py without its keras.io baselines (see tfgen.bench)."""
    if args.precision is not None:  # checked before TensorFlow loads: a typo is answered at once
        check_policies(args.precision.split(","))
    from tfgen import bench

    models, presets, settings = bench.options_from_args(args)
    given = {"image_size": args.image_size, "channels": args.channels}
    command = "tfgen bench" + "".join(f" --{name.replace('_', '-')} {_flag_text(getattr(args, name))}" for name in (
        "models", "presets", "steps", "warmup", "sample_n", "precision", "batch_size", "dataset", "image_size",
        "channels", "out")
        if getattr(args, name) is not None)
    results = bench.run(models, presets, command=command + (" --quick" if args.quick else ""),
                        dataset=args.dataset, data_options={k: v for k, v in given.items() if v is not None},
                        batch_size=args.batch_size,
                        **settings)
    json_path, md_path = bench.write_results(results, args.out)
    print(bench.render_markdown(results))
    print(f"wrote {json_path} and {md_path}")


def _flag_text(value) -> str:
    """A parsed option as it was typed: (32, 32) → 32, (32, 48) → 32x48."""
    if isinstance(value, tuple):
        return str(value[0]) if len(set(value)) == 1 else "x".join(map(str, value))
    return str(value)


def parse_labels(text: str, num_classes: int, class_names=None) -> list[int]:
    """The class indices of `--labels`: comma-separated class names (the run's `class_names`) or
    indices, mixed freely; a name that is not a class is one line with the nearest name and the list."""
    names = list(class_names or [])
    labels = []
    for item in (t.strip() for t in text.split(",")):
        if item in names:
            labels.append(names.index(item))
            continue
        try:
            labels.append(int(item))
        except ValueError:
            if not names:
                raise ValueError(f"--labels must be comma-separated class indices or 'all' (this run records no "
                                 f"class names), got {item!r}") from None
            raise ValueError(f"--labels: no class {item!r} (nearest: {nearest_name(item, names)!r}); the run's classes: "
                             f"{', '.join(names)}") from None
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise ValueError(f"--labels {bad} outside [0, {num_classes})")
    return labels


def nearest_name(text: str, names) -> str:
    """The name in `names` nearest to `text`: the longest shared beginning first, then difflib's similarity.

    Always an answer: class names are long, and a typed one is usually their start, misspelt
    ('smilies' for 'smileys_and_emotion', which difflib alone ranks below 'activities').
    """
    def shared_start(name: str) -> int:
        a, b = text.lower(), name.lower()
        return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

    return max(names, key=lambda name: (shared_start(name),
                                        difflib.SequenceMatcher(None, text.lower(), name.lower()).ratio()))


def parse_overrides(model: str, items) -> dict:
    """Parse `--set key=value` items, checking keys and value types against the model's constructor
    defaults (read by `tfgen.catalog`, without importing TensorFlow)."""
    known = catalog.family(model).hyperparameters
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in known:
            raise ValueError(f"--set {key}: {model} has no hyperparameter {key!r}{did_you_mean(key, known)}; "
                             f"known: {', '.join(sorted(known))}")
        default = known[key]
        if isinstance(default, bool) and text.lower() in ("true", "false"):
            value = text.lower() == "true"  # what shells, JSON and YAML users type, as well as Python's True
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text  # a bare word: a string
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


# ---------------------------------------------------------------------------------------------- complete, edit,
# interpolate: a given image through a trained run (`GenerativeModel.complete`, `DenoisingModel.edit`,
# `VAE.interpolate`). The images come from files (--image) or the run's held-out split (--from-test).
def add_completion_parsers(commands) -> None:
    def add_inputs(p, what):
        p.add_argument("run_dir", help=RUN_HELP)
        p.add_argument("--image", action="append", metavar="PATH",
                       help=f"an image file {what} (repeat for more); resized and converted to the run's images")
        p.add_argument("--from-test", metavar="K[,K...]",
                       help="the K-th images of the run's held-out (test) split, 0-based, e.g. 0,1,2")
        p.add_argument("--label", help="models that take labels: the images' class (name or index; default for "
                                       "--from-test: their own labels, except that `complete` with a cvae infers "
                                       "the class from the known pixels)")
        p.add_argument("--seed", type=int, default=0)

    p = commands.add_parser("complete", help="fill in the hidden part of given images (inpainting, completion)")
    add_inputs(p, "to complete")
    p.add_argument("--mask", required=True, help="the part to fill in: top|bottom|left|right (that half), "
                                                 "box:x,y,w,h (a box, top-left corner and size in pixels) or a "
                                                 "PNG file of the image's size (white = fill in)")
    p.add_argument("--n", type=int, default=8, help="completions per image (default 8)")
    p.add_argument("--steps", type=int, help="diffusion, flow: reverse steps (default 50)")
    p.add_argument("--resample", type=int, help="diffusion, flow: RePaint's resamplings per step (default 3)")
    p.add_argument("--particles", type=int, help="autoregressive models: draws per completion, one kept by the "
                                                 "known pixels' likelihood (default 1: exact for --mask bottom)")
    p.add_argument("--iterations", type=int, help="vae, cvae: passes of the encode-decode chain (default 50)")
    p.add_argument("--out", help="grid to write, one row per image: the image, the masked input, the completions "
                                 "(default RUN_DIR/samples/complete.png)")
    p.set_defaults(func=cmd_complete)

    p = commands.add_parser("edit", help="diffusion, flow: SDEdit image-to-image (noise given images, denoise)")
    add_inputs(p, "to edit")
    p.add_argument("--strength", type=float, default=0.5,
                   help="how far towards noise, in (0, 1]: small keeps the image, 1 draws a new one (default 0.5)")
    p.add_argument("--n", type=int, default=8, help="edits per image (default 8)")
    p.add_argument("--steps", type=int, help="reverse steps of the whole process (default 50)")
    p.add_argument("--out", help="grid to write: the image, then its edits (default RUN_DIR/samples/edit.png)")
    p.set_defaults(func=cmd_edit)

    p = commands.add_parser("interpolate", help="vae, cvae: decode the way between the codes of two images")
    add_inputs(p, "(give two)")
    p.add_argument("--steps", type=int, default=8, help="images on the way, both ends included (default 8)")
    p.add_argument("--out", help="grid to write (default RUN_DIR/samples/interpolate.png)")
    p.set_defaults(func=cmd_interpolate)

    p = commands.add_parser("transfer", help="cvae: redraw given images as other classes, keeping their style")
    add_inputs(p, "to redraw (with --label: their class)")
    p.add_argument("--to", default="all", help="the classes to draw each image as: names or indices, comma-separated, "
                                               "or all (default)")
    p.add_argument("--out", help="grid to write: per row the image, then it drawn as each class "
                                 "(default RUN_DIR/samples/transfer.png)")
    p.set_defaults(func=cmd_transfer)


def given_images(args, model, class_inferred: bool = False):
    """(images (B, H, W, C) in [0, 1], labels or None) from --image files or --from-test indices, and --label.
    class_inferred: the command can do without the class of a model that needs one if the model can infer it from
    the image (`class_posterior`, the cVAE): then without --label there are no labels, even for test images."""
    class_inferred = class_inferred and hasattr(model, "class_posterior")
    import numpy as np

    if bool(args.image) == bool(args.from_test):
        raise ValueError("give the images with --image PATH (repeatable) or --from-test K[,K...], one of the two")
    labels = None
    if args.from_test:
        images, labels = _test_images(args.run_dir, args.from_test)
    else:
        images = np.stack([_read_image(path, model.image_shape, args.run_dir) for path in args.image])
    if args.label is not None:
        labels = np.array(parse_labels(args.label, model.num_classes, _class_names(args.run_dir)) * len(images))[
            :len(images)]
    if not model.accepts_labels or ((class_inferred or not model.requires_labels) and args.label is None):
        # Optional labels (diffusion, flow) only when asked for: a completion guided by the true class would
        # not show what the pixels alone say.
        labels = None
    elif labels is None:
        raise ValueError(f"{type(model).__name__} requires labels: give the images' class with --label")
    return images, labels


def _test_images(run_dir, text: str):
    import numpy as np

    from tfgen.data import load_examples
    from tfgen.runs import data_options, read_run_config

    try:
        indices = [int(k) for k in text.split(",")]
    except ValueError:
        raise ValueError(f"--from-test must be comma-separated image indices, e.g. 0,1,2; got {text!r}") from None
    if min(indices) < 0:
        raise ValueError(f"--from-test indices start at 0, got {min(indices)}")
    config = read_run_config(run_dir)
    examples = load_examples(config.get("dataset") or "mnist_bundled", "test", limit=max(indices) + 1,
                             **data_options(config))
    if max(indices) >= examples.info.num_examples:
        raise ValueError(f"--from-test {max(indices)}: the run's test split has {examples.info.num_examples} images")
    images, labels = examples.lookup(indices)
    return np.asarray(images), np.asarray(labels)


def _read_image(path, image_shape, run_dir):
    """An image file as the run's images are read: alpha on the run's background, centre crop, resize, channels."""
    import numpy as np

    from tfgen.data.folder import _pillow_rgba
    from tfgen.data.pixels import background_rgb, from_rgba
    from tfgen.runs import data_options, read_run_config

    if not Path(path).is_file():
        raise FileNotFoundError(f"--image {path} does not exist")
    try:
        background = data_options(read_run_config(run_dir)).get("background", "white")
    except (ValueError, OSError):
        background = "white"
    try:
        rgba = _pillow_rgba(Path(path))
    except OSError as err:
        raise ValueError(f"--image {path} is not an image Pillow can read ({err})") from None
    pixels = from_rgba(rgba, tuple(image_shape[:2]), image_shape[2], background_rgb(background))
    return np.asarray(pixels, np.float32) / 255.0


def _model_options(method, **options):
    """The options that are set, after checking that `method` (a family's) takes each; one line naming a flag it
    does not take."""
    import inspect

    given = {key: value for key, value in options.items() if value is not None}
    owner = type(getattr(method, "__self__", None)).__name__
    for key in given:
        if key not in inspect.signature(method).parameters:
            raise ValueError(f"--{key.replace('_', '-')}: {owner} has no such option for this command")
    return given


def _given(args, command: str, refusal, class_inferred: bool = False):
    """(model, grid path, images, labels) for `command`; `refusal(model)` is None, or the one line saying why the
    run's family cannot do it (raised before any image is read)."""
    from tfgen.checks import positive_int
    from tfgen.plotting import grid_format
    from tfgen.runs import load_run

    if getattr(args, "n", None) is not None:
        positive_int(args.n, "--n")
    out = Path(args.out) if args.out else Path(args.run_dir) / "samples" / f"{command}.png"
    grid_format(out)  # an unsupported extension is refused before the model loads
    model = load_run(args.run_dir)
    if refusal(model):
        raise ValueError(refusal(model))
    return (model, out, *given_images(args, model, class_inferred))


def cmd_complete(args) -> None:
    import numpy as np

    from tfgen.complete import check_mask, mask_from_spec
    from tfgen.plotting import save_grid

    def refusal(model):
        if not model.can_complete:
            model.complete(None, None)  # raises the family's own one-line reason

    # A cVAE completes without the class too, drawing it from p(class | known pixels) (`VAE.class_posterior`).
    model, out, images, labels = _given(args, "complete", refusal, class_inferred=True)
    mask = check_mask(mask_from_spec(args.mask, model.image_shape), images.shape)
    options = _model_options(model.complete_batch, steps=args.steps, resample=args.resample,
                             particles=args.particles, iterations=args.iterations)
    completions = model.complete(images, mask, n=args.n, seed=args.seed, labels=labels, **options).numpy()
    masked = np.where(mask == 1, images, 0.5)  # hidden pixels grey
    rows = np.concatenate([images[:, None], masked[:, None], completions], axis=1)
    save_grid(rows.reshape(-1, *model.image_shape), out, ncols=args.n + 2)
    print(f"wrote {out}: per row the image, the masked input (grey = filled in) and {args.n} completions")


def cmd_edit(args) -> None:
    import numpy as np

    from tfgen.plotting import save_grid

    model, out, images, labels = _given(args, "edit", lambda model: None if hasattr(model, "edit") else (
        f"{model.registry_name} cannot edit an image: SDEdit needs a model that denoises from any noise level "
        f"(diffusion, flow, latent_diffusion)"))
    edits = model.edit(images, args.strength, n=args.n, labels=labels, seed=args.seed,
                       **_model_options(model.edit, steps=args.steps)).numpy()
    save_grid(np.concatenate([images[:, None], edits], axis=1).reshape(-1, *model.image_shape), out,
              ncols=args.n + 1)
    print(f"wrote {out}: per row the image and {args.n} edits at strength {args.strength}")


def cmd_interpolate(args) -> None:
    from tfgen.plotting import save_grid

    model, out, images, labels = _given(args, "interpolate", lambda model: None if hasattr(model, "interpolate") else (
        f"{model.registry_name} cannot interpolate between given images: it needs an encoder (vae, cvae)"))
    if len(images) != 2:
        raise ValueError(f"interpolate takes two images (--image A --image B or --from-test K1,K2), got {len(images)}")
    path = model.interpolate(images[:1], images[1:], steps=args.steps,
                             labels=None if labels is None else labels[:1]).numpy()
    save_grid(path[0], out, ncols=args.steps)
    print(f"wrote {out}: {args.steps} images from the first image's code to the second's")


def cmd_transfer(args) -> None:
    import numpy as np

    from tfgen.plotting import save_grid

    model, out, images, labels = _given(args, "transfer", lambda model: None if hasattr(model, "transfer_style") else (
        f"{model.registry_name} cannot redraw an image as another class: it needs a class-conditional encoder "
        f"and decoder (cvae)"))
    targets = list(range(model.num_classes)) if args.to == "all" else \
        parse_labels(args.to, model.num_classes, _class_names(args.run_dir))
    redrawn = model.transfer_style(images, labels, targets).numpy()
    save_grid(np.concatenate([images[:, None], redrawn], axis=1).reshape(-1, *model.image_shape), out,
              ncols=len(targets) + 1)
    print(f"wrote {out}: per row the image, then its style drawn as class {', '.join(map(str, targets))}")


if __name__ == "__main__":
    sys.exit(main())
