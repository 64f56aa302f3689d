"""Information measures against closed forms, on fresh seeded samples.

Every accuracy test draws its own data from a seeded generator (seeds 0 and
1, not chosen by looking at results) and compares with an analytic truth.
The bounds exceed the largest error measured on ten seeds per case by a
factor of 1.6 (Gaussian total correlation in three dimensions, where the
sample's own correlation noise is ~1.5 % of TC) to 3 (see
benchmarks/README.md, "Information measures", for errors against n and D).
"""

import numpy as np
import pytest
from _helpers import global_random_state_unchanged
from scipy import stats
from scipy.special import digamma, gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from destructors import RBIG, DeepDestructor, MarginalGaussianizer
from destructors._entropy import (
    gaussian_total_correlation,
    knn_entropy,
    marginal_entropy,
    negentropy_noise,
)
from destructors.information import (
    entropy,
    kl_divergence,
    mutual_information,
    total_correlation,
)

N = 5000
SEEDS = [0, 1]


# -- data with known information ----------------------------------------------------


def gaussian_covariance(d, rng):
    """Random covariance: random eigenvectors, spectrum 0.1..1.9, random scales.

    The correlation spectrum is fixed (so the total correlation is of order
    one nat, never vanishing), its eigenvectors and the feature scales
    (over a factor e**4) are random.
    """
    spectrum = np.linspace(0.1, 1.9, d)
    corr = stats.random_correlation.rvs(spectrum * d / spectrum.sum(), random_state=rng)
    scales = np.exp(rng.uniform(-2.0, 2.0, size=d))
    return corr * np.outer(scales, scales)


def gaussian_measures(S, split):
    """Closed-form entropy, total correlation and MI(first split | rest)."""
    logdet = np.linalg.slogdet(S)[1]
    d = S.shape[0]
    h = 0.5 * (d * np.log(2 * np.pi * np.e) + logdet)
    tc = 0.5 * (np.sum(np.log(np.diag(S))) - logdet)
    mi = 0.5 * (
        np.linalg.slogdet(S[:split, :split])[1] + np.linalg.slogdet(S[split:, split:])[1] - logdet
    )
    return h, tc, mi


def random_mixing(d, rng):
    """Random rotation x diag(exp U(-0.7, 0.7)) x rotation: condition <= 4."""
    q1 = stats.ortho_group.rvs(d, random_state=rng)
    q2 = stats.ortho_group.rvs(d, random_state=rng)
    return q1 @ np.diag(np.exp(rng.uniform(-0.7, 0.7, size=d))) @ q2


_SOURCES = [  # unit-variance sources and their entropies
    (lambda rng, n: rng.uniform(-np.sqrt(3), np.sqrt(3), n), 0.5 * np.log(12.0)),
    (lambda rng, n: rng.laplace(0.0, np.sqrt(0.5), n), 1.0 + np.log(2 * np.sqrt(0.5))),
    (
        lambda rng, n: rng.standard_t(5, n) * np.sqrt(3 / 5),
        stats.t(5).entropy() + 0.5 * np.log(3 / 5),
    ),
]


def mixed_sources(d, n, rng):
    """Uniform, Laplace, Student-t(5) sources (cycled) mixed linearly."""
    sources = [_SOURCES[k % 3] for k in range(d)]
    A = random_mixing(d, rng)
    S = np.column_stack([draw(rng, n) for draw, _ in sources])
    return S @ A.T, sum(h for _, h in sources) + np.linalg.slogdet(A)[1]


def _t_entropy(d, nu, logdet):
    return (
        0.5 * logdet + 0.5 * d * np.log(nu * np.pi) + gammaln(nu / 2) - gammaln((nu + d) / 2)
        + 0.5 * (nu + d) * (digamma((nu + d) / 2) - digamma(nu / 2))
    )


def student_t(d, n, rng, nu=5.0):
    """Multivariate Student t and its total correlation (closed form)."""
    S = gaussian_covariance(d, rng)
    X = stats.multivariate_t(np.zeros(d), S, df=nu).rvs(size=n, random_state=rng).reshape(n, d)
    marginals = sum(_t_entropy(1, nu, np.log(S[j, j])) for j in range(d))
    return X, marginals - _t_entropy(d, nu, np.linalg.slogdet(S)[1])


def gaussian_kl(m0, S0, m1, S1):
    inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (
        np.trace(inv @ S0) + diff @ inv @ diff - len(m0)
        + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1]
    )


def gaussian_sample(d, seed, n=N):
    rng = np.random.default_rng(seed)
    S = gaussian_covariance(d, rng)
    return rng.multivariate_normal(np.zeros(d), S, size=n), S


