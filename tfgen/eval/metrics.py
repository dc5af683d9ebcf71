"""Sample-quality metrics for generative models, computed in feature space.

All functions here are pure NumPy: they take arrays of features (or class
probabilities / labels) already produced by an evaluator classifier and
return Python floats. Keeping them free of TensorFlow means they can be unit
tested in closed form, reused on features cached to disk, and never silently
run in float32 on an accelerator. Every computation is done in float64: FID in
particular subtracts large, nearly equal traces, and float32 loses most of the
significant digits of the result.

Functions
---------
frechet_distance, frechet_distance_from_moments
    Fréchet (Inception) Distance, Heusel et al. 2017.
kernel_inception_distance
    Unbiased squared MMD with a cubic polynomial kernel, Bińkowski et al. 2018.
classifier_score, classifier_score_mean_std
    Inception-score analogue, Salimans et al. 2016.
precision_recall
    Improved precision and recall, Kynkäänniemi et al. 2019.
conditional_accuracy
    How often a class-conditional generator produces the requested class.

Every function validates its inputs and raises ``ValueError`` with a one-line
message naming the offending argument, its shape and what was expected.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from tfgen.checks import int_at_least

__all__ = [
    "frechet_distance",
    "frechet_distance_from_moments",
    "kernel_inception_distance",
    "classifier_score",
    "classifier_score_mean_std",
    "precision_recall",
    "conditional_accuracy",
]

ArrayLike = Union[np.ndarray, Sequence]

# Rows of a probability matrix must sum to 1 within this absolute tolerance.
# Float32 softmax over a few thousand classes is accurate to ~1e-6; 1e-3 also
# admits float16 outputs while still rejecting logits or unnormalised scores.
_PROB_SUM_ATOL = 1e-3


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _as_2d_features(x: ArrayLike, name: str, min_samples: int = 1) -> np.ndarray:
    """Converts ``x`` to a finite float64 (N, D) array or raises ValueError."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (num_samples, feature_dim); "
            f"got shape {arr.shape}."
        )
    if np.issubdtype(arr.dtype, np.complexfloating) or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype} with shape {arr.shape}.")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have feature_dim >= 1; got shape {arr.shape}.")
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} must have at least {min_samples} samples (rows); got shape {arr.shape}."
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values (shape {arr.shape}).")
    return arr


def _check_same_dim(a: np.ndarray, name_a: str, b: np.ndarray, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same feature_dim; "
            f"got shapes {a.shape} and {b.shape}."
        )


# --------------------------------------------------------------------------
# Fréchet distance (FID)
# --------------------------------------------------------------------------


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Principal square root of a symmetric positive semi-definite matrix.

    Uses the symmetric eigendecomposition, which is backward stable and returns
    real, orthogonal eigenvectors. Eigenvalues that are slightly negative
    because of rounding (covariances of N < D samples are singular) are
    clipped to zero instead of producing NaNs or complex numbers.
    """
    eigvals, eigvecs = np.linalg.eigh(matrix)
    eigvals = np.clip(eigvals, 0.0, None)
    return (eigvecs * np.sqrt(eigvals)) @ eigvecs.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Returns Tr((sigma1 sigma2)^{1/2}) for symmetric PSD sigma1, sigma2.

    sigma1 @ sigma2 is not symmetric, so its square root (what the reference
    implementation gets from scipy.linalg.sqrtm) can pick up spurious
    imaginary parts and is slow. Instead, with A = sigma1^{1/2} and
    B = sigma2^{1/2}, sigma1 sigma2 is similar to A sigma2 A = (A B)(A B)^T,
    whose eigenvalues are the squared singular values of A B. Hence

        Tr((sigma1 sigma2)^{1/2}) = sum of singular values of A B

    (the nuclear norm). Taking singular values of A B, rather than the
    eigenvalues of (A B)(A B)^T followed by a square root, avoids squaring the
    condition number: small singular values come out with absolute error
    ~eps * ||A B|| instead of ~sqrt(eps) * ||A B||. That is what makes
    FID(X, X) vanish to ~1e-15 relative even for singular covariances.
    """
    sqrt1 = _symmetric_sqrt(sigma1)
    sqrt2 = _symmetric_sqrt(sigma2)
    singular_values = np.linalg.svd(sqrt1 @ sqrt2, compute_uv=False)
    return float(np.sum(singular_values))


