"""KernelDensityDestructor: the Rosenblatt map of a Gaussian kernel density."""

import numpy as np
import pytest
from _helpers import assert_change_of_variables, assert_round_trip, standard_normal_log_pdf
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from sklearn.utils.estimator_checks import parametrize_with_checks

import destructors.mixture as mixture_module
from destructors import GaussianMixtureDestructor, KernelDensityDestructor
from destructors.registry import get_layer
from destructors.utils import check_destructor


def _square(n, seed):
    """Uniform on a rectangle, features in different units: a flat density, sharp edges."""
    return np.random.default_rng(seed).uniform(size=(n, 2)) * [1.0, 50.0] + [0.0, 10.0]


def _sklearn_kde_log_density(X_fit, X, h):
    """sklearn's KernelDensity on standardized rows, back in data units."""
    s = X_fit.std(axis=0)
    kde = KernelDensity(bandwidth=h).fit(X_fit / s)
    return kde.score_samples(X / s) - np.log(s).sum()


def test_registered_as_a_layer():
    assert get_layer("kernel-density", "layer") is KernelDensityDestructor


@pytest.mark.parametrize("h", [0.05, 0.3])
def test_density_is_sklearns_kernel_density(h):
    X, X_new = _square(300, 0), _square(100, 1)
    layer = KernelDensityDestructor(bandwidth=h).fit(X)
    expected = _sklearn_kde_log_density(X, X_new, h)
    np.testing.assert_allclose(layer.score_samples(X_new), expected, rtol=0, atol=1e-9)
    # The map's own log-determinant gives the same density (the Rosenblatt map).
    Z, log_det = layer.transform_log_det(X_new)
    np.testing.assert_allclose(standard_normal_log_pdf(Z) + log_det, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(layer.mixture_.score_samples(X_new), expected, rtol=0, atol=1e-9)
    assert layer.n_components_ == 300 and layer.bandwidth_ == h


def test_shared_factor_gives_the_map_of_the_full_covariance_mixture():
    # The same mixture stored with one covariance per component takes the
    # general path; the shared (1, d, d) factor must give the same map.
    X = _square(200, 2)
    kde = KernelDensityDestructor(bandwidth=0.2).fit(X)
    cov = np.broadcast_to(kde.mixture_.covariances_, (200, 2, 2)).copy()
    gm = GaussianMixture(200, covariance_type="full")
    gm.weights_, gm.means_, gm.covariances_ = kde.mixture_.weights_, X.copy(), cov
    gm.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(cov)).transpose(0, 2, 1)
    gm.converged_, gm.n_iter_ = True, 0
    full = GaussianMixtureDestructor(200)._set_mixture(gm)
    full.n_features_in_ = 2
    assert kde.precisions_cholesky_.shape == (1, 2, 2)
    assert full.precisions_cholesky_.shape == (200, 2, 2)
    X_new = _square(50, 3)
    Z, log_det = kde.transform_log_det(X_new)
    Z_full, log_det_full = full.transform_log_det(X_new)
    np.testing.assert_allclose(Z, Z_full, rtol=0, atol=1e-11)
    np.testing.assert_allclose(log_det, log_det_full, rtol=0, atol=1e-11)
    np.testing.assert_allclose(kde.inverse_transform(Z), full.inverse_transform(Z),
                               rtol=0, atol=1e-10)


def test_leave_one_out_likelihood_is_the_brute_force_one():
    X = _square(60, 4)
    U = X / X.std(axis=0)
    h = 0.17
    brute = [KernelDensity(bandwidth=h).fit(np.delete(U, i, axis=0)).score_samples(U[i:i + 1])[0]
             for i in range(len(U))]
    got = mixture_module._loo_log_likelihood(U, np.arange(len(U)), np.log(h))
    assert abs(got - np.mean(brute)) < 1e-9


def test_auto_bandwidth_is_the_leave_one_out_best_of_those_tried():
    X = _square(400, 5)
    layer = KernelDensityDestructor().fit(X)
    tried, scores = layer.candidate_bandwidths_, layer.candidate_scores_
    best = int(np.argmax(scores))
    assert layer.bandwidth_ == tried[best]
    # An interior maximum, refined well inside the first factor-2 bracket.
    assert 0 < best < len(tried) - 1
    assert tried[best + 1] / tried[best - 1] < 1.1
    U = X / X.std(axis=0)
    for log_h in np.log(layer.bandwidth_) + np.array([-0.3, 0.3]):
        assert (mixture_module._loo_log_likelihood(U, np.arange(400), log_h)
                < scores[best])


def test_auto_queries_a_seeded_subsample_of_large_data(monkeypatch):
    monkeypatch.setattr(mixture_module, "_LOO_ROWS", 100)
    X = _square(500, 6)
    a = KernelDensityDestructor(random_state=0).fit(X)
    b = KernelDensityDestructor(random_state=0).fit(X)
    assert a.bandwidth_ == b.bandwidth_
    # The subsample's choice is close to the all-rows choice.
    monkeypatch.setattr(mixture_module, "_LOO_ROWS", 1000)
    full = KernelDensityDestructor().fit(X)
    assert 0.6 < a.bandwidth_ / full.bandwidth_ < 1.6


def test_kernel_density_beats_a_mixture_on_a_flat_density_with_sharp_edges():
    # The held-out gain is the reason it is an AutoDestructor candidate.
    X, X_test = _square(2000, 7), _square(2000, 8)
    kde = KernelDensityDestructor(random_state=0).fit(X)
    gmm = GaussianMixtureDestructor(random_state=0).fit(X)
    truth = -np.log(50.0)
    assert kde.score(X_test) > gmm.score(X_test) + 0.02
    assert truth - kde.score(X_test) < 0.1


def test_round_trip_and_change_of_variables():
    X = _square(300, 9)
    layer = KernelDensityDestructor(random_state=0).fit(X)
    assert_round_trip(layer, _square(100, 10))
    assert_change_of_variables(layer, _square(30, 11))


def test_passes_check_destructor():
    report = check_destructor(KernelDensityDestructor())
    assert set(report.skipped) == {"fused", "stream"}


def test_bad_input_gives_clear_errors():
    X = _square(50, 12)
    X[:, 1] = 3.0
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] are constant"):
        KernelDensityDestructor().fit(X)
    with pytest.raises(ValueError, match="bandwidth"):
        KernelDensityDestructor(bandwidth=0.0).fit(_square(50, 12))


def test_safe_model_file_round_trip(tmp_path):
    from destructors.persistence import load_model, save_model

    X = _square(200, 13)
    layer = KernelDensityDestructor(random_state=0).fit(X)
    save_model(tmp_path / "kde.destructor", layer)
    twin = load_model(tmp_path / "kde.destructor").model
    np.testing.assert_array_equal(twin.score_samples(X), layer.score_samples(X))
    np.testing.assert_array_equal(twin.transform(X), layer.transform(X))
    assert twin.bandwidth_ == layer.bandwidth_


@parametrize_with_checks([KernelDensityDestructor(), KernelDensityDestructor(bandwidth=0.5)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
