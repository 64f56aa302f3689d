"""GaussianMixtureDestructor: the Rosenblatt map of a full-covariance Gaussian mixture."""

import numpy as np
import pytest
from _helpers import (
    assert_change_of_variables,
    assert_round_trip,
    far_points,
    fd_log_abs_det,
    global_random_state_unchanged,
    skewed_data,
    standard_normal_log_pdf,
    trapezoid_1d,
)
from scipy.stats import kstest, norm
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import destructors.mixture as mixture_module
from destructors import (
    CompositeDestructor,
    DeepDestructor,
    GaussianMixtureDestructor,
    MarginalGaussianizer,
    PCARotation,
)
from destructors.registry import get_layer
from destructors.utils import check_destructor


def _clusters(n, seed, d=3):
    """Three correlated Gaussian clusters of different sizes and shapes."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0.0, 2.0], [3.0, 3.0, -1.0], [0.0, -4.0, 0.0]])[:, :d]
    shapes = [
        np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.2, 0.5]]),
        np.array([[0.5, 0.0, 0.0], [-0.2, 1.2, 0.0], [0.4, 0.4, 0.3]]),
        np.array([[0.7, 0.0, 0.0], [0.0, 0.4, 0.0], [0.5, -0.5, 1.0]]),
    ]
    sizes = [n // 2, n // 3, n - n // 2 - n // 3]
    parts = [c + rng.normal(size=(s, d)) @ A[:d, :d].T
             for c, A, s in zip(centres, shapes, sizes, strict=True)]
    return rng.permutation(np.vstack(parts))


def _fitted(n_components=3, seed=0, X=None):
    X = _clusters(1500, seed) if X is None else X
    return GaussianMixtureDestructor(n_components=n_components, random_state=0).fit(X), X


def test_registered_as_a_layer():
    assert get_layer("gaussian-mixture", "layer") is GaussianMixtureDestructor


def test_density_is_that_of_the_mixture():
    model, X = _fitted()
    # An independent fit with the same settings and seed is the same mixture.
    gm = GaussianMixture(3, covariance_type="full", reg_covar=1e-6, max_iter=200,
                         random_state=0).fit(X)
    np.testing.assert_allclose(model.mixture_.means_, gm.means_, rtol=0, atol=1e-12)
    P = np.vstack([X[:200], far_points(X, seed=1)[:40]])
    np.testing.assert_allclose(model.score_samples(P), gm.score_samples(P), rtol=1e-10,
                               atol=1e-8)
    # And it is the change of variables of the map.
    Z, log_det = model.transform_log_det(P)
    np.testing.assert_allclose(standard_normal_log_pdf(Z) + log_det, gm.score_samples(P),
                               rtol=1e-10, atol=1e-8)


def test_auto_refits_the_chosen_number_on_all_rows():
    X = _clusters(1200, seed=2)
    model = GaussianMixtureDestructor(random_state=3).fit(X)
    k = model.n_components_
    # Doublings from 1, stopped two doublings after the best (or at the cap).
    tried = model.candidate_n_components_.tolist()
    assert tried == [2**i for i in range(len(tried))]
    best = int(np.argmax(model.candidate_scores_))
    assert len(tried) - 1 - best == 2 or tried[-1] * 2 * (X.shape[1] + 1) > 0.8 * len(X)
    assert k == model.candidate_n_components_[np.argmax(model.candidate_scores_)]
    gm = GaussianMixture(k, random_state=3).fit(X)
    np.testing.assert_allclose(model.score_samples(X), gm.score_samples(X), atol=1e-8)
    # The held-out scores are those of mixtures fitted on a seeded 80%.
    perm = np.random.RandomState(3).permutation(len(X))
    held, fit = X[perm[:240]], X[perm[240:]]
    assert model.candidate_scores_[1] == pytest.approx(
        GaussianMixture(2, random_state=3).fit(fit).score(held), rel=1e-12)


def test_average_of_seeds_is_the_mean_of_the_members_densities():
    X = _clusters(900, seed=4)
    model = GaussianMixtureDestructor(n_components=4, n_average=3, random_state=5).fit(X)
    assert model.n_components_ == 12
    np.testing.assert_allclose(np.exp(model.log_weights_).sum(), 1.0, rtol=1e-12)
    # The members: the single fit of the seed, then seeds drawn from it.
    seeds = [5, *np.random.RandomState(5).randint(0, 2**31 - 1, 2)]
    members = np.array([GaussianMixture(4, random_state=int(s)).fit(X).score_samples(X)
                        for s in seeds])
    expected = np.logaddexp.reduce(members, axis=0) - np.log(3)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.mixture_.score_samples(X), expected, rtol=0, atol=1e-9)
    Z, log_det = model.transform_log_det(X[:100])
    np.testing.assert_allclose(standard_normal_log_pdf(Z) + log_det, expected[:100],
                               rtol=0, atol=1e-9)
    assert_round_trip(model, X[:200])
    # "auto" chooses k with single fits and averages that many components.
    auto = GaussianMixtureDestructor(n_average=2, random_state=5).fit(X)
    best = auto.candidate_n_components_[np.argmax(auto.candidate_scores_)]
    assert auto.n_components_ == 2 * best


def test_map_is_the_rosenblatt_transform():
    # Computed independently: Gaussian conditionals by Schur complements,
    # responsibilities from scipy's multivariate normal of x_<k.
    from scipy.stats import multivariate_normal

    model, X = _fitted()
    gm = model.mixture_
    P = X[:15]
    Z = model.transform(P)
    expected = np.empty_like(P)
    for i, x in enumerate(P):
        for k in range(3):
            weights, cdf = [], []
            for pi, mu, S in zip(gm.weights_, gm.means_, gm.covariances_, strict=True):
                if k == 0:
                    w, m, v = pi, mu[0], S[0, 0]
                else:
                    A = S[:k, :k]
                    w = pi * multivariate_normal(mu[:k], A).pdf(x[:k])
                    gain = np.linalg.solve(A, S[:k, k])
                    m = mu[k] + gain @ (x[:k] - mu[:k])
                    v = S[k, k] - S[k, :k] @ gain
                weights.append(w)
                cdf.append(norm.cdf(x[k], m, np.sqrt(v)))
            expected[i, k] = norm.ppf(np.dot(weights, cdf) / np.sum(weights))
    np.testing.assert_allclose(Z, expected, rtol=1e-7, atol=1e-7)


def test_jacobian_is_triangular_and_matches_the_log_det():
    model, X = _fitted()
    P = X[:6] + 0.01
    h = 1e-6
    d = X.shape[1]
    for x in P:
        J = np.empty((d, d))
        for j in range(d):
            step = np.zeros(d)
            step[j] = h
            J[:, j] = (model.transform((x + step)[None]) - model.transform((x - step)[None]))[0]
        J /= 2 * h
        # z_k depends on x_<=k only.
        np.testing.assert_array_equal(J[np.triu_indices(d, 1)], 0.0)
        ld = model.transform_log_det(x[None])[1][0]
        assert ld == pytest.approx(np.log(np.abs(np.diag(J))).sum(), abs=1e-6)
        assert ld == pytest.approx(np.linalg.slogdet(J)[1], abs=1e-6)
    np.testing.assert_allclose(model.transform_log_det(P)[1], fd_log_abs_det(model.transform, P,
                                                                              1e-6), atol=1e-6)
    assert_change_of_variables(model, P, min_kept=1.0)


def _min_log_slope(model, X, h=1e-7):
    """min_k log dz_k/dx_k of each row, by central differences (-inf where flat)."""
    out = np.full(len(X), np.inf)
    for k in range(X.shape[1]):
        step = np.zeros(X.shape[1])
        step[k] = h * max(1.0, np.abs(X[:, k]).max())
        rise = model.transform(X + step)[:, k] - model.transform(X - step)[:, k]
        with np.errstate(divide="ignore"):
            out = np.minimum(out, np.log(rise / (2 * step[k])))
    return out


def test_round_trip_on_training_and_far_rows():
    model, X = _fitted()
    assert_round_trip(model, X, rtol=1e-10)
    far = far_points(X, seed=4, n_each=100)
    # Far out in some directions a row lies in a gap between the conditional
    # components so deep that z_k is flat to double precision (dz/dx below
    # e^-1000): no inverse can recover x there. Wherever the map is
    # well-conditioned the inverse is exact...
    ok = _min_log_slope(model, far) > -8.0
    assert ok.mean() > 0.8
    assert_round_trip(model, far[ok], rtol=1e-10)
    # ...and everywhere it finds a point with exactly the requested z.
    Z = model.transform(far)
    np.testing.assert_allclose(model.transform(model.inverse_transform(Z)), Z, rtol=1e-12)
    Z = model.transform(X[:300])
    np.testing.assert_allclose(model.transform(model.inverse_transform(Z)), Z, atol=1e-9)


def test_tails_stay_finite_and_exact_at_30_standard_deviations_1d():
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.normal(-3, 0.5, 300), rng.normal(1, 2.0, 300), rng.normal(4, 1, 300)])
    model = GaussianMixtureDestructor(n_components=3, random_state=0).fit(x[:, None])
    gm = model.mixture_
    sd = np.sqrt(gm.covariances_[:, 0, 0])
    P = np.array([[gm.means_.min() - 30 * sd.max()], [gm.means_.max() + 30 * sd.max()],
                  [gm.means_.min() - 300 * sd.max()], [gm.means_.max() + 300 * sd.max()]])
    Z, log_det = model.transform_log_det(P)
    assert np.all(np.isfinite(Z)) and np.all(np.isfinite(log_det))
    assert Z[0, 0] < -29 and Z[1, 0] > 29  # where Phi(z) or 1 - Phi(z) underflow
    np.testing.assert_allclose(model.score_samples(P), gm.score_samples(P), rtol=1e-12)
    np.testing.assert_allclose(model.inverse_transform(Z), P, rtol=1e-12)
    np.testing.assert_allclose(log_det[:2], fd_log_abs_det(model.transform, P[:2], 1e-5),
                               atol=1e-6)


def test_tails_stay_finite_and_exact_at_30_standard_deviations():
    model, X = _fitted()
    gm = model.mixture_
    centre = gm.means_.mean(axis=0)
    P = []
    for mu, S in zip(gm.means_, gm.covariances_, strict=True):
        sd = np.sqrt(np.diag(S))
        P.append(mu + 30.0 * sd * np.sign(mu - centre))  # outward
        w, V = np.linalg.eigh(S)
        P.extend(mu + s * 30.0 * np.sqrt(w[j]) * V[:, j] for j in range(3) for s in (1, -1))
    P = np.array(P)
    Z, log_det = model.transform_log_det(P)
    assert np.all(np.isfinite(Z)) and np.all(np.isfinite(log_det))
    assert np.abs(Z).max() > 20  # truly in the tails, where 1 - F rounds to 0
    np.testing.assert_allclose(model.score_samples(P), gm.score_samples(P), rtol=1e-10)
    # The log-det out there is still the derivative of the map.
    ok = _min_log_slope(model, P) > -8.0  # not in a flat gap (see the round trip test)
    assert ok.mean() > 0.7
    np.testing.assert_allclose(log_det[ok], fd_log_abs_det(model.transform, P[ok], 1e-6),
                               atol=1e-5)
    np.testing.assert_allclose(model.inverse_transform(Z[ok]), P[ok], rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(model.transform(model.inverse_transform(Z)), Z, rtol=1e-12)
    # Extreme latent points invert to finite points that map back exactly.
    Zx = np.array([[-35.0, 35.0, -35.0], [35.0, 0.0, 35.0], [-38.0, -38.0, 38.0]])
    np.testing.assert_allclose(model.transform(model.inverse_transform(Zx)), Zx, rtol=1e-12)


def test_data_from_the_mixture_come_out_standard_normal():
    model, _ = _fitted()
    S, _ = model.mixture_.sample(20000)  # the mixture's own seeded draw
    Z = model.transform(S)
    for k in range(Z.shape[1]):
        assert kstest(Z[:, k], "norm").pvalue > 1e-3
    corr = np.corrcoef(Z.T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.03
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=0.03)


def test_density_integrates_to_one_in_1d():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(-2, 0.5, 400), rng.gamma(2.0, 1.0, 600)])[:, None]
    model = GaussianMixtureDestructor(n_components=4, random_state=0).fit(x)
    lo, hi = model.inverse_transform([[-9.0], [9.0]]).ravel()
    assert trapezoid_1d(model, lo, hi, 200_001) == pytest.approx(1.0, abs=1e-6)
    # The 1-D map is Phi^{-1} of the mixture CDF.
    gm = model.mixture_
    grid = np.linspace(lo, hi, 50)
    sd = np.sqrt(gm.covariances_[:, 0, 0])
    u = (grid[:, None] - gm.means_[:, 0]) / sd
    cdf, sf = norm.cdf(u) @ gm.weights_, norm.sf(u) @ gm.weights_
    expected = np.where(cdf < 0.5, norm.ppf(cdf), norm.isf(sf))
    np.testing.assert_allclose(model.transform(grid[:, None])[:, 0], expected, rtol=1e-9)


@pytest.mark.parametrize("n_average", [1, 2])
def test_passes_check_destructor(n_average):
    report = check_destructor(GaussianMixtureDestructor(n_components=3, n_average=n_average))
    assert set(report.skipped) == {"fused", "stream"}


def test_chunking_does_not_change_the_result(monkeypatch):
    model, X = _fitted()
    Z, log_det = model.transform_log_det(X)
    X_back = model.inverse_transform(Z)
    monkeypatch.setattr(mixture_module, "_CHUNK_ELEMENTS", 50)  # chunks of 5 rows
    assert len(model._chunks(len(X))) == 300
    Z2, log_det2 = model.transform_log_det(X)
    np.testing.assert_array_equal(Z2, Z)
    np.testing.assert_array_equal(log_det2, log_det)
    np.testing.assert_allclose(model.inverse_transform(Z), X_back, rtol=1e-14, atol=1e-14)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_inside_a_composite_and_a_deep_model():
    X = skewed_data(1500, 3, seed=6)
    X_test = skewed_data(800, 3, seed=7)
    alone = GaussianMixtureDestructor(n_components=4, random_state=0).fit(X)
    chain = CompositeDestructor(
        [GaussianMixtureDestructor(n_components=4, random_state=0), PCARotation(whiten=True)]
    ).fit(X)
    # The whitening of an already standard normal output changes little, and
    # the log-dets add up exactly.
    Z1, ld1 = alone.transform_log_det(X_test)
    Z2, ld2 = chain.layers_[1].transform_log_det(Z1)
    Zc, ldc = chain.transform_log_det(X_test)
    np.testing.assert_allclose(Zc, Z2, rtol=1e-12)
    np.testing.assert_allclose(ldc, ld1 + ld2, rtol=1e-12)
    assert_round_trip(chain, X_test, rtol=1e-9)

    # A mixture first, then a deep RBIG-style model on its output.
    deep_after = CompositeDestructor([
        GaussianMixtureDestructor(n_components=4, random_state=0),
        DeepDestructor(max_layers=5, early_stopping=False, random_state=0),
    ]).fit(X)
    assert_round_trip(deep_after, X_test, rtol=1e-8)
    assert np.all(np.isfinite(deep_after.score_samples(X_test)))
    # The deep part cannot make the held-out fit much worse than the mixture.
    assert deep_after.score(X_test) > alone.score(X_test) - 0.2

    # A deep model whose every layer starts with a mixture.
    deep = DeepDestructor(
        CompositeDestructor([GaussianMixtureDestructor(n_components=2), MarginalGaussianizer()]),
        max_layers=3, early_stopping=False, tol=None, random_state=0,
    ).fit(X)
    assert deep.n_layers_ == 3
    assert isinstance(deep.layers_[0].layers_[0], GaussianMixtureDestructor)
    assert_round_trip(deep, X_test, rtol=1e-8)
    assert_change_of_variables(deep, X_test[:5], atol=1e-4, min_kept=0.6)


def test_sample_is_deterministic_for_a_seed():
    model, X = _fitted()
    a = model.sample(500, random_state=11)
    np.testing.assert_array_equal(a, model.sample(500, random_state=11))
    assert not np.array_equal(a, model.sample(500, random_state=12))
    # Samples follow the mixture: their mean log-likelihood matches the data's.
    assert model.score(a) == pytest.approx(model.score(X), abs=0.2)


def test_fit_is_deterministic_and_leaves_global_state_alone():
    X = _clusters(600, seed=8)
    with global_random_state_unchanged():
        a = GaussianMixtureDestructor(random_state=4).fit(X).transform(X)
        b = GaussianMixtureDestructor(random_state=4).fit(X).transform(X)
        GaussianMixtureDestructor(n_components=2).fit(X).sample(3)
    np.testing.assert_array_equal(a, b)


def test_bad_input_gives_clear_errors():
    model, X = _fitted()
    with pytest.raises(ValueError, match="NaN"):
        model.transform(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="features"):
        model.transform(X[:, :2])
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixtureDestructor(n_components=0).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixtureDestructor(n_components="many").fit(X)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixtureDestructor(covariance_type="diag").fit(X)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixtureDestructor(reg_covar=-1.0).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixtureDestructor(n_components=10).fit(X[:5])
    with pytest.raises(ValueError, match="minimum of 2"):
        GaussianMixtureDestructor().fit(X[:1])


def test_auto_finds_clusters_and_a_single_gaussian():
    X3 = _clusters(1500, seed=9)
    assert GaussianMixtureDestructor(random_state=0).fit(X3).n_components_ > 1
    rng = np.random.default_rng(10)
    G = rng.normal(size=(1500, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0, 0, 2.0]])
    single = GaussianMixtureDestructor(random_state=0).fit(G)
    assert single.n_components_ == 1
    assert single.candidate_scores_[0] == single.candidate_scores_.max()
    # Tiny data: no split, one component.
    assert GaussianMixtureDestructor(random_state=0).fit(G[:6]).n_components_ == 1


def test_dask_fit_is_refused_clearly_and_fitted_layer_maps_dask_arrays():
    da = pytest.importorskip("dask.array")
    X = _clusters(1000, seed=11)
    chunked = da.from_array(X, chunks=(250, 3))
    with pytest.raises(NotImplementedError, match="GaussianMixtureDestructor.*NumPy sample"):
        GaussianMixtureDestructor(n_components=3).fit(chunked)
    model = GaussianMixtureDestructor(n_components=3, random_state=0).fit(X)
    np.testing.assert_allclose(model.transform(chunked).compute(), model.transform(X),
                               rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(model.score_samples(chunked).compute(), model.score_samples(X),
                               rtol=1e-14)
    Z = model.transform(X)
    np.testing.assert_allclose(
        model.inverse_transform(da.from_array(Z, chunks=(250, 3))).compute(),
        model.inverse_transform(Z), rtol=1e-14, atol=1e-14,
    )


def test_pickle_and_safe_model_file_round_trip(tmp_path):
    import pickle

    from destructors.persistence import load_model, save_model

    model, X = _fitted()
    Z = model.transform(X)
    restored = [pickle.loads(pickle.dumps(model))]
    for name in ("layer.destructor", "layer.joblib"):
        save_model(tmp_path / name, model)
        restored.append(load_model(tmp_path / name, trust_pickle=True).model)
    for twin in restored:
        assert isinstance(twin.mixture_, GaussianMixture)
        np.testing.assert_array_equal(twin.transform(X), Z)
        np.testing.assert_array_equal(twin.inverse_transform(Z), model.inverse_transform(Z))
        np.testing.assert_array_equal(twin.mixture_.score_samples(X),
                                      model.mixture_.score_samples(X))
        np.testing.assert_array_equal(twin.sample(5, random_state=0),
                                      model.sample(5, random_state=0))
    # A RandomState as random_state is not part of the fitted state.
    seeded = GaussianMixtureDestructor(2, random_state=np.random.RandomState(0)).fit(X)
    assert seeded.__getstate__()["_mixture_state"]["params"]["random_state"] is None


def test_clone_keeps_parameters():
    model = GaussianMixtureDestructor(n_components=5, reg_covar=1e-3, max_iter=50, n_init=2,
                                      random_state=7)
    twin = clone(model)
    assert twin.get_params() == model.get_params()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([GaussianMixtureDestructor(), GaussianMixtureDestructor(n_components=2)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