def _check_moments(mu: ArrayLike, sigma: ArrayLike, mu_name: str, sigma_name: str):
    mu = np.asarray(mu)
    sigma = np.asarray(sigma)
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise ValueError(f"{mu_name} must be a 1-D mean vector of shape (D,); got shape {mu.shape}.")
    dim = mu.shape[0]
    if sigma.shape != (dim, dim):
        raise ValueError(
            f"{sigma_name} must be a covariance matrix of shape ({dim}, {dim}) matching "
            f"{mu_name}; got shape {sigma.shape}."
        )
    mu = mu.astype(np.float64, copy=False)
    sigma = sigma.astype(np.float64, copy=False)
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"{mu_name} or {sigma_name} contains NaN or infinite values.")
    scale = max(np.max(np.abs(sigma)), np.finfo(np.float64).tiny)
    if np.max(np.abs(sigma - sigma.T)) > 1e-6 * scale:
        raise ValueError(f"{sigma_name} must be symmetric; got a non-symmetric matrix of shape {sigma.shape}.")
    # Remove rounding-level asymmetry so eigh sees an exactly symmetric matrix.
    return mu, 0.5 * (sigma + sigma.T)


def frechet_distance_from_moments(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    The squared 2-Wasserstein (Fréchet) distance between two Gaussians is

        d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}).

    With Inception features this is the Fréchet Inception Distance of
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
    Local Nash Equilibrium", NeurIPS 2017 (https://arxiv.org/abs/1706.08500).

    Args:
      mu1: Mean vector, shape (D,).
      sigma1: Covariance matrix, shape (D, D), symmetric positive semi-definite.
      mu2: Mean vector, shape (D,).
      sigma2: Covariance matrix, shape (D, D), symmetric positive semi-definite.

    Returns:
      The (squared) Fréchet distance as a non-negative Python float.

    Raises:
      ValueError: on wrong shapes, mismatched dimensions, non-finite or
        non-symmetric inputs.
    """
    mu1, sigma1 = _check_moments(mu1, sigma1, "mu1", "sigma1")
    mu2, sigma2 = _check_moments(mu2, sigma2, "mu2", "sigma2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"mu1 and mu2 must have the same dimension; got shapes {mu1.shape} and {mu2.shape}."
        )
    diff = mu1 - mu2
    trace_term = np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(sigma1, sigma2)
    value = float(diff @ diff + trace_term)
    # The true value is a squared distance, so >= 0; only rounding (of order
    # eps * Tr(sigma)) can push it below zero. Clip so callers never see -1e-13.
    return max(value, 0.0)


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features.

    Fits a Gaussian (sample mean, unbiased sample covariance) to each set and
    returns :func:`frechet_distance_from_moments`. With evaluator-classifier
    features this is the FID of Heusel et al., "GANs Trained by a Two
    Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017.

    Note that FID estimated from N samples is biased upwards by O(D / N)
    (Bińkowski et al. 2018), so only compare values computed with the same N.

    Args:
      features_a: Array of shape (N_a, D), N_a >= 2.
      features_b: Array of shape (N_b, D), N_b >= 2.

    Returns:
      Non-negative Python float; ~0 (to rounding) when the two sets are equal.

    Raises:
      ValueError: on non-2-D inputs, mismatched D, fewer than 2 samples, or
        non-finite values.
    """
    # At least 2 samples: the unbiased covariance divides by N - 1.
    a = _as_2d_features(features_a, "features_a", min_samples=2)
    b = _as_2d_features(features_b, "features_b", min_samples=2)
    _check_same_dim(a, "features_a", b, "features_b")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    # np.cov(rowvar=False) is (x - mu)^T (x - mu) / (N - 1) and is exactly
    # symmetric, so no further symmetrisation is needed.
    sigma_a = np.atleast_2d(np.cov(a, rowvar=False))
    sigma_b = np.atleast_2d(np.cov(b, rowvar=False))
    return frechet_distance_from_moments(mu_a, sigma_a, mu_b, sigma_b)


