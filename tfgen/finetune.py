"""Starting a run from trained weights: `tfgen train MODEL --init PRESET|RUN|FILE.keras`.

The weights of a preset (`tfgen.pretrained`), a run directory or a `.keras` file of the same family are
taken wherever their shapes match; the rest keep their fresh initialisation and are named.
"""

from __future__ import annotations

from tfgen import runs
from tfgen.pretrained import PresetError


def take_matching_weights(model, source) -> list[str]:
    """Give `model` the weights of `source` (a preset, run directory or `.keras` file of the same family)
    wherever their shapes match; return one line per weight left as initialised.

    Two models of one architecture (the same hyperparameters, another image shape) pair their weights in
    `model.weights` order, which the constructor fixes. When the image size changes the architecture
    (a U-Net with one level more), weights pair by name: the sub-network's and the layer's (`weight_keys`).
    """
    donor = runs.load_run_or_file(source, "take weights from")
    name = getattr(model, "registry_name", type(model).__name__)
    if getattr(donor, "registry_name", None) != name:
        raise PresetError(f"--init {source} is a {getattr(donor, 'registry_name', type(donor).__name__)} model; "
                          f"this run trains {name}: weights are taken from the same family only")
    if len(donor.weights) == len(model.weights):
        pairs = list(zip(weight_keys(model), model.weights, donor.weights))
    else:
        theirs = dict(zip(weight_keys(donor), donor.weights))
        pairs = [(key, mine, theirs.get(key)) for key, mine in zip(weight_keys(model), model.weights)]
    left = []
    for key, mine, theirs in pairs:
        if theirs is None:
            left.append(f"{key}: not in {source}")
        elif tuple(mine.shape) != tuple(theirs.shape):
            left.append(f"{key}: {tuple(mine.shape)} here vs {tuple(theirs.shape)} in {source}")
        else:
            mine.assign(theirs)
    return left


def weight_keys(model) -> list[str]:
    """A name per weight of `model.weights`: its sub-network's name and its own path (`ema_network/stem/kernel`).

    The families name the layers that hold weights, so these names do not depend on what else the process
    built (Keras numbers unnamed layers process-wide: `conv2d_12`)."""
    owner = {id(v): layer.name for layer in model.layers for v in layer.weights}
    return [f"{owner.get(id(v), model.name)}/{v.path}" for v in model.weights]
