"""The cVAE ceiling benchmark's per-class Gaussians and its table (the measurement itself is in benchmarks/)."""

import numpy as np
import pytest

from benchmarks.cvae_ceiling import class_gaussians, markdown


def test_each_class_gets_the_mean_and_covariance_of_its_own_codes():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    codes = np.concatenate([rng.multivariate_normal([5, -1], cov, 4000), rng.multivariate_normal([0, 3], cov / 4, 4000)])
    labels = np.repeat([1, 0], 4000)
    (mean0, tril0), (mean1, tril1) = class_gaussians(codes, labels, 2)
    np.testing.assert_allclose(mean1, [5, -1], atol=0.1)
    np.testing.assert_allclose(mean0, [0, 3], atol=0.05)
    np.testing.assert_allclose(tril1 @ tril1.T, cov, atol=0.1)
    np.testing.assert_allclose(tril0 @ tril0.T, cov / 4, atol=0.03)
    assert np.allclose(tril1, np.tril(tril1))  # a Cholesky factor: samples are mean + L @ eps


def test_a_class_with_one_image_is_refused_in_one_line():
    with pytest.raises(ValueError, match="class 1 has 1 training image"):
        class_gaussians(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), np.array([0, 0, 1]), 2)


def test_the_table_divides_each_accuracy_by_the_evaluators():
    row = {"fid": 10.0, "precision": 0.9, "recall": 0.8, "conditional_accuracy": 0.4, "per_class": [0.2, 0.6]}
    result = {"evaluator_accuracy": 0.8, "classes": ["a", "b"], "model": "cvae", "dataset": "folder:x",
              "data_options": {}, "n": 10, "seed": 0, "command": "python -m benchmarks.cvae_ceiling", "date": "d",
              "rows": {"prior": row, "real test images": {"conditional_accuracy": 0.8, "per_class": [0.5, 1.0]}}}
    table = markdown(result)
    assert "| prior | 10.00 | 0.90 | 0.80 | 0.400 | 0.50 |" in table
    assert "| *real test images* | | | | 0.800 | 1 |" in table
    assert "a: 0.20 / 0.50; b: 0.60 / 1.00" in table
