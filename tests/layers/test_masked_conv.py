"""Channel masks of the colour PixelCNN, worked out by hand (R = 0, G = 1, B = 2)."""

import numpy as np
import pytest

from tfgen.layers.masked_conv import ChannelMaskedConv2D, channel_mask, feature_groups


def test_feature_groups_split_each_part_into_one_block_per_colour():
    np.testing.assert_array_equal(feature_groups(3, 3), [0, 1, 2])  # the image's own channels
    np.testing.assert_array_equal(feature_groups(6, 3), [0, 0, 1, 1, 2, 2])
    # A gate's two halves: feature f and f + 6 share a colour.
    np.testing.assert_array_equal(feature_groups(12, 3, parts=2), [0, 0, 1, 1, 2, 2] * 2)
    np.testing.assert_array_equal(feature_groups(3 * 4, 3), np.repeat([0, 1, 2], 4))  # logits: 4 levels a channel


def test_mask_a_is_strict_and_mask_b_lets_a_colour_read_itself():
    a = channel_mask(3, 3, 3, "A")
    b = channel_mask(3, 3, 3, "B")
    # Rows: input R, G, B; columns: output R, G, B.
    np.testing.assert_array_equal(a, [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="needs at least 3 features"):
        channel_mask(3, 2, 3, "B")
    with pytest.raises(ValueError, match="unknown mask type 'C'"):
        channel_mask(3, 3, 3, "C")


def test_only_the_current_pixel_tap_is_masked():
    conv = ChannelMaskedConv2D(6, (1, 2), channels=3, mask_type="A", output_parts=2)
    conv.build((None, None, None, 3))
    mask = np.asarray(conv.kernel_mask)
    np.testing.assert_array_equal(mask[0, 0], np.ones((3, 6)))  # the pixel to the left: every colour
    np.testing.assert_array_equal(mask[0, 1], np.tile([[0, 1, 1], [0, 0, 1], [0, 0, 0]], 2))