# --------------------------------------------------------------------------
# Kernel Inception Distance (KID)
# --------------------------------------------------------------------------


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3, the KID kernel of Bińkowski et al. 2018.

    Dividing by the dimension d keeps x . y / d of order one for
    standardised features, so the kernel does not need a tuned bandwidth.
    """
    dim = x.shape[1]
    return (x @ y.T / dim + 1.0) ** 3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased estimate of MMD^2 between equal-sized samples x and y.

    MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y). The within-set terms
    exclude the diagonal k(x_i, x_i): including it is what makes the plain
    (V-statistic) estimate biased upwards by O(1/m). The cross term averages
    over all m^2 pairs, which is already unbiased because x and y are
    independent (Gretton et al. 2012, eq. 3; the form used in the KID
    reference code).
    """
    m = x.shape[0]
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features_a: ArrayLike,
    features_b: ArrayLike,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: Optional[Union[int, np.random.Generator]] = 0,
) -> Tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel.

    From Bińkowski et al., "Demystifying MMD GANs", ICLR 2018
    (https://arxiv.org/abs/1801.01401). Unlike FID, the estimator is unbiased,
    so its expectation is 0 when both sets come from the same distribution
    regardless of sample size; individual estimates can therefore be
    slightly negative. Uses k(x, y) = (x . y / d + 1)^3 and, as in the paper's
    reference code, averages the estimate over ``num_subsets`` random subsets
    of ``subset_size`` samples drawn without replacement from each set (the
    subsets are drawn independently of each other), which bounds the
    O(subset_size^2) kernel cost.

    Args:
      features_a: Array of shape (N_a, D), N_a >= 2.
      features_b: Array of shape (N_b, D), N_b >= 2.
      num_subsets: Number of random subsets, >= 1.
      subset_size: Samples per subset, >= 2. Capped at min(N_a, N_b).
      seed: Seed or ``np.random.Generator`` for subset selection; results are
        deterministic for a fixed integer seed. ``None`` uses fresh entropy.

    Returns:
      ``(mean, std)``: mean and (population, ddof=0) standard deviation of the
      MMD^2 estimates over subsets. ``std`` describes the spread of single
      subset estimates; the standard error of ``mean`` is roughly
      ``std / sqrt(num_subsets)`` only if subsets barely overlap.

    Raises:
      ValueError: on non-2-D inputs, mismatched D, fewer than 2 samples in a
        set, or invalid ``num_subsets`` / ``subset_size``.
    """
    # Each subset needs >= 2 samples: the unbiased within-set terms average
    # over m (m - 1) off-diagonal pairs.
    a = _as_2d_features(features_a, "features_a", min_samples=2)
    b = _as_2d_features(features_b, "features_b", min_samples=2)
    _check_same_dim(a, "features_a", b, "features_b")
    num_subsets = int_at_least(num_subsets, "num_subsets", 1)
    subset_size = int_at_least(subset_size, "subset_size", 2)
    m = min(subset_size, a.shape[0], b.shape[0])

    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        idx_a = rng.choice(a.shape[0], size=m, replace=False)
        idx_b = rng.choice(b.shape[0], size=m, replace=False)
        estimates[i] = _mmd2_unbiased(a[idx_a], b[idx_b])
    return float(estimates.mean()), float(estimates.std())


# --------------------------------------------------------------------------
# Classifier (Inception) score
# --------------------------------------------------------------------------


def _as_probabilities(probs: ArrayLike, name: str = "probs") -> np.ndarray:
    arr = np.asarray(probs)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(
            f"{name} must be a 2-D array of class probabilities with shape "
            f"(num_samples, num_classes), both >= 1; got shape {arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype} with shape {arr.shape}.")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values (shape {arr.shape}).")
    if np.any(arr < 0):
        row = int(np.argwhere(arr < 0)[0, 0])
        raise ValueError(
            f"{name} must be non-negative probabilities (apply softmax to logits first); "
            f"row {row} of shape-{arr.shape} array has a negative entry."
        )
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1.0) > _PROB_SUM_ATOL
    if np.any(bad):
        row = int(np.argmax(bad))
        raise ValueError(
            f"{name} rows must sum to 1 (apply softmax to logits first); row {row} of "
            f"shape-{arr.shape} array sums to {sums[row]:.6g}."
        )
    # Renormalise away the (tolerated) rounding so each row is an exact
    # distribution and the KL divergences below are exactly >= 0 in theory.
    return arr / sums[:, None]


def _classifier_score_per_split(probs: ArrayLike, num_splits: int) -> np.ndarray:
    p = _as_probabilities(probs)
    num_splits = int_at_least(num_splits, "num_splits", 1)
    if num_splits > p.shape[0]:
        raise ValueError(
            f"num_splits must be <= num_samples so no split is empty; got num_splits="
            f"{num_splits} for probs of shape {p.shape}."
        )
    scores = np.empty(num_splits, dtype=np.float64)
    # Contiguous splits, as in the reference Inception-score code.
    for i, part in enumerate(np.array_split(p, num_splits, axis=0)):
        marginal = part.mean(axis=0, keepdims=True)  # p(y) over this split
        # KL(p(y|x) || p(y)) = sum_y p log(p / p_y) with the convention
        # 0 log 0 = 0. Wherever p > 0 the marginal is > 0 too, so substituting
        # 1 inside the logs for zero entries only affects terms multiplied by 0.
        log_p = np.log(np.where(part > 0, part, 1.0))
        log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
        kl = np.sum(part * (log_p - log_marginal), axis=1)
        scores[i] = np.exp(kl.mean())
    return scores


def classifier_score(probs: ArrayLike, num_splits: int = 1) -> float:
    """Classifier score, the Inception-score analogue: exp(E_x KL(p(y|x) || p(y))).

    From Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016
    (https://arxiv.org/abs/1606.03498), with the Inception network replaced by
    an evaluator classifier. Ranges from 1 (every sample gets the same class
    distribution) to C (confident predictions spread evenly over all C
    classes). The marginal p(y) is estimated within each split.

    Args:
      probs: Array of shape (N, C) whose rows are class probabilities
        (non-negative, summing to 1 within 1e-3). Not logits.
      num_splits: Split the N samples into this many contiguous chunks
        (1 <= num_splits <= N) and average the per-chunk scores, as in the
        original Inception-score code.

    Returns:
      Mean score over splits, a Python float. Use
      :func:`classifier_score_mean_std` to also get the spread over splits.

    Raises:
      ValueError: if ``probs`` is not a 2-D array of probabilities, or
        ``num_splits`` is not an integer in [1, N].
    """
    return float(_classifier_score_per_split(probs, num_splits).mean())


def classifier_score_mean_std(probs: ArrayLike, num_splits: int = 10) -> Tuple[float, float]:
    """Classifier score with its spread over splits: ``(mean, std)``.

    Same computation as :func:`classifier_score` (Salimans et al. 2016); the
    default of 10 splits matches the customary Inception-score protocol.
    ``std`` is the population (ddof=0) standard deviation of the per-split
    scores, as in the reference code; it is 0 when ``num_splits == 1``.
    """
    scores = _classifier_score_per_split(probs, num_splits)
    return float(scores.mean()), float(scores.std())


# --------------------------------------------------------------------------
# Improved precision and recall
# --------------------------------------------------------------------------


def _squared_distance_chunks(x: np.ndarray, y: np.ndarray, batch_size: int):
    """Yields (start, D2) with D2[i, j] = ||x[start + i] - y[j]||^2.

    Computes ||x||^2 + ||y||^2 - 2 x.y one block of rows at a time, so memory
    is O(batch_size * len(y)) instead of O(len(x) * len(y)): 10,000 x 10,000
    float64 distances would need 800 MB at once. The expansion can go slightly
    negative through rounding; clip at 0.
    """
    y_sq = np.einsum("ij,ij->i", y, y)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        xb_sq = np.einsum("ij,ij->i", xb, xb)
        # In-place updates keep one (batch_size, len(y)) buffer alive.
        d2 = xb @ y.T
        d2 *= -2.0
        d2 += xb_sq[:, None]
        d2 += y_sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        yield start, d2


def _knn_radii_squared(x: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest *other* row."""
    radii = np.empty(x.shape[0], dtype=np.float64)
    for start, d2 in _squared_distance_chunks(x, x, batch_size):
        rows = np.arange(d2.shape[0])
        # Force the self-distance to exactly 0 so it is always the smallest
        # entry; then index k of the sorted row is the k-th other neighbour
        # (duplicates of a point count as neighbours at distance 0).
        d2[rows, start + rows] = 0.0
        radii[start:start + d2.shape[0]] = np.partition(d2, k, axis=1)[:, k]
    return radii


def _fraction_in_manifold(
    queries: np.ndarray, support: np.ndarray, support_radii_sq: np.ndarray, batch_size: int
) -> float:
    """Fraction of queries within the k-NN ball of at least one support point."""
    inside = 0
    for _, d2 in _squared_distance_chunks(queries, support, batch_size):
        # <= (not <), as in the reference implementation: a query on the
        # boundary of a ball, or an exact copy of a support point, counts.
        inside += int(np.count_nonzero(np.any(d2 <= support_radii_sq[None, :], axis=1)))
    return inside / queries.shape[0]


def precision_recall(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    k: int = 3,
    *,
    batch_size: int = 1000,
) -> Tuple[float, float]:
    """Improved precision and recall of generated samples.

    From Kynkäänniemi et al., "Improved Precision and Recall Metric for
    Assessing Generative Models", NeurIPS 2019
    (https://arxiv.org/abs/1904.06991). Each set's manifold is approximated
    by the union of balls centred on its samples, with radius equal to the
    distance to that sample's k-th nearest neighbour within the same set.

    * precision: fraction of fake samples inside the real manifold
      (measures sample quality / fidelity);
    * recall: fraction of real samples inside the fake manifold
      (measures coverage / diversity).

    Distances are Euclidean and computed in blocks of ``batch_size`` rows, so
    memory stays O(batch_size * N): 10,000 x 10,000 samples of 128-d features
    need ~80 MB per block with the default.

    Args:
      real_features: Array of shape (N_real, D), N_real >= k + 1.
      fake_features: Array of shape (N_fake, D), N_fake >= k + 1.
      k: Neighbourhood size, >= 1 (the paper uses 3).
      batch_size: Rows per distance block (keyword-only), >= 1.

    Returns:
      ``(precision, recall)``, Python floats in [0, 1].

    Raises:
      ValueError: on non-2-D inputs, mismatched D, non-finite values, or too
        few samples for the requested k.
    """
    k = int_at_least(k, "k", 1)
    batch_size = int_at_least(batch_size, "batch_size", 1)
    # The k-th nearest *other* sample must exist.
    real = _as_2d_features(real_features, "real_features", min_samples=k + 1)
    fake = _as_2d_features(fake_features, "fake_features", min_samples=k + 1)
    _check_same_dim(real, "real_features", fake, "fake_features")

    # Distances are translation invariant; centring both sets on a common
    # point shrinks ||x||^2 and ||y||^2 and with them the cancellation error
    # of the ||x||^2 + ||y||^2 - 2 x.y expansion.
    center = real.mean(axis=0)
    real = real - center
    fake = fake - center

    real_radii_sq = _knn_radii_squared(real, k, batch_size)
    fake_radii_sq = _knn_radii_squared(fake, k, batch_size)
    precision = _fraction_in_manifold(fake, real, real_radii_sq, batch_size)
    recall = _fraction_in_manifold(real, fake, fake_radii_sq, batch_size)
    return float(precision), float(recall)


# --------------------------------------------------------------------------
# Conditional accuracy
# --------------------------------------------------------------------------


def _as_labels(labels: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of integer class ids of shape (num_samples,); "
            f"got shape {arr.shape}."
        )
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must contain at least 1 label; got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.integer):
        ints = arr.astype(np.int64)
    elif np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        # Integral floats (e.g. argmax results cast by a framework) are fine.
        ints = arr.astype(np.int64)
    else:
        raise ValueError(
            f"{name} must contain integer class ids (not one-hot or probabilities); "
            f"got dtype {arr.dtype} with shape {arr.shape}."
        )
    if np.any(ints < 0) or np.any(ints >= num_classes):
        raise ValueError(
            f"{name} must contain class ids in [0, {num_classes}); got values in "
            f"[{ints.min()}, {ints.max()}] with shape {arr.shape}."
        )
    return ints


def conditional_accuracy(
    predicted_labels: ArrayLike, requested_labels: ArrayLike, num_classes: int
) -> Dict[str, Union[float, List[float], List[int]]]:
    """Accuracy of a class-conditional generator as judged by a classifier.

    For each generated sample, ``requested_labels`` is the class the generator
    was conditioned on and ``predicted_labels`` is the evaluator classifier's
    argmax prediction for the sample (the "classification accuracy score"
    style check of conditional generation, cf. Ravuri & Vinyals 2019).

    Args:
      predicted_labels: Integer array of shape (N,), values in [0, num_classes).
      requested_labels: Integer array of shape (N,), values in [0, num_classes).
      num_classes: Number of classes C, >= 1.

    Returns:
      A dict with
        * ``"overall"``: fraction of samples whose prediction equals the
          requested class (float);
        * ``"per_class"``: list of C floats, entry c being the accuracy over
          samples requested as class c, or ``float("nan")`` if class c was
          never requested (NaN rather than None keeps the list numeric, so
          ``np.nanmean(result["per_class"])`` gives the class-balanced
          accuracy);
        * ``"support"``: list of C ints, how many samples requested class c.

    Raises:
      ValueError: on non-1-D or non-integer labels, mismatched lengths, labels
        out of range, or invalid ``num_classes``.
    """
    num_classes = int_at_least(num_classes, "num_classes", 1)
    pred = _as_labels(predicted_labels, "predicted_labels", num_classes)
    req = _as_labels(requested_labels, "requested_labels", num_classes)
    if pred.shape != req.shape:
        raise ValueError(
            f"predicted_labels and requested_labels must have the same length; got shapes "
            f"{pred.shape} and {req.shape}."
        )
    correct = pred == req
    support = np.bincount(req, minlength=num_classes)
    hits = np.bincount(req, weights=correct.astype(np.float64), minlength=num_classes)
    per_class = [float(h / s) if s > 0 else float("nan") for h, s in zip(hits, support)]
    return {
        "overall": float(correct.mean()),
        "per_class": per_class,
        "support": [int(s) for s in support],
    }


def recall_per_class(real_features: ArrayLike, real_labels: ArrayLike, fake_features: ArrayLike,
                     fake_labels: ArrayLike, num_classes: int, k: int = 3) -> list:
    """`precision_recall`'s recall within each class c: the real images of c covered by the samples
    requested as c. A class collapsed to a few images keeps its precision but loses its recall,
    which the recall over all classes can hide. NaN for a class with k or fewer of either."""
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    real, fake = np.asarray(real_features), np.asarray(fake_features)
    out = []
    for c in range(num_classes):
        r, f = real[real_labels == c], fake[fake_labels == c]
        out.append(precision_recall(r, f, k)[1] if min(len(r), len(f)) > k else float("nan"))
    return out
