"""Make the trained presets that ship with tfgen (tfgen/pretrained/<dataset>/<family>/): a maintainer's command.

    python -m benchmarks.make_presets --runs runs/presets                      # train what is missing, then write
    python -m benchmarks.make_presets --runs runs/presets --only digits/cgan
    python -m benchmarks.make_presets --from emoji/flow=DIR --from emoji/diffusion=DIR2 --only emoji/flow,emoji/diffusion

Each digits entry of `PRESETS` is one `tfgen train` run on the bundled digits, made as

    tfgen train FAMILY --dataset mnist_bundled --steps N --seed 0 --out RUNS/FAMILY

unless RUNS/FAMILY already holds a model (a finished run, or one that checkpointed), which is then used as
it is. The preset is written from the run's final weights (`tfgen.pretrained.making.save_preset`) with that
command in its metadata.json. The emoji entries are not trained here (the
Noto emoji folder cannot ship with tfgen): give their model with `--from NAME=DIR`, a `tfgen train` run
on the folder at 32×32 (metadata.json then records its command, the folder by its name only) or a
directory the colour leaderboard saved (`--save-models DIR`: DIR/<family>/model.keras, recorded with the
leaderboard's command).

Metrics are not measured here: `python -m benchmarks.pretrained` scores the written files and puts its
numbers into each metadata.json (a preset remade here starts without metrics).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, public_dataset_name

#: The bundled digits: one preset per family, its training steps (at most about ten minutes each on 2 CPU cores).
DIGITS_STEPS = {"cgan": 2000, "diffusion": 1320, "vae": 1500, "cvae": 1500, "gan": 8000, "flow": 1320,
                "latent_diffusion": 2000, "pixelcnn": 2000, "pixel_transformer": 200}
#: The Noto emoji at 32×32 (9 classes, their folders' names): the best two families of the colour leaderboard.
EMOJI_CLASSES = ["activities", "animals_and_nature", "flags", "food_and_drink", "objects", "people_and_body",
                 "smileys_and_emotion", "symbols", "travel_and_places"]
EMOJI_COMMAND = ("python -m benchmarks.leaderboard --name colour_10min --dataset folder:emoji --image-size 32 "
                 "--minutes 10 --n 500 --n-likelihood 200 --models {family} --save-models DIR")


def digits_command(family: str, steps: int, out="RUN") -> list[str]:
    return ["tfgen", "train", family, "--dataset", "mnist_bundled", "--steps", str(steps), "--seed", "0",
            "--out", str(out)]


#: name → how the preset is made: `train` (a `tfgen train` command, run if its run is missing) or `command`
#: (trained elsewhere: its model comes from --from NAME=DIR), and what metadata.json says of its data.
PRESETS = {
    **{f"digits/{family}": {"family": family, "steps": steps, "train": digits_command(family, steps),
                            "dataset": "mnist_bundled"}
       for family, steps in DIGITS_STEPS.items()},
    **{f"emoji/{family}": {"family": family, "command": EMOJI_COMMAND.format(family=family),
                           "dataset": "folder:emoji", "data_options": {"image_size": [32, 32]},
                           "class_names": EMOJI_CLASSES}
       for family in ("flow", "diffusion")},
}
SHIPPED = ROOT / "tfgen" / "pretrained"


def has_model(run: Path) -> bool:
    from tfgen import runs

    try:
        runs.run_checkpoint(run)
    except ValueError:
        return False
    return True


def make(name: str, entry: dict, runs_dir: Path, given: dict[str, Path], out_root: Path) -> Path | None:
    """The preset `name` written from its run (trained first when missing); None when an emoji entry's
    model was not given."""
    from tfgen import runs
    from tfgen.pretrained.making import save_preset, training_command

    if "train" in entry:
        run = runs_dir / entry["family"]
        if not has_model(run):
            argv = [sys.executable, "-m", "tfgen", *entry["train"][1:-1], str(run)]
            print(f"{name}: training: {' '.join(argv[2:])}", flush=True)
            subprocess.run(argv, check=True)
        else:
            print(f"{name}: using the model of {run}", flush=True)
        # The command as the run's config.json records it (`save_preset`'s default): a reused run may have
        # been trained otherwise than the table says, and metadata.json must say how it was.
        command, table = None, " ".join(entry["train"][:-2])  # without --out: the directory is this machine's
        recorded = runs.read_run_config(run)
        if (recorded.get("steps"), recorded.get("seed")) != (entry["steps"], 0):
            print(f"{name}: note: {run} was not trained as the table says ({table}): its metadata.json "
                  f"records the run's own settings", flush=True)
    elif name in given:
        run, command = given[name], entry["command"]
        if (run / runs.CONFIG_FILE).is_file():  # a `tfgen train` run: its own command, the folder by name only
            recorded = runs.read_run_config(run)
            command = training_command({**recorded, "dataset": public_dataset_name(recorded["dataset"])})
    else:
        print(f"{name}: skipped: give the leaderboard's saved model with --from {name}=DIR", flush=True)
        return None
    # The run's final weights, not the epoch `--keep best` chose: on the digits the best-kept cGAN epoch
    # (random-feature KID) scored FID 10.1 and drew the asked digit 92.6% of the time on the digits
    # evaluator, the final one 4.11 and 100% (`tfgen eval RUN --checkpoint best|last`, 1000 samples).
    return save_preset(run, out_root / name, command=command, dataset=entry["dataset"],
                       data_options=entry.get("data_options"), class_names=entry.get("class_names"),
                       checkpoint="last")


def size_table(paths) -> str:
    from tfgen.pretrained import read_metadata

    lines = ["| preset | parameters shipped | weights MB |", "|---|---:|---:|"]
    total = 0
    for path in paths:
        meta = read_metadata(path)
        total += meta["weights_bytes"]
        lines.append(f"| {path.parent.name}/{path.name} | {meta['parameters'] / 1e6:.2f}M | "
                     f"{meta['weights_bytes'] / 1e6:.2f} |")
    lines.append(f"| all | | {total / 1e6:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/presets", help="where the digits runs are (or are trained to): "
                                                          "RUNS/<family> (default runs/presets)")
    p.add_argument("--only", help="comma-separated preset names (default: all of " + ", ".join(PRESETS) + ")")
    p.add_argument("--from", dest="given", action="append", default=[], metavar="NAME=DIR",
                   help="an emoji preset's trained model: a directory holding model.keras (repeatable)")
    p.add_argument("--out", default=str(SHIPPED), help="root of the preset directories (default tfgen/pretrained)")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(PRESETS)
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        p.error(f"unknown preset {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    given = {}
    for item in args.given:
        name, sep, path = item.partition("=")
        if not sep or name not in PRESETS or "command" not in PRESETS[name]:
            p.error(f"--from expects NAME=DIR with NAME one of {', '.join(n for n in PRESETS if 'command' in PRESETS[n])}"
                    f", got {item!r}")
        given[name] = Path(path)
    written = [path for name in names
               if (path := make(name, PRESETS[name], Path(args.runs), given, Path(args.out))) is not None]
    print(size_table(written))


if __name__ == "__main__":
    main()
