"""Tests for tfgen.eval.metrics against closed-form and hand-computed values.

Pure NumPy/SciPy: no TensorFlow needed. All randomness is seeded, so every
statistical assertion below is deterministic.
"""

import math

import numpy as np
import pytest
import scipy.linalg

from tfgen.eval import metrics


def _random_spd(rng, dim, jitter=0.5):
    a = rng.standard_normal((dim, dim))
    return a @ a.T + jitter * np.eye(dim)


# --------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------


class TestFrechetDistance:
    @pytest.mark.parametrize("n,d", [(500, 16), (20, 64), (3, 1)])
    def test_set_with_itself_is_zero(self, n, d):
        # (20, 64) has a singular covariance (N < D): the naive sqrtm route
        # gives complex/NaN values or ~1e-6 residues here.
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, d)) @ np.diag(rng.uniform(0.1, 10.0, size=d)) + 100.0
        fid = metrics.frechet_distance(x, x)
        scale = np.trace(np.atleast_2d(np.cov(x, rowvar=False)))
        assert isinstance(fid, float)
        assert np.isfinite(fid)
        assert 0.0 <= fid <= 1e-6 * scale

    def test_float32_input_is_handled_in_float64(self):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((200, 32)).astype(np.float32) * 50.0
        assert metrics.frechet_distance(x, x) <= 1e-6 * np.trace(np.cov(x.astype(np.float64), rowvar=False))

    @pytest.mark.parametrize("n,d", [(300, 10), (20, 64)])
    def test_translation_gives_squared_shift(self, n, d):
        # Same covariance, means differ by c: FID = ||c||^2 exactly. Unlike
        # FID(x, x) this cannot hide a negative rounding residue behind the
        # clip at 0, so it checks the trace term to ~eps * Tr(sigma) even for
        # a singular covariance (n < d), where taking sqrt of eigenvalues of
        # sqrt(S) S sqrt(S) is off by ~1e-8 * Tr(S).
        rng = np.random.default_rng(2)
        x = rng.standard_normal((n, d)) @ _random_spd(rng, d) + 100.0
        c = np.arange(d, dtype=np.float64) / (3.0 * d)
        expected = float(c @ c)
        scale = np.trace(np.cov(x, rowvar=False))
        assert metrics.frechet_distance(x, x + c) == pytest.approx(expected, abs=1e-11 * scale)

    def test_constant_features_are_not_nan(self):
        # Zero covariance on both sides: only the mean term survives.
        x = np.ones((5, 3))
        y = np.full((7, 3), 3.0)
        assert metrics.frechet_distance(x, y) == pytest.approx(12.0, rel=1e-12)

    def test_diagonal_closed_form_by_hand(self):
        # ||(0,0)-(3,4)||^2 = 25; diagonal covariances commute, so the trace
        # term is sum_i (sqrt(a_i) - sqrt(b_i))^2 = (1-2)^2 + (2-3)^2 = 2.
        fid = metrics.frechet_distance_from_moments(
            [0.0, 0.0], np.diag([1.0, 4.0]), [3.0, 4.0], np.diag([4.0, 9.0])
        )
        assert fid == pytest.approx(27.0, rel=1e-12)

    def test_diagonal_closed_form_random(self):
        rng = np.random.default_rng(3)
        a, b = rng.uniform(0.1, 5.0, size=(2, 20))
        mu1, mu2 = rng.standard_normal((2, 20))
        expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
        fid = metrics.frechet_distance_from_moments(mu1, np.diag(a), mu2, np.diag(b))
        assert fid == pytest.approx(expected, rel=1e-10)

    def test_non_diagonal_matches_scipy_sqrtm(self):
        rng = np.random.default_rng(4)
        d = 6
        mu1, mu2 = rng.standard_normal((2, d))
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        assert not np.allclose(s1 @ s2, s2 @ s1)  # genuinely non-commuting
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * np.real(covmean))
        fid = metrics.frechet_distance_from_moments(mu1, s1, mu2, s2)
        assert fid == pytest.approx(expected, rel=1e-9)
        # Symmetric in its two arguments.
        assert metrics.frechet_distance_from_moments(mu2, s2, mu1, s1) == pytest.approx(fid, rel=1e-9)

    def test_samples_approach_closed_form(self):
        rng = np.random.default_rng(5)
        d = 4
        mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.25, 0.0])
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        exact = metrics.frechet_distance_from_moments(mu1, s1, mu2, s2)
        a = rng.multivariate_normal(mu1, s1, size=200_000)
        b = rng.multivariate_normal(mu2, s2, size=200_000)
        assert exact > 1.0  # a non-trivial target
        # Observed error at this N is ~1% (sampling noise + O(D/N) bias).
        assert metrics.frechet_distance(a, b) == pytest.approx(exact, rel=0.03)


