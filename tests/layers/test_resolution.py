"""The rule that sets the convolutional families' depth from the image size."""

import re

import pytest

from tfgen.layers.resolution import halvings, level_widths, lowest_resolution, size_error


@pytest.mark.parametrize("size, levels, lowest", [
    ((28, 28), 2, (7, 7)),      # the MNIST networks' 7×7 start, unchanged
    ((32, 32), 3, (4, 4)),
    ((48, 48), 3, (6, 6)),
    ((64, 64), 4, (4, 4)),
    ((96, 96), 4, (6, 6)),
    ((48, 64), 3, (6, 8)),      # non-square: both sides halve together
    ((28, 32), 2, (7, 8)),
    ((8, 8), 1, (4, 4)),
])
def test_sizes_halve_down_to_4_to_8_pixels(size, levels, lowest):
    assert halvings(*size) == levels
    assert lowest_resolution(*size) == lowest
    assert size_error((*size, 3)) is None


@pytest.mark.parametrize("size", [(30, 30), (36, 36), (100, 100), (6, 6), (32, 128), (27, 28)])
def test_sizes_that_stay_above_8_pixels_or_never_halve_are_refused_in_one_line(size):
    assert re.fullmatch(rf"cannot use {size[0]}×{size[1]} images: .* 4 to 8 times the same power of two, 2 or more "
                        r"\(e\.g\. 28, 32, 48, 64, 48×64\)", size_error((*size, 1)))


def test_widths_keep_the_listed_outer_levels_and_repeat_or_drop_the_innermost():
    assert level_widths((32, 64), 2) == (32, 64)
    assert level_widths((32, 64), 4) == (32, 64, 64, 64)
    assert level_widths((1, 2, 4), 2) == (1, 2)
    with pytest.raises(ValueError, match="at least one width"):
        level_widths((), 2)


@pytest.mark.parametrize("size, usable", [((7, 7), True), ((8, 8), True), ((4, 6), True), ((12, 16), True),
                                          ((16, 16), True), ((3, 3), False), ((9, 9), False), ((10, 20), False)])
def test_a_u_net_on_latents_also_takes_sizes_already_4_to_8_pixels_a_side(size, usable):
    # min_halvings=0: one resolution when the input is already small (the 7×7 latents of 28×28 images).
    assert (size_error((*size, 4), min_halvings=0) is None) == usable
    if not usable:
        assert size_error((*size, 4), min_halvings=0).endswith("power of two, 1 or more (e.g. 7, 8, 12, 16, 12×16)")
    assert (size_error((*size, 4)) is None) == (usable and min(size) >= 8)  # images still need a halving
