"""Keras callbacks used by `tfgen train` (and usable with any `model.fit`)."""

from __future__ import annotations

import time
from pathlib import Path

import keras

from tfgen.io import save_model, write_json
from tfgen.plotting import sample_for_grid, save_grid


class Throughput(keras.callbacks.Callback):
    """Add `epoch_seconds` and `images_per_second` (training batches only) to each epoch's logs.

    Place it before `CSVLogger` so the values reach `history.csv`. The clock runs
    from the first to the last training batch of the epoch, so validation, sample
    grids and checkpoints are not counted; the first epoch includes tracing.
    """

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._batches:
            seconds = self._last - self._start
            logs["epoch_seconds"] = seconds
            logs["images_per_second"] = self._batches * self.batch_size / seconds


class SampleGrid(keras.callbacks.Callback):
    """Save a grid of samples from fixed noise every `every` epochs: `epoch_001.png`, …

    Fixed noise (an int seed) makes grids comparable across epochs: the same
    latent points, seen as the model learns.
    """

    def __init__(self, directory, n: int = 100, seed: int = 1234, every: int = 1):
        super().__init__()
        self.directory = Path(directory)
        self.n, self.seed, self.every = n, seed, every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            images, ncols = sample_for_grid(self.model, self.n, seed=self.seed)
            save_grid(images, self.directory / f"epoch_{epoch + 1:03d}.png", ncols=ncols)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the full model (weights, optimiser state, config) at each epoch end, atomically.

    Writes `last.keras` and `state.json` ({"epoch": completed epochs}); a crash
    mid-write leaves the previous checkpoint intact.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = Path(directory)

    def on_epoch_end(self, epoch, logs=None):
        save_model(self.model, self.directory / "last.keras")
        write_json(self.directory / "state.json", {"epoch": epoch + 1, "logs": dict(logs or {})})
