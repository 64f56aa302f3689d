"""Information measures against closed forms, on fresh seeded samples.

Tolerances are stated as absolute plus relative parts; they hold with
margin at n = 5000 (see benchmarks/README.md for the measured errors).
"""

import numpy as np
import pytest
from scipy import stats

from destructors import RBIG
from destructors.information import (
    entropy,
    kl_divergence,
    mutual_information,
    total_correlation,
)

N = 5000


def random_correlation(d, rng):
    A = rng.normal(size=(d, 2 * d))
    cov = A @ A.T
    s = np.sqrt(np.diag(cov))
    return cov / np.outer(s, s)


def gaussian_entropy(cov):
    d = cov.shape[0]
    return 0.5 * d * np.log(2 * np.pi * np.e) + 0.5 * np.linalg.slogdet(cov)[1]


@pytest.mark.parametrize("d", [2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_total_correlation_and_entropy(d, seed):
    rng = np.random.default_rng(100 + seed)
    R = random_correlation(d, rng)
    scales = np.exp(rng.normal(size=d))
    cov = R * np.outer(scales, scales)
    X = rng.multivariate_normal(np.zeros(d), cov, size=N)
    tc_true = -0.5 * np.linalg.slogdet(R)[1]
    tc = total_correlation(X, random_state=seed)
    # 5 % of the truth, plus 0.025 nats: a 5000-row sample's own total
    # correlation differs from the truth by about 0.01 nats at D = 3.
    assert abs(tc - tc_true) <= 0.05 * tc_true + 0.025
    h = entropy(X, random_state=seed)
    assert abs(h - gaussian_entropy(cov)) <= 0.01 * abs(gaussian_entropy(cov)) + 0.05


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_mutual_information_between_blocks(seed):
    rng = np.random.default_rng(200 + seed)
    cov = random_correlation(4, rng)
    X = rng.multivariate_normal(np.zeros(4), cov, size=N)
    mi_true = 0.5 * (
        np.linalg.slogdet(cov[:2, :2])[1]
        + np.linalg.slogdet(cov[2:, 2:])[1]
        - np.linalg.slogdet(cov)[1]
    )
    mi = mutual_information(X[:, :2], X[:, 2:], random_state=seed)
    assert abs(mi - mi_true) <= 0.05 * mi_true + 0.02


def test_entropy_of_mixed_non_gaussian_sources():
    rng = np.random.default_rng(3)
    sources = [stats.uniform(-1, 2), stats.laplace(), stats.t(5)]
    S = np.column_stack([s.rvs(size=N, random_state=rng) for s in sources])
    A = rng.normal(size=(3, 3)) + 2 * np.eye(3)
    h_true = sum(float(s.entropy()) for s in sources) + np.linalg.slogdet(A)[1]
    assert abs(entropy(S @ A.T, random_state=0) - h_true) < 0.1


def test_mutual_information_of_independent_blocks_is_near_zero():
    rng = np.random.default_rng(4)
    X = rng.laplace(size=(N, 2))
    Y = rng.uniform(size=(N, 1))
    assert abs(mutual_information(X, Y, random_state=0)) < 0.02


def test_mutual_information_is_invariant_to_monotone_maps():
    rng = np.random.default_rng(5)
    xy = rng.multivariate_normal([0, 0], [[1, 0.7], [0.7, 1]], size=N)
    x, y = xy[:, :1], xy[:, 1:]
    mi = mutual_information(x, y, random_state=0)
    assert abs(mi - (-0.5 * np.log(1 - 0.49))) < 0.03
    warped = mutual_information(np.exp(x), y**3 + 2 * y, random_state=0)
    assert abs(warped - mi) < 0.02


def test_total_correlation_is_invariant_to_scaling_and_shifting_features():
    rng = np.random.default_rng(6)
    X = rng.multivariate_normal([0, 0, 0], random_correlation(3, rng), size=2000)
    tc = total_correlation(X, random_state=0)
    tc_scaled = total_correlation(X * [1e3, 0.01, 7.0] + [5.0, -2.0, 1e4], random_state=0)
    assert abs(tc_scaled - tc) < 1e-6
    # A sign flip is a decreasing map: same truth, a different sample path
    # through the random rotations, so equal within the estimator's noise.
    tc_flipped = total_correlation(X * [1.0, -1.0, 1.0], random_state=0)
    assert abs(tc_flipped - tc) < 0.05


def test_kl_divergence_of_same_and_of_two_known_gaussians():
    rng = np.random.default_rng(7)
    Y = rng.normal(size=(N, 2))
    same = kl_divergence(rng.normal(size=(N, 2)), Y, random_state=0)
    assert -0.02 < same < 0.06
    mu, s = np.array([0.5, 0.0]), np.array([1.0, 1.5])
    X = mu + s * rng.normal(size=(N, 2))
    kl_true = float(np.sum(0.5 * (s**2 + mu**2 - 1) - np.log(s)))
    kl = kl_divergence(X, Y, random_state=0)
    assert abs(kl - kl_true) <= 0.1 * kl_true + 0.05


def test_bits_are_nats_over_log_two_and_details_add_up():
    rng = np.random.default_rng(8)
    X = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=2000)
    nats, details = total_correlation(X, random_state=0, return_details=True)
    bits = total_correlation(X, base=2, random_state=0)
    assert bits == pytest.approx(nats / np.log(2), rel=1e-12)
    counted = details.layer_reductions[: details.n_layers]
    assert np.sum(counted) == pytest.approx(nats, rel=1e-9, abs=1e-12)


def test_a_fitted_estimator_is_used_as_is():
    rng = np.random.default_rng(9)
    X = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=N)
    model = RBIG(rotation="pca", random_state=0).fit(X)
    n_layers = model.n_layers_
    tc = total_correlation(X, estimator=model, random_state=0)
    assert model.n_layers_ == n_layers  # not refitted
    assert abs(tc - (-0.5 * np.log(1 - 0.64))) < 0.05


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X: total_correlation(np.r_[X[:-1], [[np.nan, 0.0]]]), "NaN"),
        (lambda X: total_correlation(X[:5]), "samples"),
        (lambda X: total_correlation(np.c_[X, np.ones(len(X))]), "constant"),
        (lambda X: mutual_information(X[:, :1], X[:-1, 1:]), "samples|rows|same"),
        (lambda X: kl_divergence(X, X[:, :1]), "features"),
        (lambda X: total_correlation(X, base=1), "base"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    X = np.random.default_rng(10).normal(size=(200, 2))
    with pytest.raises(ValueError, match=match):
        call(X)