# -- accuracy: Gaussians ---------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [2, 3, 10])
def test_gaussian_total_correlation_within_5_percent(d, seed):
    X, S = gaussian_sample(d, 100 * d + seed)
    _, tc, _ = gaussian_measures(S, 1)
    assert abs(total_correlation(X, random_state=seed) - tc) <= 0.05 * tc


def test_gaussian_total_correlation_50_features():
    X, S = gaussian_sample(50, 5000)
    _, tc, _ = gaussian_measures(S, 1)
    assert abs(total_correlation(X, random_state=0) - tc) <= 0.02 * tc


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [2, 3, 10])
def test_gaussian_entropy(d, seed):
    X, S = gaussian_sample(d, 100 * d + seed)
    h, _, _ = gaussian_measures(S, 1)
    # Main error: the k-NN marginal entropies, ~0.01-0.02 nats each.
    assert abs(entropy(X, random_state=seed) - h) <= 0.03 + 0.04 * np.sqrt(d)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [2, 3, 10])
def test_gaussian_mutual_information_between_blocks(d, seed):
    X, S = gaussian_sample(d, 100 * d + seed)
    split = d // 2
    _, _, mi = gaussian_measures(S, split)
    est = mutual_information(X[:, :split], X[:, split:], random_state=seed)
    assert abs(est - mi) <= 0.05 * mi + 0.04


def test_entropy_likelihood_cross_check_is_an_upper_bound():
    X, S = gaussian_sample(3, 77)
    h, _, _ = gaussian_measures(S, 1)
    h_ll = entropy(X, method="likelihood", random_state=0)
    h_tc = entropy(X, random_state=0)
    # A cross-entropy: above the truth by the model's KL, which is small.
    assert h - 0.03 <= h_ll <= h + 0.15
    assert abs(h_ll - h_tc) <= 0.15


# -- accuracy: non-Gaussian --------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d, bound", [(2, 0.12), (3, 0.2)])
def test_entropy_of_mixed_non_gaussian_sources(d, bound, seed):
    X, h = mixed_sources(d, N, np.random.default_rng(200 * d + seed))
    # Unconverged non-Gaussian dependence biases H upwards (+0.02, +0.06
    # nats on average at n = 5000, d = 2, 3).
    assert abs(entropy(X, random_state=seed) - h) <= bound


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [2, 3])
def test_student_t_total_correlation(d, seed):
    X, tc = student_t(d, N, np.random.default_rng(300 * d + seed))
    assert abs(total_correlation(X, random_state=seed) - tc) <= 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_independent_features_have_no_total_correlation(seed):
    rng = np.random.default_rng(400 + seed)
    X = np.column_stack(
        [rng.exponential(size=N), rng.standard_t(3, size=N), rng.uniform(size=N),
         rng.laplace(size=N)]
    )
    assert abs(total_correlation(X, random_state=seed)) <= 0.02


@pytest.mark.parametrize("seed", SEEDS)
def test_mutual_information_of_independent_blocks_is_near_zero(seed):
    rng = np.random.default_rng(500 + seed)
    X, _ = mixed_sources(2, N, rng)
    Y = rng.laplace(size=(N, 2)) @ random_mixing(2, rng).T
    assert abs(mutual_information(X, Y, random_state=seed)) <= 0.07


@pytest.mark.parametrize("seed", SEEDS)
def test_mutual_information_invariant_to_monotone_maps(seed):
    X, S = gaussian_sample(4, 600 + seed)
    _, _, mi = gaussian_measures(S, 2)
    A, B = X[:, :2], X[:, 2:]
    plain = mutual_information(A, B, random_state=seed)
    warped = mutual_information(np.exp(A), np.sinh(2 * B) + B**3, random_state=seed)
    assert abs(warped - plain) <= 0.02
    assert abs(warped - mi) <= 0.05 * mi + 0.03


@pytest.mark.parametrize("seed", SEEDS)
def test_kl_divergence_of_two_samples_of_one_distribution_is_near_zero(seed):
    rng = np.random.default_rng(700 + seed)
    A = random_mixing(2, rng)
    X = rng.laplace(size=(N, 2)) @ A.T
    Y = rng.laplace(size=(N, 2)) @ A.T
    assert abs(kl_divergence(X, Y, random_state=seed)) <= 0.08


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_kl_divergence_between_gaussians(d, seed):
    """P_Y: a random correlation matrix (spectrum 0.5..1.5); P_X: a random
    perturbation of it; both then scaled and shifted alike (KL unchanged)."""
    rng = np.random.default_rng(800 * d + seed)
    spectrum = np.linspace(0.5, 1.5, d)
    if d == 1:
        S1 = np.eye(1)
    else:
        S1 = stats.random_correlation.rvs(spectrum * d / spectrum.sum(), random_state=rng)
    B = np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)
    S0 = B @ S1 @ B.T
    m0 = 0.3 * rng.normal(size=d)
    scale, shift = np.exp(rng.uniform(-2, 2, size=d)), 5 * rng.normal(size=d)
    X = rng.multivariate_normal(m0, S0, size=N) * scale + shift
    Y = rng.multivariate_normal(np.zeros(d), S1, size=N) * scale + shift
    kl = gaussian_kl(m0, S0, np.zeros(d), S1)
    assert abs(kl_divergence(X, Y, random_state=seed) - kl) <= 0.2 * kl + 0.03


