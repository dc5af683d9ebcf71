"""Keras callbacks used by `tfgen train` (and usable with any `model.fit`)."""

from __future__ import annotations

import inspect
import math
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfgen import runs
from tfgen.checks import one_of, positive_int, positive_number
from tfgen.io import save_model, write_json
from tfgen.plotting import class_row_labels, render_grid, sample_for_grid, save_grid


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
    """Save a grid of samples from fixed noise every `every` epochs, and after the last: `epoch_001.png`, …

    Fixed noise (an int seed) makes grids comparable across epochs: the same
    latent points, seen as the model learns. Grids of models that take labels
    have a block of rows per class, labelled with `class_names` (or the class index).
    The last epoch (`fit`'s last, or one after which training stops, e.g. on a
    time budget) always gets its grid, so a run ends with a picture of its model.

    sample_options: passed to `model.sample` where its signature takes them (e.g.
    `{"steps": 20}`: fewer reverse steps for a diffusion model's per-epoch grids).

    log_dir: also write each grid to TensorBoard there, as the image summary
    `samples` at step = epoch (1-based, like the file names), in the run
    `log_dir/samples`, next to the scalars of Keras' `TensorBoard` callback.
    """

    def __init__(self, directory, n: int = 100, seed: int = 1234, every: int = 1, log_dir=None, class_names=None,
                 sample_options=None):
        super().__init__()
        self.directory = Path(directory)
        self.n, self.seed, self.every = n, seed, every
        self.log_dir, self.class_names = log_dir, class_names
        self.sample_options = dict(sample_options or {})
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == (self.params or {}).get("epochs") or self.model.stop_training
        if (epoch + 1) % self.every == 0 or last:
            taken = inspect.signature(self.model.sample).parameters
            options = {k: v for k, v in self.sample_options.items() if k in taken}
            images, ncols = sample_for_grid(self.model, self.n, seed=self.seed, **options)
            row_labels = class_row_labels(self.model, class_names=self.class_names, n=self.n)
            save_grid(images, self.directory / f"epoch_{epoch + 1:03d}.png", ncols=ncols, row_labels=row_labels)
            if self.log_dir is not None:
                self._summarise(render_grid(images, ncols, row_labels=row_labels), epoch + 1)

    def _summarise(self, grid, step: int):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(Path(self.log_dir) / "samples"))
        with self._writer.as_default():
            tf.summary.image("samples", grid[None], step=step,
                             description=f"{len(grid)}-pixel-high grid of samples from fixed noise")
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EpochCSVLogger(keras.callbacks.CSVLogger):
    """Keras' `CSVLogger`, with epochs counted from 1 like the sample grids (`epoch_001.png`) and
    the `--epochs` a user types: row `epoch = 3` is the model after three epochs."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the full model (weights, optimiser state, config) at each epoch end, atomically.

    Writes a run's checkpoint files into `directory` (`tfgen.runs`: `last.keras`
    and `state.json`, {"epoch": completed epochs, "step": optimiser steps done,
    counted from `first_step`}); a crash mid-write leaves the previous checkpoint intact.
    """

    def __init__(self, directory, first_step: int = 0):
        super().__init__()
        self.directory = Path(directory)
        self.step = first_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        save_model(self.model, self.directory / runs.CHECKPOINT_NAME)
        write_json(self.directory / runs.STATE_NAME, {"epoch": epoch + 1, "step": self.step, "logs": dict(logs or {})})


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss (or a weight) became NaN or infinite."""


class TerminateOnNonFinite(keras.callbacks.TerminateOnNaN):
    """Stop training at the first step that leaves a NaN or infinite loss or weight, before anything can save it.

    Keras' `TerminateOnNaN` watches `loss` only and, by default, lets the epoch
    end normally, so a checkpoint callback then saves the NaN weights. This one
    raises `NonFiniteLossError` from the batch itself, naming the epoch and step
    (1-based): `fit` stops there, no epoch-end callback runs, the last checkpoint
    stays as it was. After every step it checks

    * every value the step logs (a GAN logs `d_loss` and `g_loss`), and
    * that every floating-point weight is finite. A loss does not always show a
      NaN weight: on CPUs with oneDNN, Grappler fuses Conv2D + BiasAdd + ReLU
      into one kernel whose ReLU maps NaN to 0, so a NaN convolution kernel
      followed by a ReLU gives finite outputs and a finite loss (its gradient is
      masked too) and the NaN would only be found at the end of the epoch. The
      update of an epoch's last step shows in no loss at all. The check is one
      compiled reduction over the weights per step (a read of every weight:
      small next to the step, which reads and writes each weight several times).

    Put it before the checkpoint callback. note: appended to the message (e.g.
    where the last good checkpoint is).
    """

    def __init__(self, note: str = ""):
        super().__init__(raise_error=True)
        self.note = note
        self._epoch = 0
        self._weights_are_finite = None

    def on_train_begin(self, logs=None):
        weights = [w for w in self.model.weights if "float" in str(w.dtype)]
        self._weights_are_finite = tf.function(
            lambda: tf.reduce_all([tf.reduce_all(tf.math.is_finite(w.value)) for w in weights]))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        where = f"at epoch {self._epoch + 1}, step {batch + 1}"
        bad = {k: float(v) for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            self._fail(", ".join(f"{k} = {v}" for k, v in bad.items()) + f" {where}")
        if self._weights_are_finite is not None and not bool(self._weights_are_finite()):
            self._fail(f"non-finite weights ({', '.join(self._non_finite_weights()[:3])}) {where}")

    def _non_finite_weights(self) -> list[str]:
        return [w.path for w in self.model.weights
                if "float" in str(w.dtype) and not np.isfinite(keras.ops.convert_to_numpy(w)).all()]

    def _fail(self, what: str):
        raise NonFiniteLossError(f"training stopped: {what}{'; ' + self.note if self.note else ''}")


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) or `kill` (SIGTERM) ends training cleanly: after the current epoch and its checkpoint.

    The first signal asks to stop: the epoch in progress finishes, its epoch-end
    callbacks (a checkpoint) run, then `fit` returns; `stopped_epoch` is then the
    number of epochs done (None when not interrupted) and `signum` the signal
    received. A second signal stops at once with `KeyboardInterrupt`: that epoch
    is lost, the previous checkpoint stays. SIGTERM is what `kill`, `timeout`,
    job schedulers and container runtimes send before SIGKILL: treating it like
    Ctrl-C means a stopped job can be resumed. The handlers are installed while
    `fit` runs (from the main thread only); call `restore()` in a `finally` too,
    as Keras skips `on_train_end` when `fit` raises.
    """

    SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        super().__init__()
        self.requested, self.stopped_epoch, self.signum, self._previous = False, None, None, {}

    def on_train_begin(self, logs=None):
        self.requested, self.stopped_epoch, self.signum = False, None, None
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            self.restore()
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        name = self.SIGNALS[signum]
        print(f"\n{name}: stopping after this epoch and its checkpoint ({name} again to stop now and lose this epoch)",
              file=sys.stderr, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.requested:
            self.model.stop_training = True
            self.stopped_epoch = epoch + 1

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self):
        for signum, previous in self._previous.items():
            # None: a handler not installed from Python; SIGINT's is then Python's default.
            signal.signal(signum, previous if previous is not None else
                          signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        self._previous = {}


class SampleScore(keras.callbacks.Callback):
    """Score `n` samples every `every` epochs and add the scores to the epoch logs.

    Logs `fid` (Fréchet distance on evaluator features — not Inception FID) and
    `kid` (kernel distance) against the test split of `dataset`, using the cached
    evaluator classifier (`tfgen.eval.get_evaluator`). Epochs that are not scored
    log NaN, so the keys exist from the first epoch on (CSVLogger fixes its
    columns at the first epoch) and `ModelCheckpoint(monitor="fid", mode="min",
    save_best_only=True)` skips them (NaN never compares better). The last
    epoch is always scored.

    Put it *before* CSVLogger, TensorBoard and ModelCheckpoint in the callback
    list: callbacks run in order and read the logs this one writes. Samples use
    a fixed seed, so successive scores differ by the model, not the noise;
    models that take labels sample with balanced labels. A few hundred samples cost a
    second or two for fast samplers; FID at small n is biased upwards, so
    compare scores only at the same n.
    """

    def __init__(self, dataset: str = "mnist_bundled", n: int = 500, every: int = 1, seed: int = 4321,
                 evaluator=None, evaluator_dir=None, metrics=("fid", "kid"), verbose: int = 0):
        super().__init__()
        if not metrics:
            raise ValueError("metrics must name at least one of 'fid', 'kid', got none")
        for name in metrics:
            one_of(name, ("fid", "kid"), "metric")
        self.dataset, self.n, self.every, self.seed = dataset, positive_int(n, "n"), positive_int(every, "every"), seed
        self.evaluator, self.evaluator_dir = evaluator, evaluator_dir
        self.metric_names, self.verbose = tuple(metrics), verbose
        self._real = None

    def on_train_begin(self, logs=None):
        import numpy as np

        from tfgen.data import load_arrays
        from tfgen.eval.evaluator import get_evaluator

        if self.evaluator is None:
            self.evaluator = get_evaluator(self.dataset, directory=self.evaluator_dir)
        if self._real is None:
            x_test, _ = load_arrays(self.dataset, "test")
            self._real = self.evaluator.features(x_test)
            self._nan = float(np.nan)

    def score(self) -> dict:
        from tfgen.eval.scoring import balanced_labels, generate
        from tfgen.eval.metrics import frechet_distance, kernel_inception_distance

        model = self.model
        labels = balanced_labels(self.n, model.num_classes) if model.accepts_labels else None
        feats = self.evaluator.features(generate(model, self.n, seed=self.seed, labels=labels))
        out = {}
        if "fid" in self.metric_names:
            out["fid"] = frechet_distance(feats, self._real)
        if "kid" in self.metric_names:
            out["kid"], _ = kernel_inception_distance(feats, self._real, num_subsets=20,
                                                      subset_size=min(1000, self.n, len(self._real)), seed=0)
        return out

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every == 0 or last or getattr(self.model, "stop_training", False):
            values = self.score()
            if self.verbose:
                print(" — ".join(f"{k} {v:.4g}" for k, v in values.items()) + f" ({self.n} samples)")
        else:
            values = {name: self._nan for name in self.metric_names}
        if logs is not None:
            logs.update(values)


class TimeBudget(keras.callbacks.Callback):
    """Stop training once `seconds` of wall-clock time have passed since `fit` began.

    Checked after every batch, so training stops at the first step boundary at
    or past the budget (within one step of it); that epoch still ends normally
    (validation, epoch-end callbacks, checkpoints). Adds `elapsed_seconds` to the
    epoch logs (unless `log_elapsed` is False: a run's history.csv keeps the
    columns it started with); `stopped_early` tells whether the budget, rather
    than the epoch count, ended the run; `batches` counts the steps of this `fit`.

    exclude_first_batch: start the clock when the first batch ends, so that
        tracing/compiling the step (seconds for big graphs, longer on a busy
        machine) does not eat into a short budget; `first_batch_seconds` records it.
    clock: seconds as a float (default `time.perf_counter`); tests pass a fake one.
    """

    def __init__(self, seconds: float, exclude_first_batch: bool = False, clock=time.perf_counter,
                 log_elapsed: bool = True):
        super().__init__()
        self.seconds = positive_number(seconds, "seconds")
        self.exclude_first_batch, self.clock, self.log_elapsed = exclude_first_batch, clock, log_elapsed
        self.stopped_early = False
        self.batches = 0
        self.first_batch_seconds = None

    def on_train_begin(self, logs=None):
        self._start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self._start

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == 1:
            self.first_batch_seconds = self.elapsed()
            if self.exclude_first_batch:
                self._start = self.clock()
                return
        if self.elapsed() >= self.seconds:
            self._stop()

    def _stop(self):
        self.stopped_early = True
        self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.log_elapsed:
            logs["elapsed_seconds"] = self.elapsed()


class StepBudget(TimeBudget):
    """Stop training after exactly `steps` batches (or once `seconds` have passed, if that comes first).

    Checked after every batch, so `fit` stops mid-epoch and the batches seen are
    the first `steps` of the dataset's own order: two runs that differ in anything
    but their data (a dtype policy, say) train on the same batches. One batch is
    one optimiser step with `steps_per_execution=1`, what tfgen compiles with.
    `tfgen train --steps` stops with it (on a resume: the steps still to do).
    Timed as `TimeBudget` times them.
    """

    def __init__(self, steps: int, exclude_first_batch: bool = False, seconds: float = math.inf, **kwargs):
        super().__init__(seconds, exclude_first_batch, **kwargs)
        self.steps = positive_int(steps, "steps")

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.batches >= self.steps:
            self._stop()


class TimeEstimate(keras.callbacks.Callback):
    """After the first few steps, print how long training should take: `~7 min for 2,000 steps at 0.21 s/step`.

    The first `warmup` steps are not timed (tracing, compiling, and the slower first
    runs of a compiled step: on a CPU these were ten times the steady rate); the rate
    is that of the next `after` steps. `steps`: the steps this `fit` will train (None:
    until a time budget of `seconds` ends; the line then says how many steps it holds).
    Counts training steps only: validation, sample grids and checkpoints come on top.
    A run too short to measure prints nothing.
    """

    def __init__(self, steps: int | None, seconds: float | None = None, warmup: int = 5, after: int = 20,
                 clock=time.perf_counter, file=None):
        super().__init__()
        self.steps, self.seconds, self.clock, self.file = steps, seconds, clock, file
        self.warmup, self.after = positive_int(warmup, "warmup"), positive_int(after, "after")
        self.message = None

    def on_train_begin(self, logs=None):
        self._batches, self._start = 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches == self.warmup:
            self._start = self.clock()
        elif self._batches == self.warmup + self.after and self.message is None:
            rate = (self.clock() - self._start) / self.after
            self.message = self.describe(rate)
            print(self.message, file=self.file or sys.stderr, flush=True)

    def describe(self, rate: float) -> str:
        if self.steps is not None:
            total = rate * self.steps
            if self.seconds is not None and total > self.seconds:
                return (f"estimate: the time budget ends first, after ~{int(self.seconds / rate):,} of "
                        f"{self.steps:,} steps, at {rate:.3g} s/step")
            return f"estimate: ~{duration(total)} for {self.steps:,} steps at {rate:.3g} s/step"
        return f"estimate: ~{int(self.seconds / rate):,} steps in {duration(self.seconds)} at {rate:.3g} s/step"


def duration(seconds: float) -> str:
    """`45 s`, `7 min`, `2.3 h`: a duration as a person reads it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EpochSeed(keras.callbacks.Callback):
    """At the start of epoch e, reset every random stream of the model to a state fixed by (seed, e).

    Keras does not save `SeedGenerator` states in `.keras` files; resetting them
    per epoch makes a resumed run draw the same noise as an uninterrupted one.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        for i, state in enumerate(states):
            stream = (self.seed * 1_000_003 + epoch * 7_919 + i + 1) % 2**31
            state.assign(keras.ops.convert_to_tensor([stream, 0], dtype=state.dtype))


class OpenEndedProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress logger, with `Epoch 3` instead of `Epoch 3/1000000000` when the run has no epoch count.

    A run on a time budget alone (`--minutes`) is given an epoch count it will never reach (its
    budget callback stops it); Keras would print that number at every epoch.
    """

    def __init__(self, open_ended: bool):
        super().__init__()
        self.open_ended = open_ended

    def on_epoch_begin(self, epoch, logs=None):
        if not self.open_ended:
            return super().on_epoch_begin(epoch, logs)
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            print(f"Epoch {epoch + 1}", flush=True)
