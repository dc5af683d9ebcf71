"""benchmarks/time_to_quality.py and its keras.io recipes: the clock, the verdict, and that each recipe trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import keras_io_recipes as recipes
from benchmarks import time_to_quality as ttq


def _fit_with_clock(scores, threshold, every=0.0, max_seconds=1e9, steps=10):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    remaining = list(scores)
    clock = ttq.QualityClock(lambda: remaining.pop(0), threshold, every, max_seconds, log=lambda *a, **k: None)
    x = np.zeros((steps, 1), np.float32)
    model.fit(x, x, batch_size=1, epochs=1, callbacks=[clock], verbose=0)
    return clock


def test_clock_stops_at_the_first_check_below_the_threshold():
    clock = _fit_with_clock([90.0, 40.0, 20.0, 10.0], threshold=25.0)
    assert [c["fid"] for c in clock.checks] == [90.0, 40.0, 20.0]
    assert clock.steps == 3 and clock.reached_seconds is not None
    assert clock.reached_seconds == pytest.approx(clock.checks[-1]["seconds"], abs=0.1)


def test_clock_stops_at_its_budget_without_reaching_the_threshold():
    clock = _fit_with_clock([90.0] * 10, threshold=25.0, every=1e6, max_seconds=0.0)
    assert len(clock.checks) == 1 and clock.reached_seconds is None and clock.steps == 1


def test_verdict_is_a_ratio_or_a_lower_bound():
    reached = lambda s: {"reached_seconds": s, "trained_seconds": s}  # noqa: E731
    assert ttq.compare(reached(100.0), reached(300.0)) == {"ratio": 3.0, "goal_met": True}
    assert ttq.compare(reached(100.0), reached(150.0)) == {"ratio": 1.5, "goal_met": False}
    assert ttq.compare(reached(100.0), {"reached_seconds": None, "trained_seconds": 250.0}) == {
        "ratio": None, "lower_bound": 2.5, "goal_met": True}
    assert ttq.compare({"reached_seconds": None, "trained_seconds": 900.0}, reached(50.0))["goal_met"] is False


def test_markdown_shows_times_ratio_and_goal():
    record = lambda s, best: {"reached_seconds": s, "trained_seconds": s or 600.0, "steps": 120,  # noqa: E731
                              "best_fid": best, "description": "d", "load_average_1min": {"start": 2.0}}
    result = {"n_samples": 500, "fid_threshold": 25.0, "cap": 2.5, "date": "2026-01-01 00:00", "command": "python x",
              "machine": {"nproc": 2, "cpu": "CPU"},
              "models": {"gan": {"every_seconds": 15, "tfgen": record(60.0, 20.0), "keras_io": record(None, 41.0),
                                 "ratio": None, "lower_bound": 2.5, "goal_met": True}}}
    md = ttq.markdown(result)
    row = md.splitlines()[2]
    assert row.startswith("| `gan` | 60 s (120 steps) | not within 600 s (best FID 41.0) | > 2.5× | met |"), row
    assert "python x" in md and "15 s for `gan`" in md


def test_unknown_family_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as err:
        ttq.parse_args(["--models", "gan,pixelcnn"])
    assert err.value.code == 2 and "no time-to-quality race for pixelcnn" in capsys.readouterr().err


@pytest.mark.parametrize("family", sorted(recipes.RECIPES))
def test_each_keras_io_recipe_trains_and_samples(family):
    images = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32)
    kwargs = {"train_images": images} if family == "diffusion" else {}
    recipe = recipes.RECIPES[family](seed=0, **kwargs)
    # Eagerly: the recipe's own train_step without tracing it (the keras.io U-Net's trace is most of
    # this test's time: 44 s -> 10 s on one core); the race in the benchmark runs it compiled.
    recipe.model.run_eagerly = True
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(8, np.int32))).batch(4)
    history = recipe.model.fit(data, epochs=1, verbose=0).history
    assert history and all(np.isfinite(v[-1]) for v in history.values()), history
    samples = recipe.sample(3, 0)
    assert samples.shape == (3, 28, 28, 1) and samples.min() >= 0.0 and samples.max() <= 1.0
