"""A picture of the real training images, as the model sees them: `real.png`.

`tfgen train` writes it to `RUN/samples/real.png` (and to TensorBoard, image
`real` at step 0, beside the sample grids) before the first epoch, and `tfgen
data --out DIR` to `DIR/real.png`: the images after cropping, resizing, alpha
compositing and channel conversion, so a wrong `--image-size`, `--channels` or
`--background` shows before hours of training rather than after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgen.plotting import MAX_CLASS_COLUMNS as MAX_COLUMNS  # as wide as the sample grids' class blocks

FILE_NAME = "real.png"
#: About this many images in all.
TOTAL = 100


def class_blocks(labels, class_names=(), max_columns: int = MAX_COLUMNS, total: int = TOTAL):
    """(example indices, columns, row labels) of a grid with one block of rows per class.

    Each class shows its first `total // classes` examples (whole rows of them), `max_columns` or fewer to a row;
    -1 marks a blank cell (a class with fewer examples), so that every block starts on a row
    of its own. The first row of a block is labelled with the class name. Unlabelled data
    (no `class_names`) is one block without labels.
    """
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == c) for c in range(len(class_names))] if class_names else [np.arange(len(labels))]
    per_class = max(1, total // len(groups))
    columns = max(1, min(max_columns, per_class, max(len(g) for g in groups)))
    per_class = per_class // columns * columns  # whole rows: 4 classes show 2 rows of 10 each, not 2.5
    cells, row_labels = [], []
    for c, members in enumerate(groups):
        chosen = list(members[:per_class])
        rows = max(1, -(-len(chosen) // columns))
        cells += chosen + [-1] * (rows * columns - len(chosen))
        row_labels += [str(class_names[c]), *[""] * (rows - 1)] if class_names else []
    return np.array(cells, np.int64), columns, (row_labels or None)


def save_real_grid(examples, path, log_dir=None) -> Path:
    """Write the grid of `examples` (a `tfgen.data.Examples`) to `path`; with `log_dir`, also to TensorBoard."""
    from tfgen.plotting import render_grid, save_grid

    info = examples.info
    cells, columns, row_labels = class_blocks(np.asarray(examples.labels), info.class_names or
                                              tuple(str(c) for c in range(info.num_classes)))
    images = np.ones((len(cells), *info.image_shape), np.float32)  # white where a class has no more
    images[cells >= 0] = np.asarray(examples.lookup(cells[cells >= 0])[0])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, path, ncols=columns, row_labels=row_labels)
    if log_dir is not None:
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(Path(log_dir) / "samples"))  # beside the sample grids
        with writer.as_default():
            tf.summary.image("real", render_grid(images, columns, row_labels=row_labels)[None], step=0,
                             description="real training images, one block of rows per class")
        writer.close()
    return path
