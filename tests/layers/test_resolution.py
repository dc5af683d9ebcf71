"""The rule that sets the convolutional families' depth from the image size."""

import pytest

from tfgen.layers.resolution import check_image_size, halvings, level_widths, lowest_resolution, size_error


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
    with pytest.raises(ValueError, match=rf"^VAE cannot use {size[0]}×{size[1]} images: .* 4 to 8 times the same "
                                         r"power of two, 2 or more \(e\.g\. 28, 32, 48, 64, 48×64\)$"):
        check_image_size((*size, 1), "VAE")


def test_widths_keep_the_listed_outer_levels_and_repeat_or_drop_the_innermost():
    assert level_widths((32, 64), 2) == (32, 64)
    assert level_widths((32, 64), 4) == (32, 64, 64, 64)
    assert level_widths((1, 2, 4), 2) == (1, 2)
    with pytest.raises(ValueError, match="at least one width"):
        level_widths((), 2)