# -- invariances, units, reproducibility ------------------------------------------------


def test_affine_maps_of_features_leave_tc_and_mi_unchanged():
    """What is invariant, exactly: a positive scale and shift of a feature keep
    its ranks, so the first layer's normal scores are the same numbers up to
    the rounding of the knot abscissae (last bits). No later choice hangs on
    those bits (PCA axis signs are fixed by a projection on a generic
    direction, not by the largest of two equal loadings; the greedy choice
    compares candidates by clear margins), so every layer, and TC and MI,
    agree to 1e-9. A negative scale mirrors a feature's normal scores, a
    different but equally valid map: later layers then differ at noise level."""
    X, _ = gaussian_sample(3, 900, n=2000)
    a, b = np.array([1e-3, 50.0, 7.0]), np.array([3.0, -1e4, 0.5])
    Xs = X * a + b
    assert total_correlation(Xs, random_state=0) == pytest.approx(
        total_correlation(X, random_state=0), abs=1e-9
    )
    assert mutual_information(Xs[:, :1], Xs[:, 1:], random_state=0) == pytest.approx(
        mutual_information(X[:, :1], X[:, 1:], random_state=0), abs=1e-9
    )
    Xm = Xs * [1.0, -1.0, -1.0]
    assert total_correlation(Xm, random_state=0) == pytest.approx(
        total_correlation(X, random_state=0), abs=2e-3
    )
    assert mutual_information(Xm[:, :1], Xm[:, 1:], random_state=0) == pytest.approx(
        mutual_information(X[:, :1], X[:, 1:], random_state=0), abs=2e-3
    )
    # Entropy moves by exactly sum(log|a|).
    assert entropy(Xs, random_state=0) == pytest.approx(
        entropy(X, random_state=0) + np.sum(np.log(np.abs(a))), abs=1e-6
    )


def test_base_two_gives_bits():
    X, _ = gaussian_sample(2, 901, n=1000)
    nats = total_correlation(X, random_state=3)
    assert total_correlation(X, base=2, random_state=3) == pytest.approx(nats / np.log(2))
    h = entropy(X, random_state=3)
    assert entropy(X, base=np.e, random_state=3) == pytest.approx(h)


def test_reproducible_and_global_random_state_untouched():
    X, _ = gaussian_sample(3, 902, n=1000)
    with global_random_state_unchanged():
        a = mutual_information(X[:, :1], X[:, 1:], random_state=5)
        b = mutual_information(X[:, :1], X[:, 1:], random_state=5)
        assert a == b
        assert total_correlation(X, random_state=np.random.RandomState(1)) == (
            total_correlation(X, random_state=np.random.RandomState(1))
        )
        kl_divergence(X, X[::-1], random_state=None)


def test_one_dimensional_inputs_are_one_feature():
    rng = np.random.default_rng(903)
    x = rng.normal(size=1000)
    assert total_correlation(x, random_state=0) == 0.0
    assert entropy(x, random_state=0) == pytest.approx(0.5 * np.log(2 * np.pi * np.e), abs=0.05)


# -- details and user estimators ---------------------------------------------------------


def test_details_expose_the_fitted_model_and_per_layer_reductions():
    X, S = gaussian_sample(3, 904, n=2000)
    tc, details = total_correlation(X, random_state=0, return_details=True)
    model = details.estimator
    assert isinstance(model, DeepDestructor)
    assert details.layer_reductions.shape == model.tc_reduction_.shape
    assert 1 <= details.n_layers <= details.layer_reductions.size
    assert np.sum(details.layer_reductions[: details.n_layers]) == pytest.approx(tc)
    # The model is an ordinary fitted destructor.
    Z = model.transform(X)
    assert Z.shape == X.shape
    np.testing.assert_allclose(model.inverse_transform(Z), X, rtol=1e-7, atol=1e-7)
    assert np.all(np.isfinite(model.score_samples(X)))
    h, d_h = entropy(X, random_state=0, return_details=True)
    assert h == pytest.approx(np.sum(d_h.marginal_entropies) - d_h.total_correlation)
    kl, d_kl = kl_divergence(X, X[::-1], random_state=0, return_details=True)
    assert kl == pytest.approx(d_kl.total_correlation + np.sum(d_kl.marginal_kl))


