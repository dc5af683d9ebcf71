"""Argument checks: what each accepts, and the one-line message for what it refuses."""

import numpy as np
import pytest

from tfgen import checks


def test_int_between_accepts_the_closed_range_and_names_the_bound():
    assert checks.int_between(np.int64(3), "steps", 1, 3) == 3
    assert checks.int_between(1, "steps", 1, 3) == 1
    for bad in (0, 4, 2.0, True):
        with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 3\] \(the timesteps\), got"):
            checks.int_between(bad, "steps", 1, 3, "the timesteps")


def test_fraction_below_one_is_half_open():
    assert checks.fraction_below_one(0, "dropout") == 0.0
    assert checks.fraction_below_one(0.999, "dropout") == 0.999
    for bad in (1.0, -0.1, float("nan"), "0.1"):
        with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got"):
            checks.fraction_below_one(bad, "dropout")
