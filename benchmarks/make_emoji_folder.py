#!/usr/bin/env python3
"""Build a labelled folder of colour images from the npm package `emoji-datasource-google`.

The package holds Google's Noto emoji (artwork under the Apache License 2.0) as
64×64 RGBA PNGs, and `emoji.json`, which gives each emoji a category. This script
writes one class folder per category, for `tfgen train MODEL --dataset folder:OUT`:

    mkdir -p /tmp/emoji && (cd /tmp/emoji && npm pack emoji-datasource-google)
    python -m benchmarks.make_emoji_folder /tmp/emoji/emoji-datasource-google-*.tgz /tmp/emoji-folder

Classes: the package's categories (`Smileys & Emotion` -> `smileys_and_emotion`,
…). Categories with fewer than `--min-class-size` images (default 20) are left
out, not merged: merging unrelated emoji into an "other" class would make a class
that means nothing; with package version 16.0.0 this drops `Component` (5
images: skin-tone swatches and hair parts). Skin-tone variants are kept as
images of their emoji's category (about 1,900 of the ~3,800 images, nearly all
in `people_and_body`); `--no-skin-tones` leaves them out for a more balanced set
of about 1,900 images.

Do not commit the images: the apple and facebook variants of this package carry
proprietary artwork, and even the Apache-licensed Google images do not belong in
this repository. The folder is written to a temporary name and renamed when
complete, so an interrupted run leaves no half-written folder behind.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

IMAGE_DIR = "img/google/64"


def package_root(path: Path, scratch: Path) -> Path:
    """The package directory (holding emoji.json) from an `npm pack` tarball or an unpacked package."""
    if path.is_file():
        with tarfile.open(path) as tar:
            tar.extractall(scratch, filter="data")
        path = scratch
    for candidate in (path, path / "package"):
        if (candidate / "emoji.json").is_file():
            return candidate
    raise SystemExit(f"error: no emoji.json in {path} (give the npm pack tarball or the unpacked package)")


def class_name(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", category.lower().replace("&", "and")).strip("_")


def images_by_class(root: Path, skin_tones: bool) -> dict:
    """{class name: [image file names]} of every emoji whose Google image is in the package."""
    classes = collections.defaultdict(list)
    for emoji in json.loads((root / "emoji.json").read_text(encoding="utf-8")):
        names = [emoji["image"]]
        if skin_tones:
            names += [variant["image"] for variant in emoji.get("skin_variations", {}).values()]
        classes[class_name(emoji["category"])] += [n for n in names if (root / IMAGE_DIR / n).is_file()]
    return classes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="emoji-datasource-google: the npm pack .tgz or the package folder")
    parser.add_argument("out", type=Path, help="the folder to write (must not exist)")
    parser.add_argument("--min-class-size", type=int, default=20, help="leave out smaller categories (default 20)")
    parser.add_argument("--no-skin-tones", dest="skin_tones", action="store_false",
                        help="leave out the skin-tone variants")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"error: {args.out} already exists")
    with tempfile.TemporaryDirectory() as scratch:
        root = package_root(args.package, Path(scratch))
        classes = images_by_class(root, args.skin_tones)
        kept = {name: files for name, files in classes.items() if len(files) >= args.min_class_size}
        partial = args.out.with_name(f".{args.out.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        for name, files in sorted(kept.items()):
            (partial / name).mkdir(parents=True)
            for file in files:
                shutil.copyfile(root / IMAGE_DIR / file, partial / name / file)
        partial.rename(args.out)
    for name, files in sorted(classes.items()):
        print(f"{name:24s} {len(files):5d}" + ("" if name in kept else "  (left out: too few)"))
    print(f"wrote {sum(map(len, kept.values()))} images in {len(kept)} class folders to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