# --------------------------------------------------------------------------
# Kernel Inception Distance
# --------------------------------------------------------------------------


def _kernel(x, y):
    return (x @ y / x.shape[0] + 1.0) ** 3


def _mmd2_unbiased_loops(x, y):
    """Literal transcription of the unbiased MMD^2 estimator with loops."""
    m = len(x)
    xx = sum(_kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(_kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(_kernel(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (m * m)


def _mmd2_biased(x, y):
    k = lambda a, b: (a @ b.T / a.shape[1] + 1.0) ** 3  # noqa: E731
    return k(x, x).mean() + k(y, y).mean() - 2.0 * k(x, y).mean()


class TestKernelInceptionDistance:
    def test_matches_hand_loops_when_subset_is_whole_set(self):
        # subset_size (1000) is capped at 6; each subset is then a permutation
        # of the full sets, and MMD^2 is permutation invariant: every subset
        # gives the same value, so std == 0.
        rng = np.random.default_rng(10)
        x = rng.standard_normal((6, 3))
        y = rng.standard_normal((6, 3)) + 0.7
        mean, std = metrics.kernel_inception_distance(x, y, num_subsets=5, subset_size=1000, seed=0)
        assert mean == pytest.approx(_mmd2_unbiased_loops(x, y), rel=1e-10)
        assert std == pytest.approx(0.0, abs=1e-10 * abs(mean))

    def test_unbiased_for_same_distribution(self):
        # Many independent pairs of small samples from the same Gaussian:
        # the unbiased estimator averages to 0 within a few standard errors,
        # while the biased (V-statistic) one is positive by ~80 standard errors.
        rng = np.random.default_rng(11)
        m, d, pairs = 50, 8, 400
        unbiased, biased = [], []
        for i in range(pairs):
            x = rng.standard_normal((m, d))
            y = rng.standard_normal((m, d))
            unbiased.append(metrics.kernel_inception_distance(x, y, num_subsets=1, subset_size=m, seed=i)[0])
            biased.append(_mmd2_biased(x, y))
        unbiased = np.array(unbiased)
        stderr = unbiased.std(ddof=1) / np.sqrt(pairs)
        assert abs(unbiased.mean()) < 4.0 * stderr
        assert np.mean(biased) > 20.0 * stderr
        # Individual unbiased estimates straddle zero.
        assert unbiased.min() < 0.0 < unbiased.max()

    def test_positive_for_different_distributions(self):
        rng = np.random.default_rng(12)
        x = rng.standard_normal((500, 8))
        y = rng.standard_normal((500, 8)) + 0.5
        mean, std = metrics.kernel_inception_distance(x, y, num_subsets=20, subset_size=200, seed=0)
        assert mean > 0.5
        assert 0.0 < std < mean / 3.0
        z = rng.standard_normal((500, 8))
        same_mean, _ = metrics.kernel_inception_distance(x, z, num_subsets=20, subset_size=200, seed=0)
        assert abs(same_mean) < 0.1 * mean

    def test_seed_is_deterministic(self):
        rng = np.random.default_rng(13)
        x, y = rng.standard_normal((2, 100, 4))
        r1 = metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=10, seed=7)
        r2 = metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=10, seed=7)
        r3 = metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=10, seed=8)
        assert r1 == r2
        assert r1 != r3


# --------------------------------------------------------------------------
# Classifier score
# --------------------------------------------------------------------------


class TestClassifierScore:
    @pytest.mark.parametrize("num_classes", [2, 10, 37])
    def test_confident_balanced_is_num_classes(self, num_classes):
        probs = np.eye(num_classes)[np.arange(5 * num_classes) % num_classes]
        assert metrics.classifier_score(probs) == pytest.approx(num_classes, rel=1e-12)

    def test_constant_prediction_is_one(self):
        probs = np.tile([0.2, 0.5, 0.3], (40, 1))
        assert metrics.classifier_score(probs) == pytest.approx(1.0, abs=1e-12)

    def test_hand_example(self):
        # p(y) = (3/4, 1/4); KL_1 = log(4/3); KL_2 = .5 log(2/3) + .5 log 2
        # = .5 log(4/3). Mean KL = .75 log(4/3), score = (4/3)^0.75.
        probs = np.array([[1.0, 0.0], [0.5, 0.5]])
        assert metrics.classifier_score(probs) == pytest.approx((4.0 / 3.0) ** 0.75, rel=1e-12)

    def test_splits_mean_and_std(self):
        # First split: all class 0 (score 1). Second: balanced two classes (2).
        probs = np.eye(2)[[0, 0, 0, 0, 0, 1, 0, 1]]
        assert metrics.classifier_score(probs, num_splits=2) == pytest.approx(1.5, rel=1e-12)
        mean, std = metrics.classifier_score_mean_std(probs, num_splits=2)
        assert mean == pytest.approx(1.5, rel=1e-12)
        assert std == pytest.approx(0.5, rel=1e-12)
        # One split: marginal (3/4, 1/4) over all 8 samples, so
        # score = exp(3/4 log(4/3) + 1/4 log 4) = (4/3)^(3/4) * 4^(1/4).
        one_split = (4.0 / 3.0) ** 0.75 * 4.0 ** 0.25
        assert metrics.classifier_score(probs) == pytest.approx(one_split, rel=1e-12)

    def test_tolerates_float32_rounding(self):
        probs = (np.eye(4)[np.arange(8) % 4] * (1.0 + 1e-6)).astype(np.float32)
        assert metrics.classifier_score(probs) == pytest.approx(4.0, rel=1e-6)


# --------------------------------------------------------------------------
# Precision and recall
# --------------------------------------------------------------------------


def _precision_recall_naive(real, fake, k):
    def radii(x):
        d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def frac(q, s, r):
        d = np.linalg.norm(q[:, None, :] - s[None, :, :], axis=-1)
        return np.mean(np.any(d <= r[None, :], axis=1))

    return frac(fake, real, radii(real)), frac(real, fake, radii(fake))


class TestPrecisionRecall:
    def test_identical_sets(self):
        rng = np.random.default_rng(20)
        x = rng.standard_normal((300, 16)) * 3.0 + 50.0
        assert metrics.precision_recall(x, x.copy(), k=3) == (1.0, 1.0)

    def test_disjoint_far_apart(self):
        rng = np.random.default_rng(21)
        real = rng.standard_normal((200, 8))
        fake = rng.standard_normal((150, 8)) + 100.0
        assert metrics.precision_recall(real, fake, k=3) == (0.0, 0.0)

    def test_hand_example_on_a_line(self):
        # Reals 0..9, k=1: every real radius is 1.
        # Fakes 0.5, 1.5, 50, 51, k=1: every fake radius is 1.
        # Precision: 0.5 and 1.5 are within 1 of a real; 50, 51 are not -> 2/4.
        # Recall: balls [-0.5, 1.5] and [0.5, 2.5] cover reals 0, 1, 2 -> 3/10.
        real = np.arange(10, dtype=np.float64)[:, None]
        fake = np.array([[0.5], [1.5], [50.0], [51.0]])
        precision, recall = metrics.precision_recall(real, fake, k=1)
        assert precision == pytest.approx(0.5)
        assert recall == pytest.approx(0.3)

    def test_boundary_counts_as_inside(self):
        # Reals 0..9, k=1: radii 1. Fakes 10, 20, 30, 40, k=1: radii 10.
        # Fake 10 is exactly 1 from real 9 and real 0 is exactly 10 from fake
        # 10; both count (<=, as in the paper's code), so (1/4, 10/10) rather
        # than (0, 9/10). All values are exact in binary floating point.
        real = np.arange(10, dtype=np.float64)[:, None]
        fake = np.array([[10.0], [20.0], [30.0], [40.0]])
        assert metrics.precision_recall(real, fake, k=1) == (0.25, 1.0)

    @pytest.mark.parametrize("k,batch_size", [(1, 7), (3, 1000), (5, 13)])
    def test_matches_naive_implementation_with_any_batching(self, k, batch_size):
        rng = np.random.default_rng(22)
        real = rng.standard_normal((120, 5))
        fake = rng.standard_normal((90, 5)) + 1.5  # partial overlap
        expected = _precision_recall_naive(real, fake, k)
        got = metrics.precision_recall(real, fake, k=k, batch_size=batch_size)
        assert got == pytest.approx(expected, abs=1e-12)
        assert 0.0 < got[0] < 1.0 and 0.0 < got[1] < 1.0

    def test_mode_collapse_lowers_recall_not_precision(self):
        rng = np.random.default_rng(23)
        real = rng.standard_normal((400, 4))
        fake = real[rng.choice(400, 400)] * 0.1  # tight clump around the mode
        fake = fake + 0.01 * rng.standard_normal(fake.shape)
        precision, recall = metrics.precision_recall(real, fake, k=3)
        assert precision > 0.9
        assert recall < 0.3


# --------------------------------------------------------------------------
# Conditional accuracy
# --------------------------------------------------------------------------


class TestConditionalAccuracy:
    def test_hand_example(self):
        predicted = [0, 1, 1, 2, 0, 2]
        requested = [0, 1, 2, 2, 0, 0]
        result = metrics.conditional_accuracy(predicted, requested, num_classes=4)
        assert result["overall"] == pytest.approx(4.0 / 6.0)
        per_class = result["per_class"]
        assert len(per_class) == 4
        assert per_class[:3] == pytest.approx([2.0 / 3.0, 1.0, 0.5])
        assert math.isnan(per_class[3])  # class 3 never requested
        assert result["support"] == [3, 1, 2, 0]

    def test_accepts_integral_floats(self):
        result = metrics.conditional_accuracy(np.array([1.0, 0.0]), np.array([1, 1]), num_classes=2)
        assert result["overall"] == 0.5
        assert math.isnan(result["per_class"][0]) and result["per_class"][1] == 0.5


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------

_X = np.zeros((5, 3))
_RNG = np.random.default_rng(30)
_R = _RNG.standard_normal((5, 3))


@pytest.mark.parametrize(
    "fn,args,kwargs,match",
    [
        (metrics.frechet_distance, (np.zeros(10), _R), {}, r"features_a must be a 2-D.*got shape \(10,\)"),
        (metrics.frechet_distance, (_R, np.zeros((5, 4))), {}, r"same feature_dim.*\(5, 3\) and \(5, 4\)"),
        (metrics.frechet_distance, (_R, _R[:1]), {}, r"features_b must have at least 2 samples.*\(1, 3\)"),
        (metrics.frechet_distance, (np.full((5, 3), np.nan), _R), {}, r"features_a contains NaN"),
        (metrics.frechet_distance_from_moments, (np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), {},
         r"sigma1 must be a covariance matrix of shape \(3, 3\).*\(2, 2\)"),
        (metrics.frechet_distance_from_moments, (np.zeros((1, 3)), np.eye(3), np.zeros(3), np.eye(3)), {},
         r"mu1 must be a 1-D.*\(1, 3\)"),
        (metrics.frechet_distance_from_moments, (np.zeros(2), np.eye(2), np.zeros(2), [[1.0, 1.0], [0.0, 1.0]]), {},
         r"sigma2 must be symmetric"),
        (metrics.frechet_distance_from_moments, (np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), {},
         r"mu1 and mu2 must have the same dimension"),
        (metrics.kernel_inception_distance, (_R, _R[:1]), {}, r"features_b must have at least 2 samples"),
        (metrics.kernel_inception_distance, (_R, _R), {"subset_size": 1}, r"subset_size must be an integer >= 2"),
        (metrics.kernel_inception_distance, (_R, _R), {"num_subsets": 0}, r"num_subsets must be an integer >= 1"),
        (metrics.kernel_inception_distance, (_R[None], _R), {}, r"features_a must be a 2-D.*\(1, 5, 3\)"),
        (metrics.classifier_score, (np.zeros(4),), {}, r"probs must be a 2-D.*\(4,\)"),
        (metrics.classifier_score, (_R,), {}, r"probs must be non-negative.*softmax"),
        (metrics.classifier_score, (np.full((3, 2), 1.0),), {}, r"probs rows must sum to 1.*row 0.*\(3, 2\).*sums to 2"),
        (metrics.classifier_score, (np.eye(3),), {"num_splits": 4}, r"num_splits must be <= num_samples"),
        (metrics.classifier_score, (np.eye(3),), {"num_splits": 0}, r"num_splits must be an integer >= 1"),
        (metrics.classifier_score_mean_std, (np.eye(3),), {"num_splits": 2.0}, r"num_splits must be an integer"),
        (metrics.precision_recall, (_R[:3], _R), {"k": 3}, r"real_features must have at least 4 samples.*\(3, 3\)"),
        (metrics.precision_recall, (_R, np.zeros((5, 2))), {"k": 1}, r"same feature_dim.*\(5, 3\) and \(5, 2\)"),
        (metrics.precision_recall, (_R, _R), {"k": 0}, r"k must be an integer >= 1"),
        (metrics.conditional_accuracy, ([0, 1], [0, 1, 1], 2), {}, r"same length.*\(2,\) and \(3,\)"),
        (metrics.conditional_accuracy, ([0, 2], [0, 1], 2), {}, r"predicted_labels must contain class ids in \[0, 2\)"),
        (metrics.conditional_accuracy, (np.eye(2), [0, 1], 2), {}, r"predicted_labels must be a 1-D.*\(2, 2\)"),
        (metrics.conditional_accuracy, ([0.5, 0.5], [0, 1], 2), {}, r"predicted_labels must contain integer class ids"),
        (metrics.conditional_accuracy, ([0], [0], 0), {}, r"num_classes must be an integer >= 1"),
    ],
)
def test_input_validation(fn, args, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)  # one-line messages
