"""benchmarks/leaderboard.py: `--steps` trains exactly N optimiser steps, `--precision` builds under that policy."""

import json

import pytest

from benchmarks import leaderboard


def test_steps_trains_exactly_that_many_optimiser_steps_under_the_precision():
    # Batches of 2000 of the 8499 bundled training digits: 4 per epoch, so the count runs across an epoch's end.
    model, facts = leaderboard.train_for("vae", "tiny", "mnist_bundled", None, 2000, 0, steps=7,
                                         precision="mixed_bfloat16")
    assert int(model.optimizer.iterations.numpy()) == 7 and facts["steps"] == 7
    assert facts["epochs"] > 1 and facts["precision"] == "mixed_bfloat16"
    assert model.dtype_policy.name == "mixed_bfloat16"
    with pytest.raises(ValueError, match="seconds or of steps"):
        leaderboard.train_for("vae", "tiny", "mnist_bundled", 60, 16, 0, steps=7)


def test_the_board_records_the_steps_and_the_precision(tmp_path):
    args = leaderboard.parse_args(["--models", "vae", "--preset", "tiny", "--steps", "5", "--n", "20",
                                   "--n-likelihood", "20", "--k", "1,2", "--out", str(tmp_path)])
    leaderboard.run(args)
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["steps_per_model"] == 5 and board["budget_minutes_per_model"] is None
    assert board["precision"] == "float32" and board["models"]["vae"]["steps"] == 5
    assert "trained for 5 optimiser steps on `mnist_bundled`" in (tmp_path / "leaderboard.md").read_text()
    assert (tmp_path / "samples" / "vae.png").exists()


def test_the_precisions_offered_are_the_dtype_policies_tfgen_builds_under():
    from tfgen import precision

    for name in leaderboard.POLICIES:
        assert leaderboard.parse_args(["--precision", name]).precision == name
        with precision.dtype_policy(name):
            pass
    assert set(leaderboard.POLICIES) == set(precision.PRECISIONS) - {"auto"}
    with pytest.raises(SystemExit):
        leaderboard.parse_args(["--precision", "auto"])  # a board states one policy for every model


def test_steps_and_minutes_are_one_budget_or_the_other(capsys):
    assert leaderboard.parse_args([]).minutes == leaderboard.DEFAULT_MINUTES
    assert leaderboard.parse_args(["--steps", "9"]).minutes is None
    with pytest.raises(SystemExit):
        leaderboard.parse_args(["--steps", "9", "--minutes", "2"])
    assert "--steps 9 and --minutes 2 are two training budgets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        leaderboard.parse_args(["--steps", "0"])
    assert "--steps must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        leaderboard.parse_args(["--precision", "bfloat16"])
    assert "invalid choice" in capsys.readouterr().err
