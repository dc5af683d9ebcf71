"""How deep a convolutional network goes for a given image size, and which sizes it can use.

The convolutional families (`vae`, `cvae`, `gan`, `cgan`, `diffusion`) halve the
resolution level by level on the way in and double it on the way out. Their depth
follows the image size by one rule:

    halve both sides together while both are even and both halves are at least 4 pixels.

    28×28 → 14 → 7          (2 halvings: the 7×7 bottleneck of the MNIST networks)
    32×32 → 16 → 8 → 4      (3: DCGAN's and Ho et al.'s CIFAR-10 U-Net's 4×4)
    48×48 → 24 → 12 → 6     (3)
    64×64 → 32 → 16 → 8 → 4 (4)
    48×64 → 24×32 → 12×16 → 6×8  (3; non-square sizes follow the same rule)

So the lowest resolution is 4 to 8 pixels a side whatever the image size: a VAE's or
GAN's flattened features and dense projection, and a U-Net's attention (over at most
8·8 = 64 positions), cost the same at every size. A size for which the rule stops
above 8 pixels a side (30 → 15, 36 → 9) would give networks whose dense layers and
attention grow with the image instead, so it is refused (`size_error`, which the
models' `check_image_size` asks before building anything): a
usable size is 4 to 8 times a power of two (2 or more), the same power for both sides.

A U-Net may also run on an input that is already 4 to 8 pixels a side (power 1, no
halving: one resolution, the attention over all of it): the 7×7 latents of 28×28
images in latent diffusion (`min_halvings=0` below). The families' images keep the rule above.

Each network lists one width per level; `level_widths` fits that list to the depth
an image needs. This module imports nothing heavy: the command line can check a
size before importing TensorFlow.
"""

from __future__ import annotations

#: The smallest side a halving may produce.
MIN_SIDE = 4
#: The largest side the lowest resolution may have.
MAX_SIDE = 8


def halvings(height: int, width: int) -> int:
    """The number of times both sides halve under the rule above (28×28: 2, 32×32: 3, 64×64: 4)."""
    count = 0
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= MIN_SIDE and width // 2 >= MIN_SIDE:
        height, width, count = height // 2, width // 2, count + 1
    return count


def lowest_resolution(height: int, width: int) -> tuple[int, int]:
    """(height, width) after `halvings`: 7×7 for 28×28, 4×4 for 32×32, 6×8 for 48×64."""
    levels = halvings(height, width)
    return height // 2**levels, width // 2**levels


def size_error(image_shape, min_halvings: int = 1) -> str | None:
    """Why the convolutional families cannot use `image_shape` (H, W, C), or None if they can. The reason
    completes a sentence whose subject is the network's owner ("VAE cannot use 30×30 images: ...").

    `min_halvings` 0 also accepts sizes already 4 to 8 pixels a side (a U-Net on latents).
    """
    height, width = image_shape[:2]
    low_h, low_w = lowest_resolution(height, width)
    if halvings(height, width) >= min_halvings and MIN_SIDE <= min(low_h, low_w) and max(low_h, low_w) <= MAX_SIDE:
        return None
    examples = "28, 32, 48, 64, 48×64" if min_halvings else "7, 8, 12, 16, 12×16"
    return (f"cannot use {height}×{width} images: its networks halve them down to 4–8 pixels, so each side must "
            f"be 4 to 8 times the same power of two, {2**min_halvings} or more (e.g. {examples})")


def level_widths(widths, levels: int) -> tuple[int, ...]:
    """`widths` (one per level, from the full resolution inward) fitted to `levels` levels.

    When an image needs more levels than listed, the innermost (lowest-resolution)
    width is repeated, as Ho et al.'s CIFAR-10 U-Net repeats its deepest multiplier
    (1, 2, 2, 2); when it needs fewer, the innermost widths are dropped. So the
    widths at the full resolution, where a level costs most, are those listed, and
    the 28×28 networks (two levels, or three U-Net resolutions) are exactly as listed.
    A decoder, listed from the lowest resolution outward, fits its reversed list.
    """
    widths = tuple(widths)
    if not widths:
        raise ValueError("a network needs at least one width per level, got none")
    return (widths + widths[-1:] * levels)[:levels]
