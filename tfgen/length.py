"""How long `tfgen train` trains: a number of optimiser steps, of passes over the data, or of minutes.

The unit that matters is the optimiser step: a family's default length
(`FIT_DEFAULTS["steps"]`) gives a folder of 400 images as many updates as the
8,499 bundled digits, where a number of passes would give it 20 times fewer.
`--epochs` still counts passes over the data; `--minutes` is a wall-clock budget.

Keras' epoch stays the unit of logging and checkpointing (a history.csv row,
a sample grid, a checkpoint, a validation pass), but it is not one pass over the
data: `epoch_length` chooses it in steps. No TensorFlow here: the command line checks
a length before TensorFlow loads.
"""

from __future__ import annotations

import math

from tfgen.checks import one_of, positive_int, positive_number

#: The shortest epoch (in steps) `epoch_length` chooses, unless the run itself is shorter.
#: The work at each epoch's end — validation on the test split, a sample grid, a checkpoint —
#: was measured on the bundled digits (2 shared CPU cores) at 10 to 20 training steps' worth
#: for the default presets: PixelCNN (0.43 s/step) spends 5.4 s validating 1,501 test images,
#: 2.2 s drawing its 36-image grid and 0.15 s saving; a VAE step is far cheaper but its
#: checkpoint and validation are too. 200 steps keep that work near a tenth of an epoch or
#: less. One pass over a folder of 400 images at batch 64 is 6 steps: an epoch of one pass
#: would spend more time on its grid and checkpoint than on training.
MIN_EPOCH_STEPS = 200

#: What `augment` may ask for: random horizontal flips of the training images.
AUGMENTATIONS = ("flip",)

#: Keys of config.json that say how long a run trains (None: not asked for).
LENGTH_KEYS = ("steps", "epochs", "minutes")


def check_length(steps=None, epochs=None, minutes=None, prefix: str = "") -> dict:
    """The length asked for, checked: {"steps", "epochs", "minutes"}, None where not given.

    steps and epochs are positive integers, and exclusive (two ways to say the same
    thing); minutes a positive number, which may come with either: training stops at
    whichever ends first. `prefix`: "--" to name the command-line flags in errors.
    """
    if steps is not None and epochs is not None:
        raise ValueError(f"give {prefix}steps (optimiser steps) or {prefix}epochs (passes over the data), not both")
    return {"steps": None if steps is None else positive_int(steps, f"{prefix}steps"),
            "epochs": None if epochs is None else positive_int(epochs, f"{prefix}epochs"),
            "minutes": None if minutes is None else positive_number(minutes, f"{prefix}minutes")}


def check_augment(augment, prefix: str = ""):
    """None, or one of `AUGMENTATIONS`."""
    return None if augment is None else one_of(augment, AUGMENTATIONS, f"{prefix}augment value")


def steps_per_pass(num_examples: int, batch_size: int) -> int:
    """Full batches in one pass over `num_examples` (the remainder is dropped: every step sees a full batch);
    a one-line error when not even one batch fits."""
    if batch_size > num_examples:
        raise ValueError(f"batch_size {batch_size} is larger than the {num_examples} training examples "
                         f"(choose --batch-size {max(1, num_examples // 2)} or smaller, or add images)")
    return num_examples // batch_size


def total_steps(length: dict, steps_per_pass: int, default_steps: int | None) -> int | None:
    """The optimiser steps a run trains to: `length["steps"]`, or its epochs in steps; with neither, None
    under a time budget (it alone ends the run), else `default_steps` (the family's `FIT_DEFAULTS`)."""
    if length.get("steps") is not None:
        return length["steps"]
    if length.get("epochs") is not None:
        return length["epochs"] * steps_per_pass
    return None if length.get("minutes") is not None else default_steps


def epoch_length(steps_per_pass: int, total: int | None, passes: bool = False) -> int:
    """Steps per Keras epoch: the fewest whole passes over the data that reach `MIN_EPOCH_STEPS`
    (or the whole run, `total` steps, if that is shorter); one pass if the length was asked
    for in passes (`passes`: `--epochs N` gives the N epochs it says, as it always did).

    Whole passes, so that an epoch's end is a pass's end, as it always was on data
    large enough (the bundled digits at batch 16 or 32: one pass; at batch 64: two).
    """
    if passes:
        return steps_per_pass
    target = MIN_EPOCH_STEPS if total is None else min(MIN_EPOCH_STEPS, total)
    return steps_per_pass * max(1, math.ceil(target / steps_per_pass))


def keras_epochs(first_epoch: int, remaining: int | None, epoch_steps: int) -> int:
    """`fit`'s `epochs` for `remaining` more steps after `first_epoch` epochs (a time budget alone: no end)."""
    if remaining is None:
        return first_epoch + 10**9  # the budget callback stops it
    return first_epoch + math.ceil(remaining / epoch_steps)
