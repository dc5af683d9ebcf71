#!/usr/bin/env python3
"""Build a labelled folder of colour icons from a Debian icon theme (default: Oxygen's 64-px PNGs).

A second real colour data set besides the Noto emoji, one that installs as a package:

    apt-get install -y oxygen-icon-theme
    python -m benchmarks.make_icon_folder /tmp/icons

writes one class folder per context folder of the theme (`apps`, `devices`,
`mimetypes`, `places` by default: 412 icons, the small-folder case tfgen
is tuned for), for `tfgen train MODEL --dataset folder:/tmp/icons`. The icons
are 64×64 RGBA PNGs; read them at `--image-size 32` for the 32-px experiments.

Symbolic links (aliases of another icon) are skipped and byte-identical files
are kept once, so no image is in the set twice (a duplicate could land in both
the training and the test split and flatter every score). The Oxygen icons are
under the LGPL: build the folder, never commit it. The folder is written to a
temporary name and renamed when complete, so an interrupted run leaves no
half-written folder behind.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import sys
import tempfile
from pathlib import Path

DEFAULT_THEME = Path("/usr/share/icons/oxygen/base")
DEFAULT_CLASSES = "apps,devices,mimetypes,places"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which the format puts first."""
    return struct.unpack(">II", data[16:24])


def icons_by_class(size_dir: Path, classes: list[str], pixels: int) -> dict[str, list[Path]]:
    """{class: [PNG files]} under SIZE_DIR/<class>/: PIXELS×PIXELS only, no links, no repeated contents.

    A few themes put a smaller drawing in a size folder (Oxygen: three 22-px icons among its
    64-px ones); upscaled, they would be blurred images unlike the rest, so they are left out.
    """
    seen: set[str] = set()
    found = {}
    for name in classes:
        folder = size_dir / name
        if not folder.is_dir():
            available = sorted(p.name for p in size_dir.iterdir() if p.is_dir())
            raise SystemExit(f"error: no folder {folder}; this theme has: {', '.join(available)}")
        files = []
        for path in sorted(folder.glob("*.png")):
            if path.is_symlink():
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if png_size(data) == (pixels, pixels) and digest not in seen:
                seen.add(digest)
                files.append(path)
        found[name] = files
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (must not exist)")
    parser.add_argument("--theme", type=Path, default=DEFAULT_THEME,
                        help=f"the theme's folder of size folders (default {DEFAULT_THEME})")
    parser.add_argument("--size", default="64x64", help="the size folder to read (default 64x64)")
    parser.add_argument("--classes", default=DEFAULT_CLASSES,
                        help=f"comma-separated context folders, one class each (default {DEFAULT_CLASSES})")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"error: {args.out} already exists")
    size_dir = args.theme / args.size
    if not size_dir.is_dir():
        raise SystemExit(f"error: no folder {size_dir} (install the theme: apt-get install -y oxygen-icon-theme)")
    pixels = int(args.size.split("x")[0])
    classes = icons_by_class(size_dir, [c.strip() for c in args.classes.split(",") if c.strip()], pixels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{args.out.name}-", dir=args.out.parent))
    try:
        for name, files in classes.items():
            (scratch / name).mkdir()
            for path in files:
                shutil.copyfile(path, scratch / name / path.name)
        scratch.rename(args.out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    counts = ", ".join(f"{name} {len(files)}" for name, files in classes.items())
    print(f"wrote {sum(map(len, classes.values()))} icons in {len(classes)} classes to {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
