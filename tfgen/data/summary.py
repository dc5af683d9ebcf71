"""What a dataset holds, said before anything trains: the summary `tfgen data` and `tfgen train` print.

    data: folder:/home/me/pictures
      images: 400 read, used as 32x32x3 (stored 64x64; 12 smaller, upscaled: e.g. red/tiny.png)
      skipped: 2 files: not an image (.txt, .webp are not read): notes.txt, blue/x.webp
      classes: 4: blue 100, green 100, red 100, yellow 100
      split: 360 train, 40 held out for evaluation (10% of each class)

A folder is summarised from its files alone (`folder_summary`: Pillow reads
the headers, no TensorFlow, no decoding), so `check_folder` can refuse a
folder a run cannot use — missing, empty, a corrupt file, no classes for a
conditional model, fewer images than one batch — in under a second, in that
order, before the command line imports TensorFlow. A loaded dataset of any
kind is summarised from its two splits (`summarise`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgen.data import folder as folder_data
from tfgen.data.split import DEFAULT_HOLDOUT, holdout_indices
from tfgen.length import steps_per_pass

#: Names listed per kind of skipped file; the rest are counted.
_NAMED = 5


@dataclass(frozen=True)
class DataSummary:
    """A dataset as `tfgen data` describes it.

    class_counts: images per class over both splits (one count, of all images, when unlabelled);
    skipped: (why, [file, ...]) pairs of files that were not read; notes: other remarks, one line each.
    """

    source: str
    image_shape: tuple
    class_names: tuple
    class_counts: tuple
    train: int
    test: int
    holdout: float | None = None
    skipped: tuple = ()
    notes: tuple = ()

    @property
    def images(self) -> int:
        return self.train + self.test

    def text(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        lines = [f"data: {self.source}", f"  images: {self.images} read, used as {shape}"
                 + "".join(f"; {note}" for note in self.notes)]
        skipped = sum(len(names) for _, names in self.skipped)
        if skipped:
            lines.append(f"  skipped: {skipped} file(s): " + "; ".join(
                f"{why}: {_named(names)}" for why, names in self.skipped if names))
        if self.class_names:
            lines.append(f"  classes: {len(self.class_names)}: "
                         + ", ".join(f"{name} {count}" for name, count in zip(self.class_names, self.class_counts)))
        else:
            lines.append("  classes: none (unlabelled: models that need labels want one subfolder per class)")
        share = f" ({100 * self.holdout:g}% of each class)" if self.holdout is not None else ""
        lines.append(f"  split: {self.train} train, {self.test} held out for evaluation{share}")
        return "\n".join(lines)


def _named(names) -> str:
    more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    return ", ".join(names[:_NAMED]) + more


def folder_summary(spec: str, image_size=None, channels=None, skip_corrupt: bool = False,
                   holdout: float = DEFAULT_HOLDOUT, limit: int | None = None, **_ignored) -> DataSummary:
    """The summary of a `folder:DIR` dataset from its files' headers (Pillow, no TensorFlow).

    Raises the folder's one-line errors (`tfgen.data.folder.survey`). Options as `tfgen.data.load_examples`'
    (`background` and the like change no count: ignored).
    """
    from tfgen.checks import fraction

    holdout = fraction(holdout, "holdout", closed=False)
    found = folder_data.survey(spec[len(folder_data.PREFIX):], image_size, channels, skip_corrupt)
    readable = found.readable
    keys, labels = [found.paths[i] for i in readable], found.labels[readable]
    train, test = (len(holdout_indices(keys, labels, split, holdout)) for split in ("train", "test"))
    if limit is not None:
        train, test = min(train, limit), min(test, limit)
    counts = np.bincount(labels, minlength=max(len(found.class_names), 1))
    return DataSummary(resolve_folder(spec), (*found.size, found.channels), found.class_names,
                       tuple(int(c) for c in counts), train, test, holdout, _skipped(found), _notes(found))


def summarise(name: str, train, test, **options) -> DataSummary:
    """The summary of a loaded dataset: `train` and `test` are its two `tfgen.data.Examples`.

    For a folder, the files that were not read come from its survey (`folder_summary`).
    """
    info = train.info
    labels = np.concatenate([np.asarray(train.labels), np.asarray(test.labels)])
    counts = np.bincount(labels, minlength=max(info.num_classes, 1))
    names = tuple(info.class_names) or tuple(str(c) for c in range(info.num_classes))
    skipped, notes, holdout = (), (), None
    if name.startswith(folder_data.PREFIX):
        found = folder_summary(name, **options)
        skipped, notes, holdout = found.skipped, found.notes, found.holdout
        name = found.source
    return DataSummary(name, tuple(info.image_shape), names, tuple(int(c) for c in counts),
                       info.num_examples, test.info.num_examples, holdout, skipped, notes)


def resolve_folder(spec: str) -> str:
    """`folder:DIR` with DIR absolute (`~` expanded, symlinks resolved)."""
    return folder_data.PREFIX + str(Path(spec[len(folder_data.PREFIX):]).expanduser().resolve())


def _skipped(found) -> tuple:
    others = folder_data.other_files(found.root)
    suffixes = sorted({Path(name).suffix.lower() or "no extension" for name in others})
    corrupt = [f"{path} ({error})" for path, error in sorted(found.unreadable.items())]
    return tuple((why, names) for why, names in (
        (f"not an image ({', '.join(suffixes)} not read; images are {', '.join(folder_data.IMAGE_EXTENSIONS)})",
         others),
        ("corrupt", corrupt),
    ) if names)


def _notes(found) -> tuple:
    """The stored sizes when they differ from the one used, and the images that had to be upscaled."""
    sizes = collections.Counter((h.height, h.width) for h in found.headers.values())
    notes = []
    if set(sizes) != {tuple(found.size)}:
        common = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(3))
        notes.append(f"stored {common}{', ...' if len(sizes) > 3 else ''}, centre-cropped and resized")
    small = [found.paths[i] for i, h in sorted(found.headers.items())
             if h.height < found.size[0] or h.width < found.size[1]]
    if small:
        notes.append(f"{len(small)} smaller than {found.size[0]}x{found.size[1]}, upscaled (blurred): "
                     f"e.g. {small[0]}")
    return tuple(notes)


def check_source(spec: str) -> None:
    """A dataset path that is missing or lacks its prefix, answered without TensorFlow (the loaders' own errors)."""
    from tfgen.data import IDX_PREFIX, _refuse_bare_path
    from tfgen.data.npz import PREFIX as NPZ_PREFIX

    if spec.startswith(IDX_PREFIX):
        from tfgen.data.idx import find_idx_split

        for split in ("train", "test"):
            find_idx_split(spec[len(IDX_PREFIX):], split)
    elif spec.startswith(NPZ_PREFIX) and not Path(spec[len(NPZ_PREFIX):]).is_file():
        raise ValueError(f"{spec}: file does not exist")
    elif not spec.startswith(folder_data.PREFIX):
        _refuse_bare_path(spec)


def check_folder(spec: str, batch_size: int, needs_labels: str | None = None, **options) -> DataSummary:
    """Everything about a `folder:` dataset that can fail a training run, checked without TensorFlow.

    In this order: the folder itself, its files (`folder_summary`), labels when `needs_labels`
    (the model, e.g. "cgan (tiny preset)", that needs them), then that one batch fits.
    """
    from tfgen.data import DatasetInfo, require_labels

    summary = folder_summary(spec, **options)
    if needs_labels:
        require_labels(DatasetInfo(spec, summary.image_shape, len(summary.class_names), summary.train), needs_labels)
    steps_per_pass(summary.train, batch_size)
    return summary