def test_unfitted_estimator_is_cloned_and_fitted_one_is_reused():
    X, S = gaussian_sample(3, 905)
    _, tc, _ = gaussian_measures(S, 1)
    template = RBIG(rotation="pca", smoothing=0.0, max_layers=20, random_state=0)
    est, details = total_correlation(X, estimator=template, random_state=0, return_details=True)
    with pytest.raises(NotFittedError):
        check_is_fitted(template)  # the caller's estimator is left alone
    assert abs(est - tc) <= 0.05 * tc
    fitted = clone(template).fit(X)
    reused = total_correlation(X, estimator=fitted, random_state=0)
    assert abs(reused - tc) <= 0.05 * tc
    kl = kl_divergence(X[:2500], X[2500:], estimator=clone(template).fit(X[2500:]))
    assert abs(kl) <= 0.1


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X: total_correlation(X[:10]), "at least 20"),
        (lambda X: total_correlation(np.c_[X, np.ones(len(X))]), "constant"),
        (lambda X: total_correlation(np.where(X == X[0, 0], np.nan, X)), "NaN"),
        (lambda X: total_correlation(X[None]), "dim 3"),
        (lambda X: total_correlation(X, base=1), "base"),
        (lambda X: total_correlation(X, base=-2.0), "base"),
        (lambda X: total_correlation(X, base="bits"), "base"),
        (lambda X: total_correlation(X, estimator=MarginalGaussianizer()), "DeepDestructor"),
        (lambda X: entropy(X, method="knn"), "method"),
        (lambda X: entropy(np.round(X / X.std(axis=0))), "equal values"),
        (lambda X: mutual_information(X, X[:-1]), "same number of samples"),
        (lambda X: kl_divergence(X, X[:, :1]), "same number of features"),
        (
            lambda X: total_correlation(X, estimator=RBIG(max_layers=2).fit(X[:, :1])),
            "expects 1 features",
        ),
        (
            lambda X: total_correlation(
                X, estimator=DeepDestructor(MarginalGaussianizer(), max_layers=2)
            ),
            "MarginalGaussianizer followed by linear maps",
        ),
    ],
)
def test_bad_input_raises_clear_value_error(call, match):
    X, _ = gaussian_sample(2, 906, n=200)
    with pytest.raises(ValueError, match=match):
        call(X)


# -- the one-dimensional estimators ------------------------------------------------------


_DISTRIBUTIONS = {
    "normal": stats.norm(),
    "uniform": stats.uniform(),
    "exponential": stats.expon(),
    "t3": stats.t(3),
    "lognormal": stats.lognorm(1.0),
    "beta22": stats.beta(2, 2),
}


@pytest.mark.parametrize("dist", _DISTRIBUTIONS.values(), ids=_DISTRIBUTIONS.keys())
def test_knn_entropy_matches_closed_forms(dist):
    x = dist.rvs(size=(20000, 1), random_state=np.random.default_rng(7))
    assert abs(knn_entropy(x)[0] - dist.entropy()) <= 0.04


def test_histogram_entropy_matches_numpy_histogram():
    X = np.random.default_rng(8).gamma(2.0, size=(3000, 4)) * [1.0, 10.0, 0.1, 3.0]
    n_bins = int(np.ceil(np.sqrt(3000)))
    expected = []
    for col in X.T:
        counts, edges = np.histogram(col, bins=n_bins)
        p = counts[counts > 0] / col.size
        width = edges[1] - edges[0]
        expected.append(-np.sum(p * np.log(p / width)) + (p.size - 1) / (2 * col.size))
    np.testing.assert_allclose(marginal_entropy(X), expected, rtol=1e-10)
    assert marginal_entropy(np.ones((10, 1)))[0] == -np.inf


def test_negentropy_noise_matches_simulation():
    n = 2000
    Z = np.random.default_rng(9).normal(size=(n, 300))
    J = 0.5 * np.log(2 * np.pi * np.e * Z.var(axis=0)) - marginal_entropy(Z)
    assert 0.7 <= J.std() / negentropy_noise(n) <= 1.4


def test_gaussian_total_correlation_closed_form():
    rho = 0.6
    cov = np.array([[4.0, 2 * 3 * rho], [2 * 3 * rho, 9.0]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * np.log(1 - rho**2))
    assert gaussian_total_correlation(np.ones((2, 2))) == np.inf
