"""`conditioning.as_labels` inside a graph (training steps, exported endpoints): the same rules as for
concrete labels (cGAN's tests cover those), checked by assertions where values cannot be read."""

import numpy as np
import pytest
import tensorflow as tf

from tfgen.layers import conditioning


def test_graph_labels_follow_the_rules_of_concrete_labels():
    check = tf.function(lambda y: conditioning.as_labels(y, 10, allow_unconditional=True))
    # Whole floats are class indices, as for concrete labels; −1 only where "unconditional" is allowed.
    np.testing.assert_array_equal(check(tf.constant([3.0, -1.0])), [3, -1])
    for bad, message in [([2.5, 1.0], "integer class indices"), ([-2, 1], "must be >= -1"),
                         ([10, 1], "must be < num_classes=10")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            check(tf.constant(bad))
    strict = tf.function(lambda y: conditioning.as_labels(y, 10))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be >= 0"):
        strict(tf.constant([-1, 1]))
    # One-hot rows fail when traced, with the hint, instead of being flattened into 10× the labels.
    with pytest.raises(ValueError, match="one-hot"):
        strict(tf.zeros([2, 10], tf.int32))
    np.testing.assert_array_equal(strict(tf.constant([[4], [5]])), [4, 5])  # (B, 1) columns are fine
