"""The per-class diversity monitor: ≈ 0 for a generator that draws one image per class, ≈ 1 for the data itself."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgen.health import ClassDiversity
from tfgen.eval.diversity import (class_diversity, group_spreads, mean_pairwise_distance, random_features,
                                  real_diversities)


class FakeGenerator:
    """`sample` returns one fixed image per class (collapsed), or real images of the class (healthy)."""

    image_shape, num_classes = (12, 12, 1), 3

    def __init__(self, images, labels, collapsed):
        self.images, self.labels, self.collapsed = images, labels, collapsed

    def sample(self, n, labels=None, seed=None):
        rng = np.random.default_rng(seed)
        out = []
        for label in labels:
            of_class = self.images[self.labels == label]
            out.append(of_class[0] if self.collapsed else of_class[rng.integers(len(of_class))])
        return np.stack(out)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    return rng.random((60, 12, 12, 1), dtype=np.float32), labels


def test_mean_pairwise_distance_by_hand():
    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])) == pytest.approx((5 + 4 + 3) / 3)
    assert np.isnan(mean_pairwise_distance(np.zeros((1, 2))))


def test_group_spreads_by_class_and_overall_by_hand():
    features = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0], [1.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(group_spreads(features, labels, [0, 1]), [5.0, np.hypot(1.0, 4.0)])
    np.testing.assert_allclose(group_spreads(features, labels, [1, 2]), [np.hypot(1.0, 4.0), np.nan])  # empty class
    assert group_spreads(features)[0] == pytest.approx(mean_pairwise_distance(features))


def test_the_random_network_is_built_once_per_shape_and_seed():
    assert random_features((12, 12, 1)) is random_features([12, 12, 1])
    assert random_features((12, 12, 1)) is not random_features((12, 12, 3))
    assert random_features((12, 12, 1)) is not random_features((12, 12, 1), seed=1)


def test_one_image_per_class_scores_zero_and_the_data_about_one(data):
    images, labels = data
    features = random_features(FakeGenerator.image_shape)
    real = real_diversities(features, images, labels, 3)
    collapsed = class_diversity(FakeGenerator(images, labels, True), features, real, n=16)
    healthy = class_diversity(FakeGenerator(images, labels, False), features, real, n=16)
    np.testing.assert_allclose(collapsed, 0.0, atol=1e-6)
    assert np.all((healthy > 0.8) & (healthy < 1.2)), healthy  # repeated draws lower it a little


def test_callback_logs_each_class_and_warns_once_per_epoch(data):
    images, labels = data
    stream = io.StringIO()
    monitor = ClassDiversity(images, labels, n=8, class_names=["a", "b", "c"], stream=stream)
    monitor.set_model(FakeGenerator(images, labels, collapsed=True))
    monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert set(logs) == {"diversity_0", "diversity_1", "diversity_2", "diversity_min"}
    assert logs["diversity_min"] == pytest.approx(0.0, abs=1e-6)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "epoch 1" in lines[0] and "class 0 (a), 1 (b), 2 (c)" in lines[0]
    monitor.set_model(FakeGenerator(images, labels, collapsed=False))
    monitor.on_epoch_end(1, logs)
    assert stream.getvalue().count("\n") == 1  # healthy: no new warning
