"""MarginalGaussianizer: a bijection of each real line with an exact density."""

import warnings

import numpy as np
import pytest
from _helpers import (
    assert_change_of_variables,
    assert_round_trip,
    far_points,
    global_random_state_unchanged,
    skewed_data,
    trapezoid_1d,
)
from scipy import stats
from scipy.special import ndtri

from destructors import MarginalGaussianizer
from destructors._kernels import piecewise_linear_reference


def _discrete_data(n, seed):
    """Two integer-valued columns with heavy ties, one continuous column."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.poisson(2.0, n), rng.integers(0, 3, n), rng.normal(size=n)])


def _fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(X)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("data", ["skewed", "discrete"])
def test_round_trip_inside_and_far_outside(smoothing, data):
    X = skewed_data(1000, 3, seed=0) if data == "skewed" else _discrete_data(1000, 0)
    model = _fit_quietly(MarginalGaussianizer(smoothing=smoothing), X)
    assert_round_trip(model, X)
    assert_round_trip(model, far_points(X, seed=1))


def test_transform_is_the_map_through_the_fitted_knots():
    X = skewed_data(800, 3, seed=2)
    model = MarginalGaussianizer().fit(X)
    P = far_points(X, seed=3)
    counts = model.n_knots_
    Z_ref, log_det_ref = piecewise_linear_reference(P, model.knots_x_, model.knots_z_, counts)
    Z, log_det = model.transform_log_det(P)
    np.testing.assert_allclose(Z, Z_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-12, atol=1e-12)
    X_ref, _ = piecewise_linear_reference(Z_ref, model.knots_z_, model.knots_x_, counts)
    np.testing.assert_allclose(model.inverse_transform(Z_ref), X_ref, rtol=1e-12, atol=1e-12)


def test_unsmoothed_map_sends_order_statistics_to_normal_plotting_positions():
    # With a knot at every sample and no smoothing, the i-th smallest training
    # value goes to the normal quantile of (i + 0.5) / n.
    n = 300
    X = skewed_data(n, 2, seed=4)
    model = MarginalGaussianizer(n_knots=n, smoothing=0.0).fit(X)
    ranks = np.argsort(np.argsort(X, axis=0), axis=0)
    np.testing.assert_allclose(model.transform(X), ndtri((ranks + 0.5) / n), rtol=0, atol=1e-9)


def test_training_data_come_out_standard_normal():
    n = 5000
    X = skewed_data(n, 3, seed=5)
    Z = MarginalGaussianizer().fit(X).transform(X)
    # Sampling error of a mean and a standard deviation of n normal draws.
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=4 / np.sqrt(n))
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=4 / np.sqrt(2 * n) + 0.01)
    for j in range(3):
        assert stats.kstest(Z[:, j], "norm").pvalue > 1e-3


@pytest.mark.parametrize(
    "dist",
    [stats.gamma(3.0), stats.t(3), stats.norm(2.0, 3.0), stats.lognorm(0.8)],
    ids=["gamma", "t3", "normal", "lognormal"],
)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_density_integrates_to_one(dist, smoothing):
    X = dist.rvs(size=(2000, 1), random_state=np.random.default_rng(6))
    model = MarginalGaussianizer(smoothing=smoothing).fit(X)
    # The grid runs from the preimages of z = -9 and z = 9, so it holds all
    # but 2 Phi(-9) ~ 2e-19 of the mass.
    lo, hi = model.inverse_transform([[-9.0], [9.0]]).ravel()
    assert lo < X.min() and hi > X.max()
    assert abs(trapezoid_1d(model, lo, hi, 400_001) - 1.0) < 1e-3


@pytest.mark.parametrize(
    "dist", [stats.gamma(3.0), stats.t(3), stats.norm(2.0, 3.0)], ids=["gamma", "t3", "normal"]
)
def test_held_out_likelihood_close_to_the_true_density(dist):
    # A consistent estimator: at n = 5000 the held-out KL to the truth
    # (true minus model mean log-density) is a few hundredths of a nat.
    rng = np.random.default_rng(7)
    X = dist.rvs(size=(5000, 1), random_state=rng)
    X_test = dist.rvs(size=(20000, 1), random_state=rng)
    model = MarginalGaussianizer().fit(X)
    gap = dist.logpdf(X_test).mean() - model.score(X_test)
    assert -0.01 < gap < 0.03


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_score_samples_is_change_of_variables(smoothing):
    X = skewed_data(1000, 4, seed=8)
    model = MarginalGaussianizer(smoothing=smoothing).fit(X)
    P = np.vstack([skewed_data(40, 4, seed=9), 3.0 * skewed_data(10, 4, seed=10)])
    assert_change_of_variables(model, P)


def test_map_is_strictly_increasing_everywhere():
    X = _discrete_data(500, 11).astype(float)
    X[:, 2] = skewed_data(500, 1, seed=11)[:, 0]
    model = _fit_quietly(MarginalGaussianizer(), X)
    scale = np.abs(X).max()
    grid = np.linspace(-1000 * scale, 1000 * scale, 20001)
    grid = np.unique(np.r_[grid, np.linspace(X.min() - 1, X.max() + 1, 20001), X.ravel()])
    G = np.repeat(grid[:, None], 3, axis=1)
    Z, log_det = model.transform_log_det(G)
    assert np.all(np.diff(Z, axis=0) > 0)
    assert np.all(np.isfinite(log_det))
    for j in range(3):
        m = model.n_knots_[j]
        assert np.all(np.diff(model.knots_x_[j, :m]) > 0)
        assert np.all(np.diff(model.knots_z_[j, :m]) > 0)
    # The inverse is increasing too.
    assert np.all(np.diff(model.inverse_transform(np.sort(Z, axis=0)), axis=0) > 0)


def test_discrete_values_warn_and_stay_finite():
    X = _discrete_data(1000, 12)
    with pytest.warns(UserWarning, match=r"few distinct values"):
        model = MarginalGaussianizer().fit(X)
    Z = model.transform(X)
    scores = model.score_samples(X)
    assert np.all(np.isfinite(Z)) and np.all(np.isfinite(scores))
    # Tied inputs share one output; distinct inputs keep their order.
    for j in range(2):
        values = np.unique(X[:, j])
        z_of = model.transform(np.repeat(values[:, None], 3, axis=1))[:, j]
        assert np.all(np.diff(z_of) > 0)
        np.testing.assert_array_equal(Z[:, j], z_of[np.searchsorted(values, X[:, j])])
    single = _fit_quietly(MarginalGaussianizer(), X[:, :1])
    assert abs(trapezoid_1d(single, -50, 60, 200_001) - 1.0) < 1e-3


def test_constant_column_warns_and_maps_with_unit_slope():
    rng = np.random.default_rng(13)
    X = np.column_stack([rng.normal(size=200), np.full(200, 7.5)])
    with pytest.warns(UserWarning, match=r"constant"):
        model = MarginalGaussianizer().fit(X)
    Z, log_det = model.transform_log_det(X)
    assert np.all(np.isfinite(Z)) and np.all(np.isfinite(log_det))
    P = np.array([[0.0, 7.5], [0.0, 9.0], [0.0, -1e6]])
    np.testing.assert_allclose(model.transform(P)[:, 1], [0.0, 1.5, -1e6 - 7.5])
    assert np.all(np.isfinite(model.score_samples(P)))
    assert_round_trip(model, P)


def test_read_only_input():
    X = skewed_data(500, 3, seed=14)
    expected = MarginalGaussianizer().fit(X)
    X_ro = X.copy()
    X_ro.setflags(write=False)
    model = MarginalGaussianizer().fit(X_ro)
    Z = model.transform(X_ro)
    Z.setflags(write=False)
    np.testing.assert_array_equal(Z, expected.transform(X))
    np.testing.assert_array_equal(model.inverse_transform(Z), expected.inverse_transform(Z))
    np.testing.assert_array_equal(model.score_samples(X_ro), expected.score_samples(X))


def test_float32_in_float32_out():
    X = skewed_data(500, 3, seed=15)
    model = MarginalGaussianizer().fit(X)
    X32 = X.astype(np.float32)
    Z32 = model.transform(X32)
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, model.transform(X32.astype(np.float64)), rtol=1e-6, atol=1e-6)
    X_back = model.inverse_transform(Z32)
    assert X_back.dtype == np.float32
    np.testing.assert_allclose(X_back, X32, rtol=1e-5, atol=1e-5)
    assert MarginalGaussianizer().fit(X32).transform(X32).dtype == np.float32


def _rows_of_knots(model, X):
    """For each feature, the training rows whose values are its knots."""
    rows = []
    for j, m in enumerate(model.n_knots_):
        hit = np.isclose(X[:, j][:, None], model.knots_x_[j, :m][None, :], rtol=1e-12, atol=0)
        assert np.all(hit.sum(axis=0) == 1), "every knot should be one training value"
        rows.append(set(np.flatnonzero(hit.any(axis=1)).tolist()))
    return rows


def test_subsample_cap_is_honoured_and_reproducible():
    n, cap = 3000, 250
    X = skewed_data(n, 3, seed=16)
    model = MarginalGaussianizer(n_knots=n, smoothing=0.0, subsample=cap, random_state=0).fit(X)
    # With knots at every order statistic of the subsample, the knots are the
    # subsample itself: the same ``cap`` rows for every feature.
    assert np.all(model.n_knots_ == cap)
    rows = _rows_of_knots(model, X)
    assert len(rows[0]) == cap and rows[0] == rows[1] == rows[2]

    again = MarginalGaussianizer(n_knots=n, smoothing=0.0, subsample=cap, random_state=0).fit(X)
    np.testing.assert_array_equal(again.knots_x_, model.knots_x_)
    other = MarginalGaussianizer(n_knots=n, smoothing=0.0, subsample=cap, random_state=1).fit(X)
    assert _rows_of_knots(other, X)[0] != rows[0]

    # Below the cap no subsample is drawn, so the seed does not matter.
    a = MarginalGaussianizer(subsample=n, random_state=0).fit(X)
    b = MarginalGaussianizer(subsample=n, random_state=1).fit(X)
    np.testing.assert_array_equal(a.knots_z_, b.knots_z_)


def test_seeded_subsample_leaves_global_random_state_alone():
    X = skewed_data(1000, 2, seed=17)
    with global_random_state_unchanged():
        MarginalGaussianizer(subsample=100, random_state=0).fit(X).sample(5, random_state=1)


def test_sample_follows_the_marginals():
    X = skewed_data(4000, 2, seed=18)
    model = MarginalGaussianizer().fit(X)
    S = model.sample(4000, random_state=0)
    # Two-sample KS between model samples and the training data.
    for j in range(2):
        assert stats.ks_2samp(S[:, j], X[:, j]).pvalue > 1e-3
    np.testing.assert_array_equal(S, model.sample(4000, random_state=0))


@pytest.mark.parametrize("damping", [0.3, 0.7])
def test_damped_map_is_exact_and_a_partial_step(damping):
    X = skewed_data(2000, 3, seed=30)
    full = MarginalGaussianizer(smoothing=0.0).fit(X)
    damped = MarginalGaussianizer(smoothing=0.0, damping=damping).fit(X)
    P = np.vstack([skewed_data(200, 3, seed=31), far_points(X, seed=32)])
    assert_round_trip(damped, P)
    assert_change_of_variables(damped, P[:60])
    # At every knot the damped value is (1 - a) u + a g, with u the feature
    # standardized by the full map's median and quartiles.
    for j in range(3):
        xk, zk = full.knots_x_[j, : full.n_knots_[j]], full.knots_z_[j, : full.n_knots_[j]]
        median = np.interp(0.0, zk, xk)
        q1, q3 = np.interp([-0.6744897501960817, 0.6744897501960817], zk, xk)
        u = (xk - median) / ((q3 - q1) / (2 * 0.6744897501960817))
        np.testing.assert_allclose(damped.transform(np.tile(xk[:, None], (1, 3)))[:, j],
                                   (1 - damping) * u + damping * zk, rtol=1e-10, atol=1e-10)


def test_damped_streamed_fit_matches_the_array_fit():
    da = pytest.importorskip("dask.array")
    X = skewed_data(20_000, 2, seed=35)
    eager = MarginalGaussianizer(damping=0.3).fit(X)
    lazy = MarginalGaussianizer(damping=0.3).fit(da.from_array(X, chunks=(5000, 2)))
    X_test = skewed_data(5000, 2, seed=36)
    assert abs(lazy.score(X_test) - eager.score(X_test)) < 2e-3


def test_damped_density_integrates_to_one():
    X = stats.gamma(2.0).rvs(size=(2000, 1), random_state=np.random.default_rng(33))
    model = MarginalGaussianizer(damping=0.3).fit(X)
    lo, hi = model.inverse_transform([[-9.0], [9.0]]).ravel()
    assert abs(trapezoid_1d(model, lo, hi, 400_001) - 1.0) < 1e-3


def test_full_damping_is_the_undamped_map():
    X = skewed_data(500, 2, seed=34)
    np.testing.assert_array_equal(
        MarginalGaussianizer(damping=1.0).fit(X).transform(X),
        MarginalGaussianizer().fit(X).transform(X),
    )


def test_fit_leaves_fortran_ordered_input_untouched():
    # The fit sorts a transposed copy; for Fortran-ordered data the transpose
    # is the data itself, so the copy must be a real one.
    X = np.asfortranarray(np.random.default_rng(0).exponential(size=(300, 3)))
    before = X.copy()
    a = MarginalGaussianizer().fit(X)
    np.testing.assert_array_equal(X, before)
    b = MarginalGaussianizer().fit(np.ascontiguousarray(X))
    np.testing.assert_array_equal(a.knots_x_, b.knots_x_)
    np.testing.assert_array_equal(a.knots_z_, b.knots_z_)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_values_a_few_ulps_apart_are_one_knot_like_exact_ties(smoothing):
    # Distinct rows can meet within rounding by construction (two rows with
    # swapped normal scores, rotated by 45 degrees); whether they meet
    # exactly is decided by the last bits, and must not change the map.
    x = np.sort(np.random.default_rng(3).normal(size=400))
    tied, near = x.copy(), x.copy()
    tied[201] = tied[200]
    near[201] = np.nextafter(np.nextafter(near[200], np.inf), np.inf)  # 2 ulps above
    fits = [MarginalGaussianizer(n_knots=400, smoothing=smoothing).fit(v[:, None])
            for v in (tied, near)]
    assert fits[0].n_knots_[0] == fits[1].n_knots_[0] == 399
    grid = np.linspace(-4, 4, 2001)[:, None]
    np.testing.assert_allclose(fits[0].transform(grid), fits[1].transform(grid), atol=1e-12)
    # Values far enough apart stay two knots.
    apart = x.copy()
    apart[201] = apart[200] * (1 + 1e-12)
    assert MarginalGaussianizer(n_knots=400).fit(apart[:, None]).n_knots_[0] == 400
