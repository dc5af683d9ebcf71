"""What a measured model trains on, and how much of its step is spent waiting for it.

`training_pipeline` builds the batches `tfgen train` feeds; `input_wait` times the same
compiled step fed by that pipeline and fed one batch held in memory, in alternating rounds
(see `INPUT_WAIT_METHOD`).
"""

from __future__ import annotations

import math
import statistics
import time

import tensorflow as tf

from tfgen import data as tfdata
from tfgen.bench.timing import time_fit

INPUT_WAIT_METHOD = ("1 − (median step time on one batch held in memory) / (median step time fed by the training "
                     "pipeline), clipped at 0; both through the same compiled fit step, in alternating rounds. Also "
                     "the pipeline alone: seconds per batch when it is iterated with no model")


def training_pipeline(batch_size: int, steps: int, dataset: str = tfdata.BUNDLED_NAME, seed: int = 0,
                      data_options: dict | None = None):
    """The batches `tfgen train` feeds (`tfgen.data.pipeline.training_batches`), enough for `steps` steps.

    data_options: how `dataset` is read (`tfgen.data.load_examples`' image_size, channels, ...), as
    `tfgen train --image-size/--channels` read it: the models are then built at that image shape.
    """
    from tfgen.data.pipeline import training_batches

    examples = tfdata.load_examples(dataset, "train", **(data_options or {}))
    if examples.info.num_examples < batch_size:  # full batches only, as `tfgen train` trains
        raise ValueError(f"{dataset} has {examples.info.num_examples} training examples, fewer than one batch of "
                         f"{batch_size}: use a smaller batch size")
    epochs = math.ceil(steps * batch_size / examples.info.num_examples) + 1
    return training_batches(examples, batch_size, seed, 0, epochs * (examples.info.num_examples // batch_size)), \
        examples.info


def pipeline_seconds_per_batch(dataset, batches: int) -> float:
    """Median seconds per batch of iterating `dataset` alone (after its first batch, which fills the shuffle buffer)."""
    iterator = iter(dataset)
    next(iterator)
    seconds = []
    for _ in range(batches):
        start = time.perf_counter()
        next(iterator)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def input_wait(model, batch, batch_size: int, steps: int, dataset: str, seed: int, rounds: int = 2,
               data_options: dict | None = None) -> dict:
    """The share of a training step spent waiting for the input pipeline (see `INPUT_WAIT_METHOD`).

    The compiled step is timed fed by the training pipeline and fed one batch held in
    memory, in alternating rounds, so that a change in machine load hits both alike.
    """
    held = tf.data.Dataset.from_tensors(batch).repeat()
    per_round = max(2, steps // (2 * rounds))
    fed, in_memory = [], []
    for r in range(rounds):
        pipeline, _ = training_pipeline(batch_size, per_round + 1, dataset, seed + 1 + r, data_options)
        fed += time_fit(model, pipeline, per_round, 1)["steady_step_seconds"]
        in_memory += time_fit(model, held, per_round, 1)["steady_step_seconds"]
    fed_seconds, memory_seconds = statistics.median(fed), statistics.median(in_memory)
    alone = pipeline_seconds_per_batch(training_pipeline(batch_size, steps + 1, dataset, seed, data_options)[0], steps)
    return {
        "wait_fraction": max(0.0, 1.0 - memory_seconds / fed_seconds),
        "wait_fraction_signed": 1.0 - memory_seconds / fed_seconds,
        "step_seconds_pipeline_fed": fed_seconds, "step_seconds_in_memory_batch": memory_seconds,
        "rounds": rounds, "steps_per_round": per_round,
        "pipeline_alone_seconds_per_batch": alone, "pipeline_alone_fraction_of_step": alone / fed_seconds,
    }
